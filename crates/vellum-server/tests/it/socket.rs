//! The server over a real socket: serve on 127.0.0.1:0, talk HTTP/1.1, shut down gracefully.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use vellum::{Store, StoreOptions};
use vellum_server::{AppState, Limits, serve};

use crate::{api::ADMIN, support::TestDb};

/// One HTTP/1.1 request with `Connection: close`; returns the status and the JSON body.
async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ADMIN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    let (_, body) = response.split_once("\r\n\r\n").unwrap();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn serves_over_tcp_and_shuts_down_gracefully() {
    let db = TestDb::new().await;
    let store = Store::connect(db.config(), StoreOptions::default())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        listener,
        AppState::new(store, ADMIN, Limits::default()),
        async {
            stopped.await.ok();
        },
    ));

    assert_eq!(
        http(addr, "GET", "/healthz", None).await,
        (200, json!({"status": "ok"}))
    );
    assert_eq!(http(addr, "PUT", "/v1/orders", None).await.0, 201);
    let definition = json!({"type": "object", "required": ["n"]});
    let (status, _) = http(
        addr,
        "POST",
        "/v1/orders/schemas/thing",
        Some(json!({"version": "1.0.0", "definition": definition})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, created) = http(
        addr,
        "POST",
        "/v1/orders/entities/thing",
        Some(json!({"n": 1})),
    )
    .await;
    assert_eq!((status, &created["entity_version"]), (201, &json!("1.0.0")));

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server stops")
        .unwrap()
        .unwrap();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}
