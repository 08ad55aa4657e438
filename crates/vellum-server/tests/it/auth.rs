//! Tokens: 401 without one, 403 for another service or a missing scope, nothing leaked.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::api::{ADMIN, Api, ORDER_SCHEMA};

#[tokio::test]
async fn no_token_or_an_unknown_one_is_401_with_a_bearer_challenge() {
    let api = Api::with_orders().await;
    for token in [
        None,
        Some("vlm_0000000000000000000000000000000000000000000000000000000000000000"),
        Some("nonsense"),
    ] {
        let reply = api
            .send(Method::GET, "/v1/orders/schemas", token, None)
            .await;
        reply.problem(401);
        assert_eq!(reply.header("www-authenticate"), "Bearer realm=\"vellum\"");
    }
    // Probes need no token.
    assert_eq!(
        api.send(Method::GET, "/healthz", None, None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        api.send(Method::GET, "/readyz", None, None).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_token_of_service_a_can_neither_read_write_nor_list_anything_of_service_b() {
    let api = Api::with_orders().await;
    api.send(Method::PUT, "/v1/billing", Some(ADMIN), None)
        .await;
    let definition: serde_json::Value = serde_json::from_str(ORDER_SCHEMA).unwrap();
    api.send(
        Method::POST,
        "/v1/billing/schemas/invoice",
        Some(ADMIN),
        Some(json!({"version": "1.0.0", "definition": definition})),
    )
    .await;
    let invoice = api
        .send(
            Method::POST,
            "/v1/billing/entities/invoice",
            Some(ADMIN),
            Some(json!({"customer": "b"})),
        )
        .await;
    let invoice_url = format!(
        "/v1/billing/entities/invoice/{}",
        invoice.body["entity_id"].as_str().unwrap()
    );

    let orders_token = api
        .token("orders", &["read", "write", "schema", "admin"])
        .await;
    let attempts = [
        (Method::GET, "/v1/billing/schemas".to_string(), None),
        (
            Method::GET,
            "/v1/billing/schemas/invoice/versions".to_string(),
            None,
        ),
        (
            Method::GET,
            "/v1/billing/schemas/invoice/versions/1.0.0".to_string(),
            None,
        ),
        (
            Method::POST,
            "/v1/billing/schemas/invoice".to_string(),
            Some(json!({"version": "1.1.0", "definition": {}})),
        ),
        (
            Method::POST,
            "/v1/billing/entities/invoice".to_string(),
            Some(json!({"customer": "x"})),
        ),
        (Method::GET, invoice_url.clone(), None),
        (
            Method::PUT,
            invoice_url.clone(),
            Some(json!({"customer": "x"})),
        ),
        (Method::DELETE, invoice_url.clone(), None),
        (Method::GET, format!("{invoice_url}/history"), None),
        (
            Method::POST,
            "/v1/billing/tokens".to_string(),
            Some(json!({"scopes": ["read"]})),
        ),
        (Method::PUT, "/v1/billing".to_string(), None),
    ];
    for (method, uri, body) in attempts {
        let reply = api
            .send(method.clone(), &uri, Some(&orders_token), body)
            .await;
        reply.problem(403);
        assert!(
            !reply.body.to_string().contains("\"customer\""),
            "{method} {uri} leaked data"
        );
    }
    // Nothing of billing changed.
    assert_eq!(api.count("billing.invoice").await, 1);
    assert_eq!(api.count("billing.schemas").await, 1);
    // The same token works on its own service.
    let own = api
        .send(Method::GET, "/v1/orders/schemas", Some(&orders_token), None)
        .await;
    assert_eq!(own.status, StatusCode::OK);
}

#[tokio::test]
async fn each_operation_needs_its_scope() {
    let api = Api::with_orders().await;
    let reader = api.token("orders", &["read"]).await;
    let writer = api.token("orders", &["write"]).await;
    let created = api
        .send(
            Method::POST,
            "/v1/orders/entities/sales_order",
            Some(&writer),
            Some(json!({"customer": "a"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let url = format!(
        "/v1/orders/entities/sales_order/{}",
        created.body["entity_id"].as_str().unwrap()
    );

    assert_eq!(
        api.send(Method::GET, &url, Some(&reader), None)
            .await
            .status,
        StatusCode::OK
    );
    api.send(Method::GET, &url, Some(&writer), None)
        .await
        .problem(403);
    api.send(
        Method::PUT,
        &url,
        Some(&reader),
        Some(json!({"customer": "b"})),
    )
    .await
    .problem(403);
    let register = json!({"version": "1.1.0", "definition": {"type": "object"}});
    api.send(
        Method::POST,
        "/v1/orders/schemas/sales_order",
        Some(&writer),
        Some(register),
    )
    .await
    .problem(403);
    api.send(
        Method::POST,
        "/v1/orders/tokens",
        Some(&writer),
        Some(json!({"scopes": ["read"]})),
    )
    .await
    .problem(403);
    // Provisioning is for the admin token only, whatever the scopes.
    let admin_scoped = api.token("orders", &["admin"]).await;
    api.send(Method::PUT, "/v1/orders", Some(&admin_scoped), None)
        .await
        .problem(403);
    let issued = api
        .send(
            Method::POST,
            "/v1/orders/tokens",
            Some(&admin_scoped),
            Some(json!({"scopes": ["read"]})),
        )
        .await;
    assert_eq!(issued.status, StatusCode::CREATED);
    assert_eq!(issued.body["scopes"], json!(["read"]));
}

#[tokio::test]
async fn provisioning_is_idempotent() {
    let api = Api::new().await;
    let first = api.send(Method::PUT, "/v1/orders", Some(ADMIN), None).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let again = api.send(Method::PUT, "/v1/orders", Some(ADMIN), None).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["created_at"], first.body["created_at"]);
}
