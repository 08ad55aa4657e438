//! Migrations between major versions (SPEC §4.3): registration rules, the check on stored
//! documents, reading any entity as any registered version, forward and back.

use serde_json::{Value, json};
use vellum::{
    Error, Migration, MigrationFn, Reversibility, SchemaId, Store, StoreOptions, WriteOptions,
};

use crate::fixtures::{Fixture, id, identity, v};

fn order() -> SchemaId {
    id("sales_order")
}

/// 1.0.0: a closed object with a customer, a status and a quantity written as text.
fn v1() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["customer", "status"],
        "properties": {
            "customer": {"type": "string"},
            "status": {"enum": ["open", "done"]},
            "qty": {"type": "string", "pattern": "^(0|[1-9][0-9]*)$"}
        }
    })
}

/// 1.1.0: adds an optional note (a minor change).
fn v1_1() -> Value {
    let mut schema = v1();
    schema["properties"]["note"] = json!({"type": "string"});
    schema
}

/// 2.0.0: customer renamed buyer, a required currency, upper-case statuses, an integer qty.
fn v2() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["buyer", "currency", "status"],
        "properties": {
            "buyer": {"type": "string"},
            "currency": {"enum": ["EUR", "USD"]},
            "status": {"enum": ["OPEN", "CLOSED"]},
            "qty": {"type": "integer", "minimum": 0},
            "note": {"type": "string"}
        }
    })
}

fn to_v2() -> Migration {
    serde_json::from_value(json!({"from": "1.1.0", "operations": [
        {"op": "rename", "from": "/customer", "to": "/buyer"},
        {"op": "add", "path": "/currency", "value": "EUR"},
        {"op": "map", "path": "/status", "values": {"open": "OPEN", "done": "CLOSED"}},
        {"op": "cast", "path": "/qty", "from": "string", "to": "integer"}
    ]}))
    .unwrap()
}

async fn create(f: &Fixture, payload: Value, under: Option<&str>) -> uuid::Uuid {
    let mut uow = f.service.begin("alice").await.unwrap();
    let mut options = WriteOptions::default();
    options.schema_version = under.map(v);
    let staged = uow.create(&order(), payload, options).await.unwrap();
    uow.commit().await.unwrap();
    staged.entity_id
}

/// A service with sales_order 1.0.0 and 1.1.0, two entities, and 2.0.0 registered (active)
/// with [`to_v2`].
async fn migrated() -> (Fixture, uuid::Uuid, uuid::Uuid) {
    let f = Fixture::empty().await;
    let registry = f.service.schemas();
    registry
        .register(&order(), v("1.0.0"), v1(), false)
        .await
        .unwrap();
    let plain = create(
        &f,
        json!({"customer": "ACME", "status": "done", "qty": "3"}),
        None,
    )
    .await;
    registry
        .register(&order(), v("1.1.0"), v1_1(), true)
        .await
        .unwrap();
    let noted = create(
        &f,
        json!({"customer": "Bolt", "status": "open", "note": "fragile"}),
        None,
    )
    .await;
    registry
        .register_with_migration(&order(), v("2.0.0"), v2(), to_v2(), true)
        .await
        .unwrap();
    (f, plain, noted)
}

#[tokio::test]
async fn an_old_entity_reads_as_the_new_major_and_back_as_it_was() {
    let (f, plain, noted) = migrated().await;
    let original = json!({"customer": "ACME", "status": "done", "qty": "3"});

    let as_v2 = f
        .service
        .get_as_schema_version(&order(), plain, v("2.0.0"))
        .await
        .unwrap();
    assert_eq!(
        as_v2.payload,
        json!({"buyer": "ACME", "currency": "EUR", "status": "CLOSED", "qty": 3})
    );
    assert_eq!(as_v2.schema_version, v("2.0.0"));
    assert_eq!(
        as_v2.entity_version,
        v("1.0.0"),
        "the stored version's metadata"
    );

    // The round trip: read as 2.0.0, then presented as the old version, gives the original.
    let back = f.service.present_as(as_v2, v("1.0.0")).await.unwrap();
    assert_eq!(back.payload, original);
    assert_eq!(back.schema_version, v("1.0.0"));

    // Nothing was written: the stored version keeps its payload and schema version.
    let stored = f.service.get(&order(), plain).await.unwrap();
    assert_eq!(
        (stored.payload, stored.schema_version),
        (original, v("1.0.0"))
    );
    assert_eq!(f.service.history(&order(), plain).await.unwrap().len(), 1);

    // A 1.1.0 document with a note: note is kept, and it reads back under 1.1.0 exactly.
    let as_v2 = f
        .service
        .get_as_schema_version(&order(), noted, v("2.0.0"))
        .await
        .unwrap();
    assert_eq!(
        as_v2.payload,
        json!({"buyer": "Bolt", "currency": "EUR", "status": "OPEN", "note": "fragile"})
    );
    let back = f.service.present_as(as_v2, v("1.1.0")).await.unwrap();
    assert_eq!(
        back.payload,
        json!({"customer": "Bolt", "status": "open", "note": "fragile"})
    );
}

#[tokio::test]
async fn a_new_entity_reads_as_the_old_major_for_old_clients() {
    let (f, _, _) = migrated().await;
    let written = create(
        &f,
        json!({"buyer": "Zed", "currency": "USD", "status": "OPEN", "qty": 7}),
        None,
    )
    .await;
    let as_v1 = f
        .service
        .get_as_schema_version(&order(), written, v("1.1.0"))
        .await
        .unwrap();
    assert_eq!(
        as_v1.payload,
        json!({"customer": "Zed", "status": "open", "qty": "7"})
    );
    // Within a major line no migration runs; the document just has to satisfy the version.
    let same_line = f
        .service
        .get_as_schema_version(&order(), written, v("2.0.0"))
        .await
        .unwrap();
    assert_eq!(same_line.payload["currency"], json!("USD"));
}

#[tokio::test]
async fn a_document_an_older_minor_does_not_allow_is_refused_with_its_violations() {
    let (f, _, noted) = migrated().await;
    let err = f
        .service
        .get_as_schema_version(&order(), noted, v("1.0.0"))
        .await
        .unwrap_err();
    let Error::NotConvertible {
        from,
        to,
        violations,
        ..
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!((*from, *to), (v("1.1.0"), v("1.0.0")));
    assert!(
        violations
            .iter()
            .any(|v| v.keyword == "additionalProperties"),
        "{violations:?}"
    );
    assert!(
        err.to_string().contains("does not satisfy version 1.0.0"),
        "{err}"
    );

    let unknown = f
        .service
        .get_as_schema_version(&order(), noted, v("7.0.0"))
        .await
        .unwrap_err();
    assert!(matches!(unknown, Error::NotFound { .. }), "{unknown}");
}

#[tokio::test]
async fn migrations_compose_across_three_major_lines() {
    let (f, plain, _) = migrated().await;
    let mut v3 = v2();
    let buyer = v3["properties"]["buyer"].take();
    v3["properties"].as_object_mut().unwrap().remove("buyer");
    v3["properties"]["client"] = buyer;
    v3["required"] = json!(["client", "currency", "status"]);
    let to_v3: Migration = serde_json::from_value(json!({"from": "2.0.0", "operations": [
        {"op": "rename", "from": "/buyer", "to": "/client"}
    ]}))
    .unwrap();
    f.service
        .schemas()
        .register_with_migration(&order(), v("3.0.0"), v3, to_v3, false)
        .await
        .unwrap();

    let as_v3 = f
        .service
        .get_as_schema_version(&order(), plain, v("3.0.0"))
        .await
        .unwrap();
    assert_eq!(
        as_v3.payload,
        json!({"client": "ACME", "currency": "EUR", "status": "CLOSED", "qty": 3})
    );
    let back = f.service.present_as(as_v3, v("1.0.0")).await.unwrap();
    assert_eq!(
        back.payload,
        json!({"customer": "ACME", "status": "done", "qty": "3"})
    );
    let listed = f.service.schemas().migrations(&order()).await.unwrap();
    let chain: Vec<_> = listed.iter().map(|m| (m.from, m.to)).collect();
    assert_eq!(chain, [(v("1.1.0"), v("2.0.0")), (v("2.0.0"), v("3.0.0"))]);
}

#[tokio::test]
async fn a_lossy_migration_is_refused_on_the_way_back_naming_the_operation() {
    let f = Fixture::empty().await;
    let registry = f.service.schemas();
    registry
        .register(&order(), v("1.0.0"), v1(), false)
        .await
        .unwrap();
    let old = create(
        &f,
        json!({"customer": "ACME", "status": "open", "qty": "2"}),
        None,
    )
    .await;
    let mut v2 = v1();
    v2["properties"].as_object_mut().unwrap().remove("qty");
    let lossy: Migration = serde_json::from_value(json!({"from": "1.0.0", "operations": [
        {"op": "remove", "path": "/qty"}
    ]}))
    .unwrap();
    let registered = registry
        .register_with_migration(&order(), v("2.0.0"), v2, lossy, true)
        .await
        .unwrap();
    assert_eq!(
        registered.migration.unwrap().reversibility,
        Reversibility::Lossy
    );
    // Forward is fine.
    let forward = f
        .service
        .get_as_schema_version(&order(), old, v("2.0.0"))
        .await
        .unwrap();
    assert_eq!(
        forward.payload,
        json!({"customer": "ACME", "status": "open"})
    );
    // Back is not.
    let new = create(&f, json!({"customer": "Zed", "status": "done"}), None).await;
    let err = f
        .service
        .get_as_schema_version(&order(), new, v("1.0.0"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotConvertible { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("cannot be reversed") && message.contains("operation 0 (remove /qty)"),
        "{message}"
    );
}

#[tokio::test]
async fn a_new_major_needs_a_migration_from_the_previous_major_line() {
    let (f, _, _) = migrated().await;
    let registry = f.service.schemas();
    let before = versions(&f.service.schemas()).await;

    let missing = registry
        .register(&order(), v("3.0.0"), v2(), false)
        .await
        .unwrap_err();
    assert!(
        matches!(missing, Error::InvalidMigration { .. }),
        "{missing}"
    );
    assert!(
        missing
            .to_string()
            .contains("must be registered with a migration from a version of major line 2"),
        "{missing}"
    );

    let wrong_line = registry
        .register_with_migration(&order(), v("3.0.0"), v2(), identity("1.1.0"), false)
        .await
        .unwrap_err();
    assert!(
        wrong_line
            .to_string()
            .contains("must come from a registered version of major line 2 (2.0.0), not 1.1.0"),
        "{wrong_line}"
    );

    let minor = registry
        .register_with_migration(&order(), v("2.1.0"), v2(), identity("2.0.0"), false)
        .await
        .unwrap_err();
    assert!(minor.to_string().contains("takes no migration"), "{minor}");

    // Well-formed JSON, but an operation that makes no sense (a library caller can build one
    // without `Migration::new`, an HTTP client by sending it).
    let into_itself: Migration = serde_json::from_value(json!({"from": "2.0.0", "operations": [
        {"op": "rename", "from": "/buyer", "to": "/buyer/name"}]}))
    .unwrap();
    let err = registry
        .register_with_migration(&order(), v("3.0.0"), v2(), into_itself, false)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidMigration { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("operation 0 (rename /buyer): cannot move /buyer into itself"),
        "{err}"
    );

    assert_eq!(
        versions(&f.service.schemas()).await,
        before,
        "nothing registered"
    );
}

#[tokio::test]
async fn a_migration_that_breaks_stored_documents_is_refused_with_samples() {
    let f = Fixture::empty().await;
    let registry = f.service.schemas();
    let mut loose = v1();
    loose["properties"]["qty"] = json!({"type": "string"});
    loose["properties"]["status"] = json!({"type": "string"});
    registry
        .register(&order(), v("1.0.0"), loose, false)
        .await
        .unwrap();
    create(
        &f,
        json!({"customer": "A", "status": "open", "qty": "1"}),
        None,
    )
    .await;
    let bad_qty = create(
        &f,
        json!({"customer": "B", "status": "open", "qty": "three"}),
        None,
    )
    .await;
    let bad_status = create(&f, json!({"customer": "C", "status": "held"}), None).await;
    let mut from_1_0 = to_v2();
    from_1_0.from = v("1.0.0");

    // The dry run migrates the documents before it validates them, and sees the same failures.
    let report = registry
        .check_with_migration(&order(), v("2.0.0"), &v2(), Some(from_1_0.clone().into()))
        .await
        .unwrap();
    assert!(report.registration_problems.is_empty(), "{report:?}");
    assert_eq!((report.documents_checked, report.documents_failing), (3, 2));
    assert_eq!(
        report.migration_reversibility,
        Some(Reversibility::Lossless)
    );
    let failing: Vec<_> = report.samples.iter().map(|s| s.entity_id).collect();
    assert!(failing.contains(&bad_qty) && failing.contains(&bad_status));
    // Without the migration, every document fails the new definition, and the report says
    // registration would be refused.
    let unmigrated = registry.check(&order(), v("2.0.0"), &v2()).await.unwrap();
    assert_eq!(unmigrated.documents_failing, 3);
    assert_eq!(unmigrated.registration_problems.len(), 1);

    let err = registry
        .register_with_migration(&order(), v("2.0.0"), v2(), from_1_0, true)
        .await
        .unwrap_err();
    let Error::InvalidMigration {
        documents_checked,
        documents_failing,
        samples,
        ..
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!((*documents_checked, *documents_failing), (3, 2));
    let qty = samples.iter().find(|s| s.entity_id == bad_qty).unwrap();
    assert_eq!(qty.violations[0].pointer, "/qty");
    assert_eq!(qty.violations[0].keyword, "migration");
    assert!(
        qty.violations[0]
            .message
            .contains("operation 3 (cast /qty): \"three\" cannot be cast to integer"),
        "{qty:?}"
    );
    let status = samples.iter().find(|s| s.entity_id == bad_status).unwrap();
    assert_eq!(status.violations[0].pointer, "/status");
    assert_eq!(status.violations[0].keyword, "enum");
    let registered = registry.versions(&order()).await.unwrap();
    assert_eq!(registered.len(), 1, "nothing registered");
    assert!(registry.migrations(&order()).await.unwrap().is_empty());
}

#[tokio::test]
async fn migrations_are_stored_with_their_version_and_immutable() {
    let (f, _, _) = migrated().await;
    let shown = f
        .service
        .schemas()
        .get(&order(), Some(v("2.0.0")), false)
        .await
        .unwrap();
    let migration = shown.migration.unwrap();
    assert_eq!((migration.from, migration.to), (v("1.1.0"), v("2.0.0")));
    assert_eq!(migration.operations.unwrap(), to_v2().operations);
    assert_eq!(migration.reversibility, Reversibility::Lossless);
    let first = f
        .service
        .schemas()
        .get(&order(), Some(v("1.0.0")), false)
        .await
        .unwrap();
    assert!(first.migration.is_none());

    let admin = f.admin().await;
    for statement in [
        "UPDATE vellum.schema_migrations SET operations = '[]'",
        "DELETE FROM vellum.schema_migrations",
        "TRUNCATE vellum.schema_migrations",
    ] {
        let err = admin.batch_execute(statement).await.unwrap_err();
        assert_eq!(
            err.as_db_error().map(|e| e.code().code()),
            Some("VL001"),
            "{statement}: {err}"
        );
    }
}

async fn versions(registry: &vellum::SchemaRegistry<'_>) -> Vec<String> {
    registry
        .versions(&order())
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.schema_version.to_string())
        .collect()
}

fn split_name() -> MigrationFn {
    MigrationFn::new("split_name", v("1.0.0"), |mut doc: Value| {
        let name = doc["name"]
            .as_str()
            .ok_or("name is not a string")?
            .to_owned();
        let (first, last) = name.split_once(' ').ok_or("name has no space")?;
        doc["name"] = json!({"first": first, "last": last});
        Ok(doc)
    })
    .with_backward(|mut doc: Value| {
        let name = format!(
            "{} {}",
            doc["name"]["first"].as_str().unwrap_or_default(),
            doc["name"]["last"].as_str().unwrap_or_default()
        );
        doc["name"] = json!(name);
        Ok(doc)
    })
}

#[tokio::test]
async fn a_rust_migration_works_where_it_is_installed() {
    let f = Fixture::empty().await;
    let person = id("person");
    let registry = f.service.schemas();
    let flat = json!({"type": "object", "properties": {"name": {"type": "string"}}});
    let split = json!({"type": "object", "required": ["name"], "properties": {"name": {
        "type": "object", "required": ["first", "last"],
        "properties": {"first": {"type": "string"}, "last": {"type": "string"}}}}});
    registry
        .register(&person, v("1.0.0"), flat, false)
        .await
        .unwrap();
    let mut uow = f.service.begin("alice").await.unwrap();
    let ada = uow
        .create(
            &person,
            json!({"name": "Ada Lovelace"}),
            WriteOptions::default(),
        )
        .await
        .unwrap()
        .entity_id;
    uow.commit().await.unwrap();
    let registered = registry
        .register_with_migration(&person, v("2.0.0"), split, split_name(), true)
        .await
        .unwrap();
    let info = registered.migration.unwrap();
    assert_eq!(info.function.as_deref(), Some("split_name"));

    let as_v2 = f
        .service
        .get_as_schema_version(&person, ada, v("2.0.0"))
        .await
        .unwrap();
    assert_eq!(
        as_v2.payload,
        json!({"name": {"first": "Ada", "last": "Lovelace"}})
    );
    assert_eq!(
        f.service
            .present_as(as_v2, v("1.0.0"))
            .await
            .unwrap()
            .payload,
        json!({"name": "Ada Lovelace"})
    );

    // Another process has not installed it: a clear refusal, until it does.
    let other = Store::connect(f.db.config(), StoreOptions::default())
        .await
        .unwrap();
    let other = other.service(f.service.name()).await.unwrap();
    let err = other
        .get_as_schema_version(&person, ada, v("2.0.0"))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(
            "is the Rust function \"split_name\", which is not installed in this process"
        ),
        "{err}"
    );
    let renamed = MigrationFn::new("other_name", v("1.0.0"), Ok);
    let refused = other
        .schemas()
        .install_migration_fn(&person, v("2.0.0"), renamed)
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::NotAllowed(_)), "{refused}");
    other
        .schemas()
        .install_migration_fn(&person, v("2.0.0"), split_name())
        .await
        .unwrap();
    let read = other
        .get_as_schema_version(&person, ada, v("2.0.0"))
        .await
        .unwrap();
    assert_eq!(read.payload["name"]["last"], json!("Lovelace"));
}

#[tokio::test]
async fn any_version_read_can_be_presented_as_another_schema_version() {
    let (f, plain, _) = migrated().await;
    let mut uow = f.service.begin("bob").await.unwrap();
    uow.update(
        &order(),
        plain,
        json!({"buyer": "ACME", "currency": "USD", "status": "OPEN"}),
        WriteOptions::default(),
    )
    .await
    .unwrap();
    uow.commit().await.unwrap();
    // The current version is under 2.0.0; the first one, under 1.0.0, still reads as 2.0.0.
    let first = f
        .service
        .get_version(&order(), plain, &v("1.0.0"))
        .await
        .unwrap();
    let presented = f.service.present_as(first, v("2.0.0")).await.unwrap();
    assert_eq!(presented.payload["buyer"], json!("ACME"));
    assert_eq!(presented.entity_version, v("1.0.0"));
    let current = f
        .service
        .get_as_schema_version(&order(), plain, v("1.0.0"))
        .await
        .unwrap();
    assert_eq!(
        current.payload,
        json!({"customer": "ACME", "status": "open"})
    );
    assert_eq!(current.entity_version, v("2.0.0"));
}

#[tokio::test]
async fn a_migrator_migrates_many_documents_to_one_version() {
    let (f, plain, noted) = migrated().await;
    let migrator = f
        .service
        .schemas()
        .migrator(&order(), v("2.0.0"))
        .await
        .unwrap();
    assert_eq!(migrator.target(), v("2.0.0"));
    for id in [plain, noted] {
        let stored = f.service.get(&order(), id).await.unwrap();
        let migrated = migrator
            .migrate(stored.payload, stored.schema_version)
            .unwrap();
        let read = f
            .service
            .get_as_schema_version(&order(), id, v("2.0.0"))
            .await
            .unwrap();
        assert_eq!(migrated, read.payload);
    }
    let err = migrator
        .migrate(json!({"customer": "X", "status": "weird"}), v("1.0.0"))
        .unwrap_err();
    let Error::NotConvertible { violations, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(violations[0].pointer, "/status", "{err}");
    let unknown = f.service.schemas().migrator(&order(), v("4.0.0")).await;
    assert!(matches!(unknown, Err(Error::NotFound { .. })));
}
