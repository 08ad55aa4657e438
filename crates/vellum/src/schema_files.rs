//! Schemas as code (SPEC §4.4): the schema versions of a service kept as files in the consuming
//! project, `schemas/<schema_id>/<version>.json` (and `<version>.migration.json` for a new major
//! version), compared with the registry (a plan) and registered from there (an apply, all or
//! nothing).

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    sync::Arc,
};

use serde::Serialize;
use serde_json::Value;
use vellum_core::{CompiledSchema, SchemaId, Version, compat::Assessment};

use crate::{
    Error, Migration, Result, SchemaMigration, SchemaRegistry, SchemaVersion, indexes::PathIndexes,
};

/// One schema version file: `<dir>/<schema_id>/<version>.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaFile {
    /// The entity type: the name of the file's directory.
    pub schema_id: SchemaId,
    /// The version: the file name without `.json`.
    pub version: Version,
    /// The definition: the file's content.
    pub definition: Value,
    /// The migration in `<version>.migration.json` next to it, if there is one (a version that
    /// starts a new major line needs one).
    pub migration: Option<Migration>,
    /// Where it was read from.
    pub path: PathBuf,
}

/// Reads every schema version file under `dir`, sorted by schema id then version.
///
/// Every directory under `dir` must be a valid schema id and every file in it `<version>.json`
/// holding a JSON document, or `<version>.migration.json` holding the migration of a version
/// that has its `<version>.json`; anything else is an error naming the path, so a typo does not
/// silently leave a version out.
pub fn read_schema_files(dir: &Path) -> Result<Vec<SchemaFile>> {
    let mut files = Vec::new();
    let mut migrations: BTreeMap<(SchemaId, Version), (Migration, PathBuf)> = BTreeMap::new();
    for entry in read_dir(dir)? {
        let name = file_name(&entry)?;
        if !entry.is_dir() {
            return Err(Error::NotAllowed(format!(
                "{}: expected only directories named after schema ids in {}",
                entry.display(),
                dir.display()
            )));
        }
        let schema_id = SchemaId::new(&name).map_err(|err| {
            Error::NotAllowed(format!("{}: not a schema id: {err}", entry.display()))
        })?;
        for file in read_dir(&entry)? {
            let name = file_name(&file)?;
            if let Some(version) = name
                .strip_suffix(".migration.json")
                .and_then(|v| v.parse::<Version>().ok())
                .filter(|_| file.is_file())
            {
                let text = std::fs::read_to_string(&file)
                    .map_err(Error::io(format!("reading {}", file.display())))?;
                let migration = serde_json::from_str(&text).map_err(|err| {
                    Error::NotAllowed(format!("{}: not a migration: {err}", file.display()))
                })?;
                migrations.insert((schema_id.clone(), version), (migration, file));
                continue;
            }
            let version = name
                .strip_suffix(".json")
                .and_then(|v| v.parse::<Version>().ok())
                .filter(|_| file.is_file())
                .ok_or_else(|| {
                    Error::NotAllowed(format!(
                        "{}: expected files named <MAJOR.MINOR.PATCH>.json or \
                         <MAJOR.MINOR.PATCH>.migration.json",
                        file.display()
                    ))
                })?;
            let text = std::fs::read_to_string(&file)
                .map_err(Error::io(format!("reading {}", file.display())))?;
            let definition = serde_json::from_str(&text)
                .map_err(|err| Error::NotAllowed(format!("{}: not JSON: {err}", file.display())))?;
            files.push(SchemaFile {
                schema_id: schema_id.clone(),
                version,
                definition,
                migration: None,
                path: file,
            });
        }
    }
    for ((schema_id, version), (migration, path)) in migrations {
        let Some(file) = files
            .iter_mut()
            .find(|f| f.schema_id == schema_id && f.version == version)
        else {
            return Err(Error::NotAllowed(format!(
                "{}: a migration for a version without its {version}.json",
                path.display()
            )));
        };
        file.migration = Some(migration);
    }
    files.sort_by(|a, b| (&a.schema_id, a.version).cmp(&(&b.schema_id, b.version)));
    Ok(files)
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries = std::fs::read_dir(dir)
        .map_err(Error::io(format!("reading {}", dir.display())))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(Error::io(format!("reading {}", dir.display())))?;
    entries.sort();
    Ok(entries)
}

fn file_name(path: &Path) -> Result<String> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .ok_or_else(|| Error::NotAllowed(format!("{}: not a UTF-8 name", path.display())))
}

/// What [`SchemaRegistry::apply`] would do, and what stops it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// Versions in files and not registered, in the order they would be registered.
    pub new: Vec<PlannedVersion>,
    /// Registered versions whose file says something else.
    pub drift: Vec<Drift>,
    /// Versions in files and registered with the same definition.
    pub unchanged: usize,
    /// Registered versions with no file (not an error: history may predate the files).
    pub only_registered: Vec<String>,
}

impl Plan {
    /// Whether applying the plan would be refused: drift, or a new version registration would
    /// refuse.
    pub fn is_blocked(&self) -> bool {
        !self.drift.is_empty() || self.new.iter().any(|v| v.problem.is_some())
    }
}

/// A version the plan would register.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedVersion {
    /// The entity type.
    pub schema_id: SchemaId,
    /// The version.
    pub version: Version,
    /// Whether it would become the active version.
    pub activate: bool,
    /// Its classification against its predecessor, exactly as registration would decide it
    /// (absent for the first version of a schema id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assessment: Option<Assessment>,
    /// Why registration would refuse it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// The file.
    pub path: PathBuf,
}

/// A registered version its file contradicts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Drift {
    /// The entity type.
    pub schema_id: SchemaId,
    /// The version.
    pub version: Version,
    /// What is wrong.
    pub kind: DriftKind,
    /// The file.
    pub path: PathBuf,
}

/// How a file contradicts the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    /// The registered definition differs from the file (registered versions never change: the
    /// file was edited after registration).
    DefinitionDiffers,
    /// The version is registered but soft-deleted.
    FileForDeletedVersion,
    /// The version's migration file differs from the migration it was registered with (or it
    /// was registered without one).
    MigrationDiffers,
}

impl SchemaRegistry<'_> {
    /// Compares schema files with the registry: the versions to register, with their
    /// classification as registration would decide it (worked out in a transaction that is
    /// rolled back), and drift. Changes nothing.
    ///
    /// Of the new versions of a schema id, the greatest becomes active when it is greater than
    /// every registered version, unless `activate` is false.
    pub async fn plan(&self, files: &[SchemaFile], activate: bool) -> Result<Plan> {
        let mut plan = Plan {
            new: Vec::new(),
            drift: Vec::new(),
            unchanged: 0,
            only_registered: Vec::new(),
        };
        let mut new_files = Vec::new();
        let schema_ids: BTreeSet<&SchemaId> = files.iter().map(|f| &f.schema_id).collect();
        for schema_id in schema_ids {
            let registered = match self.versions(schema_id).await {
                Ok(versions) => versions,
                Err(Error::NotFound { .. }) => Vec::new(),
                Err(err) => return Err(err),
            };
            let in_files: Vec<&SchemaFile> =
                files.iter().filter(|f| &f.schema_id == schema_id).collect();
            for info in &registered {
                if !in_files.iter().any(|f| f.version == info.schema_version) {
                    plan.only_registered
                        .push(format!("{schema_id} {}", info.schema_version));
                }
            }
            let newest_registered = registered.iter().map(|i| i.schema_version).max();
            let newest_new = in_files
                .iter()
                .map(|f| f.version)
                .filter(|v| !registered.iter().any(|i| i.schema_version == *v))
                .max();
            for file in in_files {
                let Some(info) = registered.iter().find(|i| i.schema_version == file.version)
                else {
                    let activate = activate
                        && Some(file.version) == newest_new
                        && newest_registered.is_none_or(|newest| file.version > newest);
                    new_files.push((file, activate));
                    continue;
                };
                let kind = if info.deleted_at.is_some() {
                    Some(DriftKind::FileForDeletedVersion)
                } else {
                    let stored = self.get(schema_id, Some(file.version), true).await?;
                    let stored_migration = stored
                        .migration
                        .as_ref()
                        .and_then(|m| Some((m.from, m.operations.as_ref()?)));
                    let file_migration = file.migration.as_ref().map(|m| (m.from, &m.operations));
                    if stored.definition != file.definition {
                        Some(DriftKind::DefinitionDiffers)
                    } else if file_migration.is_some() && file_migration != stored_migration {
                        Some(DriftKind::MigrationDiffers)
                    } else {
                        None
                    }
                };
                match kind {
                    Some(kind) => plan.drift.push(Drift {
                        schema_id: schema_id.clone(),
                        version: file.version,
                        kind,
                        path: file.path.clone(),
                    }),
                    None => plan.unchanged += 1,
                }
            }
        }
        plan.new = self.rehearse(&referenced_first(new_files)).await?;
        Ok(plan)
    }

    /// Registers what [`plan`](Self::plan) shows, all or nothing: refused with
    /// [`Error::NotAllowed`] when the plan has drift or a version registration would refuse;
    /// otherwise every new version is registered in one transaction. Path indexes of versions
    /// that become active are built first (without blocking writers), as
    /// [`register`](Self::register) does.
    pub async fn apply(&self, files: &[SchemaFile], activate: bool) -> Result<Vec<SchemaVersion>> {
        let plan = self.plan(files, activate).await?;
        if plan.is_blocked() {
            let mut reasons: Vec<String> = plan
                .drift
                .iter()
                .map(|d| format!("{} {}: {:?}", d.schema_id, d.version, d.kind))
                .collect();
            reasons.extend(plan.new.iter().filter_map(|v| {
                v.problem
                    .as_ref()
                    .map(|p| format!("{} {}: {p}", v.schema_id, v.version))
            }));
            return Err(Error::NotAllowed(format!(
                "the plan cannot be applied, nothing was registered: {}",
                reasons.join("; ")
            )));
        }
        let compiled = plan
            .new
            .iter()
            .map(|v| {
                let (schema, migration) = self.compile(files, v)?;
                Ok((v, schema, migration))
            })
            .collect::<Result<Vec<_>>>()?;
        let fresh = self
            .fresh(compiled.iter().map(|(v, _, _)| &v.schema_id))
            .await?;
        let mut prebuilt = Vec::new();
        let mut applied = Ok(());
        for (planned, schema, _) in &compiled {
            if planned.activate && !fresh.contains(&planned.schema_id) {
                prebuilt.push(planned.schema_id.clone());
                applied = PathIndexes::new(self.service, &planned.schema_id)
                    .build(schema)
                    .await;
                if applied.is_err() {
                    break;
                }
            }
        }
        let applied = match applied {
            Ok(()) => self.register_all(&compiled, &fresh).await,
            Err(err) => Err(err),
        };
        // Refused: drop what was built for it. Registered: drop what the old versions wanted.
        for schema_id in &prebuilt {
            PathIndexes::new(self.service, schema_id)
                .drop_unwanted()
                .await?;
        }
        applied
    }

    /// The schema ids among `ids` that have no entity table yet.
    async fn fresh(&self, ids: impl Iterator<Item = &SchemaId>) -> Result<BTreeSet<SchemaId>> {
        let mut fresh = BTreeSet::new();
        for schema_id in ids {
            if !fresh.contains(schema_id)
                && !PathIndexes::new(self.service, schema_id)
                    .table_exists()
                    .await?
            {
                fresh.insert(schema_id.clone());
            }
        }
        Ok(fresh)
    }

    async fn register_all(
        &self,
        compiled: &[(
            &PlannedVersion,
            Arc<CompiledSchema>,
            Option<SchemaMigration>,
        )],
        fresh: &BTreeSet<SchemaId>,
    ) -> Result<Vec<SchemaVersion>> {
        let mut client = self.service.client().await?;
        let tx = client.transaction().await?;
        let mut registered = Vec::with_capacity(compiled.len());
        for (planned, schema, migration) in compiled {
            registered.push(
                self.register_in(
                    &tx,
                    &planned.schema_id,
                    planned.version,
                    schema.definition().clone(),
                    migration.as_ref(),
                    planned.activate,
                    schema,
                    fresh.contains(&planned.schema_id),
                )
                .await?,
            );
        }
        tx.commit().await?;
        self.service.store.forget_active(&self.service.name);
        for (planned, schema, _) in compiled {
            self.cache(&planned.schema_id, planned.version, schema);
        }
        Ok(registered)
    }

    /// Registers the new versions in a transaction that is rolled back, each under a savepoint,
    /// to learn what registration would say of each.
    async fn rehearse(&self, new: &[(&SchemaFile, bool)]) -> Result<Vec<PlannedVersion>> {
        // Index builds on existing tables are left to `apply`, which builds them concurrently.
        let fresh = self.fresh(new.iter().map(|(f, _)| &f.schema_id)).await?;
        let mut client = self.service.client().await?;
        let mut tx = client.transaction().await?;
        let mut planned = Vec::with_capacity(new.len());
        for &(file, activate) in new {
            let savepoint = tx.savepoint("vellum_plan").await?;
            let outcome =
                match CompiledSchema::compile(&file.definition, self.service.store.schema_limits())
                {
                    Ok(schema) => {
                        let migration = file.migration.clone().map(SchemaMigration::Operations);
                        self.register_in(
                            &savepoint,
                            &file.schema_id,
                            file.version,
                            file.definition.clone(),
                            migration.as_ref(),
                            activate,
                            &Arc::new(schema),
                            fresh.contains(&file.schema_id),
                        )
                        .await
                    }
                    Err(err) => Err(err.into()),
                };
            let (assessment, problem) = match outcome {
                Ok(registered) => {
                    savepoint.commit().await?;
                    (registered.assessment, None)
                }
                Err(Error::Database(err)) => return Err(Error::Database(err)),
                Err(err) => {
                    savepoint.rollback().await?;
                    (None, Some(err.to_string()))
                }
            };
            planned.push(PlannedVersion {
                schema_id: file.schema_id.clone(),
                version: file.version,
                activate,
                assessment,
                problem,
                path: file.path.clone(),
            });
        }
        tx.rollback().await?;
        Ok(planned)
    }

    fn compile(
        &self,
        files: &[SchemaFile],
        planned: &PlannedVersion,
    ) -> Result<(Arc<CompiledSchema>, Option<SchemaMigration>)> {
        let file = files
            .iter()
            .find(|f| f.schema_id == planned.schema_id && f.version == planned.version)
            .expect("planned versions come from the files");
        let compiled =
            CompiledSchema::compile(&file.definition, self.service.store.schema_limits())?;
        Ok((
            Arc::new(compiled),
            file.migration.clone().map(SchemaMigration::Operations),
        ))
    }
}

/// The new versions in registration order: by schema id and version, except that a schema id
/// comes after the schema ids its versions reference (`x-vellum-ref`), which must be
/// registered first.
fn referenced_first(new: Vec<(&SchemaFile, bool)>) -> Vec<(&SchemaFile, bool)> {
    let mut by_id: BTreeMap<&SchemaId, Vec<(&SchemaFile, bool)>> = BTreeMap::new();
    for entry in new {
        by_id.entry(&entry.0.schema_id).or_default().push(entry);
    }
    let targets = |files: &[(&SchemaFile, bool)]| -> BTreeSet<SchemaId> {
        files
            .iter()
            .flat_map(|(file, _)| references(&file.definition))
            .collect()
    };
    let mut ordered = Vec::new();
    let mut placed: BTreeSet<SchemaId> = BTreeSet::new();
    while !by_id.is_empty() {
        let ready = by_id
            .iter()
            .find(|(id, files)| {
                targets(files)
                    .iter()
                    .all(|t| t == **id || placed.contains(t) || !by_id.contains_key(t))
            })
            .map(|(id, _)| (*id).clone())
            // A cycle of new schema ids: registration will say what is missing.
            .unwrap_or_else(|| (*by_id.keys().next().expect("not empty")).clone());
        let files = by_id.remove(&ready).expect("found above");
        ordered.extend(files);
        placed.insert(ready);
    }
    ordered
}

/// The schema ids a definition references, read as registration reads them.
fn references(definition: &Value) -> Vec<SchemaId> {
    CompiledSchema::compile(definition, &Default::default())
        .map(|schema| {
            schema
                .annotations()
                .references
                .iter()
                .map(|r| r.target.clone())
                .collect()
        })
        .unwrap_or_default()
}
