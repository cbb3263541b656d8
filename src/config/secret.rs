//! Secrets by reference: `{ env = "NAME" }` or `{ file = "path" }`, never inline.
//!
//! A resolved [`Secret`] never prints its value: `Debug` and `Display` show `[redacted]`, so a
//! secret that ends up in a log line or an error by mistake still does not leak.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};

/// Where a secret comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretRef {
    Env(String),
    File(String),
    /// A value given directly. Only Hoist itself builds these (the demo and tests); a configuration
    /// file cannot, because deserializing an inline string is refused.
    Value(String),
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env(name) => write!(f, "{{ env = {name:?} }}"),
            Self::File(path) => write!(f, "{{ file = {path:?} }}"),
            Self::Value(_) => f.write_str("[redacted]"),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("environment variable {0} is not set (or is empty)")]
    EnvUnset(String),
    #[error("cannot read secret file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("secret file {0} is empty")]
    FileEmpty(String),
}

impl SecretRef {
    pub fn resolve(&self) -> Result<Secret, SecretError> {
        let value = match self {
            Self::Env(name) => match std::env::var(name) {
                Ok(v) if !v.is_empty() => v,
                _ => return Err(SecretError::EnvUnset(name.clone())),
            },
            Self::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| SecretError::File {
                    path: path.clone(),
                    reason: e.kind().to_string(),
                })?;
                let trimmed = text.trim_end_matches(['\n', '\r']).to_string();
                if trimmed.is_empty() {
                    return Err(SecretError::FileEmpty(path.clone()));
                }
                trimmed
            }
            Self::Value(v) => v.clone(),
        };
        Ok(Secret::new(value))
    }
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Table {
            env: Option<String>,
            file: Option<String>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Table(Table),
            #[allow(dead_code)]
            Inline(String),
        }
        match Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom("a secret must be { env = \"NAME\" } or { file = \"/path\" }")
        })? {
            Raw::Inline(_) => Err(serde::de::Error::custom(
                "inline secrets are refused: write { env = \"NAME\" } or { file = \"/path\" } and keep the value out of the file",
            )),
            Raw::Table(Table {
                env: Some(e),
                file: None,
            }) => Ok(Self::Env(e)),
            Raw::Table(Table {
                env: None,
                file: Some(f),
            }) => Ok(Self::File(f)),
            Raw::Table(_) => Err(serde::de::Error::custom(
                "a secret needs exactly one of `env` or `file`",
            )),
        }
    }
}

/// A resolved secret value. Compare with [`Secret::ct_eq`], print never.
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(SecretString::from(value.into()))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// Constant-time comparison with a presented value.
    pub fn ct_eq(&self, presented: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        let mine = self.expose().as_bytes();
        // Lengths are not secret enough to matter, but compare hashes anyway so that the time
        // does not depend on where the first difference is, nor on the length.
        let a = ring::digest::digest(&ring::digest::SHA256, mine);
        let b = ring::digest::digest(&ring::digest::SHA256, presented);
        a.as_ref().ct_eq(b.as_ref()).into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_secret_is_refused_with_a_fix() {
        #[derive(Deserialize, Debug)]
        struct T {
            #[allow(dead_code)]
            token: SecretRef,
        }
        let err = toml::from_str::<T>("token = \"hunter2\"").unwrap_err();
        let err = err.message().to_string();
        assert!(err.to_string().contains("inline secrets are refused"));
        assert!(!err.to_string().contains("hunter2"));
    }

    #[test]
    fn env_and_file_references_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        std::fs::write(&path, "s3cret\n").unwrap();
        let r = SecretRef::File(path.display().to_string());
        assert_eq!(r.resolve().unwrap().expose(), "s3cret");
        let missing = SecretRef::Env("HOIST_TEST_SURELY_UNSET_VAR".into());
        assert_eq!(
            missing.resolve().unwrap_err(),
            SecretError::EnvUnset("HOIST_TEST_SURELY_UNSET_VAR".into())
        );
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
        assert!(s.ct_eq(b"hunter2"));
        assert!(!s.ct_eq(b"hunter3"));
    }
}
