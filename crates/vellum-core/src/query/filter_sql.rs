//! The SQL of a filter: each node renders its text and binds its parameters in one pass.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::compile::{Sql, parse_timestamp, text_at, timestamp_at};
use super::filter::json_type;
use super::path::{JsonPath, ValueKind, value_kind};
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
        let kind = value_kind(self.definition, path)
            .map_err(|error| error.at(&format!("{pointer}/path")))?;
        let target = Target {
            path,
            kind,
            op: condition.op.name(),
            at: format!("{pointer}/value"),
        };
        match &condition.op {
            Operator::Eq(value) => self.equality(&target, "=", value),
            Operator::Ne(value) => self.equality(&target, "<>", value),
            Operator::Lt(value) => self.range(&target, "<", value),
            Operator::Lte(value) => self.range(&target, "<=", value),
            Operator::Gt(value) => self.range(&target, ">", value),
            Operator::Gte(value) => self.range(&target, ">=", value),
            Operator::In(values) => self.one_of(&target, values),
            Operator::Contains(value) => self.contains(&target, value),
            Operator::StartsWith(prefix) => self.starts_with(&target, prefix),
            Operator::Exists => {
                let (j, _) = self.sql.json_at(path);
                Ok(format!("{j} IS NOT NULL"))
            }
        }
    }

    /// `D <op> $v::timestamptz` on a date-time path.
    fn timestamp(
        &mut self,
        target: &Target<'_>,
        sign: &str,
        value: &Value,
    ) -> Result<String, QueryError> {
        let t = timestamp_value(value).ok_or_else(|| target.mismatch(RFC3339, &describe(value)))?;
        let p = self
            .sql
            .bind(SqlParam::Path(target.path.segments().to_vec()));
        let v = self.sql.bind(SqlParam::Timestamp(t));
        Ok(format!("{} {sign} {v}::timestamptz", timestamp_at(&p)))
    }

    fn equality(
        &mut self,
        target: &Target<'_>,
        sign: &str,
        value: &Value,
    ) -> Result<String, QueryError> {
        target.no_nul(value)?;
        if target.kind == ValueKind::DateTime && !value.is_null() {
            return self.timestamp(target, sign, value);
        }
        fits(target.kind, value).map_err(|expected| target.mismatch(expected, json_type(value)))?;
        let (j, _) = self.sql.json_at(target.path);
        let v = self.sql.bind(SqlParam::Json(value.clone()));
        Ok(format!("{j} {sign} {v}::jsonb"))
    }

    fn range(
        &mut self,
        target: &Target<'_>,
        sign: &str,
        value: &Value,
    ) -> Result<String, QueryError> {
        target.no_nul(value)?;
        let json_type_name = match (target.kind, value) {
            (ValueKind::DateTime, value) => return self.timestamp(target, sign, value),
            (ValueKind::Number | ValueKind::Any, Value::Number(_)) => "number",
            (ValueKind::String | ValueKind::Any, Value::String(_)) => "string",
            (ValueKind::Number, value) => return Err(target.mismatch("a number", json_type(value))),
            (ValueKind::String, value) => return Err(target.mismatch("a string", json_type(value))),
            (ValueKind::Any, value) => {
                return Err(target.mismatch("a number, a string or a date-time", json_type(value)));
            }
            (ValueKind::Boolean | ValueKind::Array | ValueKind::Object, _) => {
                let why = format!(
                    "{} compares only numbers, strings and date-times",
                    target.op
                );
                return Err(target.refuse(&why));
            }
        };
        let (j, p) = self.sql.json_at(target.path);
        let v = self.sql.bind(SqlParam::Json(value.clone()));
        // Within the value's type: bounded by the `jsonb` value next to its type on the open
        // side where there is one, else a type check (the module's docs say why).
        Ok(match (json_type_name, sign) {
            ("number", ">" | ">=") => format!("({j} {sign} {v}::jsonb AND {j} < 'false'::jsonb)"),
            ("string", "<" | "<=") => format!("({j} {sign} {v}::jsonb AND {j} > 'null'::jsonb)"),
            _ => format!(
                "(jsonb_typeof(e.payload #> {p}::text[]) = '{json_type_name}' AND {j} {sign} {v}::jsonb)"
            ),
        })
    }

    fn one_of(&mut self, target: &Target<'_>, values: &[Value]) -> Result<String, QueryError> {
        if values.len() > MAX_IN_VALUES {
            return Err(QueryError::new(
                target.at.clone(),
                format!(
                    "in takes at most {MAX_IN_VALUES} values, got {}",
                    values.len()
                ),
            ));
        }
        for (i, value) in values.iter().enumerate() {
            let checked = target.no_nul(value).and_then(|()| {
                if target.kind == ValueKind::DateTime {
                    timestamp_value(value)
                        .map(|_| ())
                        .ok_or_else(|| target.mismatch(RFC3339, &describe(value)))
                } else {
                    fits(target.kind, value)
                        .map_err(|expected| target.mismatch(expected, json_type(value)))
                }
            });
            checked
                .map_err(|error| QueryError::new(format!("{}/{i}", target.at), error.message))?;
        }
        if values.is_empty() {
            return Ok("false".to_owned());
        }
        if target.kind == ValueKind::DateTime {
            let times = values.iter().filter_map(timestamp_value).collect();
            let p = self
                .sql
                .bind(SqlParam::Path(target.path.segments().to_vec()));
            let v = self.sql.bind(SqlParam::TimestampArray(times));
            return Ok(format!("{} = ANY({v}::timestamptz[])", timestamp_at(&p)));
        }
        let (j, _) = self.sql.json_at(target.path);
        let v = self.sql.bind(SqlParam::JsonArray(values.to_vec()));
        Ok(format!("{j} = ANY({v}::jsonb[])"))
    }

    fn contains(&mut self, target: &Target<'_>, value: &Value) -> Result<String, QueryError> {
        target.no_nul(value)?;
        let element = || Value::Array(vec![value.clone()]);
        match (target.kind, value) {
            (ValueKind::String, Value::String(s)) => {
                let p = self
                    .sql
                    .bind(SqlParam::Path(target.path.segments().to_vec()));
                let v = self.sql.bind(SqlParam::Text(s.clone()));
                Ok(format!("strpos({}, {v}::text) > 0", text_at(&p)))
            }
            (ValueKind::String, value) => Err(target.mismatch("a string", json_type(value))),
            (ValueKind::Array, _) => {
                let (j, _) = self.sql.json_at(target.path);
                let v = self.sql.bind(SqlParam::Json(element()));
                Ok(format!("{j} @> {v}::jsonb"))
            }
            (ValueKind::Object, Value::Object(_)) => {
                let (j, _) = self.sql.json_at(target.path);
                let v = self.sql.bind(SqlParam::Json(value.clone()));
                Ok(format!("{j} @> {v}::jsonb"))
            }
            (ValueKind::Object, value) => Err(target.mismatch("an object", json_type(value))),
            // Untyped: the stored value decides between substring, element and sub-object.
            (ValueKind::Any, Value::String(s)) => {
                let (j, p) = self.sql.json_at(target.path);
                let v = self.sql.bind(SqlParam::Text(s.clone()));
                let w = self.sql.bind(SqlParam::Json(element()));
                Ok(format!(
                    "((jsonb_typeof(e.payload #> {p}::text[]) = 'string' AND strpos({}, {v}::text) > 0) OR {j} @> {w}::jsonb)",
                    text_at(&p)
                ))
            }
            (ValueKind::Any, Value::Object(_)) => {
                let (j, _) = self.sql.json_at(target.path);
                let v = self.sql.bind(SqlParam::Json(value.clone()));
                let w = self.sql.bind(SqlParam::Json(element()));
                Ok(format!("({j} @> {v}::jsonb OR {j} @> {w}::jsonb)"))
            }
            (ValueKind::Any, _) => {
                let (j, _) = self.sql.json_at(target.path);
                let w = self.sql.bind(SqlParam::Json(element()));
                Ok(format!("{j} @> {w}::jsonb"))
            }
            (ValueKind::Number | ValueKind::Boolean | ValueKind::DateTime, _) => {
                Err(target.refuse("contains applies to strings, arrays and objects"))
            }
        }
    }

    fn starts_with(&mut self, target: &Target<'_>, prefix: &str) -> Result<String, QueryError> {
        target.no_nul(&Value::String(prefix.to_owned()))?;
        let guarded = match target.kind {
            ValueKind::String => false,
            ValueKind::Any => true,
            ValueKind::DateTime => {
                return Err(QueryError::new(
                    target.at.clone(),
                    format!(
                        "{} is a date-time string; compare it with gte and lt instead of starts_with",
                        target.path
                    ),
                ));
            }
            _ => return Err(target.refuse("starts_with applies to strings")),
        };
        let p = self
            .sql
            .bind(SqlParam::Path(target.path.segments().to_vec()));
        let v = self.sql.bind(SqlParam::Text(prefix.to_owned()));
        let test = format!("starts_with({}, {v}::text)", text_at(&p));
        Ok(if guarded {
            format!("(jsonb_typeof(e.payload #> {p}::text[]) = 'string' AND {test})")
        } else {
            test
        })
    }
}

/// The path a condition tests, its kind, and where its value is in the query body.
struct Target<'a> {
    path: &'a JsonPath,
    kind: ValueKind,
    op: &'static str,
    at: String,
}

impl Target<'_> {
    /// "/total is a number; gt needs a number, got a string".
    fn mismatch(&self, expected: &str, given: &str) -> QueryError {
        let message = format!(
            "{} is {}; {} needs {expected}, got {given}",
            self.path,
            self.kind.describe(),
            self.op
        );
        QueryError::new(self.at.clone(), message)
    }

    /// "/total is a number; contains applies to strings, arrays and objects".
    fn refuse(&self, why: &str) -> QueryError {
        let message = format!("{} is {}; {why}", self.path, self.kind.describe());
        QueryError::new(self.at.clone(), message)
    }

    fn no_nul(&self, value: &Value) -> Result<(), QueryError> {
        if has_nul(value) {
            return Err(QueryError::new(
                self.at.clone(),
                "strings must not contain NUL characters (PostgreSQL cannot store them)",
            ));
        }
        Ok(())
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
