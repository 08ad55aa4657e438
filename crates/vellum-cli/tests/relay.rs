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
