//! The compiler from [`Query`] to one parameterized SQL statement.

use std::fmt;

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::cursor;
use super::filter_sql::FilterCompiler;
use super::keyset::{Apart, KeyExpr, SortKey, apart, key_sql, keyset};
use super::order::{Direction, OrderBy};
use super::path::{JsonPath, ValueKind, value_kind};
use super::{DEFAULT_LIMIT, MAX_LIMIT, Query, QueryError};
use crate::Version;
use crate::schema::CompiledSchema;

/// Most order keys.
const MAX_ORDER_KEYS: usize = 16;

/// What [`compile`] needs to know besides the query.
#[derive(Clone, Copy)]
pub struct QueryContext<'a> {
    /// The entity table, already quoted, e.g. `"shop"."orders"`; used as is.
    pub table: &'a str,
    /// The select list, using the alias `e`, e.g. `e.entity_id, e.entity_version, e.payload`.
    pub columns: &'a str,
    /// The active schema version of the type: paths are checked and typed against its
    /// definition, and its indexes (`x-vellum-index`, `x-vellum-ref`) decide how pages are read.
    pub schema: &'a CompiledSchema,
    /// The HMAC key that signs and verifies cursors.
    pub cursor_key: &'a [u8],
}

impl fmt::Debug for QueryContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueryContext")
            .field("table", &self.table)
            .field("columns", &self.columns)
            .field("definition", self.schema.definition())
            .finish_non_exhaustive()
    }
}

/// A bound parameter of a compiled query, with the PostgreSQL type its placeholder is cast to.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlParam {
    /// A document path, `text[]`.
    Path(Vec<String>),
    /// A JSON value, `jsonb`.
    Json(Value),
    /// JSON values, `jsonb[]`.
    JsonArray(Vec<Value>),
    /// A string, `text`.
    Text(String),
    /// A timestamp, `timestamptz`.
    Timestamp(DateTime<Utc>),
    /// Timestamps, `timestamptz[]`.
    TimestampArray(Vec<DateTime<Utc>>),
    /// An entity id, `uuid`.
    Uuid(Uuid),
    /// Entity ids, `uuid[]`.
    UuidArray(Vec<Uuid>),
    /// Integers, `int4[]` (an entity version as `[major, minor, patch]`).
    IntArray(Vec<i32>),
    /// An integer, `int8` (the `LIMIT`).
    BigInt(i64),
}

/// One SQL statement ready to run, and what the caller needs to page through its results.
#[derive(Clone)]
pub struct CompiledQuery {
    /// The statement; `$1`, `$2`, .. are [`params`](Self::params) in order.
    pub sql: String,
    /// The bound parameters.
    pub params: Vec<SqlParam>,
    limit: usize,
    as_of: Option<DateTime<Utc>>,
    keys: Vec<SortKey>,
    fingerprint: [u8; 32],
    cursor_key: Vec<u8>,
}

impl fmt::Debug for CompiledQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompiledQuery")
            .field("sql", &self.sql)
            .field("params", &self.params)
            .field("limit", &self.limit)
            .field("as_of", &self.as_of)
            .finish_non_exhaustive()
    }
}

/// The sort keys of a row, as [`CompiledQuery::cursor_after`] needs them.
#[derive(Debug, Clone, Copy)]
pub struct RowKeys<'a> {
    /// `entity_id` of the row.
    pub entity_id: Uuid,
    /// `created_at` of the row.
    pub created_at: DateTime<Utc>,
    /// `updated_at` of the row.
    pub updated_at: DateTime<Utc>,
    /// `entity_version` of the row.
    pub entity_version: &'a Version,
    /// `payload` of the row.
    pub payload: &'a Value,
}

impl CompiledQuery {
    /// The page size. The statement fetches one row more: when it returns `limit() + 1` rows,
    /// keep `limit()` of them and there is a next page.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The time the query reads as of, if any.
    pub fn as_of(&self) -> Option<DateTime<Utc>> {
        self.as_of
    }

    /// An opaque cursor for the page after `row` (the last row kept), to pass as
    /// [`Query::cursor`] with the same query.
    pub fn cursor_after(&self, row: RowKeys<'_>) -> String {
        let values: Vec<cursor::KeyValue> =
            self.keys.iter().map(|key| key.value_of(&row)).collect();
        cursor::encode(&self.cursor_key, &self.fingerprint, &values)
    }
}

/// An RFC 3339 timestamp, rounded to microseconds as PostgreSQL stores it.
pub(crate) fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc).round_subsecs(6))
}

/// SQL text and its parameters, built together so placeholders number in order of appearance.
#[derive(Default)]
pub(super) struct Sql {
    params: Vec<SqlParam>,
}

impl Sql {
    pub(super) fn bind(&mut self, param: SqlParam) -> String {
        self.params.push(param);
        format!("${}", self.params.len())
    }

    /// `(e.payload #> $p::text[])`, binding the path.
    pub(super) fn json_at(&mut self, path: &JsonPath) -> (String, String) {
        let p = self.bind(SqlParam::Path(path.segments().to_vec()));
        (format!("(e.payload #> {p}::text[])"), p)
    }
}

pub(super) fn text_at(p: &str) -> String {
    format!("(e.payload #>> {p}::text[])")
}

pub(super) fn timestamp_at(p: &str) -> String {
    format!("vellum.to_timestamptz(e.payload #>> {p}::text[])")
}

/// Compiles `query` against the type described by `ctx` into one SQL statement.
///
/// Errors name the place in the query body they are about ([`QueryError::pointer`]).
pub fn compile(query: &Query, ctx: &QueryContext<'_>) -> Result<CompiledQuery, QueryError> {
    let limit = match query.limit {
        None => DEFAULT_LIMIT,
        Some(limit) if (1..=MAX_LIMIT).contains(&limit) => limit,
        Some(limit) => {
            return Err(QueryError::new(
                "/limit",
                format!("limit must be between 1 and {MAX_LIMIT}, got {limit}"),
            ));
        }
    };
    if let Some(ids) = &query.ids
        && ids.len() > MAX_LIMIT as usize
    {
        return Err(QueryError::new(
            "/ids",
            format!("at most {MAX_LIMIT} ids, got {}", ids.len()),
        ));
    }
    let keys = sort_keys(query, ctx.schema.definition())?;
    // A cursor belongs to the order asked for, whichever column serves it.
    let fingerprint = fingerprint(query, ctx.table, &keys);
    let keys = if query.as_of.is_none() && !query.include_deleted {
        commit_time_keys(keys)
    } else {
        keys
    };

    let mut sql = Sql::default();
    let mut conditions = Vec::new();
    let from = match query.as_of {
        None => {
            conditions.push("e.is_active".to_owned());
            if !query.include_deleted {
                conditions.push("e.deleted_at IS NULL".to_owned());
            }
            if let Some(ids) = &query.ids {
                let p = sql.bind(SqlParam::UuidArray(ids.clone()));
                // The key of the entity table's index for reads of active versions by id (see
                // `sql::active_entity` in the vellum crate): named as `e.entity_id`, the ids could
                // be looked up in an index of every version and walk each entity's history.
                conditions.push(format!(
                    "(CASE WHEN e.is_active THEN e.entity_id END) = ANY({p}::uuid[])"
                ));
            }
            ctx.table.to_owned()
        }
        Some(as_of) => {
            let t = sql.bind(SqlParam::Timestamp(as_of));
            let ids = match &query.ids {
                Some(ids) => {
                    let p = sql.bind(SqlParam::UuidArray(ids.clone()));
                    format!(" AND e.entity_id = ANY({p}::uuid[])")
                }
                None => String::new(),
            };
            if !query.include_deleted {
                conditions.push(format!(
                    "(e.deleted_at IS NULL OR e.deleted_at > {t}::timestamptz)"
                ));
            }
            format!(
                "(SELECT DISTINCT ON (e.entity_id) e.* FROM {table} e WHERE e.created_at <= \
                 {t}::timestamptz{ids} ORDER BY e.entity_id, e.created_at DESC, e.revision DESC)",
                table = ctx.table
            )
        }
    };
    if let Some(filter) = &query.filter {
        let mut compiler = FilterCompiler {
            definition: ctx.schema.definition(),
            sql: &mut sql,
            conditions: 0,
            nodes: 0,
        };
        let rendered = compiler.filter(filter, "/filter", 1)?;
        conditions.push(format!("({rendered})"));
    }
    // The part of the rows after the cursor row read on its own, with the conditions every row
    // meets (see `apart`).
    let mut second: Option<(Apart, Vec<String>)> = None;
    if let Some(token) = &query.cursor {
        let values = cursor::decode(ctx.cursor_key, &fingerprint, token, &keys)?;
        let part = match query.as_of {
            None => apart(
                &keys,
                &values,
                query.filter.as_ref(),
                ctx.schema.annotations(),
            ),
            Some(_) => None,
        };
        second = part.map(|part| (part, conditions.clone()));
        let keyset = keyset(&mut sql, &keys, &values, query.filter.as_ref(), part);
        conditions.push(format!("({keyset})"));
    }
    let order = order_sql(&mut sql, &keys);
    let page = i64::from(limit) + 1;
    let limit_param = sql.bind(SqlParam::BigInt(page));
    let filter = where_sql(&conditions);
    let columns = ctx.columns;
    let text = match second {
        None => {
            format!("SELECT {columns} FROM {from} e{filter} ORDER BY {order} LIMIT {limit_param}")
        }
        Some((part, mut conditions)) => {
            let k = key_sql(&mut sql, &keys[0].expr);
            conditions.push(part.condition(&k));
            let second = where_sql(&conditions);
            let second_order = order_sql(&mut sql, &keys);
            let outer_order = order_sql(&mut sql, &keys);
            format!(
                "SELECT {columns} FROM ((SELECT e.* FROM {from} e{filter} ORDER BY {order} \
                 LIMIT {limit_param}) UNION ALL (SELECT e.* FROM {from} e{second} \
                 ORDER BY {second_order} LIMIT {limit_param})) e \
                 ORDER BY {outer_order} LIMIT {limit_param}"
            )
        }
    };
    Ok(CompiledQuery {
        sql: text,
        params: sql.params,
        limit: limit as usize,
        as_of: query.as_of,
        keys,
        fingerprint,
        cursor_key: ctx.cursor_key.to_vec(),
    })
}

/// `ORDER BY`'s list for `keys`, binding their paths.
fn order_sql(sql: &mut Sql, keys: &[SortKey]) -> String {
    keys.iter()
        .map(|key| {
            let direction = match key.direction {
                Direction::Asc => "ASC",
                Direction::Desc => "DESC",
            };
            format!("{} {direction}", key_sql(sql, &key.expr))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// ` WHERE c1 AND c2 ..`, or nothing.
fn where_sql(conditions: &[String]) -> String {
    if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    }
}

/// The order keys, typed, with the `entity_id` tiebreaker in the direction of the last key.
fn sort_keys(query: &Query, definition: &Value) -> Result<Vec<SortKey>, QueryError> {
    if query.order.len() > MAX_ORDER_KEYS {
        return Err(QueryError::new(
            "/order",
            format!(
                "at most {MAX_ORDER_KEYS} order keys, got {}",
                query.order.len()
            ),
        ));
    }
    let mut keys = Vec::with_capacity(query.order.len() + 1);
    for (i, key) in query.order.iter().enumerate() {
        let expr = match &key.by {
            OrderBy::CreatedAt => KeyExpr::CreatedAt,
            OrderBy::UpdatedAt => KeyExpr::UpdatedAt,
            OrderBy::EntityId => KeyExpr::EntityId,
            OrderBy::EntityVersion => KeyExpr::EntityVersion,
            OrderBy::Path(path) => {
                match value_kind(definition, path).map_err(|e| e.at(&format!("/order/{i}/path")))? {
                    ValueKind::DateTime => KeyExpr::DateTime(path.clone()),
                    _ => KeyExpr::Json(path.clone()),
                }
            }
        };
        keys.push(SortKey {
            expr,
            direction: key.direction,
        });
    }
    if keys.last().is_none_or(|key| key.expr != KeyExpr::EntityId) {
        // In the direction of the last key: an index on (key, entity_id), read forwards or
        // backwards, is then the order itself, and a page stops at its end.
        let direction = keys.last().map_or(Direction::Asc, |key| key.direction);
        keys.push(SortKey {
            expr: KeyExpr::EntityId,
            direction,
        });
    }
    Ok(keys)
}

/// The keys of a query of current, undeleted versions, with `updated_at` read as `created_at`:
/// on those rows they are equal (the entity table's constraint
/// `current_updated_at_is_created_at`), and the entity table's commit-time index is on
/// `created_at`. Other queries read superseded or deleted versions, whose `updated_at` moved.
fn commit_time_keys(keys: Vec<SortKey>) -> Vec<SortKey> {
    keys.into_iter()
        .map(|key| match key.expr {
            KeyExpr::UpdatedAt => SortKey {
                expr: KeyExpr::CreatedAt,
                ..key
            },
            _ => key,
        })
        .collect()
}

/// A digest of everything that decides a query's result set and order, but not its page size.
fn fingerprint(query: &Query, table: &str, keys: &[SortKey]) -> [u8; 32] {
    let mut digest = Sha256::new();
    let mut part = |bytes: &[u8]| {
        digest.update((bytes.len() as u64).to_be_bytes());
        digest.update(bytes);
    };
    part(b"vellum query 1");
    part(table.as_bytes());
    part(&serde_json::to_vec(&query.filter).unwrap_or_default());
    part(&serde_json::to_vec(&query.order).unwrap_or_default());
    for key in keys {
        let (tag, path) = match &key.expr {
            KeyExpr::CreatedAt => ("created_at", None),
            KeyExpr::UpdatedAt => ("updated_at", None),
            KeyExpr::EntityId => ("entity_id", None),
            KeyExpr::EntityVersion => ("entity_version", None),
            KeyExpr::Json(path) => ("jsonb", Some(path)),
            KeyExpr::DateTime(path) => ("timestamptz", Some(path)),
        };
        part(tag.as_bytes());
        part(path.map(JsonPath::to_string).unwrap_or_default().as_bytes());
        part(&[u8::from(key.direction == Direction::Desc)]);
    }
    part(&serde_json::to_vec(&query.as_of).unwrap_or_default());
    part(&serde_json::to_vec(&query.ids).unwrap_or_default());
    part(&[u8::from(query.include_deleted)]);
    digest.finalize().into()
}
