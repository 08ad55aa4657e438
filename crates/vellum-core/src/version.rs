//! Semantic versions (`MAJOR.MINOR.PATCH`) of schemas and entities, and the rule that numbers
//! entity versions (SPEC §5).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Error, Result};

/// The largest component accepted by the parser: components are stored in PostgreSQL `int4`.
const MAX_COMPONENT: u32 = i32::MAX as u32;

/// A semantic version `MAJOR.MINOR.PATCH`, of a schema or of an entity.
///
/// Versions order like semver (field by field) and parse strictly: three decimal numbers
/// separated by dots, without leading zeros, pre-release or build suffixes, or whitespace, each at
/// most `i32::MAX` (2147483647) because they are stored in PostgreSQL `int4` columns.
///
/// ```
/// use vellum_core::{Bump, Version};
///
/// let v: Version = "1.4.2".parse()?;
/// assert_eq!(v, Version::new(1, 4, 2));
/// assert_eq!(v.bump(Bump::Minor).to_string(), "1.5.0");
/// assert!(Version::INITIAL < v);
/// assert!("1.4.2-beta".parse::<Version>().is_err());
/// # Ok::<(), vellum_core::Error>(())
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Version {
    /// Incremented for incompatible changes.
    pub major: u32,
    /// Incremented for backward-compatible changes.
    pub minor: u32,
    /// Incremented for changes that do not change which documents are valid.
    pub patch: u32,
}

/// Which component of a [`Version`] a change increments.
///
/// Ordered by impact, so `Bump::Patch < Bump::Minor < Bump::Major`: a declared bump is enough when
/// it is at least the detected one.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Bump {
    /// No change to which documents are valid.
    Patch,
    /// Backward compatible: every document valid before stays valid.
    Minor,
    /// Anything else.
    Major,
}

impl Version {
    /// The first version of a schema or an entity: `1.0.0`.
    pub const INITIAL: Version = Version::new(1, 0, 0);

    /// The version `major.minor.patch`.
    ///
    /// Components above `i32::MAX` can be built but do not parse back; they never come from
    /// storage.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Version {
            major,
            minor,
            patch,
        }
    }

    /// `major.minor.(patch + 1)`.
    ///
    /// # Panics
    ///
    /// If `patch` is `u32::MAX`.
    #[must_use]
    pub const fn next_patch(self) -> Self {
        Version::new(self.major, self.minor, increment(self.patch))
    }

    /// `major.(minor + 1).0`.
    ///
    /// # Panics
    ///
    /// If `minor` is `u32::MAX`.
    #[must_use]
    pub const fn next_minor(self) -> Self {
        Version::new(self.major, increment(self.minor), 0)
    }

    /// `(major + 1).0.0`.
    ///
    /// # Panics
    ///
    /// If `major` is `u32::MAX`.
    #[must_use]
    pub const fn next_major(self) -> Self {
        Version::new(increment(self.major), 0, 0)
    }

    /// The next version for a change of class `bump`.
    #[must_use]
    pub const fn bump(self, bump: Bump) -> Self {
        match bump {
            Bump::Patch => self.next_patch(),
            Bump::Minor => self.next_minor(),
            Bump::Major => self.next_major(),
        }
    }

    /// The version of the next entity version written under `new_schema`, when the current one
    /// is `self` written under `current_schema`:
    /// same schema version -> patch + 1; other version of the same schema major -> minor + 1,
    /// patch 0; different major -> major + 1, minor 0, patch 0.
    ///
    /// ```
    /// use vellum_core::Version;
    ///
    /// let entity = Version::new(1, 2, 3);
    /// let schema = Version::new(2, 1, 0);
    /// assert_eq!(entity.next_entity_version(schema, schema), Version::new(1, 2, 4));
    /// assert_eq!(entity.next_entity_version(schema, Version::new(2, 2, 0)), Version::new(1, 3, 0));
    /// assert_eq!(entity.next_entity_version(schema, Version::new(3, 0, 0)), Version::new(2, 0, 0));
    /// ```
    #[must_use]
    pub const fn next_entity_version(self, current_schema: Version, new_schema: Version) -> Self {
        let bump = if current_schema.major != new_schema.major {
            Bump::Major
        } else if current_schema.minor != new_schema.minor
            || current_schema.patch != new_schema.patch
        {
            Bump::Minor
        } else {
            Bump::Patch
        };
        self.bump(bump)
    }
}

const fn increment(component: u32) -> u32 {
    match component.checked_add(1) {
        Some(next) => next,
        None => panic!("version component overflow"),
    }
}

/// Parses one component; the error is the reason, without the value.
fn parse_component(name: &str, text: &str) -> Result<u32, String> {
    if text.is_empty() {
        return Err(format!("the {name} version is empty"));
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("the {name} version may contain only digits 0-9"));
    }
    if text.len() > 1 && text.starts_with('0') {
        return Err(format!("the {name} version has a leading zero"));
    }
    match text.parse::<u32>() {
        Ok(value) if value <= MAX_COMPONENT => Ok(value),
        _ => Err(format!("the {name} version is larger than {MAX_COMPONENT}")),
    }
}

impl FromStr for Version {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidVersion {
            value: s.to_owned(),
            reason,
        };
        let mut parts = s.split('.');
        let (Some(major), Some(minor), Some(patch), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid(
                "expected MAJOR.MINOR.PATCH, three numbers separated by dots".to_owned(),
            ));
        };
        Ok(Version::new(
            parse_component("major", major).map_err(invalid)?,
            parse_component("minor", minor).map_err(invalid)?,
            parse_component("patch", patch).map_err(invalid)?,
        ))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Bump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Bump::Patch => "patch",
            Bump::Minor => "minor",
            Bump::Major => "major",
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn reason(text: &str) -> String {
        match text.parse::<Version>() {
            Err(Error::InvalidVersion { value, reason }) => {
                assert_eq!(value, text);
                reason
            }
            other => panic!("expected InvalidVersion for {text:?}, got {other:?}"),
        }
    }

    #[test]
    fn parses_strict_semver() {
        assert_eq!("0.0.0".parse::<Version>().unwrap(), Version::new(0, 0, 0));
        assert_eq!(
            "10.20.30".parse::<Version>().unwrap(),
            Version::new(10, 20, 30)
        );
        assert_eq!(
            "2147483647.0.1".parse::<Version>().unwrap(),
            Version::new(2_147_483_647, 0, 1)
        );
    }

    #[test]
    fn rejects_malformed_versions() {
        for text in [
            "1.0",
            "01.0.0",
            "1.00.0",
            "1.0.0-beta",
            "1.0.0+build",
            " 1.0.0",
            "1.0.0 ",
            "1.0.0.0",
            "",
            "a.b.c",
            "1..0",
            "+1.0.0",
            "-1.0.0",
            "4294967296.0.0",
            "2147483648.0.0",
            "1.0.99999999999999999999",
        ] {
            assert!(text.parse::<Version>().is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn explains_why_a_version_is_malformed() {
        assert_eq!(
            reason("1.0"),
            "expected MAJOR.MINOR.PATCH, three numbers separated by dots"
        );
        assert_eq!(reason("01.0.0"), "the major version has a leading zero");
        assert_eq!(
            reason("1.0.0-beta"),
            "the patch version may contain only digits 0-9"
        );
        assert_eq!(reason("1..0"), "the minor version is empty");
        assert_eq!(
            reason("1.2147483648.0"),
            "the minor version is larger than 2147483647"
        );
        assert_eq!(
            "x".parse::<Version>().unwrap_err().to_string(),
            r#"invalid version "x": expected MAJOR.MINOR.PATCH, three numbers separated by dots"#
        );
    }

    #[test]
    fn bumps_reset_lower_components() {
        let v = Version::new(1, 2, 3);
        assert_eq!(Version::INITIAL, Version::new(1, 0, 0));
        assert_eq!(v.next_patch(), Version::new(1, 2, 4));
        assert_eq!(v.next_minor(), Version::new(1, 3, 0));
        assert_eq!(v.next_major(), Version::new(2, 0, 0));
        assert_eq!(v.bump(Bump::Patch), v.next_patch());
        assert_eq!(v.bump(Bump::Minor), v.next_minor());
        assert_eq!(v.bump(Bump::Major), v.next_major());
    }

    #[test]
    fn entity_version_follows_the_schema_change() {
        let entity = Version::new(1, 4, 2);
        let schema = Version::new(2, 3, 1);
        // Same schema version.
        assert_eq!(
            entity.next_entity_version(schema, schema),
            Version::new(1, 4, 3)
        );
        // Newer patch, newer minor, or an older version of the same major.
        for other in [
            Version::new(2, 3, 2),
            Version::new(2, 4, 0),
            Version::new(2, 0, 0),
        ] {
            assert_eq!(
                entity.next_entity_version(schema, other),
                Version::new(1, 5, 0),
                "{other}"
            );
        }
        // New schema major.
        assert_eq!(
            entity.next_entity_version(schema, Version::new(3, 0, 0)),
            Version::new(2, 0, 0)
        );
    }

    #[test]
    fn serializes_as_a_string() {
        let v = Version::new(1, 2, 3);
        assert_eq!(serde_json::to_string(&v).unwrap(), r#""1.2.3""#);
        assert_eq!(serde_json::from_str::<Version>(r#""1.2.3""#).unwrap(), v);
        let error = serde_json::from_value::<Version>("1.2".into()).unwrap_err();
        assert_eq!(
            error.to_string(),
            r#"invalid version "1.2": expected MAJOR.MINOR.PATCH, three numbers separated by dots"#
        );
        assert_eq!(serde_json::to_string(&Bump::Minor).unwrap(), r#""minor""#);
    }

    #[test]
    fn bumps_order_by_impact() {
        assert!(Bump::Patch < Bump::Minor && Bump::Minor < Bump::Major);
    }

    fn component() -> impl Strategy<Value = u32> {
        prop_oneof![0..=20u32, 0..=MAX_COMPONENT]
    }

    fn version() -> impl Strategy<Value = Version> {
        (component(), component(), component()).prop_map(|(a, b, c)| Version::new(a, b, c))
    }

    proptest! {
        #[test]
        fn display_then_parse_round_trips(v in version()) {
            prop_assert_eq!(v.to_string().parse::<Version>().unwrap(), v);
        }

        #[test]
        fn ordering_matches_tuple_ordering(a in version(), b in version()) {
            prop_assert_eq!(
                a.cmp(&b),
                (a.major, a.minor, a.patch).cmp(&(b.major, b.minor, b.patch))
            );
        }

        #[test]
        fn parse_accepts_exactly_canonical_strings(text in r"[0-9a-z. +\-]{0,16}") {
            // Whatever parses displays back to the very same text: no two spellings of a version.
            if let Ok(v) = text.parse::<Version>() {
                prop_assert_eq!(v.to_string(), text);
            }
        }

        #[test]
        fn decorated_versions_are_rejected(
            v in version(),
            decoration in prop_oneof![
                Just(" {}"), Just("{} "), Just("0{}"), Just("{}.0"), Just("{}-rc.1"),
                Just("{}+build"), Just("v{}"),
            ],
        ) {
            let text = decoration.replace("{}", &v.to_string());
            prop_assert!(text.parse::<Version>().is_err(), "{:?} was accepted", text);
        }

        #[test]
        fn every_bump_increases_the_version(v in version(), bump in prop_oneof![
            Just(Bump::Patch), Just(Bump::Minor), Just(Bump::Major),
        ]) {
            prop_assert!(v.bump(bump) > v);
        }

        #[test]
        fn next_entity_version_is_always_greater(
            v in version(), current in version(), new in version(),
        ) {
            prop_assert!(v.next_entity_version(current, new) > v);
        }
    }
}
