//! Sort keys, and the keyset condition that continues after a row.

use serde_json::Value;

use super::compile::{RowKeys, Sql, parse_timestamp, timestamp_at};
use super::cursor::KeyValue;
use super::order::Direction;
use super::path::JsonPath;
use super::{Condition, Filter, Operator, SqlParam};
use crate::schema::Annotations;

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
    pub(super) fn value_of(&self, row: &RowKeys<'_>) -> KeyValue {
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

/// The SQL expression of a sort key, binding its path if it has one.
pub(super) fn key_sql(sql: &mut Sql, expr: &KeyExpr) -> String {
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
/// `after1 OR (equal1 AND (after2 OR (equal2 AND ..)))`, with constant-false branches left out,
/// behind the [`leading_bound`] of the first key when it has one, or that bound alone when it is
/// exact. With `apart`, the caller reads that part of the rows after the cursor row on its own
/// ([`apart`]), and the condition leaves it out.
pub(super) fn keyset(
    sql: &mut Sql,
    keys: &[SortKey],
    values: &[KeyValue],
    filter: Option<&Filter>,
    apart: Option<Apart>,
) -> String {
    if apart == Some(Apart::Present) {
        // The cursor row lacks the first key, descending: the rows after it that lack it too.
        let k = key_sql(sql, &keys[0].expr);
        return format!(
            "{k} IS NULL AND ({})",
            expansion(sql, &keys[1..], &values[1..])
        );
    }
    // Bound first: parameters are numbered in the order they appear in the text.
    let bound = match keys.len() {
        1 => None,
        _ => leading_bound(sql, keys, values, filter, apart == Some(Apart::Missing)),
    };
    match bound {
        // The expansion would only repeat it, for PostgreSQL to check on every row read.
        Some(Bound::Exact(bound)) => bound,
        Some(Bound::Leading(bound)) => format!("{bound} AND ({})", expansion(sql, keys, values)),
        None => expansion(sql, keys, values),
    }
}

/// A [`leading_bound`].
enum Bound {
    /// The row comparison: exactly the rows after the cursor row.
    Exact(String),
    /// A bound on the first key, which some rows before the cursor row meet too.
    Leading(String),
}

/// A bound on the first key that every row after the cursor row meets, for an index on that key
/// to start its scan at: the expansion, an `OR`, gives the planner none, and a page deep into
/// the results would read every row before it. Descending, `k <= c` (rows missing a path sort
/// first, before the cursor row). Ascending, `k >= c` when no row of the result lacks the key: a
/// metadata key, or a path the filter requires (rows missing it sort last, after the cursor row,
/// so without the filter's guarantee the bound would drop them), or when `present`: the caller
/// reads the rows missing it apart ([`Apart::Missing`]). None when the cursor row had no value.
///
/// When the first key is the only one before the `entity_id` tiebreaker (which then has its
/// direction), the bound is the row comparison `(k, e.entity_id) < (c, id)` descending, `>`
/// ascending: exactly "after the cursor row" ([`Bound::Exact`]), which an index on
/// `(k, entity_id)` starts its scan at, so rows sharing the cursor row's value that precede it
/// are not read again. A row missing the path compares as `NULL` and is left out, as by
/// `k <= c`, and as the rows that may lack it must be: the bound is only taken when none of
/// them follows the cursor row, or the caller reads them apart.
fn leading_bound(
    sql: &mut Sql,
    keys: &[SortKey],
    values: &[KeyValue],
    filter: Option<&Filter>,
    present: bool,
) -> Option<Bound> {
    let (key, value) = (&keys[0], &values[0]);
    if matches!(value, KeyValue::Null) {
        return None;
    }
    let sign = match key.direction {
        Direction::Desc => "<",
        Direction::Asc if present || !lacks_key(keys, filter) => ">",
        Direction::Asc => return None,
    };
    let k = key_sql(sql, &key.expr);
    let c = key_param(sql, value);
    match (keys, values) {
        ([_, tie], [_, id]) if tie.expr == KeyExpr::EntityId && tie.direction == key.direction => {
            let id = key_param(sql, id);
            Some(Bound::Exact(format!(
                "({k}, e.entity_id) {sign} ({c}, {id})"
            )))
        }
        _ => Some(Bound::Leading(format!("{k} {sign}= {c}"))),
    }
}

/// Whether a row of the result may lack the first key: a path key the filter does not require.
fn lacks_key(keys: &[SortKey], filter: Option<&Filter>) -> bool {
    let expr = &keys[0].expr;
    is_nullable(expr) && !filter.is_some_and(|f| requires(f, expr))
}

/// A part of the rows after the cursor row that a query reads on its own: rows that have the
/// first key (`k IS NOT NULL`), or rows that lack it (`k IS NULL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Apart {
    Present,
    Missing,
}

impl Apart {
    /// The condition on the first key's SQL expression `k` that selects the part.
    pub(super) fn condition(self, k: &str) -> String {
        match self {
            Apart::Present => format!("{k} IS NOT NULL"),
            Apart::Missing => format!("{k} IS NULL"),
        }
    }
}

/// Which part of the rows after the cursor row, if any, is better read apart from the rest, on
/// an indexed path (one of `annotations`' indexes) a row of the result may lack. Rows lacking the
/// path sort last ascending and first descending, so two cases put every row of one part after
/// the cursor row:
///
/// - ascending, from a cursor row that had the path: every row missing it ([`Apart::Missing`]);
/// - descending, from a cursor row that lacked it: every row that has it ([`Apart::Present`]).
///
/// Read together, the keyset is an `OR` of the two parts (`k > c OR k IS NULL ..`, `k IS NOT
/// NULL OR (k IS NULL AND ..)`), which gives no index bound, and a page deep into the results
/// reads every row before it. Read apart, each part is an index range, read to the page's size,
/// and the page is the first rows of the two. Without an index each part would scan the table.
pub(super) fn apart(
    keys: &[SortKey],
    values: &[KeyValue],
    filter: Option<&Filter>,
    annotations: &Annotations,
) -> Option<Apart> {
    let path = match &keys[0].expr {
        KeyExpr::Json(path) | KeyExpr::DateTime(path) => path,
        _ => return None,
    };
    let indexed = annotations
        .indexes
        .iter()
        .any(|index| index.segments == path.segments());
    if keys.len() == 1 || !lacks_key(keys, filter) || !indexed {
        return None;
    }
    match (keys[0].direction, matches!(values[0], KeyValue::Null)) {
        (Direction::Asc, false) => Some(Apart::Missing),
        (Direction::Desc, true) => Some(Apart::Present),
        _ => None,
    }
}

/// Whether every row `filter` keeps has a value for the path key `expr`: a condition on its path
/// among the filter's top-level conjuncts. A condition on a missing path never holds, so any
/// condition will do for a `jsonb` key; a date-time key is `NULL` for a value that is no
/// date-time too, so only conditions comparing timestamps will do.
fn requires(filter: &Filter, expr: &KeyExpr) -> bool {
    match filter {
        Filter::And(filters) => filters.iter().any(|f| requires(f, expr)),
        Filter::Condition(Condition { path, op }) => match expr {
            KeyExpr::Json(key) => path == key,
            KeyExpr::DateTime(key) => {
                path == key
                    && match op {
                        Operator::Eq(value) | Operator::Ne(value) => !value.is_null(),
                        Operator::Lt(_)
                        | Operator::Lte(_)
                        | Operator::Gt(_)
                        | Operator::Gte(_)
                        | Operator::In(_) => true,
                        Operator::Contains(_) | Operator::Exists | Operator::StartsWith(_) => false,
                    }
            }
            _ => false,
        },
        Filter::Or(_) | Filter::Not(_) => false,
    }
}

fn expansion(sql: &mut Sql, keys: &[SortKey], values: &[KeyValue]) -> String {
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
