//! Keywords on single values: `type`, `enum` and `const`, numeric bounds and `multipleOf`,
//! lengths and counts, `pattern`, `format`, `uniqueItems`, `x-vellum-ref`.

use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

use super::change::{Change, ChangeKind};
use super::compare::Comparer;
use super::document::child;
use super::values::{Types, compare_numbers, is_multiple, json_eq, show};

/// Which end of a range a bound limits.
#[derive(Copy, Clone, PartialEq, Eq)]
enum End {
    Lower,
    Upper,
}

/// One end of the numeric range a schema allows.
#[derive(Copy, Clone)]
struct Bound<'a> {
    value: &'a Number,
    exclusive: bool,
    keyword: &'static str,
}

impl std::fmt::Display for Bound<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.keyword, self.value)
    }
}

impl End {
    fn keywords(self) -> [&'static str; 2] {
        match self {
            End::Lower => ["minimum", "exclusiveMinimum"],
            End::Upper => ["maximum", "exclusiveMaximum"],
        }
    }

    /// The effective bound of `schema` at this end: the tighter of the two keywords.
    fn of(self, schema: &Map<String, Value>) -> Option<Bound<'_>> {
        let [inclusive, exclusive] = self.keywords();
        let bound = |keyword: &'static str, exclusive: bool| {
            schema
                .get(keyword)
                .and_then(Value::as_number)
                .map(|value| Bound {
                    value,
                    exclusive,
                    keyword,
                })
        };
        match (bound(inclusive, false), bound(exclusive, true)) {
            (Some(a), Some(b)) => Some(if self.within(Some(a), Some(b)) { a } else { b }),
            (a, b) => a.or(b),
        }
    }

    /// Whether every number the bound `inner` allows, `outer` allows too (`None`: unbounded).
    fn within(self, inner: Option<Bound<'_>>, outer: Option<Bound<'_>>) -> bool {
        match (inner, outer) {
            (_, None) => true,
            (None, Some(_)) => false,
            (Some(inner), Some(outer)) => {
                let further = match self {
                    End::Lower => Ordering::Greater,
                    End::Upper => Ordering::Less,
                };
                match compare_numbers(inner.value, outer.value) {
                    Some(Ordering::Equal) => !outer.exclusive || inner.exclusive,
                    Some(order) => order == further,
                    None => false,
                }
            }
        }
    }
}

/// The values a schema's `enum` and `const` allow, with the keyword that says so.
fn allowed(schema: &Map<String, Value>) -> Option<(Vec<&Value>, &'static str)> {
    match (schema.get("const"), schema.get("enum")) {
        (Some(value), None) => Some((vec![value], "const")),
        (None, Some(Value::Array(values))) => Some((values.iter().collect(), "enum")),
        (Some(value), Some(Value::Array(values))) => Some((
            values.iter().filter(|v| json_eq(v, value)).collect(),
            "const",
        )),
        _ => None,
    }
}

impl<'a> Comparer<'a> {
    pub(super) fn scalars(
        &mut self,
        old: &Map<String, Value>,
        new: &Map<String, Value>,
        path: &str,
    ) {
        self.types(old, new, path);
        self.values(old, new, path);
        self.bound(old, new, path, End::Lower);
        self.bound(old, new, path, End::Upper);
        self.multiple_of(old, new, path);
        for keyword in ["minLength", "minItems", "minProperties"] {
            self.count(old, new, path, keyword, true, None);
        }
        for keyword in ["maxLength", "maxItems", "maxProperties"] {
            self.count(old, new, path, keyword, false, None);
        }
        self.pattern(old, new, path);
        for keyword in ["format", "x-vellum-ref"] {
            self.assertion(old, new, path, keyword);
        }
        self.unique_items(old, new, path);
    }

    fn types(&mut self, old: &Map<String, Value>, new: &Map<String, Value>, path: &str) {
        if old.get("type") == new.get("type") {
            return;
        }
        let o = Types::of(old).unwrap_or(Types::ANY);
        let n = Types::of(new).unwrap_or(Types::ANY);
        if o == n {
            return;
        }
        let at = child(path, &["type"]);
        self.push(if o.within(n) {
            Change::relaxing(
                at,
                ChangeKind::TypeWidened,
                format!("type widened from {o} to {n}"),
            )
        } else if n.within(o) {
            Change::tightening(
                at,
                ChangeKind::TypeNarrowed,
                format!("type narrowed from {o} to {n}"),
            )
        } else {
            Change::different(
                at,
                ChangeKind::TypeChanged,
                format!("type changed from {o} to {n}"),
            )
        });
    }

    fn values(&mut self, old: &Map<String, Value>, new: &Map<String, Value>, path: &str) {
        if old.get("enum") == new.get("enum") && old.get("const") == new.get("const") {
            return;
        }
        match (allowed(old), allowed(new)) {
            (None, None) => {}
            (None, Some((values, keyword))) => self.push(Change::tightening(
                child(path, &[keyword]),
                ChangeKind::ConstraintTightened {
                    keyword: keyword.to_owned(),
                },
                format!("`{keyword}` added: only {} value(s) allowed", values.len()),
            )),
            (Some((_, keyword)), None) => self.push(Change::relaxing(
                child(path, &[keyword]),
                ChangeKind::ConstraintRelaxed {
                    keyword: keyword.to_owned(),
                },
                format!("`{keyword}` removed: any value allowed"),
            )),
            (Some((old_values, _)), Some((new_values, keyword))) => {
                let at = child(path, &[keyword]);
                let missing =
                    |from: &[&Value], value: &Value| !from.iter().any(|v| json_eq(v, value));
                for value in new_values.iter().filter(|v| missing(&old_values, v)) {
                    self.push(Change::relaxing(
                        at.clone(),
                        ChangeKind::EnumValueAdded {
                            value: (*value).clone(),
                        },
                        format!("value {} now allowed", show(value)),
                    ));
                }
                for value in old_values.iter().filter(|v| missing(&new_values, v)) {
                    self.push(Change::tightening(
                        at.clone(),
                        ChangeKind::EnumValueRemoved {
                            value: (*value).clone(),
                        },
                        format!("value {} no longer allowed", show(value)),
                    ));
                }
            }
        }
    }

    fn bound(&mut self, old: &Map<String, Value>, new: &Map<String, Value>, path: &str, end: End) {
        if end.keywords().iter().all(|k| old.get(*k) == new.get(*k)) {
            return;
        }
        let (o, n) = (end.of(old), end.of(new));
        let backward = end.within(o, n);
        let forward = end.within(n, o);
        if backward && forward {
            return;
        }
        let Some(keyword) = n.or(o).map(|b| b.keyword.to_owned()) else {
            return;
        };
        let show =
            |bound: Option<Bound<'_>>| bound.map_or_else(|| "none".to_owned(), |b| b.to_string());
        let description = format!("bound changed from {} to {}", show(o), show(n));
        let at = child(path, &[&keyword]);
        self.push(match (backward, forward) {
            (true, _) => {
                Change::relaxing(at, ChangeKind::ConstraintRelaxed { keyword }, description)
            }
            (_, true) => {
                Change::tightening(at, ChangeKind::ConstraintTightened { keyword }, description)
            }
            _ => Change::different(at, ChangeKind::ConstraintChanged { keyword }, description),
        });
    }

    fn multiple_of(&mut self, old: &Map<String, Value>, new: &Map<String, Value>, path: &str) {
        let number = |schema: &Map<String, Value>| {
            schema.get("multipleOf").and_then(Value::as_number).cloned()
        };
        let (o, n) = (number(old), number(new));
        let (backward, forward) = match (&o, &n) {
            (o, n) if o == n => return,
            (_, None) => (true, false),
            (None, Some(_)) => (false, true),
            // Every multiple of 6 is a multiple of 3: 6 -> 3 relaxes, 3 -> 6 tightens.
            (Some(o), Some(n)) => (is_multiple(o, n), is_multiple(n, o)),
        };
        let show = |n: &Option<Number>| {
            n.as_ref()
                .map_or_else(|| "none".to_owned(), Number::to_string)
        };
        self.direction(
            child(path, &["multipleOf"]),
            "multipleOf",
            backward,
            forward,
            format!("multipleOf changed from {} to {}", show(&o), show(&n)),
        );
    }

    /// A count keyword: `min*` (absent: `default`, else 0) tightens as it grows, `max*`
    /// (absent: unbounded) relaxes.
    pub(super) fn count(
        &mut self,
        old: &Map<String, Value>,
        new: &Map<String, Value>,
        path: &str,
        keyword: &str,
        minimum: bool,
        default: Option<f64>,
    ) {
        if old.get(keyword) == new.get(keyword) {
            return;
        }
        let absent = if minimum {
            default.unwrap_or(0.0)
        } else {
            f64::INFINITY
        };
        let value = |schema: &Map<String, Value>| {
            schema
                .get(keyword)
                .and_then(Value::as_f64)
                .unwrap_or(absent)
        };
        let (o, n) = (value(old), value(new));
        if o == n {
            return;
        }
        let relaxed = if minimum { n < o } else { n > o };
        let show = |v: f64| {
            if v.is_infinite() {
                "none".to_owned()
            } else {
                v.to_string()
            }
        };
        self.direction(
            child(path, &[keyword]),
            keyword,
            relaxed,
            !relaxed,
            format!("{keyword} changed from {} to {}", show(o), show(n)),
        );
    }

    fn pattern(&mut self, old: &Map<String, Value>, new: &Map<String, Value>, path: &str) {
        let at = child(path, &["pattern"]);
        match (old.get("pattern"), new.get("pattern")) {
            (o, n) if o == n => {}
            (Some(o), Some(n)) => self.push(Change::undecidable(
                at,
                format!(
                    "pattern changed from {o} to {n}: whether one regular expression accepts every \
                     string the other does is not decided"
                ),
            )),
            (o, _) => self.direction(
                at,
                "pattern",
                o.is_some(),
                o.is_none(),
                format!("pattern {}", if o.is_some() { "removed" } else { "added" }),
            ),
        }
    }

    /// A keyword that asserts something about the value: adding it tightens, removing it
    /// relaxes, changing it accepts other values.
    fn assertion(
        &mut self,
        old: &Map<String, Value>,
        new: &Map<String, Value>,
        path: &str,
        keyword: &str,
    ) {
        let (o, n) = (old.get(keyword), new.get(keyword));
        if o == n {
            return;
        }
        let show = |v: Option<&Value>| v.map_or_else(|| "none".to_owned(), ToString::to_string);
        self.direction(
            child(path, &[keyword]),
            keyword,
            n.is_none(),
            o.is_none(),
            format!("{keyword} changed from {} to {}", show(o), show(n)),
        );
    }

    fn unique_items(&mut self, old: &Map<String, Value>, new: &Map<String, Value>, path: &str) {
        let unique =
            |schema: &Map<String, Value>| schema.get("uniqueItems") == Some(&Value::Bool(true));
        let (o, n) = (unique(old), unique(new));
        if o != n {
            self.direction(
                child(path, &["uniqueItems"]),
                "uniqueItems",
                o,
                n,
                format!(
                    "items {} be unique",
                    if n { "must now" } else { "need no longer" }
                ),
            );
        }
    }

    /// A change of `keyword` in the given directions: relaxed, tightened or changed.
    pub(super) fn direction(
        &mut self,
        at: String,
        keyword: &str,
        backward: bool,
        forward: bool,
        description: String,
    ) {
        if backward && forward {
            return;
        }
        let keyword = keyword.to_owned();
        let kind = match (backward, forward) {
            (true, false) => ChangeKind::ConstraintRelaxed { keyword },
            (false, true) => ChangeKind::ConstraintTightened { keyword },
            _ => ChangeKind::ConstraintChanged { keyword },
        };
        self.push(Change::new(at, kind, backward, forward, description));
    }
}
