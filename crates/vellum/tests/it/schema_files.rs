//! Schemas as code: schema files compared with the registry (plan) and registered (apply).

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use vellum::{DriftKind, Error, read_schema_files};

use crate::fixtures::{Fixture, id, v};

/// A scratch directory of schema files, removed when dropped.
struct SchemaDir(PathBuf);

impl SchemaDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("vellum-schemas-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn write(&self, schema_id: &str, version: &str, definition: &Value) {
        let dir = self.0.join(schema_id);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{version}.json")), definition.to_string()).unwrap();
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for SchemaDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn person(description: Option<&str>) -> Value {
    let mut schema =
        json!({"type": "object", "properties": {"name": {"type": "string", "maxLength": 100}}});
    if let Some(description) = description {
        schema["description"] = json!(description);
    }
    schema
}

fn address(required: &[&str], max_street: Option<u32>) -> Value {
    let mut street = json!({"type": "string"});
    if let Some(max) = max_street {
        street["maxLength"] = json!(max);
    }
    json!({"type": "object", "required": required, "properties": {
        "person": {"type": "string", "x-vellum-ref": "person"},
        "street": street,
        "city": {"type": "string"}
    }})
}

fn versions(plan: &vellum::Plan) -> Vec<(String, String, bool)> {
    plan.new
        .iter()
        .map(|p| (p.schema_id.to_string(), p.version.to_string(), p.activate))
        .collect()
}

#[tokio::test]
async fn plan_shows_what_apply_registers_all_or_nothing() {
    let f = Fixture::empty().await;
    let registry = f.service.schemas();
    let dir = SchemaDir::new();
    // `address` references `person`: person goes first although it sorts after.
    dir.write("address", "1.0.0", &address(&["street"], Some(80)));
    dir.write("person", "1.0.0", &person(None));

    let files = read_schema_files(dir.path()).unwrap();
    let plan = registry.plan(&files, true).await.unwrap();
    assert_eq!(
        versions(&plan),
        [
            ("person".into(), "1.0.0".into(), true),
            ("address".into(), "1.0.0".into(), true)
        ]
    );
    assert!(!plan.is_blocked(), "{plan:?}");
    assert!(
        registry.list().await.unwrap().is_empty(),
        "a plan changes nothing"
    );

    let applied = registry.apply(&files, true).await.unwrap();
    assert_eq!(applied.len(), 2);
    let plan = registry.plan(&files, true).await.unwrap();
    assert_eq!((plan.new.len(), plan.unchanged), (0, 2));

    // One good change and one the declared bump does not allow: the plan says which, and
    // apply registers neither.
    dir.write("person", "1.0.1", &person(Some("Someone")));
    dir.write("address", "1.1.0", &address(&["street", "city"], Some(80)));
    let files = read_schema_files(dir.path()).unwrap();
    let plan = registry.plan(&files, true).await.unwrap();
    assert!(plan.is_blocked());
    let problems: Vec<_> = plan
        .new
        .iter()
        .map(|p| (p.version.to_string(), p.problem.is_some()))
        .collect();
    assert_eq!(problems, [("1.0.1".into(), false), ("1.1.0".into(), true)]);
    let classes: Vec<_> = plan
        .new
        .iter()
        .filter_map(|p| p.assessment.as_ref().map(|a| a.class.to_string()))
        .collect();
    assert_eq!(classes, ["patch"]);
    let err = registry.apply(&files, true).await.unwrap_err();
    assert!(matches!(err, Error::NotAllowed(_)), "{err:?}");
    assert_eq!(
        registry.versions(&id("person")).await.unwrap().len(),
        1,
        "nothing registered"
    );

    // Fixed (a relaxed constraint is a minor change): both are registered and become active.
    dir.write("address", "1.1.0", &address(&["street"], None));
    let files = read_schema_files(dir.path()).unwrap();
    let applied = registry.apply(&files, true).await.unwrap();
    let applied: Vec<_> = applied
        .iter()
        .map(|s| (s.info.schema_version.to_string(), s.info.is_active))
        .collect();
    assert_eq!(applied, [("1.0.1".into(), true), ("1.1.0".into(), true)]);
}

#[tokio::test]
async fn plan_detects_drift() {
    let f = Fixture::empty().await;
    let registry = f.service.schemas();
    let dir = SchemaDir::new();
    dir.write("person", "1.0.0", &person(None));
    dir.write("person", "1.0.1", &person(Some("v2")));
    registry
        .apply(&read_schema_files(dir.path()).unwrap(), true)
        .await
        .unwrap();
    registry.delete(&id("person"), v("1.0.0")).await.unwrap();
    // Edited after registration.
    dir.write("person", "1.0.1", &person(Some("edited")));

    let files = read_schema_files(dir.path()).unwrap();
    let plan = registry.plan(&files, true).await.unwrap();
    let drift: Vec<_> = plan
        .drift
        .iter()
        .map(|d| (d.version.to_string(), d.kind))
        .collect();
    assert_eq!(
        drift,
        [
            ("1.0.0".into(), DriftKind::FileForDeletedVersion),
            ("1.0.1".into(), DriftKind::DefinitionDiffers)
        ]
    );
    assert!(plan.is_blocked());
    let err = registry.apply(&files, true).await.unwrap_err();
    assert!(err.to_string().contains("nothing was registered"), "{err}");
}

#[tokio::test]
async fn misnamed_files_are_refused_with_their_path() {
    let dir = SchemaDir::new();
    dir.write("person", "1.0", &person(None));
    let err = read_schema_files(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("1.0.json") && err.contains("<MAJOR.MINOR.PATCH>.json"),
        "{err}"
    );

    let dir = SchemaDir::new();
    dir.write("Person", "1.0.0", &person(None));
    let err = read_schema_files(dir.path()).unwrap_err().to_string();
    assert!(err.contains("not a schema id"), "{err}");
}

#[tokio::test]
async fn a_major_version_file_comes_with_its_migration_file() {
    let f = Fixture::empty().await;
    let registry = f.service.schemas();
    let dir = SchemaDir::new();
    dir.write("person", "1.0.0", &person(None));
    registry
        .apply(&read_schema_files(dir.path()).unwrap(), true)
        .await
        .unwrap();
    let mut uow = f.service.begin("alice").await.unwrap();
    let ada = uow
        .create(
            &id("person"),
            json!({"name": "Ada"}),
            vellum::WriteOptions::default(),
        )
        .await
        .unwrap()
        .entity_id;
    uow.commit().await.unwrap();

    let renamed = json!({"type": "object", "required": ["full_name"],
                         "properties": {"full_name": {"type": "string"}}});
    dir.write("person", "2.0.0", &renamed);
    // Without its migration file, the plan says registration would refuse the major version.
    let plan = registry
        .plan(&read_schema_files(dir.path()).unwrap(), true)
        .await
        .unwrap();
    assert!(plan.is_blocked());
    let problem = plan.new[0].problem.as_deref().unwrap();
    assert!(
        problem.contains("must be registered with a migration"),
        "{problem}"
    );

    let migration = json!({"from": "1.0.0", "operations": [
        {"op": "rename", "from": "/name", "to": "/full_name"}]});
    std::fs::write(
        dir.path().join("person/2.0.0.migration.json"),
        migration.to_string(),
    )
    .unwrap();
    let files = read_schema_files(dir.path()).unwrap();
    assert_eq!(
        serde_json::to_value(files[1].migration.as_ref().unwrap()).unwrap(),
        migration
    );
    let plan = registry.plan(&files, true).await.unwrap();
    assert!(!plan.is_blocked(), "{plan:?}");
    let applied = registry.apply(&files, true).await.unwrap();
    assert_eq!(applied[0].migration.as_ref().unwrap().from, v("1.0.0"));
    let read = f
        .service
        .get_as_schema_version(&id("person"), ada, v("2.0.0"))
        .await
        .unwrap();
    assert_eq!(read.payload, json!({"full_name": "Ada"}));

    // A changed migration file of a registered version is drift.
    std::fs::write(
        dir.path().join("person/2.0.0.migration.json"),
        json!({"from": "1.0.0", "operations": []}).to_string(),
    )
    .unwrap();
    let plan = registry
        .plan(&read_schema_files(dir.path()).unwrap(), true)
        .await
        .unwrap();
    let drift: Vec<_> = plan.drift.iter().map(|d| d.kind).collect();
    assert_eq!(drift, [DriftKind::MigrationDiffers]);

    // A migration file without its version file is refused with its path.
    std::fs::write(
        dir.path().join("person/3.0.0.migration.json"),
        migration.to_string(),
    )
    .unwrap();
    let err = read_schema_files(dir.path()).unwrap_err();
    assert!(
        err.to_string()
            .contains("3.0.0.migration.json: a migration for a version without its 3.0.0.json"),
        "{err}"
    );
}
