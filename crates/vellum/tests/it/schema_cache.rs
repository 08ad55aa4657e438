//! Each store caches the active schema version of the types it writes, so a one-write unit of
//! work needs one round trip; the commit checks the cached version may still be written. Another
//! process changing the registry shows here as a second `Store` on the same database.

use serde_json::json;
use vellum::{Error, WriteOptions};

use crate::fixtures::{Fixture, id, order_schema, v};

#[tokio::test]
async fn a_version_another_process_activates_is_written_from_the_next_unit_of_work_on() {
    let f = Fixture::new().await;
    let order = id("sales_order");
    // This process has seen 1.0.0 active.
    assert_eq!(
        f.create_order(json!({"customer": "ACME"}))
            .await
            .schema_version,
        v("1.0.0")
    );
    f.other_process()
        .await
        .schemas()
        .register(&order, v("1.0.1"), order_schema(), true)
        .await
        .unwrap();
    // The first write may still be validated against 1.0.0 (it is live and in the active
    // line, as if the writer had named it); its commit tells this process what is active.
    let first = f.create_order(json!({"customer": "Initech"})).await;
    let stored = f.service.get(&order, first.entity_id).await.unwrap();
    assert!([v("1.0.0"), v("1.0.1")].contains(&stored.schema_version));
    let next = f.create_order(json!({"customer": "Globex"})).await;
    let stored = f.service.get(&order, next.entity_id).await.unwrap();
    assert_eq!(stored.schema_version, v("1.0.1"));
}

#[tokio::test]
async fn a_write_validated_against_a_version_deleted_meanwhile_is_refused_and_the_retry_succeeds() {
    let f = Fixture::new().await;
    let order = id("sales_order");
    f.create_order(json!({"customer": "ACME"})).await;
    let other = f.other_process().await;
    other
        .schemas()
        .register(&order, v("1.0.1"), order_schema(), true)
        .await
        .unwrap();
    other.schemas().delete(&order, v("1.0.0")).await.unwrap();

    let mut uow = f.service.begin("alice").await.unwrap();
    let staged = uow
        .create(
            &order,
            json!({"customer": "Initech"}),
            WriteOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        staged.schema_version,
        v("1.0.0"),
        "validated from the cache"
    );
    let err = uow.commit().await.unwrap_err();
    assert!(
        matches!(&err, Error::NotAllowed(msg) if msg.contains("version 1.0.0 can no longer be written")),
        "{err}"
    );
    assert!(matches!(
        f.service.get(&order, staged.entity_id).await,
        Err(Error::NotFound { .. })
    ));

    let retried = f.create_order(json!({"customer": "Initech"})).await;
    assert_eq!(retried.schema_version, v("1.0.1"));
}

#[tokio::test]
async fn the_commit_check_accepts_the_active_line_only() {
    let f = Fixture::new().await;
    let admin = f.admin().await;
    let check = async |validated: &str, active: Option<&str>, live: Option<bool>| {
        admin
            .query_one(
                "SELECT vellum.expect_writable_schema('sales_order', $1, $2, $3)",
                &[&validated, &active, &live],
            )
            .await
            .map(|row| row.get::<_, String>(0))
            .map_err(|err| err.as_db_error().map(|db| db.code().code().to_owned()))
    };
    assert_eq!(
        check("1.2.0", Some("1.3.0"), Some(true)).await,
        Ok("1.3.0".into())
    );
    assert_eq!(
        check("1.3.0", Some("1.3.0"), Some(true)).await,
        Ok("1.3.0".into())
    );
    let refused = Err(Some("VL004".to_owned()));
    assert_eq!(check("1.2.0", Some("2.0.0"), Some(true)).await, refused);
    assert_eq!(check("10.0.0", Some("1.0.0"), Some(true)).await, refused);
    assert_eq!(check("1.2.0", Some("1.3.0"), Some(false)).await, refused);
    assert_eq!(check("1.2.0", Some("1.3.0"), None).await, refused);
    assert_eq!(check("1.2.0", None, Some(true)).await, refused);
}
