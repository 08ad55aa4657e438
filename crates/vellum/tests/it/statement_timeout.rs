//! `StoreOptions::statement_timeout`: a statement that runs too long fails with
//! `Error::Timeout`, wherever it runs, and normal work is unaffected.

use std::time::Duration;

use serde_json::json;
use vellum::{Error, WriteOptions};

use crate::fixtures::{Fixture, id, order_schema, v};

/// The fixture's service in a second process whose statements may run for 50 ms.
async fn impatient(f: &Fixture) -> vellum::Service {
    f.impatient_process(Duration::from_millis(50)).await
}

#[tokio::test]
async fn a_slow_raw_statement_times_out_and_fails_its_unit_of_work() {
    let f = Fixture::new().await;
    let service = impatient(&f).await;
    let order = id("sales_order");

    let mut uow = service.begin("alice").await.unwrap();
    let staged = uow
        .create(&order, json!({"customer": "a"}), WriteOptions::default())
        .await
        .unwrap();
    let err = uow
        .raw()
        .execute("SELECT pg_sleep(1)", &[])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the statement took longer than the configured statement timeout"
    );
    let err = uow.commit().await.unwrap_err();
    assert!(matches!(err, Error::UnitOfWorkFailed { .. }), "{err:?}");
    let err = f.service.get(&order, staged.entity_id).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");

    // Normal work fits in the timeout, which is the one vellum set for the transaction.
    let mut uow = service.begin("alice").await.unwrap();
    let shown: String = uow
        .raw()
        .query("SHOW statement_timeout", &[])
        .await
        .unwrap()[0]
        .get(0);
    assert_eq!(shown, "50ms");
    let staged = uow
        .create(&order, json!({"customer": "b"}), WriteOptions::default())
        .await
        .unwrap();
    uow.commit().await.unwrap();
    let stored = service.get(&order, staged.entity_id).await.unwrap();
    assert_eq!(stored.payload, json!({"customer": "b"}));
}

#[tokio::test]
async fn without_the_option_no_timeout_is_set() {
    let f = Fixture::new().await;
    let mut uow = f.service.begin("alice").await.unwrap();
    let shown: String = uow
        .raw()
        .query("SHOW statement_timeout", &[])
        .await
        .unwrap()[0]
        .get(0);
    assert_eq!(shown, "0");
}

#[tokio::test]
async fn a_read_waiting_too_long_times_out() {
    let f = Fixture::new().await;
    let service = impatient(&f).await;
    let order = id("sales_order");
    let mut uow = service.begin("alice").await.unwrap();
    let staged = uow
        .create(&order, json!({"customer": "a"}), WriteOptions::default())
        .await
        .unwrap();
    let committed = uow.commit().await.unwrap();

    // A writer between its commit stamp and its commit: a final as-of read waits for it, here
    // longer than the timeout allows.
    let writer = f.stamped_writer().await;
    let err = service
        .get_as_of(&order, staged.entity_id, committed.committed_at)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout), "{err:?}");
    writer
        .batch_execute("SELECT pg_advisory_unlock_all()")
        .await
        .unwrap();
    let entity = service
        .get_as_of(&order, staged.entity_id, committed.committed_at)
        .await
        .unwrap();
    assert_eq!(entity.entity_id, staged.entity_id);
}

#[tokio::test]
async fn a_schema_change_waiting_too_long_times_out() {
    let f = Fixture::new().await;
    let service = impatient(&f).await;
    let order = id("sales_order");

    // Another registry change of the same schema id holds its lock.
    let admin = f.admin().await;
    admin
        .execute(
            "SELECT pg_advisory_lock(hashtextextended('vellum:schema:orders/sales_order', 0))",
            &[],
        )
        .await
        .unwrap();
    let err = service
        .schemas()
        .register(&order, v("1.1.0"), order_schema(), true)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout), "{err:?}");
    admin
        .batch_execute("SELECT pg_advisory_unlock_all()")
        .await
        .unwrap();
    service
        .schemas()
        .register(&order, v("1.1.0"), order_schema(), true)
        .await
        .unwrap();
}
