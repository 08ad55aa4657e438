//! Entities over HTTP: ETag and If-Match, merge patch, delete, history, time travel.

use axum::{
    body::Body,
    http::{Method, Request, StatusCode, header},
};
use serde_json::json;

use crate::api::{ADMIN, Api};

const ORDERS: &str = "/v1/orders/entities/sales_order";

#[tokio::test]
async fn create_read_replace_patch_delete_and_read_the_past() {
    let api = Api::with_orders().await;

    let created = api
        .send(
            Method::POST,
            ORDERS,
            Some(ADMIN),
            Some(json!({"customer": "ACME"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:#}", created.body);
    assert_eq!(created.header("etag"), "\"1.0.0\"");
    let id = created.body["entity_id"].as_str().unwrap().to_string();
    assert_eq!(created.header("location"), format!("{ORDERS}/{id}"));
    let fields: Vec<&str> = created
        .body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        fields,
        [
            "entity_id",
            "entity_version",
            "revision",
            "schema_id",
            "schema_version",
            "payload",
            "created_at",
            "updated_at",
            "deleted_at",
            "is_active",
            "uow_id"
        ]
    );
    let t1 = created.body["created_at"].as_str().unwrap().to_string();
    let url = format!("{ORDERS}/{id}");

    let read = api.send(Method::GET, &url, Some(ADMIN), None).await;
    assert_eq!(
        (read.status, read.header("etag")),
        (StatusCode::OK, "\"1.0.0\"")
    );
    assert_eq!(read.body["payload"], json!({"customer": "ACME"}));

    // PUT with the current version succeeds; with a stale one it is 412 and writes nothing.
    let put = |version: &str, body: serde_json::Value| {
        Request::builder()
            .method(Method::PUT)
            .uri(&url)
            .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::IF_MATCH, format!("\"{version}\""))
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let replaced = api
        .request(put("1.0.0", json!({"customer": "ACME", "total": 10})))
        .await;
    assert_eq!(
        (replaced.status, replaced.header("etag")),
        (StatusCode::OK, "\"1.0.1\"")
    );
    let stale = api
        .request(put("1.0.0", json!({"customer": "stale"})))
        .await;
    stale.problem(412);

    // Merge patch: add a key, remove one.
    let patch = Request::builder()
        .method(Method::PATCH)
        .uri(&url)
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
        .header(header::CONTENT_TYPE, "application/merge-patch+json")
        .header(header::IF_MATCH, "\"1.0.1\"")
        .body(Body::from(
            json!({"note": "rush", "total": null}).to_string(),
        ))
        .unwrap();
    let patched = api.request(patch).await;
    assert_eq!(patched.status, StatusCode::OK, "{:#}", patched.body);
    assert_eq!(
        patched.body["payload"],
        json!({"customer": "ACME", "note": "rush"})
    );
    assert_eq!(patched.header("etag"), "\"1.0.2\"");
    // A patch that breaks the schema is refused with the violation.
    let invalid = api
        .send(Method::PATCH, &url, Some(ADMIN), Some(json!({"total": -1})))
        .await;
    assert_eq!(invalid.problem(422)["violations"][0]["pointer"], "/total");

    let deleted = api.send(Method::DELETE, &url, Some(ADMIN), None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    api.send(Method::GET, &url, Some(ADMIN), None)
        .await
        .problem(404);
    api.send(Method::DELETE, &url, Some(ADMIN), None)
        .await
        .problem(404);

    let old = api
        .send(
            Method::GET,
            &format!("{url}?version=1.0.1"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(
        old.body["payload"],
        json!({"customer": "ACME", "total": 10})
    );
    let then = api
        .send(
            Method::GET,
            &format!("{url}?as_of={}", t1.replace('+', "%2B")),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(
        (then.status, &then.body["entity_version"]),
        (StatusCode::OK, &json!("1.0.0"))
    );
    api.send(
        Method::GET,
        &format!("{url}?as_of=2000-01-01T00:00:00Z"),
        Some(ADMIN),
        None,
    )
    .await
    .problem(404);

    let history = api
        .send(Method::GET, &format!("{url}/history"), Some(ADMIN), None)
        .await;
    let versions: Vec<&str> = history
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["entity_version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["1.0.0", "1.0.1", "1.0.2"]);
    assert_eq!(history.body[2]["deleted_by"], "admin");
}

#[tokio::test]
async fn the_actor_header_and_request_id_are_recorded_in_the_audit_trail() {
    let api = Api::with_orders().await;
    let request = Request::builder()
        .method(Method::POST)
        .uri(ORDERS)
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
        .header(header::CONTENT_TYPE, "application/json")
        .header("vellum-actor", "alice@example.com")
        .header("x-request-id", "req-7")
        .body(Body::from(json!({"customer": "ACME"}).to_string()))
        .unwrap();
    let created = api.request(request).await;
    assert_eq!(created.header("x-request-id"), "req-7");
    let id = created.body["entity_id"].as_str().unwrap();
    let history = api
        .send(
            Method::GET,
            &format!("{ORDERS}/{id}/history"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(history.body[0]["actor"], "alice@example.com");
    assert_eq!(history.body[0]["correlation_id"], "req-7");
}

#[tokio::test]
async fn patches_without_if_match_from_concurrent_clients_all_land() {
    let api = Api::with_orders().await;
    let created = api
        .send(
            Method::POST,
            ORDERS,
            Some(ADMIN),
            Some(json!({"customer": "ACME"})),
        )
        .await;
    let url = format!("{ORDERS}/{}", created.body["entity_id"].as_str().unwrap());
    let patches = (0..4).map(|n| {
        let (router, url) = (api.router.clone(), url.clone());
        tokio::spawn(async move {
            let request = Request::builder()
                .method(Method::PATCH)
                .uri(url)
                .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
                .header(header::CONTENT_TYPE, "application/merge-patch+json")
                .body(Body::from(json!({format!("k{n}"): n}).to_string()))
                .unwrap();
            tower::ServiceExt::oneshot(router, request)
                .await
                .unwrap()
                .status()
        })
    });
    let statuses: Vec<StatusCode> = futures_util::future::join_all(patches)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    // A patch may lose the race PATCH_ATTEMPTS times in a row under heavy contention; with four
    // clients each one retries enough to land, and none may be lost silently.
    let landed = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let current = api.send(Method::GET, &url, Some(ADMIN), None).await;
    let keys = current.body["payload"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with('k'))
        .count();
    assert_eq!(
        keys, landed,
        "every patch answered 200 is in the document: {statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::CONFLICT),
        "{statuses:?}"
    );
}
