//! The eager migration job: every entity brought to the new major version, online, resumable.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::{Value, json};
use uuid::Uuid;
use vellum::{Migration, MigrationJobOptions, UowOptions, WriteOptions};

use crate::fixtures::{Fixture, id, v};

const ENTITIES: usize = 10_000;

fn v1() -> Value {
    json!({"type": "object", "additionalProperties": false, "required": ["customer", "status"],
           "properties": {"customer": {"type": "string"}, "status": {"enum": ["open", "done", "odd"]},
                          "n": {"type": "integer"}}})
}

fn v2() -> Value {
    json!({"type": "object", "additionalProperties": false,
           "required": ["buyer", "currency", "status"],
           "properties": {"buyer": {"type": "string"}, "currency": {"enum": ["EUR", "USD"]},
                          "status": {"enum": ["OPEN", "CLOSED"]}, "n": {"type": "integer"}}})
}

fn to_v2() -> Migration {
    serde_json::from_value(json!({"from": "1.0.0", "operations": [
        {"op": "rename", "from": "/customer", "to": "/buyer"},
        {"op": "add", "path": "/currency", "value": "EUR"},
        {"op": "map", "path": "/status", "values": {"open": "OPEN", "done": "CLOSED"}}
    ]}))
    .unwrap()
}

/// `count` orders under 1.0.0; 2.0.0 registered with its migration; then `odd` more orders
/// under 1.0.0 with a status the migration cannot map; then 2.0.0 activated.
async fn fixture(count: usize, odd: usize) -> Fixture {
    let f = Fixture::empty().await;
    let registry = f.service.schemas();
    let order = id("order");
    registry
        .register(&order, v("1.0.0"), v1(), false)
        .await
        .unwrap();
    let import = |documents: Vec<vellum::Result<Value>>| {
        f.service
            .import(&order, UowOptions::new("loader"), documents, |_| {})
    };
    import(
        (0..count)
            .map(|i| {
                let status = if i % 2 == 0 { "open" } else { "done" };
                Ok(json!({"customer": format!("c{i}"), "status": status, "n": i}))
            })
            .collect(),
    )
    .await
    .unwrap();
    registry
        .register_with_migration(&order, v("2.0.0"), v2(), to_v2(), false)
        .await
        .unwrap();
    if odd > 0 {
        import(
            (0..odd)
                .map(|i| Ok(json!({"customer": format!("odd{i}"), "status": "odd"})))
                .collect(),
        )
        .await
        .unwrap();
    }
    registry.activate(&order, v("2.0.0")).await.unwrap();
    f
}

#[tokio::test]
async fn a_killed_migration_resumes_while_a_writer_works_and_loses_nothing() {
    let f = Arc::new(fixture(ENTITIES, 0).await);
    let ids: Vec<Uuid> = f
        .admin()
        .await
        .query(
            "SELECT entity_id FROM orders.\"order\" ORDER BY entity_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();

    // A writer keeps writing new 2.x versions of random entities throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (f, ids, stop) = (f.clone(), ids.clone(), stop.clone());
        tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(5);
            let mut written = 0;
            while !stop.load(Ordering::Relaxed) {
                let entity = ids[rng.random_range(0..ids.len())];
                let mut uow = f.service.begin("writer").await.unwrap();
                let doc = json!({"buyer": "writer", "currency": "USD", "status": "OPEN", "n": -1});
                uow.update(&id("order"), entity, doc, WriteOptions::default())
                    .await
                    .unwrap();
                uow.commit().await.unwrap();
                written += 1;
            }
            written
        })
    };

    // Killed after 6 chunks: the future is dropped at its next await.
    let registry = f.service.schemas();
    let (killed_tx, killed_rx) = tokio::sync::oneshot::channel();
    let mut killed_tx = Some(killed_tx);
    let mut options = MigrationJobOptions::default();
    options.chunk_size = 400;
    let order = id("order");
    let job = registry.migrate_entities(&order, v("2.0.0"), options.clone(), |p| {
        if p.migrated >= 6 * 400
            && let Some(tx) = killed_tx.take()
        {
            let _ = tx.send(());
        }
    });
    tokio::select! {
        report = job => panic!("the job finished before it was killed: {report:?}"),
        _ = killed_rx => {}
    }
    let left = registry
        .pending_migration(&id("order"), v("2.0.0"))
        .await
        .unwrap();
    assert!(
        left > 0 && left < ENTITIES as u64,
        "{left} left after the kill"
    );

    let report = registry
        .migrate_entities(&id("order"), v("2.0.0"), options, |_| {})
        .await
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    let written = writer.await.unwrap();
    assert!(written > 0, "the writer wrote during the migration");
    assert_eq!(report.failed, 0, "{report:?}");
    assert!(report.migrated > 0 && report.migrated <= left, "{report:?}");
    assert_eq!(
        registry
            .pending_migration(&id("order"), v("2.0.0"))
            .await
            .unwrap(),
        0
    );

    // Every entity is there, active once, valid at 2.0.0; the migrated ones carry their
    // history and a new major version attributed to the migration.
    let admin = f.admin().await;
    let row = admin
        .query_one(
            "SELECT count(*), count(DISTINCT entity_id),
                    count(*) FILTER (WHERE schema_version = '2.0.0'),
                    count(*) FILTER (WHERE payload ? 'buyer' AND payload ? 'currency'
                                       AND payload->>'status' IN ('OPEN', 'CLOSED'))
             FROM orders.\"order\" WHERE is_active AND deleted_at IS NULL",
            &[],
        )
        .await
        .unwrap();
    let counts: Vec<i64> = (0..4).map(|i| row.get(i)).collect();
    assert_eq!(counts, vec![ENTITIES as i64; 4]);
    let first = admin
        .query_one(
            "SELECT count(*) FROM orders.\"order\" WHERE revision = 1 AND schema_version = '1.0.0'",
            &[],
        )
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(
        first, ENTITIES as i64,
        "every original version is still there"
    );
    let by_migration: i64 = admin
        .query_one(
            "SELECT count(*) FROM orders.\"order\" e JOIN orders.units_of_work u USING (uow_id)
             WHERE u.actor = 'vellum-migrate' AND e.entity_version LIKE '2.%'
               AND u.metadata->'migration'->>'to' = '2.0.0'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(by_migration > 0);
    // A migrated entity read as 1.0.0 gives back its original document.
    let untouched_by_writer: Uuid = admin
        .query_one(
            "SELECT e.entity_id FROM orders.\"order\" e JOIN orders.units_of_work u USING (uow_id)
             WHERE e.is_active AND u.actor = 'vellum-migrate' LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let original = f
        .service
        .get_version(&id("order"), untouched_by_writer, &v("1.0.0"))
        .await
        .unwrap();
    let back = f
        .service
        .get_as_schema_version(&id("order"), untouched_by_writer, v("1.0.0"))
        .await
        .unwrap();
    assert_eq!(back.payload, original.payload);
}

#[tokio::test]
async fn a_dry_run_writes_nothing_and_failures_are_left_untouched() {
    let f = fixture(294, 6).await;
    let registry = f.service.schemas();
    let mut options = MigrationJobOptions::default();
    (options.dry_run, options.chunk_size) = (true, 64);
    let dry = registry
        .migrate_entities(&id("order"), v("2.0.0"), options, |_| {})
        .await
        .unwrap();
    assert_eq!(
        (dry.pending_at_start, dry.migrated, dry.failed),
        (300, 294, 6)
    );
    assert_eq!(
        registry
            .pending_migration(&id("order"), v("2.0.0"))
            .await
            .unwrap(),
        300,
        "a dry run writes nothing"
    );

    let report = registry
        .migrate_entities(
            &id("order"),
            v("2.0.0"),
            MigrationJobOptions::default(),
            |_| {},
        )
        .await
        .unwrap();
    assert_eq!(
        (report.migrated, report.failed, report.pending_at_end),
        (294, 6, 6)
    );
    assert_eq!(report.samples.len(), 6);
    assert!(
        report.samples[0].reason.contains("/status"),
        "{:?}",
        report.samples[0]
    );
    // The six are untouched, still under 1.0.0.
    assert_eq!(
        registry
            .pending_migration(&id("order"), v("2.0.0"))
            .await
            .unwrap(),
        6
    );
    // Running again migrates nothing more and reports the same six.
    let again = registry
        .migrate_entities(
            &id("order"),
            v("2.0.0"),
            MigrationJobOptions::default(),
            |_| {},
        )
        .await
        .unwrap();
    assert_eq!((again.migrated, again.failed), (0, 6));
}
