//! `POST /transactions`: all or nothing, the failing operation or event named, entities and
//! events answered in order; and the event feed and stream that follow it.

use std::time::Duration;

use axum::{
    body::Body,
    http::{Method, Request, StatusCode, header},
};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::api::{ADMIN, Api};

const TX: &str = "/v1/orders/transactions";

async fn with_wallets() -> Api {
    let api = Api::with_orders().await;
    let schema = json!({"version": "1.0.0", "definition": {
        "type": "object", "required": ["owner", "balance"],
        "properties": {"owner": {"type": "string"}, "balance": {"type": "integer", "minimum": 0}}}});
    let reply = api
        .send(
            Method::POST,
            "/v1/orders/schemas/wallet",
            Some(ADMIN),
            Some(schema),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:#}", reply.body);
    api
}

fn create(balance: i64) -> Value {
    json!({"op": "create", "schema_id": "wallet", "payload": {"owner": "ann", "balance": balance}})
}

/// Reads the feed until `n` events came after `after` (the horizon may lag behind other tests'
/// transactions).
async fn feed(api: &Api, after: i64, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = api
            .send(
                Method::GET,
                &format!("/v1/orders/events?after={after}&limit=1000"),
                Some(ADMIN),
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
        let events = reply.body["events"].as_array().unwrap().clone();
        if events.len() >= n {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "feed has {} of {n}",
            events.len()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_transaction_commits_every_operation_and_event_together() {
    let api = with_wallets().await;
    let setup = api
        .send(
            Method::POST,
            TX,
            Some(ADMIN),
            Some(json!({"operations": [create(10), create(0), create(7)]})),
        )
        .await;
    assert_eq!(setup.status, StatusCode::OK, "{:#}", setup.body);
    let ids: Vec<String> = setup.body["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["entity_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(setup.body["events"], json!([]));

    let transfer = json!({
        "operations": [
            {"op": "update", "schema_id": "wallet", "entity_id": ids[0], "expected_version": "1.0.0",
             "payload": {"owner": "ann", "balance": 4}},
            {"op": "patch", "schema_id": "wallet", "entity_id": ids[1], "expected_version": "1.0.0",
             "patch": {"balance": 6}},
            {"op": "patch", "schema_id": "wallet", "entity_id": ids[1], "patch": {"owner": "bob"}},
            {"op": "delete", "schema_id": "wallet", "entity_id": ids[2], "expected_version": "1.0.0"}
        ],
        "events": [{"type": "TransferCompleted", "aggregate_type": "wallet", "aggregate_id": ids[0],
                    "aggregate_version": "1.0.1", "data": {"from": ids[0], "to": ids[1], "amount": 6}}]
    });
    let reply = api
        .send(Method::POST, TX, Some(ADMIN), Some(transfer))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
    let entities = reply.body["entities"].as_array().unwrap();
    let summary: Vec<(&str, &str)> = entities
        .iter()
        .map(|e| {
            (
                e["entity_id"].as_str().unwrap(),
                e["entity_version"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (ids[0].as_str(), "1.0.1"),
            (ids[1].as_str(), "1.0.1"),
            (ids[1].as_str(), "1.0.2"),
            (ids[2].as_str(), "1.0.0"),
        ]
    );
    assert_eq!(
        entities[2]["payload"],
        json!({"owner": "bob", "balance": 6}),
        "a patch sees the earlier operation's staged write"
    );
    assert!(entities[3]["deleted_at"].is_string());
    let events = reply.body["events"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["event_type"], "TransferCompleted");
    assert_eq!(events[0]["uow_id"], reply.body["uow_id"]);
    let position = events[0]["position"].as_i64().unwrap();
    assert!(position > 0);

    let fed = feed(&api, 0, 1).await;
    assert_eq!(fed[0]["position"], position);
    assert_eq!(fed[0]["id"], events[0]["event_id"]);
    assert_eq!(fed[0]["source"], "vellum/orders");
    assert_eq!(fed[0]["subject"], ids[0].as_str());
    assert_eq!(fed[0]["aggregateversion"], "1.0.1");
    let after = api
        .send(
            Method::GET,
            &format!("/v1/orders/events?after={position}"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(after.body, json!({"events": [], "next_after": position}));
}

#[tokio::test]
async fn a_conflict_is_409_naming_the_operation_and_writes_nothing() {
    let api = with_wallets().await;
    let setup = api
        .send(
            Method::POST,
            TX,
            Some(ADMIN),
            Some(json!({"operations": [create(5)]})),
        )
        .await;
    let id = setup.body["entities"][0]["entity_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (versions, outbox) = (
        api.count("orders.wallet").await,
        api.count("orders.outbox").await,
    );

    let stale = json!({
        "operations": [
            create(1),
            {"op": "update", "schema_id": "wallet", "entity_id": id, "expected_version": "1.0.7",
             "payload": {"owner": "x", "balance": 1}}
        ],
        "events": [{"type": "Anything", "aggregate_type": "wallet", "aggregate_id": id}]
    });
    let reply = api.send(Method::POST, TX, Some(ADMIN), Some(stale)).await;
    let problem = reply.problem(409);
    assert_eq!(problem["operation"], 1);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .starts_with("operations[1]:")
    );

    let duplicate = json!({"operations": [
        create(1),
        {"op": "create", "schema_id": "wallet", "entity_id": id, "payload": {"owner": "x", "balance": 1}}
    ]});
    let reply = api
        .send(Method::POST, TX, Some(ADMIN), Some(duplicate))
        .await;
    assert_eq!(reply.problem(409)["operation"], 1);

    let missing = json!({"operations": [
        {"op": "delete", "schema_id": "wallet", "entity_id": uuid::Uuid::now_v7()}
    ]});
    let reply = api.send(Method::POST, TX, Some(ADMIN), Some(missing)).await;
    assert_eq!(reply.problem(404)["operation"], 0);

    assert_eq!(api.count("orders.wallet").await, versions);
    assert_eq!(api.count("orders.outbox").await, outbox);
}

#[tokio::test]
async fn an_invalid_document_or_event_is_422_naming_it_and_writes_nothing() {
    let api = with_wallets().await;
    let invalid_document = json!({"operations": [
        create(1), create(2), {"op": "create", "schema_id": "wallet", "payload": {"owner": "x", "balance": -1}}
    ]});
    let reply = api
        .send(Method::POST, TX, Some(ADMIN), Some(invalid_document))
        .await;
    let problem = reply.problem(422);
    assert_eq!(problem["operation"], 2);
    assert_eq!(problem["violations"][0]["pointer"], "/balance");

    let invalid_event = json!({"operations": [create(1)], "events": [
        {"type": "Fine", "aggregate_type": "wallet", "aggregate_id": "a"},
        {"type": "Not.a valid subject", "aggregate_type": "wallet", "aggregate_id": "a"}
    ]});
    let reply = api
        .send(Method::POST, TX, Some(ADMIN), Some(invalid_event))
        .await;
    let problem = reply.problem(422);
    assert_eq!(problem["event"], 1);
    assert!(problem.get("operation").is_none());

    api.send(Method::POST, TX, Some(ADMIN), Some(json!({})))
        .await
        .problem(422);
    let incomplete = json!({"operations": [create(1),
        {"op": "update", "schema_id": "wallet", "payload": {"owner": "x", "balance": 1}}]});
    let reply = api
        .send(Method::POST, TX, Some(ADMIN), Some(incomplete))
        .await;
    assert_eq!(reply.problem(422)["operation"], 1);
    let mixed = json!({"operations": [{"op": "delete", "schema_id": "wallet",
        "entity_id": uuid::Uuid::now_v7(), "payload": {}}]});
    let reply = api.send(Method::POST, TX, Some(ADMIN), Some(mixed)).await;
    assert_eq!(reply.problem(422)["operation"], 0);
    for bad in [
        json!({"operations": [{"op": "upsert", "schema_id": "wallet"}]}),
        json!({"operations": [{"op": "delete", "schema_id": "wallet", "entity_id": ""}]}),
        json!({"operations": [{"op": "delete", "schema_id": "wallet",
                               "entity_id": "0190a8b2c3d47e5f8a9b0c1d2e3f4a5b"}]}),
        json!({"operations": [], "extra": 1}),
    ] {
        api.send(Method::POST, TX, Some(ADMIN), Some(bad))
            .await
            .problem(400);
    }
    assert_eq!(api.count("orders.wallet").await, 0);
    assert_eq!(api.count("orders.outbox").await, 0);
}

#[tokio::test]
async fn feed_and_stream_need_the_read_scope_and_a_valid_position() {
    let api = with_wallets().await;
    let write_only = api.token("orders", &["write"]).await;
    let reader = api.token("orders", &["read"]).await;
    for uri in ["/v1/orders/events", "/v1/orders/events/stream"] {
        api.send(Method::GET, uri, Some(&write_only), None)
            .await
            .problem(403);
    }
    api.send(
        Method::GET,
        "/v1/orders/events?after=-1",
        Some(&reader),
        None,
    )
    .await
    .problem(400);
    api.send(
        Method::GET,
        "/v1/orders/events?limit=0",
        Some(&reader),
        None,
    )
    .await
    .problem(400);
    let reply = api
        .send(Method::GET, "/v1/orders/events", Some(&reader), None)
        .await;
    assert_eq!(reply.body, json!({"events": [], "next_after": 0}));
}

/// Reads server-sent events from a streaming body until `n` came, with a deadline.
async fn sse_events(body: &mut Body, n: usize) -> Vec<(i64, Value)> {
    let mut text = String::new();
    let mut events = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while events.len() < n {
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .expect("events arrive before the deadline")
            .expect("the stream stays open")
            .unwrap();
        if let Ok(data) = frame.into_data() {
            text.push_str(std::str::from_utf8(&data).unwrap());
        }
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let (mut id, mut data) = (None, None);
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id: ").or(line.strip_prefix("id:")) {
                    id = Some(v.trim().parse::<i64>().unwrap());
                } else if let Some(v) = line.strip_prefix("data: ").or(line.strip_prefix("data:")) {
                    data = Some(serde_json::from_str::<Value>(v).unwrap());
                }
            }
            if let (Some(id), Some(data)) = (id, data) {
                events.push((id, data));
            }
        }
    }
    events
}

#[tokio::test]
async fn the_stream_delivers_commits_as_they_happen_and_resumes_after_last_event_id() {
    let api = with_wallets().await;
    let emit = |n: i64| json!({"events": [{"type": "Tick", "aggregate_type": "clock", "aggregate_id": "c", "data": {"n": n}}]});
    let first = api.send(Method::POST, TX, Some(ADMIN), Some(emit(1))).await;
    let first_position = first.body["events"][0]["position"].as_i64().unwrap();

    let request = Request::get("/v1/orders/events/stream")
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
        .header("last-event-id", first_position.to_string())
        .body(Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(api.router.clone(), request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    let mut body = response.into_body();

    let mut positions = Vec::new();
    for n in 2..=3 {
        let reply = api.send(Method::POST, TX, Some(ADMIN), Some(emit(n))).await;
        positions.push(reply.body["events"][0]["position"].as_i64().unwrap());
    }
    let events = sse_events(&mut body, 2).await;
    let ids: Vec<i64> = events.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        ids, positions,
        "after Last-Event-ID, in order, nothing twice"
    );
    assert_eq!(events[0].1["data"], json!({"n": 2}));
    assert_eq!(events[1].1["type"], "Tick");
    assert_eq!(events[1].1["position"], positions[1]);
}

#[tokio::test]
async fn metrics_count_commits_conflicts_validation_failures_and_events() {
    let api = with_wallets().await;
    let ok = json!({"operations": [create(1)],
                    "events": [{"type": "Opened", "aggregate_type": "wallet", "aggregate_id": "w"}]});
    assert_eq!(
        api.send(Method::POST, TX, Some(ADMIN), Some(ok))
            .await
            .status,
        StatusCode::OK
    );
    let invalid = json!({"operations": [create(-1)]});
    api.send(Method::POST, TX, Some(ADMIN), Some(invalid))
        .await
        .problem(422);
    let id = uuid::Uuid::now_v7();
    let twice = json!({"operations": [
        {"op": "create", "schema_id": "wallet", "entity_id": id, "payload": {"owner": "a", "balance": 1}}]});
    api.send(Method::POST, TX, Some(ADMIN), Some(twice)).await;
    let stale = json!({"operations": [{"op": "update", "schema_id": "wallet", "entity_id": id,
        "expected_version": "9.9.9", "payload": {"owner": "a", "balance": 1}}]});
    api.send(Method::POST, TX, Some(ADMIN), Some(stale))
        .await
        .problem(409);

    let reply = api.send(Method::GET, "/metrics", None, None).await;
    let text = reply.body.as_str().unwrap();
    for line in [
        "vellum_uow_commits_total 2",
        "vellum_uow_conflicts_total 1",
        "vellum_uow_validation_failures_total 1",
        "vellum_outbox_events_written_total 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line} missing from:\n{text}"
        );
    }
    let validating: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("vellum_uow_validation_seconds_total "))
        .unwrap_or_else(|| panic!("no validation time in:\n{text}"))
        .parse()
        .unwrap();
    assert!(
        validating > 0.0,
        "the documents checked took time: {validating}"
    );
}

#[tokio::test]
async fn change_events_are_a_service_setting_for_admins() {
    let api = with_wallets().await;
    let reader = api.token("orders", &["read", "write"]).await;
    let settings = "/v1/orders/events/settings";
    let reply = api.send(Method::GET, settings, Some(&reader), None).await;
    assert_eq!(reply.body, json!({"change_events": false}));
    api.send(
        Method::PUT,
        settings,
        Some(&reader),
        Some(json!({"change_events": true})),
    )
    .await
    .problem(403);
    let reply = api
        .send(
            Method::PUT,
            settings,
            Some(ADMIN),
            Some(json!({"change_events": true})),
        )
        .await;
    assert_eq!(reply.body, json!({"change_events": true}));

    let reply = api
        .send(
            Method::POST,
            TX,
            Some(&reader),
            Some(json!({"operations": [create(3)]})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
    let event = &reply.body["events"][0];
    assert_eq!(event["event_type"], "entity.created");
    assert_eq!(event["aggregate_type"], "wallet");
    assert_eq!(
        event["aggregate_id"],
        reply.body["entities"][0]["entity_id"]
    );
    assert_eq!(event["aggregate_version"], "1.0.0");
    assert_eq!(
        event["data"]["payload"],
        json!({"owner": "ann", "balance": 3})
    );
}

#[tokio::test]
async fn the_feed_pages_in_position_order_with_next_after() {
    let api = with_wallets().await;
    let mut positions = Vec::new();
    for n in 0..5 {
        let body = json!({"events": [{"type": "Paged", "aggregate_type": "page", "aggregate_id": "p",
                                       "data": {"n": n}}]});
        let reply = api.send(Method::POST, TX, Some(ADMIN), Some(body)).await;
        positions.push(reply.body["events"][0]["position"].as_i64().unwrap());
    }
    let mut after = 0;
    let mut seen = Vec::new();
    loop {
        let page = api
            .send(
                Method::GET,
                &format!("/v1/orders/events?after={after}&limit=2"),
                Some(ADMIN),
                None,
            )
            .await;
        let events = page.body["events"].as_array().unwrap();
        assert!(events.len() <= 2);
        if events.is_empty() {
            assert_eq!(page.body["next_after"], after);
            break;
        }
        seen.extend(events.iter().map(|e| e["position"].as_i64().unwrap()));
        after = page.body["next_after"].as_i64().unwrap();
        assert_eq!(after, *seen.last().unwrap());
    }
    assert_eq!(seen, positions);
}
