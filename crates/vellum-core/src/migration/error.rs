//! The error of a migration operation.

use std::fmt;

/// An operation that is not well formed, or that cannot be applied to a document.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrationError {
    /// The index of the operation in the migration, from 0.
    pub operation: usize,
    /// Its `op`: `rename`, `add`, `remove`, `set`, `cast` or `map`.
    pub op: &'static str,
    /// The path of the operation (for a rename, its `from`).
    pub pointer: String,
    /// What is wrong, for people.
    pub message: String,
}

impl MigrationError {
    pub(crate) fn new(
        operation: usize,
        op: &'static str,
        pointer: String,
        message: impl Into<String>,
    ) -> Self {
        MigrationError {
            operation,
            op,
            pointer,
            message: message.into(),
        }
    }
}

impl fmt::Display for MigrationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "operation {} ({} {}): {}",
            self.operation, self.op, self.pointer, self.message
        )
    }
}

impl std::error::Error for MigrationError {}
