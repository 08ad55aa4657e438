//! Which role the session of each pooled connection runs under, so a service's plain reads
//! and units of work can leave the session under the service's role and skip setting it again
//! at every request.
//!
//! A connection's session is under the login role unless this table says otherwise. Two paths
//! move a session to a service: [`Sessions::read_under`], and a unit of work, which sets the
//! service's settings inside its transaction (they stay only if it commits) and records the
//! session as the service's once it has committed. Both mark the session
//! [`leaving`](Sessions::leaving) before they send anything, so a cancelled or failed request
//! leaves its connection marked, and its next user resets it. Every other checkout goes through
//! [`Sessions::reset`] (in `Store::client`), or, for a service's own work,
//! [`Sessions::reset_unless`] the session is that service's (`Store::service_client`):
//! statements are prepared before the transaction begins, and preparing needs the privileges of
//! the role that will run them. No code path runs under a role it did not ask for.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
};

use deadpool_postgres::{Object, ObjectId};
use tokio_postgres::{Row, types::ToSql};

/// The sessions of a pool's connections that are not under the login role.
#[derive(Debug, Default)]
pub(crate) struct Sessions(Mutex<HashMap<ObjectId, Session>>);

/// Where a connection's session is, when not under the login role.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Session {
    /// Under a service's role: the exact settings batch that put it there.
    Service(String),
    /// A settings batch was sent and its answer not read (the request was cancelled), or it
    /// failed: the next user resets the session.
    Unknown,
}

impl Sessions {
    fn lock(&self) -> MutexGuard<'_, HashMap<ObjectId, Session>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, client: &Object, session: Option<Session>) {
        let id = Object::id(client);
        match session {
            Some(session) => self.lock().insert(id, session),
            None => self.lock().remove(&id),
        };
    }

    /// Brings the session of `client` back to the login role and the server's defaults (for
    /// the isolation level and the statement timeout) if a service's work left it elsewhere.
    pub(crate) async fn reset(&self, client: &Object) -> Result<(), tokio_postgres::Error> {
        self.reset_unless(client, None).await
    }

    /// Like [`reset`](Self::reset), but leaves a session that is under `settings` (one
    /// service's) as it is: the work that follows runs under that service's role anyway, and
    /// may prepare its statements under it.
    pub(crate) async fn reset_unless(
        &self,
        client: &Object,
        settings: Option<&str>,
    ) -> Result<(), tokio_postgres::Error> {
        match self.lock().get(&Object::id(client)) {
            None => return Ok(()),
            Some(Session::Service(current)) if Some(current.as_str()) == settings => return Ok(()),
            Some(_) => {}
        }
        self.set(client, Some(Session::Unknown));
        client
            .batch_execute(
                "RESET ROLE; RESET default_transaction_isolation; RESET statement_timeout",
            )
            .await?;
        self.set(client, None);
        Ok(())
    }

    /// Runs the read `sql` with the session of `client` under `settings` (a batch of `SET`
    /// statements for a service's role and statement timeout), setting it first in the same
    /// round trip when it is not there already. The statement is prepared (once per
    /// connection) after the settings, since parsing it needs the service's schema privileges.
    ///
    /// Outside a transaction a failed `SET` does not stop the statements pipelined after it, so
    /// the statement may then have run under the previous role: its rows are discarded and the
    /// error returned. Only reads run here.
    pub(crate) async fn read_under(
        &self,
        client: &Object,
        settings: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        let read = async {
            let statement = client.prepare_cached(sql).await?;
            client.query(&statement, params).await
        };
        if self.is_under(client, settings) {
            return read.await;
        }
        self.leaving(client);
        let (set, rows) = tokio::join!(client.batch_execute(settings), read);
        set?;
        self.entered(client, settings);
        rows
    }

    /// Whether the session of `client` is under `settings` already.
    pub(crate) fn is_under(&self, client: &Object, settings: &str) -> bool {
        matches!(self.lock().get(&Object::id(client)), Some(Session::Service(current)) if current == settings)
    }

    /// Before sending what may leave the session of `client` elsewhere than recorded (a
    /// transaction that sets the session's settings, raw SQL): its next user resets it, unless
    /// [`entered`](Self::entered) says where it is.
    pub(crate) fn leaving(&self, client: &Object) {
        self.set(client, Some(Session::Unknown));
    }

    /// The session of `client` is under `settings`: a transaction that set them committed.
    pub(crate) fn entered(&self, client: &Object, settings: &str) {
        self.set(client, Some(Session::Service(settings.to_owned())));
    }

    /// Forgets a connection found closed after a failed read. A connection the pool drops for
    /// another reason keeps its entry; no later connection matches it, since the pool never
    /// reuses an id.
    pub(crate) fn forget_closed(&self, client: &Object) {
        if client.is_closed() {
            self.set(client, None);
        }
    }
}
