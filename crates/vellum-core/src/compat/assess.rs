//! The registration rule: the declared bump against the detected change class, and the
//! compatibility mode of the schema id.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Change, ChangeClass, Classification, CompatibilityMode, classify};
use crate::{Bump, Version};

/// How a candidate version compares with the versions registered before it, and whether the
/// registry accepts it. Built by [`assess`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Assessment {
    /// The greatest non-deleted registered version lower than the candidate, which it is
    /// classified against; `None` for the first version.
    pub predecessor: Option<Version>,
    /// The bump the version numbers declare from the predecessor.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<ChangeClass>))]
    pub declared: Option<Bump>,
    /// The class of the change from the predecessor: the greatest class of `changes` (patch
    /// when there is none).
    pub class: ChangeClass,
    /// Every change from the predecessor.
    pub changes: Vec<Change>,
    /// The compatibility mode of the schema id.
    pub mode: CompatibilityMode,
    /// Whether registration would be accepted: the declared bump covers the class and, within
    /// a major line, the mode holds.
    pub compatible: bool,
    /// Why registration would be refused, when it would.
    pub incompatibility: Option<Incompatibility>,
}

/// Why a candidate version is refused: which version it breaks and how.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Incompatibility {
    /// The registered version the candidate was compared with.
    pub against: Version,
    /// The compatibility mode that applied.
    pub mode: CompatibilityMode,
    /// The bump the version numbers declare from `against`.
    #[cfg_attr(feature = "openapi", schema(value_type = ChangeClass))]
    pub declared: Bump,
    /// The class of the change from `against`.
    pub detected: ChangeClass,
    /// The rule that refused it, for a human.
    pub reason: String,
    /// Every change from `against`, each with its directions and class.
    pub changes: Vec<Change>,
}

/// The bump from `predecessor` to `version` their numbers declare: major if the majors differ,
/// else minor if the minors differ, else patch.
///
/// ```
/// use vellum_core::{Bump, Version, compat::declared_bump};
///
/// assert_eq!(declared_bump(Version::new(1, 2, 3), Version::new(1, 2, 4)), Bump::Patch);
/// assert_eq!(declared_bump(Version::new(1, 2, 3), Version::new(1, 3, 0)), Bump::Minor);
/// assert_eq!(declared_bump(Version::new(1, 2, 3), Version::new(2, 0, 0)), Bump::Major);
/// ```
pub fn declared_bump(predecessor: Version, version: Version) -> Bump {
    if predecessor.major != version.major {
        Bump::Major
    } else if predecessor.minor != version.minor {
        Bump::Minor
    } else {
        Bump::Patch
    }
}

/// Assesses registering `definition` as `version` of a schema id whose non-deleted registered
/// versions are `registered`, under `mode`.
///
/// The candidate is classified against its predecessor (the greatest registered version lower
/// than it) and refused when the declared bump is smaller than the class. Within a major line,
/// the mode must hold too: every change backward compatible (`BACKWARD`), forward compatible
/// (`FORWARD`), or both (`FULL`), against the predecessor, or against every earlier version of
/// the major for the transitive modes. A new major is classified but exempt from the mode.
///
/// ```
/// use serde_json::json;
/// use vellum_core::{Bump, Version, compat::{assess, ChangeClass, CompatibilityMode}};
///
/// let v1 = json!({"type": "object", "properties": {"sku": {"type": "string"}}});
/// let v2 = json!({"type": "object", "properties": {"sku": {"type": "string"}}, "required": ["sku"]});
/// let registered = [(Version::new(1, 0, 0), &v1)];
///
/// let patch = assess(CompatibilityMode::Backward, Version::new(1, 0, 1), &v2, &registered);
/// assert!(!patch.compatible);
/// let refusal = patch.incompatibility.unwrap();
/// assert_eq!((refusal.declared, refusal.detected), (Bump::Patch, ChangeClass::Major));
///
/// let major = assess(CompatibilityMode::Backward, Version::new(2, 0, 0), &v2, &registered);
/// assert!(major.compatible);
/// assert_eq!(major.class, ChangeClass::Major);
/// ```
pub fn assess(
    mode: CompatibilityMode,
    version: Version,
    definition: &Value,
    registered: &[(Version, &Value)],
) -> Assessment {
    let mut earlier: Vec<(Version, &Value)> = registered
        .iter()
        .filter(|(v, _)| *v < version)
        .map(|(v, d)| (*v, *d))
        .collect();
    earlier.sort_by_key(|(v, _)| std::cmp::Reverse(*v));
    let Some(&(predecessor, previous)) = earlier.first() else {
        return Assessment {
            predecessor: None,
            declared: None,
            class: ChangeClass::Patch,
            changes: Vec::new(),
            mode,
            compatible: true,
            incompatibility: None,
        };
    };
    let classification = classify(previous, definition);
    let declared = declared_bump(predecessor, version);
    let incompatibility = if ChangeClass::from(declared) < classification.class {
        Some(Incompatibility {
            against: predecessor,
            mode,
            declared,
            detected: classification.class,
            reason: format!(
                "version {version} declares a {declared} change from {predecessor}, but the \
                 change is {}",
                classification.class
            ),
            changes: classification.changes.clone(),
        })
    } else if declared == Bump::Major {
        None
    } else {
        let targets = earlier
            .iter()
            .filter(|(v, _)| v.major == version.major)
            .take(if mode.transitive() { usize::MAX } else { 1 });
        targets.enumerate().find_map(|(index, &(against, schema))| {
            let found = if index == 0 {
                classification.clone()
            } else {
                classify(schema, definition)
            };
            violation(mode, version, against, found)
        })
    };
    Assessment {
        predecessor: Some(predecessor),
        declared: Some(declared),
        class: classification.class,
        changes: classification.changes,
        mode,
        compatible: incompatibility.is_none(),
        incompatibility,
    }
}

/// The refusal of `mode` for the changes from `against` to `version`, if it refuses them.
fn violation(
    mode: CompatibilityMode,
    version: Version,
    against: Version,
    found: Classification,
) -> Option<Incompatibility> {
    let backward = !mode.backward() || found.changes.iter().all(|c| c.backward);
    let forward = !mode.forward() || found.changes.iter().all(|c| c.forward);
    if backward && forward {
        return None;
    }
    let required = match (mode.backward(), mode.forward()) {
        (true, true) => "backward and forward compatible (the same documents valid)",
        (false, true) => "forward compatible (no document valid that was not before)",
        _ => "backward compatible (every document valid before stays valid)",
    };
    Some(Incompatibility {
        against,
        mode,
        declared: declared_bump(against, version),
        detected: found.class,
        reason: format!(
            "compatibility mode {mode} requires every change from {against} to be {required}"
        ),
        changes: found.changes,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn v(text: &str) -> Version {
        text.parse().unwrap()
    }

    fn status(values: &[&str]) -> Value {
        json!({"type": "object", "properties": {"status": {"enum": values}}})
    }

    #[test]
    fn the_first_version_has_nothing_to_compare_with() {
        let found = assess(CompatibilityMode::Full, v("1.0.0"), &status(&["a"]), &[]);
        assert_eq!(
            (
                found.predecessor,
                found.declared,
                found.class,
                found.compatible
            ),
            (None, None, ChangeClass::Patch, true)
        );
    }

    #[test]
    fn the_declared_bump_must_cover_the_class_against_the_predecessor() {
        let (one, two, three) = (status(&["a"]), status(&["a", "b"]), status(&["b"]));
        let registered = [(v("1.0.0"), &one), (v("1.1.0"), &two), (v("3.0.0"), &three)];
        // 1.1.1 follows 1.1.0: 3.0.0 is greater, 1.0.0 not the greatest lower version.
        let found = assess(CompatibilityMode::None, v("1.1.1"), &three, &registered);
        assert_eq!(found.predecessor, Some(v("1.1.0")));
        let refusal = found.incompatibility.unwrap();
        assert_eq!(
            (refusal.against, refusal.declared, refusal.detected),
            (v("1.1.0"), Bump::Patch, ChangeClass::Major)
        );
        assert!(
            refusal.reason.contains("declares a patch change"),
            "{}",
            refusal.reason
        );
        assert_eq!(refusal.changes.len(), 1);

        let major = assess(
            CompatibilityMode::FullTransitive,
            v("2.0.0"),
            &three,
            &registered,
        );
        assert!(major.compatible, "a new major is exempt from the mode");
        assert_eq!(
            (major.declared, major.class),
            (Some(Bump::Major), ChangeClass::Major)
        );
    }

    #[test]
    fn modes_within_a_major_line() {
        let (one, two) = (status(&["a"]), status(&["a", "b"]));
        let registered = [(v("1.0.0"), &one)];
        let added_value = |mode| assess(mode, v("1.1.0"), &two, &registered).compatible;
        assert!(added_value(CompatibilityMode::Backward));
        assert!(added_value(CompatibilityMode::None));
        assert!(added_value(CompatibilityMode::BackwardTransitive));
        assert!(!added_value(CompatibilityMode::Forward));
        assert!(!added_value(CompatibilityMode::Full));
        assert!(!added_value(CompatibilityMode::FullTransitive));
        let refusal = assess(CompatibilityMode::Forward, v("1.1.0"), &two, &registered)
            .incompatibility
            .unwrap();
        assert_eq!(
            (refusal.declared, refusal.detected),
            (Bump::Minor, ChangeClass::Minor)
        );
        assert!(refusal.reason.contains("FORWARD"), "{}", refusal.reason);

        let titled =
            json!({"title": "x", "type": "object", "properties": {"status": {"enum": ["a"]}}});
        for mode in CompatibilityMode::ALL {
            assert!(
                assess(mode, v("1.0.1"), &titled, &registered).compatible,
                "{mode}"
            );
        }
    }

    #[test]
    fn transitive_modes_compare_with_every_earlier_version_of_the_major() {
        let text = |max: u64| json!({"type": "string", "maxLength": max});
        let count = |max: u64| json!({"type": "integer", "maximum": max});
        let one = json!({"properties": {"p": {"anyOf": [text(5), count(5)]}}});
        let two = json!({"properties": {"p": {"anyOf": [text(5), count(10)]}}});
        let three = json!({"properties": {"p": {"anyOf": [count(10), text(10)]}}});
        let registered = [(v("1.0.0"), &one), (v("1.1.0"), &two)];
        // Each step is provably minor; the jump from 1.0.0 is not (the branches moved).
        assert_eq!(classify(&two, &three).class, ChangeClass::Minor);
        assert_eq!(classify(&one, &three).class, ChangeClass::Major);
        let under = |mode| assess(mode, v("1.2.0"), &three, &registered);
        assert!(under(CompatibilityMode::Backward).compatible);
        let refusal = under(CompatibilityMode::BackwardTransitive)
            .incompatibility
            .unwrap();
        assert_eq!(refusal.against, v("1.0.0"));
        // Versions of other majors are not compared.
        let other_major = [(v("0.9.0"), &one), (v("1.1.0"), &two)];
        assert!(
            assess(
                CompatibilityMode::BackwardTransitive,
                v("1.2.0"),
                &three,
                &other_major
            )
            .compatible
        );
    }
}
