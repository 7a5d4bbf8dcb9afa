//! `ConsoleSessions`: operator console sign-ins, the `console_sessions` table (keyed by the
//! SHA-256 of the session id; expired rows go with `Pruning`).

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

use super::{from_json, to_json, SqliteStore};
use crate::clock::Timestamp;
use crate::domain::ConsoleSession;
use crate::store::{ConsoleSessions, StoreResult};

#[async_trait]
impl ConsoleSessions for SqliteStore {
    async fn put_console_session(&self, session: &ConsoleSession) -> StoreResult<()> {
        let session = session.clone();
        self.run(move |c| put(c, &session)).await
    }

    async fn get_console_session(
        &self,
        id_sha256: &str,
        now: Timestamp,
    ) -> StoreResult<Option<ConsoleSession>> {
        let id_sha256 = id_sha256.to_owned();
        self.run(move |c| get(c, &id_sha256, now)).await
    }

    async fn delete_console_session(&self, id_sha256: &str) -> StoreResult<()> {
        let id_sha256 = id_sha256.to_owned();
        self.run(move |c| delete(c, &id_sha256)).await
    }
}

fn put(conn: &Connection, session: &ConsoleSession) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO console_sessions (id_sha256, expires_at, session)
         VALUES (?1, ?2, ?3)",
    )?
    .execute(params![
        session.id_sha256,
        session.expires_at,
        to_json(session)?
    ])?;
    Ok(())
}

/// A session is valid while `now < expires_at` (as link sessions are).
fn get(conn: &Connection, id_sha256: &str, now: Timestamp) -> StoreResult<Option<ConsoleSession>> {
    Ok(conn
        .prepare_cached(
            "SELECT session FROM console_sessions WHERE id_sha256 = ?1 AND expires_at > ?2",
        )?
        .query_row(params![id_sha256, now], |r| from_json(r, 0))
        .optional()?)
}

fn delete(conn: &Connection, id_sha256: &str) -> StoreResult<()> {
    conn.prepare_cached("DELETE FROM console_sessions WHERE id_sha256 = ?1")?
        .execute([id_sha256])?;
    Ok(())
}
