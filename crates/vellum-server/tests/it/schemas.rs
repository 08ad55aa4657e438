//! The schema repository over HTTP.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::api::{ADMIN, Api, ORDER_SCHEMA};

#[tokio::test]
async fn register_list_show_activate_and_soft_delete() {
    let api = Api::with_orders().await;
    let base = "/v1/orders/schemas/sales_order";
    // A minor change: the order schema with `customer` no longer required.
    let mut relaxed: serde_json::Value = serde_json::from_str(crate::api::ORDER_SCHEMA).unwrap();
    relaxed.as_object_mut().unwrap().remove("required");
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
            Some(json!({"version": "2.0.0", "definition": candidate,
                        "migration": {"from": "1.0.0", "operations": []}})),
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

#[tokio::test]
async fn an_incompatible_version_is_refused_with_its_changes_and_nothing_registered() {
    let api = Api::with_orders().await;
    let base = "/v1/orders/schemas/sales_order";
    let mut stricter: Value = serde_json::from_str(ORDER_SCHEMA).unwrap();
    stricter["required"] = json!(["customer", "total"]);

    let reply = api
        .send(
            Method::POST,
            base,
            Some(ADMIN),
            Some(json!({"version": "1.0.1", "definition": stricter})),
        )
        .await;
    let problem = reply.problem(409);
    assert_eq!(problem["type"], "urn:vellum:problem:incompatible-schema");
    assert_eq!(
        (
            &problem["against"],
            &problem["mode"],
            &problem["declared"],
            &problem["detected"]
        ),
        (
            &json!("1.0.0"),
            &json!("BACKWARD"),
            &json!("patch"),
            &json!("major")
        )
    );
    assert_eq!(
        problem["changes"],
        json!([{
            "path": "/required", "kind": "required_added", "property": "total",
            "backward": false, "forward": true, "class": "major",
            "description": "property `total` is now required"
        }])
    );
    assert!(problem.get("violations").is_none());
    assert_eq!(api.count("orders.schemas").await, 1, "nothing registered");

    let major = api
        .send(
            Method::POST,
            base,
            Some(ADMIN),
            Some(json!({"version": "2.0.0", "definition": stricter,
                        "migration": {"from": "1.0.0", "operations": []}})),
        )
        .await;
    assert_eq!(major.status, StatusCode::CREATED, "{:#}", major.body);
    assert_eq!(major.body["assessment"]["class"], "major");
    assert_eq!(major.body["assessment"]["predecessor"], "1.0.0");
    assert_eq!(major.body["assessment"]["compatible"], true);
}

#[tokio::test]
async fn the_compatibility_mode_is_read_and_set_per_schema_id() {
    let api = Api::with_orders().await;
    let url = "/v1/orders/schemas/sales_order/compatibility";
    let read = api.send(Method::GET, url, Some(ADMIN), None).await;
    assert_eq!(
        (read.status, read.body),
        (
            StatusCode::OK,
            json!({"schema_id": "sales_order", "mode": "BACKWARD"})
        )
    );
    let set = api
        .send(Method::PUT, url, Some(ADMIN), Some(json!({"mode": "FULL"})))
        .await;
    assert_eq!(
        (set.status, set.body),
        (
            StatusCode::OK,
            json!({"schema_id": "sales_order", "mode": "FULL"})
        )
    );
    let reader = api.token("orders", &["read"]).await;
    let read = api.send(Method::GET, url, Some(&reader), None).await;
    assert_eq!(read.body["mode"], "FULL");
    api.send(
        Method::PUT,
        url,
        Some(&reader),
        Some(json!({"mode": "NONE"})),
    )
    .await
    .problem(403);
    api.send(
        Method::PUT,
        url,
        Some(ADMIN),
        Some(json!({"mode": "SIDEWAYS"})),
    )
    .await
    .problem(400);

    // FULL refuses a widening minor version that BACKWARD would accept.
    let mut relaxed: Value = serde_json::from_str(ORDER_SCHEMA).unwrap();
    relaxed["properties"]["customer"] = json!({"type": "string"});
    let register = json!({"version": "1.1.0", "definition": relaxed});
    let refused = api
        .send(
            Method::POST,
            "/v1/orders/schemas/sales_order",
            Some(ADMIN),
            Some(register.clone()),
        )
        .await;
    let problem = refused.problem(409);
    assert_eq!(
        (&problem["mode"], &problem["detected"]),
        (&json!("FULL"), &json!("minor"))
    );
    api.send(
        Method::PUT,
        url,
        Some(ADMIN),
        Some(json!({"mode": "BACKWARD"})),
    )
    .await;
    let accepted = api
        .send(
            Method::POST,
            "/v1/orders/schemas/sales_order",
            Some(ADMIN),
            Some(register),
        )
        .await;
    assert_eq!(accepted.status, StatusCode::CREATED, "{:#}", accepted.body);

    // A schema id without versions can be configured ahead of its first registration.
    let ahead = api
        .send(
            Method::PUT,
            "/v1/orders/schemas/invoice/compatibility",
            Some(ADMIN),
            Some(json!({"mode": "FORWARD_TRANSITIVE"})),
        )
        .await;
    assert_eq!(ahead.status, StatusCode::OK);
    api.send(
        Method::GET,
        "/v1/nowhere/schemas/invoice/compatibility",
        Some(ADMIN),
        None,
    )
    .await
    .problem(404);
}

#[tokio::test]
async fn check_shows_the_classification_against_the_predecessor() {
    let api = Api::with_orders().await;
    let mut candidate: Value = serde_json::from_str(ORDER_SCHEMA).unwrap();
    candidate["properties"]["status"] = json!({"enum": ["open", "done"]});
    candidate["additionalProperties"] = json!(false);
    let reply = api
        .send(
            Method::POST,
            "/v1/orders/schemas/sales_order/check",
            Some(ADMIN),
            Some(json!({"version": "1.1.0", "definition": candidate})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
    let body = &reply.body;
    assert_eq!(
        (
            &body["predecessor"],
            &body["declared"],
            &body["class"],
            &body["mode"],
            &body["compatible"]
        ),
        (
            &json!("1.0.0"),
            &json!("minor"),
            &json!("major"),
            &json!("BACKWARD"),
            &json!(false)
        )
    );
    let kinds: Vec<(&str, &str)> = body["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["path"].as_str().unwrap(), c["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("/properties/status", "property_added"),
            ("/additionalProperties", "additional_properties_closed")
        ]
    );
    assert_eq!(body["incompatibility"]["detected"], "major");
    let problems = body["registration_problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0]
            .as_str()
            .unwrap()
            .contains("incompatible with 1.0.0"),
        "{problems:?}"
    );
    assert_eq!(
        api.count("orders.schemas").await,
        1,
        "a check registers nothing"
    );
}
