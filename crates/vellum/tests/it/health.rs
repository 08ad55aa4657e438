//! What probes and metrics read from a store: the pool's state and whether the database answers.

use vellum::{Store, StoreOptions};

use crate::{fixtures::Fixture, support::TestDb};

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
