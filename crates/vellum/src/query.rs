//! Queries over one entity type (SPEC §8): [`Service::query`] and the query language it takes.
//!
//! The types are those of [`vellum_core::query`], re-exported here; see there for the JSON
//! grammar, the semantics (typing by the schema, missing paths, `not`, order, pages) and the SQL
//! each operator compiles to. Anything the language does not express is what the raw-SQL
//! escape hatch ([`UnitOfWork::raw`](crate::UnitOfWork::raw)) is for.

use serde::{Deserialize, Serialize};
use tokio_postgres::types::ToSql;
/// What [`QueryContext::schema`] takes: a schema version compiled as the store compiles it.
pub use vellum_core::CompiledSchema;
use vellum_core::SchemaId;
pub use vellum_core::query::{
    CompiledQuery, Condition, DEFAULT_LIMIT, Direction, Filter, JsonPath, MAX_LIMIT, Operator,
    OrderBy, OrderKey, Query, QueryContext, QueryError, RowKeys, SqlParam, ValueKind, compile,
    value_kind,
};

use crate::{Entity, Error, Result, Service, entity::COLUMNS};

/// One page of a query's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page {
    /// The entities of this page, in the query's order.
    pub items: Vec<Entity>,
    /// Pass it as the query's `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl Service {
    /// Runs a query over the entities of `schema_id`: filters on JSON paths typed by the active
    /// schema, an order, keyset pagination, bulk fetch by ids, and time travel (`as_of`). See
    /// [`vellum_core::query`] for the grammar and its semantics.
    ///
    /// Paths are checked against the active schema version: a path it does not declare is
    /// [`Error::InvalidQuery`] unless the schema allows additional properties there. A query
    /// with `as_of` is final like [`Service::get_as_of`]: it waits for units of work that took
    /// their commit stamp before it.
    ///
    /// ```no_run
    /// # async fn demo(service: vellum::Service) -> vellum::Result<()> {
    /// use serde_json::json;
    /// use vellum::{SchemaId, query::Query};
    ///
    /// let query: Query = serde_json::from_value(json!({
    ///     "filter": {"and": [
    ///         {"path": "/status", "op": "eq", "value": "open"},
    ///         {"path": "/total", "op": "gte", "value": 100}
    ///     ]},
    ///     "order": [{"path": "/total", "direction": "desc"}],
    ///     "limit": 20
    /// }))
    /// .expect("a valid query");
    /// let page = service.query(&SchemaId::new("sales_order")?, &query).await?;
    /// for order in &page.items {
    ///     println!("{} {}", order.entity_id, order.payload["total"]);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn query(&self, schema_id: &SchemaId, query: &Query) -> Result<Page> {
        let schema = self.active_schema(schema_id).await?;
        let table = self.idents.entity_table(schema_id);
        let compiled = compile(
            query,
            &QueryContext {
                table: &table,
                columns: COLUMNS,
                schema: &schema,
                cursor_key: self.store.cursor_key(),
            },
        )?;
        let values = bind_params(&compiled.params);
        let params: Vec<&(dyn ToSql + Sync)> = values
            .iter()
            .map(|value| value.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let rows = self
            .run_query(schema_id, &compiled.sql, &params, compiled.as_of())
            .await?;
        let mut items = rows
            .iter()
            .map(Entity::from_row)
            .collect::<Result<Vec<_>>>()?;
        let next_cursor = if items.len() > compiled.limit() {
            items.truncate(compiled.limit());
            items.last().map(|last| {
                compiled.cursor_after(RowKeys {
                    entity_id: last.entity_id,
                    created_at: last.created_at,
                    updated_at: last.updated_at,
                    entity_version: &last.entity_version,
                    payload: &last.payload,
                })
            })
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }
}

impl From<QueryError> for Error {
    fn from(err: QueryError) -> Self {
        Error::InvalidQuery {
            pointer: err.pointer,
            message: err.message,
        }
    }
}

/// The parameters of a [`CompiledQuery`] as values tokio-postgres binds, for running a compiled
/// query yourself (`EXPLAIN` it, say). The SQL casts each placeholder, so the types agree.
pub fn bind_params(params: &[SqlParam]) -> Vec<Box<dyn ToSql + Sync + Send>> {
    params.iter().map(bind).collect()
}

fn bind(param: &SqlParam) -> Box<dyn ToSql + Sync + Send> {
    match param {
        SqlParam::Path(segments) => Box::new(segments.clone()),
        SqlParam::Json(value) => Box::new(value.clone()),
        SqlParam::JsonArray(values) => Box::new(values.clone()),
        SqlParam::Text(text) => Box::new(text.clone()),
        SqlParam::Timestamp(at) => Box::new(*at),
        SqlParam::TimestampArray(ats) => Box::new(ats.clone()),
        SqlParam::Uuid(id) => Box::new(*id),
        SqlParam::UuidArray(ids) => Box::new(ids.clone()),
        SqlParam::IntArray(ints) => Box::new(ints.clone()),
        SqlParam::BigInt(n) => Box::new(*n),
    }
}
