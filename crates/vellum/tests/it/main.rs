//! Integration tests of the vellum library against a real PostgreSQL.

mod compatibility;
mod embedded;
mod entities;
mod fixtures;
mod health;
mod indexes;
mod migrations;
mod queries;
mod queries_hostile;
mod references;
mod registry;
mod services;
mod statement_timeout;
#[allow(dead_code, reason = "shared with the CLI tests, which use other parts")]
mod support;
mod time_travel;
mod tokens;
mod unit_of_work;
