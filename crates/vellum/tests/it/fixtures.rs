//! Shared set-up for the store tests: a fresh database, a service, and an entity type.

use serde_json::{Value, json};
use vellum::{SchemaId, Service, ServiceName, Store, StoreOptions, Version};

use crate::support::TestDb;

pub(crate) struct Fixture {
    pub(crate) db: TestDb,
    pub(crate) store: Store,
    pub(crate) service: Service,
}

pub(crate) fn v(text: &str) -> Version {
    text.parse().unwrap()
}

pub(crate) fn id(text: &str) -> SchemaId {
    SchemaId::new(text).unwrap()
}

/// A migration from `from` that leaves documents as they are: enough for a new major version
/// whose definition every current document satisfies.
pub(crate) fn identity(from: &str) -> vellum::Migration {
    vellum::Migration::new(v(from), Vec::new()).unwrap()
}

/// The order schema most tests use: customer required, optional total and lines.
pub(crate) fn order_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": ["customer"],
        "properties": {
            "customer": {"type": "string", "minLength": 1},
            "total": {"type": "number", "minimum": 0},
            "lines": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["sku", "qty"],
                    "properties": {"sku": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}}
                }
            }
        }
    })
}

impl Fixture {
    /// A fresh database with service `orders` and `sales_order` 1.0.0 registered.
    pub(crate) async fn new() -> Fixture {
        let fixture = Self::empty().await;
        fixture
            .service
            .schemas()
            .register(&id("sales_order"), v("1.0.0"), order_schema(), false)
            .await
            .unwrap();
        fixture
    }

    /// A fresh database with service `orders` and no schema.
    pub(crate) async fn empty() -> Fixture {
        let db = TestDb::new().await;
        let store = Store::connect(db.config(), StoreOptions::default())
            .await
            .unwrap();
        let name = ServiceName::new("orders").unwrap();
        store.create_service(&name).await.unwrap();
        let service = store.service(&name).await.unwrap();
        Fixture { db, store, service }
    }

    /// Creates one `sales_order` with `payload` in a unit of work of its own, committed.
    pub(crate) async fn create_order(&self, payload: Value) -> vellum::Staged {
        let mut uow = self.service.begin("alice").await.unwrap();
        let order = id("sales_order");
        let staged = uow
            .create(&order, payload, vellum::WriteOptions::default())
            .await
            .unwrap();
        uow.commit().await.unwrap();
        staged
    }

    /// The fixture's service opened by a second store: another process of the application.
    pub(crate) async fn other_process(&self) -> vellum::Service {
        self.process_with(StoreOptions::default()).await
    }

    /// The fixture's service opened by a second store whose statements may run for `timeout`.
    pub(crate) async fn impatient_process(&self, timeout: std::time::Duration) -> vellum::Service {
        let mut options = StoreOptions::default();
        options.statement_timeout = Some(timeout);
        self.process_with(options).await
    }

    /// The fixture's service opened by a second store with `options`.
    pub(crate) async fn process_with(&self, options: StoreOptions) -> vellum::Service {
        let store = Store::connect(self.db.config(), options).await.unwrap();
        store.service(self.service.name()).await.unwrap()
    }

    /// A connection that holds every stamp-lock slot of the service shared (0..=255 covers them
    /// all), as a writer does between its commit stamp and its commit, until it runs `SELECT
    /// pg_advisory_unlock_all()` or closes.
    pub(crate) async fn stamped_writer(&self) -> tokio_postgres::Client {
        let writer = self.admin().await;
        writer
            .execute(
                "SELECT pg_advisory_lock_shared(1447382092 + slot, lock_key)
                 FROM vellum.services, generate_series(0, 255) AS slot WHERE name = 'orders'",
                &[],
            )
            .await
            .unwrap();
        writer
    }

    /// A plain connection as the database owner, for what a user could do by hand.
    pub(crate) async fn admin(&self) -> tokio_postgres::Client {
        let (client, connection) = self
            .db
            .config()
            .connect(tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
    }
}
