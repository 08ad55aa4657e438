//! The walk that compares two definitions schema by schema.
//!
//! A schema object is the conjunction of its keywords, so comparing keyword by keyword is sound:
//! if every keyword of the new schema accepts at least what the old one accepted, so does the
//! whole schema. Keywords that depend on each other (`properties` with `additionalProperties`,
//! `prefixItems` with `items`, `if` with `then` and `else`, `contains` with its counts) are
//! compared together. Where no sound rule applies, the change is reported as undecidable.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use serde_json::{Map, Value};

use super::change::{Change, ChangeKind};
use super::document::{Document, REFERENCE_KEYWORDS, address, child};
use super::values::show;

/// Keywords that take part in validation; every other keyword is an annotation, except the
/// containers below.
const VALIDATION: &[&str] = &[
    "type",
    "enum",
    "const",
    "multipleOf",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "format",
    "maxItems",
    "minItems",
    "uniqueItems",
    "maxContains",
    "minContains",
    "contains",
    "items",
    "prefixItems",
    "unevaluatedItems",
    "maxProperties",
    "minProperties",
    "required",
    "dependentRequired",
    "properties",
    "patternProperties",
    "additionalProperties",
    "unevaluatedProperties",
    "propertyNames",
    "dependentSchemas",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "if",
    "then",
    "else",
    "$ref",
    "$dynamicRef",
    "$recursiveRef",
    // Checked on write: the referenced entity must exist.
    "x-vellum-ref",
    // Older drafts' keywords, which the validator still applies.
    "dependencies",
    "additionalItems",
];

/// Keywords that hold subschemas only reachable by reference: compared where they are used.
const CONTAINERS: &[&str] = &["$defs", "definitions"];

/// Keywords that apply subschemas to the instance in place, which makes `unevaluated*` depend
/// on what they evaluate.
pub(super) const IN_PLACE: &[&str] = &[
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "if",
    "then",
    "else",
    "$ref",
    "$dynamicRef",
    "$recursiveRef",
    "dependentSchemas",
];

/// How deep references and subschemas are followed before giving up.
const MAX_DEPTH: usize = 200;
/// How many pairs of schemas one comparison visits before giving up.
const BUDGET: usize = 200_000;

/// The schema that accepts everything, standing for an absent keyword.
pub(super) static TRUE: LazyLock<Value> = LazyLock::new(|| Value::Object(Map::new()));

/// No keywords, no properties: what an absent map of subschemas holds.
pub(super) static EMPTY: LazyLock<Map<String, Value>> = LazyLock::new(Map::new);

/// Compares two definitions, collecting every change.
pub(super) struct Comparer<'a> {
    pub(super) old: &'a Document<'a>,
    pub(super) new: &'a Document<'a>,
    pub(super) changes: Vec<Change>,
    /// Pairs of reference targets being compared: met again, they are assumed compatible
    /// (documents are finite, so a recursive schema only recurses as deep as the document).
    active: HashSet<(usize, usize)>,
    /// Changes found for pairs of reference targets, replayed when the pair is met again.
    memo: HashMap<(usize, usize), Vec<Change>>,
    /// How many times a pair in progress was assumed compatible; results that relied on an
    /// assumption are not memoized.
    assumptions: usize,
    depth: usize,
    budget: usize,
    /// Whether the comparison stopped early (too large or too deep): what was not compared is
    /// not reported, so the whole classification must be undecidable.
    pub(super) exhausted: bool,
}

/// Whether every change keeps documents valid (backward) and admits no new ones (forward).
pub(super) fn verdict(changes: &[Change]) -> (bool, bool) {
    (
        changes.iter().all(|c| c.backward),
        changes.iter().all(|c| c.forward),
    )
}

/// The reasons of the undecidable changes among `changes`, for a summary's description.
pub(super) fn undecided(changes: &[Change]) -> Option<String> {
    let reasons: Vec<&str> = changes
        .iter()
        .filter_map(|c| match &c.kind {
            ChangeKind::Undecidable { reason } => Some(reason.as_str()),
            _ => None,
        })
        .collect();
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

/// Whether `schema` accepts every instance: `true`, or no validation keyword.
pub(super) fn accepts_everything(schema: &Value) -> bool {
    match schema {
        Value::Bool(accepts) => *accepts,
        Value::Object(map) => map.keys().all(|k| !VALIDATION.contains(&k.as_str())),
        _ => false,
    }
}

/// Whether `schema` is `false`, which accepts nothing.
pub(super) fn accepts_nothing(schema: &Value) -> bool {
    matches!(schema, Value::Bool(false))
}

/// Whether a keyword is an annotation: it does not change which documents are valid.
fn is_annotation(keyword: &str) -> bool {
    !VALIDATION.contains(&keyword) && !CONTAINERS.contains(&keyword)
}

/// The target of a schema that is only a `$ref` (plus annotations), if it is one.
fn reference_only(schema: &Value) -> Option<&str> {
    let map = schema.as_object()?;
    let reference = map.get("$ref")?.as_str()?;
    map.keys()
        .all(|k| k == "$ref" || !VALIDATION.contains(&k.as_str()))
        .then_some(reference)
}

impl<'a> Comparer<'a> {
    pub(super) fn new(old: &'a Document<'a>, new: &'a Document<'a>) -> Comparer<'a> {
        Comparer {
            old,
            new,
            changes: Vec::new(),
            active: HashSet::new(),
            memo: HashMap::new(),
            assumptions: 0,
            depth: 0,
            budget: BUDGET,
            exhausted: false,
        }
    }

    pub(super) fn push(&mut self, change: Change) {
        self.changes.push(change);
    }

    /// Runs `compare` with its changes collected apart, and returns them.
    pub(super) fn capture(&mut self, compare: impl FnOnce(&mut Self)) -> Vec<Change> {
        let outer = std::mem::take(&mut self.changes);
        compare(self);
        std::mem::replace(&mut self.changes, outer)
    }

    /// Compares `new` with `old` the other way round (for `not`): a fresh comparison of the
    /// swapped definitions, sharing the budget.
    pub(super) fn swapped(&mut self, old: &'a Value, new: &'a Value, path: &str) -> Vec<Change> {
        let mut inner = Comparer::new(self.new, self.old);
        inner.budget = self.budget;
        inner.depth = self.depth;
        inner.schema(new, old, path);
        self.budget = inner.budget;
        self.exhausted |= inner.exhausted;
        inner.changes
    }

    /// Compares the schema `old` (in the old definition) with `new` (in the new one), reporting
    /// changes at `path`.
    pub(super) fn schema(&mut self, old: &'a Value, new: &'a Value, path: &str) {
        if self.budget == 0 || self.depth >= MAX_DEPTH {
            if !self.exhausted {
                let reason = if self.budget == 0 {
                    "the definitions are too large to compare"
                } else {
                    "subschemas and references nest too deep to compare"
                };
                self.push(Change::undecidable(path.to_owned(), reason));
                self.exhausted = true;
            }
            self.budget = 0;
            return;
        }
        self.budget -= 1;
        self.depth += 1;
        self.dispatch(old, new, path);
        self.depth -= 1;
    }

    fn dispatch(&mut self, old: &'a Value, new: &'a Value, path: &str) {
        if old == new && !self.old.has_references(old) && !self.new.has_references(new) {
            return;
        }
        let old_reference = reference_only(old);
        let new_reference = reference_only(new);
        if old_reference.is_some() || new_reference.is_some() {
            if let (Some(_), Some(_), Value::Object(o), Value::Object(n)) =
                (old_reference, new_reference, old, new)
            {
                self.annotations(o, n, path);
            }
            return self.follow(old, old_reference, new, new_reference, path);
        }
        match (old, new) {
            (Value::Bool(false), Value::Bool(false)) => {}
            (Value::Bool(false), _) => self.push(Change::relaxing(
                path.to_owned(),
                ChangeKind::SchemaOpened,
                format!("accepted nothing, now accepts {}", show(new)),
            )),
            (_, Value::Bool(false)) => self.push(Change::tightening(
                path.to_owned(),
                ChangeKind::SchemaClosed,
                "now accepts nothing".to_owned(),
            )),
            _ => match (as_map(old), as_map(new)) {
                (Some(o), Some(n)) => self.keywords(o, n, path),
                _ => self.push(Change::undecidable(
                    path.to_owned(),
                    "a schema is neither an object nor a boolean",
                )),
            },
        }
    }

    /// Follows the `$ref` of a reference-only schema on either side, then compares the targets.
    fn follow(
        &mut self,
        old: &'a Value,
        old_reference: Option<&str>,
        new: &'a Value,
        new_reference: Option<&str>,
        path: &str,
    ) {
        let old_target = match old_reference.map(|r| self.old.resolve(r)) {
            None => old,
            Some(Ok((target, _))) => target,
            Some(Err(reason)) => {
                return self.push(Change::undecidable(child(path, &["$ref"]), reason));
            }
        };
        let (new_target, at) = match new_reference.map(|r| self.new.resolve(r)) {
            None => (new, path.to_owned()),
            Some(Ok(found)) => found,
            Some(Err(reason)) => {
                return self.push(Change::undecidable(child(path, &["$ref"]), reason));
            }
        };
        self.targets(old_target, new_target, &at);
    }

    /// Compares two reference targets, once per pair: a pair met again while it is compared
    /// is a recursive schema and is assumed compatible.
    pub(super) fn targets(&mut self, old: &'a Value, new: &'a Value, path: &str) {
        let key = (address(old), address(new));
        if self.active.contains(&key) {
            self.assumptions += 1;
            return;
        }
        if let Some(changes) = self.memo.get(&key) {
            let changes = changes.clone();
            self.changes.extend(changes);
            return;
        }
        self.active.insert(key);
        let (start, assumptions) = (self.changes.len(), self.assumptions);
        self.schema(old, new, path);
        self.active.remove(&key);
        if self.assumptions == assumptions {
            self.memo.insert(key, self.changes[start..].to_vec());
        }
    }

    /// Compares two schema objects keyword by keyword.
    fn keywords(&mut self, old: &'a Map<String, Value>, new: &'a Map<String, Value>, path: &str) {
        self.annotations(old, new, path);
        self.dynamic_references(old, new, path);
        self.sibling_reference(old, new, path);
        self.scalars(old, new, path);
        self.arrays(old, new, path);
        self.objects(old, new, path);
        self.combinators(old, new, path);
        for keyword in ["dependencies", "additionalItems"] {
            if old.get(keyword) != new.get(keyword) {
                self.push(Change::undecidable(
                    child(path, &[keyword]),
                    format!("`{keyword}` (from older drafts) is not compared"),
                ));
            }
        }
    }

    /// Every annotation keyword whose value changed: no change to validity.
    fn annotations(&mut self, old: &Map<String, Value>, new: &Map<String, Value>, path: &str) {
        let keys = new
            .keys()
            .chain(old.keys().filter(|k| !new.contains_key(*k)));
        for keyword in keys {
            if !is_annotation(keyword) || old.get(keyword) == new.get(keyword) {
                continue;
            }
            let what = match (old.get(keyword), new.get(keyword)) {
                (None, _) => "added",
                (_, None) => "removed",
                _ => "changed",
            };
            self.push(Change::new(
                child(path, &[keyword]),
                ChangeKind::Annotation {
                    keyword: keyword.clone(),
                },
                true,
                true,
                format!("annotation `{keyword}` {what}"),
            ));
        }
    }

    /// `$dynamicRef` and `$recursiveRef` resolve at run time: unchanged ones with unchanged
    /// dynamic anchors are fine, anything else cannot be decided.
    fn dynamic_references(
        &mut self,
        old: &Map<String, Value>,
        new: &Map<String, Value>,
        path: &str,
    ) {
        for keyword in &REFERENCE_KEYWORDS[1..] {
            if !old.contains_key(*keyword) && !new.contains_key(*keyword) {
                continue;
            }
            let anchors_unchanged = self.old.dynamic_anchors.len()
                == self.new.dynamic_anchors.len()
                && self.old.dynamic_anchors.iter().all(|(name, schema)| {
                    self.new
                        .dynamic_anchors
                        .get(name)
                        .is_some_and(|s| s == schema)
                });
            if old.get(*keyword) != new.get(*keyword) || !anchors_unchanged {
                self.push(Change::undecidable(
                    child(path, &[keyword]),
                    format!("`{keyword}` resolves at validation time and is not followed"),
                ));
            }
        }
    }

    /// A `$ref` next to other validation keywords applies in place, like one more `allOf`
    /// branch: its targets are compared like any other pair of subschemas.
    fn sibling_reference(
        &mut self,
        old: &'a Map<String, Value>,
        new: &'a Map<String, Value>,
        path: &str,
    ) {
        let (old_reference, new_reference) = (old.get("$ref"), new.get("$ref"));
        if old_reference.is_none() && new_reference.is_none() {
            return;
        }
        let resolve = |document: &Document<'a>, reference: Option<&Value>| match reference {
            None => Ok((&*TRUE, None)),
            Some(Value::String(r)) => document.resolve(r).map(|(t, p)| (t, Some(p))),
            Some(other) => Err(format!("$ref {other} is not a string")),
        };
        match (
            resolve(self.old, old_reference),
            resolve(self.new, new_reference),
        ) {
            (Ok((old_target, _)), Ok((new_target, at))) => {
                let at = at.unwrap_or_else(|| child(path, &["$ref"]));
                self.targets(old_target, new_target, &at);
            }
            (Err(reason), _) | (_, Err(reason)) => {
                self.push(Change::undecidable(child(path, &["$ref"]), reason));
            }
        }
    }

    /// The subschema under `keyword` on each side (absent: accepts everything), compared.
    pub(super) fn subschema(
        &mut self,
        old: &'a Map<String, Value>,
        new: &'a Map<String, Value>,
        keyword: &str,
        path: &str,
    ) {
        let (o, n) = (old.get(keyword), new.get(keyword));
        if o.is_none() && n.is_none() {
            return;
        }
        self.schema(
            o.unwrap_or(&TRUE),
            n.unwrap_or(&TRUE),
            &child(path, &[keyword]),
        );
    }
}

/// The keywords of a schema; `true` has none.
fn as_map(schema: &Value) -> Option<&Map<String, Value>> {
    match schema {
        Value::Object(map) => Some(map),
        Value::Bool(true) => Some(&EMPTY),
        _ => None,
    }
}
