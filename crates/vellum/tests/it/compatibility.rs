//! Schema evolution rules on registration: declared bump against detected class, compatibility
//! modes per schema id, and the classification in a check.

use serde_json::{Value, json};
use vellum::{Bump, ChangeClass, ChangeKind, CompatibilityMode, Error, SchemaId, Version};

use crate::fixtures::{Fixture, id, identity, order_schema, v};

fn with_required_total() -> Value {
    let mut schema = order_schema();
    schema["required"] = json!(["customer", "total"]);
    schema
}

fn status(values: &[&str]) -> Value {
    json!({"type": "object", "properties": {"status": {"enum": values}}})
}

async fn versions(f: &Fixture, schema_id: &SchemaId) -> Vec<Version> {
    f.service
        .schemas()
        .versions(schema_id)
        .await
        .unwrap()
        .iter()
        .map(|i| i.schema_version)
        .collect()
}

#[tokio::test]
async fn a_bump_smaller_than_the_change_is_refused_with_the_changes_and_nothing_registered() {
    let f = Fixture::new().await;
    let order = id("sales_order");
    let registry = f.service.schemas();

    let err = registry
        .register(&order, v("1.0.1"), with_required_total(), false)
        .await
        .unwrap_err();
    let Error::IncompatibleSchema {
        schema_id,
        version,
        against,
        mode,
        declared,
        detected,
        changes,
        ..
    } = &err
    else {
        panic!("expected IncompatibleSchema, got {err}");
    };
    assert_eq!(
        (schema_id.as_str(), *version, *against, *mode),
        (
            "sales_order",
            v("1.0.1"),
            v("1.0.0"),
            CompatibilityMode::Backward
        )
    );
    assert_eq!((*declared, *detected), (Bump::Patch, ChangeClass::Major));
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].path, "/required");
    assert_eq!(
        changes[0].kind,
        ChangeKind::RequiredAdded {
            property: "total".into()
        }
    );
    assert!(
        err.to_string()
            .contains("declares a patch change from 1.0.0, but the change is major"),
        "{err}"
    );
    assert_eq!(
        versions(&f, &order).await,
        [v("1.0.0")],
        "nothing registered"
    );

    // A minor bump is still too small; a major one is enough, and reports what it found.
    let minor = registry
        .register(&order, v("1.1.0"), with_required_total(), false)
        .await
        .unwrap_err();
    assert!(matches!(minor, Error::IncompatibleSchema { .. }), "{minor}");
    let major = registry
        .register_with_migration(
            &order,
            v("2.0.0"),
            with_required_total(),
            identity("1.0.0"),
            false,
        )
        .await
        .unwrap();
    let assessment = major.assessment.unwrap();
    assert_eq!(
        (
            assessment.predecessor,
            assessment.declared,
            assessment.class
        ),
        (Some(v("1.0.0")), Some(Bump::Major), ChangeClass::Major)
    );
    assert!(assessment.compatible);
    assert_eq!(versions(&f, &order).await, [v("1.0.0"), v("2.0.0")]);

    // Reading a version back does not carry an assessment.
    let read = registry.get(&order, Some(v("2.0.0")), false).await.unwrap();
    assert!(read.assessment.is_none());
}

#[tokio::test]
async fn the_mode_defaults_to_backward_and_is_kept_per_schema_id() {
    let f = Fixture::new().await;
    let registry = f.service.schemas();
    let (order, invoice) = (id("sales_order"), id("invoice"));
    assert_eq!(
        registry.compatibility(&order).await.unwrap(),
        CompatibilityMode::Backward
    );
    registry
        .set_compatibility(&order, CompatibilityMode::Full)
        .await
        .unwrap();
    // A schema id without versions can be configured before its first registration.
    registry
        .set_compatibility(&invoice, CompatibilityMode::ForwardTransitive)
        .await
        .unwrap();
    registry
        .set_compatibility(&order, CompatibilityMode::None)
        .await
        .unwrap();
    assert_eq!(
        registry.compatibility(&order).await.unwrap(),
        CompatibilityMode::None
    );
    assert_eq!(
        registry.compatibility(&invoice).await.unwrap(),
        CompatibilityMode::ForwardTransitive
    );

    // The database holds only known modes.
    let admin = f.admin().await;
    let refused = admin
        .execute(
            "UPDATE vellum.schema_compatibility SET mode = 'SIDEWAYS' WHERE schema_id = 'invoice'",
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code().unwrap().code(), "23514", "{refused}");
}

#[tokio::test]
async fn each_mode_allows_what_it_promises_and_refuses_the_rest() {
    let f = Fixture::empty().await;
    let registry = f.service.schemas();
    // An added enum value is backward compatible only: BACKWARD and NONE allow it as a minor
    // version, FORWARD and FULL refuse it.
    for (n, (mode, allowed)) in [
        (CompatibilityMode::Backward, true),
        (CompatibilityMode::None, true),
        (CompatibilityMode::BackwardTransitive, true),
        (CompatibilityMode::Forward, false),
        (CompatibilityMode::Full, false),
        (CompatibilityMode::FullTransitive, false),
    ]
    .into_iter()
    .enumerate()
    {
        let schema_id = id(&format!("thing_{n}"));
        registry.set_compatibility(&schema_id, mode).await.unwrap();
        registry
            .register(&schema_id, v("1.0.0"), status(&["open"]), false)
            .await
            .unwrap();
        let added = registry
            .register(&schema_id, v("1.1.0"), status(&["open", "held"]), false)
            .await;
        match (allowed, added) {
            (true, Ok(registered)) => {
                assert_eq!(registered.assessment.unwrap().class, ChangeClass::Minor);
            }
            (
                false,
                Err(Error::IncompatibleSchema {
                    mode: refused,
                    reason,
                    ..
                }),
            ) => {
                assert_eq!(refused, mode);
                assert!(reason.contains(mode.as_str()), "{reason}");
            }
            (_, other) => panic!("{mode}: unexpected {other:?}"),
        }
        // Annotations only: every mode allows a patch.
        let mut titled = if allowed {
            status(&["open", "held"])
        } else {
            status(&["open"])
        };
        titled["title"] = json!("Thing");
        registry
            .register(&schema_id, v("1.1.1"), titled, false)
            .await
            .unwrap_or_else(|e| panic!("{mode}: {e}"));
        // A new major is exempt from the mode, whatever it changes.
        let registered = registry
            .register_with_migration(
                &schema_id,
                v("2.0.0"),
                status(&["closed"]),
                identity("1.0.0"),
                false,
            )
            .await
            .unwrap_or_else(|e| panic!("{mode}: {e}"));
        assert_eq!(registered.assessment.unwrap().class, ChangeClass::Major);
    }
}

#[tokio::test]
async fn a_transitive_mode_compares_with_every_earlier_version_of_the_major() {
    let f = Fixture::empty().await;
    let registry = f.service.schemas();
    let text = |max: u64| json!({"type": "string", "maxLength": max});
    let count = |max: u64| json!({"type": "integer", "maximum": max});
    let p = |branches: Value| json!({"type": "object", "properties": {"p": {"anyOf": branches}}});
    let one = p(json!([text(5), count(5)]));
    let two = p(json!([text(5), count(10)]));
    // Each branch widened again and reordered: provably minor from 1.1.0, not from 1.0.0.
    let three = p(json!([count(10), text(10)]));
    for (schema_id, mode, allowed) in [
        ("plain", CompatibilityMode::Backward, true),
        ("transitive", CompatibilityMode::BackwardTransitive, false),
    ] {
        let schema_id = id(schema_id);
        registry.set_compatibility(&schema_id, mode).await.unwrap();
        for (version, definition) in [("1.0.0", &one), ("1.1.0", &two)] {
            registry
                .register(&schema_id, v(version), definition.clone(), false)
                .await
                .unwrap();
        }
        let third = registry
            .register(&schema_id, v("1.2.0"), three.clone(), false)
            .await;
        match (allowed, third) {
            (true, Ok(_)) => {}
            (false, Err(Error::IncompatibleSchema { against, .. })) => {
                assert_eq!(against, v("1.0.0"));
            }
            (_, other) => panic!("{mode}: unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn the_predecessor_is_the_greatest_non_deleted_lower_version() {
    let f = Fixture::new().await;
    let registry = f.service.schemas();
    let order = id("sales_order");
    let mut relaxed = order_schema();
    relaxed["properties"]["customer"] = json!({"type": "string"});
    registry
        .register(&order, v("1.1.0"), relaxed, false)
        .await
        .unwrap();
    registry.delete(&order, v("1.1.0")).await.unwrap();
    // Compared with 1.0.0, not with the deleted 1.1.0: a title is a patch-level change.
    let mut titled = order_schema();
    titled["title"] = json!("Order");
    let registered = registry
        .register(&order, v("1.2.0"), titled, false)
        .await
        .unwrap();
    let assessment = registered.assessment.unwrap();
    assert_eq!(assessment.predecessor, Some(v("1.0.0")));
    assert_eq!(assessment.class, ChangeClass::Patch);
    assert_eq!(assessment.changes.len(), 1);
}

#[tokio::test]
async fn a_check_classifies_like_registration_and_registers_nothing() {
    let f = Fixture::new().await;
    let order = id("sales_order");
    let registry = f.service.schemas();

    let report = registry
        .check(&order, v("1.0.1"), &with_required_total())
        .await
        .unwrap();
    assert!(!report.assessment.compatible);
    assert_eq!(
        (
            report.assessment.predecessor,
            report.assessment.declared,
            report.assessment.class,
            report.assessment.mode
        ),
        (
            Some(v("1.0.0")),
            Some(Bump::Patch),
            ChangeClass::Major,
            CompatibilityMode::Backward
        )
    );
    assert_eq!(report.assessment.changes.len(), 1);
    let refusal = report.assessment.incompatibility.as_ref().unwrap();
    assert_eq!(refusal.detected, ChangeClass::Major);
    // The same refusal registration gives.
    let registered = registry
        .register(&order, v("1.0.1"), with_required_total(), false)
        .await
        .unwrap_err();
    assert_eq!(report.registration_problems, [registered.to_string()]);

    // A major version without its migration: the refusal registration gives.
    let without = registry
        .check(&order, v("2.0.0"), &with_required_total())
        .await
        .unwrap();
    let refused = registry
        .register(&order, v("2.0.0"), with_required_total(), false)
        .await
        .unwrap_err();
    assert_eq!(without.registration_problems, [refused.to_string()]);
    let major = registry
        .check_with_migration(
            &order,
            v("2.0.0"),
            &with_required_total(),
            Some(identity("1.0.0").into()),
        )
        .await
        .unwrap();
    assert!(major.assessment.compatible);
    assert!(major.registration_problems.is_empty());
    assert_eq!(major.assessment.class, ChangeClass::Major);

    registry
        .set_compatibility(&order, CompatibilityMode::Full)
        .await
        .unwrap();
    let mut relaxed = order_schema();
    relaxed["properties"]["customer"] = json!({"type": "string"});
    let under_full = registry.check(&order, v("1.1.0"), &relaxed).await.unwrap();
    assert_eq!(under_full.assessment.class, ChangeClass::Minor);
    assert!(!under_full.assessment.compatible, "FULL refuses a widening");
    assert_eq!(
        versions(&f, &order).await,
        [v("1.0.0")],
        "nothing registered"
    );
}
