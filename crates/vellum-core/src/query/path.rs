//! JSON Pointers into documents, and their typing against a JSON Schema.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::QueryError;

/// A parsed RFC 6901 JSON Pointer with at least one segment, e.g. `/customer/name`.
///
/// `~0` and `~1` decode to `~` and `/`; any other `~` escape, a pointer that does not start with
/// `/`, the empty pointer (the whole document) and NUL characters (PostgreSQL cannot store them)
/// are refused. `Display` gives the pointer back in its canonical form.
///
/// ```
/// use vellum_core::query::JsonPath;
///
/// let path: JsonPath = "/customer/a~1b".parse()?;
/// assert_eq!(path.segments(), ["customer", "a/b"]);
/// assert_eq!(path.to_string(), "/customer/a~1b");
/// # Ok::<(), vellum_core::query::QueryError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JsonPath(Vec<String>);

impl JsonPath {
    /// Parses a JSON Pointer.
    pub fn parse(pointer: &str) -> Result<Self, QueryError> {
        let Some(rest) = pointer.strip_prefix('/') else {
            let message = if pointer.is_empty() {
                "a path must name a property: the empty pointer is the whole document".to_owned()
            } else {
                format!("invalid JSON pointer {pointer:?}: it must start with \"/\"")
            };
            return Err(QueryError::new("", message));
        };
        let segments = rest
            .split('/')
            .map(|raw| unescape(raw).ok_or_else(|| bad_escape(pointer)))
            .collect::<Result<Vec<_>, _>>()?;
        JsonPath::from_segments(segments)
    }

    /// A path from decoded segments (no `~` escaping needed), e.g. `["lines", "0", "sku"]`.
    pub fn from_segments<I, S>(segments: I) -> Result<Self, QueryError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let segments: Vec<String> = segments.into_iter().map(Into::into).collect();
        if segments.is_empty() {
            return Err(QueryError::new("", "a path needs at least one segment"));
        }
        if segments.iter().any(|segment| segment.contains('\0')) {
            return Err(QueryError::new(
                "",
                "a path must not contain NUL characters (PostgreSQL cannot store them)",
            ));
        }
        Ok(JsonPath(segments))
    }

    /// The decoded segments, at least one.
    pub fn segments(&self) -> &[String] {
        &self.0
    }

    /// The value at this path in `document`, looked up the way PostgreSQL's `#>` does: object
    /// keys exactly, array elements by integer index (negative counts from the end).
    pub(crate) fn lookup<'v>(&self, document: &'v Value) -> Option<&'v Value> {
        self.0
            .iter()
            .try_fold(document, |value, segment| match value {
                Value::Object(map) => map.get(segment),
                Value::Array(items) => {
                    let index = pg_array_index(segment)?;
                    let len = i64::try_from(items.len()).ok()?;
                    let index = if index < 0 { len + index } else { index };
                    usize::try_from(index).ok().and_then(|i| items.get(i))
                }
                _ => None,
            })
    }
}

/// PostgreSQL parses an array subscript in a `text[]` path with `strtoint`: optional leading
/// whitespace and sign, decimal digits, nothing after, within `int4`.
fn pg_array_index(segment: &str) -> Option<i64> {
    let trimmed = segment.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let unsigned = trimmed.strip_prefix(['+', '-']).unwrap_or(trimmed);
    if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: i64 = trimmed.parse().ok()?;
    i32::try_from(value).ok().map(i64::from)
}

fn unescape(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

fn bad_escape(pointer: &str) -> QueryError {
    QueryError::new(
        "",
        format!("invalid JSON pointer {pointer:?}: \"~\" must be followed by 0 or 1"),
    )
}

/// Writes segments as a JSON pointer (`""` for none).
pub(crate) fn pointer_of(segments: &[String]) -> String {
    segments
        .iter()
        .map(|segment| format!("/{}", segment.replace('~', "~0").replace('/', "~1")))
        .collect()
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&pointer_of(&self.0))
    }
}

impl FromStr for JsonPath {
    type Err = QueryError;

    fn from_str(pointer: &str) -> Result<Self, QueryError> {
        JsonPath::parse(pointer)
    }
}

impl Serialize for JsonPath {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for JsonPath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let pointer = String::deserialize(deserializer)?;
        JsonPath::parse(&pointer).map_err(|error| serde::de::Error::custom(error.message))
    }
}

/// What a schema says about the value at a path; decides how a condition or an order key on it
/// compiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueKind {
    /// `type: "number"` or `"integer"`: compared numerically.
    Number,
    /// `type: "string"` without a date-time format: compared by collation.
    String,
    /// `type: "string", format: "date-time"`: compared as `timestamptz`.
    DateTime,
    /// `type: "boolean"`.
    Boolean,
    /// `type: "array"`.
    Array,
    /// `type: "object"`.
    Object,
    /// Not typed by the schema (undeclared under an open object, several types, disagreeing
    /// branches): compared as `jsonb`, by the JSON type of the value given.
    Any,
}

impl ValueKind {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            ValueKind::Number => "a number",
            ValueKind::String => "a string",
            ValueKind::DateTime => "a date-time string",
            ValueKind::Boolean => "a boolean",
            ValueKind::Array => "an array",
            ValueKind::Object => "an object",
            ValueKind::Any => "untyped",
        }
    }
}

/// The kind of the value at `path` in documents valid under `definition` (a JSON Schema).
///
/// The walk follows `properties`, `patternProperties` and `additionalProperties` for objects,
/// `prefixItems` and `items` for arrays (the segment must then be a decimal index), local `$ref`s
/// (`#`, `#/$defs/..`, `#/definitions/..`, any `#/` pointer; a bounded number of hops), and
/// `allOf` / `anyOf` / `oneOf`: the branches that mention the path must agree on its kind, else
/// it is [`ValueKind::Any`] (in `allOf`, `format: "date-time"` in one branch and `type: "string"`
/// in another make a date-time). `type: ["x", "null"]` is `x`. A path that a schema does not
/// declare is `Any` where the object is open, and an error where `additionalProperties: false`
/// (or `unevaluatedProperties: false` with no branch declaring it) rules it out.
///
/// ```
/// use serde_json::json;
/// use vellum_core::query::{JsonPath, ValueKind, value_kind};
///
/// let schema = json!({"type": "object", "properties": {
///     "placed_at": {"type": "string", "format": "date-time"},
///     "total": {"type": ["number", "null"]}
/// }});
/// let kind = |p: &str| value_kind(&schema, &p.parse::<JsonPath>().unwrap());
/// assert_eq!(kind("/placed_at")?, ValueKind::DateTime);
/// assert_eq!(kind("/total")?, ValueKind::Number);
/// assert_eq!(kind("/note")?, ValueKind::Any);
/// # Ok::<(), vellum_core::query::QueryError>(())
/// ```
pub fn value_kind(definition: &Value, path: &JsonPath) -> Result<ValueKind, QueryError> {
    let mut walk = Walk {
        root: definition,
        fuel: WALK_FUEL,
    };
    match walk.node(definition, &path.0, 0, 0) {
        Found::Kind(kind) => Ok(kind),
        Found::Silent | Found::DateTimeFormat => Ok(ValueKind::Any),
        Found::Forbidden(depth) => {
            let owner = if depth == 0 {
                "the document".to_owned()
            } else {
                pointer_of(&path.0[..depth])
            };
            Err(QueryError::new(
                "",
                format!("unknown path {path}: the schema of {owner} does not allow it"),
            ))
        }
    }
}

/// Schema nodes visited per lookup before giving up (the result is then `Any`).
const WALK_FUEL: u32 = 10_000;
/// `$ref` hops without consuming a path segment before giving up (the result is then `Any`).
const MAX_REF_HOPS: u32 = 32;

/// What one schema node says about a path below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    /// It types the path (possibly as `Any`).
    Kind(ValueKind),
    /// It says nothing about the path.
    Silent,
    /// It rules the path out; the payload is the number of segments of the object that does.
    Forbidden(usize),
    /// `format: "date-time"` without a type: a date-time next to a string type, else nothing.
    DateTimeFormat,
}

struct Walk<'s> {
    root: &'s Value,
    fuel: u32,
}

impl<'s> Walk<'s> {
    /// What `node` says about `rest`, the segments after the first `depth` ones.
    fn node(&mut self, node: &'s Value, path: &[String], depth: usize, hops: u32) -> Found {
        if self.fuel == 0 || hops > MAX_REF_HOPS {
            return Found::Kind(ValueKind::Any);
        }
        self.fuel -= 1;
        let schema = match node {
            Value::Bool(true) => return Found::Kind(ValueKind::Any),
            Value::Bool(false) => return Found::Forbidden(depth.saturating_sub(1)),
            Value::Object(schema) => schema,
            _ => return Found::Kind(ValueKind::Any),
        };

        let own = if depth == path.len() {
            leaf_kind(node)
        } else {
            self.child(node, path, depth)
        };
        let mut conjuncts = vec![own];
        if let Some(target) = schema.get("$ref").and_then(Value::as_str) {
            conjuncts.push(match self.resolve(target) {
                Some(target) => self.node(target, path, depth, hops + 1),
                None => Found::Kind(ValueKind::Any),
            });
        }
        for branch in branches(node, "allOf") {
            conjuncts.push(self.node(branch, path, depth, hops + 1));
        }
        for keyword in ["anyOf", "oneOf"] {
            let options: Vec<Found> = branches(node, keyword)
                .map(|branch| self.node(branch, path, depth, hops + 1))
                .collect();
            if !options.is_empty() {
                conjuncts.push(disjunction(&options));
            }
        }
        let found = conjunction(&conjuncts);
        if found == Found::Silent
            && depth < path.len()
            && schema.get("unevaluatedProperties") == Some(&Value::Bool(false))
        {
            return Found::Forbidden(depth);
        }
        found
    }

    /// What an object or array schema says about its child `path[depth]`: a declared child
    /// that says nothing more is untyped, not silent.
    fn child(&mut self, node: &'s Value, path: &[String], depth: usize) -> Found {
        let declared = |found: Found| match found {
            Found::Silent => Found::Kind(ValueKind::Any),
            found => found,
        };
        let segment = &path[depth];
        let types = declared_types(node);
        let may_be = |t: &str| types.as_ref().is_none_or(|types| types.contains(&t));
        if !may_be("object") && !may_be("array") {
            return Found::Forbidden(depth);
        }
        if may_be("object") {
            if let Some(child) = node.get("properties").and_then(|p| p.get(segment)) {
                return declared(self.node(child, path, depth + 1, 0));
            }
            let patterns: Vec<Found> = node
                .get("patternProperties")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .filter(|(pattern, _)| pattern_matches(pattern, segment))
                .map(|(_, child)| self.node(child, path, depth + 1, 0))
                .collect();
            if !patterns.is_empty() {
                return declared(conjunction(&patterns));
            }
            if let Some(additional) = node.get("additionalProperties") {
                return declared(self.node(additional, path, depth + 1, 0));
            }
        }
        if may_be("array") && segment.bytes().all(|b| b.is_ascii_digit()) && !segment.is_empty() {
            let prefix = segment
                .parse::<usize>()
                .ok()
                .and_then(|i| node.get("prefixItems")?.get(i));
            if let Some(item) = prefix.or_else(|| node.get("items")) {
                return declared(self.node(item, path, depth + 1, 0));
            }
            return Found::Silent;
        }
        if !may_be("object") {
            return Found::Forbidden(depth);
        }
        Found::Silent
    }

    fn resolve(&self, reference: &str) -> Option<&'s Value> {
        let pointer = reference.strip_prefix('#')?;
        self.root.pointer(pointer)
    }
}

fn branches<'s>(node: &'s Value, keyword: &str) -> impl Iterator<Item = &'s Value> {
    node.get(keyword)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn declared_types(node: &Value) -> Option<Vec<&str>> {
    match node.get("type")? {
        Value::String(t) => Some(vec![t.as_str()]),
        Value::Array(types) => Some(types.iter().filter_map(Value::as_str).collect()),
        _ => None,
    }
}

/// The kind a node gives its own value, from `type` (and `format`), else `enum` / `const`.
fn leaf_kind(node: &Value) -> Found {
    let date_time = node.get("format").and_then(Value::as_str) == Some("date-time");
    let kind = match declared_types(node) {
        Some(types) => {
            let mut kinds: Vec<ValueKind> = types
                .into_iter()
                .filter(|t| *t != "null")
                .map(|t| match t {
                    "integer" | "number" => ValueKind::Number,
                    "string" if date_time => ValueKind::DateTime,
                    "string" => ValueKind::String,
                    "boolean" => ValueKind::Boolean,
                    "array" => ValueKind::Array,
                    "object" => ValueKind::Object,
                    _ => ValueKind::Any,
                })
                .collect();
            kinds.dedup();
            match kinds.as_slice() {
                [kind] => *kind,
                _ => ValueKind::Any,
            }
        }
        None if date_time => return Found::DateTimeFormat,
        None => {
            let values: Vec<&Value> = match (node.get("enum"), node.get("const")) {
                (Some(Value::Array(values)), _) => values.iter().collect(),
                (_, Some(value)) => vec![value],
                _ => return Found::Silent,
            };
            let mut kinds: Vec<ValueKind> = values
                .into_iter()
                .filter(|v| !v.is_null())
                .map(json_kind)
                .collect();
            kinds.dedup();
            match kinds.as_slice() {
                [kind] => *kind,
                _ => ValueKind::Any,
            }
        }
    };
    Found::Kind(kind)
}

pub(crate) fn json_kind(value: &Value) -> ValueKind {
    match value {
        Value::Number(_) => ValueKind::Number,
        Value::String(_) => ValueKind::String,
        Value::Bool(_) => ValueKind::Boolean,
        Value::Array(_) => ValueKind::Array,
        Value::Object(_) => ValueKind::Object,
        Value::Null => ValueKind::Any,
    }
}

/// All of these hold: a forbidding one wins, kinds must agree (a string with a date-time format
/// is a date-time), silence adds nothing.
fn conjunction(found: &[Found]) -> Found {
    if let Some(forbidden) = found.iter().find(|f| matches!(f, Found::Forbidden(_))) {
        return *forbidden;
    }
    found
        .iter()
        .fold(Found::Silent, |acc, next| match (acc, *next) {
            (Found::Silent, next) => next,
            (acc, Found::Silent) => acc,
            (Found::DateTimeFormat, Found::Kind(ValueKind::String | ValueKind::DateTime))
            | (Found::Kind(ValueKind::String | ValueKind::DateTime), Found::DateTimeFormat)
            | (Found::Kind(ValueKind::String), Found::Kind(ValueKind::DateTime))
            | (Found::Kind(ValueKind::DateTime), Found::Kind(ValueKind::String)) => {
                Found::Kind(ValueKind::DateTime)
            }
            (Found::DateTimeFormat, other) | (other, Found::DateTimeFormat) => other,
            (Found::Kind(a), Found::Kind(b)) if a == b => Found::Kind(a),
            _ => Found::Kind(ValueKind::Any),
        })
}

/// One of these holds: branches that forbid the path or say nothing are left out, the others
/// must agree.
fn disjunction(found: &[Found]) -> Found {
    let mut kinds = found
        .iter()
        .filter(|f| matches!(f, Found::Kind(_) | Found::DateTimeFormat));
    match kinds.next() {
        Some(first) if kinds.all(|k| k == first) => *first,
        Some(_) => Found::Kind(ValueKind::Any),
        None => found
            .iter()
            .copied()
            .find(|f| *f == Found::Silent)
            .unwrap_or(found[0]),
    }
}

fn pattern_matches(pattern: &str, segment: &str) -> bool {
    jsonschema::draft202012::options()
        .with_pattern_options(jsonschema::PatternOptions::regex())
        .build(&serde_json::json!({ "pattern": pattern }))
        .is_ok_and(|validator| validator.is_valid(&Value::String(segment.to_owned())))
}
