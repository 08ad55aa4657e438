//! Queries over one entity type: a typed AST, its JSON grammar, and its compiler to
//! parameterized PostgreSQL.
//!
//! A [`Query`] is what `POST /v1/{service}/entities/{schema_id}/query` takes as its body and what
//! the library's query call takes. [`compile`] checks it against the active JSON Schema of the
//! type and renders one SQL statement whose text depends only on the query's *structure*: every
//! value and every path is a bound parameter ([`SqlParam`]), so user input never becomes SQL text.
//!
//! ```
//! use serde_json::json;
//! use vellum_core::query::{Filter, OrderBy, OrderKey, Query, QueryContext, compile};
//! use vellum_core::schema::{CompiledSchema, SchemaLimits};
//!
//! let query = Query {
//!     filter: Some(Filter::and([
//!         Filter::eq("/status", "open")?,
//!         Filter::gte("/total", 100)?,
//!     ])),
//!     order: vec![OrderKey::desc(OrderBy::CreatedAt)],
//!     limit: Some(20),
//!     ..Query::default()
//! };
//! // The same query, as the HTTP body.
//! let body = json!({
//!     "filter": {"and": [
//!         {"path": "/status", "op": "eq", "value": "open"},
//!         {"path": "/total", "op": "gte", "value": 100}
//!     ]},
//!     "order": [{"field": "created_at", "direction": "desc"}],
//!     "limit": 20
//! });
//! assert_eq!(serde_json::from_value::<Query>(body).unwrap(), query);
//!
//! let definition = json!({"type": "object", "properties": {
//!     "status": {"type": "string"}, "total": {"type": "number"}
//! }});
//! let schema = CompiledSchema::compile(&definition, &SchemaLimits::default()).unwrap();
//! let ctx = QueryContext {
//!     table: r#""shop"."orders""#,
//!     columns: "e.entity_id, e.payload",
//!     schema: &schema,
//!     cursor_key: b"secret",
//! };
//! let compiled = compile(&query, &ctx)?;
//! assert_eq!(
//!     compiled.sql,
//!     r#"SELECT e.entity_id, e.payload FROM "shop"."orders" e WHERE e.is_active AND e.deleted_at IS NULL AND (((e.payload #> $1::text[]) = $2::jsonb AND ((e.payload #> $3::text[]) >= $4::jsonb AND (e.payload #> $3::text[]) < 'false'::jsonb))) ORDER BY e.created_at DESC, e.entity_id DESC LIMIT $5"#
//! );
//! assert_eq!(compiled.limit(), 20);
//! # Ok::<(), vellum_core::query::QueryError>(())
//! ```
//!
//! # The JSON grammar
//!
//! ```text
//! query     := {"filter"?: filter, "order"?: [order_key, ...], "limit"?: 1..1000 (default 50),
//!               "cursor"?: string, "as_of"?: RFC 3339 timestamp, "ids"?: [uuid, ...] (<= 1000),
//!               "include_deleted"?: bool (default false)}
//! filter    := {"and": [filter, ...]} | {"or": [filter, ...]} | {"not": filter}
//!            | {"path": pointer, "op": "eq"|"ne"|"lt"|"lte"|"gt"|"gte"|"contains", "value": json}
//!            | {"path": pointer, "op": "starts_with", "value": string}
//!            | {"path": pointer, "op": "in", "value": [json, ...]}
//!            | {"path": pointer, "op": "exists"}
//! order_key := {"path": pointer, "direction"?: "asc"|"desc"}
//!            | {"field": "created_at"|"updated_at"|"entity_id"|"entity_version",
//!               "direction"?: "asc"|"desc"}            (direction defaults to "asc")
//! pointer   := an RFC 6901 JSON Pointer with at least one segment: "/customer/name",
//!              "/lines/0/sku"; "~1" is "/" and "~0" is "~" inside a segment
//! ```
//!
//! Unknown keys are refused everywhere; so are mixed shapes (`{"and": [], "path": ..}`), an
//! unknown `op`, a missing `value` (except for `exists`, which takes none), a non-array `value`
//! for `in`, and malformed pointers (`"a/b"`, `"/a~2"`, `""`).
//!
//! # Semantics
//!
//! - **Typing.** Each path is typed by the active JSON Schema of the type ([`value_kind`]):
//!   `number`/`integer` paths compare numerically, `string` paths by collation, `string` with
//!   `format: "date-time"` paths as timestamps (the value must then be an RFC 3339 string),
//!   `boolean` paths by equality only. A path the schema does not declare under an open object
//!   is untyped ([`ValueKind::Any`]): it compares as `jsonb`, by the JSON type of the value
//!   given. A path ruled out by `additionalProperties: false` is an error. A value of the wrong
//!   kind for the path is an error (`"/total is a number; gt needs a number, got a string"`).
//! - **Missing paths.** A condition on a path absent from a document is false (SQL NULL),
//!   whatever the operator, `ne` included: `{"path": "/x", "op": "ne", "value": 1}` matches only
//!   documents that have `/x`. An explicit JSON `null` is a present value: `exists` matches it and
//!   `eq null` matches it.
//! - **Not.** `not` is the complement in two-valued logic: `{"not": c}` matches every document
//!   `c` does not match, documents missing the path included.
//! - **Range operators** (`lt lte gt gte`) match only values of the same JSON type as the value
//!   given (a string never compares greater than a number); they are refused on booleans,
//!   arrays, objects and `null`.
//! - **`in`** matches values equal to one of the list (at most 1000); an empty list matches
//!   nothing.
//! - **`contains`**: on a string path, a substring test (case-sensitive; the empty string is in
//!   every string); on an array path, "has an element containing the value" (`jsonb @>` against
//!   `[value]`, so `{"op": "contains", "value": {"sku": "A"}}` on `/lines` finds a line with that
//!   sku); on an object path, `jsonb @>` against an object value. On an untyped path the stored
//!   value decides: a string value matches a stored string containing it or a stored array with
//!   that element; an object value matches a stored object containing it or a stored array with
//!   an element containing it; any other value matches a stored array with that element.
//! - **`starts_with`**: a case-sensitive prefix test on a string path (on an untyped path, only
//!   stored strings match).
//! - **`exists`**: the path is present.
//! - **`eq`/`ne`/`in` on arrays and objects** compare whole values (`jsonb` equality); on
//!   booleans only these three apply.
//! - **Order.** Order keys are paths or metadata fields. A path orders by `jsonb` order (null <
//!   strings < numbers < booleans < arrays < objects, numbers numerically), a date-time path by
//!   timestamp, `entity_version` by semantic version. Ascending puts documents missing the path
//!   last, descending first. `entity_id` is always the last tiebreaker, in the direction of the
//!   last key (ascending without `order`), so the order is total and pages never overlap. At
//!   most 16 keys.
//! - **Pages.** `limit` (1 to 1000, default 50) bounds a page; `cursor` (from the previous page)
//!   continues after its last row, and belongs to the query that produced it: another filter,
//!   order, `as_of`, `ids` or `include_deleted` refuses it; the limit may change between pages.
//! - **Limits.** At most 32 levels of nested `and`/`or`/`not`, 256 conditions, 1024 filter nodes
//!   in all; strings and path segments must not contain NUL characters (PostgreSQL cannot store
//!   them).
//!
//! # SQL shapes
//!
//! `$p` is a `text[]` path parameter ([`SqlParam::Path`]), `$v` a value parameter. A condition
//! renders its path as one of these expressions, which are also the shapes of the expression
//! indexes that can serve it (with `plan_cache_mode = force_custom_plan`, PostgreSQL folds the
//! path parameters into constants and matches indexes on `(payload #> '{a,b}'::text[])` and
//! `vellum.to_timestamptz(payload #>> '{a,b}'::text[])`):
//!
//! | kind | expression |
//! |---|---|
//! | any, as jsonb | `(e.payload #> $p::text[])` |
//! | as text (`contains` on strings, `starts_with`) | `(e.payload #>> $p::text[])` |
//! | date-time | `vellum.to_timestamptz(e.payload #>> $p::text[])` |
//!
//! | operator | SQL |
//! |---|---|
//! | `eq ne` | `J = $v::jsonb`, `J <> $v::jsonb`; date-time: `D = $v::timestamptz` |
//! | `lt lte gt gte` | numbers: `(J > $v::jsonb AND J < 'false'::jsonb)` for `gt`/`gte`, `(jsonb_typeof(J) = 'number' AND J < $v::jsonb)` for `lt`/`lte`; strings: `(J < $v::jsonb AND J > 'null'::jsonb)` for `lt`/`lte`, `(jsonb_typeof(J) = 'string' AND J > $v::jsonb)` for `gt`/`gte`; date-time: `D < $v::timestamptz` |
//! | `in` | `J = ANY($v::jsonb[])`; date-time `D = ANY($v::timestamptz[])`; empty list: `false` |
//! | `contains` | string: `strpos(T, $v::text) > 0`; array: `J @> $v::jsonb` (value `[x]`); object: `J @> $v::jsonb`; untyped: see above |
//! | `starts_with` | `starts_with(T, $v::text)`; untyped: `(jsonb_typeof(J) = 'string' AND starts_with(T, $v::text))` |
//! | `exists` | `J IS NOT NULL` |
//! | `and`, `or`, `not` | `(a AND b)`, `(a OR b)`, `NOT COALESCE(a, false)`; empty `and`/`or`: `true`/`false` |
//!
//! A range matches values of its value's type only. `jsonb` orders values of different types by
//! type (null, strings, numbers, booleans, arrays, objects; a top-level `[]` before null), so a
//! range is closed on its open side by the value next to its type where there is one: `false`,
//! the least boolean, above numbers, and `null` below strings. That is a second bound an index
//! applies, where a type check reads each row's document. The other two (numbers downwards,
//! strings upwards) check the type: no string is greatest and no number least.
//!
//! The statement (live, then as of a timestamp):
//!
//! ```text
//! SELECT {columns} FROM {table} e WHERE e.is_active AND e.deleted_at IS NULL
//!   [AND (CASE WHEN e.is_active THEN e.entity_id END) = ANY($n::uuid[])] [AND (filter)]
//!   [AND (keyset)] ORDER BY .. LIMIT $n
//!
//! SELECT {columns} FROM (SELECT DISTINCT ON (e.entity_id) e.* FROM {table} e
//!   WHERE e.created_at <= $1::timestamptz [AND e.entity_id = ANY($2::uuid[])]
//!   ORDER BY e.entity_id, e.created_at DESC, e.revision DESC) e
//!   WHERE (e.deleted_at IS NULL OR e.deleted_at > $1::timestamptz) [AND (filter)] [AND (keyset)]
//!   ORDER BY .. LIMIT $n
//! ```
//!
//! `include_deleted` drops the `deleted_at` condition. Parameters are numbered in the order
//! they appear in the text; `LIMIT` is bound to the page size plus one, so the caller knows
//! whether there is a next page. Order keys render as `e.created_at`, `e.updated_at`,
//! `e.entity_id`, `string_to_array(e.entity_version, '.')::int[]`, `(e.payload #> $p::text[])` or,
//! for date-time paths, `vellum.to_timestamptz(e.payload #>> $p::text[])`, followed by `ASC`
//! or `DESC` (PostgreSQL's default null placement, so one btree index serves both directions).
//! In a query of current, undeleted versions (no `as_of`, no `include_deleted`), `updated_at`
//! renders as `e.created_at`: on those rows the two are equal (a constraint of the entity
//! table), and the table's commit-time index is on `(created_at, entity_id)`.
//!
//! The keyset condition of a cursor expands lexicographically over the order keys (the last
//! being the `entity_id` tiebreaker, in the direction of the key before it): `(k1 after c1) OR (k1 = c1 AND ((k2 after c2) OR ..))`,
//! where "after" is `(k > $c OR k IS NULL)` ascending and `k < $c` descending, and, when the
//! cursor row was missing the path of a key, `k IS NULL` for "equal", nothing ascending and
//! `k IS NOT NULL` descending for "after" (constant-false branches are left out). Each
//! fragment binds its own path and value parameters. When there are several keys and the cursor
//! row had a value for the first, a bound on it comes before the expansion, for an index to
//! start its scan at (an `OR` gives the planner none): `k1 <= $c AND (..)` descending, and
//! `k1 >= $c AND (..)` ascending when no row of the result lacks the key (a metadata key, or a
//! path one of the filter's top-level `and` conditions tests; for a date-time path, a timestamp
//! comparison: `lt`, `lte`, `gt`, `gte`, `in`, or `eq`/`ne` with a non-null value). When the
//! first key is followed only by the tiebreaker, the bound is the row comparison
//! `(k1, e.entity_id) < ($c, $id)` (`>` ascending), which an index on both starts at exactly;
//! it is then the whole keyset condition, without the expansion, which would only repeat it.
//! On an indexed path (`x-vellum-index` or `x-vellum-ref` in the active schema) a row of the
//! result may lack, a query of current versions reads apart a part of the rows that comes whole
//! after the cursor row, so that each part is an index range: the rows missing the path,
//! ascending from a cursor row that had it (the first part's keyset then bounded as if the path
//! were required), and the rows that have it, descending from a cursor row that lacked it (the
//! first part's keyset then `k1 IS NULL AND (..)` over the other keys):
//!
//! ```text
//! SELECT {columns} FROM (
//!     (SELECT e.* FROM {table} e WHERE .. AND (keyset) ORDER BY .. LIMIT $n)
//!     UNION ALL (SELECT e.* FROM {table} e WHERE .. AND k1 IS [NOT] NULL ORDER BY .. LIMIT $n)
//!   ) e ORDER BY .. LIMIT $n
//! ```
//!
//! The text depends only on the structure of the query: which nodes, operators, paths' kinds
//! and order keys, whether a cursor key was missing (and so whether the first is bounded),
//! whether an `in` list is empty, whether an `eq`/`ne` value on a date-time path is `null`, and,
//! on untyped paths only, the JSON type of the value of a range operator or `contains`.
//!
//! # What the caller provides
//!
//! - `vellum.to_timestamptz(text)`: an `IMMUTABLE` SQL function returning `timestamptz`, `NULL`
//!   for `NULL`. [`CompiledQuery::cursor_after`] reads an unparsable date-time as a missing key,
//!   so the function should also return `NULL` for text that is not a timestamp rather than
//!   raise: documents written under an older schema version may hold anything at the path.
//! - Parameters bind as: `Path` `Vec<String>` (`text[]`), `Json` `serde_json::Value` (`jsonb`; a
//!   JSON `null` is the `jsonb` value `null`, never SQL NULL), `JsonArray` `Vec<Value>`
//!   (`jsonb[]`), `Text` `String`, `Timestamp` `DateTime<Utc>`, `TimestampArray`
//!   `Vec<DateTime<Utc>>`, `Uuid`, `UuidArray` `Vec<Uuid>`, `IntArray` `Vec<i32>` (`int4[]`),
//!   `BigInt` `i64`.
//! - `plan_cache_mode = force_custom_plan`, so expression indexes on paths are usable.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

mod compile;
mod cursor;
mod filter;
mod filter_sql;
mod keyset;
mod order;
mod path;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_cursor;
#[cfg(test)]
mod tests_grammar;
#[cfg(test)]
mod tests_path;
#[cfg(test)]
mod tests_props;
#[cfg(test)]
mod tests_statement;

pub use compile::{CompiledQuery, QueryContext, RowKeys, SqlParam, compile};
pub use filter::{Condition, Filter, Operator};
pub use order::{Direction, OrderBy, OrderKey};
pub(crate) use path::pointer_of;
pub use path::{JsonPath, ValueKind, value_kind};

/// The page size when a query names none.
pub const DEFAULT_LIMIT: u32 = 50;
/// The largest page size, and the most `ids` a query may name.
pub const MAX_LIMIT: u32 = 1000;

/// A query over one entity type (the body of `POST /v1/{service}/entities/{schema_id}/query`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Query {
    /// Which documents; all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
    /// In which order; `entity_id` is always the last key, in the direction of the key before it
    /// (ascending when `order` is empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub order: Vec<OrderKey>,
    /// Page size, 1 to [`MAX_LIMIT`]; [`DEFAULT_LIMIT`] when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Continue after the last row of a previous page of the same query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Read the documents as they were at this time instead of now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<DateTime<Utc>>,
    /// Only these entities (at most [`MAX_LIMIT`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<Vec<Uuid>>,
    /// Include soft-deleted entities.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub include_deleted: bool,
}

/// A query that cannot be compiled, with where the problem is in the query body.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueryError {
    /// A JSON pointer into the query body, e.g. `"/filter/and/1/path"`; `""` when the problem is
    /// not at one place.
    pub pointer: String,
    /// What is wrong, for people.
    pub message: String,
}

impl QueryError {
    /// An error at `pointer` (a JSON pointer into the query body, `""` for none).
    pub fn new(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        QueryError {
            pointer: pointer.into(),
            message: message.into(),
        }
    }

    /// The same error, located at `pointer` when it has no location yet.
    pub(crate) fn at(mut self, pointer: &str) -> Self {
        if self.pointer.is_empty() {
            self.pointer = pointer.to_owned();
        }
        self
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pointer.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "at {:?}: {}", self.pointer, self.message)
        }
    }
}

impl std::error::Error for QueryError {}

/// Whether a JSON value holds a NUL character in a string or a key.
pub(crate) fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}
