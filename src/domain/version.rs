//! Versions and tag schemes: which tags belong to an environment's family, and which version comes
//! next. Pure: no I/O, so its only failure modes are logic.
//!
//! A [`TagScheme`] is a template such as `stg{major}.{minor}.{patch}` plus a bump rule. A tag
//! belongs to the scheme's family only if the *whole* name matches the template with canonical
//! numbers (no leading zeros, no sign, case-sensitive), so `stgfoo`, `stg1.2`, `stg9.9.9-rc1`,
//! `xstg9.9.9` and `STG8.0.0` are not members of `stg{major}.{minor}.{patch}`. Versions compare as
//! numbers, never as strings and never by date.

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::names::TagName;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

impl Version {
    pub const fn new(major: u64, minor: u64, patch: u64) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }
}

impl Version {
    /// Parses a bare version such as `initial_version = "0.0.1"`: three canonical numbers.
    pub fn parse(value: &str) -> Result<Self, SchemeError> {
        let bad = || SchemeError::BadVersion {
            value: value.into(),
        };
        let mut parts = value.split('.');
        let mut next = || -> Result<u64, SchemeError> {
            let (n, rest) = take_number(parts.next().ok_or_else(bad)?).ok_or_else(bad)?;
            if rest.is_empty() { Ok(n) } else { Err(bad()) }
        };
        let v = Version::new(next()?, next()?, next()?);
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(v)
    }
}

impl std::str::FromStr for Version {
    type Err = SchemeError;
    fn from_str(s: &str) -> Result<Self, SchemeError> {
        Self::parse(s)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Which part of the version a release increments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Bump {
    #[default]
    Patch,
    Minor,
    Major,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemeError {
    #[error(
        "tag template `{0}` must contain {{major}}, {{minor}} and {{patch}} once each, in that order (e.g. \"stg{{major}}.{{minor}}.{{patch}}\")"
    )]
    Placeholders(String),
    #[error(
        "tag template `{0}` needs a non-digit separator between placeholders (e.g. `.`), or versions could not be read back"
    )]
    Ambiguous(String),
    #[error(
        "tag template `{0}` has characters a tag cannot hold (spaces, `~`, `^`, `:`, `?`, `*`, `[`, `\\`)"
    )]
    BadChars(String),
    #[error("tag template `{0}` is longer than 180 characters")]
    TooLong(String),
    #[error("`{value}` is not a version of the form MAJOR.MINOR.PATCH (e.g. 0.0.1)")]
    BadVersion { value: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagScheme {
    template: String,
    /// The literal text around the placeholders: before major, between major and minor, between
    /// minor and patch, after patch.
    literals: [String; 4],
    bump: Bump,
    patch_rollover: Option<u64>,
}

/// The outcome of an allocation, with the reason a person can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    pub version: Version,
    pub tag: TagName,
    pub reason: String,
}

impl TagScheme {
    pub fn new(
        template: &str,
        bump: Bump,
        patch_rollover: Option<u64>,
    ) -> Result<Self, SchemeError> {
        let mut rest = template;
        let mut literals: [String; 4] = Default::default();
        for (i, ph) in ["{major}", "{minor}", "{patch}"].iter().enumerate() {
            let at = rest
                .find(ph)
                .ok_or_else(|| SchemeError::Placeholders(template.into()))?;
            literals[i] = rest[..at].to_string();
            rest = &rest[at + ph.len()..];
        }
        literals[3] = rest.to_string();
        if literals.iter().any(|l| l.contains('{') || l.contains('}')) {
            return Err(SchemeError::Placeholders(template.into()));
        }
        // Between placeholders the separator must be present and must not begin or end with a
        // digit; the outer literals must not touch the numbers with a digit either.
        let digit_edge = |s: &str, start: bool| {
            let c = if start {
                s.chars().next()
            } else {
                s.chars().last()
            };
            c.is_some_and(|c| c.is_ascii_digit())
        };
        if literals[1].is_empty()
            || literals[2].is_empty()
            || digit_edge(&literals[0], false)
            || literals[1..3]
                .iter()
                .any(|l| digit_edge(l, true) || digit_edge(l, false))
            || digit_edge(&literals[3], true)
        {
            return Err(SchemeError::Ambiguous(template.into()));
        }
        if template.chars().any(|c| {
            c.is_whitespace()
                || c.is_control()
                || matches!(c, '~' | '^' | ':' | '?' | '*' | '[' | '\\')
        }) {
            return Err(SchemeError::BadChars(template.into()));
        }
        if template.chars().count() > 180 {
            return Err(SchemeError::TooLong(template.into()));
        }
        Ok(Self {
            template: template.into(),
            literals,
            bump,
            patch_rollover,
        })
    }

    pub fn template(&self) -> &str {
        &self.template
    }

    /// The literal text before the first number: what a name filter (BBQL `name ~ "..."`) can use.
    pub fn prefix(&self) -> &str {
        &self.literals[0]
    }

    /// The longest literal of the template, the most selective text for a server-side `~` filter.
    pub fn filter_text(&self) -> &str {
        self.literals
            .iter()
            .max_by_key(|l| l.len())
            .map(String::as_str)
            .unwrap_or("")
    }

    pub fn format(&self, v: Version) -> TagName {
        let [a, b, c, d] = &self.literals;
        let name = format!("{a}{}{b}{}{c}{}{d}", v.major, v.minor, v.patch);
        TagName::parse(&name).expect("a scheme's templates make valid tag names (checked by new)")
    }

    /// The version a tag name stands for, if the whole name is a member of this family.
    pub fn parse_tag(&self, name: &str) -> Option<Version> {
        let [a, b, c, d] = &self.literals;
        let rest = name.strip_prefix(a.as_str())?;
        let rest = rest.strip_suffix(d.as_str())?;
        let (major, rest) = take_number(rest)?;
        let rest = rest.strip_prefix(b.as_str())?;
        let (minor, rest) = take_number(rest)?;
        let rest = rest.strip_prefix(c.as_str())?;
        let (patch, rest) = take_number(rest)?;
        rest.is_empty().then_some(Version::new(major, minor, patch))
    }

    /// The version after `v` under this scheme's bump rule.
    pub fn bump(&self, v: Version) -> Version {
        match self.bump {
            Bump::Major => Version::new(v.major + 1, 0, 0),
            Bump::Minor => Version::new(v.major, v.minor + 1, 0),
            Bump::Patch => match self.patch_rollover {
                Some(limit) if v.patch >= limit => Version::new(v.major, v.minor + 1, 0),
                _ => Version::new(v.major, v.minor, v.patch + 1),
            },
        }
    }

    /// The highest member of the family among `names`.
    pub fn highest<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Option<(Version, &'a str)> {
        names
            .into_iter()
            .filter_map(|n| self.parse_tag(n).map(|v| (v, n)))
            .max_by_key(|(v, _)| *v)
    }

    /// The next tag: the highest existing member bumped, skipping any version in `taken` (tags
    /// that exist or were reserved but are not in `names`), or `initial` when the family is empty.
    pub fn next<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str>,
        initial: Version,
        taken: &HashSet<Version>,
    ) -> Allocation {
        let (mut version, mut reason) = match self.highest(names) {
            Some((highest, name)) => {
                let next = self.bump(highest);
                let why = if next.minor != highest.minor
                    && next.patch == 0
                    && self.bump == Bump::Patch
                {
                    format!(
                        "highest tag of the family `{}` is {name}; patch {} reached the rollover limit {}, so the minor version goes up",
                        self.template,
                        highest.patch,
                        self.patch_rollover.unwrap_or_default()
                    )
                } else {
                    format!(
                        "highest tag of the family `{}` is {name}; bumped {}",
                        self.template,
                        format!("{:?}", self.bump).to_lowercase()
                    )
                };
                (next, why)
            }
            None => (
                initial,
                format!(
                    "no tag of the family `{}` exists yet: starting at the initial version {initial}",
                    self.template
                ),
            ),
        };
        while taken.contains(&version) {
            version = self.bump(version);
            reason.push_str(&format!("; {} is taken", self.format(version)));
        }
        Allocation {
            tag: self.format(version),
            version,
            reason,
        }
    }
}

/// A canonical decimal number at the start of `s`: digits, no leading zero unless it is `0`.
fn take_number(s: &str) -> Option<(u64, &str)> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let digits = &s[..end];
    if digits.is_empty() || (digits.len() > 1 && digits.starts_with('0')) {
        return None;
    }
    Some((digits.parse().ok()?, &s[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn stg() -> TagScheme {
        TagScheme::new("stg{major}.{minor}.{patch}", Bump::Patch, Some(99)).unwrap()
    }

    #[test]
    fn family_membership_is_whole_name() {
        let s = stg();
        type Case<'a> = (&'a str, Option<(u64, u64, u64)>);
        let cases: &[Case] = &[
            ("stg1.4.7", Some((1, 4, 7))),
            ("stg0.0.0", Some((0, 0, 0))),
            ("stg10.20.300", Some((10, 20, 300))),
            ("stgfoo", None),
            ("stg1.2", None),
            ("stg9.9.9-rc1", None),
            ("xstg9.9.9", None),
            ("STG8.0.0", None),
            ("stg01.2.3", None),
            ("stg1.2.3.4", None),
            ("stg-1.2.3", None),
            ("stg1..3", None),
            ("qa1.2.3", None),
            ("stg+1.2.3", None),
            ("stg99999999999999999999999.0.0", None),
        ];
        for (name, want) in cases {
            assert_eq!(
                s.parse_tag(name),
                want.map(|(a, b, c)| Version::new(a, b, c)),
                "{name}"
            );
        }
    }

    #[test]
    fn other_templates() {
        let dash = TagScheme::new("stg-{major}.{minor}.{patch}", Bump::Patch, None).unwrap();
        assert_eq!(dash.parse_tag("stg-1.2.3"), Some(Version::new(1, 2, 3)));
        assert_eq!(dash.parse_tag("stg1.2.3"), None);
        let qa = TagScheme::new("v{major}.{minor}.{patch}-qa", Bump::Patch, None).unwrap();
        assert_eq!(qa.parse_tag("v1.2.3-qa"), Some(Version::new(1, 2, 3)));
        assert_eq!(qa.parse_tag("v1.2.3-prod"), None);
        assert_eq!(qa.parse_tag("v1.2.3"), None);
        assert_eq!(qa.format(Version::new(2, 0, 1)), "v2.0.1-qa");
        assert_eq!(qa.prefix(), "v");
        assert_eq!(qa.filter_text(), "-qa");
    }

    #[test]
    fn bad_templates_are_refused() {
        for t in [
            "stg",
            "stg{major}.{patch}",
            "stg{minor}.{major}.{patch}",
            "stg{major}{minor}.{patch}",
            "stg{major}.1{minor}.{patch}",
            "stg1{major}.{minor}.{patch}",
            "stg {major}.{minor}.{patch}",
            "stg{major}.{minor}.{patch}{x}",
            "{major}.{minor}.{patch}9",
        ] {
            assert!(TagScheme::new(t, Bump::Patch, None).is_err(), "{t}");
        }
    }

    #[test]
    fn next_versions() {
        let s = stg();
        let none = HashSet::new();
        let init = Version::new(0, 0, 1);
        let cases: &[(&[&str], &str)] = &[
            (&[], "stg0.0.1"),
            (&["stgfoo", "stg1.2", "qa9.9.9"], "stg0.0.1"),
            (&["stg1.4.7"], "stg1.4.8"),
            (&["stg1.3.99"], "stg1.4.0"),
            (&["stg1.3.98"], "stg1.3.99"),
            (&["stg1.9.0", "stg1.10.0", "stg1.2.50"], "stg1.10.1"),
            (&["stg2.0.0", "stg10.0.0", "stg9.99.99"], "stg10.0.1"),
            (&["stg1.3.150"], "stg1.4.0"),
            (
                &["stg1.4.7", "STG8.0.0", "stg9.9.9-rc1", "xstg9.9.9"],
                "stg1.4.8",
            ),
        ];
        for (names, want) in cases {
            assert_eq!(
                s.next(names.iter().copied(), init, &none).tag,
                *want,
                "{names:?}"
            );
        }
        let no_rollover = TagScheme::new("stg{major}.{minor}.{patch}", Bump::Patch, None).unwrap();
        assert_eq!(
            no_rollover.next(["stg1.3.99"], init, &none).tag,
            "stg1.3.100"
        );
        let minor = TagScheme::new("v{major}.{minor}.{patch}", Bump::Minor, None).unwrap();
        assert_eq!(minor.next(["v1.3.7"], init, &none).tag, "v1.4.0");
        let major = TagScheme::new("v{major}.{minor}.{patch}", Bump::Major, None).unwrap();
        assert_eq!(major.next(["v1.3.7"], init, &none).tag, "v2.0.0");
    }

    #[test]
    fn taken_versions_are_skipped() {
        let s = stg();
        let taken = HashSet::from([Version::new(1, 4, 8), Version::new(1, 4, 9)]);
        let a = s.next(["stg1.4.7"], Version::new(0, 0, 1), &taken);
        assert_eq!(a.tag, "stg1.4.10");
        assert!(a.reason.contains("taken"));
    }

    #[test]
    fn initial_version_parsing() {
        assert_eq!(Version::parse("0.0.1").unwrap(), Version::new(0, 0, 1));
        for bad in ["1.2", "1.2.3.4", "a.b.c", "01.2.3", "", "1.2.-3"] {
            assert!(Version::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn next_is_greater_than_every_member_and_not_taken(
            existing in proptest::collection::vec((0u64..20, 0u64..120, 0u64..120), 0..40),
            taken in proptest::collection::vec((0u64..20, 0u64..120, 0u64..120), 0..10),
            rollover in proptest::option::of(1u64..120),
        ) {
            let s = TagScheme::new("stg{major}.{minor}.{patch}", Bump::Patch, rollover).unwrap();
            let names: Vec<String> = existing.iter().map(|&(a, b, c)| s.format(Version::new(a, b, c)).to_string()).collect();
            let taken: HashSet<Version> = taken.iter().map(|&(a, b, c)| Version::new(a, b, c)).collect();
            let alloc = s.next(names.iter().map(String::as_str), Version::new(0, 0, 1), &taken);
            for &(a, b, c) in &existing {
                prop_assert!(alloc.version > Version::new(a, b, c));
            }
            prop_assert!(!taken.contains(&alloc.version));
            prop_assert_eq!(s.parse_tag(alloc.tag.as_str()), Some(alloc.version));
        }

        #[test]
        fn format_and_parse_round_trip(a in 0u64..1_000_000, b in 0u64..1_000_000, c in 0u64..1_000_000) {
            for t in ["stg{major}.{minor}.{patch}", "stg-{major}.{minor}.{patch}", "v{major}.{minor}.{patch}-qa"] {
                let s = TagScheme::new(t, Bump::Patch, None).unwrap();
                let v = Version::new(a, b, c);
                prop_assert_eq!(s.parse_tag(s.format(v).as_str()), Some(v));
            }
        }

        #[test]
        fn parse_tag_never_panics(name in "\\PC{0,40}") {
            let _ = stg().parse_tag(&name);
        }
    }
}
