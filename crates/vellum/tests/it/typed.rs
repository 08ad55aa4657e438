//! Rust types as entity types: derived schemas registered and checked, `Entities<T>`.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;
use vellum::{
    ChangeClass, Error, SchemaId, Version,
    query::{Filter, OrderBy, OrderKey, Query},
    typed::{Entities, schema_of},
};

use crate::fixtures::{Fixture, v};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Invoice {
    number: String,
    customer: Uuid,
    issued_at: DateTime<Utc>,
    lines: Vec<Line>,
    paid: bool,
    note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Line {
    sku: String,
    qty: u32,
    price: f64,
}

/// `Invoice` a release later: one more required property.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Invoice")]
struct InvoiceV2 {
    number: String,
    customer: Uuid,
    issued_at: DateTime<Utc>,
    lines: Vec<Line>,
    paid: bool,
    note: Option<String>,
    currency: String,
}

fn invoice(number: u32, paid: bool) -> Invoice {
    Invoice {
        number: format!("INV-{number:04}"),
        customer: Uuid::now_v7(),
        issued_at: "2026-11-22T10:00:00Z".parse().unwrap(),
        lines: vec![Line {
            sku: "A-1".into(),
            qty: number,
            price: 9.5,
        }],
        paid,
        note: number.is_multiple_of(2).then(|| "rush".into()),
    }
}

#[tokio::test]
async fn a_rust_type_is_registered_written_read_and_queried_as_itself() {
    let f = Fixture::empty().await;
    let invoices: Entities<Invoice> = f.service.entities(SchemaId::new("invoice").unwrap());
    let registered = invoices.register(v("1.0.0"), false).await.unwrap();
    assert_eq!(registered.definition, schema_of::<Invoice>());

    let mut uow = f.service.begin("alice").await.unwrap();
    let mut ids = Vec::new();
    for n in 1..=5 {
        ids.push(
            invoices
                .create(&mut uow, &invoice(n, !n.is_multiple_of(2)))
                .await
                .unwrap()
                .entity_id,
        );
    }
    uow.commit().await.unwrap();

    let second = invoices.get(ids[1]).await.unwrap();
    assert_eq!(
        second.value,
        invoice(2, false).with_customer(second.value.customer)
    );
    assert_eq!(second.entity_version, v("1.0.0"));

    // The derived schema is enforced like any other: a document it refuses is refused.
    let mut uow = f.service.begin("alice").await.unwrap();
    let err = uow
        .create(
            invoices.schema_id(),
            json!({"number": "INV-9", "paid": "yes"}),
            vellum::WriteOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Validation { .. }), "{err:?}");
    drop(uow);

    // Update with optimistic locking, then read the past as the type.
    let mut uow = f.service.begin("alice").await.unwrap();
    let mut paid = second.value.clone();
    paid.paid = true;
    invoices
        .update(&mut uow, ids[1], &paid, Some(second.entity_version))
        .await
        .unwrap();
    uow.commit().await.unwrap();
    assert!(invoices.get(ids[1]).await.unwrap().value.paid);
    let before = invoices.get_version(ids[1], &v("1.0.0")).await.unwrap();
    assert!(!before.value.paid);

    let query = Query {
        filter: Some(Filter::eq("/paid", true).unwrap()),
        order: vec![OrderKey::desc(OrderBy::path("/number").unwrap())],
        ..Query::default()
    };
    let page = invoices.query(&query).await.unwrap();
    let numbers: Vec<&str> = page.items.iter().map(|r| r.value.number.as_str()).collect();
    assert_eq!(numbers, ["INV-0005", "INV-0003", "INV-0002", "INV-0001"]);
    let many = invoices.get_many(&[ids[4], ids[0]]).await.unwrap();
    assert_eq!(many[0].value.number, "INV-0005");
}

#[tokio::test]
async fn a_changed_type_is_checked_and_classified_before_it_is_registered() {
    let f = Fixture::empty().await;
    let schema_id = SchemaId::new("invoice").unwrap();
    let v1: Entities<Invoice> = f.service.entities(schema_id.clone());
    v1.register(v("1.0.0"), false).await.unwrap();
    let mut uow = f.service.begin("alice").await.unwrap();
    let id = v1
        .create(&mut uow, &invoice(1, false))
        .await
        .unwrap()
        .entity_id;
    uow.commit().await.unwrap();

    let v2: Entities<InvoiceV2> = f.service.entities(schema_id);
    let report = v2.check(v("1.1.0")).await.unwrap();
    assert_eq!(report.assessment.class, ChangeClass::Major, "{report:?}");
    assert_eq!(
        (report.documents_checked, report.documents_failing),
        (1, 1),
        "the stored invoice lacks a currency"
    );
    assert!(!report.registration_problems.is_empty());
    let err = v2.register(v("1.1.0"), true).await.unwrap_err();
    assert!(matches!(err, Error::IncompatibleSchema { .. }), "{err:?}");

    // Read as the new type, the old document does not decode: said, with the entity named.
    let err = v2.get(id).await.unwrap_err();
    match err {
        Error::Decode {
            entity_id,
            entity_version,
            ..
        } => assert_eq!((entity_id, entity_version), (id, Version::INITIAL)),
        other => panic!("expected Decode, got {other:?}"),
    }
}

impl Invoice {
    fn with_customer(mut self, customer: Uuid) -> Self {
        self.customer = customer;
        self
    }
}
