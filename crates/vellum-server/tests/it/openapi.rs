//! The OpenAPI document describes every route the router serves, and only those.

use axum::http::{Method, StatusCode};
use serde_json::Value;

use crate::api::Api;

/// Every operation the router serves (besides `/openapi.json` itself and the `/docs` pages).
const ROUTES: &[(&str, &str)] = &[
    ("put", "/v1/{service}"),
    ("post", "/v1/{service}/tokens"),
    ("get", "/v1/{service}/schemas"),
    ("post", "/v1/{service}/schemas/{schema_id}"),
    ("post", "/v1/{service}/schemas/{schema_id}/check"),
    ("get", "/v1/{service}/schemas/{schema_id}/compatibility"),
    ("put", "/v1/{service}/schemas/{schema_id}/compatibility"),
    ("get", "/v1/{service}/schemas/{schema_id}/versions"),
    (
        "get",
        "/v1/{service}/schemas/{schema_id}/versions/{version}",
    ),
    (
        "delete",
        "/v1/{service}/schemas/{schema_id}/versions/{version}",
    ),
    (
        "post",
        "/v1/{service}/schemas/{schema_id}/versions/{version}/activate",
    ),
    ("post", "/v1/{service}/entities/{schema_id}"),
    ("get", "/v1/{service}/entities/{schema_id}/{id}"),
    ("put", "/v1/{service}/entities/{schema_id}/{id}"),
    ("patch", "/v1/{service}/entities/{schema_id}/{id}"),
    ("delete", "/v1/{service}/entities/{schema_id}/{id}"),
    ("get", "/v1/{service}/entities/{schema_id}/{id}/history"),
    ("post", "/v1/{service}/entities/{schema_id}/query"),
    ("post", "/v1/{service}/transactions"),
    ("get", "/v1/{service}/events"),
    ("get", "/v1/{service}/events/stream"),
    ("get", "/v1/{service}/events/settings"),
    ("put", "/v1/{service}/events/settings"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
];

#[tokio::test]
async fn every_route_is_documented_and_every_documented_route_is_served() {
    let api = Api::new().await;
    let doc = api.send(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(doc.status, StatusCode::OK);
    assert!(doc.body["openapi"].as_str().unwrap().starts_with("3.1"));

    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in doc.body["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "put", "post", "patch", "delete"].contains(&method.as_str()) {
                documented.push((method.clone(), path.clone()));
            }
        }
    }
    let mut expected: Vec<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    documented.sort();
    expected.sort();
    assert_eq!(documented, expected);
    let mut operation_ids: Vec<&str> = doc.body["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .filter_map(|operation| operation["operationId"].as_str())
        .collect();
    let count = operation_ids.len();
    operation_ids.sort();
    operation_ids.dedup();
    assert_eq!(
        operation_ids.len(),
        count,
        "operation ids are unique: {operation_ids:?}"
    );

    // Each documented operation reaches a handler: without a token the v1 routes answer 401 (a
    // missing route would be a 404 from the fallback, a wrong method a 405).
    for (method, path) in &documented {
        let uri = path
            .replace("{service}", "orders")
            .replace("{schema_id}", "sales_order")
            .replace("{version}", "1.0.0")
            .replace("{id}", "0190c0de-0000-7000-8000-000000000000");
        let reply = api
            .send(method.to_uppercase().parse().unwrap(), &uri, None, None)
            .await;
        let expected = if uri.starts_with("/v1/") {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::OK
        };
        assert_eq!(reply.status, expected, "{method} {uri}");
    }
}

#[tokio::test]
async fn operations_document_their_errors_and_security() {
    let api = Api::new().await;
    let doc = api
        .send(Method::GET, "/openapi.json", None, None)
        .await
        .body;
    let operation = &doc["paths"]["/v1/{service}/entities/{schema_id}/{id}"]["put"];
    let statuses: Vec<&str> = operation["responses"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for status in [
        "200", "400", "401", "403", "404", "409", "412", "413", "415", "422", "503",
    ] {
        assert!(
            statuses.contains(&status),
            "PUT entity does not document {status}"
        );
    }
    assert_eq!(operation["security"], serde_json::json!([{"bearer": []}]));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let entity = &doc["components"]["schemas"]["Entity"]["properties"];
    for field in [
        "entity_id",
        "entity_version",
        "revision",
        "payload",
        "created_at",
        "uow_id",
    ] {
        assert!(entity.get(field).is_some(), "Entity schema lacks {field}");
    }
    // Reading as another schema version: the parameter, its header and its 409.
    let get = &doc["paths"]["/v1/{service}/entities/{schema_id}/{id}"]["get"];
    let parameters: Vec<&str> = get["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for name in ["version", "as_of", "schema_version"] {
        assert!(parameters.contains(&name), "GET entity lacks {name}");
    }
    assert!(get["responses"]["409"].is_object());
    assert!(get["responses"]["200"]["headers"]["Vellum-Stored-Schema-Version"].is_object());
    // Registering with a migration: the grammar of the operations is described.
    let schemas = &doc["components"]["schemas"];
    assert!(schemas["RegisterRequest"]["properties"]["migration"].is_object());
    let operation = serde_json::to_string(&schemas["Operation"]).unwrap();
    for op in ["rename", "add", "remove", "set", "cast", "map"] {
        assert!(
            operation.contains(&format!("\"{op}\"")),
            "Operation lacks {op}"
        );
    }
    assert!(schemas["Problem"]["properties"]["samples"].is_object());
    let problem = doc["components"]["schemas"]["Problem"].clone();
    assert_eq!(
        problem["properties"]["violations"]["type"],
        Value::from(vec!["array", "null"])
    );
}
