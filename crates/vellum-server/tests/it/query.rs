//! `POST /v1/{service}/entities/{schema_id}/query` over HTTP.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::api::{ADMIN, Api};

const QUERY: &str = "/v1/orders/entities/sales_order/query";

async fn with_orders(count: usize) -> Api {
    let api = Api::with_orders().await;
    for i in 0..count {
        let reply = api
            .send(
                Method::POST,
                "/v1/orders/entities/sales_order",
                Some(ADMIN),
                Some(json!({"customer": format!("c{}", i % 3), "total": i})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:#}", reply.body);
    }
    api
}

fn totals(page: &Value) -> Vec<i64> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["payload"]["total"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn a_query_filters_orders_and_pages_with_a_cursor() {
    let api = with_orders(12).await;
    let body = json!({
        "filter": {"and": [
            {"path": "/customer", "op": "in", "value": ["c0", "c1"]},
            {"path": "/total", "op": "gte", "value": 2}
        ]},
        "order": [{"path": "/total", "direction": "desc"}],
        "limit": 3
    });
    let mut seen = Vec::new();
    let mut request = body.clone();
    loop {
        let reply = api
            .send(Method::POST, QUERY, Some(ADMIN), Some(request.clone()))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
        assert!(reply.body["items"].as_array().unwrap().len() <= 3);
        seen.extend(totals(&reply.body));
        match reply.body["next_cursor"].as_str() {
            Some(cursor) => request["cursor"] = json!(cursor),
            None => break,
        }
    }
    // Order i belongs to customer c{i % 3}.
    let want: Vec<i64> = (2..12).rev().filter(|i| i % 3 != 2).collect();
    assert_eq!(seen, want);

    // An empty body lists the first page in entity_id order (creation order for UUIDv7).
    let reply = api
        .send(Method::POST, QUERY, Some(ADMIN), Some(json!({})))
        .await;
    assert_eq!(totals(&reply.body), (0..12).collect::<Vec<_>>());
    assert_eq!(reply.body["next_cursor"], Value::Null);
}

#[tokio::test]
async fn bad_queries_are_problems_not_errors() {
    let api = with_orders(2).await;
    for (body, status, kind) in [
        (
            json!({"filter": {"path": "/total", "op": "gt", "value": "ten"}}),
            400,
            "invalid-query",
        ),
        (
            json!({"filter": {"path": "/total", "op": "between"}}),
            400,
            "",
        ),
        (json!({"limit": 0}), 400, "invalid-query"),
        (json!({"cursor": "not-a-cursor"}), 400, "invalid-query"),
        (json!({"surprise": true}), 400, ""),
    ] {
        let reply = api
            .send(Method::POST, QUERY, Some(ADMIN), Some(body.clone()))
            .await;
        let problem = reply.problem(status);
        if !kind.is_empty() {
            assert_eq!(
                problem["type"],
                format!("urn:vellum:problem:{kind}"),
                "{body}"
            );
        }
    }
    let reply = api
        .send(
            Method::POST,
            "/v1/orders/entities/no_such_type/query",
            Some(ADMIN),
            Some(json!({})),
        )
        .await;
    reply.problem(404);
}

#[tokio::test]
async fn querying_needs_the_read_scope() {
    let api = with_orders(1).await;
    let writer = api.token("orders", &["write"]).await;
    let reply = api
        .send(Method::POST, QUERY, Some(&writer), Some(json!({})))
        .await;
    reply.problem(403);
    let reader = api.token("orders", &["read"]).await;
    let reply = api
        .send(Method::POST, QUERY, Some(&reader), Some(json!({})))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
    assert_eq!(reply.body["items"].as_array().unwrap().len(), 1);
}
