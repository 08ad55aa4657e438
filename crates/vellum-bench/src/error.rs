//! The one error type of the harness.

/// Why a benchmark run stopped. Any failed operation stops the run: numbers measured around
/// failures would not mean anything.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The options ask for something the harness cannot do.
    #[error("{0}")]
    Options(String),
    /// A vellum call failed.
    #[error("vellum")]
    Vellum(#[from] vellum::Error),
    /// A statement of the baseline, the setup or the cleanup failed.
    #[error("PostgreSQL")]
    Postgres(#[from] tokio_postgres::Error),
    /// The baseline's connection pool failed.
    #[error("baseline connection pool")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// The in-process HTTP server or the load generator failed, or a request was refused.
    #[error("HTTP: {0}")]
    Http(String),
    /// A socket or the clock of the process could not be read.
    #[error("I/O")]
    Io(#[from] std::io::Error),
    /// An operation returned something other than what the workload set up, so the two sides
    /// would not be doing the same work.
    #[error("unexpected result: {0}")]
    Check(String),
}

/// `Result` with the harness's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
