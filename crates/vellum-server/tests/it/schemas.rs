//! The schema repository over HTTP.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::api::{ADMIN, Api};

#[tokio::test]
async fn register_list_show_activate_and_soft_delete() {
    let api = Api::with_orders().await;
    let base = "/v1/orders/schemas/sales_order";
    let relaxed = json!({"type": "object"});
    let second = api
        .send(
            Method::POST,
            base,
            Some(ADMIN),
            Some(json!({"version": "1.1.0", "definition": relaxed})),
        )
        .await;
    assert_eq!(
        (second.status, &second.body["is_active"]),
        (StatusCode::CREATED, &json!(false))
    );
    api.send(
        Method::POST,
        base,
        Some(ADMIN),
        Some(json!({"version": "1.1.0", "definition": relaxed})),
    )
    .await
    .problem(409);
    api.send(
        Method::POST,
        base,
        Some(ADMIN),
        Some(json!({"version": "1.0.5", "definition": relaxed})),
    )
    .await
    .problem(409);

    let list = api
        .send(Method::GET, "/v1/orders/schemas", Some(ADMIN), None)
        .await;
    assert_eq!(
        list.body,
        json!([{"schema_id": "sales_order", "active_version": "1.0.0", "versions": 2}])
    );

    let activated = api
        .send(
            Method::POST,
            &format!("{base}/versions/1.1.0/activate"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(activated.body["is_active"], true);
    let shown = api
        .send(
            Method::GET,
            &format!("{base}/versions/1.1.0"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(shown.body["definition"], relaxed);

    api.send(
        Method::DELETE,
        &format!("{base}/versions/1.1.0"),
        Some(ADMIN),
        None,
    )
    .await
    .problem(409);
    api.send(
        Method::POST,
        &format!("{base}/versions/1.0.0/activate"),
        Some(ADMIN),
        None,
    )
    .await;
    let deleted = api
        .send(
            Method::DELETE,
            &format!("{base}/versions/1.1.0"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert!(deleted.body["deleted_at"].is_string());
    api.send(
        Method::GET,
        &format!("{base}/versions/1.1.0"),
        Some(ADMIN),
        None,
    )
    .await
    .problem(404);
    let with_deleted = api
        .send(
            Method::GET,
            &format!("{base}/versions/1.1.0?include_deleted=true"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(with_deleted.status, StatusCode::OK);

    let versions = api
        .send(Method::GET, &format!("{base}/versions"), Some(ADMIN), None)
        .await;
    let listed: Vec<&str> = versions
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["schema_version"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["1.0.0", "1.1.0"]);
    api.send(
        Method::GET,
        "/v1/orders/schemas/nothing/versions",
        Some(ADMIN),
        None,
    )
    .await
    .problem(404);
}

#[tokio::test]
async fn check_reports_the_documents_a_candidate_would_refuse() {
    let api = Api::with_orders().await;
    for body in [
        json!({"customer": "a", "total": 1}),
        json!({"customer": "b"}),
    ] {
        api.send(
            Method::POST,
            "/v1/orders/entities/sales_order",
            Some(ADMIN),
            Some(body),
        )
        .await;
    }
    let candidate = json!({"type": "object", "required": ["customer", "total"]});
    let reply = api
        .send(
            Method::POST,
            "/v1/orders/schemas/sales_order/check",
            Some(ADMIN),
            Some(json!({"version": "2.0.0", "definition": candidate})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
    assert_eq!(
        (
            &reply.body["documents_checked"],
            &reply.body["documents_failing"]
        ),
        (&json!(2), &json!(1))
    );
    assert_eq!(
        reply.body["samples"][0]["violations"][0]["keyword"],
        "required"
    );
    assert_eq!(reply.body["registration_problems"], json!([]));
    let invalid = json!({"version": "2.0.0", "definition": {"type": "nonsense"}});
    api.send(
        Method::POST,
        "/v1/orders/schemas/sales_order/check",
        Some(ADMIN),
        Some(invalid),
    )
    .await
    .problem(422);
    assert_eq!(
        api.count("orders.schemas").await,
        1,
        "a check registers nothing"
    );
}
