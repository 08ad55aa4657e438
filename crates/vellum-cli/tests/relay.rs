//! `vellum relay` as an operator runs it: a real process publishing to the shared NATS server.

#[path = "../../vellum/tests/it/support.rs"]
#[allow(
    dead_code,
    reason = "shared with the library's tests, which use other parts"
)]
mod support;

#[path = "../../vellum/tests/it/nats.rs"]
#[allow(dead_code, reason = "shared with the library's tests")]
mod nats;

#[allow(dead_code, reason = "each test binary uses part of it")]
mod server;

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use serde_json::json;
use server::Server;
use support::TestDb;
use tokio::process::Command;
use vellum::{Event, OutboxRelay, ServiceName, Store, StoreOptions, async_nats};

#[tokio::test]
async fn vellum_relay_publishes_the_outbox_and_stops_cleanly_on_sigterm() {
    let Some(client) = nats::shared_nats().await else {
        return;
    };
    let db = TestDb::new().await;
    let store = Store::connect(db.config(), StoreOptions::default())
        .await
        .unwrap();
    let name = ServiceName::new(format!(
        "c{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    ))
    .unwrap();
    store.create_service(&name).await.unwrap();
    let service = store.service(&name).await.unwrap();
    let mut uow = service.begin("cli-test").await.unwrap();
    for n in 0..3 {
        uow.emit(Event::new("Ticked", "clock", "c1", json!({"n": n})))
            .unwrap();
    }
    uow.commit().await.unwrap();

    let child = Command::new(env!("CARGO_BIN_EXE_vellum"))
        .args([
            "relay",
            "--nats-url",
            "127.0.0.1:4222",
            "--service",
            name.as_str(),
        ])
        .args(["--status-interval", "1"])
        .env("DATABASE_URL", db.url())
        .env_remove("VELLUM_DATA_DIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    let jetstream = async_nats::jetstream::new(client);
    let stream_name = OutboxRelay::stream_name(&name);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stored = match jetstream.get_stream(&stream_name).await {
            Ok(mut stream) => stream.info().await.unwrap().state.messages,
            Err(_) => 0,
        };
        if stored == 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the relay published {stored} of 3"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let one status line through, then stop it the way an init system would.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("vellum relay stops on SIGTERM")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("relay status"), "{stderr}");
    assert!(stderr.contains("lag_events=0"), "{stderr}");
    let _ = jetstream.delete_stream(&stream_name).await;
}

#[tokio::test]
async fn vellum_serve_with_a_nats_url_relays_what_transactions_commit() {
    let Some(client) = nats::shared_nats().await else {
        return;
    };
    let db = TestDb::new().await;
    let token = "vlm_admin_relay_test_token_0123456789abcdef0123";
    let name = format!("s{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let server = Server::start(&["serve", "--nats-url", "127.0.0.1:4222"], |command| {
        command
            .env("DATABASE_URL", db.url())
            .env("VELLUM_ADMIN_TOKEN", token)
            .env_remove("VELLUM_DATA_DIR");
    })
    .await;

    server
        .request("PUT", &format!("/v1/{name}"), token, None)
        .await;
    let (_, committed) = server
        .request(
        "POST",
        &format!("/v1/{name}/transactions"),
        token,
        Some(
            json!({"events": [{"type": "Served", "aggregate_type": "relay", "aggregate_id": "1"}]}),
        ),
    )
    .await;
    let committed: serde_json::Value = serde_json::from_str(&committed).unwrap();
    let event_id = committed["events"][0]["event_id"]
        .as_str()
        .unwrap()
        .to_string();

    // The relay looks for new services every 10 s.
    let jetstream = async_nats::jetstream::new(client);
    let stream_name = OutboxRelay::stream_name(&ServiceName::new(name.clone()).unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    let message = loop {
        if let Ok(stream) = jetstream.get_stream(&stream_name).await
            && let Ok(message) = stream.get_raw_message(1).await
        {
            break message;
        }
        assert!(
            Instant::now() < deadline,
            "the served relay published nothing"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        message
            .headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .map(|v| v.as_str()),
        Some(event_id.as_str())
    );
    assert_eq!(
        message.subject.as_str(),
        format!("vellum.{name}.relay.Served")
    );
    let (_, metrics) = server.request("GET", "/metrics", token, None).await;
    assert!(
        metrics.contains(&format!("vellum_relay_leader{{service=\"{name}\"}} 1")),
        "{metrics}"
    );
    drop(server);
    let _ = jetstream.delete_stream(&stream_name).await;
}
