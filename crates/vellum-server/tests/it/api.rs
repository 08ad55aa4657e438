//! A test client for the router: fresh database, admin token, JSON in and out.

use axum::{
    Router,
    body::Body,
    http::{HeaderMap, Method, Request, StatusCode, header},
};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use vellum::{Store, StoreOptions};
use vellum_server::{AppState, Limits, app};

use crate::support::TestDb;

pub(crate) const ADMIN: &str = "vlm_admin_test_token_0123456789abcdef0123456789";

pub(crate) const ORDER_SCHEMA: &str = r#"{"type": "object", "required": ["customer"],
    "properties": {"customer": {"type": "string", "minLength": 1}, "total": {"type": "number", "minimum": 0},
                   "note": {"type": "string"}}}"#;

/// The answer to one request.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Value,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Asserts a problem+json error with `status` and returns its body.
    pub(crate) fn problem(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "{:#}", self.body);
        assert_eq!(self.header("content-type"), "application/problem+json");
        assert_eq!(self.body["status"], status);
        assert!(
            self.body["type"]
                .as_str()
                .unwrap()
                .starts_with("urn:vellum:problem:")
        );
        assert!(!self.body["detail"].as_str().unwrap().is_empty());
        &self.body
    }
}

pub(crate) struct Api {
    pub(crate) db: TestDb,
    pub(crate) router: Router,
}

impl Api {
    pub(crate) async fn new() -> Api {
        Self::with_limits(Limits::default()).await
    }

    pub(crate) async fn with_limits(limits: Limits) -> Api {
        let db = TestDb::new().await;
        let store = Store::connect(db.config(), StoreOptions::default())
            .await
            .unwrap();
        let router = app(AppState::new(store, ADMIN, limits));
        Api { db, router }
    }

    /// `Api::new` plus service `orders` with `sales_order` 1.0.0.
    pub(crate) async fn with_orders() -> Api {
        let api = Self::new().await;
        api.send(Method::PUT, "/v1/orders", Some(ADMIN), None).await;
        let body = json!({"version": "1.0.0", "definition": serde_json::from_str::<Value>(ORDER_SCHEMA).unwrap()});
        let reply = api
            .send(
                Method::POST,
                "/v1/orders/schemas/sales_order",
                Some(ADMIN),
                Some(body),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:#}", reply.body);
        api
    }

    pub(crate) async fn send(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => request
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
            None => request.body(Body::empty()).unwrap(),
        };
        self.request(request).await
    }

    pub(crate) async fn request(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    /// Issues a token for `service` with `scopes` through the API.
    pub(crate) async fn token(&self, service: &str, scopes: &[&str]) -> String {
        let reply = self
            .send(
                Method::POST,
                &format!("/v1/{service}/tokens"),
                Some(ADMIN),
                Some(json!({"scopes": scopes})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:#}", reply.body);
        reply.body["token"].as_str().unwrap().to_string()
    }

    /// Rows in a table of the test database, counted as its owner.
    pub(crate) async fn count(&self, table: &str) -> i64 {
        let (client, connection) = self
            .db
            .config()
            .connect(tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .unwrap()
            .get(0)
    }
}
