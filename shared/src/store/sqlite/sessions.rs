//! `LinkSessions`: single-use link sessions, the `link_sessions` table.

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{from_json, to_json, SqliteStore};
use crate::clock::Timestamp;
use crate::domain::LinkSession;
use crate::store::{ConsumedSession, LinkSessions, StoreResult};

#[async_trait]
impl LinkSessions for SqliteStore {
    async fn put_link_session(&self, session: &LinkSession) -> StoreResult<()> {
        let session = session.clone();
        self.run(move |c| put_link_session(c, &session)).await
    }

    async fn consume_link_session(
        &self,
        state_hash: &str,
        now: Timestamp,
    ) -> StoreResult<Option<ConsumedSession>> {
        let state_hash = state_hash.to_owned();
        self.run(move |c| consume_link_session(c, &state_hash, now))
            .await
    }
}

fn put_link_session(conn: &mut Connection, session: &LinkSession) -> StoreResult<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // A client's sessions are few (10 minutes each, pruned as they are consumed).
    tx.execute(
        "DELETE FROM link_sessions
         WHERE client = ?1 AND json_extract(session, '$.user_id') = ?2 AND state_hash <> ?3",
        params![session.client, session.user_id, session.state_hash],
    )?;
    tx.execute(
        "INSERT OR REPLACE INTO link_sessions (state_hash, client, expires_at, session)
         VALUES (?1, ?2, ?3, ?4)",
        params![
            session.state_hash,
            session.client,
            session.expires_at,
            to_json(session)?
        ],
    )?;
    tx.commit()?;
    Ok(())
}

/// A session is valid while `now < expires_at`. Expired sessions (this one and any other) are
/// deleted on the way.
fn consume_link_session(
    conn: &mut Connection,
    state_hash: &str,
    now: Timestamp,
) -> StoreResult<Option<ConsumedSession>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let taken: Option<(Timestamp, LinkSession)> = tx
        .query_row(
            "DELETE FROM link_sessions WHERE state_hash = ?1 RETURNING expires_at, session",
            [state_hash],
            |r| Ok((r.get(0)?, from_json(r, 1)?)),
        )
        .optional()?;
    tx.execute("DELETE FROM link_sessions WHERE expires_at <= ?1", [now])?;
    tx.commit()?;
    Ok(taken.map(|(expires_at, session)| {
        if now < expires_at {
            ConsumedSession::Valid(session)
        } else {
            ConsumedSession::Expired(session)
        }
    }))
}
