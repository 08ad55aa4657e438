//! The outbox feed: committed events in position order, which is commit order.
//!
//! Outbox positions are drawn in commit order (see `sql/0005_outbox.sql`): a transaction
//! draws its positions under a per-outbox lock that it holds until it ends. No transaction in
//! flight ever holds a position below a committed one, so a reader that resumes after the last
//! position it saw never skips an event that commits late: a later position cannot commit
//! before it.

use serde::Serialize;
use tokio_postgres::{Row, types::ToSql};
use uuid::Uuid;

use super::OutboxEvent;
use crate::{Error, Result, Service};

/// The most events one feed read returns.
pub const FEED_MAX_LIMIT: usize = 1000;

/// Where a feed reader stands: just after the event at this position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct FeedCursor {
    pub(crate) position: i64,
}

impl FeedCursor {
    /// Before the first event.
    pub const START: FeedCursor = FeedCursor { position: 0 };

    /// Just after the event at `position` (the position of the last event processed).
    pub fn after(position: i64) -> Result<FeedCursor> {
        if position < 0 {
            return Err(Error::NotAllowed(format!(
                "a feed position is 0 or more, not {position}"
            )));
        }
        Ok(FeedCursor { position })
    }

    /// The position of the last event delivered (0 at the start).
    pub fn position(&self) -> i64 {
        self.position
    }
}

/// The columns every outbox read selects, in the order [`event_from_row`] reads them.
const EVENT_COLUMNS: &str = "o.position, o.event_id, o.uow_id, o.aggregate_type, o.aggregate_id, \
     o.aggregate_version, o.event_type, o.payload, o.created_at";

fn event_from_row(row: &Row) -> Result<OutboxEvent> {
    Ok(OutboxEvent {
        position: row.try_get(0)?,
        event_id: row.try_get(1)?,
        uow_id: row.try_get(2)?,
        aggregate_type: row.try_get(3)?,
        aggregate_id: row.try_get(4)?,
        aggregate_version: row.try_get(5)?,
        event_type: row.try_get(6)?,
        data: row.try_get(7)?,
        created_at: row.try_get(8)?,
    })
}

impl Service {
    /// Up to `limit` (1 to [`FEED_MAX_LIMIT`]) committed events after `after`, in position
    /// (commit) order. An empty answer means nothing more has committed; read again later, or
    /// use [`Service::subscribe`], which waits for new events.
    pub async fn events_after(&self, after: FeedCursor, limit: usize) -> Result<Vec<OutboxEvent>> {
        let limit = limit.clamp(1, FEED_MAX_LIMIT) as i64;
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM {} o WHERE o.position > $1 ORDER BY o.position LIMIT $2",
            self.idents.fixed("outbox")
        );
        let rows = self.read_outbox(&sql, &[&after.position, &limit]).await?;
        rows.iter().map(event_from_row).collect()
    }

    /// The committed event with this id.
    pub async fn event(&self, event_id: Uuid) -> Result<OutboxEvent> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM {} o WHERE o.event_id = $1",
            self.idents.fixed("outbox")
        );
        let rows = self.read_outbox(&sql, &[&event_id]).await?;
        rows.first()
            .map(event_from_row)
            .transpose()?
            .ok_or_else(|| Error::NotFound {
                what: format!("event {event_id}"),
            })
    }

    /// One read-only statement on the outbox under the service role, pipelined with its
    /// `BEGIN` and `COMMIT`.
    async fn read_outbox(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(sql).await?;
        let begin = self.begin_sql("BEGIN READ ONLY");
        let (begun, rows, committed) = tokio::join!(
            client.batch_execute(&begin),
            client.query(&stmt, params),
            client.batch_execute("COMMIT"),
        );
        begun?;
        let rows = rows?;
        committed?;
        Ok(rows)
    }
}
