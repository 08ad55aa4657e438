//! The filter AST and its JSON grammar.

use serde::de::{self, Deserializer};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{JsonPath, QueryError};

/// A boolean expression over the documents of one entity type.
///
/// In JSON, one of `{"and": [..]}`, `{"or": [..]}`, `{"not": ..}` or a condition
/// `{"path": "/a/b", "op": "..", "value": ..}` (see the [module documentation](super)).
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Every filter holds; the empty list is true.
    And(Vec<Filter>),
    /// At least one filter holds; the empty list is false.
    Or(Vec<Filter>),
    /// The filter does not hold (a condition on a missing path does not hold, so its `not` does).
    Not(Box<Filter>),
    /// A test of the value at one path.
    Condition(Condition),
}

/// A test of the value at one path of the document.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// Where the tested value is.
    pub path: JsonPath,
    /// The test.
    pub op: Operator,
}

/// The test a [`Condition`] applies; its JSON name is in brackets.
#[derive(Debug, Clone, PartialEq)]
pub enum Operator {
    /// (`eq`) Equal to the value (numbers numerically, `null` matches an explicit JSON null).
    Eq(Value),
    /// (`ne`) Present and not equal to the value.
    Ne(Value),
    /// (`lt`) Less than the value (numbers, strings, date-times).
    Lt(Value),
    /// (`lte`) Less than or equal to the value.
    Lte(Value),
    /// (`gt`) Greater than the value.
    Gt(Value),
    /// (`gte`) Greater than or equal to the value.
    Gte(Value),
    /// (`in`) Equal to one of the values (at most 1000; none matches nothing).
    In(Vec<Value>),
    /// (`contains`) A string containing the substring, an array containing the element, an
    /// object containing the sub-object.
    Contains(Value),
    /// (`exists`) The path is present (an explicit JSON null counts as present).
    Exists,
    /// (`starts_with`) A string starting with the prefix.
    StartsWith(String),
}

impl Operator {
    /// The JSON name of the operator, e.g. `"starts_with"`.
    pub fn name(&self) -> &'static str {
        match self {
            Operator::Eq(_) => "eq",
            Operator::Ne(_) => "ne",
            Operator::Lt(_) => "lt",
            Operator::Lte(_) => "lte",
            Operator::Gt(_) => "gt",
            Operator::Gte(_) => "gte",
            Operator::In(_) => "in",
            Operator::Contains(_) => "contains",
            Operator::Exists => "exists",
            Operator::StartsWith(_) => "starts_with",
        }
    }
}

const OPERATORS: &str = "eq, ne, lt, lte, gt, gte, in, contains, exists, starts_with";

impl Filter {
    /// A condition on `path` (a JSON pointer such as `"/customer/name"`).
    pub fn condition(path: &str, op: Operator) -> Result<Filter, QueryError> {
        let path = JsonPath::parse(path)?;
        Ok(Filter::Condition(Condition { path, op }))
    }

    /// `path` equals `value`.
    pub fn eq(path: &str, value: impl Into<Value>) -> Result<Filter, QueryError> {
        Filter::condition(path, Operator::Eq(value.into()))
    }

    /// `path` is present and differs from `value`.
    pub fn ne(path: &str, value: impl Into<Value>) -> Result<Filter, QueryError> {
        Filter::condition(path, Operator::Ne(value.into()))
    }

    /// `path` is less than `value`.
    pub fn lt(path: &str, value: impl Into<Value>) -> Result<Filter, QueryError> {
        Filter::condition(path, Operator::Lt(value.into()))
    }

    /// `path` is less than or equal to `value`.
    pub fn lte(path: &str, value: impl Into<Value>) -> Result<Filter, QueryError> {
        Filter::condition(path, Operator::Lte(value.into()))
    }

    /// `path` is greater than `value`.
    pub fn gt(path: &str, value: impl Into<Value>) -> Result<Filter, QueryError> {
        Filter::condition(path, Operator::Gt(value.into()))
    }

    /// `path` is greater than or equal to `value`.
    pub fn gte(path: &str, value: impl Into<Value>) -> Result<Filter, QueryError> {
        Filter::condition(path, Operator::Gte(value.into()))
    }

    /// `path` equals one of `values` (JSON `"op": "in"`).
    pub fn is_in<I>(path: &str, values: I) -> Result<Filter, QueryError>
    where
        I: IntoIterator,
        I::Item: Into<Value>,
    {
        let values = values.into_iter().map(Into::into).collect();
        Filter::condition(path, Operator::In(values))
    }

    /// `path` contains `value` (substring, array element or sub-object).
    pub fn contains(path: &str, value: impl Into<Value>) -> Result<Filter, QueryError> {
        Filter::condition(path, Operator::Contains(value.into()))
    }

    /// `path` is present.
    pub fn exists(path: &str) -> Result<Filter, QueryError> {
        Filter::condition(path, Operator::Exists)
    }

    /// `path` is a string starting with `prefix`.
    pub fn starts_with(path: &str, prefix: impl Into<String>) -> Result<Filter, QueryError> {
        Filter::condition(path, Operator::StartsWith(prefix.into()))
    }

    /// Every filter holds.
    pub fn and(filters: impl IntoIterator<Item = Filter>) -> Filter {
        Filter::And(filters.into_iter().collect())
    }

    /// At least one filter holds.
    pub fn or(filters: impl IntoIterator<Item = Filter>) -> Filter {
        Filter::Or(filters.into_iter().collect())
    }

    /// The filter does not hold (also `!filter`).
    #[expect(
        clippy::should_implement_trait,
        reason = "`std::ops::Not` is implemented too; this one reads like `Filter::and`"
    )]
    pub fn not(filter: Filter) -> Filter {
        Filter::Not(Box::new(filter))
    }
}

impl std::ops::Not for Filter {
    type Output = Filter;

    fn not(self) -> Filter {
        Filter::Not(Box::new(self))
    }
}

impl Serialize for Filter {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Filter::And(filters) => single(serializer, "and", filters),
            Filter::Or(filters) => single(serializer, "or", filters),
            Filter::Not(filter) => single(serializer, "not", filter),
            Filter::Condition(condition) => condition.serialize(serializer),
        }
    }
}

fn single<S: Serializer, T: Serialize + ?Sized>(
    serializer: S,
    key: &str,
    value: &T,
) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(1))?;
    map.serialize_entry(key, value)?;
    map.end()
}

impl Serialize for Condition {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let has_value = !matches!(self.op, Operator::Exists);
        let mut map = serializer.serialize_map(Some(2 + usize::from(has_value)))?;
        map.serialize_entry("path", &self.path)?;
        map.serialize_entry("op", self.op.name())?;
        match &self.op {
            Operator::Eq(v)
            | Operator::Ne(v)
            | Operator::Lt(v)
            | Operator::Lte(v)
            | Operator::Gt(v)
            | Operator::Gte(v)
            | Operator::Contains(v) => map.serialize_entry("value", v)?,
            Operator::In(values) => map.serialize_entry("value", values)?,
            Operator::StartsWith(prefix) => map.serialize_entry("value", prefix)?,
            Operator::Exists => {}
        }
        map.end()
    }
}

/// Every key a filter object may have; which combinations are valid is checked after.
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a filter: {\"and\": [..]}, {\"or\": [..]}, {\"not\": ..} or {\"path\": .., \"op\": .., \"value\": ..}"
)]
struct RawFilter {
    and: Option<Vec<Filter>>,
    or: Option<Vec<Filter>>,
    not: Option<Box<Filter>>,
    path: Option<JsonPath>,
    op: Option<String>,
    #[serde(default, deserialize_with = "present")]
    value: Option<Value>,
}

/// Tells `"value": null` (`Some(Null)`) from no `value` key (`None`).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

impl<'de> Deserialize<'de> for Filter {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawFilter::deserialize(deserializer)?;
        Filter::from_raw(raw).map_err(de::Error::custom)
    }
}

impl Filter {
    fn from_raw(raw: RawFilter) -> Result<Filter, String> {
        let is_condition = raw.path.is_some() || raw.op.is_some() || raw.value.is_some();
        let shapes = usize::from(raw.and.is_some())
            + usize::from(raw.or.is_some())
            + usize::from(raw.not.is_some())
            + usize::from(is_condition);
        if shapes != 1 {
            return Err(
                "a filter is exactly one of {\"and\": [..]}, {\"or\": [..]}, {\"not\": ..} \
                 or a condition {\"path\": .., \"op\": .., \"value\": ..}"
                    .to_owned(),
            );
        }
        if let Some(filters) = raw.and {
            return Ok(Filter::And(filters));
        }
        if let Some(filters) = raw.or {
            return Ok(Filter::Or(filters));
        }
        if let Some(filter) = raw.not {
            return Ok(Filter::Not(filter));
        }
        let path = raw.path.ok_or("a condition needs a \"path\"")?;
        let op = raw.op.ok_or("a condition needs an \"op\"")?;
        let value = raw.value;
        let needs_value = || {
            value
                .clone()
                .ok_or_else(|| format!("operator {op:?} needs a \"value\""))
        };
        let op = match op.as_str() {
            "eq" => Operator::Eq(needs_value()?),
            "ne" => Operator::Ne(needs_value()?),
            "lt" => Operator::Lt(needs_value()?),
            "lte" => Operator::Lte(needs_value()?),
            "gt" => Operator::Gt(needs_value()?),
            "gte" => Operator::Gte(needs_value()?),
            "contains" => Operator::Contains(needs_value()?),
            "in" => match needs_value()? {
                Value::Array(values) => Operator::In(values),
                other => {
                    return Err(format!(
                        "operator \"in\" needs an array \"value\", got {}",
                        json_type(&other)
                    ));
                }
            },
            "starts_with" => match needs_value()? {
                Value::String(prefix) => Operator::StartsWith(prefix),
                other => {
                    return Err(format!(
                        "operator \"starts_with\" needs a string \"value\", got {}",
                        json_type(&other)
                    ));
                }
            },
            "exists" if value.is_some() => {
                return Err("operator \"exists\" takes no \"value\"".to_owned());
            }
            "exists" => Operator::Exists,
            other => {
                return Err(format!(
                    "unknown operator {other:?}, expected one of {OPERATORS}"
                ));
            }
        };
        Ok(Filter::Condition(Condition { path, op }))
    }
}

/// The JSON type of a value with its article, for messages: `"a string"`, `"null"`.
pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
