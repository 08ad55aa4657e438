//! The store: a connection pool, vellum's own DDL, and the cache of compiled schemas.

use std::{
    collections::HashMap,
    sync::{Arc, OnceLock, RwLock},
    time::Duration,
};

use chrono::{DateTime, Utc};
use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, QueueMode, RecyclingMethod, Runtime,
};
use serde::Serialize;
use tokio_postgres::NoTls;
use vellum_core::{CompiledSchema, SchemaId, ServiceName, Version, schema::SchemaLimits};

use crate::{
    Error, MigrationFn, Result, RunningCluster, Service,
    events::Notifier,
    known::KnownVersions,
    migrate,
    pool::Sessions,
    sql::{self, ServiceIdents},
    uow::UowCounters,
};

/// Advisory lock key (`'vellum:provision'` as a number) held while a service is provisioned.
const PROVISION_LOCK: i64 = 0x7665_6c6c_7072_6f76;

/// Settings of a [`Store`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StoreOptions {
    /// Maximum number of pooled connections (default 16).
    pub pool_size: usize,
    /// Limits applied to schema definitions when they are registered and compiled.
    pub schema_limits: SchemaLimits,
    /// The longest any one statement of a service's transaction may run (default: none). Set
    /// with `SET LOCAL` in the batch that begins each unit of work, service read and schema
    /// registry change, so it never outlives the transaction; a statement that runs longer is
    /// cancelled by PostgreSQL, its transaction rolls back, and the call fails with
    /// [`Error::Timeout`]. Applied in whole milliseconds, rounded up.
    pub statement_timeout: Option<Duration>,
    /// The longest a caller waits for a free pooled connection before getting
    /// [`Error::Pool`] (default 30 s), so an exhausted pool answers instead of hanging.
    pub pool_wait_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            pool_size: 16,
            schema_limits: SchemaLimits::default(),
            statement_timeout: None,
            pool_wait_timeout: Duration::from_secs(30),
        }
    }
}

/// A vellum database: the entry point of the library.
///
/// Cheap to clone (all clones share one pool). Open it on any PostgreSQL 13+ with
/// [`Store::connect`], or on the embedded cluster with [`Store::open_embedded`].
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    /// Pooled connections whose session a service read left under the service's role.
    sessions: Sessions,
    /// For connections outside the pool: the outbox listener and relay leaders.
    config: tokio_postgres::Config,
    /// The `LISTEN` connection that wakes outbox readers, started on first use.
    notifier: OnceLock<Notifier>,
    /// What units of work did, for metrics.
    counters: UowCounters,
    options: StoreOptions,
    /// Schema versions are immutable, so a compiled validator is valid forever.
    validators: RwLock<HashMap<(ServiceName, SchemaId, Version), Arc<CompiledSchema>>>,
    /// The active version of each entity type, as this process last saw it. A unit of work that
    /// validates against it without reading it checks at commit that it may still write it
    /// (see `uow::flush`), and refreshes it from that check.
    active_versions: RwLock<HashMap<(ServiceName, SchemaId), SeenActive>>,
    /// Each service's `change_events` setting, as this process last saw it; a commit that
    /// leaves the change events out because of it checks the setting (see `uow::flush`).
    change_events: RwLock<HashMap<ServiceName, bool>>,
    /// Each service's settled time, as far as this process has seen it: every unit of work of
    /// the service stamped at or before it has ended (see [`Store::settled`]).
    settled: RwLock<HashMap<ServiceName, DateTime<Utc>>>,
    /// The latest version seen of recently written or read entities (see [`KnownVersions`]).
    known_versions: KnownVersions,
    /// The Rust migrations installed in this process, by the version they lead to.
    migration_fns: RwLock<HashMap<(ServiceName, SchemaId, Version), MigrationFn>>,
    /// The key that signs query cursors, shared by every store on the database.
    cursor_key: Vec<u8>,
    /// Kept so an embedded cluster started by this process stops when the last clone drops.
    _cluster: Option<RunningCluster>,
}

/// The active version of an entity type as a process saw it, and the service's registry
/// generation when it did: while the generation has not moved, no version of the service was
/// registered, activated or deleted since, so the version is still the active one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SeenActive {
    pub(crate) version: Version,
    pub(crate) generation: i64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("pool", &self.inner.pool.status())
            .finish_non_exhaustive()
    }
}

/// A provisioned service, as listed by [`Store::services`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceInfo {
    /// The service name, also the name of its PostgreSQL schema.
    pub name: ServiceName,
    /// The PostgreSQL role its requests run under.
    pub role: String,
    /// When it was provisioned.
    pub created_at: DateTime<Utc>,
}

impl Store {
    /// Connects to PostgreSQL, checks that it answers, and applies vellum's own migrations.
    pub async fn connect(config: tokio_postgres::Config, options: StoreOptions) -> Result<Store> {
        Self::build(config, options, None).await
    }

    /// Opens the store on an embedded cluster; if this process started the cluster, it stops
    /// when the last clone of the store is dropped.
    pub async fn open_embedded(cluster: RunningCluster, options: StoreOptions) -> Result<Store> {
        Self::build(cluster.config(), options, Some(cluster)).await
    }

    async fn build(
        config: tokio_postgres::Config,
        options: StoreOptions,
        cluster: Option<RunningCluster>,
    ) -> Result<Store> {
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        // Last in, first out: a request takes the connection used most recently, whose backend
        // is warm (caches, prepared statements, a session under the service already), and the
        // connections a burst opened sit idle instead of being cycled through one by one.
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .wait_timeout(Some(options.pool_wait_timeout))
            .queue_mode(QueueMode::Lifo)
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| Error::NotAllowed(format!("invalid pool settings: {e}")))?;
        let mut client = pool.get().await?;
        migrate::run(&mut client).await?;
        let cursor_key: Vec<u8> = client
            .query_one(
                "SELECT value FROM vellum.secrets WHERE name = 'query_cursor'",
                &[],
            )
            .await?
            .try_get(0)?;
        drop(client);
        Ok(Store {
            inner: Arc::new(Inner {
                pool,
                sessions: Sessions::default(),
                config,
                notifier: OnceLock::new(),
                counters: UowCounters::default(),
                options,
                validators: RwLock::default(),
                active_versions: RwLock::default(),
                known_versions: KnownVersions::default(),
                change_events: RwLock::default(),
                settled: RwLock::default(),
                migration_fns: RwLock::default(),
                cursor_key,
                _cluster: cluster,
            }),
        })
    }

    /// A pooled connection whose session runs under the login role.
    pub(crate) async fn client(&self) -> Result<Object> {
        let client = self.inner.pool.get().await?;
        self.inner.sessions.reset(&client).await?;
        Ok(client)
    }

    /// A pooled connection for one service's work, whose session is under the login role or
    /// already under that service's `session` settings (see [`Sessions::reset_unless`]).
    pub(crate) async fn service_client(&self, session: &str) -> Result<Object> {
        let client = self.inner.pool.get().await?;
        self.inner
            .sessions
            .reset_unless(&client, Some(session))
            .await?;
        Ok(client)
    }

    pub(crate) fn sessions(&self) -> &Sessions {
        &self.inner.sessions
    }

    pub(crate) fn known_versions(&self) -> &KnownVersions {
        &self.inner.known_versions
    }

    pub(crate) fn cursor_key(&self) -> &[u8] {
        &self.inner.cursor_key
    }

    pub(crate) fn schema_limits(&self) -> &SchemaLimits {
        &self.inner.options.schema_limits
    }

    pub(crate) fn statement_timeout(&self) -> Option<Duration> {
        self.inner.options.statement_timeout
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    pub(crate) fn counters(&self) -> &UowCounters {
        &self.inner.counters
    }

    pub(crate) fn config(&self) -> &tokio_postgres::Config {
        &self.inner.config
    }

    /// The outbox listener; must be called on a Tokio runtime (it starts a task the first time).
    pub(crate) fn notifier(&self) -> &Notifier {
        self.inner
            .notifier
            .get_or_init(|| Notifier::start(self.inner.config.clone()))
    }

    /// Provisions a service: its PostgreSQL schema, its role, and its fixed tables.
    pub async fn create_service(&self, name: &ServiceName) -> Result<ServiceInfo> {
        let mut client = self.client().await?;
        // Roles are cluster-wide and may exist from another database; create outside the
        // transaction so a concurrent creator does not abort it.
        if let Err(err) = client.batch_execute(&sql::create_role(name)).await {
            match sql::db_error(&err) {
                // duplicate_object, or the unique index of pg_authid under a race
                Some(("42710" | "23505", _)) => {}
                _ => return Err(err.into()),
            }
        }
        // The membership lets a non-superuser owner SET ROLE to it. Like the role it is
        // cluster-wide, so the same grant may run at once from another database: a unique
        // violation on pg_auth_members, or "tuple concurrently updated" (XX000), means the
        // membership exists either way.
        if let Err(err) = client.batch_execute(&sql::grant_role_to_owner(name)).await {
            match sql::db_error(&err) {
                Some(("23505" | "XX000", _)) => {}
                _ => return Err(err.into()),
            }
        }
        let idents = ServiceIdents::new(name);
        let tx = client.transaction().await?;
        // Provisioning changes catalog rows shared by every service of this database (the ACL
        // of the `vellum` schema): one at a time.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PROVISION_LOCK])
            .await?;
        let row = tx
            .query_opt(
                "INSERT INTO vellum.services (name, role_name, ddl_version) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO NOTHING RETURNING created_at",
                &[
                    &name.as_str(),
                    &sql::role_name(name),
                    &sql::SERVICE_DDL_VERSION,
                ],
            )
            .await?
            .ok_or_else(|| Error::AlreadyExists {
                what: format!("service {name}"),
            })?;
        if let Err(err) = tx.batch_execute(&idents.service_ddl()).await {
            return Err(match sql::db_error(&err) {
                Some(("42P06", _)) => Error::AlreadyExists {
                    what: format!("PostgreSQL schema {name} (not a vellum service)"),
                },
                _ => err.into(),
            });
        }
        tx.commit().await?;
        Ok(ServiceInfo {
            name: name.clone(),
            role: sql::role_name(name),
            created_at: row.get(0),
        })
    }

    /// Every provisioned service, by name.
    pub async fn services(&self) -> Result<Vec<ServiceInfo>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT name, role_name, created_at FROM vellum.services ORDER BY name",
                &[],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(ServiceInfo {
                    name: ServiceName::new(row.get::<_, String>(0))
                        .map_err(|e| Error::Corrupt(e.to_string()))?,
                    role: row.get(1),
                    created_at: row.get(2),
                })
            })
            .collect()
    }

    /// A handle on one provisioned service; [`Error::NotFound`] if it was never created.
    pub async fn service(&self, name: &ServiceName) -> Result<Service> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT lock_key FROM vellum.services WHERE name = $1",
                &[&name.as_str()],
            )
            .await?
            .ok_or_else(|| Error::NotFound {
                what: format!("service {name}"),
            })?;
        Ok(Service::new(self.clone(), name.clone(), row.get(0)))
    }

    pub(crate) fn cached_validator(
        &self,
        key: &(ServiceName, SchemaId, Version),
    ) -> Option<Arc<CompiledSchema>> {
        self.inner
            .validators
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    pub(crate) fn cache_validator(
        &self,
        key: (ServiceName, SchemaId, Version),
        schema: Arc<CompiledSchema>,
    ) {
        self.inner
            .validators
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, schema);
    }

    /// The active version of an entity type as this process last saw it, if it has.
    pub(crate) fn cached_active(&self, key: &(ServiceName, SchemaId)) -> Option<SeenActive> {
        self.inner
            .active_versions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .copied()
    }

    pub(crate) fn cache_active(&self, key: (ServiceName, SchemaId), seen: SeenActive) {
        self.inner
            .active_versions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, seen);
    }

    /// Forgets the active versions seen of a service's entity types: called by every schema
    /// registry change of this process, so its next write reads them again.
    pub(crate) fn forget_active(&self, service: &ServiceName) {
        self.inner
            .active_versions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(name, _), _| name != service);
    }

    /// A service's `change_events` setting as this process last saw it, if it has.
    pub(crate) fn cached_change_events(&self, service: &ServiceName) -> Option<bool> {
        self.inner
            .change_events
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(service)
            .copied()
    }

    pub(crate) fn cache_change_events(&self, service: ServiceName, on: bool) {
        self.inner
            .change_events
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(service, on);
    }

    /// The latest time this process knows to be settled for a service: a database-clock time
    /// read while holding the stamp barrier (see `Service::get_as_of`). Every unit of work
    /// stamped at or before it had ended when the barrier was taken, and any later one stamps
    /// later, so an as-of read of an earlier time is final without the barrier.
    pub(crate) fn settled(&self, service: &ServiceName) -> Option<DateTime<Utc>> {
        self.inner
            .settled
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(service)
            .copied()
    }

    /// Records a time read under the stamp barrier; the settled time only moves forward.
    pub(crate) fn settle(&self, service: &ServiceName, at: DateTime<Utc>) {
        let mut settled = self
            .inner
            .settled
            .write()
            .unwrap_or_else(|e| e.into_inner());
        match settled.get_mut(service) {
            Some(known) => *known = (*known).max(at),
            None => {
                settled.insert(service.clone(), at);
            }
        }
    }

    /// The Rust migration to `key.2` installed in this process, if any.
    pub(crate) fn migration_fn(
        &self,
        key: &(ServiceName, SchemaId, Version),
    ) -> Option<MigrationFn> {
        self.inner
            .migration_fns
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    pub(crate) fn install_migration_fn(
        &self,
        key: (ServiceName, SchemaId, Version),
        function: MigrationFn,
    ) {
        self.inner
            .migration_fns
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, function);
    }
}

/// A pooled connection with a transaction in flight. Dropped before
/// [`settled`](InTransaction::settled) (its future cancelled between `BEGIN` and the end of the
/// transaction), it is closed rather than returned to the pool, so no other request finds it
/// inside that transaction, under a service role. The server rolls back what it had begun.
pub(crate) struct InTransaction {
    client: Option<Object>,
}

impl InTransaction {
    pub(crate) fn new(client: Object) -> Self {
        Self {
            client: Some(client),
        }
    }

    /// The transaction has ended (committed or rolled back): the connection may go back to the
    /// pool.
    pub(crate) fn settled(mut self) -> Object {
        self.client.take().expect("held until settled or dropped")
    }
}

impl std::ops::Deref for InTransaction {
    type Target = Object;

    fn deref(&self) -> &Object {
        self.client.as_ref().expect("held until settled or dropped")
    }
}

impl Drop for InTransaction {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            drop(Object::take(client));
        }
    }
}
