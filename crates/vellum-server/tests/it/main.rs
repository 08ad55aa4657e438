//! The HTTP API against a real PostgreSQL: requests through the router, and over a socket.

#[path = "../../../vellum/tests/it/support.rs"]
#[allow(
    dead_code,
    reason = "shared with the library's tests, which use other parts"
)]
mod support;

mod api;
mod auth;
mod bad_input;
mod entities;
mod migrations;
mod openapi;
mod query;
mod schemas;
mod socket;
mod transactions;
