//! Array keywords: `prefixItems` with `items` (and `unevaluatedItems` where it means the same),
//! and `contains` with `minContains` and `maxContains`. Counts and `uniqueItems` are scalars.

use serde_json::{Map, Value};

use super::change::Change;
use super::compare::{Comparer, TRUE};
use super::document::child;
use super::objects::in_place;

/// The schema of the items after `prefixItems`, and its keyword: `items`, else
/// `unevaluatedItems` when nothing else evaluates items (then the two mean the same), else
/// nothing (accepts everything).
fn rest(schema: &Map<String, Value>) -> (&Value, &'static str) {
    if let Some(rest) = schema.get("items") {
        return (rest, "items");
    }
    match schema.get("unevaluatedItems") {
        Some(rest) if !in_place(schema) && !schema.contains_key("contains") => {
            (rest, "unevaluatedItems")
        }
        _ => (&TRUE, "items"),
    }
}

impl<'a> Comparer<'a> {
    pub(super) fn arrays(
        &mut self,
        old: &'a Map<String, Value>,
        new: &'a Map<String, Value>,
        path: &str,
    ) {
        self.items(old, new, path);
        self.contains(old, new, path);
    }

    /// Each position is governed by its `prefixItems` entry, or by the rest schema past the
    /// end of `prefixItems`: positions are compared one by one, then the rest.
    fn items(&mut self, old: &'a Map<String, Value>, new: &'a Map<String, Value>, path: &str) {
        let unevaluated = "unevaluatedItems";
        if (old.contains_key(unevaluated) || new.contains_key(unevaluated))
            && (in_place(old)
                || in_place(new)
                || old.contains_key("contains")
                || new.contains_key("contains"))
            && old != new
        {
            self.push(Change::undecidable(
                child(path, &[unevaluated]),
                "`unevaluatedItems` next to in-place applicators or `contains` depends on what \
                 they evaluate",
            ));
        }
        let prefix = |schema: &'a Map<String, Value>| match schema.get("prefixItems") {
            Some(Value::Array(items)) => items.as_slice(),
            _ => &[],
        };
        let (old_prefix, new_prefix) = (prefix(old), prefix(new));
        let ((old_rest, _), (new_rest, new_keyword)) = (rest(old), rest(new));
        for index in 0..old_prefix.len().max(new_prefix.len()) {
            let at = if index < new_prefix.len() {
                child(path, &["prefixItems", &index.to_string()])
            } else {
                child(path, &[new_keyword])
            };
            let o = old_prefix.get(index).unwrap_or(old_rest);
            let n = new_prefix.get(index).unwrap_or(new_rest);
            self.schema(o, n, &at);
        }
        if old.contains_key("items") || new.contains_key("items") || old_rest != new_rest {
            self.schema(old_rest, new_rest, &child(path, &[new_keyword]));
        }
    }

    /// `contains` counts the items it accepts: a wider `contains` counts at least as many, so it
    /// relaxes `minContains` but may break `maxContains`.
    fn contains(&mut self, old: &'a Map<String, Value>, new: &'a Map<String, Value>, path: &str) {
        let at = child(path, &["contains"]);
        match (old.get("contains"), new.get("contains")) {
            (None, None) => {}
            (Some(_), None) => {
                self.direction(at, "contains", true, false, "`contains` removed".to_owned());
            }
            (None, Some(_)) => {
                self.direction(at, "contains", false, true, "`contains` added".to_owned());
            }
            (Some(o), Some(n)) => {
                let counted_above =
                    old.contains_key("maxContains") || new.contains_key("maxContains");
                if counted_above
                    && (o != n || self.old.has_references(o) || self.new.has_references(n))
                {
                    self.push(Change::undecidable(
                        at,
                        "`contains` changed under `maxContains`: more matching items may exceed it",
                    ));
                } else {
                    self.schema(o, n, &at);
                }
                self.count(old, new, path, "minContains", true, Some(1.0));
                self.count(old, new, path, "maxContains", false, None);
            }
        }
    }
}
