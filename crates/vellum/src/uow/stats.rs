//! Counters of what units of work did, per store: for metrics, never part of a transaction.

use std::{
    sync::atomic::{AtomicU64, Ordering::Relaxed},
    time::Duration,
};

use serde::Serialize;

use crate::{Error, Store};

/// What the units of work of a store have done since it was opened; see [`Store::uow_stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct UowStats {
    /// Units of work committed.
    pub commits: u64,
    /// Units of work that hit a version conflict (staging or commit).
    pub conflicts: u64,
    /// Writes refused because the document did not match its schema.
    pub validation_failures: u64,
    /// Events written to outboxes by committed units of work.
    pub events: u64,
    /// Time units of work (imports included) spent checking documents against their schemas
    /// and reading the references they name, valid or not; looking the compiled schema up is
    /// not counted.
    pub validation_time: Duration,
}

#[derive(Debug, Default)]
pub(crate) struct UowCounters {
    commits: AtomicU64,
    conflicts: AtomicU64,
    validation_failures: AtomicU64,
    events: AtomicU64,
    validation_nanos: AtomicU64,
}

impl UowCounters {
    pub(crate) fn committed(&self, events: usize) {
        self.commits.fetch_add(1, Relaxed);
        self.events.fetch_add(events as u64, Relaxed);
    }

    pub(crate) fn failed(&self, err: &Error) {
        match err {
            Error::VersionConflict { .. } => self.conflicts.fetch_add(1, Relaxed),
            Error::Validation { .. } => self.validation_failures.fetch_add(1, Relaxed),
            _ => return,
        };
    }

    /// A document was checked against its schema in `elapsed`.
    pub(crate) fn validated(&self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.validation_nanos.fetch_add(nanos, Relaxed);
    }

    fn snapshot(&self) -> UowStats {
        UowStats {
            commits: self.commits.load(Relaxed),
            conflicts: self.conflicts.load(Relaxed),
            validation_failures: self.validation_failures.load(Relaxed),
            events: self.events.load(Relaxed),
            validation_time: Duration::from_nanos(self.validation_nanos.load(Relaxed)),
        }
    }
}

impl Store {
    /// What the units of work of this store (all its clones) have done since it was opened.
    pub fn uow_stats(&self) -> UowStats {
        self.counters().snapshot()
    }
}
