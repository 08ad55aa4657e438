//! Compatibility modes, named like Confluent Schema Registry's.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// What a new version within a major line must keep compatible, per schema id.
///
/// Whatever the mode, the declared bump must be at least the detected change class, and a new
/// major version is exempt from the mode (its data comes over by a migration).
///
/// ```
/// use vellum_core::compat::CompatibilityMode;
///
/// let mode: CompatibilityMode = "full_transitive".parse()?;
/// assert_eq!(mode, CompatibilityMode::FullTransitive);
/// assert_eq!(mode.to_string(), "FULL_TRANSITIVE");
/// assert!(mode.forward() && mode.transitive());
/// assert_eq!(CompatibilityMode::default(), CompatibilityMode::Backward);
/// # Ok::<(), vellum_core::Error>(())
/// ```
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CompatibilityMode {
    /// Every document valid under the predecessor stays valid (the default).
    #[default]
    Backward,
    /// Every document valid under the new version was valid under the predecessor.
    Forward,
    /// Both: the predecessor and the new version accept the same documents.
    Full,
    /// `Backward` against every earlier non-deleted version of the same major.
    BackwardTransitive,
    /// `Forward` against every earlier non-deleted version of the same major.
    ForwardTransitive,
    /// `Full` against every earlier non-deleted version of the same major.
    FullTransitive,
    /// Only the declared-bump rule.
    None,
}

impl CompatibilityMode {
    /// Every mode, in the order above.
    pub const ALL: [CompatibilityMode; 7] = [
        CompatibilityMode::Backward,
        CompatibilityMode::Forward,
        CompatibilityMode::Full,
        CompatibilityMode::BackwardTransitive,
        CompatibilityMode::ForwardTransitive,
        CompatibilityMode::FullTransitive,
        CompatibilityMode::None,
    ];

    /// The name stored and shown, e.g. `BACKWARD_TRANSITIVE`.
    pub const fn as_str(self) -> &'static str {
        match self {
            CompatibilityMode::Backward => "BACKWARD",
            CompatibilityMode::Forward => "FORWARD",
            CompatibilityMode::Full => "FULL",
            CompatibilityMode::BackwardTransitive => "BACKWARD_TRANSITIVE",
            CompatibilityMode::ForwardTransitive => "FORWARD_TRANSITIVE",
            CompatibilityMode::FullTransitive => "FULL_TRANSITIVE",
            CompatibilityMode::None => "NONE",
        }
    }

    /// Whether every change must be backward compatible.
    pub const fn backward(self) -> bool {
        matches!(
            self,
            CompatibilityMode::Backward
                | CompatibilityMode::Full
                | CompatibilityMode::BackwardTransitive
                | CompatibilityMode::FullTransitive
        )
    }

    /// Whether every change must be forward compatible.
    pub const fn forward(self) -> bool {
        matches!(
            self,
            CompatibilityMode::Forward
                | CompatibilityMode::Full
                | CompatibilityMode::ForwardTransitive
                | CompatibilityMode::FullTransitive
        )
    }

    /// Whether the new version is checked against every earlier version of its major, not
    /// only its predecessor.
    pub const fn transitive(self) -> bool {
        matches!(
            self,
            CompatibilityMode::BackwardTransitive
                | CompatibilityMode::ForwardTransitive
                | CompatibilityMode::FullTransitive
        )
    }
}

impl fmt::Display for CompatibilityMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CompatibilityMode {
    type Err = Error;

    /// Parses a mode name in any case, with `_` or `-`: `BACKWARD`, `full-transitive`.
    fn from_str(s: &str) -> Result<Self> {
        let normalized = s.trim().to_ascii_uppercase().replace('-', "_");
        CompatibilityMode::ALL
            .into_iter()
            .find(|mode| mode.as_str() == normalized)
            .ok_or_else(|| Error::InvalidName {
                kind: "compatibility mode",
                value: s.to_owned(),
                reason: format!(
                    "expected one of {}",
                    CompatibilityMode::ALL
                        .map(CompatibilityMode::as_str)
                        .join(", ")
                ),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for mode in CompatibilityMode::ALL {
            assert_eq!(mode.as_str().parse::<CompatibilityMode>().unwrap(), mode);
            let json = serde_json::to_value(mode).unwrap();
            assert_eq!(json, mode.as_str());
            assert_eq!(
                serde_json::from_value::<CompatibilityMode>(json).unwrap(),
                mode
            );
        }
        assert_eq!(
            "forward-transitive".parse::<CompatibilityMode>().unwrap(),
            CompatibilityMode::ForwardTransitive
        );
        let err = "sideways".parse::<CompatibilityMode>().unwrap_err();
        assert!(err.to_string().contains("BACKWARD, FORWARD, FULL"), "{err}");
    }

    #[test]
    fn directions() {
        use CompatibilityMode as M;
        let table: Vec<_> = M::ALL
            .iter()
            .map(|m| (m.backward(), m.forward(), m.transitive()))
            .collect();
        assert_eq!(
            table,
            [
                (true, false, false),
                (false, true, false),
                (true, true, false),
                (true, false, true),
                (false, true, true),
                (true, true, true),
                (false, false, false),
            ]
        );
    }
}
