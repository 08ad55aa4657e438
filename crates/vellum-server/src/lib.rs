//! The vellum HTTP API.
//!
//! [`app`] builds the axum router over an [`AppState`]; [`serve`] runs it on a listener until a
//! shutdown signal, letting in-flight requests finish. Every route of the v1 API is described in
//! the OpenAPI 3.1 document served at `/openapi.json`, with interactive docs at `/docs`.

mod admin_token;
mod auth;
mod docs;
mod error;
mod extract;
mod merge_patch;
mod metrics;
mod openapi;
mod routes;
mod state;

use std::future::Future;
use std::net::SocketAddr;

use axum::serve::{Listener, ListenerExt};
use tokio::net::{TcpListener, TcpStream};

pub use admin_token::{AdminTokenSource, admin_token};
pub use routes::app;
pub use state::{AppState, Limits};

/// Serves the API on `listener` until `shutdown` completes, then stops accepting connections
/// and waits for in-flight requests to finish.
///
/// Every accepted connection has `TCP_NODELAY` set, so a response is not held back by Nagle's
/// algorithm waiting for the client's delayed ACK (up to 40 ms on Linux) when it leaves in more
/// than one write, as a streamed event response does.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(without_nagle(listener), app(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Wraps `listener` so that every connection it accepts has `TCP_NODELAY` set.
fn without_nagle(listener: TcpListener) -> impl Listener<Io = TcpStream, Addr = SocketAddr> {
    listener.tap_io(|stream: &mut TcpStream| {
        if let Err(error) = stream.set_nodelay(true) {
            tracing::warn!(%error, "could not set TCP_NODELAY on an accepted connection");
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_connections_have_nagle_disabled() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut listener = without_nagle(listener);
        let (_client, (accepted, _)) = tokio::join!(TcpStream::connect(address), listener.accept());
        assert!(accepted.nodelay().unwrap());
    }
}
