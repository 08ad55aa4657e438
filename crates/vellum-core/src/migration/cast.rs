//! The conversions of the `cast` operation. Each one is exact or refused: a string converts to
//! a number only when it is the number's canonical text, so converting back gives the same
//! string.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Number, Value};

use super::document::describe;

/// The JSON types a `cast` converts between.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum JsonType {
    /// A JSON string.
    String,
    /// A number without a fractional part (`5` or `5.0`).
    Integer,
    /// Any JSON number.
    Number,
    /// `true` or `false`.
    Boolean,
}

impl JsonType {
    /// Whether `value` has this type, as JSON Schema's `type` says it (an integer is a number).
    pub fn holds(self, value: &Value) -> bool {
        match self {
            JsonType::String => value.is_string(),
            JsonType::Integer => value.as_number().is_some_and(integral),
            JsonType::Number => value.is_number(),
            JsonType::Boolean => value.is_boolean(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            JsonType::String => "string",
            JsonType::Integer => "integer",
            JsonType::Number => "number",
            JsonType::Boolean => "boolean",
        }
    }
}

impl fmt::Display for JsonType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn integral(number: &Number) -> bool {
    number.is_i64() || number.is_u64() || number.as_f64().is_some_and(|f| f.fract() == 0.0)
}

/// Converts `value` to `to`. A value that already has the type is returned as it is, except
/// that an integral number written with a fraction (`5.0`) becomes an integer (`5`).
pub(super) fn convert(value: Value, to: JsonType) -> Result<Value, String> {
    if to.holds(&value) && !(to == JsonType::Integer && value.is_f64()) {
        return Ok(value);
    }
    let refuse = |value: &Value| {
        Err(format!(
            "{} cannot be cast to {to} without loss",
            shown(value)
        ))
    };
    match (&value, to) {
        (Value::Number(n), JsonType::String) => Ok(Value::String(n.to_string())),
        (Value::Bool(b), JsonType::String) => Ok(Value::String(b.to_string())),
        (Value::String(s), JsonType::Integer) => match canonical_number(s) {
            Some(n) if n.is_i64() || n.is_u64() => Ok(Value::Number(n)),
            _ => refuse(&value),
        },
        (Value::String(s), JsonType::Number) => match canonical_number(s) {
            Some(n) => Ok(Value::Number(n)),
            None => refuse(&value),
        },
        (Value::Number(n), JsonType::Integer) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Value::from(f as i64)),
            _ => refuse(&value),
        },
        (Value::Bool(b), JsonType::Integer | JsonType::Number) => Ok(Value::from(u8::from(*b))),
        (Value::String(s), JsonType::Boolean) => match s.as_str() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => refuse(&value),
        },
        (Value::Number(n), JsonType::Boolean) => match n.as_f64() {
            Some(1.0) => Ok(Value::Bool(true)),
            Some(0.0) => Ok(Value::Bool(false)),
            _ => refuse(&value),
        },
        _ => Err(format!("{} cannot be cast to {to}", describe(&value))),
    }
}

/// The number `text` is the canonical JSON text of, if any: `"7"`, `"-3"`, `"1.5"`, but not
/// `"007"`, `"+7"`, `" 7"` or `"1.50"`.
fn canonical_number(text: &str) -> Option<Number> {
    let number: Number = serde_json::from_str(text).ok()?;
    (number.to_string() == text).then_some(number)
}

/// A value in a message, shortened.
fn shown(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 40 {
        format!("{}...", text.chars().take(40).collect::<String>())
    } else {
        text
    }
}
