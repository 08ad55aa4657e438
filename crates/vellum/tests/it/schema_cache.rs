//! Each store caches the active schema version of the types it writes, so a one-write unit of
//! work needs one round trip; the commit checks the cached version may still be written. Another
//! process changing the registry shows here as a second `Store` on the same database.

use serde_json::json;
use vellum::{Error, StoreOptions, WriteOptions};

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

#[tokio::test]
async fn every_registry_change_moves_the_generation_and_writes_do_not() {
    let f = Fixture::new().await;
    let order = id("sales_order");
    let admin = f.admin().await;
    let generation = async || -> i64 {
        admin
            .query_one("SELECT registry_generation FROM orders.event_settings", &[])
            .await
            .unwrap()
            .get(0)
    };
    let registered = generation().await;
    assert!(registered > 0, "registering 1.0.0 moved it");
    f.create_order(json!({"customer": "ACME"})).await;
    assert_eq!(generation().await, registered);

    let registry = f.service.schemas();
    registry
        .register(&order, v("1.0.1"), order_schema(), false)
        .await
        .unwrap();
    let added = generation().await;
    assert!(added > registered);
    registry.activate(&order, v("1.0.1")).await.unwrap();
    let activated = generation().await;
    assert!(activated > added);
    registry.delete(&order, v("1.0.0")).await.unwrap();
    assert!(generation().await > activated);
}

#[tokio::test]
async fn the_commit_statement_is_planned_once_per_connection_not_at_every_commit() {
    let f = Fixture::new().await;
    let mut options = StoreOptions::default();
    options.pool_size = 1;
    let service = f.process_with(options).await;
    let order = id("sales_order");
    for n in 0..10 {
        let mut uow = service.begin("alice").await.unwrap();
        uow.create(
            &order,
            json!({"customer": format!("c{n}")}),
            WriteOptions::default(),
        )
        .await
        .unwrap();
        uow.commit().await.unwrap();
    }
    // PostgreSQL plans a prepared statement for its parameters five times, then keeps a generic
    // plan unless that looks dearer; the one connection ran every commit.
    let mut uow = service.begin("alice").await.unwrap();
    let rows = uow
        .raw()
        .query(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements
             WHERE statement LIKE '%registry_generation%' AND statement LIKE '%units_of_work%'
               AND statement NOT LIKE '%pg_prepared_statements%'",
            &[],
        )
        .await
        .unwrap();
    let plans: Vec<(i64, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        plans,
        [(5, 5)],
        "(generic, custom) plans of the commit stamp"
    );
}
