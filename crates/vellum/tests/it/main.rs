//! Integration tests of the vellum library against a real PostgreSQL.

mod cancellation;
mod compatibility;
mod embedded;
mod entities;
mod events;
mod fixtures;
mod health;
mod import;
mod indexes;
mod known_versions;
mod migration_job;
mod migrations;
mod nats;
mod queries;
mod queries_hostile;
mod references;
mod registry;
mod relay;
mod schema_cache;
mod schema_files;
mod services;
mod statement_timeout;
#[allow(dead_code, reason = "shared with the CLI tests, which use other parts")]
mod support;
mod time_travel;
mod tokens;
mod typed;
mod unit_of_work;
mod wallet;
