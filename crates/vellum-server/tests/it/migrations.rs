//! Migrations over HTTP: registering a major version with its migration, and reading an entity
//! as any registered schema version (`?schema_version=`).

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::api::{ADMIN, Api};

const SCHEMAS: &str = "/v1/orders/schemas/ticket";
const TICKETS: &str = "/v1/orders/entities/ticket";

fn v1() -> Value {
    json!({"type": "object", "additionalProperties": false, "required": ["title", "state"],
           "properties": {"title": {"type": "string"}, "state": {"enum": ["open", "closed"]}}})
}

fn v2() -> Value {
    json!({"type": "object", "additionalProperties": false,
           "required": ["subject", "state", "priority"],
           "properties": {"subject": {"type": "string"}, "state": {"enum": ["OPEN", "CLOSED"]},
                          "priority": {"type": "integer"}}})
}

fn to_v2() -> Value {
    json!({"from": "1.0.0", "operations": [
        {"op": "rename", "from": "/title", "to": "/subject"},
        {"op": "map", "path": "/state", "values": {"open": "OPEN", "closed": "CLOSED"}},
        {"op": "add", "path": "/priority", "value": 3}
    ]})
}

/// Service `orders` with `ticket` 1.0.0 and one ticket; returns its URL.
async fn with_ticket(api: &Api) -> String {
    api.send(Method::PUT, "/v1/orders", Some(ADMIN), None).await;
    let reply = api
        .send(
            Method::POST,
            SCHEMAS,
            Some(ADMIN),
            Some(json!({"version": "1.0.0", "definition": v1()})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:#}", reply.body);
    let created = api
        .send(
            Method::POST,
            TICKETS,
            Some(ADMIN),
            Some(json!({"title": "Printer on fire", "state": "open"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:#}", created.body);
    format!("{TICKETS}/{}", created.body["entity_id"].as_str().unwrap())
}

async fn register(api: &Api, body: Value) -> crate::api::Reply {
    api.send(Method::POST, SCHEMAS, Some(ADMIN), Some(body))
        .await
}

#[tokio::test]
async fn a_major_is_registered_with_its_migration_and_entities_read_as_any_version() {
    let api = Api::new().await;
    let ticket = with_ticket(&api).await;

    let registered = register(
        &api,
        json!({"version": "2.0.0", "definition": v2(), "migration": to_v2(), "activate": true}),
    )
    .await;
    assert_eq!(
        registered.status,
        StatusCode::CREATED,
        "{:#}",
        registered.body
    );
    let migration = &registered.body["migration"];
    assert_eq!(
        (
            &migration["from"],
            &migration["to"],
            &migration["reversibility"]
        ),
        (&json!("1.0.0"), &json!("2.0.0"), &json!("lossless"))
    );
    assert_eq!(migration["operations"], to_v2()["operations"]);
    let shown = api
        .send(
            Method::GET,
            &format!("{SCHEMAS}/versions/2.0.0"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(shown.body["migration"]["operations"], to_v2()["operations"]);

    let as_v2 = api
        .send(
            Method::GET,
            &format!("{ticket}?schema_version=2.0.0"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(as_v2.status, StatusCode::OK, "{:#}", as_v2.body);
    assert_eq!(
        as_v2.body["payload"],
        json!({"subject": "Printer on fire", "state": "OPEN", "priority": 3})
    );
    assert_eq!(as_v2.body["schema_version"], "2.0.0");
    assert_eq!(as_v2.header("vellum-stored-schema-version"), "1.0.0");
    assert_eq!(as_v2.header("etag"), "\"1.0.0\"");

    // Written under 2.0.0, read back by an old client as 1.0.0, combined with ?version=.
    let replaced = api
        .send(
            Method::PUT,
            &ticket,
            Some(ADMIN),
            Some(json!({"subject": "Printer fixed", "state": "CLOSED", "priority": 1})),
        )
        .await;
    assert_eq!(replaced.status, StatusCode::OK, "{:#}", replaced.body);
    let as_v1 = api
        .send(
            Method::GET,
            &format!("{ticket}?schema_version=1.0.0"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(as_v1.status, StatusCode::OK, "{:#}", as_v1.body);
    assert_eq!(
        as_v1.body["payload"],
        json!({"title": "Printer fixed", "state": "closed"})
    );
    assert_eq!(as_v1.header("vellum-stored-schema-version"), "2.0.0");
    let first = api
        .send(
            Method::GET,
            &format!("{ticket}?version=1.0.0&schema_version=1.0.0"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(
        first.body["payload"],
        json!({"title": "Printer on fire", "state": "open"})
    );
    // Without schema_version the stored version is returned as it is, without the header.
    let plain = api.send(Method::GET, &ticket, Some(ADMIN), None).await;
    assert_eq!(plain.body["schema_version"], "2.0.0");
    assert_eq!(plain.header("vellum-stored-schema-version"), "");
}

#[tokio::test]
async fn refused_migrations_and_reads_are_problems() {
    let api = Api::new().await;
    let ticket = with_ticket(&api).await;

    let missing = register(&api, json!({"version": "2.0.0", "definition": v2()})).await;
    let problem = missing.problem(422);
    assert_eq!(problem["type"], "urn:vellum:problem:invalid-migration");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("must be registered with a migration"),
        "{problem}"
    );

    let malformed = register(
        &api,
        json!({"version": "2.0.0", "definition": v2(),
               "migration": {"from": "1.0.0", "operations": [{"op": "explode", "path": "/title"}]}}),
    )
    .await;
    assert!(
        malformed.problem(400)["detail"]
            .as_str()
            .unwrap()
            .contains("operations/0: unknown variant `explode`"),
        "{:#}",
        malformed.body
    );

    // Without the default, the stored ticket would lack the required priority: refused, with
    // the sample.
    let mut no_default = to_v2();
    no_default["operations"].as_array_mut().unwrap().pop();
    let breaks = register(
        &api,
        json!({"version": "2.0.0", "definition": v2(), "migration": no_default}),
    )
    .await;
    let problem = breaks.problem(422);
    assert_eq!(
        problem["samples"][0]["violations"][0]["keyword"],
        "required"
    );
    assert_eq!(api.count("orders.schemas").await, 1, "nothing registered");

    // A lossy migration: forward reads work, backward ones are 409.
    let mut lossy = to_v2();
    lossy["operations"]
        .as_array_mut()
        .unwrap()
        .push(json!({"op": "remove", "path": "/subject"}));
    let mut untitled = v2();
    untitled["required"] = json!(["state", "priority"]);
    let registered = register(
        &api,
        json!({"version": "2.0.0", "definition": untitled, "migration": lossy, "activate": true}),
    )
    .await;
    assert_eq!(
        registered.status,
        StatusCode::CREATED,
        "{:#}",
        registered.body
    );
    let created = api
        .send(
            Method::POST,
            TICKETS,
            Some(ADMIN),
            Some(json!({"state": "OPEN", "priority": 2})),
        )
        .await;
    let new = format!("{TICKETS}/{}", created.body["entity_id"].as_str().unwrap());
    let back = api
        .send(
            Method::GET,
            &format!("{new}?schema_version=1.0.0"),
            Some(ADMIN),
            None,
        )
        .await;
    let problem = back.problem(409);
    assert_eq!(problem["type"], "urn:vellum:problem:not-convertible");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("operation 3 (remove /subject)"),
        "{problem}"
    );
    let forward = api
        .send(
            Method::GET,
            &format!("{ticket}?schema_version=2.0.0"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(
        forward.body["payload"],
        json!({"state": "OPEN", "priority": 3})
    );

    let unknown = api
        .send(
            Method::GET,
            &format!("{ticket}?schema_version=9.0.0"),
            Some(ADMIN),
            None,
        )
        .await;
    unknown.problem(404);
    let malformed = api
        .send(
            Method::GET,
            &format!("{ticket}?schema_version=2"),
            Some(ADMIN),
            None,
        )
        .await;
    malformed.problem(400);
}
