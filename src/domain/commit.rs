//! Commit hashes.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A commit hash as a sender gave it: 7 to 40 hexadecimal digits, lower-cased. [`Self::is_full`]
/// tells a full hash (40 digits, what Bitbucket answers) from an abbreviation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CommitSha(String);

impl CommitSha {
    pub fn parse(value: &str) -> Result<Self, String> {
        let v = value.trim();
        if (7..=40).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Self(v.to_ascii_lowercase()))
        } else {
            Err(format!(
                "`{}` is not a commit hash (7 to 40 hexadecimal digits)",
                v.chars().take(60).collect::<String>()
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_full(&self) -> bool {
        self.0.len() == 40
    }

    pub fn short(&self) -> &str {
        short_sha(&self.0)
    }

    /// Whether `self` names the commit `full`: the same hash, or an abbreviation of it.
    pub fn names(&self, full: &CommitSha) -> bool {
        full.0.starts_with(&self.0)
    }
}

impl std::ops::Deref for CommitSha {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CommitSha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for CommitSha {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        Self::parse(&value)
    }
}

impl From<CommitSha> for String {
    fn from(c: CommitSha) -> String {
        c.0
    }
}

/// A commit as the repository confirmed it: its full hash, and its date (the commit's own time,
/// which the lead time for changes runs from) when the repository gave one Hoist could read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundCommit {
    pub full: CommitSha,
    pub committed_at: Option<super::time::Millis>,
}

/// The first seven characters of a hash, as people write it.
pub fn short_sha(sha: &str) -> &str {
    // By characters, not bytes: a stored value is never cut inside a character.
    sha.char_indices().nth(7).map_or(sha, |(i, _)| &sha[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_sha_parsing() {
        assert!(CommitSha::parse("abc1234").is_ok());
        assert_eq!(CommitSha::parse("ABC1234").unwrap().as_str(), "abc1234");
        assert!(CommitSha::parse("abc123").is_err());
        assert!(CommitSha::parse("xyz1234").is_err());
        assert!(CommitSha::parse(&"a".repeat(41)).is_err());
        assert!(CommitSha::parse(&"a".repeat(40)).unwrap().is_full());
    }

    #[test]
    fn an_abbreviation_names_its_full_hash() {
        let full = CommitSha::parse(&format!("abc1234{}", "0".repeat(33))).unwrap();
        assert!(CommitSha::parse("abc1234").unwrap().names(&full));
        assert!(full.names(&full));
        assert!(!CommitSha::parse("abc1235").unwrap().names(&full));
    }
}
