//! API tokens: issued once, stored hashed, scoped to one service, revocable.

use std::time::Duration;

use sha2::{Digest, Sha256};
use uuid::Uuid;
use vellum::{Error, Scope, ServiceName, Store, StoreOptions};

use crate::fixtures::Fixture;

fn orders() -> ServiceName {
    ServiceName::new("orders").unwrap()
}

#[tokio::test]
async fn an_issued_token_authenticates_as_its_service_and_scopes() {
    let f = Fixture::empty().await;
    let issued = f
        .store
        .issue_token(&orders(), &[Scope::Write, Scope::Read], Some("orders api"))
        .await
        .unwrap();
    assert!(issued.token.starts_with("vlm_"), "{}", issued.token);
    assert_eq!(issued.token.len(), 4 + 64);
    assert_eq!(issued.scopes, [Scope::Read, Scope::Write]);

    let info = f
        .store
        .authenticate(&issued.token)
        .await
        .unwrap()
        .expect("a live token authenticates");
    assert_eq!(info.token_id, issued.token_id);
    assert_eq!(info.service, orders());
    assert_eq!(info.scopes, [Scope::Read, Scope::Write]);
    assert_eq!(info.description.as_deref(), Some("orders api"));
    assert_eq!(info.created_at, issued.created_at);
    assert_eq!(f.store.tokens(&orders()).await.unwrap(), [info]);

    // The secret is in the issued token's JSON, and nowhere in the token info's.
    let issued_json = serde_json::to_value(&issued).unwrap();
    assert_eq!(issued_json["token"], issued.token.as_str());
    assert_eq!(issued_json["scopes"], serde_json::json!(["read", "write"]));
    let listed = serde_json::to_string(&f.store.tokens(&orders()).await.unwrap()).unwrap();
    assert!(!listed.contains(&issued.token[4..]), "{listed}");
    let debug = format!("{issued:?}");
    assert!(!debug.contains(&issued.token[4..]), "{debug}");
}

#[tokio::test]
async fn the_database_holds_the_sha256_of_a_token_and_never_its_text() {
    let f = Fixture::empty().await;
    let issued = f
        .store
        .issue_token(&orders(), &[Scope::Read], None)
        .await
        .unwrap();
    let admin = f.admin().await;
    let stored: Vec<u8> = admin
        .query_one(
            "SELECT token_hash FROM vellum.api_tokens WHERE token_id = $1",
            &[&issued.token_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        stored,
        Sha256::digest(issued.token.as_bytes()).as_slice(),
        "token_hash is SHA-256 of the whole token text"
    );
    // No column holds the token or its secret part, as text or as hex of the bytes.
    let secret = &issued.token[4..];
    let leaks: i64 = admin
        .query_one(
            "SELECT count(*) FROM vellum.api_tokens t
             WHERE strpos(t::text, $1) > 0 OR strpos(t::text, $2) > 0
                OR strpos(encode(t.token_hash, 'hex'), $2) > 0",
            &[&issued.token, &secret],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(leaks, 0);
}

#[tokio::test]
async fn a_revoked_token_no_longer_authenticates() {
    let f = Fixture::empty().await;
    let keep = f
        .store
        .issue_token(&orders(), &[Scope::Read], Some("keep"))
        .await
        .unwrap();
    let gone = f
        .store
        .issue_token(&orders(), &[Scope::Admin], Some("gone"))
        .await
        .unwrap();

    // Another service cannot revoke it.
    let billing = ServiceName::new("billing").unwrap();
    f.store.create_service(&billing).await.unwrap();
    assert!(!f.store.revoke_token(&billing, gone.token_id).await.unwrap());
    assert!(f.store.authenticate(&gone.token).await.unwrap().is_some());

    assert!(
        f.store
            .revoke_token(&orders(), gone.token_id)
            .await
            .unwrap()
    );
    assert_eq!(f.store.authenticate(&gone.token).await.unwrap(), None);
    assert!(
        !f.store
            .revoke_token(&orders(), gone.token_id)
            .await
            .unwrap(),
        "revoking twice revokes nothing"
    );
    assert!(
        !f.store
            .revoke_token(&orders(), Uuid::now_v7())
            .await
            .unwrap()
    );

    let live: Vec<Uuid> = f
        .store
        .tokens(&orders())
        .await
        .unwrap()
        .iter()
        .map(|t| t.token_id)
        .collect();
    assert_eq!(live, [keep.token_id]);
    assert!(f.store.tokens(&billing).await.unwrap().is_empty());
    assert!(f.store.authenticate(&keep.token).await.unwrap().is_some());
}

#[tokio::test]
async fn unknown_and_malformed_tokens_authenticate_as_nobody() {
    let f = Fixture::empty().await;
    let issued = f
        .store
        .issue_token(&orders(), &[Scope::Read], None)
        .await
        .unwrap();
    let unknown = format!("vlm_{}", "0".repeat(64));
    let mut last_changed = issued.token.clone();
    last_changed.replace_range(
        67..,
        if issued.token.ends_with('0') {
            "1"
        } else {
            "0"
        },
    );
    for token in [
        unknown.as_str(),
        last_changed.as_str(),
        "",
        "vlm_",
        &issued.token[4..],
        &issued.token.to_uppercase(),
        &format!("{} ", issued.token),
        &format!("Bearer {}", issued.token),
        &issued.token[..67],
        "vlm_' OR true --",
    ] {
        assert_eq!(
            f.store.authenticate(token).await.unwrap(),
            None,
            "{token:?}"
        );
    }
}

#[tokio::test]
async fn a_malformed_token_is_refused_without_a_database_round_trip() {
    let db = crate::support::TestDb::new().await;
    let mut options = StoreOptions::default();
    options.pool_size = 1;
    let store = Store::connect(db.config(), options).await.unwrap();
    store.create_service(&orders()).await.unwrap();
    let service = store.service(&orders()).await.unwrap();
    // The unit of work holds the only connection: anything that needs the database waits.
    let uow = service.begin("holder").await.unwrap();

    let refused = tokio::time::timeout(Duration::from_secs(5), store.authenticate("vlm_nope"))
        .await
        .expect("a malformed token needs no connection");
    assert_eq!(refused.unwrap(), None);
    let well_formed = format!("vlm_{}", "a".repeat(64));
    assert!(
        tokio::time::timeout(Duration::from_millis(200), store.authenticate(&well_formed))
            .await
            .is_err(),
        "a well-formed token is looked up in the database"
    );
    drop(uow);
}

#[tokio::test]
async fn issuing_for_an_unknown_service_is_not_found() {
    let f = Fixture::empty().await;
    let ghost = ServiceName::new("ghost").unwrap();
    let err = f
        .store
        .issue_token(&ghost, &[Scope::Read], None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::NotFound { what } if what == "service ghost"),
        "{err:?}"
    );
    let err = f.store.tokens(&ghost).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn scopes_must_be_given_and_are_stored_sorted_without_duplicates() {
    let f = Fixture::empty().await;
    let err = f.store.issue_token(&orders(), &[], None).await.unwrap_err();
    assert!(matches!(err, Error::NotAllowed(_)), "{err:?}");
    let err = f
        .store
        .issue_token(&orders(), &[Scope::Read], Some(&"x".repeat(257)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotAllowed(_)), "{err:?}");
    assert!(f.store.tokens(&orders()).await.unwrap().is_empty());

    let issued = f
        .store
        .issue_token(
            &orders(),
            &[Scope::Admin, Scope::Read, Scope::Admin, Scope::Schema],
            Some(&"x".repeat(256)),
        )
        .await
        .unwrap();
    assert_eq!(issued.scopes, [Scope::Read, Scope::Schema, Scope::Admin]);
    let stored: Vec<String> = f
        .admin()
        .await
        .query_one("SELECT scopes FROM vellum.api_tokens", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, ["read", "schema", "admin"]);
}

#[tokio::test]
async fn the_database_refuses_empty_and_unknown_scopes() {
    let f = Fixture::empty().await;
    let admin = f.admin().await;
    for scopes in [vec![], vec!["read", "owner"], vec!["Read"]] {
        let err = admin
            .execute(
                "INSERT INTO vellum.api_tokens (token_id, service, scopes, token_hash)
                 VALUES ($1, 'orders', $2, sha256(random()::text::bytea))",
                &[&Uuid::now_v7(), &scopes],
            )
            .await
            .unwrap_err();
        let db = err.as_db_error().expect("refused by the server");
        assert_eq!(
            db.constraint(),
            Some("api_tokens_scopes_check"),
            "{scopes:?}"
        );
    }
}

#[tokio::test]
async fn a_token_allows_exactly_its_scopes_on_its_service() {
    let f = Fixture::empty().await;
    let billing = ServiceName::new("billing").unwrap();
    f.store.create_service(&billing).await.unwrap();
    let issued = f
        .store
        .issue_token(&orders(), &[Scope::Read, Scope::Admin], None)
        .await
        .unwrap();
    let info = f.store.authenticate(&issued.token).await.unwrap().unwrap();
    for (service, scope, allowed) in [
        (orders(), Scope::Read, true),
        (orders(), Scope::Admin, true),
        // admin implies nothing else
        (orders(), Scope::Write, false),
        (orders(), Scope::Schema, false),
        (billing.clone(), Scope::Read, false),
        (billing.clone(), Scope::Write, false),
        (billing.clone(), Scope::Schema, false),
        (billing.clone(), Scope::Admin, false),
    ] {
        assert_eq!(
            info.allows(&service, scope),
            allowed,
            "{scope} on {service}"
        );
    }
}
