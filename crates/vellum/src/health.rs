//! What probes and metrics ask of a store: the state of its connection pool, and whether the
//! database answers.

use serde::Serialize;

use crate::{Result, Store};

/// The state of a store's connection pool at one moment; see [`Store::pool_status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PoolStatus {
    /// The most connections the pool opens ([`StoreOptions::pool_size`](crate::StoreOptions)).
    pub max_size: usize,
    /// Connections open now, idle or in use.
    pub size: usize,
    /// Idle connections ready to be taken.
    pub available: usize,
    /// Callers waiting for a connection.
    pub waiting: usize,
}

impl Store {
    /// The state of the connection pool, without touching the database: for metrics.
    pub fn pool_status(&self) -> PoolStatus {
        let status = self.pool().status();
        PoolStatus {
            max_size: status.max_size,
            size: status.size,
            available: status.available,
            waiting: status.waiting,
        }
    }

    /// Takes a connection from the pool and runs `SELECT 1`: for a readiness probe. Fails with
    /// [`Error::Pool`](crate::Error::Pool) when no connection can be had, or
    /// [`Error::Database`](crate::Error::Database) when the database does not answer.
    pub async fn ping(&self) -> Result<()> {
        let client = self.client().await?;
        client.simple_query("SELECT 1").await?;
        Ok(())
    }
}
