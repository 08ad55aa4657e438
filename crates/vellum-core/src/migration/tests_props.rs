//! Properties of migrations over generated documents: a lossless migration reversed gives back
//! every document it accepts, and reversing twice gives the same migration.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::*;

/// A document of the old shape: every member optional, with values of the types the
/// operations below expect.
fn document() -> impl Strategy<Value = Value> {
    let text = "[a-zA-Z0-9 /~_-]{0,8}";
    (
        proptest::option::of(text),
        proptest::option::of(prop_oneof![
            Just("open"),
            Just("done"),
            Just("held"),
            Just("x")
        ]),
        proptest::option::of(any::<i64>()),
        proptest::option::of(any::<i32>().prop_map(|n| n.to_string())),
        proptest::option::of(any::<bool>()),
        proptest::option::of(proptest::option::of(text)),
        proptest::option::of(-1.0e9..1.0e9f64),
        proptest::option::of(proptest::collection::vec(any::<i16>(), 0..4)),
    )
        .prop_map(|(customer, status, qty, code, paid, city, price, tags)| {
            let mut doc = Map::new();
            let mut put = |key: &str, value: Option<Value>| {
                if let Some(value) = value {
                    doc.insert(key.to_owned(), value);
                }
            };
            put("customer", customer.map(Value::from));
            put("status", status.map(Value::from));
            put("qty", qty.map(Value::from));
            put("code", code.map(Value::from));
            put("paid", paid.map(Value::from));
            put(
                "address",
                city.map(|city| match city {
                    Some(city) => json!({"city": city, "zip": "69001"}),
                    None => Value::Null,
                }),
            );
            put("price", price.map(Value::from));
            put("tags", tags.map(|t| json!(t)));
            Value::Object(doc)
        })
}

/// Lossless operations that accept every generated document, each on its own member.
fn lossless_pool() -> Vec<Value> {
    vec![
        json!({"op": "rename", "from": "/customer", "to": "/buyer"}),
        json!({"op": "add", "path": "/currency", "value": "EUR"}),
        json!({"op": "add", "path": "/meta", "value": {"source": "v1", "n": [1, 2]}}),
        json!({"op": "map", "path": "/status", "values": {"open": "OPEN", "done": "CLOSED"}}),
        json!({"op": "map", "path": "/status", "values": {"open": "done", "done": "open"}}),
        json!({"op": "cast", "path": "/qty", "from": "integer", "to": "string"}),
        json!({"op": "cast", "path": "/code", "from": "string", "to": "integer"}),
        json!({"op": "cast", "path": "/paid", "from": "boolean", "to": "string"}),
        json!({"op": "cast", "path": "/price", "from": "number", "to": "string"}),
        json!({"op": "rename", "from": "/address/city", "to": "/address/town"}),
        json!({"op": "rename", "from": "/tags", "to": "/labels"}),
    ]
}

fn lossless_migration() -> impl Strategy<Value = Migration> {
    proptest::sample::subsequence(lossless_pool(), 0..=11)
        .prop_shuffle()
        .prop_map(|operations| {
            serde_json::from_value(json!({"from": "1.0.0", "operations": operations})).unwrap()
        })
}

/// Numbers compare by value, as in PostgreSQL `jsonb`.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn a_lossless_migration_reversed_gives_back_the_document(
        migration in lossless_migration(),
        document in document(),
    ) {
        prop_assert_eq!(migration.reversibility(), Reversibility::Lossless);
        let migrated = migration.apply(document.clone()).unwrap();
        let back = migration.reverse(Version::new(2, 0, 0)).unwrap();
        let restored = back.apply(migrated.clone()).unwrap();
        prop_assert!(same(&restored, &document), "{} -> {} -> {}", document, migrated, restored);
    }

    #[test]
    fn reversing_twice_gives_the_same_migration(migration in lossless_migration()) {
        let back = migration.reverse(Version::new(2, 0, 0)).unwrap();
        let again = back.reverse(migration.from).unwrap();
        prop_assert_eq!(again, migration);
    }

    #[test]
    fn a_migration_round_trips_through_its_json(migration in lossless_migration()) {
        let json = serde_json::to_value(&migration).unwrap();
        prop_assert_eq!(serde_json::from_value::<Migration>(json).unwrap(), migration);
    }

    /// Appending a lossy operation makes the whole migration irreversible.
    #[test]
    fn one_lossy_operation_makes_the_migration_lossy(migration in lossless_migration()) {
        let mut operations = migration.operations.clone();
        operations.push(serde_json::from_value(json!({"op": "remove", "path": "/zip"})).unwrap());
        let lossy = Migration::new(migration.from, operations).unwrap();
        prop_assert_eq!(lossy.reversibility(), Reversibility::Lossy);
        prop_assert!(lossy.reverse(Version::new(2, 0, 0)).is_none());
    }
}
