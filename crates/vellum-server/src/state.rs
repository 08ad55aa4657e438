//! What every handler shares: the store, the admin token, limits and metrics.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::Duration,
};

use tokio::sync::watch;
use vellum::{RelayStatus, Service, ServiceName, Store};

use crate::{auth::AdminToken, error::ApiError, metrics::Metrics};

/// Limits on what a request may ask of the server.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Limits {
    /// Largest request body, in bytes (default 1 MiB); larger ones get 413.
    pub max_body_bytes: usize,
    /// Deepest JSON nesting accepted in a body (default 64; at most 128).
    pub max_json_depth: usize,
    /// Longest a request may take before it is answered 503 (default 30 s).
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 1 << 20,
            max_json_depth: 64,
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// The state of the HTTP API: cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    admin_token: AdminToken,
    limits: Limits,
    metrics: Arc<Metrics>,
    /// Services are never dropped, so their handles are cached once looked up.
    services: RwLock<HashMap<ServiceName, Service>>,
    /// The outbox relays of this process, for `/metrics`.
    relays: RwLock<HashMap<ServiceName, watch::Receiver<RelayStatus>>>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.inner.store)
            .field("limits", &self.inner.limits)
            .finish()
    }
}

impl AppState {
    /// State for [`crate::app`]: the store to serve, the admin token, and the limits.
    pub fn new(store: Store, admin_token: &str, limits: Limits) -> Self {
        let limits = Limits {
            max_json_depth: limits.max_json_depth.min(128),
            ..limits
        };
        Self {
            inner: Arc::new(Inner {
                store,
                admin_token: AdminToken::new(admin_token),
                limits,
                metrics: Arc::new(Metrics::new()),
                services: RwLock::default(),
                relays: RwLock::default(),
            }),
        }
    }

    /// Shows the status of an outbox relay running in this process in `/metrics` (outbox lag,
    /// publish latency, published and duplicate counts).
    pub fn track_relay(&self, service: ServiceName, status: watch::Receiver<RelayStatus>) {
        self.inner
            .relays
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(service, status);
    }

    /// The current status of every tracked relay.
    pub(crate) fn relay_statuses(&self) -> Vec<(ServiceName, RelayStatus)> {
        let relays = self.inner.relays.read().unwrap_or_else(|e| e.into_inner());
        let mut statuses: Vec<_> = relays
            .iter()
            .map(|(name, status)| (name.clone(), status.borrow().clone()))
            .collect();
        statuses.sort_by_key(|(name, _)| name.to_string());
        statuses
    }

    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    pub(crate) fn admin_token(&self) -> &AdminToken {
        &self.inner.admin_token
    }

    pub(crate) fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    pub(crate) fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// The handle of a provisioned service; 404 if there is none.
    pub(crate) async fn service(&self, name: &ServiceName) -> Result<Service, ApiError> {
        if let Some(service) = self
            .inner
            .services
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            return Ok(service.clone());
        }
        let service = self.inner.store.service(name).await?;
        self.inner
            .services
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.clone(), service.clone());
        Ok(service)
    }
}
