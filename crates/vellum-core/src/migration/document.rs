//! Finding the place a path names in a document.

use serde_json::{Map, Value};

use crate::query::JsonPath;

/// The parent of the last segment of `path` in `document`, if every segment before it exists:
/// object members by key, array elements by decimal index. `Ok(None)` when a parent is absent
/// or `null`; an error when the walk meets a scalar.
pub(super) fn parent_mut<'d>(
    document: &'d mut Value,
    path: &JsonPath,
) -> Result<Option<&'d mut Value>, String> {
    let segments = path.segments();
    let (_, parents) = segments.split_last().expect("a path has a segment");
    let mut current = document;
    for (depth, segment) in parents.iter().enumerate() {
        let next = match current {
            Value::Object(map) => map.get_mut(segment),
            Value::Array(items) => index(segment).and_then(|i| items.get_mut(i)),
            other => {
                return Err(format!(
                    "{} is {}, not an object or an array",
                    pointer(&segments[..depth]),
                    describe(other)
                ));
            }
        };
        match next {
            None | Some(Value::Null) => return Ok(None),
            Some(value) => current = value,
        }
    }
    Ok(Some(current))
}

/// The object holding the last segment of `path`, if its parents exist; an error when it is
/// not an object.
pub(super) fn object_mut<'d>(
    document: &'d mut Value,
    path: &JsonPath,
) -> Result<Option<&'d mut Map<String, Value>>, String> {
    match parent_mut(document, path)? {
        None => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(other) => Err(format!(
            "{} is {}, not an object",
            pointer(&path.segments()[..path.segments().len() - 1]),
            describe(other)
        )),
    }
}

/// The value at `path`, if it and its parents exist (array elements by index).
pub(super) fn value_mut<'d>(
    document: &'d mut Value,
    path: &JsonPath,
) -> Result<Option<&'d mut Value>, String> {
    let last = last(path);
    Ok(match parent_mut(document, path)? {
        Some(Value::Object(map)) => map.get_mut(last),
        Some(Value::Array(items)) => index(last).and_then(|i| items.get_mut(i)),
        Some(other) => {
            return Err(format!(
                "{} is {}, not an object or an array",
                pointer(&path.segments()[..path.segments().len() - 1]),
                describe(other)
            ));
        }
        None => None,
    })
}

/// The last segment of a path: the member an operation adds, removes or renames.
pub(super) fn last(path: &JsonPath) -> &str {
    path.segments().last().expect("a path has a segment")
}

/// An array index: decimal digits without a sign or leading zeros (RFC 6901).
fn index(segment: &str) -> Option<usize> {
    let canonical = segment == "0" || (!segment.starts_with('0') && !segment.is_empty());
    if canonical && segment.bytes().all(|b| b.is_ascii_digit()) {
        segment.parse().ok()
    } else {
        None
    }
}

fn pointer(segments: &[String]) -> String {
    if segments.is_empty() {
        return "the document".to_owned();
    }
    crate::query::pointer_of(segments)
}

/// The JSON type of a value with its article, for messages.
pub(super) fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
