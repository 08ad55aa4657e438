//! `x-vellum-ref`: references between entity types, checked at commit.

use serde_json::{Value, json};
use uuid::Uuid;
use vellum::{Error, WriteOptions};

use crate::fixtures::{Fixture, id, v};

fn customer_schema() -> Value {
    json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]})
}

fn invoice_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "customer_id": {"type": "string", "format": "uuid", "x-vellum-ref": "customer"},
            "amount": {"type": "number"}
        },
        "required": ["amount"]
    })
}

async fn fixture() -> Fixture {
    let f = Fixture::empty().await;
    let registry = f.service.schemas();
    registry
        .register(&id("customer"), v("1.0.0"), customer_schema(), false)
        .await
        .unwrap();
    registry
        .register(&id("invoice"), v("1.0.0"), invoice_schema(), false)
        .await
        .unwrap();
    f
}

async fn create(f: &Fixture, schema: &str, payload: Value) -> Result<Uuid, Error> {
    let mut uow = f.service.begin("alice").await?;
    let staged = uow
        .create(&id(schema), payload, WriteOptions::default())
        .await?;
    uow.commit().await?;
    Ok(staged.entity_id)
}

async fn invoices(f: &Fixture) -> i64 {
    f.admin()
        .await
        .query_one("SELECT count(*) FROM orders.invoice", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_write_must_reference_a_live_entity() {
    let f = fixture().await;
    let customer = create(&f, "customer", json!({"name": "ACME"}))
        .await
        .unwrap();
    create(
        &f,
        "invoice",
        json!({"customer_id": customer, "amount": 10}),
    )
    .await
    .unwrap();
    // No reference at all is fine: the property is optional.
    create(&f, "invoice", json!({"amount": 1})).await.unwrap();

    let nobody = Uuid::now_v7();
    let err = create(&f, "invoice", json!({"customer_id": nobody, "amount": 5}))
        .await
        .unwrap_err();
    match &err {
        Error::InvalidReference {
            schema_id,
            pointer,
            target,
            target_id,
            ..
        } => {
            assert_eq!(
                (schema_id.as_str(), pointer.as_str(), target.as_str()),
                ("invoice", "/customer_id", "customer")
            );
            assert_eq!(*target_id, nobody);
        }
        other => panic!("expected InvalidReference, got {other:?}"),
    }
    assert!(err.to_string().contains("does not exist or is deleted"));
    assert_eq!(invoices(&f).await, 2, "the refused invoice was not written");

    // A deleted customer cannot be referenced any more.
    let mut uow = f.service.begin("alice").await.unwrap();
    uow.delete(&id("customer"), customer, None).await.unwrap();
    uow.commit().await.unwrap();
    let err = create(&f, "invoice", json!({"customer_id": customer, "amount": 7}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidReference { .. }), "{err:?}");
    assert_eq!(invoices(&f).await, 2);
}

#[tokio::test]
async fn an_entity_created_earlier_in_the_unit_of_work_can_be_referenced() {
    let f = fixture().await;
    let mut uow = f.service.begin("alice").await.unwrap();
    let customer = uow
        .create(
            &id("customer"),
            json!({"name": "New"}),
            WriteOptions::default(),
        )
        .await
        .unwrap();
    uow.create(
        &id("invoice"),
        json!({"customer_id": customer.entity_id, "amount": 3}),
        WriteOptions::default(),
    )
    .await
    .unwrap();
    uow.commit().await.unwrap();
    assert_eq!(invoices(&f).await, 1);

    // Referenced before it is created in the same unit of work: refused, nothing written.
    let later = Uuid::now_v7();
    let mut uow = f.service.begin("alice").await.unwrap();
    uow.create(
        &id("invoice"),
        json!({"customer_id": later, "amount": 4}),
        WriteOptions::default(),
    )
    .await
    .unwrap();
    uow.create(
        &id("customer"),
        json!({"name": "Late"}),
        WriteOptions::with_id(later),
    )
    .await
    .unwrap();
    let err = uow.commit().await.unwrap_err();
    assert!(matches!(err, Error::InvalidReference { .. }), "{err:?}");
    assert_eq!(invoices(&f).await, 1);
    assert!(matches!(
        f.service.get(&id("customer"), later).await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn a_reference_that_is_not_an_entity_id_is_a_violation() {
    let f = fixture().await;
    let err = create(&f, "invoice", json!({"customer_id": "ACME", "amount": 1}))
        .await
        .unwrap_err();
    let Error::Validation { violations, .. } = err else {
        panic!("expected a validation error, got {err:?}");
    };
    assert!(
        violations
            .iter()
            .any(|v| v.pointer == "/customer_id" && v.keyword == "format"),
        "{violations:?}"
    );
}

#[tokio::test]
async fn a_reference_to_an_unregistered_type_is_refused_at_registration() {
    let f = Fixture::empty().await;
    let err = f
        .service
        .schemas()
        .register(&id("invoice"), v("1.0.0"), invoice_schema(), false)
        .await
        .unwrap_err();
    let Error::NotAllowed(message) = err else {
        panic!("expected NotAllowed, got {err:?}");
    };
    assert!(message.contains("invoice/customer_id references entity type customer"));
    assert!(
        f.service.schemas().list().await.unwrap().is_empty(),
        "nothing registered"
    );

    // A type may reference itself.
    let node = json!({"type": "object", "properties": {
        "parent": {"type": "string", "x-vellum-ref": "node"}
    }});
    f.service
        .schemas()
        .register(&id("node"), v("1.0.0"), node, false)
        .await
        .unwrap();
    let root = create(&f, "node", json!({})).await.unwrap();
    create(&f, "node", json!({"parent": root})).await.unwrap();
    // Without `format: uuid`, the reference rule itself says what is wrong.
    let err = create(&f, "node", json!({"parent": "root"}))
        .await
        .unwrap_err();
    let Error::Validation { violations, .. } = err else {
        panic!("expected a validation error, got {err:?}");
    };
    assert_eq!(violations.len(), 1);
    assert_eq!(
        (
            violations[0].pointer.as_str(),
            violations[0].keyword.as_str()
        ),
        ("/parent", "x-vellum-ref")
    );
}

#[tokio::test]
async fn misplaced_annotations_are_refused_with_their_pointer() {
    let f = Fixture::empty().await;
    let err = f
        .service
        .schemas()
        .register(
            &id("invoice"),
            v("1.0.0"),
            json!({"type": "object", "properties": {"lines": {"type": "array", "items": {
                "type": "object",
                "properties": {"sku": {"type": "string", "x-vellum-index": true}}
            }}}}),
            false,
        )
        .await
        .unwrap_err();
    let Error::InvalidInput(vellum::CoreError::InvalidSchema { problems }) = err else {
        panic!("expected an invalid schema, got {err:?}");
    };
    assert_eq!(problems.len(), 1);
    assert_eq!(
        problems[0].pointer,
        "/properties/lines/items/properties/sku/x-vellum-index"
    );
}
