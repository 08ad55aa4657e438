//! The benchmark's entity type: a sales order with lines, about 1 KiB, and its schema.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::{Value, json};

/// The entity type every workload writes and reads.
pub(crate) const SCHEMA_ID: &str = "sales_order";

/// Its only schema version.
pub(crate) const SCHEMA_VERSION: &str = "1.0.0";

/// The seed of every random choice of a run, so two runs do the same work.
pub(crate) const SEED: u64 = 0x5645_4c4c_554d;

/// Distinct documents the workloads cycle through (cloned per write, on both sides).
const POOL: usize = 64;

/// A realistic sales-order schema: nested objects, `$ref`s, patterns, formats, enums, bounds
/// and `additionalProperties: false`, so validation does the work a real schema asks for.
pub(crate) fn schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Sales order",
        "type": "object",
        "required": ["order_number", "status", "ordered_at", "currency", "customer", "lines", "totals"],
        "additionalProperties": false,
        "properties": {
            "order_number": {"type": "string", "pattern": "^SO-[0-9]{8}$"},
            "status": {"enum": ["draft", "confirmed", "shipped", "invoiced", "cancelled"]},
            "ordered_at": {"type": "string", "format": "date-time"},
            "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
            "customer": {
                "type": "object",
                "required": ["id", "name", "email"],
                "additionalProperties": false,
                "properties": {
                    "id": {"type": "string", "pattern": "^C[0-9]{6}$"},
                    "name": {"type": "string", "minLength": 1, "maxLength": 200},
                    "email": {"type": "string", "format": "email"}
                }
            },
            "shipping_address": {"$ref": "#/$defs/address"},
            "lines": {"type": "array", "minItems": 1, "maxItems": 500, "items": {"$ref": "#/$defs/line"}},
            "totals": {
                "type": "object",
                "required": ["net", "tax", "gross"],
                "additionalProperties": false,
                "properties": {
                    "net": {"$ref": "#/$defs/money"},
                    "tax": {"$ref": "#/$defs/money"},
                    "gross": {"$ref": "#/$defs/money", "x-vellum-index": true}
                }
            },
            "tags": {"type": "array", "uniqueItems": true, "items": {"type": "string", "maxLength": 32}},
            "notes": {"type": "string", "maxLength": 2000}
        },
        "$defs": {
            "money": {"type": "number", "minimum": 0},
            "address": {
                "type": "object",
                "required": ["street", "city", "postal_code", "country"],
                "additionalProperties": false,
                "properties": {
                    "street": {"type": "string", "minLength": 1, "maxLength": 200},
                    "city": {"type": "string", "minLength": 1, "maxLength": 100},
                    "postal_code": {"type": "string", "pattern": "^[0-9A-Z -]{3,10}$"},
                    "country": {"type": "string", "pattern": "^[A-Z]{2}$"}
                }
            },
            "line": {
                "type": "object",
                "required": ["line_no", "sku", "description", "quantity", "unit_price", "amount"],
                "additionalProperties": false,
                "properties": {
                    "line_no": {"type": "integer", "minimum": 1},
                    "sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{5}$"},
                    "description": {"type": "string", "maxLength": 200},
                    "quantity": {"type": "integer", "minimum": 1, "maximum": 10000},
                    "unit_price": {"$ref": "#/$defs/money"},
                    "discount_pct": {"type": "number", "minimum": 0, "maximum": 100},
                    "amount": {"$ref": "#/$defs/money"}
                }
            }
        }
    })
}

const PRODUCTS: [&str; 8] = [
    "Stainless steel hex bolt M8x40, zinc plated",
    "Industrial cable tie 300 mm, black, UV resistant",
    "Safety gloves, nitrile coated, size 9",
    "LED panel light 60x60 cm, 4000 K, 36 W",
    "Copper pipe fitting 22 mm, elbow 90 degrees",
    "Corrugated shipping box 40x30x20 cm, double wall",
    "Hydraulic hose 1/2 inch, two-wire braid, per metre",
    "Thermal transfer label roll 100x150 mm",
];

const CITIES: [(&str, &str, &str); 4] = [
    ("Rotterdam", "3011 AB", "NL"),
    ("Lyon", "69002", "FR"),
    ("Leipzig", "04109", "DE"),
    ("Porto", "4050-123", "PT"),
];

/// One sales order with four lines, about 1 KiB of JSON, valid against [`schema`].
pub(crate) fn sales_order(rng: &mut impl Rng) -> Value {
    let ordered_at: DateTime<Utc> = Utc.with_ymd_and_hms(2026, 1, 1, 8, 0, 0).unwrap()
        + chrono::Duration::seconds(rng.random_range(0..30 * 86_400));
    let (city, postal_code, country) = CITIES[rng.random_range(0..CITIES.len())];
    let mut net_cents = 0;
    let lines: Vec<Value> = (1..=4)
        .map(|line_no| {
            let quantity = rng.random_range(1..=50_i64);
            let unit_cents = rng.random_range(50..=20_000_i64);
            let discount_pct = [0, 0, 5, 10][rng.random_range(0..4)];
            let amount_cents = quantity * unit_cents * (100 - discount_pct) / 100;
            net_cents += amount_cents;
            json!({
                "line_no": line_no,
                "sku": format!("{}-{:05}", ["BLT", "CBL", "GLV", "LED"][line_no as usize - 1],
                               rng.random_range(0..100_000)),
                "description": PRODUCTS[rng.random_range(0..PRODUCTS.len())],
                "quantity": quantity,
                "unit_price": unit_cents as f64 / 100.0,
                "discount_pct": discount_pct,
                "amount": amount_cents as f64 / 100.0,
            })
        })
        .collect();
    let tax_cents = net_cents * 21 / 100;
    let customer = rng.random_range(0..1_000_000);
    json!({
        "order_number": format!("SO-{:08}", rng.random_range(0..100_000_000)),
        "status": "confirmed",
        "ordered_at": ordered_at.to_rfc3339(),
        "currency": "EUR",
        "customer": {
            "id": format!("C{customer:06}"),
            "name": format!("Customer {customer} Trading B.V."),
            "email": format!("purchasing{customer}@example.com"),
        },
        "shipping_address": {
            "street": format!("Havenstraat {}", rng.random_range(1..300)),
            "city": city,
            "postal_code": postal_code,
            "country": country,
        },
        "lines": lines,
        "totals": {
            "net": net_cents as f64 / 100.0,
            "tax": tax_cents as f64 / 100.0,
            "gross": (net_cents + tax_cents) as f64 / 100.0,
        },
        "tags": ["b2b", "priority"],
    })
}

/// The documents the workloads write, made once from the run's seed, as JSON values (for the
/// library and the baseline) and as request bodies (for the HTTP workloads).
#[derive(Debug)]
pub(crate) struct Documents {
    values: Vec<Value>,
    bodies: Vec<Bytes>,
}

impl Documents {
    pub(crate) fn new() -> Arc<Self> {
        let mut rng = StdRng::seed_from_u64(SEED);
        let values: Vec<Value> = (0..POOL).map(|_| sales_order(&mut rng)).collect();
        let bodies = values.iter().map(|v| Bytes::from(v.to_string())).collect();
        Arc::new(Self { values, bodies })
    }

    /// The `n`th document (cycling).
    /// The `/totals/gross` of the documents, ascending, without repeats.
    pub(crate) fn grosses(&self) -> Vec<f64> {
        let mut grosses: Vec<f64> = (0..POOL)
            .filter_map(|n| self.value(n)["totals"]["gross"].as_f64())
            .collect();
        grosses.sort_by(f64::total_cmp);
        grosses.dedup();
        grosses
    }

    pub(crate) fn value(&self, n: usize) -> &Value {
        &self.values[n % self.values.len()]
    }

    /// The `n`th document as a request body.
    pub(crate) fn body(&self, n: usize) -> Bytes {
        self.bodies[n % self.bodies.len()].clone()
    }
}

#[cfg(test)]
mod tests {
    use vellum::SchemaLimits;
    use vellum_core::CompiledSchema;

    use super::*;

    #[test]
    fn documents_are_valid_and_about_one_kib() {
        let compiled = CompiledSchema::compile(&schema(), &SchemaLimits::default()).unwrap();
        let documents = Documents::new();
        for n in 0..POOL {
            let document = documents.value(n);
            assert_eq!(compiled.validate(document), Ok(()), "{document}");
            let size = documents.body(n).len();
            assert!((850..=1_250).contains(&size), "document of {size} bytes");
        }
    }

    #[test]
    fn the_same_seed_makes_the_same_documents() {
        assert_eq!(Documents::new().values, Documents::new().values);
    }

    #[test]
    fn the_schema_refuses_what_a_real_order_schema_would() {
        let compiled = CompiledSchema::compile(&schema(), &SchemaLimits::default()).unwrap();
        let mut order = Documents::new().value(0).clone();
        order["lines"][0]["quantity"] = json!(0);
        order["customer"]["email"] = json!("not an email");
        order["extra"] = json!(true);
        let violations = compiled.validate(&order).unwrap_err();
        let keywords: Vec<_> = violations.iter().map(|v| v.keyword.as_str()).collect();
        assert_eq!(keywords.len(), 3, "{violations:?}");
        for keyword in ["additionalProperties", "format", "minimum"] {
            assert!(keywords.contains(&keyword), "{keywords:?}");
        }
    }
}
