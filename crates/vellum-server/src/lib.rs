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

pub use admin_token::{AdminTokenSource, admin_token};
pub use routes::app;
pub use state::{AppState, Limits};

/// Serves the API on `listener` until `shutdown` completes, then stops accepting connections
/// and waits for in-flight requests to finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}
