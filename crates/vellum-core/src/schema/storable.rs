//! What PostgreSQL can store: its `text` and `jsonb` types cannot hold U+0000.

use serde_json::Value;

use super::Violation;

/// Every string or key containing U+0000 in `value`, as violations with their JSON pointers
/// (a key is reported at the pointer of the object holding it).
pub(super) fn nul_characters(value: &Value) -> Vec<Violation> {
    let mut found = Vec::new();
    // Almost every document has none: look before building pointers.
    if contains_nul(value) {
        walk(value, &mut String::new(), &mut found);
    }
    found
}

fn contains_nul(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(items) => items.iter().any(contains_nul),
        Value::Object(map) => map
            .iter()
            .any(|(key, item)| key.contains('\0') || contains_nul(item)),
        _ => false,
    }
}

fn walk(value: &Value, pointer: &mut String, found: &mut Vec<Violation>) {
    let message = "contains U+0000, which PostgreSQL cannot store in text";
    match value {
        Value::String(text) if text.contains('\0') => {
            found.push(Violation::new(pointer.clone(), "", message))
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                let len = pointer.len();
                pointer.push_str(&format!("/{index}"));
                walk(item, pointer, found);
                pointer.truncate(len);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                if key.contains('\0') {
                    found.push(Violation::new(
                        pointer.clone(),
                        "",
                        format!("a property name {message}"),
                    ));
                    continue;
                }
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                walk(item, pointer, found);
                pointer.truncate(len);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn finds_nul_in_values_and_keys_with_their_pointers() {
        let doc = json!({"a": "ok", "b": ["x", "y\u{0}"], "c/d": {"e": "\u{0}"}, "k\u{0}": 1});
        let pointers: Vec<String> = nul_characters(&doc)
            .into_iter()
            .map(|v| v.pointer)
            .collect();
        assert_eq!(pointers, ["/b/1", "/c~1d/e", ""]);
        assert!(nul_characters(&json!({"a": "plain", "n": 0})).is_empty());
    }
}
