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

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use serde_json::json;
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

/// One HTTP/1.1 request to the server; the body of the answer.
async fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer.split_once("\r\n\r\n").unwrap().1.to_string()
}

#[tokio::test]
async fn vellum_serve_with_a_nats_url_relays_what_transactions_commit() {
    use tokio::io::AsyncBufReadExt;
    let Some(client) = nats::shared_nats().await else {
        return;
    };
    let db = TestDb::new().await;
    let token = "vlm_admin_relay_test_token_0123456789abcdef0123";
    let name = format!("s{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let mut server = Command::new(env!("CARGO_BIN_EXE_vellum"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--nats-url",
            "127.0.0.1:4222",
        ])
        .env("DATABASE_URL", db.url())
        .env("VELLUM_ADMIN_TOKEN", token)
        .env_remove("VELLUM_DATA_DIR")
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stderr = tokio::io::BufReader::new(server.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = tokio::time::timeout(Duration::from_secs(30), stderr.next_line())
            .await
            .expect("the server starts")
            .unwrap()
            .expect("the server runs");
        if let Some(rest) = line.strip_prefix("vellum listening on http://") {
            break rest.split(' ').next().unwrap().to_string();
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = stderr.next_line().await {} });

    http(&addr, "PUT", &format!("/v1/{name}"), token, None).await;
    let committed = http(
        &addr,
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
    let metrics = http(&addr, "GET", "/metrics", token, None).await;
    assert!(
        metrics.contains(&format!("vellum_relay_leader{{service=\"{name}\"}} 1")),
        "{metrics}"
    );
    let _ = server.start_kill();
    let _ = jetstream.delete_stream(&stream_name).await;
}
