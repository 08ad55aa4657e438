//! The SQL of a filter: each node renders its text and binds its parameters in one pass.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::compile::{Sql, parse_timestamp, text_at, timestamp_at};
use super::filter::json_type;
use super::path::{ValueKind, value_kind};
use super::{Condition, Filter, Operator, QueryError, SqlParam, has_nul};

/// Deepest nesting of `and` / `or` / `not`.
const MAX_DEPTH: usize = 32;
/// Most conditions in one filter.
const MAX_CONDITIONS: usize = 256;
/// Most filter nodes (conditions, `and`, `or`, `not`) in one filter.
const MAX_NODES: usize = 1024;
/// Most values in one `in` list.
const MAX_IN_VALUES: usize = 1000;

pub(super) struct FilterCompiler<'a> {
    pub(super) definition: &'a Value,
    pub(super) sql: &'a mut Sql,
    pub(super) conditions: usize,
    pub(super) nodes: usize,
}

impl FilterCompiler<'_> {
    pub(super) fn filter(
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
