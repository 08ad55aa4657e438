//! The query DSL against a real PostgreSQL: every query's rows, order and pages compared with
//! the same query evaluated in Rust over the same documents.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, FixedOffset, TimeZone, Utc};
use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};
use serde_json::{Value, json};
use uuid::Uuid;
use vellum::{Entity, Error, SchemaId, WriteOptions, query::Query};

use crate::fixtures::{Fixture, id, v};

const ITEMS: usize = 3000;

fn item_schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "sku": {"type": "string", "x-vellum-index": "unique"},
            "status": {"type": "string", "enum": ["open", "closed", "hold"], "x-vellum-index": true},
            "qty": {"type": "integer"},
            "price": {"type": "number", "x-vellum-index": true},
            "tags": {"type": "array", "items": {"type": "string"}},
            "placed_at": {"type": "string", "format": "date-time", "x-vellum-index": true},
            "owner": {"type": "string", "format": "uuid", "x-vellum-ref": "person"},
            "note": {"type": "string"},
            "extra": {"type": "object"}
        },
        "required": ["sku", "status", "qty", "price"]
    })
}

/// Documents of every shape the schema allows: optional properties absent, date-times written
/// with different offsets (so their text order is not their time order), integers among the
/// prices.
struct Items {
    f: Fixture,
    item: SchemaId,
    people: Vec<Uuid>,
    rng: StdRng,
}

impl Items {
    async fn new(count: usize) -> Items {
        let f = Fixture::empty().await;
        let registry = f.service.schemas();
        registry
            .register(&id("person"), v("1.0.0"), json!({"type": "object"}), false)
            .await
            .unwrap();
        registry
            .register(&id("item"), v("1.0.0"), item_schema(), false)
            .await
            .unwrap();
        let mut uow = f.service.begin("loader").await.unwrap();
        let mut people = Vec::new();
        for _ in 0..20 {
            let staged = uow
                .create(&id("person"), json!({}), WriteOptions::default())
                .await
                .unwrap();
            people.push(staged.entity_id);
        }
        uow.commit().await.unwrap();
        let mut items = Items {
            f,
            item: id("item"),
            people,
            rng: StdRng::seed_from_u64(20261122),
        };
        items.create(count).await;
        items
    }

    async fn create(&mut self, count: usize) {
        let start = self.count().await;
        for chunk in (start..start + count).collect::<Vec<_>>().chunks(250) {
            let mut uow = self.f.service.begin("loader").await.unwrap();
            for &i in chunk {
                let document = self.document(i);
                uow.create(&self.item, document, WriteOptions::default())
                    .await
                    .unwrap();
            }
            uow.commit().await.unwrap();
        }
    }

    async fn count(&self) -> usize {
        let row = self
            .f
            .admin()
            .await
            .query_one("SELECT count(DISTINCT entity_id) FROM orders.item", &[])
            .await
            .unwrap();
        row.get::<_, i64>(0) as usize
    }

    fn document(&mut self, i: usize) -> Value {
        let rng = &mut self.rng;
        let words = ["alpha", "bravo", "beta", "delta", "abba", "echo", "kilo"];
        let tags = ["red", "green", "blue", "big", "small"];
        let offsets = [0, 2 * 3600, -5 * 3600, 9 * 3600 + 1800];
        let base = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let at = base + Duration::minutes(rng.random_range(0..60 * 24 * 90));
        let offset = FixedOffset::east_opt(*offsets.choose(rng).unwrap()).unwrap();
        let price = if rng.random_bool(0.2) {
            json!(rng.random_range(0..1000))
        } else {
            json!(f64::from(rng.random_range(0..100_000)) / 100.0)
        };
        let mut document = json!({
            "sku": format!("sku{i:05}"),
            "status": *["open", "closed", "hold"].choose(rng).unwrap(),
            "qty": rng.random_range(0..100),
            "price": price,
            "tags": tags.iter().filter(|_| rng.random_bool(0.3)).collect::<Vec<_>>(),
            "placed_at": at.with_timezone(&offset).to_rfc3339(),
        });
        if rng.random_bool(0.7) {
            document["note"] = json!(format!(
                "{} {}",
                words.choose(rng).unwrap(),
                words.choose(rng).unwrap()
            ));
        }
        if rng.random_bool(0.5) {
            document["owner"] = json!(self.people.choose(rng).unwrap());
        }
        if rng.random_bool(0.4) {
            document["extra"] = json!({"level": rng.random_range(0..6)});
        }
        document
    }

    /// Every live entity, read back as stored.
    async fn live(&self) -> Vec<Entity> {
        self.all(json!({})).await
    }

    /// Every page of a query, concatenated.
    async fn all(&self, body: Value) -> Vec<Entity> {
        let mut query: Query = serde_json::from_value(body).unwrap();
        query.limit = Some(97);
        let mut found = Vec::new();
        loop {
            let page = self.f.service.query(&self.item, &query).await.unwrap();
            assert!(page.items.len() <= 97);
            found.extend(page.items);
            match page.next_cursor {
                Some(cursor) => query.cursor = Some(cursor),
                None => return found,
            }
        }
    }

    /// Stages a new version of an item with `payload`.
    async fn update(&self, uow: &mut vellum::UnitOfWork, entity_id: Uuid, payload: Value) {
        uow.update(&self.item, entity_id, payload, WriteOptions::default())
            .await
            .unwrap();
    }

    async fn query(&self, body: Value) -> Result<vellum::Page, Error> {
        let query: Query = serde_json::from_value(body).unwrap();
        self.f.service.query(&self.item, &query).await
    }
}

/// A filter of the JSON grammar, evaluated in Rust with the documented semantics: `and`, `or`,
/// `not` in two-valued logic, a condition on a missing path false, and `leaf` deciding a
/// condition on a present value.
pub(crate) fn evaluate(filter: &Value, document: &Value, leaf: fn(&Value, &Value) -> bool) -> bool {
    if let Some(all) = filter.get("and") {
        return all
            .as_array()
            .unwrap()
            .iter()
            .all(|f| evaluate(f, document, leaf));
    }
    if let Some(any) = filter.get("or") {
        return any
            .as_array()
            .unwrap()
            .iter()
            .any(|f| evaluate(f, document, leaf));
    }
    if let Some(inner) = filter.get("not") {
        return !evaluate(inner, document, leaf);
    }
    document
        .pointer(filter["path"].as_str().unwrap())
        .is_some_and(|found| leaf(filter, found))
}

fn matches(filter: &Value, document: &Value) -> bool {
    evaluate(filter, document, typed_condition)
}

/// A condition on a path typed by `item_schema`.
fn typed_condition(filter: &Value, found: &Value) -> bool {
    let value = &filter["value"];
    let date_time = filter["path"] == "/placed_at";
    match filter["op"].as_str().unwrap() {
        "eq" => compare(found, value, date_time) == Some(Ordering::Equal),
        "ne" => compare(found, value, date_time).is_some_and(|o| o != Ordering::Equal),
        "lt" => compare(found, value, date_time) == Some(Ordering::Less),
        "lte" => compare(found, value, date_time).is_some_and(|o| o != Ordering::Greater),
        "gt" => compare(found, value, date_time) == Some(Ordering::Greater),
        "gte" => compare(found, value, date_time).is_some_and(|o| o != Ordering::Less),
        "in" => value
            .as_array()
            .unwrap()
            .iter()
            .any(|v| compare(found, v, date_time) == Some(Ordering::Equal)),
        "contains" => match found {
            Value::String(s) => s.contains(value.as_str().unwrap()),
            Value::Array(items) => items.contains(value),
            _ => false,
        },
        "starts_with" => found
            .as_str()
            .is_some_and(|s| s.starts_with(value.as_str().unwrap())),
        "exists" => true,
        op => panic!("unknown op {op}"),
    }
}

/// Typed comparison: numbers as numbers, date-times as instants, strings as text (the test's
/// strings are lowercase ASCII, ordered alike by every collation); other pairs do not compare.
fn compare(a: &Value, b: &Value, date_time: bool) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) if date_time => Some(instant(x).cmp(&instant(y))),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn instant(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

/// The order of the JSON grammar, evaluated in Rust: ascending keys put missing values last,
/// descending ones first; `entity_id` breaks ties in the direction of the last key.
fn sort(entities: &mut [&Entity], order: &Value) {
    let keys: Vec<(String, bool)> = order
        .as_array()
        .map(|keys| {
            keys.iter()
                .map(|k| {
                    let by = k
                        .get("path")
                        .or_else(|| k.get("field"))
                        .and_then(Value::as_str)
                        .unwrap()
                        .to_string();
                    (by, k.get("direction") == Some(&json!("desc")))
                })
                .collect()
        })
        .unwrap_or_default();
    entities.sort_by(|a, b| {
        for (by, desc) in &keys {
            let ordering = match by.as_str() {
                "created_at" => a.created_at.cmp(&b.created_at),
                "updated_at" => a.updated_at.cmp(&b.updated_at),
                "entity_version" => a.entity_version.cmp(&b.entity_version),
                "entity_id" => a.entity_id.cmp(&b.entity_id),
                path => {
                    let date_time = path == "/placed_at";
                    match (a.payload.pointer(path), b.payload.pointer(path)) {
                        (None, None) => Ordering::Equal,
                        // Missing is NULL: last ascending, first descending.
                        (None, Some(_)) => Ordering::Greater,
                        (Some(_), None) => Ordering::Less,
                        (Some(x), Some(y)) => compare(x, y, date_time).unwrap(),
                    }
                }
            };
            let ordering = if *desc { ordering.reverse() } else { ordering };
            if ordering != Ordering::Equal {
                return ordering;
            }
        }
        let tie = a.entity_id.cmp(&b.entity_id);
        if keys.last().is_some_and(|(_, desc)| *desc) {
            tie.reverse()
        } else {
            tie
        }
    });
}

fn expected(entities: &[Entity], body: &Value) -> Vec<Uuid> {
    let filter = body.get("filter").cloned().unwrap_or(json!({"and": []}));
    let mut kept: Vec<&Entity> = entities
        .iter()
        .filter(|e| matches(&filter, &e.payload))
        .collect();
    sort(&mut kept, body.get("order").unwrap_or(&Value::Null));
    kept.iter().map(|e| e.entity_id).collect()
}

fn ids(entities: &[Entity]) -> Vec<Uuid> {
    entities.iter().map(|e| e.entity_id).collect()
}

#[tokio::test]
async fn every_query_returns_what_rust_computes_in_the_same_order_across_pages() {
    let mut items = Items::new(ITEMS).await;
    // Some history: updated and deleted entities must read as their latest live version.
    let live = items.live().await;
    assert_eq!(live.len(), ITEMS);
    let mut uow = items.f.service.begin("editor").await.unwrap();
    for (n, entity) in live.iter().step_by(17).enumerate() {
        if n % 3 == 0 {
            uow.delete(&items.item, entity.entity_id, None)
                .await
                .unwrap();
        } else {
            let mut payload = entity.payload.clone();
            payload["price"] = json!(n as f64 + 0.5);
            items.update(&mut uow, entity.entity_id, payload).await;
        }
    }
    uow.commit().await.unwrap();
    items.create(10).await;
    let live = items.live().await;
    let person = items.people[3];
    let t = "2026-02-15T12:00:00+09:30";

    let filters = [
        json!({"path": "/status", "op": "eq", "value": "open"}),
        json!({"path": "/status", "op": "ne", "value": "closed"}),
        json!({"path": "/price", "op": "gt", "value": 500}),
        json!({"path": "/price", "op": "lte", "value": 250.5}),
        json!({"path": "/qty", "op": "in", "value": [1, 2, 3, 50]}),
        json!({"path": "/qty", "op": "in", "value": []}),
        json!({"path": "/placed_at", "op": "gte", "value": t}),
        json!({"path": "/placed_at", "op": "lt", "value": "2026-01-20T00:00:00Z"}),
        json!({"path": "/placed_at", "op": "eq", "value": "2026-01-01T10:00:00+10:00"}),
        json!({"path": "/tags", "op": "contains", "value": "red"}),
        json!({"path": "/note", "op": "contains", "value": "bb"}),
        json!({"path": "/note", "op": "starts_with", "value": "b"}),
        json!({"path": "/note", "op": "exists"}),
        json!({"not": {"path": "/note", "op": "exists"}}),
        json!({"path": "/note", "op": "ne", "value": "alpha beta"}),
        json!({"not": {"path": "/note", "op": "eq", "value": "alpha beta"}}),
        json!({"path": "/extra/level", "op": "gte", "value": 3}),
        json!({"path": "/owner", "op": "eq", "value": person}),
        json!({"path": "/sku", "op": "eq", "value": "sku00042"}),
        json!({"and": [{"path": "/status", "op": "eq", "value": "open"},
                       {"path": "/price", "op": "gt", "value": 100}]}),
        json!({"or": [{"path": "/qty", "op": "lt", "value": 10},
                      {"path": "/tags", "op": "contains", "value": "big"}]}),
        json!({"not": {"or": [{"path": "/status", "op": "eq", "value": "hold"},
                              {"path": "/price", "op": "lt", "value": 50}]}}),
        json!({"and": []}),
        json!({"or": []}),
    ];
    let orders = [
        Value::Null,
        json!([{"path": "/price", "direction": "desc"}]),
        json!([{"path": "/placed_at"}]),
        json!([{"path": "/note"}, {"path": "/price", "direction": "desc"}]),
        json!([{"path": "/note", "direction": "desc"}, {"field": "entity_id", "direction": "desc"}]),
        json!([{"field": "created_at", "direction": "desc"}, {"path": "/qty"}]),
        json!([{"field": "entity_version", "direction": "desc"}]),
        json!([{"field": "updated_at", "direction": "desc"}, {"path": "/price"}]),
        // Indexed, and lacked by some items (they come first).
        json!([{"path": "/placed_at", "direction": "desc"}]),
        // Indexed, and shared by a third of the items each: ties across pages.
        json!([{"path": "/status", "direction": "desc"}]),
        json!([{"path": "/status"}]),
    ];
    let mut checked = 0;
    for (i, filter) in filters.iter().enumerate() {
        for order in [&orders[i % orders.len()], &orders[(i + 3) % orders.len()]] {
            let mut body = json!({"filter": filter});
            if !order.is_null() {
                body["order"] = order.clone();
            }
            let want = expected(&live, &body);
            let got = ids(&items.all(body.clone()).await);
            assert_eq!(got.len(), want.len(), "{body}");
            assert!(got == want, "order differs for {body}");
            checked += want.len();
        }
    }
    assert!(checked > 10 * ITEMS, "the queries covered {checked} rows");
}

#[tokio::test]
async fn pages_neither_skip_nor_repeat_while_writers_work() {
    let mut items = Items::new(600).await;
    let before = items.live().await;
    let stable: HashSet<Uuid> = ids(&before).into_iter().collect();
    let mut rng = StdRng::seed_from_u64(7);
    let body = json!({"order": [{"path": "/price"}], "limit": 20});
    let mut query: Query = serde_json::from_value(body).unwrap();
    let mut seen: HashMap<Uuid, usize> = HashMap::new();
    loop {
        let page = items.f.service.query(&items.item, &query).await.unwrap();
        for entity in &page.items {
            *seen.entry(entity.entity_id).or_default() += 1;
        }
        // Between pages: new versions of entities on both sides of the cursor (their sort key
        // kept), and new entities.
        let mut uow = items.f.service.begin("writer").await.unwrap();
        for entity in before.choose_multiple(&mut rng, 5) {
            let current = items
                .f
                .service
                .get(&items.item, entity.entity_id)
                .await
                .unwrap();
            let mut payload = current.payload;
            payload["qty"] = json!(rng.random_range(0..100));
            items.update(&mut uow, entity.entity_id, payload).await;
        }
        uow.commit().await.unwrap();
        items.create(2).await;
        match page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => break,
        }
    }
    for entity in &stable {
        assert_eq!(
            seen.get(entity),
            Some(&1),
            "entity {entity} seen {:?} times",
            seen.get(entity)
        );
    }
    assert!(seen.values().all(|&n| n == 1), "no entity repeated");
}

#[tokio::test]
async fn as_of_queries_see_the_whole_type_as_it_was() {
    let items = Items::new(400).await;
    let then = items.live().await;
    let t0 = items
        .f
        .admin()
        .await
        .query_one("SELECT max(created_at) FROM orders.item", &[])
        .await
        .unwrap()
        .get::<_, DateTime<Utc>>(0);
    let mut uow = items.f.service.begin("editor").await.unwrap();
    for (n, entity) in then.iter().step_by(3).enumerate() {
        if n % 4 == 0 {
            uow.delete(&items.item, entity.entity_id, None)
                .await
                .unwrap();
        } else {
            let mut payload = entity.payload.clone();
            payload["price"] = json!(999.99);
            payload["status"] = json!("hold");
            uow.update(
                &items.item,
                entity.entity_id,
                payload,
                WriteOptions::default(),
            )
            .await
            .unwrap();
        }
    }
    uow.commit().await.unwrap();

    let body = json!({
        "filter": {"path": "/status", "op": "ne", "value": "hold"},
        "order": [{"path": "/price", "direction": "desc"}],
        "as_of": t0,
    });
    let got = items.all(body.clone()).await;
    assert_eq!(ids(&got), expected(&then, &body));
    assert!(got.iter().all(|e| e.created_at <= t0));
    // Today's answer differs: the updates and deletes happened after t0.
    let mut today = body.clone();
    today.as_object_mut().unwrap().remove("as_of");
    let now = items.live().await;
    assert_eq!(ids(&items.all(today.clone()).await), expected(&now, &today));
    assert_ne!(expected(&now, &today), expected(&then, &body));

    // Before anything was written, the type was empty.
    let before = json!({"as_of": "2000-01-01T00:00:00Z"});
    assert!(items.all(before).await.is_empty());
}

#[tokio::test]
async fn ids_fetch_many_and_include_deleted_shows_the_deleted() {
    let items = Items::new(50).await;
    let live = items.live().await;
    let (gone, kept) = (live[0].entity_id, live[1].entity_id);
    let mut uow = items.f.service.begin("editor").await.unwrap();
    uow.delete(&items.item, gone, None).await.unwrap();
    uow.commit().await.unwrap();
    let missing = Uuid::now_v7();
    let page = items
        .query(json!({"ids": [missing, kept, gone]}))
        .await
        .unwrap();
    assert_eq!(ids(&page.items), [kept]);
    let page = items
        .query(json!({"ids": [missing, kept, gone], "include_deleted": true}))
        .await
        .unwrap();
    let mut want = vec![kept, gone];
    want.sort();
    assert_eq!(ids(&page.items), want);
    assert!(page.items.iter().any(|e| e.deleted_at.is_some()));
}

#[tokio::test]
async fn bad_queries_are_refused_with_what_is_wrong() {
    let items = Items::new(120).await;
    let refused = async |body: Value| match items.query(body.clone()).await {
        Err(Error::InvalidQuery { pointer, message }) => (pointer, message),
        other => panic!("{body}: expected InvalidQuery, got {other:?}"),
    };
    let (pointer, message) =
        refused(json!({"filter": {"path": "/colour", "op": "eq", "value": "red"}})).await;
    assert!(pointer.starts_with("/filter"), "{pointer}");
    assert!(message.contains("/colour"), "{message}");
    let (_, message) =
        refused(json!({"filter": {"path": "/price", "op": "gt", "value": "cheap"}})).await;
    assert!(message.contains("/price"), "{message}");
    refused(json!({"filter": {"path": "/placed_at", "op": "gt", "value": "yesterday"}})).await;
    refused(json!({"filter": {"path": "/note", "op": "eq", "value": "nul\u{0}"}})).await;
    refused(json!({"limit": 1001})).await;

    // A cursor works for its own query only, and only as issued.
    let page = items.query(json!({"limit": 10})).await.unwrap();
    let cursor = page.next_cursor.unwrap();
    let (pointer, _) = refused(json!({"limit": 10, "cursor": format!("{cursor}x")})).await;
    assert_eq!(pointer, "/cursor");
    let (pointer, _) = refused(json!({
        "limit": 10, "cursor": cursor,
        "order": [{"path": "/price"}]
    }))
    .await;
    assert_eq!(pointer, "/cursor");
    // An open object accepts paths its schema does not declare.
    items
        .query(json!({"filter": {"path": "/extra/anything", "op": "exists"}}))
        .await
        .unwrap();
}

/// A query on items compiled as the service compiles it (with a cursor key of zeros), selecting
/// `columns`, and its parameters bound.
fn compile_item_query(
    body: Value,
    columns: &str,
) -> (
    vellum::query::CompiledQuery,
    Vec<Box<dyn tokio_postgres::types::ToSql + Sync + Send>>,
) {
    let query: Query = serde_json::from_value(body).unwrap();
    let compiled = vellum::query::compile(
        &query,
        &vellum::query::QueryContext {
            table: "\"orders\".\"item\"",
            columns,
            schema: &vellum::query::CompiledSchema::compile(
                &item_schema(),
                &vellum::SchemaLimits::default(),
            )
            .unwrap(),
            cursor_key: &[0; 32],
        },
    )
    .unwrap();
    let values = vellum::query::bind_params(&compiled.params);
    (compiled, values)
}

/// The plan PostgreSQL chooses for a query, as the service would run it.
async fn plan(items: &Items, body: Value) -> String {
    let (compiled, values) = compile_item_query(body, "e.entity_id");
    let admin = items.f.admin().await;
    admin
        .batch_execute("ANALYZE orders.item; SET plan_cache_mode = force_custom_plan")
        .await
        .unwrap();
    let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
        values.iter().map(|v| v.as_ref() as _).collect();
    admin
        .query(&format!("EXPLAIN {}", compiled.sql), &params)
        .await
        .unwrap()
        .iter()
        .map(|row| row.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn indexed_paths_and_reference_lookups_use_their_indexes() {
    let items = Items::new(ITEMS).await;
    for (body, what) in [
        (
            json!({"filter": {"path": "/sku", "op": "eq", "value": "sku01234"}}),
            "unique path",
        ),
        (
            json!({"filter": {"path": "/owner", "op": "eq", "value": items.people[0]}}),
            "reference",
        ),
        (
            json!({"filter": {"path": "/placed_at", "op": "lt", "value": "2026-01-01T06:00:00Z"}}),
            "date-time range",
        ),
        (
            json!({"filter": {"path": "/price", "op": "gt", "value": 990}, "order": [{"path": "/price"}]}),
            "number range",
        ),
    ] {
        let plan = plan(&items, body).await;
        assert!(
            plan.contains("Index Scan using vx_") || plan.contains("Bitmap Index Scan on vx_"),
            "{what}: the plan uses no path index:\n{plan}"
        );
    }
    // A path without an index is a scan of the table.
    let plan = plan(
        &items,
        json!({"filter": {"path": "/qty", "op": "eq", "value": 3}}),
    )
    .await;
    assert!(!plan.contains("vx_"), "{plan}");
}

/// Rows of the item table the current transaction has read, however the plan read them: by a
/// sequential scan, a bitmap scan, or through an index. The counts are PostgreSQL's own.
const ROWS_READ: &str = "SELECT (pg_stat_get_xact_tuples_returned('orders.item'::regclass)
        + pg_stat_get_xact_tuples_fetched('orders.item'::regclass)
        + (SELECT sum(pg_stat_get_xact_tuples_fetched(indexrelid)) FROM pg_index
           WHERE indrelid = 'orders.item'::regclass))::bigint";

/// One page of a query run as the service runs it: the entity ids on it, the cursor after it,
/// and how many rows PostgreSQL read for it.
async fn read_page(items: &Items, body: Value) -> (Vec<Uuid>, Option<String>, i64) {
    let columns = "e.entity_id, e.created_at, e.updated_at, e.entity_version, e.payload";
    let (compiled, values) = compile_item_query(body, columns);
    let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
        values.iter().map(|v| v.as_ref() as _).collect();
    let mut admin = items.f.admin().await;
    let tx = admin.transaction().await.unwrap();
    tx.batch_execute("SET LOCAL plan_cache_mode = force_custom_plan")
        .await
        .unwrap();
    let rows = tx.query(&compiled.sql, &params).await.unwrap();
    let read = tx.query_one(ROWS_READ, &[]).await.unwrap().get(0);
    let limit = compiled.limit();
    let cursor = (rows.len() > limit).then(|| {
        let last = &rows[limit - 1];
        let version: vellum::Version = last.get::<_, String>(3).parse().unwrap();
        compiled.cursor_after(vellum::query::RowKeys {
            entity_id: last.get(0),
            created_at: last.get(1),
            updated_at: last.get(2),
            entity_version: &version,
            payload: &last.get(4),
        })
    });
    let ids = rows.iter().take(limit).map(|row| row.get(0)).collect();
    (ids, cursor, read)
}

/// The entity ids a hand-written statement returns: what a page should hold.
async fn ids_by_sql(
    admin: &tokio_postgres::Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Vec<Uuid> {
    admin
        .query(sql, params)
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// The `n`th page (1-based) of `body`, reached by following the cursors, and the rows read for
/// it alone.
async fn nth_page(items: &Items, body: Value, n: usize) -> (Vec<Uuid>, i64) {
    let mut next = body;
    for _ in 1..n {
        let (_, cursor, _) = read_page(items, next.clone()).await;
        next["cursor"] = json!(cursor.expect("a next page"));
    }
    let (page, _, read) = read_page(items, next).await;
    (page, read)
}

/// 20,000 items: 1% on hold, half closed, the rest open. A page filtered on one status, in the
/// default order (entity id), or ordered by status either way, reads the page and the row that
/// tells a next page exists, however many items share the value: the path index ends with the
/// entity id, and ties follow the order's direction. So does a page deep into an order by a
/// path, where the cursor bounds the path's value.
#[tokio::test]
async fn a_page_of_documents_sharing_an_indexed_value_reads_only_the_page() {
    let items = Items::new(0).await;
    let admin = items.f.admin().await;
    admin
        .execute(
            "WITH uow AS (INSERT INTO orders.units_of_work (uow_id, actor, committed_at)
                          VALUES (gen_random_uuid(), 'loader', now()) RETURNING uow_id)
             INSERT INTO orders.item (entity_id, revision, entity_version, schema_id,
                                      schema_version, payload, created_at, updated_at,
                                      is_active, uow_id)
             SELECT gen_random_uuid(), 1, '1.0.0', 'item', '1.0.0',
                    jsonb_build_object('sku', 'sku' || g, 'qty', 1, 'price', g,
                        'status', CASE WHEN g % 100 = 0 THEN 'hold'
                                       WHEN g % 2 = 0 THEN 'open' ELSE 'closed' END)
                    || CASE WHEN g % 2 = 0 THEN jsonb_build_object('placed_at',
                           replace(to_char(timestamp '2026-01-01' + g * interval '1 second',
                                           'YYYY-MM-DD HH24:MI:SS'), ' ', 'T') || 'Z')
                       ELSE '{}' END,
                    now(), now(), true, uow.uow_id
             FROM generate_series(1, 20000) g, uow",
            &[],
        )
        .await
        .unwrap();
    admin.batch_execute("ANALYZE orders.item").await.unwrap();
    let with_status = async |status: &str| {
        let sql = "SELECT entity_id FROM orders.item WHERE payload->>'status' = $1
                   ORDER BY entity_id";
        ids_by_sql(&admin, sql, &[&status]).await
    };
    let (hold, closed) = (with_status("hold").await, with_status("closed").await);
    assert_eq!((hold.len(), closed.len()), (200, 10_000));

    let filtered = json!({"filter": {"path": "/status", "op": "eq", "value": "hold"}, "limit": 20});
    let (page, cursor, read) = read_page(&items, filtered.clone()).await;
    assert_eq!(page, hold[..20]);
    assert_eq!(read, 21, "rows read for the first page");
    let mut next = filtered;
    next["cursor"] = json!(cursor.unwrap());
    let (page, _, read) = read_page(&items, next).await;
    assert_eq!(page, hold[20..40]);
    assert_eq!(read, 21, "rows read for the second page");

    // "closed" sorts first among the statuses, "open" last.
    let ordered = json!({"order": [{"path": "/status"}], "limit": 20});
    let (page, _, read) = read_page(&items, ordered).await;
    assert_eq!(page, closed[..20]);
    assert_eq!(read, 21, "rows read for a page ordered by the path");
    let open = with_status("open").await;
    let ordered = json!({"order": [{"path": "/status", "direction": "desc"}], "limit": 20});
    let (page, cursor, read) = read_page(&items, ordered.clone()).await;
    let last_open: Vec<Uuid> = open.iter().rev().take(40).copied().collect();
    assert_eq!(page, last_open[..20]);
    assert_eq!(
        read, 21,
        "rows read for a page ordered by the path, descending"
    );
    let mut next = ordered;
    next["cursor"] = json!(cursor.unwrap());
    let (page, _, read) = read_page(&items, next).await;
    assert_eq!(page, last_open[20..]);
    assert!(
        read <= 22,
        "{read} rows read for the second page, descending"
    );

    // Pages after the first start at the cursor row's value: descending (documents missing
    // the path come first, before it) ...
    let ids_of = async |sql: &str| ids_by_sql(&admin, sql, &[]).await;
    let descending = json!({"order": [{"path": "/price", "direction": "desc"}], "limit": 20});
    let (page, read) = nth_page(&items, descending, 3).await;
    let expected = ids_of(
        "SELECT entity_id FROM orders.item ORDER BY payload->'price' DESC LIMIT 20 OFFSET 40",
    )
    .await;
    assert_eq!(page, expected);
    // Not the pages before it again (62 rows): the page, the row after it, and at most one the
    // scan stops at.
    assert!(
        read <= 22,
        "{read} rows read for the third page in descending order"
    );
    // ... and ascending, when the filter requires the path (documents missing it come last).
    let ranged = json!({
        "filter": {"path": "/price", "op": "gte", "value": 100},
        "order": [{"path": "/price"}],
        "limit": 20
    });
    let (page, read) = nth_page(&items, ranged, 4).await;
    let expected = ids_of(
        "SELECT entity_id FROM orders.item WHERE payload->'price' >= '160'
         ORDER BY payload->'price' LIMIT 20",
    )
    .await;
    assert_eq!(page, expected);
    assert!(
        read <= 22,
        "{read} rows read for the fourth page of a range"
    );
    // ... and ascending on a path half the items lack, without a filter on it: the items placed
    // after the cursor row and the items never placed (which come last) are read apart, each
    // part to the page's size (42 rows), not every item placed before the page (201).
    let placed = json!({"order": [{"path": "/placed_at"}], "limit": 20});
    let (page, read) = nth_page(&items, placed, 10).await;
    let expected = ids_of(
        "SELECT entity_id FROM orders.item WHERE payload ? 'placed_at'
         ORDER BY payload->>'placed_at', entity_id LIMIT 20 OFFSET 180",
    )
    .await;
    assert_eq!(page, expected);
    assert!(
        read <= 2 * 22,
        "{read} rows read for the tenth page of an order on a path some items lack"
    );
    // Descending, the items never placed come first: the rest of them after the cursor row and
    // the items placed are read apart too (43 rows, 202 together).
    let placed = json!({"order": [{"path": "/placed_at", "direction": "desc"}], "limit": 20});
    let (page, read) = nth_page(&items, placed, 10).await;
    let expected = ids_of(
        "SELECT entity_id FROM orders.item WHERE NOT payload ? 'placed_at'
         ORDER BY entity_id DESC LIMIT 20 OFFSET 180",
    )
    .await;
    assert_eq!(page, expected);
    assert!(
        read <= 2 * 22,
        "{read} rows read for the tenth page, descending, among the items never placed"
    );
}

/// 20,000 items written ten to a unit of work, a second apart (so ten share each commit time). A
/// page ordered by commit time, `created_at` or `updated_at`, newest or oldest first, however
/// deep, reads the page, the row that tells a next page exists, and at most one row more: the
/// entity table has an index on commit time and entity id over its current versions, read
/// forwards or backwards, and a cursor starts the scan at its row. Without the index each page
/// reads all 20,000; with `created_at` alone as the cursor's bound, up to ten more.
#[tokio::test]
async fn a_page_ordered_by_commit_time_reads_only_the_page() {
    const PER_UOW: i64 = 10;
    let items = Items::new(0).await;
    let admin = items.f.admin().await;
    admin
        .execute(
            "WITH uow AS (INSERT INTO orders.units_of_work (uow_id, actor, committed_at)
                          SELECT gen_random_uuid(), 'loader', now() - g * interval '1 second'
                          FROM generate_series(1, 2000) g
                          RETURNING uow_id, committed_at)
             INSERT INTO orders.item (entity_id, revision, entity_version, schema_id,
                                      schema_version, payload, created_at, updated_at,
                                      is_active, uow_id)
             SELECT gen_random_uuid(), 1, '1.0.0', 'item', '1.0.0',
                    jsonb_build_object('sku', uow.uow_id || '-' || n, 'qty', 1,
                                       'price', n, 'status', 'open'),
                    uow.committed_at, uow.committed_at, true, uow.uow_id
             FROM uow, generate_series(1, $1::bigint) n",
            &[&PER_UOW],
        )
        .await
        .unwrap();
    admin.batch_execute("ANALYZE orders.item").await.unwrap();
    for direction in ["desc", "asc"] {
        let sql = format!(
            "SELECT entity_id FROM orders.item
             ORDER BY created_at {direction}, entity_id {direction} LIMIT 20 OFFSET 60"
        );
        let expected = ids_by_sql(&admin, &sql, &[]).await;
        for field in ["created_at", "updated_at"] {
            let body = json!({"order": [{"field": field, "direction": direction}], "limit": 20});
            let (_, read) = nth_page(&items, body.clone(), 1).await;
            assert_eq!(read, 21, "rows read for the first page, {body}");
            let (page, read) = nth_page(&items, body.clone(), 4).await;
            assert_eq!(page, expected, "the fourth page, {body}");
            assert!(read <= 22, "{read} rows read for the fourth page, {body}");
        }
    }
}

#[tokio::test]
async fn date_time_paths_tolerate_documents_of_older_versions() {
    let f = Fixture::empty().await;
    let registry = f.service.schemas();
    let schema = |at: Value| json!({"type": "object", "properties": {"at": at}});
    registry
        .register(
            &id("event"),
            v("1.0.0"),
            schema(json!({"type": "string"})),
            false,
        )
        .await
        .unwrap();
    let mut uow = f.service.begin("loader").await.unwrap();
    for at in ["soon", "2026-02-30T00:00:00", "2026-03-01T00:00:00Z"] {
        uow.create(&id("event"), json!({"at": at}), WriteOptions::default())
            .await
            .unwrap();
    }
    uow.commit().await.unwrap();
    // A new major version types the path as a date-time and indexes it: the index is built
    // over the old documents too, which stay as written under 1.0.0 (its migration moves the
    // old text aside, so that migrated documents satisfy 2.0.0).
    let typed = json!({"type": "string", "format": "date-time", "x-vellum-index": true});
    let migration = serde_json::from_value::<vellum::Migration>(json!({
        "from": "1.0.0", "operations": [{"op": "rename", "from": "/at", "to": "/at_text"}]
    }))
    .unwrap();
    registry
        .register_with_migration(&id("event"), v("2.0.0"), schema(typed), migration, true)
        .await
        .unwrap();
    let query: Query = serde_json::from_value(
        json!({"filter": {"path": "/at", "op": "gt", "value": "2000-01-01T00:00:00Z"}}),
    )
    .unwrap();
    let page = f.service.query(&id("event"), &query).await.unwrap();
    let found: Vec<&Value> = page.items.iter().map(|e| &e.payload["at"]).collect();
    assert_eq!(found, [&json!("2026-03-01T00:00:00Z")]);
}

/// A range compares values of its own type only, whatever else documents hold at the path:
/// `jsonb` orders every type against every other, booleans, arrays and objects after numbers.
#[tokio::test]
async fn range_filters_match_only_values_of_their_type() {
    let f = Fixture::empty().await;
    let any = id("any");
    f.service
        .schemas()
        .register(&any, v("1.0.0"), json!({"type": "object"}), false)
        .await
        .unwrap();
    let values = [
        json!(null),
        json!(false),
        json!(true),
        json!(-1e308),
        json!(0),
        json!(1.5),
        json!(1e308),
        json!(""),
        json!("a"),
        json!("zzz"),
        json!([]),
        json!([0]),
        json!([[]]),
        json!({}),
        json!({"a": 1}),
    ];
    let mut uow = f.service.begin("loader").await.unwrap();
    let mut documents = vec![json!({})];
    documents.extend(values.iter().map(|value| json!({"v": value})));
    for document in &documents {
        uow.create(&any, document.clone(), WriteOptions::default())
            .await
            .unwrap();
    }
    uow.commit().await.unwrap();

    for op in ["lt", "lte", "gt", "gte"] {
        for value in [json!(0), json!(1.5), json!(""), json!("a")] {
            let filter = json!({"path": "/v", "op": op, "value": value});
            let want: Vec<&Value> = values
                .iter()
                .filter(|found| typed_condition(&filter, found))
                .collect();
            let query: Query = serde_json::from_value(json!({"filter": filter})).unwrap();
            let page = f.service.query(&any, &query).await.unwrap();
            let mut got: Vec<&Value> = page.items.iter().map(|e| &e.payload["v"]).collect();
            got.sort_by_key(|found| values.iter().position(|v| v == *found));
            assert_eq!(got, want, "{filter}");
        }
    }
}
