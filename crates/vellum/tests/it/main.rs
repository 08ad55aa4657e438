//! Integration tests of the vellum library against a real PostgreSQL.

mod embedded;
mod entities;
mod fixtures;
mod registry;
mod support;
mod time_travel;
mod unit_of_work;
