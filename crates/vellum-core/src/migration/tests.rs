//! Table-driven tests of each operation: its effect, its reverse, its errors, and the grammar.

use serde_json::{Value, json};

use super::*;

fn op(value: Value) -> Operation {
    serde_json::from_value(value).unwrap()
}

fn migration(operations: Value) -> Migration {
    serde_json::from_value(json!({"from": "1.0.0", "operations": operations})).unwrap()
}

/// (operation, document before, document after)
fn applies() -> Vec<(Value, Value, Value)> {
    vec![
        // rename
        (
            json!({"op": "rename", "from": "/customer", "to": "/buyer"}),
            json!({"customer": "ACME", "total": 3}),
            json!({"buyer": "ACME", "total": 3}),
        ),
        (
            json!({"op": "rename", "from": "/customer", "to": "/buyer/name"}),
            json!({"customer": "ACME", "buyer": {"vat": "FR1"}}),
            json!({"buyer": {"vat": "FR1", "name": "ACME"}}),
        ),
        (
            json!({"op": "rename", "from": "/address/city", "to": "/city"}),
            json!({"address": {"city": "Lyon", "zip": "69001"}}),
            json!({"address": {"zip": "69001"}, "city": "Lyon"}),
        ),
        (
            json!({"op": "rename", "from": "/customer", "to": "/buyer"}),
            json!({"total": 3}),
            json!({"total": 3}),
        ),
        (
            json!({"op": "rename", "from": "/a~1b", "to": "/a~0b"}),
            json!({"a/b": 1}),
            json!({"a~b": 1}),
        ),
        (
            json!({"op": "rename", "from": "/lines/0/qty", "to": "/lines/0/quantity"}),
            json!({"lines": [{"qty": 2}, {"qty": 5}]}),
            json!({"lines": [{"quantity": 2}, {"qty": 5}]}),
        ),
        (
            json!({"op": "rename", "from": "/address/city", "to": "/city"}),
            json!({"address": null}),
            json!({"address": null}),
        ),
        // add
        (
            json!({"op": "add", "path": "/currency", "value": "EUR"}),
            json!({"total": 3}),
            json!({"total": 3, "currency": "EUR"}),
        ),
        (
            json!({"op": "add", "path": "/currency", "value": "EUR"}),
            json!({"currency": "USD"}),
            json!({"currency": "USD"}),
        ),
        (
            json!({"op": "add", "path": "/currency", "value": "EUR"}),
            json!({"currency": null}),
            json!({"currency": null}),
        ),
        (
            json!({"op": "add", "path": "/buyer/tags", "value": []}),
            json!({"total": 1}),
            json!({"total": 1}),
        ),
        (
            json!({"op": "add", "path": "/buyer", "value": {"kind": "retail"}}),
            json!({}),
            json!({"buyer": {"kind": "retail"}}),
        ),
        // remove
        (
            json!({"op": "remove", "path": "/legacy"}),
            json!({"legacy": [1, 2], "total": 1}),
            json!({"total": 1}),
        ),
        (
            json!({"op": "remove", "path": "/legacy", "restore": 0}),
            json!({"total": 1}),
            json!({"total": 1}),
        ),
        // set
        (
            json!({"op": "set", "path": "/kind", "value": "retail"}),
            json!({"kind": "wholesale"}),
            json!({"kind": "retail"}),
        ),
        (
            json!({"op": "set", "path": "/kind", "value": "retail"}),
            json!({}),
            json!({"kind": "retail"}),
        ),
        // cast
        (
            json!({"op": "cast", "path": "/qty", "to": "integer"}),
            json!({"qty": "42"}),
            json!({"qty": 42}),
        ),
        (
            json!({"op": "cast", "path": "/qty", "to": "integer"}),
            json!({"qty": -7.0}),
            json!({"qty": -7}),
        ),
        (
            json!({"op": "cast", "path": "/qty", "to": "integer"}),
            json!({"qty": 42}),
            json!({"qty": 42}),
        ),
        (
            json!({"op": "cast", "path": "/qty", "to": "string"}),
            json!({"qty": 42}),
            json!({"qty": "42"}),
        ),
        (
            json!({"op": "cast", "path": "/price", "to": "string"}),
            json!({"price": 1.5}),
            json!({"price": "1.5"}),
        ),
        (
            json!({"op": "cast", "path": "/price", "from": "string", "to": "number"}),
            json!({"price": "-0.25"}),
            json!({"price": -0.25}),
        ),
        (
            json!({"op": "cast", "path": "/paid", "to": "boolean"}),
            json!({"paid": "true"}),
            json!({"paid": true}),
        ),
        (
            json!({"op": "cast", "path": "/paid", "to": "boolean"}),
            json!({"paid": 0}),
            json!({"paid": false}),
        ),
        (
            json!({"op": "cast", "path": "/paid", "to": "integer"}),
            json!({"paid": true}),
            json!({"paid": 1}),
        ),
        (
            json!({"op": "cast", "path": "/paid", "to": "string"}),
            json!({"paid": false}),
            json!({"paid": "false"}),
        ),
        (
            json!({"op": "cast", "path": "/qty", "from": "string", "to": "integer"}),
            json!({"qty": null}),
            json!({"qty": null}),
        ),
        (
            json!({"op": "cast", "path": "/lines/1", "to": "string"}),
            json!({"lines": [1, 2]}),
            json!({"lines": [1, "2"]}),
        ),
        // map
        (
            json!({"op": "map", "path": "/status", "values": {"open": "OPEN", "done": "CLOSED"}}),
            json!({"status": "done"}),
            json!({"status": "CLOSED"}),
        ),
        (
            json!({"op": "map", "path": "/status", "values": {"open": "OPEN", "done": "CLOSED"}}),
            json!({"status": "held"}),
            json!({"status": "held"}),
        ),
        (
            json!({"op": "map", "path": "/status", "values": {"open": "a", "b": "open"}}),
            json!({"status": "open"}),
            json!({"status": "a"}),
        ),
        (
            json!({"op": "map", "path": "/status", "values": {"open": 1, "done": 2}}),
            json!({"status": "done"}),
            json!({"status": 2}),
        ),
        (
            json!({"op": "map", "path": "/status", "values": {"open": "X", "done": "X"}}),
            json!({"status": "X"}),
            json!({"status": "X"}),
        ),
        (
            json!({"op": "map", "path": "/status", "values": {"open": "OPEN"}}),
            json!({"status": 3}),
            json!({"status": 3}),
        ),
    ]
}

#[test]
fn each_operation_transforms_the_document_as_documented() {
    for (operation, before, after) in applies() {
        let parsed = op(operation.clone());
        assert_eq!(
            parsed.apply(before.clone()).unwrap(),
            after,
            "{operation} on {before}"
        );
    }
}

#[test]
fn lossless_operations_give_back_the_original_document() {
    let mut checked = 0;
    for (operation, before, after) in applies() {
        let parsed = op(operation.clone());
        if parsed.reversibility() != Reversibility::Lossless {
            continue;
        }
        // The documented domain of `add`: the property is new, absent before the migration.
        if let Operation::Add { path, .. } = &parsed
            && path.lookup(&before).is_some()
        {
            continue;
        }
        let reverse = parsed
            .reverse()
            .expect("a lossless operation has a reverse");
        assert_eq!(
            reverse.apply(after).unwrap(),
            before,
            "reverse of {operation}"
        );
        checked += 1;
    }
    assert!(checked >= 15, "{checked} lossless cases");
}

#[test]
fn reverses_and_reversibility_per_operation() {
    let cases = [
        (
            json!({"op": "rename", "from": "/a", "to": "/b/c"}),
            Some(json!({"op": "rename", "from": "/b/c", "to": "/a"})),
            Reversibility::Lossless,
        ),
        (
            json!({"op": "add", "path": "/currency", "value": "EUR"}),
            Some(json!({"op": "remove", "path": "/currency", "restore": "EUR"})),
            Reversibility::Lossless,
        ),
        (
            json!({"op": "remove", "path": "/legacy"}),
            None,
            Reversibility::Lossy,
        ),
        (
            json!({"op": "remove", "path": "/legacy", "restore": null}),
            Some(json!({"op": "add", "path": "/legacy", "value": null})),
            Reversibility::Restoring,
        ),
        (
            json!({"op": "set", "path": "/kind", "value": "retail"}),
            None,
            Reversibility::Lossy,
        ),
        (
            json!({"op": "set", "path": "/kind", "value": "retail", "restore": "any"}),
            Some(json!({"op": "set", "path": "/kind", "value": "any", "restore": "retail"})),
            Reversibility::Restoring,
        ),
        (
            json!({"op": "cast", "path": "/qty", "to": "integer"}),
            None,
            Reversibility::Lossy,
        ),
        (
            json!({"op": "cast", "path": "/qty", "from": "string", "to": "integer"}),
            Some(json!({"op": "cast", "path": "/qty", "from": "integer", "to": "string"})),
            Reversibility::Lossless,
        ),
        (
            json!({"op": "map", "path": "/s", "values": {"open": "OPEN", "done": "CLOSED"}}),
            Some(json!({"op": "map", "path": "/s", "values": {"OPEN": "open", "CLOSED": "done"}})),
            Reversibility::Lossless,
        ),
        (
            json!({"op": "map", "path": "/s", "values": {"open": "X", "done": "X"}}),
            None,
            Reversibility::Lossy,
        ),
        (
            json!({"op": "map", "path": "/s", "values": {"open": 1}}),
            None,
            Reversibility::Lossy,
        ),
    ];
    for (operation, reverse, reversibility) in cases {
        let parsed = op(operation.clone());
        assert_eq!(parsed.reversibility(), reversibility, "{operation}");
        let found = parsed.reverse().map(|r| serde_json::to_value(r).unwrap());
        assert_eq!(found, reverse, "reverse of {operation}");
        if let Some(reverse) = parsed.reverse() {
            assert_eq!(reverse.reverse(), Some(parsed), "reverse of the reverse");
        }
    }
}

#[test]
fn operations_that_cannot_apply_say_which_and_where() {
    let cases = [
        (
            json!({"op": "rename", "from": "/customer", "to": "/buyer"}),
            json!({"customer": "A", "buyer": "B"}),
            "cannot move it to /buyer: a value is already there",
        ),
        (
            json!({"op": "rename", "from": "/customer", "to": "/buyer/name"}),
            json!({"customer": "A"}),
            "cannot move it to /buyer/name: the object that would hold it is absent",
        ),
        (
            json!({"op": "rename", "from": "/customer/name", "to": "/name"}),
            json!({"customer": "A"}),
            "/customer is a string, not an object",
        ),
        (
            json!({"op": "add", "path": "/lines/0", "value": 1}),
            json!({"lines": [5]}),
            "/lines is an array, not an object",
        ),
        (
            json!({"op": "set", "path": "/a/b/c", "value": 1}),
            json!({"a": {"b": 7}}),
            "/a/b is an integer, not an object",
        ),
        (
            json!({"op": "cast", "path": "/qty", "to": "integer"}),
            json!({"qty": "007"}),
            "\"007\" cannot be cast to integer without loss",
        ),
        (
            json!({"op": "cast", "path": "/qty", "to": "integer"}),
            json!({"qty": "two"}),
            "\"two\" cannot be cast to integer without loss",
        ),
        (
            json!({"op": "cast", "path": "/qty", "to": "integer"}),
            json!({"qty": 2.5}),
            "2.5 cannot be cast to integer without loss",
        ),
        (
            json!({"op": "cast", "path": "/qty", "to": "number"}),
            json!({"qty": "1.50"}),
            "\"1.50\" cannot be cast to number without loss",
        ),
        (
            json!({"op": "cast", "path": "/qty", "to": "boolean"}),
            json!({"qty": 2}),
            "2 cannot be cast to boolean without loss",
        ),
        (
            json!({"op": "cast", "path": "/qty", "to": "string"}),
            json!({"qty": [1]}),
            "an array cannot be cast to string",
        ),
        (
            json!({"op": "cast", "path": "/qty", "from": "string", "to": "integer"}),
            json!({"qty": 4}),
            "expected a string, found an integer",
        ),
        (
            json!({"op": "map", "path": "/status", "values": {"open": "OPEN", "done": "CLOSED"}}),
            json!({"status": "CLOSED"}),
            "\"CLOSED\" is not mapped but is a target of the mapping",
        ),
    ];
    for (operation, document, expected) in cases {
        let migration = migration(json!([{"op": "add", "path": "/x", "value": 0}, operation]));
        let err = migration.apply(document.clone()).unwrap_err();
        assert_eq!(err.operation, 1, "{operation}");
        assert_eq!(err.op, op(operation.clone()).name());
        assert_eq!(err.pointer, op(operation.clone()).pointer());
        assert!(
            err.message.contains(expected),
            "{operation} on {document}: {err}"
        );
        assert!(
            err.to_string()
                .starts_with(&format!("operation 1 ({} {}): ", err.op, err.pointer))
        );
    }
}

#[test]
fn malformed_migrations_are_refused_with_the_operation_index() {
    let cases = [
        (
            json!({"from": "1.0.0", "operations": [{"op": "frobnicate", "path": "/a"}]}),
            "operations/0: unknown variant `frobnicate`",
        ),
        (
            json!({"from": "1.0.0", "operations": [
                {"op": "add", "path": "/a", "value": 1}, {"op": "add", "path": "a", "value": 1}]}),
            "operations/1: invalid JSON pointer \"a\": it must start with \"/\"",
        ),
        (
            json!({"from": "1.0.0", "operations": [{"op": "remove", "path": ""}]}),
            "operations/0: a path must name a property",
        ),
        (
            json!({"from": "1.0.0", "operations": [{"op": "remove", "path": "/a~2"}]}),
            "operations/0: invalid JSON pointer \"/a~2\"",
        ),
        (
            json!({"from": "1.0.0", "operations": [{"op": "add", "path": "/a"}]}),
            "operations/0: missing field `value`",
        ),
        (
            json!({"from": "1.0.0", "operations": [{"path": "/a"}]}),
            "operations/0: missing field `op`",
        ),
        (
            json!({"from": "1.0.0", "operations": [{"op": "remove", "path": "/a", "value": 1}]}),
            "operations/0: unknown field `value`",
        ),
        (
            json!({"from": "1.0.0", "operations": [{"op": "cast", "path": "/a", "to": "date"}]}),
            "operations/0: unknown variant `date`",
        ),
        (
            json!({"from": "1.0", "operations": []}),
            "invalid version \"1.0\"",
        ),
        (
            json!({"from": "1.0.0", "operations": [], "to": "2.0.0"}),
            "unknown field `to`",
        ),
    ];
    for (body, expected) in cases {
        let err = serde_json::from_value::<Migration>(body.clone()).unwrap_err();
        assert!(
            err.to_string().contains(expected),
            "{body}: {err} (expected {expected})"
        );
    }
}

#[test]
fn operations_that_make_no_sense_are_refused_by_check() {
    let cases = [
        (
            json!([{"op": "add", "path": "/x", "value": 1},
                   {"op": "rename", "from": "/a", "to": "/a/b"}]),
            "operation 1 (rename /a): cannot move /a into itself (/a/b)",
        ),
        (
            json!([{"op": "rename", "from": "/a", "to": "/a"}]),
            "operation 0 (rename /a): a rename needs two different paths",
        ),
        (
            json!([{"op": "cast", "path": "/a", "from": "string", "to": "string"}]),
            "operation 0 (cast /a): a cast from string to string does nothing",
        ),
    ];
    for (operations, expected) in cases {
        let parsed = migration(operations.clone());
        assert_eq!(parsed.check().unwrap_err().to_string(), expected);
        let err = Migration::new(parsed.from, parsed.operations).unwrap_err();
        assert_eq!(err.to_string(), expected);
    }
    assert!(
        migration(json!([{"op": "rename", "from": "/a", "to": "/b/a"}]))
            .check()
            .is_ok()
    );
}

#[test]
fn a_migration_serializes_to_the_grammar_it_reads() {
    let body = json!({"from": "1.1.0", "operations": [
        {"op": "rename", "from": "/customer", "to": "/buyer"},
        {"op": "add", "path": "/currency", "value": "EUR"},
        {"op": "remove", "path": "/legacy"},
        {"op": "remove", "path": "/old", "restore": null},
        {"op": "set", "path": "/kind", "value": "retail"},
        {"op": "cast", "path": "/qty", "to": "integer"},
        {"op": "cast", "path": "/n", "from": "integer", "to": "string"},
        {"op": "map", "path": "/status", "values": {"open": "OPEN", "done": "CLOSED"}}
    ]});
    let migration: Migration = serde_json::from_value(body.clone()).unwrap();
    assert_eq!(serde_json::to_value(&migration).unwrap(), body);
    assert_eq!(migration.reversibility(), Reversibility::Lossy);
    assert_eq!(migration.reverse(Version::new(2, 0, 0)), None);
}

#[test]
fn a_migration_reverses_last_operation_first_from_its_target() {
    let forward = migration(json!([
        {"op": "add", "path": "/buyer", "value": {}},
        {"op": "rename", "from": "/customer", "to": "/buyer/name"},
        {"op": "remove", "path": "/legacy", "restore": false}
    ]));
    assert_eq!(forward.reversibility(), Reversibility::Restoring);
    let back = forward.reverse(Version::new(2, 0, 0)).unwrap();
    assert_eq!(back.from, Version::new(2, 0, 0));
    assert_eq!(
        serde_json::to_value(&back.operations).unwrap(),
        json!([
            {"op": "add", "path": "/legacy", "value": false},
            {"op": "rename", "from": "/buyer/name", "to": "/customer"},
            {"op": "remove", "path": "/buyer", "restore": {}}
        ])
    );
    let old = json!({"customer": "ACME", "legacy": false});
    let new = forward.apply(old.clone()).unwrap();
    assert_eq!(new, json!({"buyer": {"name": "ACME"}}));
    assert_eq!(back.apply(new).unwrap(), old);
    // Restoring, not lossless: a removed value other than the declared one does not come back.
    let other = json!({"customer": "ACME", "legacy": true});
    let round = back.apply(forward.apply(other.clone()).unwrap()).unwrap();
    assert_eq!(round, json!({"customer": "ACME", "legacy": false}));
}

#[test]
fn an_empty_migration_is_the_identity_and_lossless() {
    let identity = migration(json!([]));
    let document = json!({"a": [1, {"b": null}]});
    assert_eq!(identity.apply(document.clone()).unwrap(), document);
    assert_eq!(identity.reversibility(), Reversibility::Lossless);
    assert!(
        identity
            .reverse(Version::new(2, 0, 0))
            .unwrap()
            .operations
            .is_empty()
    );
}
