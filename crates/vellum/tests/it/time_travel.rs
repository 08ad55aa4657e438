//! As-of reads: the state at any past time, and repeatable once that time has passed.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::sync::Mutex;
use vellum::{Error, WriteOptions, query::Query};

use crate::fixtures::{Fixture, id};

#[tokio::test]
async fn as_of_reads_before_creation_between_versions_and_after_deletion() {
    let f = Fixture::new().await;
    let order = id("sales_order");
    let before = Utc::now();

    let mut uow = f.service.begin("alice").await.unwrap();
    let created = uow
        .create(&order, json!({"customer": "v1"}), WriteOptions::default())
        .await
        .unwrap();
    let t1 = uow.commit().await.unwrap().committed_at;
    let entity_id = created.entity_id;
    let mut uow = f.service.begin("alice").await.unwrap();
    uow.update(
        &order,
        entity_id,
        json!({"customer": "v2"}),
        WriteOptions::default(),
    )
    .await
    .unwrap();
    let t2 = uow.commit().await.unwrap().committed_at;
    let mut uow = f.service.begin("alice").await.unwrap();
    uow.delete(&order, entity_id, None).await.unwrap();
    let t3 = uow.commit().await.unwrap().committed_at;
    let mut uow = f.service.begin("alice").await.unwrap();
    uow.undelete(&order, entity_id).await.unwrap();
    let t4 = uow.commit().await.unwrap().committed_at;
    assert!(before < t1 && t1 < t2 && t2 < t3 && t3 < t4);

    let at = async |t: DateTime<Utc>| match f.service.get_as_of(&order, entity_id, t).await {
        Ok(entity) => Some((
            entity.entity_version.to_string(),
            entity.payload["customer"].clone(),
        )),
        Err(Error::NotFound { .. }) => None,
        Err(err) => panic!("{err}"),
    };
    let micro = chrono::Duration::microseconds(1);
    assert_eq!(at(before).await, None, "before creation");
    assert_eq!(at(t1 - micro).await, None);
    assert_eq!(
        at(t1).await,
        Some(("1.0.0".into(), json!("v1"))),
        "at the commit time itself"
    );
    assert_eq!(at(t2 - micro).await, Some(("1.0.0".into(), json!("v1"))));
    assert_eq!(at(t2).await, Some(("1.0.1".into(), json!("v2"))));
    assert_eq!(
        at(t3 - micro).await,
        Some(("1.0.1".into(), json!("v2"))),
        "just before deletion"
    );
    assert_eq!(at(t3).await, None, "deleted at t3");
    assert_eq!(at(t4 - micro).await, None, "still deleted");
    assert_eq!(
        at(t4).await,
        Some(("1.0.2".into(), json!("v2"))),
        "undeleted"
    );
    assert_eq!(at(Utc::now()).await, Some(("1.0.2".into(), json!("v2"))));
}

#[tokio::test]
async fn an_as_of_read_never_changes_once_its_time_has_passed_under_concurrent_writers() {
    let f = Fixture::new().await;
    let order = id("sales_order");
    let mut uow = f.service.begin("seed").await.unwrap();
    let mut ids = Vec::new();
    for n in 0..4 {
        ids.push(
            uow.create(
                &order,
                json!({"customer": format!("c{n}")}),
                WriteOptions::default(),
            )
            .await
            .unwrap()
            .entity_id,
        );
    }
    uow.commit().await.unwrap();

    // Writers keep updating every entity; each unit of work updates all four, so a torn read
    // would also show up as entities at different generations.
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let service = f.service.clone();
            let (order, ids) = (order.clone(), ids.clone());
            tokio::spawn(async move {
                for n in 0..30 {
                    let mut uow = service.begin(format!("writer{w}")).await.unwrap();
                    for entity_id in &ids {
                        uow.update(
                            &order,
                            *entity_id,
                            json!({"customer": format!("w{w}-{n}")}),
                            WriteOptions::default(),
                        )
                        .await
                        .unwrap();
                    }
                    uow.commit().await.unwrap();
                }
            })
        })
        .collect();

    // Readers read as of "now" while the writers run, and record what they saw.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let service = f.service.clone();
            let (order, ids, seen) = (order.clone(), ids.clone(), seen.clone());
            tokio::spawn(async move {
                for _ in 0..40 {
                    let t = Utc::now();
                    let mut versions = Vec::new();
                    for entity_id in &ids {
                        versions.push(
                            service
                                .get_as_of(&order, *entity_id, t)
                                .await
                                .unwrap()
                                .revision,
                        );
                    }
                    seen.lock().await.push((t, versions));
                }
            })
        })
        .collect();
    for task in writers.into_iter().chain(readers) {
        task.await.unwrap();
    }

    let seen = seen.lock().await;
    assert_eq!(seen.len(), 80);
    for (t, versions) in seen.iter() {
        let mut again = Vec::new();
        for entity_id in &ids {
            again.push(
                f.service
                    .get_as_of(&order, *entity_id, *t)
                    .await
                    .unwrap()
                    .revision,
            );
        }
        assert_eq!(
            &again, versions,
            "as of {t}: the read changed after the fact"
        );
        assert!(
            versions.iter().all(|r| *r == versions[0]),
            "as of {t}: torn read {versions:?}"
        );
    }
}

#[tokio::test]
async fn reads_as_of_a_settled_time_do_not_wait_for_writers_and_later_ones_do() {
    let f = Fixture::new().await;
    let order = id("sales_order");
    // Another process whose statements may run for a second: a read that waits for a writer
    // fails with a timeout instead of hanging.
    let service = f.impatient_process(Duration::from_secs(1)).await;
    let entity_id = f.create_order(json!({"customer": "a"})).await.entity_id;
    let admin = f.admin().await;
    let server_now = async || -> DateTime<Utc> {
        admin
            .query_one("SELECT clock_timestamp()", &[])
            .await
            .unwrap()
            .get(0)
    };
    let read_as_of = async |t: DateTime<Utc>| {
        let got = service.get_as_of(&order, entity_id, t).await;
        let query: Query = serde_json::from_value(json!({"as_of": t})).unwrap();
        let page = service.query(&order, &query).await;
        (got.map(|e| e.revision), page.map(|p| p.items.len()))
    };

    // The first read of a past time takes the barrier, which settles every earlier time.
    let t = server_now().await;
    assert!(matches!(read_as_of(t).await, (Ok(1), Ok(1))));
    // So does the barrier of an as-of query, in a process that has only queried.
    let querier = f.impatient_process(Duration::from_secs(1)).await;
    let query: Query = serde_json::from_value(json!({"as_of": t})).unwrap();
    assert_eq!(querier.query(&order, &query).await.unwrap().items.len(), 1);
    let later = server_now().await;

    // A writer between its commit stamp and its commit.
    let writer = f.stamped_writer().await;
    // The settled time is read at once, by id and by query: no unit of work can still commit
    // at or before it.
    assert!(matches!(read_as_of(t).await, (Ok(1), Ok(1))));
    let settled_by_query = querier.get_as_of(&order, entity_id, t).await;
    assert!(
        matches!(&settled_by_query, Ok(e) if e.revision == 1),
        "{settled_by_query:?}"
    );
    // A later time waits for the writer, by id and by query.
    let (got, page) = read_as_of(later).await;
    assert!(matches!(got, Err(Error::Timeout)), "{got:?}");
    assert!(matches!(page, Err(Error::Timeout)), "{page:?}");

    writer
        .batch_execute("SELECT pg_advisory_unlock_all()")
        .await
        .unwrap();
    assert!(matches!(read_as_of(later).await, (Ok(1), Ok(1))));
}

#[tokio::test]
async fn entity_types_of_a_service_provisioned_before_the_as_of_readers_get_them_on_connect() {
    let f = Fixture::new().await;
    let order = id("sales_order");
    let staged = f.create_order(json!({"customer": "ACME"})).await;
    let now = Utc::now();
    // What an entity type of service DDL version 2 looks like: no as-of reader.
    f.admin()
        .await
        .batch_execute(
            "DROP FUNCTION orders.sales_order_as_of;
             DROP TRIGGER schemas_registry_generation ON orders.schemas;
             ALTER TABLE orders.event_settings DROP COLUMN registry_generation;
             UPDATE vellum.services SET ddl_version = 2 WHERE name = 'orders'",
        )
        .await
        .unwrap();
    let stale = f.service.get_as_of(&order, staged.entity_id, now).await;
    assert!(matches!(stale, Err(Error::NotFound { .. })), "{stale:?}");

    let upgraded = f.other_process().await;
    let read = upgraded
        .get_as_of(&order, staged.entity_id, now)
        .await
        .unwrap();
    assert_eq!(read.payload["customer"], "ACME");
    assert_eq!(
        f.service
            .get_as_of(&order, staged.entity_id, now)
            .await
            .unwrap()
            .entity_id,
        staged.entity_id
    );
}

#[tokio::test]
async fn an_as_of_query_sees_what_committed_while_it_waited_whatever_the_default_isolation() {
    let f = Fixture::new().await;
    let order = id("sales_order");
    let first = f.create_order(json!({"customer": "a"})).await;
    // Sessions start in repeatable read, where a transaction keeps its first snapshot.
    let admin = f.admin().await;
    admin
        .batch_execute(
            "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET default_transaction_isolation = \
             ''repeatable read''', current_database()); END $$",
        )
        .await
        .unwrap();
    let reader = f.other_process().await;
    // A unit of work by hand, between its commit stamp and its commit: every slot held as a
    // writer holds them, the unit-of-work row stamped, a version written.
    let slots = f.stamped_writer().await;
    let mut writer = f.admin().await;
    let tx = writer.transaction().await.unwrap();
    tx.batch_execute(
        "INSERT INTO orders.units_of_work (uow_id, actor, committed_at)
         VALUES ('00000000-0000-7000-8000-000000000001', 'by hand', clock_timestamp());
         INSERT INTO orders.sales_order (entity_id, revision, entity_version, schema_id,
                                         schema_version, payload, created_at, updated_at, uow_id)
         SELECT '00000000-0000-7000-8000-000000000002', 1, '1.0.0', 'sales_order', '1.0.0',
                '{\"customer\": \"b\"}', committed_at, committed_at, uow_id
         FROM orders.units_of_work WHERE actor = 'by hand'",
    )
    .await
    .unwrap();
    let stamped: DateTime<Utc> = tx
        .query_one(
            "SELECT committed_at FROM orders.units_of_work WHERE actor = 'by hand'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    // A query as of a time after that stamp waits for the writer at the barrier.
    let query: Query = serde_json::from_value(json!({"as_of": stamped})).unwrap();
    let waiting = tokio::spawn({
        let order = order.clone();
        async move { reader.query(&order, &query).await }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the query never waited at the barrier"
        );
        let blocked: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
                 WHERE l.locktype = 'advisory' AND NOT l.granted
                   AND d.datname = current_database()",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if blocked > 0 {
            break;
        }
        tokio::task::yield_now().await;
    }
    tx.commit().await.unwrap();
    slots
        .batch_execute("SELECT pg_advisory_unlock_all()")
        .await
        .unwrap();
    // Stamped at or before the time asked for, committed before the barrier was passed: the
    // query sees it, as every later read of that time does.
    let page = waiting.await.unwrap().unwrap();
    let mut ids: Vec<_> = page.items.iter().map(|e| e.entity_id.to_string()).collect();
    ids.sort();
    let mut expected = [
        first.entity_id.to_string(),
        "00000000-0000-7000-8000-000000000002".to_string(),
    ];
    expected.sort();
    assert_eq!(ids, expected);
}
