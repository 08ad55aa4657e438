//! JSON values as JSON Schema compares them: numbers by value (`1` equals `1.0`), and the sets
//! of instance types that `type` names.

use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

/// Whether two JSON values are equal as JSON Schema's `enum` and `const` compare them.
pub(super) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(a), Value::Number(b)) => compare_numbers(a, b) == Some(Ordering::Equal),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(key, a)| b.get(key).is_some_and(|b| json_eq(a, b)))
        }
        (a, b) => a == b,
    }
}

/// Orders two numbers exactly when both are integers, else as `f64`.
pub(super) fn compare_numbers(a: &Number, b: &Number) -> Option<Ordering> {
    if let (Some(a), Some(b)) = (a.as_i64(), b.as_i64()) {
        return Some(a.cmp(&b));
    }
    if let (Some(a), Some(b)) = (a.as_u64(), b.as_u64()) {
        return Some(a.cmp(&b));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

/// Whether `a` is an integer multiple of `b` (both positive, as `multipleOf` requires).
pub(super) fn is_multiple(a: &Number, b: &Number) -> bool {
    if let (Some(a), Some(b)) = (a.as_u64(), b.as_u64()) {
        return b != 0 && a % b == 0;
    }
    match (a.as_f64(), b.as_f64()) {
        (Some(a), Some(b)) if b > 0.0 => {
            let ratio = a / b;
            (ratio - ratio.round()).abs() <= 1e-9 * ratio.abs().max(1.0)
        }
        _ => false,
    }
}

/// The instance types of JSON Schema, as bits; `integer` is a subset of `number`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) struct Types(u8);

const NAMES: [&str; 7] = [
    "null", "boolean", "object", "array", "number", "integer", "string",
];
const NUMBER: u8 = 1 << 4;
const INTEGER: u8 = 1 << 5;

impl Types {
    /// Every type: what a schema without `type` accepts.
    pub(super) const ANY: Types = Types((1 << NAMES.len()) - 1);

    /// The types named by a schema's `type`; `None` when it has none or it is malformed.
    pub(super) fn of(schema: &Map<String, Value>) -> Option<Types> {
        let named = |name: &str| NAMES.iter().position(|n| *n == name).map(|i| 1u8 << i);
        let bits = match schema.get("type")? {
            Value::String(name) => named(name)?,
            Value::Array(names) => names
                .iter()
                .map(|name| name.as_str().and_then(named))
                .try_fold(0, |bits, bit| bit.map(|bit| bits | bit))?,
            _ => return None,
        };
        // A number that happens to be whole is an integer: `number` includes `integer`.
        Some(Types(if bits & NUMBER != 0 {
            bits | INTEGER
        } else {
            bits
        }))
    }

    /// Whether every instance of `self` is an instance of `other`.
    pub(super) fn within(self, other: Types) -> bool {
        self.0 & !other.0 == 0
    }

    /// Whether `self` allows only objects (or nothing).
    pub(super) fn only_objects(self) -> bool {
        self.within(Types(1 << 2))
    }
}

impl std::fmt::Display for Types {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if *self == Types::ANY {
            return f.write_str("any type");
        }
        let mut names: Vec<&str> = NAMES
            .iter()
            .enumerate()
            .filter(|(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, name)| *name)
            .collect();
        if self.0 & NUMBER != 0 {
            names.retain(|name| *name != "integer");
        }
        f.write_str(&names.join(" or "))
    }
}

/// A value shown in a description: short values as JSON, long ones cut.
pub(super) fn show(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= 60 {
        return text;
    }
    let cut: String = text.chars().take(57).collect();
    format!("{cut}...")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn types(value: Value) -> Option<Types> {
        Types::of(value.as_object().unwrap())
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(json_eq(&json!(1), &json!(1.0)));
        assert!(json_eq(&json!({"a": [1, 2.0]}), &json!({"a": [1.0, 2]})));
        assert!(!json_eq(&json!(1), &json!("1")));
        assert!(!json_eq(&json!([1]), &json!([1, 1])));
        let n = |v: Value| v.as_number().unwrap().clone();
        assert_eq!(
            compare_numbers(&n(json!(-1)), &n(json!(0.5))),
            Some(Ordering::Less)
        );
        assert_eq!(
            compare_numbers(&n(json!(u64::MAX)), &n(json!(u64::MAX - 1))),
            Some(Ordering::Greater)
        );
        assert!(is_multiple(&n(json!(6)), &n(json!(3))));
        assert!(!is_multiple(&n(json!(3)), &n(json!(6))));
        assert!(is_multiple(&n(json!(0.1)), &n(json!(0.01))));
        assert!(!is_multiple(&n(json!(0.15)), &n(json!(0.1))));
    }

    #[test]
    fn integer_is_within_number() {
        let integer = types(json!({"type": "integer"})).unwrap();
        let number = types(json!({"type": "number"})).unwrap();
        assert!(integer.within(number));
        assert!(!number.within(integer));
        assert_eq!(types(json!({"type": ["number", "integer"]})), Some(number));
        assert!(number.within(Types::ANY));
        assert_eq!(types(json!({})), None);
        assert_eq!(types(json!({"type": "nonsense"})), None);
        assert_eq!(
            types(json!({"type": ["string", "null"]}))
                .unwrap()
                .to_string(),
            "null or string"
        );
        assert_eq!(number.to_string(), "number");
        assert!(types(json!({"type": "object"})).unwrap().only_objects());
    }
}
