//! Names people choose: projects, environments, tags.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a string is not a valid name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a valid {what}: {why}")]
pub struct NameError {
    pub what: &'static str,
    pub value: String,
    pub why: &'static str,
}

/// Checks the characters every name shares: not empty, at most `max` characters, no whitespace or
/// control character, none of `also`.
fn check(what: &'static str, value: &str, max: usize, also: &[char]) -> Result<(), NameError> {
    let err = |why| NameError {
        what,
        value: value.chars().take(80).collect(),
        why,
    };
    if value.is_empty() {
        return Err(err("it is empty"));
    }
    if value.chars().count() > max {
        return Err(err("it is too long"));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(err("it holds whitespace or a control character"));
    }
    if value.chars().any(|c| also.contains(&c)) {
        return Err(err("it holds `:`, which Hoist uses to join names"));
    }
    Ok(())
}

macro_rules! name {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:literal, $also:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: &str) -> Result<Self, NameError> {
                check($what, value, $max, $also)?;
                Ok(Self(value.to_string()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = NameError;
            fn try_from(value: String) -> Result<Self, NameError> {
                check($what, &value, $max, $also)?;
                Ok(Self(value))
            }
        }

        impl From<$name> for String {
            fn from(n: $name) -> String {
                n.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

name!(
    /// A configured project (`[[projects]] name`).
    ProjectName,
    "project name",
    200,
    &[':']
);
name!(
    /// A configured environment of a project (`[projects.environments.<name>]`).
    EnvName,
    "environment name",
    200,
    &[':']
);
name!(
    /// A tag in the repository.
    TagName,
    "tag name",
    255,
    &[]
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for ok in ["payments-api", "stg", "a_b.c"] {
            assert_eq!(ProjectName::parse(ok).unwrap().as_str(), ok);
        }
        for bad in ["", "pay ments", "a:b", "tab\there"] {
            assert!(ProjectName::parse(bad).is_err(), "{bad:?}");
            assert!(EnvName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(TagName::parse("release:1").is_ok(), "tags may hold colons");
        assert!(TagName::parse("stg 1.2.3").is_err());
    }
}
