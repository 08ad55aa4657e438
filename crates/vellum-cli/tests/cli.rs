//! The `vellum` binary as a user runs it: real processes, real PostgreSQL.

#[path = "../../vellum/tests/it/support.rs"]
#[allow(
    dead_code,
    reason = "shared with the library's tests, which use other parts"
)]
mod support;

#[allow(dead_code, reason = "each test binary uses part of it")]
mod server;

use std::{
    io::Write,
    path::Path,
    process::{Command, Output, Stdio},
};

use serde_json::{Value, json};
use server::Server;
use support::TestDb;

/// Runs `vellum` with `args`, `stdin` as standard input, and the given database settings.
fn vellum(database: &Database<'_>, args: &[&str], stdin: &str) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vellum"));
    command
        .args(args)
        .env_remove("VELLUM_DATA_DIR")
        .env_remove("DATABASE_URL");
    match database {
        Database::Url(url) => command.env("DATABASE_URL", url),
        Database::Embedded(dir) => command.env("VELLUM_DATA_DIR", dir),
    };
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the vellum binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

enum Database<'a> {
    Url(String),
    Embedded(&'a Path),
}

/// Runs a command that must succeed and returns its JSON output.
fn ok(database: &Database<'_>, args: &[&str], stdin: &str) -> Value {
    let out = vellum(database, args, stdin);
    assert!(
        out.status.success(),
        "vellum {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

/// Runs a command that must fail with `code`; returns its stderr.
fn fails(database: &Database<'_>, args: &[&str], stdin: &str, code: i32) -> String {
    let out = vellum(database, args, stdin);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "vellum {args:?}: {stderr}");
    assert!(out.stdout.is_empty(), "nothing on stdout when failing");
    stderr
}

const ORDER_SCHEMA: &str = r#"{"type": "object", "required": ["customer"],
    "properties": {"customer": {"type": "string"}, "total": {"type": "number", "minimum": 0}}}"#;

/// A fresh database with service `orders` and schema `sales_order` 1.0.0, both made through
/// the CLI. The `TestDb` must outlive the test: dropping it drops the database.
async fn orders_with_schema() -> (TestDb, Database<'static>) {
    let test_db = TestDb::new().await;
    let db = Database::Url(test_db.url());
    ok(&db, &["service", "create", "orders"], "");
    let register = [
        "schema",
        "register",
        "orders",
        "sales_order",
        "1.0.0",
        "--file",
        "-",
    ];
    let schema = ok(&db, &register, ORDER_SCHEMA);
    assert_eq!(
        (&schema["schema_version"], &schema["is_active"]),
        (&json!("1.0.0"), &json!(true))
    );
    (test_db, db)
}

#[tokio::test]
async fn the_tour_creates_updates_and_travels_back_in_time() {
    let (_test_db, db) = orders_with_schema().await;

    let created = ok(
        &db,
        &["entity", "create", "orders", "sales_order", "--file", "-"],
        r#"{"customer": "ACME"}"#,
    );
    assert_eq!(created["entity_version"], "1.0.0");
    let id = created["entity_id"].as_str().unwrap().to_string();
    let t1 = created["created_at"].as_str().unwrap().to_string();

    let update = [
        "entity",
        "update",
        "orders",
        "sales_order",
        &id,
        "--file",
        "-",
        "--expect",
        "1.0.0",
    ];
    let updated = ok(&db, &update, r#"{"customer": "ACME", "total": 12.5}"#);
    assert_eq!(updated["entity_version"], "1.0.1");
    // The same expectation again is stale now.
    let stderr = fails(&db, &update, r#"{"customer": "ACME", "total": 1}"#, 4);
    assert!(stderr.contains("expected 1.0.0, found 1.0.1"), "{stderr}");

    let then = ok(
        &db,
        &[
            "entity",
            "get",
            "orders",
            "sales_order",
            &id,
            "--as-of",
            &t1,
        ],
        "",
    );
    assert_eq!(then["payload"], json!({"customer": "ACME"}));
    let old = ok(
        &db,
        &[
            "entity",
            "get",
            "orders",
            "sales_order",
            &id,
            "--version",
            "1.0.0",
        ],
        "",
    );
    assert_eq!(old["is_active"], false);
    let now = ok(&db, &["entity", "get", "orders", "sales_order", &id], "");
    assert_eq!(now["payload"]["total"], 12.5);

    ok(
        &db,
        &[
            "entity",
            "delete",
            "orders",
            "sales_order",
            &id,
            "--actor",
            "carol",
        ],
        "",
    );
    fails(&db, &["entity", "get", "orders", "sales_order", &id], "", 3);
    let history = ok(
        &db,
        &["entity", "history", "orders", "sales_order", &id],
        "",
    );
    let versions: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["entity_version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["1.0.0", "1.0.1"]);
    assert_eq!(history[1]["deleted_by"], "carol");
    let restored = ok(
        &db,
        &["entity", "undelete", "orders", "sales_order", &id],
        "",
    );
    assert_eq!(restored["entity_version"], "1.0.2");

    let listed = ok(&db, &["schema", "list", "orders"], "");
    assert_eq!(
        listed,
        json!([{"schema_id": "sales_order", "active_version": "1.0.0", "versions": 1}])
    );
}

#[tokio::test]
async fn bad_input_fails_clearly_and_changes_nothing() {
    let (_test_db, db) = orders_with_schema().await;

    let stderr = fails(
        &db,
        &["entity", "create", "orders", "sales_order", "--file", "-"],
        r#"{"total": -1}"#,
        5,
    );
    assert!(
        stderr.contains("/: \"customer\" is a required property (required)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("/total: -1 is less than the minimum of 0 (minimum)"),
        "{stderr}"
    );
    let stderr = fails(
        &db,
        &["entity", "create", "orders", "sales_order", "--file", "-"],
        "{not json",
        5,
    );
    assert!(
        stderr.contains("standard input is not valid JSON"),
        "{stderr}"
    );
    let stderr = fails(
        &db,
        &[
            "schema", "register", "orders", "invoice", "1.0.0", "--file", "-",
        ],
        r#"{"type": 7}"#,
        5,
    );
    assert!(stderr.contains("invalid schema definition"), "{stderr}");
    let stderr = fails(
        &db,
        &[
            "entity",
            "create",
            "orders",
            "sales_order",
            "--file",
            "/nonexistent.json",
        ],
        "",
        1,
    );
    assert!(stderr.contains("reading /nonexistent.json"), "{stderr}");
    fails(&db, &["service", "create", "Orders"], "", 2);
    fails(
        &db,
        &["entity", "get", "orders", "sales_order", "nope"],
        "",
        2,
    );
    fails(
        &db,
        &["schema", "show", "orders", "sales_order", "1.0"],
        "",
        2,
    );
    fails(&db, &["service", "create", "orders"], "", 4);

    let list = ok(&db, &["schema", "list", "orders"], "");
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "the refused schema was not registered"
    );
}

#[tokio::test]
async fn the_embedded_default_starts_on_demand_and_is_reused_while_it_runs() {
    let dir = std::env::temp_dir().join(format!(
        "vlm-cli-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    ));
    let db = Database::Embedded(&dir);
    assert_eq!(ok(&db, &["db", "status"], "")["status"], "not_initialized");

    // A command on a stopped cluster starts it, and stops it again when it exits.
    ok(&db, &["service", "create", "orders"], "");
    assert_eq!(ok(&db, &["db", "status"], "")["status"], "stopped");

    // `db start` leaves it running; commands reuse it and leave it running.
    assert_eq!(ok(&db, &["db", "start"], "")["started"], true);
    let pid = ok(&db, &["db", "status"], "")["pid"].clone();
    let services = ok(&db, &["service", "list"], "");
    assert_eq!(
        services[0]["name"], "orders",
        "data persisted across restarts"
    );
    assert_eq!(
        ok(&db, &["db", "status"], "")["pid"],
        pid,
        "the same server kept running"
    );

    assert_eq!(ok(&db, &["db", "stop"], "")["stopped"], true);
    assert_eq!(ok(&db, &["db", "status"], "")["status"], "stopped");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn schema_evolution_rules_compatibility_modes_and_checks() {
    let (_test_db, db) = orders_with_schema().await;
    let mode = |args: &[&str]| {
        let mut all = vec!["schema", "compatibility", "orders", "sales_order"];
        all.extend_from_slice(args);
        ok(&db, &all, "")
    };
    assert_eq!(
        mode(&[]),
        json!({"schema_id": "sales_order", "mode": "BACKWARD"})
    );
    assert_eq!(mode(&["full"])["mode"], "FULL");
    assert_eq!(mode(&[])["mode"], "FULL");
    fails(
        &db,
        &[
            "schema",
            "compatibility",
            "orders",
            "sales_order",
            "sideways",
        ],
        "",
        2,
    );
    assert_eq!(mode(&["BACKWARD"])["mode"], "BACKWARD");

    let stricter = r#"{"type": "object", "required": ["customer", "total"],
        "properties": {"customer": {"type": "string"}, "total": {"type": "number", "minimum": 0}}}"#;
    let check = [
        "schema",
        "check",
        "orders",
        "sales_order",
        "1.0.1",
        "--file",
        "-",
    ];
    // The report is printed whatever it says; the exit code says it would be refused.
    let out = vellum(&db, &check, stricter);
    assert_eq!(out.status.code(), Some(4));
    let report: Value = serde_json::from_slice(&out.stdout).expect("the report on stdout");
    assert!(String::from_utf8_lossy(&out.stderr).contains("registration would refuse it"));
    assert_eq!(
        (
            &report["compatible"],
            &report["class"],
            &report["declared"],
            &report["predecessor"]
        ),
        (
            &json!(false),
            &json!("major"),
            &json!("patch"),
            &json!("1.0.0")
        )
    );
    assert_eq!(report["changes"][0]["kind"], "required_added");
    assert_eq!(report["registration_problems"].as_array().unwrap().len(), 1);

    let register = [
        "schema",
        "register",
        "orders",
        "sales_order",
        "1.0.1",
        "--file",
        "-",
    ];
    let stderr = fails(&db, &register, stricter, 4);
    assert!(
        stderr.contains("is incompatible with 1.0.0 (compatibility mode BACKWARD)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("major at /required: property `total` is now required"),
        "{stderr}"
    );
    let versions = ok(&db, &["schema", "versions", "orders", "sales_order"], "");
    assert_eq!(versions.as_array().unwrap().len(), 1, "nothing registered");

    let definition = TempJson::new("stricter", stricter);
    let register_major = [
        "schema",
        "register",
        "orders",
        "sales_order",
        "2.0.0",
        "--file",
        definition.path(),
        "--migration",
        "-",
    ];
    // A document without a total exists: as a major version the stricter schema is
    // registrable with a migration, but the check says a current document would not match it
    // once migrated by one that leaves documents as they are (exit code 5).
    let create = ["entity", "create", "orders", "sales_order", "--file", "-"];
    ok(&db, &create, r#"{"customer": "ACME"}"#);
    let check_major = [
        "schema",
        "check",
        "orders",
        "sales_order",
        "2.0.0",
        "--file",
        definition.path(),
        "--migration",
        "-",
    ];
    let identity = r#"{"from": "1.0.0", "operations": []}"#;
    let out = vellum(&db, &check_major, identity);
    assert_eq!(out.status.code(), Some(5));
    let report: Value = serde_json::from_slice(&out.stdout).expect("the report on stdout");
    assert_eq!(report["documents_failing"], 1);
    // A compatible candidate passes: exit code 0.
    let described = r#"{"type": "object", "required": ["customer"], "description": "An order",
        "properties": {"customer": {"type": "string"}, "total": {"type": "number", "minimum": 0}}}"#;
    let check_patch = [
        "schema",
        "check",
        "orders",
        "sales_order",
        "1.0.1",
        "--file",
        "-",
    ];
    let report = ok(&db, &check_patch, described);
    assert_eq!(report["class"], "patch");

    // Registered with a migration that gives the document a total.
    let with_total =
        r#"{"from": "1.0.0", "operations": [{"op": "add", "path": "/total", "value": 0}]}"#;
    let registered = ok(&db, &register_major, with_total);
    assert_eq!(registered["assessment"]["class"], "major");
}

/// A JSON file in the temporary directory, removed when dropped.
struct TempJson(std::path::PathBuf);

impl TempJson {
    fn new(name: &str, content: &str) -> TempJson {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let path = std::env::temp_dir().join(format!(
            "vellum-cli-test-{}-{nanos}-{name}.json",
            std::process::id()
        ));
        std::fs::write(&path, content).unwrap();
        TempJson(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempJson {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[tokio::test]
async fn a_major_version_is_registered_with_a_migration_and_entities_read_as_any_version() {
    let (_test_db, db) = orders_with_schema().await;
    let created = ok(
        &db,
        &["entity", "create", "orders", "sales_order", "--file", "-"],
        r#"{"customer": "ACME", "total": 12}"#,
    );
    let id = created["entity_id"].as_str().unwrap().to_string();
    let v2 = TempJson::new(
        "v2",
        r#"{"type": "object", "required": ["buyer", "currency"],
            "properties": {"buyer": {"type": "string"}, "total": {"type": "number"},
                           "currency": {"enum": ["EUR", "USD"]}}}"#,
    );
    let register = [
        "schema",
        "register",
        "orders",
        "sales_order",
        "2.0.0",
        "--file",
        v2.path(),
    ];
    let stderr = fails(&db, &register, "", 5);
    assert!(
        stderr.contains("must be registered with a migration from a version of major line 1"),
        "{stderr}"
    );
    // A migration that leaves stored documents invalid: refused with the failing sample.
    let stderr = fails(
        &db,
        &[&register[..], &["--migration", "-"]].concat(),
        r#"{"from": "1.0.0", "operations": [{"op": "rename", "from": "/customer", "to": "/buyer"}]}"#,
        5,
    );
    assert!(
        stderr.contains(&format!("entity {id} 1.0.0: /: ")),
        "{stderr}"
    );
    let migration = r#"{"from": "1.0.0", "operations": [
        {"op": "rename", "from": "/customer", "to": "/buyer"},
        {"op": "add", "path": "/currency", "value": "EUR"}]}"#;
    let check = [
        "schema",
        "check",
        "orders",
        "sales_order",
        "2.0.0",
        "--file",
        v2.path(),
        "--migration",
        "-",
    ];
    let report = ok(&db, &check, migration);
    assert_eq!(
        (
            &report["documents_failing"],
            &report["registration_problems"]
        ),
        (&json!(0), &json!([]))
    );
    assert_eq!(report["migration_reversibility"], "lossless");
    let registered = ok(
        &db,
        &[&register[..], &["--migration", "-", "--activate"]].concat(),
        migration,
    );
    assert_eq!(registered["migration"]["reversibility"], "lossless");
    let listed = ok(&db, &["schema", "migrations", "orders", "sales_order"], "");
    assert_eq!(listed[0]["to"], "2.0.0");

    let get = ["entity", "get", "orders", "sales_order", &id];
    let as_v2 = ok(
        &db,
        &[&get[..], &["--schema-version", "2.0.0"]].concat(),
        "",
    );
    assert_eq!(
        as_v2["payload"],
        json!({"buyer": "ACME", "total": 12, "currency": "EUR"})
    );
    assert_eq!(as_v2["schema_version"], "2.0.0");
    let stored = ok(&db, &get, "");
    assert_eq!(stored["payload"], json!({"customer": "ACME", "total": 12}));

    // An entity written under 2.0.0 reads back as 1.0.0; one 1.0.0 cannot satisfy is refused.
    let update = [
        "entity",
        "update",
        "orders",
        "sales_order",
        &id,
        "--file",
        "-",
    ];
    ok(
        &db,
        &update,
        r#"{"buyer": "ACME", "total": 15, "currency": "USD"}"#,
    );
    let as_v1 = ok(
        &db,
        &[&get[..], &["--schema-version", "1.0.0"]].concat(),
        "",
    );
    assert_eq!(as_v1["payload"], json!({"customer": "ACME", "total": 15}));
    ok(
        &db,
        &update,
        r#"{"buyer": "ACME", "total": -1, "currency": "USD"}"#,
    );
    let stderr = fails(
        &db,
        &[&get[..], &["--schema-version", "1.0.0"]].concat(),
        "",
        4,
    );
    assert!(
        stderr.contains("cannot be read as version 1.0.0") && stderr.contains("/total"),
        "{stderr}"
    );
}

#[tokio::test]
async fn entity_query_prints_a_page_or_every_entity_as_json_lines() {
    let (_test_db, db) = orders_with_schema().await;
    let create = ["entity", "create", "orders", "sales_order", "--file", "-"];
    for total in [5, 50, 500, 7] {
        ok(
            &db,
            &create,
            &json!({"customer": "ACME", "total": total}).to_string(),
        );
    }
    let filter = r#"{"path": "/total", "op": "gte", "value": 7}"#;
    let order = r#"[{"path": "/total", "direction": "desc"}]"#;
    let query = [
        "entity",
        "query",
        "orders",
        "sales_order",
        "--filter",
        filter,
        "--order",
        order,
        "--limit",
        "2",
    ];
    let page = ok(&db, &query, "");
    let totals: Vec<&Value> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["payload"]["total"])
        .collect();
    assert_eq!(totals, [&json!(500), &json!(50)]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let next = ok(&db, &[&query[..], &["--cursor", cursor]].concat(), "");
    assert_eq!(next["items"][0]["payload"]["total"], json!(7));
    assert_eq!(next["next_cursor"], Value::Null);

    // --all follows the cursors: one JSON document per line.
    let out = vellum(&db, &[&query[..], &["--all"]].concat(), "");
    assert!(out.status.success());
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let totals: Vec<&Value> = lines.iter().map(|e| &e["payload"]["total"]).collect();
    assert_eq!(totals, [&json!(500), &json!(50), &json!(7)]);

    // A bad filter is invalid input (exit 5) and says what is wrong.
    let bad = r#"{"path": "/total", "op": "gt", "value": "many"}"#;
    let stderr = fails(
        &db,
        &["entity", "query", "orders", "sales_order", "--filter", bad],
        "",
        5,
    );
    assert!(stderr.contains("/total"), "{stderr}");
}

#[tokio::test]
async fn schema_plan_and_apply_register_the_project_files() {
    let test_db = TestDb::new().await;
    let db = Database::Url(test_db.url());
    ok(&db, &["service", "create", "orders"], "");
    let dir = std::env::temp_dir().join(format!("vellum-cli-schemas-{}", uuid::Uuid::new_v4()));
    let write = |version: &str, schema: &str| {
        std::fs::create_dir_all(dir.join("sales_order")).unwrap();
        std::fs::write(
            dir.join("sales_order").join(format!("{version}.json")),
            schema,
        )
        .unwrap();
    };
    write("1.0.0", ORDER_SCHEMA);
    let dir_arg = dir.to_str().unwrap();

    let plan = ok(&db, &["schema", "plan", "orders", "--dir", dir_arg], "");
    assert_eq!(plan["new"][0]["version"], "1.0.0");
    assert_eq!(plan["new"][0]["activate"], true);
    let applied = ok(&db, &["schema", "apply", "orders", "--dir", dir_arg], "");
    assert_eq!(applied["registered"][0]["schema_version"], "1.0.0");
    let plan = ok(&db, &["schema", "plan", "orders", "--dir", dir_arg], "");
    assert_eq!((&plan["unchanged"], &plan["new"]), (&json!(1), &json!([])));

    // The registered file edited: drift, exit code 4, the plan still printed.
    write("1.0.0", r#"{"type": "object"}"#);
    let out = vellum(&db, &["schema", "plan", "orders", "--dir", dir_arg], "");
    assert_eq!(out.status.code(), Some(4));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["drift"][0]["kind"], "definition_differs");
    let stderr = fails(&db, &["schema", "apply", "orders", "--dir", dir_arg], "", 4);
    assert!(stderr.contains("nothing was registered"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn entity_import_streams_ndjson_all_or_nothing() {
    let (_test_db, db) = orders_with_schema().await;
    let import = ["entity", "import", "orders", "sales_order", "--file", "-"];
    let lines: String = (0..300)
        .map(|i| format!("{}\n", json!({"customer": format!("C{i}"), "total": i})))
        .collect();
    let imported = ok(&db, &import, &format!("{lines}\n"));
    assert_eq!(imported["count"], 300);
    let page = ok(
        &db,
        &[
            "entity",
            "query",
            "orders",
            "sales_order",
            "--limit",
            "1000",
        ],
        "",
    );
    assert_eq!(page["items"].as_array().unwrap().len(), 300);

    // Line 3 is invalid: exit 5, every violation named, nothing stored.
    let bad = format!(
        "{}\n{}\n{}\n",
        json!({"customer": "A"}),
        json!({"customer": "B"}),
        json!({"total": -1})
    );
    let stderr = fails(&db, &import, &bad, 5);
    assert!(
        stderr.contains("document 3 of the import: document does not match schema"),
        "{stderr}"
    );
    assert!(stderr.contains("/total"), "{stderr}");
    let stderr = fails(&db, &import, "{\"customer\": \"A\"}\nnot json\n", 5);
    assert!(stderr.contains("line 2: not JSON"), "{stderr}");
    let page = ok(
        &db,
        &[
            "entity",
            "query",
            "orders",
            "sales_order",
            "--limit",
            "1000",
        ],
        "",
    );
    assert_eq!(
        page["items"].as_array().unwrap().len(),
        300,
        "nothing added"
    );
}

#[tokio::test]
async fn change_events_are_a_service_setting() {
    let (_test_db, db) = orders_with_schema().await;
    let shown = ok(&db, &["service", "events", "orders"], "");
    assert_eq!(shown, json!({"service": "orders", "change_events": false}));
    let set = ok(
        &db,
        &["service", "events", "orders", "--change-events", "true"],
        "",
    );
    assert_eq!(set, json!({"service": "orders", "change_events": true}));
    let shown = ok(&db, &["service", "events", "orders"], "");
    assert_eq!(shown["change_events"], true);
}

#[tokio::test]
async fn migrate_run_brings_every_entity_to_the_new_major_version() {
    let (_test_db, db) = orders_with_schema().await;
    let import = ["entity", "import", "orders", "sales_order", "--file", "-"];
    let lines: String = (0..50)
        .map(|i| format!("{}\n", json!({"customer": format!("C{i}"), "total": i})))
        .collect();
    ok(&db, &import, &lines);
    let dir = std::env::temp_dir().join(format!("vellum-cli-migrate-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let migration = dir.join("to-2.json");
    std::fs::write(
        &migration,
        json!({"from": "1.0.0", "operations": [
            {"op": "rename", "from": "/customer", "to": "/buyer"},
            {"op": "add", "path": "/currency", "value": "EUR"}
        ]})
        .to_string(),
    )
    .unwrap();
    let v2 = r#"{"type": "object", "required": ["buyer", "currency"],
        "properties": {"buyer": {"type": "string"}, "currency": {"type": "string"},
                       "total": {"type": "number", "minimum": 0}}}"#;
    let register = [
        "schema",
        "register",
        "orders",
        "sales_order",
        "2.0.0",
        "--file",
        "-",
        "--activate",
        "--migration",
        migration.to_str().unwrap(),
    ];
    ok(&db, &register, v2);

    let run = ["migrate", "run", "orders", "sales_order", "--to", "2.0.0"];
    let dry = ok(&db, &[&run[..], &["--dry-run"]].concat(), "");
    assert_eq!(
        (&dry["migrated"], &dry["dry_run"]),
        (&json!(50), &json!(true))
    );
    let report = ok(&db, &[&run[..], &["--chunk-size", "16"]].concat(), "");
    assert_eq!(
        (
            &report["pending_at_start"],
            &report["migrated"],
            &report["failed"]
        ),
        (&json!(50), &json!(50), &json!(0))
    );
    let page = ok(
        &db,
        &[
            "entity",
            "query",
            "orders",
            "sales_order",
            "--filter",
            r#"{"path": "/currency", "op": "eq", "value": "EUR"}"#,
            "--limit",
            "100",
        ],
        "",
    );
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 50);
    assert!(items.iter().all(|e| e["schema_version"] == "2.0.0"
        && e["entity_version"] == "2.0.0"
        && e["payload"]["buyer"].is_string()));
    // Nothing left: running it again migrates nothing.
    let again = ok(&db, &run, "");
    assert_eq!(again["migrated"], 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn serve_runs_on_the_worker_threads_asked_for() {
    const TOKEN: &str = "vlm_admin_workers_test_token_0123456789abcdef";
    let db = TestDb::new().await;
    let cpus = std::thread::available_parallelism().unwrap().get();
    for (args, env, expected) in [
        (&[][..], &[][..], cpus),
        (&["--workers", "1"][..], &[][..], 1),
        (&[][..], &[("VELLUM_WORKERS", "3")][..], 3),
    ] {
        let server = Server::start(&[args, &["serve"]].concat(), |command| {
            command
                .env_remove("VELLUM_WORKERS")
                .env_remove("TOKIO_WORKER_THREADS")
                .envs(env.iter().copied())
                .env("DATABASE_URL", db.url())
                .env("VELLUM_ADMIN_TOKEN", TOKEN)
                .env_remove("VELLUM_DATA_DIR");
        })
        .await;
        assert_eq!(server.workers, expected, "{args:?} {env:?}");
        let (status, body) = server.request("GET", "/readyz", TOKEN, None).await;
        assert_eq!(status, 200, "it serves requests: {body}");
        assert!(body.contains("ready"), "{body}");
    }

    let refused = fails(
        &Database::Url(db.url()),
        &["--workers", "0", "service", "list"],
        "",
        2,
    );
    assert!(refused.contains("--workers"), "{refused}");
}
