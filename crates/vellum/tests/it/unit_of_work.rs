//! Units of work: all or nothing, one commit time, conflicts, rollback, raw SQL, isolation.

use std::time::Duration;

use serde_json::json;
use vellum::{Error, ServiceName, WriteOptions};

use crate::fixtures::{Fixture, id, order_schema, v};

async fn count(f: &Fixture, table: &str) -> i64 {
    let sql = format!("SELECT count(*) FROM orders.{table}");
    f.admin().await.query_one(&sql, &[]).await.unwrap().get(0)
}

/// Waits (up to 5 s) until no session of the test database sits inside a transaction: a unit of
/// work that ended without commit must not leave one behind. Rollback on drop runs on the
/// runtime and a closed connection's backend exits on its own schedule, hence the wait.
async fn assert_no_transaction_left_open(f: &Fixture) {
    let admin = f.admin().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let open: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND state LIKE 'idle in transaction%'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if open == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{open} sessions left in a transaction"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn one_commit_time_and_one_audit_row_for_everything_a_unit_of_work_writes() {
    let f = Fixture::new().await;
    let (order, customer) = (id("sales_order"), id("customer"));
    f.service
        .schemas()
        .register(&customer, v("1.0.0"), json!({"type": "object"}), false)
        .await
        .unwrap();

    let options = vellum::UowOptions::new("alice")
        .correlation_id("req-42")
        .metadata(json!({"ip": "10.0.0.1"}));
    let mut uow = f.service.begin_with(options).await.unwrap();
    let a = uow
        .create(&customer, json!({"name": "ACME"}), WriteOptions::default())
        .await
        .unwrap();
    let b = uow
        .create(&order, json!({"customer": "ACME"}), WriteOptions::default())
        .await
        .unwrap();
    uow.update(
        &order,
        b.entity_id,
        json!({"customer": "ACME", "total": 3}),
        WriteOptions::default(),
    )
    .await
    .unwrap();
    let uow_id = uow.id();
    let committed = uow.commit().await.unwrap();
    assert_eq!(committed.uow_id, uow_id);
    assert_eq!(committed.entities.len(), 3);

    let stored = [
        f.service.get(&customer, a.entity_id).await.unwrap(),
        f.service
            .get_version(&order, b.entity_id, &v("1.0.0"))
            .await
            .unwrap(),
        f.service.get(&order, b.entity_id).await.unwrap(),
    ];
    for entity in &stored {
        assert_eq!(entity.created_at, committed.committed_at);
        assert_eq!(entity.uow_id, uow_id);
    }
    assert_eq!(stored[2].entity_version, v("1.0.1"));

    let row = f
        .admin()
        .await
        .query_one(
            "SELECT actor, correlation_id, committed_at, metadata FROM orders.units_of_work",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "alice");
    assert_eq!(row.get::<_, Option<String>>(1).as_deref(), Some("req-42"));
    assert_eq!(
        row.get::<_, chrono::DateTime<chrono::Utc>>(2),
        committed.committed_at
    );
    assert_eq!(
        row.get::<_, serde_json::Value>(3),
        json!({"ip": "10.0.0.1"})
    );
}

#[tokio::test]
async fn a_conflict_at_commit_leaves_nothing_behind() {
    let f = Fixture::new().await;
    let order = id("sales_order");
    let target = f.create_order(json!({"customer": "a"})).await;

    // Staged against 1.0.0, then someone else writes 1.0.1 before this commits.
    let mut loser = f.service.begin("loser").await.unwrap();
    let side = loser
        .create(
            &order,
            json!({"customer": "side effect"}),
            WriteOptions::default(),
        )
        .await
        .unwrap();
    loser
        .update(
            &order,
            target.entity_id,
            json!({"customer": "loser"}),
            WriteOptions::expect(v("1.0.0")),
        )
        .await
        .unwrap();

    let mut winner = f.service.begin("winner").await.unwrap();
    winner
        .update(
            &order,
            target.entity_id,
            json!({"customer": "winner"}),
            WriteOptions::expect(v("1.0.0")),
        )
        .await
        .unwrap();
    winner.commit().await.unwrap();

    let err = loser.commit().await.unwrap_err();
    assert!(
        matches!(&err, Error::VersionConflict { entity_id, .. } if *entity_id == target.entity_id),
        "{err}"
    );
    assert!(matches!(
        f.service.get(&order, side.entity_id).await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(
        f.service
            .get(&order, target.entity_id)
            .await
            .unwrap()
            .payload["customer"],
        "winner"
    );
    assert_eq!(
        count(&f, "units_of_work").await,
        2,
        "the loser's unit of work is not recorded"
    );
    assert_eq!(count(&f, "sales_order").await, 2);
}

#[tokio::test]
async fn a_stale_expected_version_fails_the_whole_unit_of_work_at_once() {
    let f = Fixture::new().await;
    let order = id("sales_order");
    let target = f.create_order(json!({"customer": "a"})).await;

    let mut uow = f.service.begin("bob").await.unwrap();
    uow.create(&order, json!({"customer": "b"}), WriteOptions::default())
        .await
        .unwrap();
    let err = uow
        .update(
            &order,
            target.entity_id,
            json!({"customer": "x"}),
            WriteOptions::expect(v("1.0.7")),
        )
        .await
        .unwrap_err();
    let Error::VersionConflict {
        expected, found, ..
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!((expected.as_str(), found.as_str()), ("1.0.7", "1.0.0"));
    assert!(matches!(
        uow.commit().await,
        Err(Error::UnitOfWorkFailed { .. })
    ));
    assert_eq!(count(&f, "sales_order").await, 1);
}

#[tokio::test]
async fn two_concurrent_updates_expecting_the_same_version_exactly_one_wins() {
    let f = Fixture::new().await;
    let order = id("sales_order");
    let target = f.create_order(json!({"customer": "a"})).await;

    for round in 0..20 {
        let current = f
            .service
            .get(&order, target.entity_id)
            .await
            .unwrap()
            .entity_version;
        let attempt = |writer: &'static str| {
            let service = f.service.clone();
            let order = order.clone();
            tokio::spawn(async move {
                let mut uow = service.begin(writer).await?;
                uow.create(
                    &order,
                    json!({"customer": format!("{writer} extra")}),
                    WriteOptions::default(),
                )
                .await?;
                uow.update(
                    &order,
                    target.entity_id,
                    json!({"customer": writer}),
                    WriteOptions::expect(current),
                )
                .await?;
                uow.commit().await
            })
        };
        let (a, b) = tokio::join!(attempt("a"), attempt("b"));
        let outcomes = [a.unwrap(), b.unwrap()];
        let winners: Vec<_> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1, "round {round}: {outcomes:?}");
        let loser = outcomes.iter().find_map(|o| o.as_ref().err()).unwrap();
        assert!(
            matches!(loser, Error::VersionConflict { .. }),
            "round {round}: {loser}"
        );
        let now = f.service.get(&order, target.entity_id).await.unwrap();
        assert_eq!(now.entity_version, current.next_patch());
        assert_eq!(now.uow_id, winners[0].uow_id);
    }
    // Each round wrote exactly the winner's two rows.
    assert_eq!(count(&f, "sales_order").await, 1 + 20 * 2);
    assert_eq!(count(&f, "units_of_work").await, 1 + 20);
}

#[tokio::test]
async fn of_two_deletes_expecting_the_same_version_the_second_to_commit_conflicts() {
    let f = Fixture::new().await;
    let order = id("sales_order");
    // The delete as the only write of its unit of work, then after another write.
    for create_first in [false, true] {
        let target = f.create_order(json!({"customer": "a"})).await;
        let expected = Some(target.entity_version);
        let mut first = f.service.begin("a").await.unwrap();
        first
            .delete(&order, target.entity_id, expected)
            .await
            .unwrap();
        let mut second = f.service.begin("b").await.unwrap();
        if create_first {
            second
                .create(&order, json!({"customer": "b"}), WriteOptions::default())
                .await
                .unwrap();
        }
        second
            .delete(&order, target.entity_id, expected)
            .await
            .unwrap();
        let deleted = first.commit().await.unwrap();
        let err = second.commit().await.unwrap_err();
        assert!(
            matches!(err, Error::VersionConflict { .. }),
            "create first: {create_first}: {err}"
        );
        let history = f.service.history(&order, target.entity_id).await.unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(
            history[0].entity.deleted_at,
            Some(deleted.committed_at),
            "the first delete stands"
        );
    }
    // Two creates and two units of work that deleted: the losers wrote nothing.
    assert_eq!(count(&f, "sales_order").await, 2);
    assert_eq!(count(&f, "units_of_work").await, 4);
}

#[tokio::test]
async fn updates_without_an_expected_version_queue_and_lose_nothing() {
    let f = Fixture::new().await;
    let order = id("sales_order");
    let mut uow = f.service.begin("alice").await.unwrap();
    let target = uow
        .create(
            &order,
            json!({"customer": "a", "total": 0}),
            WriteOptions::default(),
        )
        .await
        .unwrap();
    uow.commit().await.unwrap();

    // Eight writers without an expected version: each staging read locks the entity until its
    // unit of work commits, so every write becomes the next version and none sees a conflict.
    let tasks: Vec<_> = (0..8)
        .map(|n| {
            let service = f.service.clone();
            let order = order.clone();
            tokio::spawn(async move {
                for round in 0..5 {
                    let mut uow = service.begin(format!("w{n}")).await.unwrap();
                    let payload = json!({"customer": "a", "total": n * 10 + round});
                    uow.update(&order, target.entity_id, payload, WriteOptions::default())
                        .await
                        .unwrap();
                    uow.commit().await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let history = f.service.history(&order, target.entity_id).await.unwrap();
    assert_eq!(history.len(), 41);
    let versions: Vec<String> = history
        .iter()
        .map(|h| h.entity.entity_version.to_string())
        .collect();
    let expected: Vec<String> = (0..=40).map(|p| format!("1.0.{p}")).collect();
    assert_eq!(
        versions, expected,
        "every write became the next version, none lost"
    );
}

#[tokio::test]
async fn dropping_a_unit_of_work_rolls_back_even_its_raw_sql() {
    let f = Fixture::new().await;
    let order = id("sales_order");
    {
        let mut uow = f.service.begin("alice").await.unwrap();
        uow.create(&order, json!({"customer": "a"}), WriteOptions::default())
            .await
            .unwrap();
        let rows = uow
            .raw()
            .query("SELECT count(*) FROM orders.sales_order", &[])
            .await
            .unwrap();
        assert_eq!(
            rows[0].get::<_, i64>(0),
            0,
            "staged writes are flushed at commit"
        );
        uow.raw()
            .execute(
                "INSERT INTO orders.units_of_work (uow_id, actor, committed_at) VALUES ($1, 'raw', now())",
                &[&uuid::Uuid::now_v7()],
            )
            .await
            .unwrap();
    }
    // The rollback of a dropped unit of work runs on the runtime, after the drop.
    assert_no_transaction_left_open(&f).await;
    assert_eq!(count(&f, "units_of_work").await, 0);
    assert_eq!(count(&f, "sales_order").await, 0);
}

#[tokio::test]
async fn the_database_refuses_to_rewrite_or_delete_entity_versions() {
    let f = Fixture::new().await;
    let order = id("sales_order");
    let mut uow = f.service.begin("alice").await.unwrap();
    uow.create(&order, json!({"customer": "a"}), WriteOptions::default())
        .await
        .unwrap();
    uow.commit().await.unwrap();

    let admin = f.admin().await;
    for sql in [
        "UPDATE orders.sales_order SET payload = '{\"customer\": \"forged\"}'",
        "UPDATE orders.sales_order SET created_at = now() - interval '1 year'",
        "UPDATE orders.sales_order SET entity_version = '9.9.9'",
        "DELETE FROM orders.sales_order",
        "TRUNCATE orders.sales_order",
        "UPDATE orders.units_of_work SET actor = 'someone else'",
        "DELETE FROM orders.units_of_work",
    ] {
        let err = admin.batch_execute(sql).await.unwrap_err();
        assert_eq!(err.code().map(|c| c.code()), Some("VL001"), "{sql}: {err}");
    }
    // Raw SQL through a unit of work runs under the service role: it has no privilege on the
    // data columns nor to delete, and the guards refuse illegal moves of the lifecycle columns.
    for sql in [
        "UPDATE orders.sales_order SET payload = '{}'",
        "DELETE FROM orders.sales_order",
    ] {
        let mut uow = f.service.begin("mallory").await.unwrap();
        let err = uow.raw().execute(sql, &[]).await.unwrap_err();
        assert!(
            err.to_string().contains("permission denied"),
            "{sql}: {err}"
        );
    }
    let mut uow = f.service.begin("mallory").await.unwrap();
    let err = uow
        .raw()
        .execute(
            "UPDATE orders.sales_order SET updated_at = updated_at - interval '1 day'",
            &[],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Immutable(m) if m.contains("backwards")),
        "{err}"
    );
    drop(uow);
    // Nor forwards on the current version: it has not changed state since it was written.
    let mut uow = f.service.begin("mallory").await.unwrap();
    let err = uow
        .raw()
        .execute(
            "UPDATE orders.sales_order SET updated_at = updated_at + interval '1 day'",
            &[],
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("current_updated_at_is_created_at"),
        "{err}"
    );
    drop(uow);
    assert_eq!(count(&f, "sales_order").await, 1);
}

#[tokio::test]
async fn a_service_cannot_reach_another_services_tables() {
    let f = Fixture::new().await;
    let billing = ServiceName::new("billing").unwrap();
    f.store.create_service(&billing).await.unwrap();
    let billing = f.store.service(&billing).await.unwrap();
    billing
        .schemas()
        .register(&id("invoice"), v("1.0.0"), order_schema(), false)
        .await
        .unwrap();

    let mut uow = f.service.begin("orders-job").await.unwrap();
    let err = uow
        .raw()
        .query("SELECT * FROM billing.invoice", &[])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("permission denied"), "{err}");
    let mut uow = billing.begin("billing-job").await.unwrap();
    let rows = uow
        .raw()
        .query("SELECT count(*) FROM billing.invoice", &[])
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, i64>(0), 0);

    let names: Vec<String> = f
        .store
        .services()
        .await
        .unwrap()
        .iter()
        .map(|s| s.name.to_string())
        .collect();
    assert_eq!(names, ["billing", "orders"]);
    let again = f
        .store
        .create_service(&ServiceName::new("orders").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(again, Error::AlreadyExists { .. }), "{again}");
}

#[tokio::test]
async fn malformed_names_versions_and_actors_are_refused_with_a_clear_message() {
    for bad in [
        "Orders",
        "9lives",
        "has-dash",
        "public",
        "vellum",
        "pg_catalog",
        "",
    ] {
        let err = ServiceName::new(bad).unwrap_err().to_string();
        assert!(err.contains("invalid service name"), "{bad}: {err}");
    }
    for bad in ["1.0", "01.0.0", "1.0.0-beta", "v1.0.0", "1.0.0.0"] {
        let err = bad.parse::<vellum::Version>().unwrap_err().to_string();
        assert!(err.contains("invalid version"), "{bad}: {err}");
    }
    let f = Fixture::new().await;
    let err = f.service.begin("  ").await.unwrap_err();
    assert!(err.to_string().contains("needs an actor"), "{err}");
    let err = f
        .store
        .service(&ServiceName::new("nobody").unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::NotFound { what } if what == "service nobody"),
        "{err}"
    );
}

#[tokio::test]
async fn not_finding_an_entity_leaves_the_unit_of_work_usable() {
    let f = Fixture::new().await;
    let order = id("sales_order");
    let entity_id = uuid::Uuid::now_v7();
    let mut uow = f.service.begin("alice").await.unwrap();
    let missing = uow.get(&order, entity_id).await.unwrap_err();
    assert!(matches!(missing, Error::NotFound { .. }), "{missing}");
    uow.create(
        &order,
        json!({"customer": "a"}),
        WriteOptions::with_id(entity_id),
    )
    .await
    .unwrap();
    uow.commit().await.unwrap();
    assert_eq!(
        f.service.get(&order, entity_id).await.unwrap().payload["customer"],
        "a"
    );
}

#[tokio::test]
async fn a_commit_cancelled_mid_flight_writes_all_or_nothing_and_leaks_no_transaction() {
    let f = Fixture::new().await;
    let order = id("sales_order");
    for round in 0..10 {
        let mut uow = f.service.begin("alice").await.unwrap();
        for n in 0..5 {
            let payload = json!({"customer": format!("r{round}-{n}")});
            uow.create(&order, payload, WriteOptions::default())
                .await
                .unwrap();
        }
        // A zero timeout polls the commit once (sending the whole pipeline) and then drops it.
        let outcome = tokio::time::timeout(Duration::ZERO, uow.commit()).await;
        assert!(
            outcome.is_err(),
            "the commit cannot have finished without waiting"
        );
    }
    let admin = f.admin().await;
    // Every cancelled commit either landed whole or not at all.
    let rows = admin
        .query(
            "SELECT uow_id, count(*) FROM orders.sales_order GROUP BY uow_id",
            &[],
        )
        .await
        .unwrap();
    for row in &rows {
        assert_eq!(row.get::<_, i64>(1), 5, "a unit of work landed in part");
    }
    assert_eq!(count(&f, "units_of_work").await, rows.len() as i64);
    // The store keeps working, and no connection was handed back inside a transaction.
    let mut uow = f.service.begin("bob").await.unwrap();
    uow.create(
        &order,
        json!({"customer": "after"}),
        WriteOptions::default(),
    )
    .await
    .unwrap();
    uow.commit().await.unwrap();
    assert_no_transaction_left_open(&f).await;
}
