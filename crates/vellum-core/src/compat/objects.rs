//! Object keywords: `properties` with `additionalProperties` (and `unevaluatedProperties` where
//! it means the same), `patternProperties`, `required`, `dependentRequired`,
//! `dependentSchemas`, `propertyNames`.
//!
//! A property name that is in neither `properties` is governed by `additionalProperties` on both
//! sides, so those are compared with each other. A property that only one side declares is
//! governed by its declaration on that side and by `additionalProperties` on the other: adding a
//! property to a closed object (`additionalProperties: false`) relaxes it, adding one with a
//! constraining schema to an open object tightens it (a document may already hold that name
//! with a value the new schema refuses).

use serde_json::{Map, Value};

use super::change::{Change, ChangeClass, ChangeKind};
use super::compare::{Comparer, EMPTY, IN_PLACE, TRUE, accepts_nothing, undecided, verdict};
use super::document::child;

/// The schema that applies to the properties a schema does not declare, and its keyword:
/// `additionalProperties`, else `unevaluatedProperties` when nothing else evaluates properties
/// in place (then the two mean the same), else nothing (accepts everything).
fn rest(schema: &Map<String, Value>) -> (&Value, &'static str) {
    if let Some(rest) = schema.get("additionalProperties") {
        return (rest, "additionalProperties");
    }
    match schema.get("unevaluatedProperties") {
        Some(rest) if !in_place(schema) => (rest, "unevaluatedProperties"),
        _ => (&TRUE, "additionalProperties"),
    }
}

/// Whether `schema` applies subschemas in place, which `unevaluated*` would depend on.
pub(super) fn in_place(schema: &Map<String, Value>) -> bool {
    IN_PLACE.iter().any(|k| schema.contains_key(*k))
}

fn names(schema: &Map<String, Value>, keyword: &str) -> Vec<String> {
    match schema.get(keyword) {
        Some(Value::Array(names)) => names
            .iter()
            .filter_map(|n| n.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

impl<'a> Comparer<'a> {
    pub(super) fn objects(
        &mut self,
        old: &'a Map<String, Value>,
        new: &'a Map<String, Value>,
        path: &str,
    ) {
        self.properties(old, new, path);
        self.required(old, new, path);
        self.dependent_required(old, new, path);
        let (o, n) = (
            old.get("dependentSchemas")
                .and_then(Value::as_object)
                .unwrap_or(&EMPTY),
            new.get("dependentSchemas")
                .and_then(Value::as_object)
                .unwrap_or(&EMPTY),
        );
        for name in n.keys().chain(o.keys().filter(|k| !n.contains_key(*k))) {
            let at = child(path, &["dependentSchemas", name]);
            self.schema(
                o.get(name).unwrap_or(&TRUE),
                n.get(name).unwrap_or(&TRUE),
                &at,
            );
        }
        self.subschema(old, new, "propertyNames", path);
    }

    fn properties(&mut self, old: &'a Map<String, Value>, new: &'a Map<String, Value>, path: &str) {
        let unevaluated = "unevaluatedProperties";
        if (old.contains_key(unevaluated) || new.contains_key(unevaluated))
            && (in_place(old) || in_place(new))
            && old != new
        {
            self.push(Change::undecidable(
                child(path, &[unevaluated]),
                "`unevaluatedProperties` next to in-place applicators depends on what they evaluate",
            ));
        }
        let patterns = self.pattern_properties(old, new, path);
        let declared = |schema: &'a Map<String, Value>| {
            schema
                .get("properties")
                .and_then(Value::as_object)
                .unwrap_or(&EMPTY)
        };
        let (old_declared, new_declared) = (declared(old), declared(new));
        let ((old_rest, _), (new_rest, new_keyword)) = (rest(old), rest(new));

        for (name, new_schema) in new_declared {
            let at = child(path, &["properties", name]);
            match old_declared.get(name) {
                Some(old_schema) => self.schema(old_schema, new_schema, &at),
                None if patterns => self.push(Change::undecidable(
                    at,
                    format!("property `{name}` added where patternProperties may apply"),
                )),
                None => self.property_added(name, old_rest, new_schema, at),
            }
        }
        for (name, old_schema) in old_declared {
            if new_declared.contains_key(name) {
                continue;
            }
            let at = child(path, &["properties", name]);
            if patterns {
                self.push(Change::undecidable(
                    at,
                    format!("property `{name}` removed where patternProperties may apply"),
                ));
            } else {
                self.property_removed(name, old_schema, new_rest, at);
            }
        }

        let at = child(path, &[new_keyword]);
        match (accepts_nothing(old_rest), accepts_nothing(new_rest)) {
            (true, true) => {}
            (true, false) => self.push(Change::relaxing(
                at,
                ChangeKind::AdditionalPropertiesOpened,
                "undeclared properties are now accepted".to_owned(),
            )),
            (false, true) => self.push(Change::tightening(
                at,
                ChangeKind::AdditionalPropertiesClosed,
                "undeclared properties are now refused".to_owned(),
            )),
            (false, false) => self.schema(old_rest, new_rest, &at),
        }
    }

    /// Compares `patternProperties`; whether either side has patterns, which then decide
    /// which schema applies to an added or removed property.
    fn pattern_properties(
        &mut self,
        old: &'a Map<String, Value>,
        new: &'a Map<String, Value>,
        path: &str,
    ) -> bool {
        let keyword = "patternProperties";
        let patterns = |schema: &'a Map<String, Value>| {
            schema
                .get(keyword)
                .and_then(Value::as_object)
                .filter(|p| !p.is_empty())
        };
        match (patterns(old), patterns(new)) {
            (None, None) => false,
            (Some(o), Some(n)) if o.keys().eq(n.keys()) => {
                for (pattern, new_schema) in n {
                    let at = child(path, &[keyword, pattern]);
                    self.schema(&o[pattern], new_schema, &at);
                }
                true
            }
            _ => {
                self.push(Change::undecidable(
                    child(path, &[keyword]),
                    "the patterns of patternProperties changed; which property names they match \
                     is not compared",
                ));
                true
            }
        }
    }

    fn property_added(
        &mut self,
        name: &str,
        old_rest: &'a Value,
        new_schema: &'a Value,
        at: String,
    ) {
        let changes = self.capture(|c| c.schema(old_rest, new_schema, &at));
        let (backward, forward) = verdict(&changes);
        let mut description = if accepts_nothing(old_rest) {
            format!("property `{name}` added where undeclared properties were refused")
        } else if backward {
            format!(
                "property `{name}` added; it accepts any value documents could already hold there"
            )
        } else {
            format!(
                "property `{name}` added where undeclared properties were accepted: a document that \
                 already holds `{name}` with a value its schema refuses becomes invalid"
            )
        };
        if let Some(reasons) = undecided(&changes) {
            description.push_str(&format!(" (cannot decide: {reasons})"));
        }
        self.push(Change::new(
            at,
            ChangeKind::PropertyAdded {
                property: name.to_owned(),
            },
            backward,
            forward,
            description,
        ));
    }

    fn property_removed(
        &mut self,
        name: &str,
        old_schema: &'a Value,
        new_rest: &'a Value,
        at: String,
    ) {
        let changes = self.capture(|c| c.schema(old_schema, new_rest, &at));
        let (backward, forward) = verdict(&changes);
        let mut description = if accepts_nothing(new_rest) {
            format!(
                "property `{name}` removed where undeclared properties are refused: documents \
                 that hold it become invalid"
            )
        } else if backward {
            format!("property `{name}` removed: its constraints no longer apply")
        } else {
            format!(
                "property `{name}` removed: it must now satisfy the schema of undeclared properties"
            )
        };
        if let Some(reasons) = undecided(&changes) {
            description.push_str(&format!(" (cannot decide: {reasons})"));
        }
        let mut change = Change::new(
            at,
            ChangeKind::PropertyRemoved {
                property: name.to_owned(),
            },
            backward,
            forward,
            description,
        );
        // SPEC §4.2 lists a removed property as major even where old documents stay valid (an
        // open object): readers that rely on the property break. The directions stay truthful.
        change.class = ChangeClass::Major;
        self.push(change);
    }

    fn required(&mut self, old: &Map<String, Value>, new: &Map<String, Value>, path: &str) {
        let (o, n) = (names(old, "required"), names(new, "required"));
        let at = child(path, &["required"]);
        for name in n.iter().filter(|name| !o.contains(name)) {
            self.push(Change::tightening(
                at.clone(),
                ChangeKind::RequiredAdded {
                    property: name.clone(),
                },
                format!("property `{name}` is now required"),
            ));
        }
        for name in o.iter().filter(|name| !n.contains(name)) {
            self.push(Change::relaxing(
                at.clone(),
                ChangeKind::RequiredRemoved {
                    property: name.clone(),
                },
                format!("property `{name}` is no longer required"),
            ));
        }
    }

    fn dependent_required(
        &mut self,
        old: &Map<String, Value>,
        new: &Map<String, Value>,
        path: &str,
    ) {
        let keyword = "dependentRequired";
        let (o, n) = (
            old.get(keyword)
                .and_then(Value::as_object)
                .unwrap_or(&EMPTY),
            new.get(keyword)
                .and_then(Value::as_object)
                .unwrap_or(&EMPTY),
        );
        if o == n {
            return;
        }
        for name in n.keys().chain(o.keys().filter(|k| !n.contains_key(*k))) {
            let (before, after) = (names(o, name), names(n, name));
            let added: Vec<&String> = after.iter().filter(|d| !before.contains(d)).collect();
            let removed: Vec<&String> = before.iter().filter(|d| !after.contains(d)).collect();
            let at = child(path, &[keyword, name]);
            if !added.is_empty() {
                self.direction(
                    at.clone(),
                    keyword,
                    false,
                    true,
                    format!("when `{name}` is present, {added:?} are now required too"),
                );
            }
            if !removed.is_empty() {
                self.direction(
                    at,
                    keyword,
                    true,
                    false,
                    format!("when `{name}` is present, {removed:?} are no longer required"),
                );
            }
        }
    }
}
