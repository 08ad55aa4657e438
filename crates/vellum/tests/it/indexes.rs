//! `x-vellum-index`: path indexes over the active documents, unique ones included.

use std::sync::Arc;

use serde_json::{Value, json};
use uuid::Uuid;
use vellum::{Error, WriteOptions};

use crate::fixtures::{Fixture, id, v};

fn account_schema(email_index: Value) -> Value {
    json!({
        "type": "object",
        "properties": {
            "email": {"type": "string", "x-vellum-index": email_index},
            "opened_at": {"type": "string", "format": "date-time", "x-vellum-index": true},
            "balance": {"type": "number"}
        },
        "required": ["email"]
    })
}

/// A fresh service with `account` 1.0.0 registered, its email indexed as given.
async fn accounts(email_index: Value) -> Fixture {
    let f = Fixture::empty().await;
    f.service
        .schemas()
        .register(
            &id("account"),
            v("1.0.0"),
            account_schema(email_index),
            false,
        )
        .await
        .unwrap();
    f
}

async fn create(f: &Fixture, payload: Value) -> Result<Uuid, Error> {
    let mut uow = f.service.begin("alice").await?;
    let staged = uow
        .create(&id("account"), payload, WriteOptions::default())
        .await?;
    uow.commit().await?;
    Ok(staged.entity_id)
}

/// The path indexes of the account table: (definition, valid).
async fn path_indexes(f: &Fixture) -> Vec<(String, bool)> {
    f.admin()
        .await
        .query(
            "SELECT pg_get_indexdef(i.indexrelid), i.indisvalid FROM pg_index i
             JOIN pg_class c ON c.oid = i.indexrelid
             WHERE i.indrelid = 'orders.account'::regclass AND c.relname LIKE 'vx\\_%'
             ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

#[tokio::test]
async fn declared_paths_get_indexes_over_the_active_rows() {
    let f = accounts(json!("unique")).await;
    let indexes = path_indexes(&f).await;
    assert_eq!(indexes.len(), 2, "{indexes:?}");
    let (timestamps, email) = (&indexes[0].0, &indexes[1].0);
    assert!(email.starts_with("CREATE UNIQUE INDEX"), "{email}");
    assert!(
        email.contains("((payload #> '{email}'::text[]))")
            && email.ends_with("WHERE (is_active AND (deleted_at IS NULL))"),
        "{email}"
    );
    assert!(
        timestamps.contains("to_timestamptz((payload #>> '{opened_at}'::text[])), entity_id)"),
        "{timestamps}"
    );
    assert!(indexes.iter().all(|(_, valid)| *valid));
}

/// A path index of a vellum name the active version does not ask for, as one built before the
/// entity id was an index column is, gives way to the wanted one when the active version is
/// activated again; the new one is built before the old one is dropped.
#[tokio::test]
async fn activating_the_active_version_again_replaces_path_indexes_of_another_shape() {
    let f = accounts(json!(true)).await;
    let wanted = path_indexes(&f).await;
    let email = wanted
        .iter()
        .find(|(definition, _)| definition.contains("'{email}'"))
        .map(|(definition, _)| definition.split_whitespace().nth(2).unwrap().to_owned())
        .unwrap();
    f.admin()
        .await
        .batch_execute(&format!(
            "DROP INDEX orders.{email};
             CREATE INDEX vx_00000000000000ff ON orders.account ((payload #> '{{email}}'::text[]))
                 WHERE is_active AND deleted_at IS NULL"
        ))
        .await
        .unwrap();
    assert_ne!(path_indexes(&f).await, wanted);

    f.service
        .schemas()
        .activate(&id("account"), v("1.0.0"))
        .await
        .unwrap();
    assert_eq!(path_indexes(&f).await, wanted);
}

#[tokio::test]
async fn a_unique_value_is_unique_among_active_documents_only() {
    let f = accounts(json!("unique")).await;
    let first = create(&f, json!({"email": "a@example.com"})).await.unwrap();
    let err = create(&f, json!({"email": "a@example.com"}))
        .await
        .unwrap_err();
    match &err {
        Error::UniqueViolation {
            schema_id, pointer, ..
        } => assert_eq!(
            (schema_id.as_str(), pointer.as_str()),
            ("account", "/email")
        ),
        other => panic!("expected UniqueViolation, got {other:?}"),
    }

    // Superseded versions do not hold their value: move the first account to another address,
    // and the old one is free.
    let mut uow = f.service.begin("alice").await.unwrap();
    uow.update(
        &id("account"),
        first,
        json!({"email": "b@example.com"}),
        WriteOptions::default(),
    )
    .await
    .unwrap();
    uow.commit().await.unwrap();
    let second = create(&f, json!({"email": "a@example.com"})).await.unwrap();

    // Nor do deleted entities; and an undelete whose value was taken meanwhile is refused.
    let mut uow = f.service.begin("alice").await.unwrap();
    uow.delete(&id("account"), second, None).await.unwrap();
    uow.commit().await.unwrap();
    create(&f, json!({"email": "a@example.com"})).await.unwrap();
    let mut uow = f.service.begin("alice").await.unwrap();
    uow.undelete(&id("account"), second).await.unwrap();
    let err = uow.commit().await.unwrap_err();
    assert!(matches!(err, Error::UniqueViolation { .. }), "{err:?}");
}

#[tokio::test]
async fn of_concurrent_writers_of_one_unique_value_exactly_one_wins() {
    let f = Arc::new(accounts(json!("unique")).await);
    for round in 0..5 {
        let email = format!("race{round}@example.com");
        let writers: Vec<_> = (0..8)
            .map(|_| {
                let f = f.clone();
                let email = email.clone();
                tokio::spawn(async move { create(&f, json!({"email": email})).await })
            })
            .collect();
        let mut won = 0;
        for writer in writers {
            match writer.await.unwrap() {
                Ok(_) => won += 1,
                Err(Error::UniqueViolation { .. }) => {}
                Err(other) => panic!("unexpected error: {other:?}"),
            }
        }
        assert_eq!(won, 1, "round {round}");
    }
}

#[tokio::test]
async fn activating_a_unique_index_that_documents_violate_is_refused() {
    let f = accounts(json!(false)).await;
    let registry = f.service.schemas();
    assert_eq!(path_indexes(&f).await.len(), 1, "only opened_at is indexed");
    create(&f, json!({"email": "dup@example.com"}))
        .await
        .unwrap();
    create(&f, json!({"email": "dup@example.com"}))
        .await
        .unwrap();

    let err = registry
        .register(
            &id("account"),
            v("1.1.0"),
            account_schema(json!("unique")),
            true,
        )
        .await
        .unwrap_err();
    let Error::NotAllowed(message) = &err else {
        panic!("expected NotAllowed, got {err:?}");
    };
    assert!(
        message.contains("cannot make account/email unique"),
        "{message}"
    );
    assert_eq!(path_indexes(&f).await.len(), 1, "nothing left behind");
    let active = registry.get(&id("account"), None, false).await.unwrap();
    assert_eq!(active.info.schema_version, v("1.0.0"));

    // Registered without activation, then activated once the duplicate is gone: built then.
    registry
        .register(
            &id("account"),
            v("1.1.0"),
            account_schema(json!("unique")),
            false,
        )
        .await
        .unwrap();
    assert_eq!(path_indexes(&f).await.len(), 1, "not active: not built");
    let dup = create(&f, json!({"email": "other@example.com"}))
        .await
        .unwrap();
    let mut uow = f.service.begin("alice").await.unwrap();
    uow.delete(&id("account"), dup, None).await.unwrap();
    uow.commit().await.unwrap();
    let err = registry
        .activate(&id("account"), v("1.1.0"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::NotAllowed(_)),
        "still a duplicate: {err:?}"
    );
    let rows = f
        .admin()
        .await
        .query(
            "SELECT entity_id FROM orders.account WHERE payload->>'email' = 'dup@example.com' LIMIT 1",
            &[],
        )
        .await
        .unwrap();
    let one: Uuid = rows[0].get(0);
    let mut uow = f.service.begin("alice").await.unwrap();
    uow.delete(&id("account"), one, None).await.unwrap();
    uow.commit().await.unwrap();
    registry.activate(&id("account"), v("1.1.0")).await.unwrap();
    let indexes = path_indexes(&f).await;
    assert_eq!(indexes.len(), 2, "{indexes:?}");
    assert!(
        indexes
            .iter()
            .any(|(d, valid)| d.starts_with("CREATE UNIQUE") && *valid)
    );

    // Activating a version that no longer asks for it drops it.
    registry.activate(&id("account"), v("1.0.0")).await.unwrap();
    let indexes = path_indexes(&f).await;
    assert_eq!(indexes.len(), 1, "{indexes:?}");
    assert!(!indexes[0].0.contains("UNIQUE"));
}
