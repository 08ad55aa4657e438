//! What probes and metrics read from a store: the pool's state and whether the database answers;
//! and how the pool hands out its connections.

use serde_json::json;
use vellum::{Store, StoreOptions};

use crate::{
    fixtures::{Fixture, id},
    support::TestDb,
};

#[tokio::test]
async fn pool_status_counts_connections_in_use() {
    let db = TestDb::new().await;
    let mut options = StoreOptions::default();
    options.pool_size = 3;
    let store = Store::connect(db.config(), options).await.unwrap();
    let idle = store.pool_status();
    assert_eq!(idle.max_size, 3);
    assert_eq!(idle.waiting, 0);
    assert_eq!(idle.available, idle.size, "nothing in use: {idle:?}");

    let name = vellum::ServiceName::new("orders").unwrap();
    store.create_service(&name).await.unwrap();
    let service = store.service(&name).await.unwrap();
    let (a, b) = (
        service.begin("a").await.unwrap(),
        service.begin("b").await.unwrap(),
    );
    let busy = store.pool_status();
    assert_eq!(busy.size - busy.available, 2, "{busy:?}");
    drop((a, b));
    let after = store.pool_status();
    assert_eq!(after.available, after.size, "{after:?}");
    assert_eq!(
        serde_json::to_value(after).unwrap()["max_size"],
        serde_json::json!(3)
    );
}

/// The pool is last in, first out: after a burst opened connections, one client's reads keep to
/// the connection returned last, whose backend is warm, instead of cycling through them all.
#[tokio::test]
async fn reads_after_a_burst_keep_to_the_connection_returned_last() {
    let f = Fixture::new().await;
    let order = f.create_order(json!({"customer": "ACME"})).await;
    let burst = [
        f.service.begin("a").await.unwrap(),
        f.service.begin("b").await.unwrap(),
        f.service.begin("c").await.unwrap(),
    ];
    for uow in burst {
        uow.commit().await.unwrap();
    }
    for _ in 0..6 {
        f.service
            .get(&id("sales_order"), order.entity_id)
            .await
            .unwrap();
    }
    let backends: i64 = f
        .admin()
        .await
        .query_one(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()
               AND query LIKE 'SELECT e.entity_id%THEN e.entity_id END) = $1 AND e.deleted_at IS NULL'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(backends, 1, "backends that ran the latest-version read");
}

#[tokio::test]
async fn ping_answers_while_the_database_does() {
    let f = Fixture::empty().await;
    f.store.ping().await.unwrap();
    let err = {
        // A store whose database is gone: ping reports it instead of hanging or panicking.
        let db = TestDb::new().await;
        let store = Store::connect(db.config(), StoreOptions::default())
            .await
            .unwrap();
        store.ping().await.unwrap();
        drop(db);
        store.ping().await.unwrap_err()
    };
    assert!(
        matches!(err, vellum::Error::Database(_) | vellum::Error::Pool(_)),
        "{err:?}"
    );
}
