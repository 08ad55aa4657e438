//! Integration tests of the vellum library against a real PostgreSQL.

mod embedded;
mod entities;
mod fixtures;
mod registry;
#[allow(dead_code, reason = "shared with the CLI tests, which use other parts")]
mod support;
mod time_travel;
mod unit_of_work;
