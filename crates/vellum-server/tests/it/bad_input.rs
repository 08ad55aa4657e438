//! Bad input gets a clear 4xx, quickly, and nothing is written.

use axum::{
    body::Body,
    http::{Method, Request, header},
};
use serde_json::json;

use crate::api::{ADMIN, Api};

const ORDERS: &str = "/v1/orders/entities/sales_order";

fn raw(
    method: Method,
    uri: &str,
    content_type: Option<&str>,
    body: impl Into<Body>,
) -> Request<Body> {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"));
    if let Some(content_type) = content_type {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    request.body(body.into()).unwrap()
}

#[tokio::test]
async fn malformed_bodies_are_refused_and_nothing_is_written() {
    let api = Api::with_orders().await;
    let json = Some("application/json");
    api.request(raw(Method::POST, ORDERS, json, "{\"customer\": "))
        .await
        .problem(400);
    api.request(raw(
        Method::POST,
        ORDERS,
        Some("text/plain"),
        "{\"customer\": \"a\"}",
    ))
    .await
    .problem(415);
    api.request(raw(Method::POST, ORDERS, None, "{\"customer\": \"a\"}"))
        .await
        .problem(415);

    let deep = "[".repeat(10_000) + &"]".repeat(10_000);
    let started = std::time::Instant::now();
    let reply = api.request(raw(Method::POST, ORDERS, json, deep)).await;
    assert!(
        reply.problem(400)["detail"]
            .as_str()
            .unwrap()
            .contains("nested deeper")
    );
    let nested_object = format!(
        "{{\"customer\": \"a\", \"x\": {}1{}}}",
        "[".repeat(100),
        "]".repeat(100)
    );
    api.request(raw(Method::POST, ORDERS, json, nested_object))
        .await
        .problem(400);

    let huge = vec![b' '; 50 * 1024 * 1024];
    api.request(raw(Method::POST, ORDERS, json, huge))
        .await
        .problem(413);
    assert!(
        started.elapsed().as_secs() < 10,
        "bad input is refused quickly"
    );

    let invalid = api
        .send(
            Method::POST,
            ORDERS,
            Some(ADMIN),
            Some(json!({"customer": "", "total": "ten"})),
        )
        .await;
    let violations = invalid.problem(422)["violations"]
        .as_array()
        .unwrap()
        .clone();
    let pointers: Vec<&str> = violations
        .iter()
        .map(|v| v["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(pointers, ["/customer", "/total"]);

    assert_eq!(api.count("orders.sales_order").await, 0);
    assert_eq!(api.count("orders.units_of_work").await, 0);
}

#[tokio::test]
async fn malformed_ids_versions_and_names_are_400() {
    let api = Api::with_orders().await;
    for uri in [
        "/v1/orders/entities/sales_order/not-a-uuid",
        "/v1/Orders/schemas",
        "/v1/orders/schemas/Sales-Order/versions",
        "/v1/orders/schemas/sales_order/versions/1.0",
        "/v1/orders/schemas/sales_order/versions/01.0.0",
        "/v1/orders/entities/sales_order/0190c0de-0000-7000-8000-000000000000?version=x",
        "/v1/orders/entities/sales_order/0190c0de-0000-7000-8000-000000000000?as_of=yesterday",
    ] {
        api.send(Method::GET, uri, Some(ADMIN), None)
            .await
            .problem(400);
    }
    let bad_if_match = Request::builder()
        .method(Method::PUT)
        .uri(format!("{ORDERS}/0190c0de-0000-7000-8000-000000000000"))
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::IF_MATCH, "1.0.0")
        .body(Body::from("{\"customer\": \"a\"}"))
        .unwrap();
    api.request(bad_if_match).await.problem(400);
    let unknown_field = json!({"version": "1.1.0", "definition": {}, "activte": true});
    api.send(
        Method::POST,
        "/v1/orders/schemas/sales_order",
        Some(ADMIN),
        Some(unknown_field),
    )
    .await
    .problem(400);
    api.send(Method::GET, "/v1/nowhere/schemas", Some(ADMIN), None)
        .await
        .problem(404);
    api.send(Method::GET, "/no/such/route", Some(ADMIN), None)
        .await
        .problem(404);
}

#[tokio::test]
async fn hostile_schemas_are_refused_or_harmless() {
    let api = Api::with_orders().await;
    let register = |id: &str, definition: serde_json::Value| {
        (
            format!("/v1/orders/schemas/{id}"),
            json!({"version": "1.0.0", "definition": definition}),
        )
    };
    // A remote $ref is never fetched: refused.
    let (uri, body) = register(
        "remote",
        json!({"type": "object", "properties": {"a": {"$ref": "https://example.com/a.json"}}}),
    );
    let reply = api.send(Method::POST, &uri, Some(ADMIN), Some(body)).await;
    assert!(
        reply.problem(422)["detail"]
            .as_str()
            .unwrap()
            .contains("remote $ref")
    );
    // Backtracking constructs (look-around, backreferences) are refused: patterns use a
    // linear-time engine.
    let (uri, body) = register(
        "lookaround",
        json!({"type": "object", "properties": {"a": {"type": "string", "pattern": "^(?=a)(a+)+$"}}}),
    );
    api.send(Method::POST, &uri, Some(ADMIN), Some(body))
        .await
        .problem(422);
    // The classic catastrophic pattern is harmless under that engine: a hostile string is
    // validated at once.
    let (uri, body) = register(
        "nested_quantifier",
        json!({"type": "object", "properties": {"a": {"type": "string", "pattern": "^(a+)+$"}}}),
    );
    assert_eq!(
        api.send(Method::POST, &uri, Some(ADMIN), Some(body))
            .await
            .status
            .as_u16(),
        201
    );
    let started = std::time::Instant::now();
    let hostile = "a".repeat(5_000) + "!";
    let reply = api
        .send(
            Method::POST,
            "/v1/orders/entities/nested_quantifier",
            Some(ADMIN),
            Some(json!({"a": hostile})),
        )
        .await;
    assert_eq!(reply.problem(422)["violations"][0]["keyword"], "pattern");
    assert!(started.elapsed().as_secs() < 5);
    // Not a schema at all.
    let (uri, body) = register("nonsense", json!({"type": 12}));
    api.send(Method::POST, &uri, Some(ADMIN), Some(body))
        .await
        .problem(422);
    assert_eq!(
        api.count("orders.schemas").await,
        2,
        "sales_order and nested_quantifier only"
    );
}

#[tokio::test]
async fn a_slow_request_is_answered_503_when_it_outlives_the_request_timeout() {
    let mut limits = vellum_server::Limits::default();
    limits.request_timeout = std::time::Duration::from_millis(300);
    let api = Api::with_limits(limits).await;
    api.send(Method::PUT, "/v1/orders", Some(ADMIN), None).await;
    // Hold a lock the listing needs, so the request cannot finish in time.
    let (client, connection) = api
        .db
        .config()
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute("BEGIN; LOCK TABLE orders.schemas IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let reply = api
        .send(Method::GET, "/v1/orders/schemas", Some(ADMIN), None)
        .await;
    assert_eq!(reply.problem(503)["type"], "urn:vellum:problem:timeout");
    client.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(
        api.send(Method::GET, "/v1/orders/schemas", Some(ADMIN), None)
            .await
            .status
            .as_u16(),
        200
    );
}

#[tokio::test]
async fn text_postgresql_cannot_store_is_refused_with_its_pointer() {
    let api = Api::with_orders().await;
    let reply = api
        .send(
            Method::POST,
            ORDERS,
            Some(ADMIN),
            Some(json!({"customer": "A\u{0}CME"})),
        )
        .await;
    assert_eq!(reply.problem(422)["violations"][0]["pointer"], "/customer");
    let definition = json!({"type": "object", "title": "bad\u{0}title"});
    let reply = api
        .send(
            Method::POST,
            "/v1/orders/schemas/nul",
            Some(ADMIN),
            Some(json!({"version": "1.0.0", "definition": definition})),
        )
        .await;
    assert_eq!(reply.problem(422)["violations"][0]["pointer"], "/title");
    let token = json!({"scopes": ["read"], "description": "a\u{0}b"});
    api.send(Method::POST, "/v1/orders/tokens", Some(ADMIN), Some(token))
        .await
        .problem(400);
    api.send(
        Method::POST,
        "/v1/orders/tokens",
        Some(ADMIN),
        Some(json!({"scopes": []})),
    )
    .await
    .problem(400);
    assert_eq!(api.count("orders.sales_order").await, 0);
}

#[tokio::test]
async fn headers_outside_their_grammar_are_400_and_an_impossible_version_is_412() {
    let api = Api::with_orders().await;
    let created = api
        .send(
            Method::POST,
            ORDERS,
            Some(ADMIN),
            Some(json!({"customer": "a"})),
        )
        .await;
    let url = format!("{ORDERS}/{}", created.body["entity_id"].as_str().unwrap());
    let put = |header_name: &str, value: &str| {
        Request::builder()
            .method(Method::PUT)
            .uri(&url)
            .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
            .header(header::CONTENT_TYPE, "application/json")
            .header(header_name, value)
            .body(Body::from("{\"customer\": \"b\"}"))
            .unwrap()
    };
    api.request(put("vellum-actor", &"x".repeat(257)))
        .await
        .problem(400);
    api.request(put("if-match", "\"01.0.0\""))
        .await
        .problem(400);
    api.request(put("if-match", "\"2147483648.0.0\""))
        .await
        .problem(412);
    assert_eq!(
        api.request(put("vellum-actor", "bob the builder"))
            .await
            .status
            .as_u16(),
        200
    );
    assert_eq!(api.request(put("if-match", "*")).await.status.as_u16(), 200);
}
