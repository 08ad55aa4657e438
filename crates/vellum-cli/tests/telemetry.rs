//! `vellum serve` with `OTEL_EXPORTER_OTLP_ENDPOINT`: the commit span of a unit of work reaches an
//! OTLP/HTTP collector, with its `uow_id`.

#[path = "../../vellum/tests/it/support.rs"]
#[allow(
    dead_code,
    reason = "shared with the library's tests, which use other parts"
)]
mod support;

#[allow(dead_code, reason = "each test binary uses part of it")]
mod server;

use std::time::Duration;

use serde_json::{Value, json};
use server::Server;
use support::TestDb;
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
    sync::mpsc,
};

const TOKEN: &str = "vlm_admin_otel_test_token_0123456789abcdef0123";

/// A collector that answers 200 to every request and hands over (path, body).
async fn collector() -> (String, mpsc::UnboundedReceiver<(String, Vec<u8>)>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (sent, received) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let sent = sent.clone();
            tokio::spawn(async move {
                let mut stream = BufReader::new(stream);
                loop {
                    let mut request_line = String::new();
                    if stream.read_line(&mut request_line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let path = request_line.split(' ').nth(1).unwrap_or("").to_string();
                    let mut length = 0;
                    loop {
                        let mut line = String::new();
                        stream.read_line(&mut line).await.unwrap();
                        if line == "\r\n" {
                            break;
                        }
                        if let Some((name, value)) = line.split_once(':')
                            && name.eq_ignore_ascii_case("content-length")
                        {
                            length = value.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0; length];
                    stream.read_exact(&mut body).await.unwrap();
                    let _ = sent.send((path, body));
                    stream
                        .get_mut()
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .await
                        .unwrap();
                }
            });
        }
    });
    (url, received)
}

#[tokio::test]
async fn commit_spans_are_exported_over_otlp_with_their_unit_of_work() {
    let db = TestDb::new().await;
    let (endpoint, mut received) = collector().await;
    let data_dir = std::env::temp_dir().join(format!("vellum-otel-{}", uuid::Uuid::new_v4()));
    let server = Server::start(&["serve"], |command| {
        command
            .env("DATABASE_URL", db.url())
            .env("VELLUM_DATA_DIR", &data_dir)
            .env("VELLUM_ADMIN_TOKEN", TOKEN)
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
            .env("OTEL_BSP_SCHEDULE_DELAY", "100")
            .env_remove("VELLUM_NATS_URL");
    })
    .await;

    server.request("PUT", "/v1/orders", TOKEN, None).await;
    let (_, committed) = server
        .request(
            "POST",
            "/v1/orders/transactions",
            TOKEN,
            Some(
                json!({"events": [{"type": "Traced", "aggregate_type": "span", "aggregate_id": "1"}]}),
            ),
        )
        .await;
    let committed: Value = serde_json::from_str(&committed).unwrap_or(Value::Null);
    let uow_id = committed["uow_id"].as_str().expect("committed").to_string();

    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some((path, body)) = received.recv().await {
            let contains = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
            if path == "/v1/traces" && contains(b"commit") && contains(uow_id.as_bytes()) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "no exported span carried uow_id {uow_id}");
    drop(server);
    let _ = std::fs::remove_dir_all(&data_dir);
}
