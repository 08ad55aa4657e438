//! Each command as a call on the library.

use std::{
    io::{Read, Write},
    path::Path,
};

use anyhow::Context;
use serde::Serialize;
use serde_json::{Value, json};
use vellum::{
    ClusterStatus, EmbeddedCluster, Migration, SchemaId, Service, ServiceName, Store, StoreOptions,
    Version, WriteOptions, query::Query,
};

use crate::args::{
    Cli, Command, DbCommand, EntityCommand, MigrateCommand, QueryArgs, SchemaCommand,
    ServiceCommand,
};

/// Runs a parsed command line and prints its result as JSON on stdout.
pub(crate) async fn run(cli: Cli) -> anyhow::Result<()> {
    let output = match cli.command {
        Command::Db(command) => {
            db(
                &EmbeddedCluster::new(&cli.data_dir),
                command,
                cli.database_url.is_some(),
            )
            .await?
        }
        Command::Serve(args) => {
            let mut options = StoreOptions::default();
            options.pool_size = args.pool_size as usize;
            options.statement_timeout =
                Some(std::time::Duration::from_millis(args.statement_timeout));
            let store = open(cli.database_url.as_deref(), &cli.data_dir, options).await?;
            return crate::serve::serve(store, &cli.data_dir, args).await;
        }
        Command::Relay(args) => {
            let store = open(
                cli.database_url.as_deref(),
                &cli.data_dir,
                StoreOptions::default(),
            )
            .await?;
            return crate::relay::relay(store, args).await;
        }
        Command::Bench(args) => {
            return crate::bench::bench(cli.database_url.as_deref(), &cli.data_dir, args).await;
        }
        command => {
            let store = open(
                cli.database_url.as_deref(),
                &cli.data_dir,
                StoreOptions::default(),
            )
            .await?;
            let output = match command {
                Command::Service(command) => service(&store, command).await?,
                Command::Schema(SchemaCommand::Check {
                    service,
                    schema_id,
                    version,
                    file,
                    migration,
                }) => {
                    let definition = read_json(&file)?;
                    let migration = migration.as_deref().map(read_migration).transpose()?;
                    let service = open_service(&store, &service).await?;
                    return check(&service, &schema_id, version, &definition, migration).await;
                }
                Command::Schema(SchemaCommand::Plan(args)) => {
                    let files = vellum::read_schema_files(&args.dir)?;
                    let service = open_service(&store, &args.service).await?;
                    let plan = service.schemas().plan(&files, !args.no_activate).await?;
                    println!("{}", serde_json::to_string_pretty(&plan)?);
                    return if plan.is_blocked() {
                        Err(crate::CheckRefused::Plan.into())
                    } else {
                        Ok(())
                    };
                }
                Command::Schema(command) => schema(&store, command).await?,
                Command::Entity(EntityCommand::Query(args)) => match query(&store, args).await? {
                    Some(page) => page,
                    None => return Ok(()),
                },
                Command::Entity(command) => entity(&store, command).await?,
                Command::Migrate(MigrateCommand::Run {
                    service,
                    schema_id,
                    to,
                    chunk_size,
                    dry_run,
                    actor,
                }) => {
                    let service = open_service(&store, &service).await?;
                    let mut options = vellum::MigrationJobOptions::default();
                    (options.chunk_size, options.dry_run, options.actor) =
                        (chunk_size, dry_run, actor);
                    let report = crate::migrate::run(&service, &schema_id, to, options).await?;
                    println!("{}", serde_json::to_string_pretty(&report)?);
                    return if report.failed > 0 {
                        Err(crate::CheckRefused::Migration(report.failed).into())
                    } else {
                        Ok(())
                    };
                }
                Command::Db(_) | Command::Serve(_) | Command::Bench(_) | Command::Relay(_) => {
                    unreachable!("handled above")
                }
            };
            drop(store);
            output
        }
    };
    println!("{}", serde_json::to_string_pretty(&output)?);
    Ok(())
}

async fn open(
    database_url: Option<&str>,
    data_dir: &Path,
    options: StoreOptions,
) -> anyhow::Result<Store> {
    Ok(match database_url {
        Some(url) => {
            let config = url
                .parse()
                .context("--database-url / DATABASE_URL is not a valid PostgreSQL URL")?;
            Store::connect(config, options).await?
        }
        None => {
            let cluster = EmbeddedCluster::new(data_dir).start().await?;
            Store::open_embedded(cluster, options).await?
        }
    })
}

async fn db(cluster: &EmbeddedCluster, command: DbCommand, has_url: bool) -> anyhow::Result<Value> {
    if has_url {
        anyhow::bail!(
            "`vellum db` manages the embedded cluster; it does not apply with --database-url"
        );
    }
    let data_dir = cluster.data_dir().display().to_string();
    Ok(match command {
        DbCommand::Start => {
            let running = cluster.start_detached().await?;
            json!({"status": "running", "data_dir": data_dir, "socket_dir": cluster.socket_dir(),
                   "started": running.started_here()})
        }
        DbCommand::Stop => {
            json!({"status": "stopped", "data_dir": data_dir, "stopped": cluster.stop().await?})
        }
        DbCommand::Status => match cluster.status().await? {
            ClusterStatus::NotInitialized => {
                json!({"status": "not_initialized", "data_dir": data_dir})
            }
            ClusterStatus::Stopped => json!({"status": "stopped", "data_dir": data_dir}),
            ClusterStatus::Running { pid } => json!({"status": "running", "data_dir": data_dir,
                                                     "socket_dir": cluster.socket_dir(), "pid": pid}),
        },
    })
}

async fn service(store: &Store, command: ServiceCommand) -> anyhow::Result<Value> {
    Ok(match command {
        ServiceCommand::Create { name } => to_json(store.create_service(&name).await?)?,
        ServiceCommand::List => to_json(store.services().await?)?,
        ServiceCommand::Events {
            name,
            change_events,
        } => {
            let service = open_service(store, &name).await?;
            if let Some(on) = change_events {
                service.set_change_events(on).await?;
            }
            json!({"service": name, "change_events": service.change_events().await?})
        }
    })
}

async fn schema(store: &Store, command: SchemaCommand) -> anyhow::Result<Value> {
    Ok(match command {
        SchemaCommand::Register {
            service,
            schema_id,
            version,
            file,
            migration,
            activate,
        } => {
            let definition = read_json(&file)?;
            let migration = migration.as_deref().map(read_migration).transpose()?;
            let service = open_service(store, &service).await?;
            let registry = service.schemas();
            to_json(match migration {
                Some(migration) => {
                    registry
                        .register_with_migration(
                            &schema_id, version, definition, migration, activate,
                        )
                        .await?
                }
                None => {
                    registry
                        .register(&schema_id, version, definition, activate)
                        .await?
                }
            })?
        }
        SchemaCommand::Migrations { service, schema_id } => to_json(
            open_service(store, &service)
                .await?
                .schemas()
                .migrations(&schema_id)
                .await?,
        )?,
        SchemaCommand::List { service } => to_json(
            open_service(store, &service)
                .await?
                .schemas()
                .list()
                .await?,
        )?,
        SchemaCommand::Versions { service, schema_id } => to_json(
            open_service(store, &service)
                .await?
                .schemas()
                .versions(&schema_id)
                .await?,
        )?,
        SchemaCommand::Show {
            service,
            schema_id,
            version,
            include_deleted,
        } => {
            let service = open_service(store, &service).await?;
            to_json(
                service
                    .schemas()
                    .get(&schema_id, version, include_deleted)
                    .await?,
            )?
        }
        SchemaCommand::Check { .. } | SchemaCommand::Plan(_) => {
            unreachable!("handled by check() and plan()")
        }
        SchemaCommand::Apply(args) => {
            let files = vellum::read_schema_files(&args.dir)?;
            let service = open_service(store, &args.service).await?;
            let registered = service.schemas().apply(&files, !args.no_activate).await?;
            json!({"registered": registered})
        }
        SchemaCommand::Compatibility {
            service,
            schema_id,
            mode,
        } => {
            let service = open_service(store, &service).await?;
            let registry = service.schemas();
            let mode = match mode {
                Some(mode) => {
                    registry.set_compatibility(&schema_id, mode).await?;
                    mode
                }
                None => registry.compatibility(&schema_id).await?,
            };
            json!({"schema_id": schema_id, "mode": mode})
        }
        SchemaCommand::Activate(args) => {
            let service = open_service(store, &args.service).await?;
            to_json(
                service
                    .schemas()
                    .activate(&args.schema_id, args.version)
                    .await?,
            )?
        }
        SchemaCommand::Delete(args) => {
            let service = open_service(store, &args.service).await?;
            to_json(
                service
                    .schemas()
                    .delete(&args.schema_id, args.version)
                    .await?,
            )?
        }
    })
}

async fn entity(store: &Store, command: EntityCommand) -> anyhow::Result<Value> {
    Ok(match command {
        EntityCommand::Create {
            service,
            schema_id,
            file,
            id,
            schema_version,
            actor,
        } => {
            let payload = read_json(&file)?;
            let service = open_service(store, &service).await?;
            let mut options = WriteOptions::default();
            (options.entity_id, options.schema_version) = (id, schema_version);
            let mut uow = service.begin(actor.actor).await?;
            uow.create(&schema_id, payload, options).await?;
            to_json(single(uow.commit().await?))?
        }
        EntityCommand::Get {
            entity,
            version,
            as_of,
            schema_version,
        } => {
            let service = open_service(store, &entity.service).await?;
            let found = match (version, as_of) {
                (Some(version), _) => {
                    service
                        .get_version(&entity.schema_id, entity.id, &version)
                        .await?
                }
                (None, Some(as_of)) => {
                    service
                        .get_as_of(&entity.schema_id, entity.id, as_of.to_utc())
                        .await?
                }
                (None, None) => service.get(&entity.schema_id, entity.id).await?,
            };
            match schema_version {
                Some(schema_version) => to_json(service.present_as(found, schema_version).await?)?,
                None => to_json(found)?,
            }
        }
        EntityCommand::Update {
            entity,
            file,
            expect,
            schema_version,
            actor,
        } => {
            let payload = read_json(&file)?;
            let service = open_service(store, &entity.service).await?;
            let mut options = WriteOptions::default();
            (options.expected_version, options.schema_version) = (expect, schema_version);
            let mut uow = service.begin(actor.actor).await?;
            uow.update(&entity.schema_id, entity.id, payload, options)
                .await?;
            to_json(single(uow.commit().await?))?
        }
        EntityCommand::Delete {
            entity,
            expect,
            actor,
        } => {
            let service = open_service(store, &entity.service).await?;
            let mut uow = service.begin(actor.actor).await?;
            uow.delete(&entity.schema_id, entity.id, expect).await?;
            to_json(single(uow.commit().await?))?
        }
        EntityCommand::Undelete { entity, actor } => {
            let service = open_service(store, &entity.service).await?;
            let mut uow = service.begin(actor.actor).await?;
            uow.undelete(&entity.schema_id, entity.id).await?;
            to_json(single(uow.commit().await?))?
        }
        EntityCommand::History { entity } => {
            let service = open_service(store, &entity.service).await?;
            to_json(service.history(&entity.schema_id, entity.id).await?)?
        }
        EntityCommand::Query(_) => unreachable!("handled by query()"),
        EntityCommand::Import {
            service,
            schema_id,
            file,
            actor,
        } => {
            let service = open_service(store, &service).await?;
            to_json(crate::import::import(&service, &schema_id, &file, actor.actor).await?)?
        }
    })
}

/// `vellum schema check`: prints the report whatever it says, and fails (exit code 4 or 5) when
/// the candidate would be refused or would refuse current documents, so it can gate a CI job.
async fn check(
    service: &Service,
    schema_id: &SchemaId,
    version: Version,
    definition: &Value,
    migration: Option<Migration>,
) -> anyhow::Result<()> {
    let report = service
        .schemas()
        .check_with_migration(schema_id, version, definition, migration.map(Into::into))
        .await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    match crate::CheckRefused::from_report(&report) {
        Some(refused) => Err(refused.into()),
        None => Ok(()),
    }
}

/// `vellum entity query`: one page as JSON, or with `--all` every entity as a JSON line
/// (printed here, page by page, so memory stays flat; `None` then).
async fn query(store: &Store, args: QueryArgs) -> anyhow::Result<Option<Value>> {
    let parse = |what: &str, text: Option<String>| -> anyhow::Result<Option<Value>> {
        text.map(|text| {
            serde_json::from_str(&text).with_context(|| format!("--{what} is not JSON"))
        })
        .transpose()
    };
    let mut body = serde_json::Map::new();
    for (key, value) in [
        ("filter", parse("filter", args.filter)?),
        ("order", parse("order", args.order)?),
        ("limit", args.limit.map(Value::from)),
        ("cursor", args.cursor.map(Value::from)),
        ("as_of", args.as_of.map(|t| Value::from(t.to_rfc3339()))),
        ("ids", (!args.ids.is_empty()).then(|| json!(args.ids))),
        (
            "include_deleted",
            args.include_deleted.then_some(Value::Bool(true)),
        ),
    ] {
        if let Some(value) = value {
            body.insert(key.into(), value);
        }
    }
    let mut query: Query =
        serde_json::from_value(Value::Object(body)).map_err(|err| vellum::Error::InvalidQuery {
            pointer: String::new(),
            message: err.to_string(),
        })?;
    let service = open_service(store, &args.service).await?;
    if !args.all {
        return Ok(Some(to_json(
            service.query(&args.schema_id, &query).await?,
        )?));
    }
    let mut stdout = std::io::stdout().lock();
    loop {
        let page = service.query(&args.schema_id, &query).await?;
        for entity in &page.items {
            serde_json::to_writer(&mut stdout, entity)?;
            writeln!(stdout)?;
        }
        match page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => return Ok(None),
        }
    }
}

async fn open_service(store: &Store, name: &ServiceName) -> anyhow::Result<Service> {
    Ok(store.service(name).await?)
}

/// The one entity a single-write command committed.
fn single(committed: vellum::Committed) -> vellum::Entity {
    committed
        .entities
        .into_iter()
        .next()
        .expect("a single-write unit of work commits one entity")
}

fn to_json(value: impl Serialize) -> anyhow::Result<Value> {
    Ok(serde_json::to_value(value)?)
}

/// Reads a migration (`{"from", "operations"}`) from a JSON file, or standard input for `-`.
fn read_migration(path: &Path) -> anyhow::Result<Migration> {
    serde_json::from_value(read_json(path)?)
        .with_context(|| format!("{} is not a migration", path.display()))
}

/// Reads a JSON document from a file, or from standard input for `-`.
fn read_json(path: &Path) -> anyhow::Result<Value> {
    let (text, source) = if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading standard input")?;
        (text, "standard input".to_string())
    } else {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        (text, path.display().to_string())
    };
    serde_json::from_str(&text).with_context(|| format!("{source} is not valid JSON"))
}
