//! The gap-safe outbox feed: committed events in commit-horizon order.
//!
//! Outbox positions are assigned before commit, so they commit out of order: a transaction
//! holding position 7 may commit after one holding position 8. The feed therefore reads only
//! events whose transaction id is below `pg_snapshot_xmin(pg_current_snapshot())`: every such
//! transaction has ended, so what is visible there is final, and a transaction still in flight,
//! or one that starts later, always has a larger id. It delivers them ordered by
//! `(txid, position)` and resumes after the `(txid, position)` of the last delivered event.

use serde::Serialize;
use tokio_postgres::{Row, types::ToSql};
use uuid::Uuid;

use super::OutboxEvent;
use crate::{Error, Result, Service};

/// The most events one feed read returns.
pub const FEED_MAX_LIMIT: usize = 1000;

/// Where a feed reader stands: just after the event with this transaction id and position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct FeedCursor {
    pub(crate) txid: u64,
    pub(crate) position: i64,
}

impl FeedCursor {
    /// Before the first event.
    pub const START: FeedCursor = FeedCursor {
        txid: 0,
        position: 0,
    };

    /// The position of the last event delivered (0 at the start).
    pub fn position(&self) -> i64 {
        self.position
    }
}

/// The columns every outbox read selects, in the order [`event_from_row`] reads them.
const EVENT_COLUMNS: &str = "o.position, o.event_id, o.uow_id, o.txid::text, o.aggregate_type, \
     o.aggregate_id, o.aggregate_version, o.event_type, o.payload, o.created_at";

pub(crate) fn event_from_row(row: &Row) -> Result<OutboxEvent> {
    let txid: String = row.try_get(3)?;
    Ok(OutboxEvent {
        position: row.try_get(0)?,
        event_id: row.try_get(1)?,
        uow_id: row.try_get(2)?,
        txid: txid
            .parse()
            .map_err(|_| Error::Corrupt(format!("outbox txid {txid:?}")))?,
        aggregate_type: row.try_get(4)?,
        aggregate_id: row.try_get(5)?,
        aggregate_version: row.try_get(6)?,
        event_type: row.try_get(7)?,
        data: row.try_get(8)?,
        created_at: row.try_get(9)?,
    })
}

/// One read of the feed: the events, and whether events above the horizon (in transactions
/// still in flight, or committed after an older one still in flight) are waiting.
pub(crate) struct FeedPage {
    pub(crate) events: Vec<OutboxEvent>,
    pub(crate) pending: bool,
}

impl Service {
    /// Up to `limit` (at most [`FEED_MAX_LIMIT`]) committed events after `after`, in feed
    /// order. An empty answer means nothing more is final yet; read again later (or use
    /// [`Service::subscribe`], which waits for new events).
    pub async fn events_after(&self, after: FeedCursor, limit: usize) -> Result<Vec<OutboxEvent>> {
        Ok(self.feed_page(after, limit).await?.events)
    }

    /// The cursor just after the event at `position`, to resume a feed from a position a
    /// consumer stored; [`Error::NotFound`] if no committed event has it.
    pub async fn event_cursor(&self, position: i64) -> Result<FeedCursor> {
        if position == 0 {
            return Ok(FeedCursor::START);
        }
        let sql = format!(
            "SELECT o.txid::text FROM {} o WHERE o.position = $1",
            self.idents.fixed("outbox")
        );
        let rows = self.read_outbox(&sql, &[&position]).await?;
        let txid: String = rows
            .first()
            .ok_or_else(|| Error::NotFound {
                what: format!("event at position {position}"),
            })?
            .try_get(0)?;
        Ok(FeedCursor {
            txid: txid
                .parse()
                .map_err(|_| Error::Corrupt(format!("outbox txid {txid:?}")))?,
            position,
        })
    }

    /// The event with this id, if it was committed.
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

    pub(crate) async fn feed_page(&self, after: FeedCursor, limit: usize) -> Result<FeedPage> {
        let limit = limit.clamp(1, FEED_MAX_LIMIT) as i64;
        // One statement, one snapshot: the rows and the pending flag agree on the horizon.
        let sql = format!(
            "WITH horizon AS MATERIALIZED (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin)
             SELECT {EVENT_COLUMNS}, false AS pending FROM (
                 SELECT o.* FROM {outbox} o, horizon h
                 WHERE o.txid < h.xmin AND (o.txid, o.position) > ($1::text::xid8, $2)
                 ORDER BY o.txid, o.position LIMIT $3) o
             UNION ALL
             SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, true
             WHERE EXISTS (SELECT 1 FROM {outbox} o, horizon h WHERE o.txid >= h.xmin)",
            outbox = self.idents.fixed("outbox")
        );
        let txid = after.txid.to_string();
        let rows = self
            .read_outbox(&sql, &[&txid, &after.position, &limit])
            .await?;
        let mut page = FeedPage {
            events: Vec::with_capacity(rows.len()),
            pending: false,
        };
        for row in &rows {
            if row.try_get::<_, bool>(10)? {
                page.pending = true;
            } else {
                page.events.push(event_from_row(row)?);
            }
        }
        Ok(page)
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
