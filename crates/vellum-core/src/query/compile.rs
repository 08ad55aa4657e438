//! The compiler from [`Query`] to one parameterized SQL statement.

use std::fmt;

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::cursor::{self, KeyValue};
use super::filter::json_type;
use super::order::{Direction, OrderBy};
use super::path::{JsonPath, ValueKind, value_kind};
use super::{Condition, DEFAULT_LIMIT, Filter, MAX_LIMIT, Operator, Query, QueryError, has_nul};
use crate::Version;

/// Deepest nesting of `and` / `or` / `not`.
const MAX_DEPTH: usize = 32;
/// Most conditions in one filter.
const MAX_CONDITIONS: usize = 256;
/// Most filter nodes (conditions, `and`, `or`, `not`) in one filter.
const MAX_NODES: usize = 1024;
/// Most values in one `in` list.
const MAX_IN_VALUES: usize = 1000;
/// Most order keys.
const MAX_ORDER_KEYS: usize = 16;

/// What [`compile`] needs to know besides the query.
#[derive(Clone, Copy)]
pub struct QueryContext<'a> {
    /// The entity table, already quoted, e.g. `"shop"."orders"`; used as is.
    pub table: &'a str,
    /// The select list, using the alias `e`, e.g. `e.entity_id, e.entity_version, e.payload`.
    pub columns: &'a str,
    /// The active JSON Schema of the type: paths are checked and typed against it.
    pub definition: &'a Value,
    /// The HMAC key that signs and verifies cursors.
    pub cursor_key: &'a [u8],
}

impl fmt::Debug for QueryContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueryContext")
            .field("table", &self.table)
            .field("columns", &self.columns)
            .field("definition", &self.definition)
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
        let values: Vec<KeyValue> = self.keys.iter().map(|key| key.value_of(&row)).collect();
        cursor::encode(&self.cursor_key, &self.fingerprint, &values)
    }
}

/// A resolved order key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SortKey {
    pub(crate) expr: KeyExpr,
    pub(crate) direction: Direction,
}

/// What a sort key sorts by, and so the SQL type of its values.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum KeyExpr {
    CreatedAt,
    UpdatedAt,
    EntityId,
    EntityVersion,
    /// A path in `jsonb` order.
    Json(JsonPath),
    /// A date-time path, in timestamp order.
    DateTime(JsonPath),
}

impl SortKey {
    fn value_of(&self, row: &RowKeys<'_>) -> KeyValue {
        match &self.expr {
            KeyExpr::CreatedAt => KeyValue::Timestamp(row.created_at),
            KeyExpr::UpdatedAt => KeyValue::Timestamp(row.updated_at),
            KeyExpr::EntityId => KeyValue::Uuid(row.entity_id),
            KeyExpr::EntityVersion => {
                let component = |c: u32| i32::try_from(c).unwrap_or(i32::MAX);
                let v = row.entity_version;
                KeyValue::Version(vec![
                    component(v.major),
                    component(v.minor),
                    component(v.patch),
                ])
            }
            KeyExpr::Json(path) => path
                .lookup(row.payload)
                .map_or(KeyValue::Null, |value| KeyValue::Json(value.clone())),
            KeyExpr::DateTime(path) => path
                .lookup(row.payload)
                .and_then(Value::as_str)
                .and_then(parse_timestamp)
                .map_or(KeyValue::Null, KeyValue::Timestamp),
        }
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
struct Sql {
    params: Vec<SqlParam>,
}

impl Sql {
    fn bind(&mut self, param: SqlParam) -> String {
        self.params.push(param);
        format!("${}", self.params.len())
    }

    /// `(e.payload #> $p::text[])`, binding the path.
    fn json_at(&mut self, path: &JsonPath) -> (String, String) {
        let p = self.bind(SqlParam::Path(path.segments().to_vec()));
        (format!("(e.payload #> {p}::text[])"), p)
    }
}

fn text_at(p: &str) -> String {
    format!("(e.payload #>> {p}::text[])")
}

fn timestamp_at(p: &str) -> String {
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
    let keys = sort_keys(query, ctx.definition)?;

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
                conditions.push(format!("e.entity_id = ANY({p}::uuid[])"));
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
            definition: ctx.definition,
            sql: &mut sql,
            conditions: 0,
            nodes: 0,
        };
        let rendered = compiler.filter(filter, "/filter", 1)?;
        conditions.push(format!("({rendered})"));
    }
    let fingerprint = fingerprint(query, ctx.table, &keys);
    if let Some(token) = &query.cursor {
        let values = cursor::decode(ctx.cursor_key, &fingerprint, token, &keys)?;
        conditions.push(format!("({})", keyset(&mut sql, &keys, &values)));
    }
    let order = keys
        .iter()
        .map(|key| {
            let direction = match key.direction {
                Direction::Asc => "ASC",
                Direction::Desc => "DESC",
            };
            format!("{} {direction}", key_sql(&mut sql, &key.expr))
        })
        .collect::<Vec<_>>()
        .join(", ");
    let page = i64::from(limit) + 1;
    let limit_param = sql.bind(SqlParam::BigInt(page));
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    let text = format!(
        "SELECT {columns} FROM {from} e{filter} ORDER BY {order} LIMIT {limit_param}",
        columns = ctx.columns
    );
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

/// The order keys, typed, with the `entity_id` tiebreaker.
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
        keys.push(SortKey {
            expr: KeyExpr::EntityId,
            direction: Direction::Asc,
        });
    }
    Ok(keys)
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

/// The SQL expression of a sort key, binding its path if it has one.
fn key_sql(sql: &mut Sql, expr: &KeyExpr) -> String {
    match expr {
        KeyExpr::CreatedAt => "e.created_at".to_owned(),
        KeyExpr::UpdatedAt => "e.updated_at".to_owned(),
        KeyExpr::EntityId => "e.entity_id".to_owned(),
        KeyExpr::EntityVersion => "string_to_array(e.entity_version, '.')::int[]".to_owned(),
        KeyExpr::Json(path) => sql.json_at(path).0,
        KeyExpr::DateTime(path) => {
            let p = sql.bind(SqlParam::Path(path.segments().to_vec()));
            timestamp_at(&p)
        }
    }
}

/// A cursor value as a cast placeholder.
fn key_param(sql: &mut Sql, value: &KeyValue) -> String {
    let (param, cast) = match value {
        KeyValue::Json(value) => (SqlParam::Json(value.clone()), "jsonb"),
        KeyValue::Timestamp(t) => (SqlParam::Timestamp(*t), "timestamptz"),
        KeyValue::Uuid(id) => (SqlParam::Uuid(*id), "uuid"),
        KeyValue::Version(v) => (SqlParam::IntArray(v.clone()), "int[]"),
        KeyValue::Null => unreachable!("null cursor values are rendered as IS [NOT] NULL"),
    };
    format!("{}::{cast}", sql.bind(param))
}

/// The keyset condition "after the row with these key values": the lexicographic expansion
/// `after1 OR (equal1 AND (after2 OR (equal2 AND ..)))`, with constant-false branches left out.
fn keyset(sql: &mut Sql, keys: &[SortKey], values: &[KeyValue]) -> String {
    fn after(sql: &mut Sql, key: &SortKey, value: &KeyValue) -> Option<String> {
        match (key.direction, value) {
            (Direction::Asc, KeyValue::Null) => None,
            (Direction::Desc, KeyValue::Null) => {
                Some(format!("{} IS NOT NULL", key_sql(sql, &key.expr)))
            }
            (Direction::Asc, value) if is_nullable(&key.expr) => {
                let k = key_sql(sql, &key.expr);
                Some(format!("({k} > {} OR {k} IS NULL)", key_param(sql, value)))
            }
            (Direction::Asc, value) => {
                let k = key_sql(sql, &key.expr);
                Some(format!("{k} > {}", key_param(sql, value)))
            }
            (Direction::Desc, value) => {
                let k = key_sql(sql, &key.expr);
                Some(format!("{k} < {}", key_param(sql, value)))
            }
        }
    }
    fn equal(sql: &mut Sql, key: &SortKey, value: &KeyValue) -> String {
        let k = key_sql(sql, &key.expr);
        match value {
            KeyValue::Null => format!("{k} IS NULL"),
            value => format!("{k} = {}", key_param(sql, value)),
        }
    }
    fn from(sql: &mut Sql, keys: &[SortKey], values: &[KeyValue]) -> Option<String> {
        let (key, value) = (&keys[0], &values[0]);
        let first = after(sql, key, value);
        if keys.len() == 1 {
            return first;
        }
        let eq = equal(sql, key, value);
        match (first, from(sql, &keys[1..], &values[1..])) {
            (first, None) => first,
            (None, Some(rest)) => Some(format!("{eq} AND ({rest})")),
            (Some(first), Some(rest)) => Some(format!("{first} OR ({eq} AND ({rest}))")),
        }
    }
    from(sql, keys, values).unwrap_or_else(|| "false".to_owned())
}

/// Metadata keys are never NULL; path keys are NULL where the path is missing.
fn is_nullable(expr: &KeyExpr) -> bool {
    matches!(expr, KeyExpr::Json(_) | KeyExpr::DateTime(_))
}

struct FilterCompiler<'a> {
    definition: &'a Value,
    sql: &'a mut Sql,
    conditions: usize,
    nodes: usize,
}

impl FilterCompiler<'_> {
    fn filter(
        &mut self,
        filter: &Filter,
        pointer: &str,
        depth: usize,
    ) -> Result<String, QueryError> {
        if depth > MAX_DEPTH {
            return Err(QueryError::new(
                pointer,
                format!("the filter nests deeper than {MAX_DEPTH} levels"),
            ));
        }
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(QueryError::new(
                pointer,
                format!("the filter has more than {MAX_NODES} parts"),
            ));
        }
        match filter {
            Filter::And(filters) => self.list(filters, pointer, "and", depth),
            Filter::Or(filters) => self.list(filters, pointer, "or", depth),
            Filter::Not(inner) => {
                let inner = self.filter(inner, &format!("{pointer}/not"), depth + 1)?;
                Ok(format!("NOT COALESCE({inner}, false)"))
            }
            Filter::Condition(condition) => {
                self.conditions += 1;
                if self.conditions > MAX_CONDITIONS {
                    return Err(QueryError::new(
                        pointer,
                        format!("the filter has more than {MAX_CONDITIONS} conditions"),
                    ));
                }
                self.condition(condition, pointer)
            }
        }
    }

    fn list(
        &mut self,
        filters: &[Filter],
        pointer: &str,
        keyword: &str,
        depth: usize,
    ) -> Result<String, QueryError> {
        if filters.is_empty() {
            return Ok(if keyword == "and" { "true" } else { "false" }.to_owned());
        }
        let parts = filters
            .iter()
            .enumerate()
            .map(|(i, f)| self.filter(f, &format!("{pointer}/{keyword}/{i}"), depth + 1))
            .collect::<Result<Vec<_>, _>>()?;
        let joiner = if keyword == "and" { " AND " } else { " OR " };
        Ok(format!("({})", parts.join(joiner)))
    }

    fn condition(&mut self, condition: &Condition, pointer: &str) -> Result<String, QueryError> {
        let path = &condition.path;
        let kind =
            value_kind(self.definition, path).map_err(|e| e.at(&format!("{pointer}/path")))?;
        let at_value = format!("{pointer}/value");
        let op = condition.op.name();
        let mismatch = |expected: &str, given: &str| {
            QueryError::new(
                at_value.clone(),
                format!(
                    "{path} is {}; {op} needs {expected}, got {given}",
                    kind.describe()
                ),
            )
        };
        let no_nul = |value: &Value| {
            if has_nul(value) {
                Err(QueryError::new(
                    at_value.clone(),
                    "strings must not contain NUL characters (PostgreSQL cannot store them)",
                ))
            } else {
                Ok(())
            }
        };
        match &condition.op {
            Operator::Eq(value) | Operator::Ne(value) => {
                no_nul(value)?;
                let sign = if matches!(condition.op, Operator::Eq(_)) {
                    "="
                } else {
                    "<>"
                };
                if kind == ValueKind::DateTime && !value.is_null() {
                    let t = timestamp_value(value)
                        .ok_or_else(|| mismatch(RFC3339, &describe(value)))?;
                    let p = self.sql.bind(SqlParam::Path(path.segments().to_vec()));
                    let v = self.sql.bind(SqlParam::Timestamp(t));
                    return Ok(format!("{} {sign} {v}::timestamptz", timestamp_at(&p)));
                }
                fits(kind, value).map_err(|expected| mismatch(expected, json_type(value)))?;
                let (j, _) = self.sql.json_at(path);
                let v = self.sql.bind(SqlParam::Json(value.clone()));
                Ok(format!("{j} {sign} {v}::jsonb"))
            }
            Operator::Lt(value)
            | Operator::Lte(value)
            | Operator::Gt(value)
            | Operator::Gte(value) => {
                no_nul(value)?;
                let sign = match condition.op {
                    Operator::Lt(_) => "<",
                    Operator::Lte(_) => "<=",
                    Operator::Gt(_) => ">",
                    _ => ">=",
                };
                let guard = match (kind, value) {
                    (ValueKind::DateTime, value) => {
                        let t = timestamp_value(value)
                            .ok_or_else(|| mismatch(RFC3339, &describe(value)))?;
                        let p = self.sql.bind(SqlParam::Path(path.segments().to_vec()));
                        let v = self.sql.bind(SqlParam::Timestamp(t));
                        return Ok(format!("{} {sign} {v}::timestamptz", timestamp_at(&p)));
                    }
                    (ValueKind::Number | ValueKind::Any, Value::Number(_)) => "number",
                    (ValueKind::String | ValueKind::Any, Value::String(_)) => "string",
                    (ValueKind::Number, value) => {
                        return Err(mismatch("a number", json_type(value)));
                    }
                    (ValueKind::String, value) => {
                        return Err(mismatch("a string", json_type(value)));
                    }
                    (ValueKind::Any, value) => {
                        return Err(mismatch(
                            "a number, a string or a date-time",
                            json_type(value),
                        ));
                    }
                    (ValueKind::Boolean | ValueKind::Array | ValueKind::Object, _) => {
                        return Err(QueryError::new(
                            at_value.clone(),
                            format!(
                                "{path} is {}; {op} compares only numbers, strings and date-times",
                                kind.describe()
                            ),
                        ));
                    }
                };
                let (j, p) = self.sql.json_at(path);
                let v = self.sql.bind(SqlParam::Json(value.clone()));
                Ok(format!(
                    "(jsonb_typeof(e.payload #> {p}::text[]) = '{guard}' AND {j} {sign} {v}::jsonb)"
                ))
            }
            Operator::In(values) => {
                if values.len() > MAX_IN_VALUES {
                    return Err(QueryError::new(
                        at_value.clone(),
                        format!(
                            "in takes at most {MAX_IN_VALUES} values, got {}",
                            values.len()
                        ),
                    ));
                }
                for (i, value) in values.iter().enumerate() {
                    let at = format!("{at_value}/{i}");
                    no_nul(value).map_err(|e| QueryError::new(at.clone(), e.message))?;
                    let checked = if kind == ValueKind::DateTime {
                        timestamp_value(value)
                            .map(|_| ())
                            .ok_or_else(|| mismatch(RFC3339, &describe(value)))
                    } else {
                        fits(kind, value).map_err(|expected| mismatch(expected, json_type(value)))
                    };
                    checked.map_err(|e| QueryError::new(at, e.message))?;
                }
                if values.is_empty() {
                    return Ok("false".to_owned());
                }
                if kind == ValueKind::DateTime {
                    let times = values.iter().filter_map(timestamp_value).collect();
                    let p = self.sql.bind(SqlParam::Path(path.segments().to_vec()));
                    let v = self.sql.bind(SqlParam::TimestampArray(times));
                    return Ok(format!("{} = ANY({v}::timestamptz[])", timestamp_at(&p)));
                }
                let (j, _) = self.sql.json_at(path);
                let v = self.sql.bind(SqlParam::JsonArray(values.clone()));
                Ok(format!("{j} = ANY({v}::jsonb[])"))
            }
            Operator::Contains(value) => {
                no_nul(value)?;
                match (kind, value) {
                    (ValueKind::String, Value::String(s)) => {
                        let p = self.sql.bind(SqlParam::Path(path.segments().to_vec()));
                        let v = self.sql.bind(SqlParam::Text(s.clone()));
                        Ok(format!("strpos({}, {v}::text) > 0", text_at(&p)))
                    }
                    (ValueKind::String, value) => Err(mismatch("a string", json_type(value))),
                    (ValueKind::Array, value) => {
                        let (j, _) = self.sql.json_at(path);
                        let v = self
                            .sql
                            .bind(SqlParam::Json(Value::Array(vec![value.clone()])));
                        Ok(format!("{j} @> {v}::jsonb"))
                    }
                    (ValueKind::Object, Value::Object(_)) => {
                        let (j, _) = self.sql.json_at(path);
                        let v = self.sql.bind(SqlParam::Json(value.clone()));
                        Ok(format!("{j} @> {v}::jsonb"))
                    }
                    (ValueKind::Object, value) => Err(mismatch("an object", json_type(value))),
                    (ValueKind::Any, value) => {
                        let (j, p) = self.sql.json_at(path);
                        let element = Value::Array(vec![value.clone()]);
                        Ok(match value {
                            Value::String(s) => {
                                let v = self.sql.bind(SqlParam::Text(s.clone()));
                                let w = self.sql.bind(SqlParam::Json(element));
                                format!(
                                    "((jsonb_typeof(e.payload #> {p}::text[]) = 'string' AND strpos({}, {v}::text) > 0) OR {j} @> {w}::jsonb)",
                                    text_at(&p)
                                )
                            }
                            Value::Object(_) => {
                                let v = self.sql.bind(SqlParam::Json(value.clone()));
                                let w = self.sql.bind(SqlParam::Json(element));
                                format!("({j} @> {v}::jsonb OR {j} @> {w}::jsonb)")
                            }
                            _ => {
                                let w = self.sql.bind(SqlParam::Json(element));
                                format!("{j} @> {w}::jsonb")
                            }
                        })
                    }
                    (ValueKind::Number | ValueKind::Boolean | ValueKind::DateTime, _) => {
                        Err(QueryError::new(
                            at_value.clone(),
                            format!(
                                "{path} is {}; contains applies to strings, arrays and objects",
                                kind.describe()
                            ),
                        ))
                    }
                }
            }
            Operator::StartsWith(prefix) => {
                no_nul(&Value::String(prefix.clone()))?;
                match kind {
                    ValueKind::String => {
                        let p = self.sql.bind(SqlParam::Path(path.segments().to_vec()));
                        let v = self.sql.bind(SqlParam::Text(prefix.clone()));
                        Ok(format!("starts_with({}, {v}::text)", text_at(&p)))
                    }
                    ValueKind::Any => {
                        let p = self.sql.bind(SqlParam::Path(path.segments().to_vec()));
                        let v = self.sql.bind(SqlParam::Text(prefix.clone()));
                        Ok(format!(
                            "(jsonb_typeof(e.payload #> {p}::text[]) = 'string' AND starts_with({}, {v}::text))",
                            text_at(&p)
                        ))
                    }
                    ValueKind::DateTime => Err(QueryError::new(
                        at_value.clone(),
                        format!(
                            "{path} is a date-time string; compare it with gte and lt instead of starts_with"
                        ),
                    )),
                    _ => Err(QueryError::new(
                        at_value.clone(),
                        format!(
                            "{path} is {}; starts_with applies to strings",
                            kind.describe()
                        ),
                    )),
                }
            }
            Operator::Exists => {
                let (j, _) = self.sql.json_at(path);
                Ok(format!("{j} IS NOT NULL"))
            }
        }
    }
}

const RFC3339: &str = "an RFC 3339 date-time";

fn timestamp_value(value: &Value) -> Option<DateTime<Utc>> {
    value.as_str().and_then(parse_timestamp)
}

/// `Ok` when `value` (or `null`) fits a path of `kind` for equality; else what was expected.
fn fits(kind: ValueKind, value: &Value) -> Result<(), &'static str> {
    let (ok, expected) = match kind {
        ValueKind::Number => (value.is_number(), "a number"),
        ValueKind::String => (value.is_string(), "a string"),
        ValueKind::Boolean => (value.is_boolean(), "a boolean"),
        ValueKind::Array => (value.is_array(), "an array"),
        ValueKind::Object => (value.is_object(), "an object"),
        ValueKind::DateTime => (value.is_string(), RFC3339),
        ValueKind::Any => (true, ""),
    };
    if ok || value.is_null() {
        Ok(())
    } else {
        Err(expected)
    }
}

/// The JSON type of a value, saying when a string is not a date-time.
fn describe(value: &Value) -> String {
    match value {
        Value::String(_) => "a string that is not an RFC 3339 date-time".to_owned(),
        other => json_type(other).to_owned(),
    }
}
