//! An update naming the version this process last wrote or read of an entity is staged without
//! reading the entity, so its unit of work is one round trip; the commit alone checks that the
//! version is still the latest. Another process changing the entity shows here as a second
//! `Store` on the same database.

use serde_json::{Value, json};
use uuid::Uuid;
use vellum::{Error, Service, Staged, UnitOfWork, Version, WriteOptions};

use crate::fixtures::{Fixture, id, v};

async fn count(f: &Fixture, table: &str) -> i64 {
    let sql = format!("SELECT count(*) FROM orders.{table}");
    f.admin().await.query_one(&sql, &[]).await.unwrap().get(0)
}

/// A unit of work of `service` with an update of the order to Globex's document staged (or
/// refused), naming `expected`.
async fn stage_globex(
    service: &Service,
    entity_id: Uuid,
    expected: Version,
) -> (UnitOfWork, vellum::Result<Staged>) {
    let mut uow = service.begin("alice").await.unwrap();
    let globex = json!({"customer": "Globex"});
    let staged = uow
        .update(
            &id("sales_order"),
            entity_id,
            globex,
            WriteOptions::expect(expected),
        )
        .await;
    (uow, staged)
}

/// A unit of work of `service` that replaces the order's document, naming `expected`, and
/// commits; returns the version written.
async fn update(service: &Service, entity_id: Uuid, payload: Value, expected: Version) -> Version {
    let mut uow = service.begin("alice").await.unwrap();
    uow.update(
        &id("sales_order"),
        entity_id,
        payload,
        WriteOptions::expect(expected),
    )
    .await
    .unwrap();
    uow.commit().await.unwrap().entities[0].entity_version
}

#[tokio::test]
async fn an_update_naming_a_version_another_process_superseded_fails_at_commit_and_writes_nothing()
{
    let f = Fixture::new().await;
    let order = id("sales_order");
    let created = f.create_order(json!({"customer": "ACME"})).await;
    let other = f.other_process().await;
    let initech = json!({"customer": "Initech"});
    update(&other, created.entity_id, initech, v("1.0.0")).await;

    // This process last wrote 1.0.0: the update is staged from that, without a read (a read
    // would have refused it here), and refused at commit.
    let (uow, staged) = stage_globex(&f.service, created.entity_id, v("1.0.0")).await;
    let staged = staged.unwrap();
    assert_eq!((staged.entity_version, staged.revision), (v("1.0.1"), 2));
    let err = uow.commit().await.unwrap_err();
    let Error::VersionConflict {
        expected, found, ..
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(expected, "1.0.0");
    assert!(found.contains("no longer the latest"), "{err}");
    assert_eq!(
        count(&f, "units_of_work").await,
        2,
        "the loser is not recorded"
    );
    assert_eq!(count(&f, "sales_order").await, 2);

    // What this process knew was dropped: the retry reads, and is refused at once with what it
    // found.
    let (_, staged) = stage_globex(&f.service, created.entity_id, v("1.0.0")).await;
    let err = staged.unwrap_err();
    assert!(
        matches!(&err, Error::VersionConflict { found, .. } if found == "1.0.1"),
        "{err}"
    );

    // Naming the latest version writes after it.
    let globex = json!({"customer": "Globex"});
    update(&f.service, created.entity_id, globex, v("1.0.1")).await;
    let latest = f.service.get(&order, created.entity_id).await.unwrap();
    assert_eq!(
        (latest.entity_version, latest.revision, latest.payload),
        (v("1.0.2"), 3, json!({"customer": "Globex"}))
    );
}

#[tokio::test]
async fn an_update_naming_a_version_read_here_of_an_entity_deleted_elsewhere_writes_nothing() {
    let f = Fixture::new().await;
    let order = id("sales_order");
    let other = f.other_process().await;
    let mut uow = other.begin("bob").await.unwrap();
    let created = uow
        .create(&order, json!({"customer": "ACME"}), WriteOptions::default())
        .await
        .unwrap();
    uow.commit().await.unwrap();
    // This process reads the entity (as an HTTP GET before a PUT with If-Match would) ...
    let read = f.service.get(&order, created.entity_id).await.unwrap();
    // ... and the other process deletes it.
    let mut uow = other.begin("bob").await.unwrap();
    uow.delete(&order, created.entity_id, Some(read.entity_version))
        .await
        .unwrap();
    uow.commit().await.unwrap();

    let mut uow = f.service.begin("alice").await.unwrap();
    uow.update(
        &order,
        created.entity_id,
        json!({"customer": "Globex"}),
        WriteOptions::expect(read.entity_version),
    )
    .await
    .unwrap();
    let err = uow.commit().await.unwrap_err();
    assert!(matches!(err, Error::VersionConflict { .. }), "{err}");
    assert!(matches!(
        f.service.get(&order, created.entity_id).await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(count(&f, "sales_order").await, 1, "no version was added");
}

#[tokio::test]
async fn updates_naming_the_version_just_written_build_the_history_in_order() {
    let f = Fixture::new().await;
    let order = id("sales_order");
    let created = f.create_order(json!({"customer": "c0"})).await;
    let mut version = created.entity_version;
    for n in 1..=3 {
        let payload = json!({"customer": format!("c{n}")});
        version = update(&f.service, created.entity_id, payload, version).await;
    }
    let history = f.service.history(&order, created.entity_id).await.unwrap();
    let written: Vec<_> = history
        .iter()
        .map(|h| {
            (
                h.entity.revision,
                h.entity.entity_version.to_string(),
                h.entity.payload["customer"].as_str().unwrap().to_owned(),
                h.entity.is_active,
            )
        })
        .collect();
    let expected: Vec<_> = (0..4)
        .map(|n| (n + 1, format!("1.0.{n}"), format!("c{n}"), n == 3))
        .collect();
    assert_eq!(written, expected);
}
