//! Entity versions: the version sequence, reads, history, deletion, validation.

use serde_json::json;
use uuid::Uuid;
use vellum::{Error, WriteOptions};

use crate::fixtures::{Fixture, id, identity, order_schema, v};

#[tokio::test]
async fn entity_versions_follow_the_schema_versions_they_are_written_under() {
    let f = Fixture::new().await;
    let order = id("sales_order");
    let registry = f.service.schemas();

    let created = f.create_order(json!({"customer": "ACME"})).await;
    let entity_id = created.entity_id;
    assert_eq!(entity_id.get_version_num(), 7, "new ids are UUIDv7");

    let mut expected = vec![("1.0.0", "1.0.0")];
    let write = async |total: u32| {
        let mut uow = f.service.begin("bob").await.unwrap();
        let current = f.service.get(&order, entity_id).await.unwrap();
        let staged = uow
            .update(
                &order,
                entity_id,
                json!({"customer": "ACME", "total": total}),
                WriteOptions::expect(current.entity_version),
            )
            .await
            .unwrap();
        uow.commit().await.unwrap();
        staged
    };
    // Same schema version: patch bumps.
    for total in [1, 2] {
        write(total).await;
    }
    expected.extend([("1.0.1", "1.0.0"), ("1.0.2", "1.0.0")]);
    // A new patch of the schema: minor bump.
    registry
        .register(&order, v("1.0.1"), order_schema(), true)
        .await
        .unwrap();
    write(3).await;
    write(4).await;
    expected.extend([("1.1.0", "1.0.1"), ("1.1.1", "1.0.1")]);
    // A new minor of the schema: minor bump.
    registry
        .register(&order, v("1.1.0"), order_schema(), true)
        .await
        .unwrap();
    write(5).await;
    expected.push(("1.2.0", "1.1.0"));
    // A new major: major bump.
    registry
        .register_with_migration(&order, v("2.0.0"), order_schema(), identity("1.1.0"), true)
        .await
        .unwrap();
    write(6).await;
    write(7).await;
    expected.extend([("2.0.0", "2.0.0"), ("2.0.1", "2.0.0")]);

    let history = f.service.history(&order, entity_id).await.unwrap();
    let seen: Vec<_> = history
        .iter()
        .map(|h| {
            (
                h.entity.entity_version.to_string(),
                h.entity.schema_version.to_string(),
            )
        })
        .collect();
    let expected: Vec<_> = expected
        .iter()
        .map(|(e, s)| (e.to_string(), s.to_string()))
        .collect();
    assert_eq!(seen, expected);
    let revisions: Vec<i64> = history.iter().map(|h| h.entity.revision).collect();
    assert_eq!(revisions, (1..=8).collect::<Vec<_>>());
    assert_eq!(history.iter().filter(|h| h.entity.is_active).count(), 1);
    assert!(history.last().unwrap().entity.is_active);
    assert_eq!(history[0].actor, "alice");
    assert_eq!(history[1].actor, "bob");

    // Every version stays readable by its version number.
    let old = f
        .service
        .get_version(&order, entity_id, &v("1.0.1"))
        .await
        .unwrap();
    assert_eq!(old.payload, json!({"customer": "ACME", "total": 1}));
    assert!(!old.is_active);
    assert_eq!(
        f.service.get(&order, entity_id).await.unwrap().payload["total"],
        7
    );
}

#[tokio::test]
async fn writes_may_name_an_older_schema_version_of_the_active_major_only() {
    let f = Fixture::new().await;
    let order = id("sales_order");
    // A minor version relaxes (it may not tighten): 1.1.0 accepts an empty customer.
    let mut relaxed = order_schema();
    relaxed["properties"]["customer"] = json!({"type": "string"});
    f.service
        .schemas()
        .register(&order, v("1.1.0"), relaxed, true)
        .await
        .unwrap();

    let mut uow = f.service.begin("alice").await.unwrap();
    let err = uow
        .create(
            &order,
            json!({"customer": ""}),
            WriteOptions::default().under_schema(v("1.0.0")),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Validation { .. }), "{err}");
    drop(uow);

    let mut uow = f.service.begin("alice").await.unwrap();
    let staged = uow
        .create(
            &order,
            json!({"customer": "x"}),
            WriteOptions::default().under_schema(v("1.0.0")),
        )
        .await
        .unwrap();
    assert_eq!(staged.schema_version, v("1.0.0"));
    let active = uow
        .create(&order, json!({"customer": ""}), WriteOptions::default())
        .await
        .unwrap();
    assert_eq!(active.schema_version, v("1.1.0"));
    uow.commit().await.unwrap();

    // 2.0.0 requires a customer again: its migration names the anonymous ones.
    let migration = serde_json::from_value::<vellum::Migration>(json!({"from": "1.1.0",
        "operations": [{"op": "map", "path": "/customer", "values": {"": "(none)"}}]}))
    .unwrap();
    f.service
        .schemas()
        .register_with_migration(&order, v("2.0.0"), order_schema(), migration, true)
        .await
        .unwrap();
    let mut uow = f.service.begin("alice").await.unwrap();
    let err = uow
        .create(
            &order,
            json!({"customer": "x"}),
            WriteOptions::default().under_schema(v("1.0.0")),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::NotAllowed(m) if m.contains("major")),
        "{err}"
    );
}

#[tokio::test]
async fn invalid_documents_are_rejected_with_every_violation() {
    let f = Fixture::new().await;
    let order = id("sales_order");
    let mut uow = f.service.begin("alice").await.unwrap();
    let err = uow
        .create(
            &order,
            json!({"total": -5, "lines": [{"sku": "a", "qty": 1}, {"sku": 7, "qty": 0}]}),
            WriteOptions::default(),
        )
        .await
        .unwrap_err();
    let Error::Validation {
        schema_id,
        schema_version,
        violations,
    } = err
    else {
        panic!("expected a validation error, got {err}");
    };
    assert_eq!(
        (schema_id.as_str(), schema_version),
        ("sales_order", v("1.0.0"))
    );
    let found: Vec<(&str, &str)> = violations
        .iter()
        .map(|v| (v.pointer.as_str(), v.keyword.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            ("", "required"),
            ("/lines/1/qty", "minimum"),
            ("/lines/1/sku", "type"),
            ("/total", "minimum")
        ]
    );
    // The unit of work is failed: it can only be dropped, and nothing was written.
    let refused = uow.commit().await.unwrap_err();
    assert!(
        matches!(refused, Error::UnitOfWorkFailed { .. }),
        "{refused}"
    );
    let admin = f.admin().await;
    let count: i64 = admin
        .query_one("SELECT count(*) FROM orders.sales_order", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 0);
}

#[tokio::test]
async fn delete_hides_the_entity_but_keeps_every_version_and_undelete_brings_it_back() {
    let f = Fixture::new().await;
    let order = id("sales_order");
    let created = f.create_order(json!({"customer": "ACME"})).await;
    let entity_id = created.entity_id;

    let mut uow = f.service.begin("carol").await.unwrap();
    uow.delete(&order, entity_id, Some(v("1.0.0")))
        .await
        .unwrap();
    let deleted = uow.commit().await.unwrap();
    assert_eq!(deleted.entities[0].deleted_at, Some(deleted.committed_at));

    assert!(matches!(
        f.service.get(&order, entity_id).await,
        Err(Error::NotFound { .. })
    ));
    assert!(
        f.service
            .get_many(&order, &[entity_id])
            .await
            .unwrap()
            .is_empty()
    );
    let mut uow = f.service.begin("bob").await.unwrap();
    let err = uow
        .update(
            &order,
            entity_id,
            json!({"customer": "x"}),
            WriteOptions::default(),
        )
        .await;
    assert!(matches!(err, Err(Error::NotFound { .. })));
    drop(uow);

    let history = f.service.history(&order, entity_id).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].deleted_by.as_deref(), Some("carol"));
    assert_eq!(history[0].deleted_uow_id, Some(deleted.uow_id));

    let mut uow = f.service.begin("dave").await.unwrap();
    let restored = uow.undelete(&order, entity_id).await.unwrap();
    assert_eq!(
        (restored.revision, restored.entity_version),
        (2, v("1.0.1"))
    );
    uow.commit().await.unwrap();
    let current = f.service.get(&order, entity_id).await.unwrap();
    assert_eq!(current.payload, json!({"customer": "ACME"}));
    assert_eq!(current.deleted_at, None);

    let mut uow = f.service.begin("dave").await.unwrap();
    let err = uow.undelete(&order, entity_id).await.unwrap_err();
    assert!(matches!(err, Error::NotAllowed(_)), "{err}");
}

#[tokio::test]
async fn get_many_returns_live_entities_in_the_order_asked() {
    let f = Fixture::new().await;
    let order = id("sales_order");
    let mut uow = f.service.begin("alice").await.unwrap();
    let mut ids = Vec::new();
    for n in 0..5 {
        let staged = uow
            .create(
                &order,
                json!({"customer": format!("c{n}")}),
                WriteOptions::default(),
            )
            .await
            .unwrap();
        ids.push(staged.entity_id);
    }
    drop(uow);
    assert!(
        f.service.get_many(&order, &ids).await.unwrap().is_empty(),
        "dropped unit of work wrote nothing"
    );

    let mut uow = f.service.begin("alice").await.unwrap();
    for (n, entity_id) in ids.iter().enumerate() {
        let options = WriteOptions::with_id(*entity_id);
        uow.create(&order, json!({"customer": format!("c{n}")}), options)
            .await
            .unwrap();
    }
    uow.commit().await.unwrap();
    let mut uow = f.service.begin("alice").await.unwrap();
    uow.delete(&order, ids[4], None).await.unwrap();
    uow.commit().await.unwrap();

    let asked = [ids[3], Uuid::now_v7(), ids[0], ids[4], ids[2]];
    let found = f.service.get_many(&order, &asked).await.unwrap();
    let customers: Vec<&str> = found
        .iter()
        .map(|e| e.payload["customer"].as_str().unwrap())
        .collect();
    assert_eq!(customers, ["c3", "c0", "c2"]);
}

#[tokio::test]
async fn creating_an_existing_id_or_an_unknown_type_fails_clearly() {
    let f = Fixture::new().await;
    let order = id("sales_order");
    let entity_id = Uuid::now_v7();
    let mut uow = f.service.begin("alice").await.unwrap();
    uow.create(
        &order,
        json!({"customer": "a"}),
        WriteOptions::with_id(entity_id),
    )
    .await
    .unwrap();
    uow.commit().await.unwrap();

    let mut uow = f.service.begin("alice").await.unwrap();
    uow.create(
        &order,
        json!({"customer": "b"}),
        WriteOptions::with_id(entity_id),
    )
    .await
    .unwrap();
    let err = uow.commit().await.unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
    assert_eq!(
        f.service.get(&order, entity_id).await.unwrap().payload["customer"],
        "a"
    );

    let mut uow = f.service.begin("alice").await.unwrap();
    let err = uow
        .create(&id("invoice"), json!({}), WriteOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::NotFound { what } if what.contains("invoice")),
        "{err}"
    );
    let err = f.service.get(&id("invoice"), entity_id).await.unwrap_err();
    assert!(
        matches!(&err, Error::NotFound { what } if what.contains("invoice")),
        "{err}"
    );
}

#[tokio::test]
async fn the_entity_json_read_is_the_entity_as_it_serializes() {
    let f = Fixture::new().await;
    let order = id("sales_order");
    let payload = json!({
        "customer": "Zoë \"Z\" O'Neil\\\n\u{1F600}",
        "lines": [{"sku": "A-1", "qty": 2}, {"sku": "B/2", "qty": 1}],
        "note": null,
        "total": 12.5e3,
    });
    let created = f.create_order(payload).await;
    // The payload's text as PostgreSQL sent it, escapes and all, is the payload.
    let first = f.service.get_json(&order, created.entity_id).await.unwrap();
    let parsed: serde_json::Value = serde_json::from_slice(&first.json).unwrap();
    let entity = f.service.get(&order, created.entity_id).await.unwrap();
    assert_eq!(parsed, serde_json::to_value(&entity).unwrap());
    assert_eq!(
        parsed["payload"]["customer"],
        "Zoë \"Z\" O'Neil\\\n\u{1F600}"
    );

    let mut uow = f.service.begin("alice").await.unwrap();
    uow.update(
        &order,
        created.entity_id,
        json!({"customer": "ACME", "lines": []}),
        WriteOptions::expect(created.entity_version),
    )
    .await
    .unwrap();
    uow.commit().await.unwrap();

    let entity = f.service.get(&order, created.entity_id).await.unwrap();
    let json = f.service.get_json(&order, created.entity_id).await.unwrap();
    assert_eq!(json.entity_version, entity.entity_version);
    let parsed: serde_json::Value = serde_json::from_slice(&json.json).unwrap();
    assert_eq!(parsed, serde_json::to_value(&entity).unwrap());
    let keys: Vec<_> = parsed.as_object().unwrap().keys().cloned().collect();
    let expected: Vec<_> = serde_json::to_value(&entity)
        .unwrap()
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(keys, expected, "the same fields in the same order");

    let mut uow = f.service.begin("alice").await.unwrap();
    uow.delete(&order, created.entity_id, None).await.unwrap();
    uow.commit().await.unwrap();
    assert!(matches!(
        f.service.get_json(&order, created.entity_id).await,
        Err(Error::NotFound { .. })
    ));
}

/// A read of an entity's current version reads that version alone, however long its history,
/// on a table whose statistics make every index on `entity_id` look alike (most versions
/// active, one entity per id on average): through `UnitOfWork::get`, through the locking read
/// of an update without an expected version, and through a query by ids. The count is
/// PostgreSQL's own, for the transaction that read.
#[tokio::test]
async fn reading_the_current_version_of_a_long_history_reads_one_row() {
    let f = Fixture::new().await;
    let order = id("sales_order");
    let deep = Uuid::now_v7();
    const VERSIONS: i64 = 2_000;
    let admin = f.admin().await;
    let uow_id = Uuid::now_v7();
    admin
        .execute(
            "INSERT INTO orders.units_of_work (uow_id, actor, committed_at)
             VALUES ($1, 'loader', now())",
            &[&uow_id],
        )
        .await
        .unwrap();
    admin
        .execute(
            "INSERT INTO orders.sales_order (entity_id, revision, entity_version, schema_id,
                                             schema_version, payload, created_at, updated_at,
                                             is_active, uow_id)
             SELECT gen_random_uuid(), 1, '1.0.0', 'sales_order', '1.0.0',
                    '{\"customer\": \"ACME\"}'::jsonb, now(), now(), true, $1::uuid
             FROM generate_series(1, 20000)
             UNION ALL
             SELECT $2::uuid, g, '1.0.' || (g - 1), 'sales_order', '1.0.0',
                    '{\"customer\": \"ACME\"}'::jsonb,
                    now() - (($3 - g) * interval '1 millisecond'), now(), g = $3, $1::uuid
             FROM generate_series(1, $3::bigint) g",
            &[&uow_id, &deep, &VERSIONS],
        )
        .await
        .unwrap();
    admin
        .batch_execute("ANALYZE orders.sales_order")
        .await
        .unwrap();
    // Index scans count the versions they fetch against the index that found them.
    let fetched = "SELECT sum(pg_stat_get_xact_tuples_fetched(indexrelid))::bigint FROM pg_index
                   WHERE indrelid = 'orders.sales_order'::regclass";

    let mut uow = f.service.begin("alice").await.unwrap();
    let current = uow.get(&order, deep).await.unwrap();
    assert_eq!(current.revision, VERSIONS);
    let rows = uow.raw().query(fetched, &[]).await.unwrap();
    assert_eq!(
        rows[0].get::<_, i64>(0),
        1,
        "versions read for one current version"
    );
    uow.rollback().await.unwrap();

    let mut uow = f.service.begin("alice").await.unwrap();
    let staged = uow
        .update(
            &order,
            deep,
            json!({"customer": "Globex"}),
            WriteOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(staged.revision, VERSIONS + 1);
    let rows = uow.raw().query(fetched, &[]).await.unwrap();
    // Locking a version fetches it once more: two, against the history's 2,000.
    assert_eq!(
        rows[0].get::<_, i64>(0),
        2,
        "versions read to lock the current one"
    );
    uow.commit().await.unwrap();
    assert_eq!(
        f.service.get(&order, deep).await.unwrap().revision,
        VERSIONS + 1
    );

    // A query naming the entity among its ids, as the service compiles it.
    let query: vellum::query::Query = serde_json::from_value(json!({"ids": [deep]})).unwrap();
    let compiled = vellum::query::compile(
        &query,
        &vellum::query::QueryContext {
            table: "\"orders\".\"sales_order\"",
            columns: "e.entity_id, e.revision",
            schema: &vellum::query::CompiledSchema::compile(
                &order_schema(),
                &vellum::SchemaLimits::default(),
            )
            .unwrap(),
            cursor_key: &[0; 32],
        },
    )
    .unwrap();
    let values = vellum::query::bind_params(&compiled.params);
    let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
        values.iter().map(|v| v.as_ref() as _).collect();
    let mut admin = admin;
    let tx = admin.transaction().await.unwrap();
    let rows = tx.query(&compiled.sql, &params).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, i64>(1), VERSIONS + 1);
    let fetched = tx.query_one(fetched, &[]).await.unwrap().get::<_, i64>(0);
    assert_eq!(fetched, 1, "versions read for a query by id");
}

/// An entity table of service DDL version 4 lacks the index that reads of an active version by
/// id name; the next process to connect builds it, and one active version per entity stays the
/// rule.
#[tokio::test]
async fn entity_tables_provisioned_before_the_active_entity_index_get_it_on_connect() {
    let f = Fixture::new().await;
    let order = id("sales_order");
    let created = f.create_order(json!({"customer": "ACME"})).await;
    let admin = f.admin().await;
    let definitions = async || -> Vec<String> {
        admin
            .query(
                "SELECT btrim(regexp_replace(pg_get_indexdef(indexrelid), '\\s+', ' ', 'g'))
                 FROM pg_index WHERE indrelid = 'orders.sales_order'::regclass AND indisunique
                 ORDER BY 1",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect()
    };
    let keyed = "(( CASE WHEN is_active THEN entity_id ELSE NULL::uuid END)) WHERE is_active";
    let current = definitions().await;
    assert_eq!(current.len(), 3, "{current:?}");
    let active = current.iter().find(|d| d.ends_with(keyed)).unwrap();
    let name = active.split(' ').nth(3).unwrap().to_owned();
    admin
        .batch_execute(&format!(
            "DROP INDEX orders.{name};
             UPDATE vellum.services SET ddl_version = 4 WHERE name = 'orders'"
        ))
        .await
        .unwrap();

    let upgraded = f.other_process().await;

    let after = definitions().await;
    assert_eq!(after.len(), 3, "{after:?}");
    assert!(after.iter().any(|d| d.ends_with(keyed)), "{after:?}");
    // A table that has the index already keeps just the one.
    admin
        .batch_execute("UPDATE vellum.services SET ddl_version = 4 WHERE name = 'orders'")
        .await
        .unwrap();
    f.other_process().await;
    assert_eq!(definitions().await, after);
    let read = upgraded.get(&order, created.entity_id).await.unwrap();
    assert_eq!(read.payload["customer"], "ACME");
    let second_active = admin
        .execute(
            "INSERT INTO orders.sales_order (entity_id, revision, entity_version, schema_id,
                                             schema_version, payload, created_at, updated_at,
                                             uow_id)
             SELECT entity_id, 2, '1.0.1', schema_id, schema_version, payload, now(), now(), uow_id
             FROM orders.sales_order WHERE entity_id = $1",
            &[&created.entity_id],
        )
        .await
        .unwrap_err();
    assert_eq!(
        second_active.code(),
        Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION),
        "{second_active}"
    );
}

/// An entity table of service DDL version 5 lacks the commit-time index and the constraint that
/// a current version's `updated_at` is its `created_at`; the next process to connect adds both,
/// once. A table with a current version changed by hand is upgraded too, its constraint left
/// unvalidated, and new writes are checked.
#[tokio::test]
async fn entity_tables_provisioned_before_the_commit_time_index_get_it_on_connect() {
    let f = Fixture::new().await;
    let order = id("sales_order");
    let created = f.create_order(json!({"customer": "ACME"})).await;
    let admin = f.admin().await;
    let commit_time_indexes = async || -> Vec<String> {
        admin
            .query(
                "SELECT indexrelid::regclass::text FROM pg_index
                 WHERE indrelid = 'orders.sales_order'::regclass
                   AND pg_get_indexdef(indexrelid) LIKE '%(created_at, entity_id)%'",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect()
    };
    // Whether the table has the constraint, and whether it is validated.
    let constraint = async || -> Option<bool> {
        admin
            .query_opt(
                "SELECT convalidated FROM pg_constraint
                 WHERE conrelid = 'orders.sales_order'::regclass
                   AND conname = 'current_updated_at_is_created_at'",
                &[],
            )
            .await
            .unwrap()
            .map(|row| row.get(0))
    };
    let [index] = commit_time_indexes().await.try_into().unwrap();
    assert_eq!(constraint().await, Some(true));
    let back_to_version_5 = "ALTER TABLE orders.sales_order
                                 DROP CONSTRAINT current_updated_at_is_created_at;
                             UPDATE vellum.services SET ddl_version = 5 WHERE name = 'orders'";
    admin
        .batch_execute(&format!("DROP INDEX {index}; {back_to_version_5}"))
        .await
        .unwrap();
    assert_eq!(constraint().await, None);

    f.other_process().await;
    assert_eq!(commit_time_indexes().await.len(), 1);
    assert_eq!(constraint().await, Some(true));
    // A table that has them already keeps just the one index.
    admin
        .batch_execute("UPDATE vellum.services SET ddl_version = 5 WHERE name = 'orders'")
        .await
        .unwrap();
    f.other_process().await;
    assert_eq!(commit_time_indexes().await.len(), 1);

    // Changed by hand while the constraint was not there: the upgrade goes on.
    admin
        .batch_execute(&format!(
            "{back_to_version_5};
             UPDATE orders.sales_order SET updated_at = updated_at + interval '1 second'"
        ))
        .await
        .unwrap();
    let upgraded = f.other_process().await;
    assert_eq!(constraint().await, Some(false));
    let read = upgraded.get(&order, created.entity_id).await.unwrap();
    assert_eq!(read.payload["customer"], "ACME");
    let err = admin
        .batch_execute(
            "UPDATE orders.sales_order SET updated_at = updated_at + interval '1 second'",
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::CHECK_VIOLATION),
        "{err}"
    );
}
