//! The schema repository: registration rules, activation, soft delete, immutability.

use serde_json::json;
use vellum::Error;

use crate::fixtures::{Fixture, id, identity, order_schema, v};

#[tokio::test]
async fn first_version_is_active_and_later_ones_only_when_asked() {
    let f = Fixture::new().await;
    let registry = f.service.schemas();
    let order = id("sales_order");

    // A minor version relaxes: 1.1.0 accepts an empty customer.
    let mut relaxed = order_schema();
    relaxed["properties"]["customer"] = json!({"type": "string"});
    let second = registry
        .register(&order, v("1.1.0"), relaxed.clone(), false)
        .await
        .unwrap();
    assert!(!second.info.is_active);
    assert_eq!(
        registry
            .get(&order, None, false)
            .await
            .unwrap()
            .info
            .schema_version,
        v("1.0.0")
    );

    registry
        .register(&order, v("1.2.0"), relaxed, true)
        .await
        .unwrap();
    let versions = registry.versions(&order).await.unwrap();
    let states: Vec<_> = versions
        .iter()
        .map(|i| (i.schema_version.to_string(), i.is_active))
        .collect();
    assert_eq!(
        states,
        [
            ("1.0.0".to_string(), false),
            ("1.1.0".to_string(), false),
            ("1.2.0".to_string(), true)
        ]
    );

    let list = registry.list().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].active_version, Some(v("1.2.0")));
    assert_eq!(list[0].versions, 3);

    // Activation moves the active flag, and the definition reads back unchanged.
    registry.activate(&order, v("1.0.0")).await.unwrap();
    let active = registry.get(&order, None, false).await.unwrap();
    assert_eq!(active.info.schema_version, v("1.0.0"));
    assert_eq!(active.definition, order_schema());
}

#[tokio::test]
async fn versions_must_grow_within_their_major_and_never_repeat() {
    let f = Fixture::new().await;
    let registry = f.service.schemas();
    let order = id("sales_order");
    registry
        .register(&order, v("1.3.0"), order_schema(), false)
        .await
        .unwrap();
    registry
        .register_with_migration(&order, v("2.0.0"), order_schema(), identity("1.3.0"), false)
        .await
        .unwrap();

    let lower = registry
        .register(&order, v("1.2.9"), order_schema(), false)
        .await
        .unwrap_err();
    assert!(
        matches!(&lower, Error::NotAllowed(m) if m.contains("lower than 1.3.0")),
        "{lower}"
    );
    let again = registry
        .register(&order, v("1.3.0"), order_schema(), false)
        .await
        .unwrap_err();
    assert!(matches!(again, Error::AlreadyExists { .. }), "{again}");
    // A higher patch of an older major is fine: it is greater than everything in major 1.
    registry
        .register(&order, v("1.3.1"), order_schema(), false)
        .await
        .unwrap();
    assert_eq!(registry.versions(&order).await.unwrap().len(), 4);
}

#[tokio::test]
async fn invalid_definitions_are_refused_and_nothing_is_registered() {
    let f = Fixture::empty().await;
    let registry = f.service.schemas();
    let thing = id("thing");
    let cases = [
        json!({"type": 12}),
        json!({"type": "object", "properties": {"a": {"$ref": "https://example.com/a.json"}}}),
        json!({"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"}),
        json!("not an object"),
    ];
    for definition in cases {
        let err = registry
            .register(&thing, v("1.0.0"), definition.clone(), false)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{definition}: {err}");
    }
    assert!(matches!(
        registry.versions(&thing).await.unwrap_err(),
        Error::NotFound { .. }
    ));
    assert!(registry.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn soft_deleted_versions_stay_readable_but_cannot_be_used() {
    let f = Fixture::new().await;
    let registry = f.service.schemas();
    let order = id("sales_order");
    registry
        .register(&order, v("1.1.0"), order_schema(), false)
        .await
        .unwrap();

    let refused = registry.delete(&order, v("1.0.0")).await.unwrap_err();
    assert!(
        matches!(&refused, Error::NotAllowed(m) if m.contains("is active")),
        "{refused}"
    );

    let deleted = registry.delete(&order, v("1.1.0")).await.unwrap();
    assert!(deleted.deleted_at.is_some());
    assert!(matches!(
        registry.get(&order, Some(v("1.1.0")), false).await,
        Err(Error::NotFound { .. })
    ));
    let read = registry.get(&order, Some(v("1.1.0")), true).await.unwrap();
    assert_eq!(read.definition, order_schema());
    assert!(matches!(
        registry.activate(&order, v("1.1.0")).await,
        Err(Error::NotAllowed(_))
    ));

    let mut uow = f.service.begin("alice").await.unwrap();
    let options = vellum::WriteOptions::default().under_schema(v("1.1.0"));
    let err = uow
        .create(&order, json!({"customer": "ACME"}), options)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::NotAllowed(m) if m.contains("deleted")),
        "{err}"
    );
}

#[tokio::test]
async fn the_database_refuses_to_change_or_delete_a_definition() {
    let f = Fixture::new().await;
    let admin = f.admin().await;
    let update = admin
        .execute(
            "UPDATE orders.schemas SET schema_definition = '{}' WHERE schema_id = 'sales_order'",
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(update.code().unwrap().code(), "VL001", "{update}");
    let delete = admin
        .execute("DELETE FROM orders.schemas", &[])
        .await
        .unwrap_err();
    assert_eq!(delete.code().unwrap().code(), "VL001", "{delete}");
    let truncate = admin
        .batch_execute("TRUNCATE orders.schemas CASCADE")
        .await
        .unwrap_err();
    assert_eq!(truncate.code().unwrap().code(), "VL001", "{truncate}");

    let registry = f.service.schemas();
    assert_eq!(
        registry
            .get(&id("sales_order"), None, false)
            .await
            .unwrap()
            .definition,
        order_schema()
    );
}

#[tokio::test]
async fn concurrent_activations_leave_exactly_one_active_version() {
    let f = Fixture::new().await;
    let order = id("sales_order");
    f.service
        .schemas()
        .register(&order, v("1.1.0"), order_schema(), false)
        .await
        .unwrap();

    let tasks: Vec<_> = (0..12)
        .map(|n| {
            let service = f.service.clone();
            let order = order.clone();
            let version = if n % 2 == 0 { v("1.0.0") } else { v("1.1.0") };
            tokio::spawn(async move { service.schemas().activate(&order, version).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let versions = f.service.schemas().versions(&order).await.unwrap();
    assert_eq!(
        versions.iter().filter(|i| i.is_active).count(),
        1,
        "{versions:?}"
    );
}

#[tokio::test]
async fn a_check_validates_every_current_document_against_the_candidate_and_registers_nothing() {
    let f = Fixture::new().await;
    let order = id("sales_order");
    let mut uow = f.service.begin("alice").await.unwrap();
    let with_total = uow
        .create(
            &order,
            json!({"customer": "a", "total": 1}),
            vellum::WriteOptions::default(),
        )
        .await
        .unwrap();
    let mut without_total = Vec::new();
    for n in 0..25 {
        let staged = uow
            .create(
                &order,
                json!({"customer": format!("c{n}")}),
                vellum::WriteOptions::default(),
            )
            .await
            .unwrap();
        without_total.push(staged.entity_id);
    }
    let deleted = uow
        .create(
            &order,
            json!({"customer": "gone"}),
            vellum::WriteOptions::default(),
        )
        .await
        .unwrap();
    uow.commit().await.unwrap();
    let mut uow = f.service.begin("alice").await.unwrap();
    uow.delete(&order, deleted.entity_id, None).await.unwrap();
    uow.commit().await.unwrap();

    let mut stricter = order_schema();
    stricter["required"] = json!(["customer", "total"]);
    let report = f
        .service
        .schemas()
        .check_with_migration(
            &order,
            v("2.0.0"),
            &stricter,
            Some(identity("1.0.0").into()),
        )
        .await
        .unwrap();
    assert!(report.registration_problems.is_empty());
    assert_eq!(
        (report.documents_checked, report.documents_failing),
        (26, 25),
        "deleted documents are not checked"
    );
    assert_eq!(report.samples.len(), vellum::CHECK_SAMPLES);
    assert!(
        report
            .samples
            .iter()
            .all(|s| without_total.contains(&s.entity_id))
    );
    assert!(
        !report
            .samples
            .iter()
            .any(|s| s.entity_id == with_total.entity_id)
    );
    assert_eq!(report.samples[0].violations[0].keyword, "required");

    let again = f
        .service
        .schemas()
        .check(&order, v("1.0.0"), &order_schema())
        .await
        .unwrap();
    assert_eq!(again.registration_problems.len(), 1, "1.0.0 exists");
    assert_eq!(again.documents_failing, 0);
    let fresh = f
        .service
        .schemas()
        .check(&id("invoice"), v("1.0.0"), &order_schema())
        .await
        .unwrap();
    assert_eq!(
        (fresh.documents_checked, fresh.registration_problems.len()),
        (0, 0)
    );
    assert!(matches!(
        f.service
            .schemas()
            .check(&order, v("2.0.0"), &json!({"type": 5}))
            .await,
        Err(Error::InvalidInput(_))
    ));
    assert_eq!(
        f.service.schemas().versions(&order).await.unwrap().len(),
        1,
        "nothing registered"
    );
}
