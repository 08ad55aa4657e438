//! `allOf`, `anyOf`, `oneOf`, `not`, and `if` with `then` and `else`.
//!
//! Branches are paired first by equal definitions, then in order. `allOf` is a conjunction and
//! `anyOf` a disjunction, so pairwise comparison is sound for both. `oneOf` refuses a document
//! that matches two branches, so a changed branch can invalidate documents either way; it is
//! compared like `anyOf` only when its branches cannot overlap because each requires a
//! discriminating property with its own `const` or `enum` values (a tagged union), and is
//! otherwise undecidable unless every branch keeps its meaning.

use serde_json::{Map, Value};

use super::change::{Change, ChangeKind};
use super::compare::{Comparer, TRUE, accepts_everything, undecided, verdict};
use super::document::{Document, child};
use super::values::{Types, json_eq};

/// The discriminating values of each branch of a tagged `oneOf`.
type Tags<'v> = Vec<Vec<&'v Value>>;

/// Pairs old and new branches: equal ones first, then the rest in order; unpaired branches
/// were added (`(None, Some)`) or removed (`(Some, None)`).
fn pair(old: &[Value], new: &[Value]) -> Vec<(Option<usize>, Option<usize>)> {
    let mut old_left: Vec<usize> = (0..old.len()).collect();
    let mut pairs = Vec::new();
    let mut new_left = Vec::new();
    for (j, branch) in new.iter().enumerate() {
        match old_left.iter().position(|&i| old[i] == *branch) {
            Some(at) => pairs.push((Some(old_left.remove(at)), Some(j))),
            None => new_left.push(j),
        }
    }
    let mut old_left = old_left.into_iter();
    for j in new_left {
        pairs.push((old_left.next(), Some(j)));
    }
    pairs.extend(old_left.map(|i| (Some(i), None)));
    pairs
}

fn branches<'a>(schema: &'a Map<String, Value>, keyword: &str) -> &'a [Value] {
    match schema.get(keyword) {
        Some(Value::Array(branches)) => branches,
        _ => &[],
    }
}

/// For a `oneOf` whose branches cannot overlap: the discriminating property and each branch's
/// values of it. Each branch must be an object schema (or sit under one), require the property,
/// and allow only its own `const` or `enum` values for it.
fn tags<'a>(
    document: &Document<'a>,
    parent: &Map<String, Value>,
    branches: &'a [Value],
    property: &str,
) -> Option<Tags<'a>> {
    let parent_objects = Types::of(parent).is_some_and(Types::only_objects);
    let mut all: Tags<'a> = Vec::new();
    for branch in branches {
        let mut branch = branch;
        if let Some(reference) = branch.get("$ref").and_then(Value::as_str) {
            branch = document.resolve(reference).ok()?.0;
        }
        let map = branch.as_object()?;
        let objects = Types::of(map).is_some_and(Types::only_objects);
        let required = map
            .get("required")?
            .as_array()?
            .iter()
            .any(|r| r == property);
        if !(objects || parent_objects) || !required {
            return None;
        }
        let schema = map.get("properties")?.get(property)?;
        let values: Vec<&'a Value> = match (schema.get("const"), schema.get("enum")) {
            (Some(value), None) => vec![value],
            (None, Some(Value::Array(values))) => values.iter().collect(),
            _ => return None,
        };
        if all
            .iter()
            .flatten()
            .any(|seen| values.iter().any(|v| json_eq(seen, v)))
        {
            return None;
        }
        all.push(values);
    }
    Some(all)
}

fn same_values(a: &[&Value], b: &[&Value]) -> bool {
    a.iter().all(|x| b.iter().any(|y| json_eq(x, y)))
        && b.iter().all(|y| a.iter().any(|x| json_eq(x, y)))
}

fn overlap(a: &[&Value], b: &[&Value]) -> bool {
    a.iter().any(|x| b.iter().any(|y| json_eq(x, y)))
}

impl<'a> Comparer<'a> {
    pub(super) fn combinators(
        &mut self,
        old: &'a Map<String, Value>,
        new: &'a Map<String, Value>,
        path: &str,
    ) {
        self.all_of(old, new, path);
        self.any_of(old, new, path);
        self.one_of(old, new, path);
        self.not(old, new, path);
        self.conditional(old, new, path);
    }

    /// A conjunction: an added branch is one more constraint, a removed one one less.
    fn all_of(&mut self, old: &'a Map<String, Value>, new: &'a Map<String, Value>, path: &str) {
        let keyword = "allOf";
        let (o, n) = (branches(old, keyword), branches(new, keyword));
        for pair in pair(o, n) {
            match pair {
                (Some(i), Some(j)) => {
                    self.schema(&o[i], &n[j], &child(path, &[keyword, &j.to_string()]))
                }
                (None, Some(j)) => {
                    let at = child(path, &[keyword, &j.to_string()]);
                    let changes = self.capture(|c| c.schema(&TRUE, &n[j], &at));
                    self.branch(at, keyword, true, verdict(&changes).0, true, &changes);
                }
                (Some(i), None) => {
                    let at = child(path, &[keyword, &i.to_string()]);
                    let changes = self.capture(|c| c.schema(&o[i], &TRUE, &at));
                    self.branch(at, keyword, false, true, verdict(&changes).1, &changes);
                }
                (None, None) => {}
            }
        }
    }

    /// A disjunction: an added branch accepts more, a removed one less. Absent, it accepts
    /// everything.
    fn any_of(&mut self, old: &'a Map<String, Value>, new: &'a Map<String, Value>, path: &str) {
        let keyword = "anyOf";
        let (o, n) = (branches(old, keyword), branches(new, keyword));
        self.disjunction(keyword, o, n, path, None);
    }

    fn one_of(&mut self, old: &'a Map<String, Value>, new: &'a Map<String, Value>, path: &str) {
        let keyword = "oneOf";
        let (o, n) = (branches(old, keyword), branches(new, keyword));
        if o == n
            && !o.iter().any(|b| self.old.has_references(b))
            && !n.iter().any(|b| self.new.has_references(b))
        {
            return;
        }
        if o.is_empty() || n.is_empty() {
            return self.disjunction(keyword, o, n, path, None);
        }
        let candidates = o
            .iter()
            .chain(n)
            .filter_map(|b| b.get("required")?.as_array())
            .flatten();
        for property in candidates.filter_map(Value::as_str) {
            if let (Some(old_tags), Some(new_tags)) = (
                tags(self.old, old, o, property),
                tags(self.new, new, n, property),
            ) {
                return self.disjunction(keyword, o, n, path, Some((&old_tags, &new_tags)));
            }
        }
        // Overlapping branches: only branches that keep their meaning keep oneOf's meaning.
        let at = child(path, &[keyword]);
        let changes = self.capture(|c| {
            for (index, (o, n)) in o.iter().zip(n).enumerate() {
                c.schema(o, n, &child(path, &[keyword, &index.to_string()]));
            }
        });
        if o.len() == n.len() && verdict(&changes) == (true, true) {
            self.changes.extend(changes);
        } else {
            self.push(Change::undecidable(
                at,
                "the branches of oneOf changed and may overlap: a document that matches two \
                 branches is refused, so no direction can be decided",
            ));
        }
    }

    /// `anyOf`, or a `oneOf` whose branches cannot overlap (`tags` pairs them by their
    /// discriminating values).
    fn disjunction(
        &mut self,
        keyword: &str,
        o: &'a [Value],
        n: &'a [Value],
        path: &str,
        tags: Option<(&Tags<'_>, &Tags<'_>)>,
    ) {
        let at = child(path, &[keyword]);
        // Whether the branches accept everything, so the keyword constrains nothing.
        let vacuous = |branches: &[Value]| match keyword {
            "oneOf" => branches.len() == 1 && accepts_everything(&branches[0]),
            _ => branches.iter().any(accepts_everything),
        };
        match (o.is_empty(), n.is_empty()) {
            (true, true) => return,
            (true, false) => {
                return self.direction(at, keyword, vacuous(n), true, format!("`{keyword}` added"));
            }
            (false, true) => {
                return self.direction(
                    at,
                    keyword,
                    true,
                    vacuous(o),
                    format!("`{keyword}` removed"),
                );
            }
            (false, false) => {}
        }
        let pairs = match tags {
            None => pair(o, n),
            Some((old_tags, new_tags)) => {
                let mut pairs: Vec<(Option<usize>, Option<usize>)> = Vec::new();
                for (j, tags) in new_tags.iter().enumerate() {
                    match old_tags.iter().position(|t| same_values(t, tags)) {
                        Some(i) => pairs.push((Some(i), Some(j))),
                        None if old_tags.iter().any(|t| overlap(t, tags)) => {
                            return self.push(Change::undecidable(
                                child(&at, &[&j.to_string()]),
                                "a branch of oneOf now shares discriminating values with another",
                            ));
                        }
                        None => pairs.push((None, Some(j))),
                    }
                }
                for (i, tags) in old_tags.iter().enumerate() {
                    if pairs.iter().any(|p| p.0 == Some(i)) {
                        continue;
                    }
                    if new_tags.iter().any(|t| overlap(t, tags)) {
                        return self.push(Change::undecidable(
                            child(&at, &[&i.to_string()]),
                            "the discriminating values of a branch of oneOf moved to another",
                        ));
                    }
                    pairs.push((Some(i), None));
                }
                pairs
            }
        };
        for pair in pairs {
            match pair {
                (Some(i), Some(j)) => self.schema(&o[i], &n[j], &child(&at, &[&j.to_string()])),
                (None, Some(j)) => self.branch(
                    child(&at, &[&j.to_string()]),
                    keyword,
                    true,
                    true,
                    false,
                    &[],
                ),
                (Some(i), None) => self.branch(
                    child(&at, &[&i.to_string()]),
                    keyword,
                    false,
                    false,
                    true,
                    &[],
                ),
                (None, None) => {}
            }
        }
    }

    fn branch(
        &mut self,
        at: String,
        keyword: &str,
        added: bool,
        backward: bool,
        forward: bool,
        inner: &[Change],
    ) {
        let (kind, what) = if added {
            (
                ChangeKind::BranchAdded {
                    keyword: keyword.to_owned(),
                },
                "added",
            )
        } else {
            (
                ChangeKind::BranchRemoved {
                    keyword: keyword.to_owned(),
                },
                "removed",
            )
        };
        let mut description = format!("a branch of `{keyword}` was {what}");
        if let Some(reasons) = undecided(inner) {
            description.push_str(&format!(" (cannot decide: {reasons})"));
        }
        self.push(Change::new(at, kind, backward, forward, description));
    }

    /// `not` turns the comparison around: a wider negated schema accepts less.
    fn not(&mut self, old: &'a Map<String, Value>, new: &'a Map<String, Value>, path: &str) {
        let at = child(path, &["not"]);
        match (old.get("not"), new.get("not")) {
            (None, None) => {}
            (Some(_), None) => self.direction(at, "not", true, false, "`not` removed".to_owned()),
            (None, Some(_)) => self.direction(at, "not", false, true, "`not` added".to_owned()),
            (Some(o), Some(n)) => {
                let changes = self.swapped(o, n, &at);
                let (backward, forward) = verdict(&changes);
                match undecided(&changes) {
                    Some(reason) => self.push(Change::undecidable(at, reason)),
                    None => self.direction(
                        at,
                        "not",
                        backward,
                        forward,
                        "the schema under `not` changed".to_owned(),
                    ),
                }
            }
        }
    }

    /// `if`/`then`/`else` accepts `(if and then) or (not if and else)`: with the same `if`, it
    /// grows with `then` and `else`; with another `if`, it cannot be decided.
    fn conditional(
        &mut self,
        old: &'a Map<String, Value>,
        new: &'a Map<String, Value>,
        path: &str,
    ) {
        let at = child(path, &["if"]);
        let branches = |schema: &'a Map<String, Value>| {
            [
                schema.get("then").unwrap_or(&TRUE),
                schema.get("else").unwrap_or(&TRUE),
            ]
        };
        match (old.get("if"), new.get("if")) {
            (None, None) => {}
            (Some(_), None) => {
                let changes = self.capture(|c| {
                    for branch in branches(old) {
                        c.schema(branch, &TRUE, &at);
                    }
                });
                let forward = verdict(&changes).1;
                self.direction(
                    at,
                    "if",
                    true,
                    forward,
                    "the condition `if` was removed".to_owned(),
                );
            }
            (None, Some(_)) => {
                let changes = self.capture(|c| {
                    for branch in branches(new) {
                        c.schema(&TRUE, branch, &at);
                    }
                });
                let backward = verdict(&changes).0;
                self.direction(
                    at,
                    "if",
                    backward,
                    true,
                    "a condition `if` was added".to_owned(),
                );
            }
            (Some(o), Some(n)) => {
                let condition = self.capture(|c| c.schema(o, n, &at));
                if verdict(&condition) != (true, true) {
                    return self.push(Change::undecidable(
                        at,
                        "the condition `if` changed: which documents take `then` or `else` moved",
                    ));
                }
                self.changes.extend(condition);
                self.subschema(old, new, "then", path);
                self.subschema(old, new, "else", path);
            }
        }
    }
}
