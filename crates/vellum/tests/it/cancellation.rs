//! Futures dropped in the middle of a transaction (a client gone, a request timed out) leave no
//! pooled connection inside that transaction, under a service role; and a pooled session that a
//! service's reads left under its role serves every other use under the role that use needs.

use futures_util::FutureExt;
use serde_json::json;
use vellum::{ServiceName, Store, StoreOptions, WriteOptions};

use crate::fixtures::{Fixture, id, v};

/// A store with a single pooled connection, so the next operation gets the very connection the
/// cancelled one used.
async fn one_connection(f: &Fixture) -> (Store, vellum::Service) {
    let mut options = StoreOptions::default();
    options.pool_size = 1;
    let store = Store::connect(f.db.config(), options).await.unwrap();
    let service = store
        .service(&ServiceName::new("orders").unwrap())
        .await
        .unwrap();
    (store, service)
}

/// Polls `future` once (far enough to send its first statements) and drops it.
fn cancel_after_first_poll<F: std::future::Future>(future: F) {
    let polled_once = future.now_or_never();
    assert!(
        polled_once.is_none(),
        "the operation was expected to be in flight"
    );
}

/// No session of the database is left inside a transaction.
async fn nothing_idle_in_transaction(f: &Fixture) {
    let admin = f.admin().await;
    let idle: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND state LIKE 'idle in transaction%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        idle, 0,
        "a pooled connection was left inside its transaction"
    );
}

/// What only vellum's own role may do: list services (the service roles cannot read them).
async fn owner_works(store: &Store) {
    let services = store.services().await.expect("the connection is clean");
    assert!(!services.is_empty());
}

#[tokio::test]
async fn a_cancelled_read_does_not_leak_its_transaction() {
    let f = Fixture::new().await;
    let staged = f.create_order(json!({"customer": "ACME"})).await;
    let (store, service) = one_connection(&f).await;
    let order = id("sales_order");
    // Once for the statement cache, so the cancelled call gets as far as its BEGIN.
    service.get(&order, staged.entity_id).await.unwrap();
    for _ in 0..5 {
        cancel_after_first_poll(service.get(&order, staged.entity_id));
        nothing_idle_in_transaction(&f).await;
        owner_works(&store).await;
        assert_eq!(
            service
                .get(&order, staged.entity_id)
                .await
                .unwrap()
                .entity_id,
            staged.entity_id
        );
    }
}

#[tokio::test]
async fn a_unit_of_work_dropped_in_its_first_statement_rolls_back() {
    let f = Fixture::new().await;
    let staged = f.create_order(json!({"customer": "ACME"})).await;
    let (store, service) = one_connection(&f).await;
    let order = id("sales_order");
    // Once in full for the statement cache, so the cancelled reads get as far as their BEGIN.
    let mut uow = service.begin("alice").await.unwrap();
    uow.get(&order, staged.entity_id).await.unwrap();
    uow.rollback().await.unwrap();
    for _ in 0..5 {
        let mut uow = service.begin("alice").await.unwrap();
        // The first read sends BEGIN and SET LOCAL ROLE with it.
        cancel_after_first_poll(uow.get(&order, staged.entity_id));
        drop(uow);
        // The rollback of a dropped unit of work runs on its own task: wait for it.
        tokio::task::yield_now().await;
        owner_works(&store).await;
        nothing_idle_in_transaction(&f).await;
    }
    let mut uow = service.begin("alice").await.unwrap();
    uow.update(
        &order,
        staged.entity_id,
        json!({"customer": "ACME", "total": 3}),
        WriteOptions::expect(v("1.0.0")),
    )
    .await
    .unwrap();
    uow.commit().await.unwrap();
}

#[tokio::test]
async fn one_connection_serves_two_services_and_the_owner_in_turn() {
    let f = Fixture::new().await;
    let order = id("sales_order");
    let billing = ServiceName::new("billing").unwrap();
    f.store.create_service(&billing).await.unwrap();
    let invoices = f.store.service(&billing).await.unwrap();
    invoices
        .schemas()
        .register(&order, v("1.0.0"), crate::fixtures::order_schema(), false)
        .await
        .unwrap();
    let mut uow = invoices.begin("bob").await.unwrap();
    let invoice = uow
        .create(
            &order,
            json!({"customer": "Initech"}),
            WriteOptions::default(),
        )
        .await
        .unwrap();
    uow.commit().await.unwrap();
    let staged = f.create_order(json!({"customer": "ACME"})).await;

    let (store, orders) = one_connection(&f).await;
    let invoices = store.service(&billing).await.unwrap();
    for _ in 0..3 {
        // Each service reads its own table; under the other's role it would be refused.
        let read = orders.get(&order, staged.entity_id).await.unwrap();
        assert_eq!(read.payload["customer"], "ACME");
        let read = invoices.get(&order, invoice.entity_id).await.unwrap();
        assert_eq!(read.payload["customer"], "Initech");
        // A unit of work after a read runs under its own service's role.
        let mut uow = orders.begin("alice").await.unwrap();
        let current = uow.get(&order, staged.entity_id).await.unwrap();
        uow.update(
            &order,
            staged.entity_id,
            json!({"customer": "ACME", "total": current.revision}),
            WriteOptions::expect(current.entity_version),
        )
        .await
        .unwrap();
        uow.commit().await.unwrap();
        // The owner's work (reading the service registry, which no service role may) after a
        // service read.
        invoices.get(&order, invoice.entity_id).await.unwrap();
        owner_works(&store).await;
    }
    let history = orders.history(&order, staged.entity_id).await.unwrap();
    assert_eq!(history.len(), 4);
}

#[tokio::test]
async fn a_cancelled_as_of_read_releases_its_barrier() {
    let f = Fixture::new().await;
    let staged = f.create_order(json!({"customer": "ACME"})).await;
    let (_store, service) = one_connection(&f).await;
    let order = id("sales_order");
    let now = chrono::Utc::now();
    // Once in full, so the cancelled calls find their session set and statements prepared and
    // send their barrier on the first poll.
    service
        .get_as_of(&order, staged.entity_id, now)
        .await
        .unwrap();
    for _ in 0..5 {
        cancel_after_first_poll(service.get_as_of(&order, staged.entity_id, now));
        // The next read on the one connection is answered after everything sent before it.
        service.get(&order, staged.entity_id).await.unwrap();
        let held: i64 = f
            .admin()
            .await
            .query_one(
                "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
                 WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(held, 0, "a cancelled as-of read left its barrier lock held");
        // Writers stamp past the barrier.
        f.create_order(json!({"customer": "Initech"})).await;
    }
}

/// `current_user`, the isolation level and `statement_timeout` inside a unit of work, by raw
/// SQL.
async fn session_of(service: &vellum::Service) -> [String; 3] {
    let mut uow = service.begin("alice").await.unwrap();
    let row = uow
        .raw()
        .query(
            "SELECT current_user::text, current_setting('transaction_isolation'),
                    current_setting('statement_timeout')",
            &[],
        )
        .await
        .unwrap();
    uow.rollback().await.unwrap();
    [0, 1, 2].map(|i| row[0].get(i))
}

#[tokio::test]
async fn a_unit_of_work_runs_under_its_service_whatever_the_one_before_left_on_the_session() {
    let f = Fixture::new().await;
    let order = id("sales_order");
    // Sessions start under another isolation level: units of work run in `READ COMMITTED`
    // whatever the database's default.
    f.admin()
        .await
        .batch_execute(
            "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET default_transaction_isolation = \
             serializable', current_database()); END $$",
        )
        .await
        .unwrap();
    let (store, service) = one_connection(&f).await;
    let expected = ["vellum_svc_orders", "read committed", "0"].map(String::from);
    // A committed unit of work leaves the session under the service; the next one finds it so.
    let mut uow = service.begin("alice").await.unwrap();
    let first = uow
        .create(&order, json!({"customer": "ACME"}), WriteOptions::default())
        .await
        .unwrap();
    uow.commit().await.unwrap();
    assert_eq!(session_of(&service).await, expected);
    // The owner's request takes the session back to the login role.
    owner_works(&store).await;
    // A unit of work that sets the service's settings and fails at commit (an entity id
    // taken) leaves none of them behind.
    let mut taken = service.begin("alice").await.unwrap();
    taken
        .create(
            &order,
            json!({"customer": "Initech"}),
            WriteOptions::with_id(first.entity_id),
        )
        .await
        .unwrap();
    assert!(matches!(
        taken.commit().await,
        Err(vellum::Error::AlreadyExists { .. })
    ));
    assert_eq!(session_of(&service).await, expected);
    // Raw SQL that changes the session's settings and commits: the next unit of work, read and
    // owner's request get the settings they ask for, not those.
    let mut uow = service.begin("alice").await.unwrap();
    uow.raw()
        .execute("SET statement_timeout = '123s'", &[])
        .await
        .unwrap();
    uow.commit().await.unwrap();
    assert_eq!(session_of(&service).await, expected);
    let mut uow = service.begin("alice").await.unwrap();
    uow.raw().execute("RESET ROLE", &[]).await.unwrap();
    uow.commit().await.unwrap();
    assert_eq!(
        service.get(&order, first.entity_id).await.unwrap().payload,
        json!({"customer": "ACME"})
    );
    assert_eq!(session_of(&service).await, expected);
    owner_works(&store).await;
}
