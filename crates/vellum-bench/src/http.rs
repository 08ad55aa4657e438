//! The HTTP workloads and the soak's clients: vellum's server started in this process on
//! `127.0.0.1:0`, and a small load generator talking to it over loopback, which checks every
//! answer. Each client of the generator keeps one keep-alive HTTP/1.1 connection of its own
//! and drives it in its own task, as a load generator on another machine would cost the server
//! nothing: the generator shares this machine's cores with the server and PostgreSQL, so every
//! hand-off it saves is measured as the server's.

use std::{net::SocketAddr, pin::Pin, sync::Arc};

use bytes::Bytes;
use futures_util::{
    FutureExt,
    future::{Either, select},
};
use http_body_util::{BodyExt, Full};
use hyper::{
    Method, Request, StatusCode,
    client::conn::http1,
    header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue, IF_MATCH},
};
use hyper_util::rt::TokioIo;
use rand::rngs::StdRng;
use serde::{Deserialize, de::DeserializeOwned, de::IgnoredAny};
use serde_json::{Value, json};
use tokio::{net::TcpStream, sync::oneshot, task::JoinHandle};
use uuid::Uuid;
use vellum::{SchemaId, ServiceName, Store, Version};
use vellum_server::{AppState, Limits};

use crate::{
    Error, Result,
    document::{Documents, SCHEMA_ID},
    driver::Client,
    fixture::{QUERY_PAGE, ReadSet, check_page, pick},
};

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
        eprintln!("HTTP server on {addr}");
        Ok(Self {
            stop,
            task,
            target: HttpTarget::new(addr, &token, format!("/v1/{service}/entities/{schema_id}"))?,
        })
    }

    /// A target for one client: the server's address and routes, and no connection yet.
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

/// One client's handle on the server's entity routes, with its own connection, opened at the
/// first call (and again after a failed one). A clone has no connection of its own yet.
pub(crate) struct HttpTarget {
    addr: SocketAddr,
    host: HeaderValue,
    auth: HeaderValue,
    /// The path of the benchmark type's entities.
    entities: Arc<str>,
    connection: Option<Connection>,
}

impl Clone for HttpTarget {
    fn clone(&self) -> Self {
        Self {
            addr: self.addr,
            host: self.host.clone(),
            auth: self.auth.clone(),
            entities: self.entities.clone(),
            connection: None,
        }
    }
}

/// A keep-alive HTTP/1.1 connection: what sends requests on it, and the connection itself,
/// which the calling task polls while it waits for an answer.
struct Connection {
    sender: http1::SendRequest<Full<Bytes>>,
    driver: Pin<Box<http1::Connection<TokioIo<TcpStream>, Full<Bytes>>>>,
}

impl HttpTarget {
    /// The entity routes under `entities` of the server on `addr`, called with `token`.
    fn new(addr: SocketAddr, token: &str, entities: String) -> Result<Self> {
        let header =
            |value: String| HeaderValue::from_str(&value).map_err(|e| Error::Http(e.to_string()));
        Ok(Self {
            addr,
            host: header(addr.to_string())?,
            auth: header(format!("Bearer {token}"))?,
            entities: Arc::from(entities),
            connection: None,
        })
    }

    async fn connect(&self) -> Result<Connection> {
        let stream = TcpStream::connect(self.addr).await?;
        // Requests and answers are small: do not let Nagle's algorithm hold them back.
        stream.set_nodelay(true)?;
        let (sender, driver) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| Error::Http(format!("connecting to {}: {e}", self.addr)))?;
        Ok(Connection {
            sender,
            driver: Box::pin(driver),
        })
    }

    /// Sends a request (with `If-Match: "<version>"` when given) and reads the whole answer;
    /// fails unless its status is `expected`. `path` is the request's path and query.
    async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Bytes,
        if_match: Option<Version>,
        expected: StatusCode,
    ) -> Result<Bytes> {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.host.clone())
            .header(AUTHORIZATION, self.auth.clone())
            .header(CONTENT_TYPE, "application/json");
        if let Some(version) = if_match {
            request = request.header(IF_MATCH, format!("\"{version}\""));
        }
        let request = request
            .body(Full::new(body))
            .map_err(|e| Error::Http(e.to_string()))?;
        let connection = match &mut self.connection {
            Some(connection) => connection,
            None => self.connection.insert(self.connect().await?),
        };
        let (answer, open) = {
            let Connection { sender, driver } = connection;
            let exchange = std::pin::pin!(async {
                sender.ready().await?;
                let response = sender.send_request(request).await?;
                let status = response.status();
                let body = response.into_body().collect().await?.to_bytes();
                Ok::<_, hyper::Error>((status, body))
            });
            // The connection makes progress only while it is polled: alongside the exchange,
            // in this task. When it ends (the server closed it), an answer it delivered in full
            // before is read with one more poll; one it left unfinished cannot finish, and
            // waiting for it would wait for ever.
            match select(exchange, driver.as_mut()).await {
                Either::Left((answer, _)) => (answer.map_err(|e| e.to_string()), true),
                Either::Right((Ok(()), exchange)) => match exchange.now_or_never() {
                    Some(answer) => (answer.map_err(|e| e.to_string()), false),
                    None => (Err("the server closed the connection".to_string()), false),
                },
                Either::Right((Err(err), _)) => (Err(err.to_string()), false),
            }
        };
        if !open || answer.is_err() {
            self.connection = None;
        }
        let (status, body) = answer.map_err(|why| Error::Http(format!("{path}: {why}")))?;
        if status != expected {
            return Err(Error::Http(format!(
                "{path} answered {status}: {}",
                String::from_utf8_lossy(&body)
            )));
        }
        Ok(body)
    }
}

/// What the checks read of an entity in an answer; `P` is how much of the payload they read
/// (`IgnoredAny` skips it without building it).
#[derive(Deserialize)]
struct EntityAnswer<P> {
    entity_id: Uuid,
    entity_version: Version,
    schema_id: String,
    payload: P,
}

impl<P: DeserializeOwned> EntityAnswer<P> {
    /// Parses an answer of `uri`; fails unless it is an entity of the benchmark's type.
    fn parse(uri: &str, body: &[u8]) -> Result<Self> {
        let answer: Self = serde_json::from_slice(body).map_err(|e| {
            Error::Check(format!(
                "{uri} answered something other than an entity: {e}"
            ))
        })?;
        answer.of_the_benchmark_type(uri)?;
        Ok(answer)
    }
}

impl<P> EntityAnswer<P> {
    fn of_the_benchmark_type(&self, uri: &str) -> Result<()> {
        expect(self.schema_id == SCHEMA_ID, uri, || {
            format!("an entity of type {}", self.schema_id)
        })
    }
}

/// Fails with what `uri` answered unless `ok`.
fn expect(ok: bool, uri: &str, answered: impl FnOnce() -> String) -> Result<()> {
    if ok {
        return Ok(());
    }
    Err(Error::Check(format!("{uri} answered {}", answered())))
}

/// `http_get`: the latest version of a random entity of the read set.
pub(crate) struct HttpGet {
    pub(crate) target: HttpTarget,
    pub(crate) set: Arc<ReadSet>,
    pub(crate) rng: StdRng,
}

impl Client for HttpGet {
    /// Checks the answer is the entity asked for, at the latest version the read set wrote.
    async fn op(&mut self) -> Result<()> {
        let id = self.set.pick(&mut self.rng);
        let uri = format!("{}/{id}", self.target.entities);
        let body = self
            .target
            .call(Method::GET, &uri, Bytes::new(), None, StatusCode::OK)
            .await?;
        let entity = EntityAnswer::<IgnoredAny>::parse(&uri, &body)?;
        let latest = self.set.latest_version();
        expect(
            entity.entity_id == id && entity.entity_version == latest,
            &uri,
            || format!("entity {} at {}", entity.entity_id, entity.entity_version),
        )
    }
}

/// `http_create`: a new entity per request.
pub(crate) struct HttpCreate {
    pub(crate) target: HttpTarget,
    pub(crate) documents: Arc<Documents>,
    pub(crate) next: usize,
}

impl Client for HttpCreate {
    /// Checks the answer is a first version holding the document sent.
    async fn op(&mut self) -> Result<()> {
        self.next += 1;
        let uri = self.target.entities.clone();
        let uri = &*uri;
        let body = self.documents.body(self.next);
        let body = self
            .target
            .call(Method::POST, uri, body, None, StatusCode::CREATED)
            .await?;
        let entity = EntityAnswer::<Value>::parse(uri, &body)?;
        expect(
            entity.entity_version == Version::INITIAL
                && entity.payload == *self.documents.value(self.next),
            uri,
            || {
                format!(
                    "entity {} at {}, or another document",
                    entity.entity_id, entity.entity_version
                )
            },
        )
    }
}

/// `PUT` of a new document on the client's own entities in turn, with the version it last
/// wrote in `If-Match` (as `update` does through the library).
pub(crate) struct HttpUpdate {
    pub(crate) target: HttpTarget,
    pub(crate) documents: Arc<Documents>,
    pub(crate) entities: Vec<(Uuid, Version)>,
    pub(crate) next: usize,
}

impl Client for HttpUpdate {
    /// Checks the answer is a newer version of that entity holding the document sent.
    async fn op(&mut self) -> Result<()> {
        self.next += 1;
        let at = self.next % self.entities.len();
        let (id, expected) = self.entities[at];
        let uri = format!("{}/{id}", self.target.entities);
        let body = self.documents.body(self.next);
        let body = self
            .target
            .call(Method::PUT, &uri, body, Some(expected), StatusCode::OK)
            .await?;
        let entity = EntityAnswer::<Value>::parse(&uri, &body)?;
        expect(
            entity.entity_id == id
                && entity.entity_version > expected
                && entity.payload == *self.documents.value(self.next),
            &uri,
            || {
                format!(
                    "entity {} at {}, or another document",
                    entity.entity_id, entity.entity_version
                )
            },
        )?;
        self.entities[at].1 = entity.entity_version;
        Ok(())
    }
}

/// `POST .../query`: the range of the `query` workload on `/totals/gross`, one page of
/// [`QUERY_PAGE`].
pub(crate) struct HttpQuery {
    pub(crate) target: HttpTarget,
    pub(crate) thresholds: Arc<Vec<f64>>,
    pub(crate) rng: StdRng,
}

/// The part of a page of answers the query's check reads.
#[derive(Deserialize)]
struct PageAnswer {
    items: Vec<EntityAnswer<OrderTotals>>,
}

#[derive(Deserialize)]
struct OrderTotals {
    totals: Totals,
}

#[derive(Deserialize)]
struct Totals {
    gross: f64,
}

impl Client for HttpQuery {
    /// Checks the answer is a full page of orders, each in the range asked for.
    async fn op(&mut self) -> Result<()> {
        let threshold = *pick(&self.thresholds, &mut self.rng);
        let uri = format!("{}/query", self.target.entities);
        let query = json!({
            "filter": {"path": "/totals/gross", "op": "gte", "value": threshold},
            "order": [{"path": "/totals/gross"}],
            "limit": QUERY_PAGE,
        });
        let body = self
            .target
            .call(
                Method::POST,
                &uri,
                Bytes::from(query.to_string()),
                None,
                StatusCode::OK,
            )
            .await?;
        let page: PageAnswer = serde_json::from_slice(&body).map_err(|e| {
            Error::Check(format!("{uri} answered something other than a page: {e}"))
        })?;
        check_page(page.items.len())?;
        for entity in &page.items {
            entity.of_the_benchmark_type(&uri)?;
            expect(entity.payload.totals.gross >= threshold, &uri, || {
                format!(
                    "an order of {} under {threshold}",
                    entity.payload.totals.gross
                )
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpListener,
    };

    use super::*;

    /// A server that reads one request, writes `answer` and closes the connection.
    async fn answering_once(answer: &'static [u8]) -> HttpTarget {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = vec![0; 4096];
            let _ = stream.read(&mut request).await.unwrap();
            stream.write_all(answer).await.unwrap();
        });
        HttpTarget::new(addr, "test", "/entities".into()).unwrap()
    }

    #[tokio::test]
    async fn an_answer_the_server_sent_in_full_before_closing_is_read() {
        let mut target =
            answering_once(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}")
                .await;
        let body = target
            .call(Method::GET, "/entities", Bytes::new(), None, StatusCode::OK)
            .await
            .unwrap();
        assert_eq!(&body[..], b"{}");
        assert!(
            target.connection.is_none(),
            "the closed connection is dropped"
        );
    }

    #[tokio::test]
    async fn an_answer_cut_short_by_the_close_is_an_error_not_a_wait() {
        let mut target = answering_once(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n{}").await;
        let err = target
            .call(Method::GET, "/entities", Bytes::new(), None, StatusCode::OK)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Http(_)), "{err}");
        assert!(
            target.connection.is_none(),
            "the failed connection is dropped"
        );
    }
}
