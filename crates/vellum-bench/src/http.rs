//! The HTTP workloads: vellum's server started in this process on `127.0.0.1:0`, and a small
//! load generator (a keep-alive HTTP/1.1 client) talking to it over loopback.

use std::{net::SocketAddr, sync::Arc};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{
    Method, Request, StatusCode,
    header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue},
};
use hyper_util::{
    client::legacy::{Client as HyperClient, connect::HttpConnector},
    rt::TokioExecutor,
};
use rand::rngs::StdRng;
use tokio::{sync::oneshot, task::JoinHandle};
use vellum::{SchemaId, ServiceName, Store};
use vellum_server::{AppState, Limits};

use crate::{Error, Result, document::Documents, driver::Client, fixture::ReadSet};

/// The server, and what the load generator needs to call it.
pub(crate) struct HttpServer {
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
    target: HttpTarget,
}

impl HttpServer {
    /// Serves `store` with the default limits and a fresh admin token, which the load generator
    /// uses (the token check is one SHA-256 per request, as for any caller).
    pub(crate) async fn start(
        store: Store,
        service: &ServiceName,
        schema_id: &SchemaId,
    ) -> Result<Self> {
        let token = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr: SocketAddr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let state = AppState::new(store, &token, Limits::default());
        let task = tokio::spawn(vellum_server::serve(listener, state, async {
            stopped.await.ok();
        }));
        let mut connector = HttpConnector::new();
        // Requests and answers are small: do not let Nagle's algorithm hold them back.
        connector.set_nodelay(true);
        let client = HyperClient::builder(TokioExecutor::new()).build(connector);
        let auth = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|e| Error::Http(e.to_string()))?;
        eprintln!("HTTP server on {addr}");
        Ok(Self {
            stop,
            task,
            target: HttpTarget {
                client,
                entities: Arc::from(format!("http://{addr}/v1/{service}/entities/{schema_id}")),
                auth,
            },
        })
    }

    pub(crate) fn target(&self) -> HttpTarget {
        self.target.clone()
    }

    /// Shuts the server down gracefully and waits for it.
    pub(crate) async fn stop(self) {
        drop(self.target);
        let _ = self.stop.send(());
        if let Ok(Err(err)) = self.task.await {
            eprintln!("the benchmark HTTP server failed: {err}");
        }
    }
}

/// A handle on the server's entity routes; clones share the client's connection pool.
#[derive(Clone)]
pub(crate) struct HttpTarget {
    client: HyperClient<HttpConnector, Full<Bytes>>,
    entities: Arc<str>,
    auth: HeaderValue,
}

impl HttpTarget {
    /// Sends a request and reads the whole answer; fails unless its status is `expected`.
    async fn call(
        &self,
        method: Method,
        uri: String,
        body: Bytes,
        expected: StatusCode,
    ) -> Result<()> {
        let request = Request::builder()
            .method(method)
            .uri(&uri)
            .header(AUTHORIZATION, self.auth.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .map_err(|e| Error::Http(e.to_string()))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| Error::Http(format!("{uri}: {e}")))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| Error::Http(format!("{uri}: {e}")))?
            .to_bytes();
        if status != expected {
            return Err(Error::Http(format!(
                "{uri} answered {status}: {}",
                String::from_utf8_lossy(&body)
            )));
        }
        Ok(())
    }
}

/// `http_get`: the latest version of a random entity of the read set.
pub(crate) struct HttpGet {
    pub(crate) target: HttpTarget,
    pub(crate) set: Arc<ReadSet>,
    pub(crate) rng: StdRng,
}

impl Client for HttpGet {
    async fn op(&mut self) -> Result<()> {
        let uri = format!("{}/{}", self.target.entities, self.set.pick(&mut self.rng));
        self.target
            .call(Method::GET, uri, Bytes::new(), StatusCode::OK)
            .await
    }
}

/// `http_create`: a new entity per request.
pub(crate) struct HttpCreate {
    pub(crate) target: HttpTarget,
    pub(crate) documents: Arc<Documents>,
    pub(crate) next: usize,
}

impl Client for HttpCreate {
    async fn op(&mut self) -> Result<()> {
        self.next += 1;
        let uri = self.target.entities.to_string();
        let body = self.documents.body(self.next);
        self.target
            .call(Method::POST, uri, body, StatusCode::CREATED)
            .await
    }
}
