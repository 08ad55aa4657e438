//! Bulk import: all or nothing, validated, one unit of work.

use serde_json::{Value, json};
use uuid::Uuid;
use vellum::{Error, UowOptions, WriteOptions};

use crate::fixtures::{Fixture, id, v};

async fn fixture() -> Fixture {
    let f = Fixture::empty().await;
    let registry = f.service.schemas();
    registry
        .register(&id("person"), v("1.0.0"), json!({"type": "object"}), false)
        .await
        .unwrap();
    registry
        .register(
            &id("card"),
            v("1.0.0"),
            json!({"type": "object", "required": ["number"], "properties": {
                "number": {"type": "string", "x-vellum-index": "unique"},
                "limit": {"type": "integer", "minimum": 0},
                "holder": {"type": "string", "x-vellum-ref": "person"}
            }}),
            false,
        )
        .await
        .unwrap();
    f
}

async fn cards(f: &Fixture) -> i64 {
    f.admin()
        .await
        .query_one("SELECT count(*) FROM orders.card", &[])
        .await
        .unwrap()
        .get(0)
}

fn card(n: usize) -> vellum::Result<Value> {
    Ok(json!({"number": format!("{n:08}"), "limit": n % 500}))
}

#[tokio::test]
async fn an_import_stores_every_document_in_one_unit_of_work() {
    let f = fixture().await;
    let validating = f.store.uow_stats().validation_time;
    let mut seen = Vec::new();
    let imported = f
        .service
        .import(
            &id("card"),
            UowOptions::new("importer"),
            (0..5_000).map(card),
            |n| seen.push(n),
        )
        .await
        .unwrap();
    assert_eq!(imported.count, 5_000);
    assert_eq!(seen.last(), Some(&5_000));
    assert_eq!(seen.len(), 6, "every 1,000 and at the end: {seen:?}");
    assert!(
        f.store.uow_stats().validation_time > validating,
        "the import's validations are counted"
    );
    let admin = f.admin().await;
    let row = admin
        .query_one(
            "SELECT count(*), count(DISTINCT uow_id), count(DISTINCT created_at),
                    bool_and(entity_version = '1.0.0' AND revision = 1 AND is_active)
             FROM orders.card",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            row.get::<_, i64>(0),
            row.get::<_, i64>(1),
            row.get::<_, i64>(2)
        ),
        (5_000, 1, 1)
    );
    assert!(row.get::<_, bool>(3));
    // The table was analyzed: the planner's row count knows the imported rows.
    let planned_rows: f32 = admin
        .query_one(
            "SELECT reltuples FROM pg_class WHERE oid = 'orders.card'::regclass",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(planned_rows >= 4_500.0, "reltuples {planned_rows}");
    let actor: String = admin
        .query_one(
            "SELECT actor FROM orders.units_of_work WHERE uow_id = $1",
            &[&imported.uow_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(actor, "importer");
    // Imported entities are ordinary entities: updatable through a unit of work.
    let first: Uuid = admin
        .query_one("SELECT entity_id FROM orders.card LIMIT 1", &[])
        .await
        .unwrap()
        .get(0);
    let mut uow = f.service.begin("alice").await.unwrap();
    uow.update(
        &id("card"),
        first,
        json!({"number": "X-1"}),
        WriteOptions::expect(v("1.0.0")),
    )
    .await
    .unwrap();
    uow.commit().await.unwrap();
}

#[tokio::test]
async fn a_bad_document_stops_the_import_and_nothing_is_stored() {
    let f = fixture().await;
    let card_id = id("card");
    let import = |documents: Vec<vellum::Result<Value>>| {
        f.service
            .import(&card_id, UowOptions::new("importer"), documents, |_| {})
    };

    let mut documents: Vec<_> = (0..2_000).map(card).collect();
    documents[1_500] = Ok(json!({"number": "ok", "limit": -1}));
    match import(documents).await.unwrap_err() {
        Error::ImportRefused { document, reason } => {
            assert_eq!(document, 1_501);
            assert!(matches!(*reason, Error::Validation { .. }), "{reason:?}");
        }
        other => panic!("expected ImportRefused, got {other:?}"),
    }
    assert_eq!(cards(&f).await, 0);

    // A failure reading the input is named the same way.
    let mut documents: Vec<_> = (0..10).map(card).collect();
    documents[4] = Err(Error::NotAllowed("line 5: not JSON".into()));
    let err = import(documents).await.unwrap_err();
    assert!(
        matches!(err, Error::ImportRefused { document: 5, .. }),
        "{err:?}"
    );

    // Two documents with one unique value.
    let mut documents: Vec<_> = (0..10).map(card).collect();
    documents[7] = card(2);
    let err = import(documents).await.unwrap_err();
    match err {
        Error::UniqueViolation { pointer, .. } => assert_eq!(pointer, "/number"),
        other => panic!("expected UniqueViolation, got {other:?}"),
    }

    // A reference to nobody.
    let mut documents: Vec<_> = (0..10).map(card).collect();
    documents[3] = Ok(json!({"number": "ref", "holder": Uuid::now_v7()}));
    let err = import(documents).await.unwrap_err();
    assert!(matches!(err, Error::InvalidReference { .. }), "{err:?}");
    assert_eq!(cards(&f).await, 0, "nothing of any refused import");

    // The pool's connections came back clean: a good import goes through.
    let imported = import((0..10).map(card).collect()).await.unwrap();
    assert_eq!((imported.count, cards(&f).await), (10, 10));
}

#[tokio::test]
async fn an_import_writes_change_events_when_the_service_does() {
    let f = fixture().await;
    f.service.set_change_events(true).await.unwrap();
    let imported = f
        .service
        .import(
            &id("card"),
            UowOptions::new("importer"),
            (0..120).map(card),
            |_| {},
        )
        .await
        .unwrap();
    let events = f
        .service
        .events_after(vellum::FeedCursor::START, 1000)
        .await
        .unwrap();
    assert_eq!(events.len(), 120);
    assert!(events.iter().all(|e| e.event_type == "entity.created"
        && e.aggregate_type == "card"
        && e.uow_id == imported.uow_id
        && e.data["entity_version"] == "1.0.0"));
}
