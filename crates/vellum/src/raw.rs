//! The raw-SQL escape hatch of a unit of work.

use tokio_postgres::{Row, types::ToSql};

use crate::{Result, UnitOfWork};

/// Raw SQL inside a unit of work's transaction; see [`UnitOfWork::raw`].
///
/// Values are always bound parameters (`$1`, `$2`…). Statements run under the service's role,
/// so they reach only the service's own tables, and the database's immutability triggers refuse
/// any change to stored history ([`crate::Error::Immutable`]). Raw statements run when called,
/// while the unit of work's staged writes are flushed at commit: they do not see each other
/// until then. A failing statement fails the unit of work.
#[derive(Debug)]
pub struct RawSql<'a> {
    uow: &'a mut UnitOfWork,
}

impl<'a> RawSql<'a> {
    pub(crate) fn new(uow: &'a mut UnitOfWork) -> Self {
        Self { uow }
    }

    /// Runs a statement and returns its rows.
    pub async fn query(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        self.uow.raw_query(sql, params).await
    }

    /// Runs a statement that returns no rows (or whose rows are not needed).
    pub async fn execute(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<()> {
        self.uow.raw_query(sql, params).await.map(drop)
    }
}
