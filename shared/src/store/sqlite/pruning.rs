//! `Pruning`: removes run reports and audit entries past the store's retention, expired link and
//! console sessions and leases long expired, a bounded batch per kind and statement.

use async_trait::async_trait;
use rusqlite::{params, Connection};

use super::SqliteStore;
use crate::clock::Timestamp;
use crate::store::retention::DAY_SECS;
use crate::store::{Pruned, Pruning, StoreResult};

#[async_trait]
impl Pruning for SqliteStore {
    async fn prune_expired(&self, now: Timestamp, batch: usize) -> StoreResult<Pruned> {
        let limit = i64::try_from(batch.max(1)).unwrap_or(i64::MAX);
        let policy = self.retention;
        let runs_cutoff = now.saturating_sub(i64::from(policy.runs_days) * DAY_SECS);
        let audit_cutoff = now.saturating_sub(i64::from(policy.audit_days) * DAY_SECS);
        // One statement (one short write transaction) per kind, each its own call, so API
        // requests get the connection between them.
        let runs = self
            .run(move |c| delete(c, RUNS, runs_cutoff, limit))
            .await?;
        let audit = self
            .run(move |c| delete(c, AUDIT, audit_cutoff, limit))
            .await?;
        let link_sessions = self.run(move |c| delete(c, SESSIONS, now, limit)).await?;
        let console_sessions = self
            .run(move |c| delete(c, CONSOLE_SESSIONS, now, limit))
            .await?;
        let leases = self.run(move |c| delete(c, LEASES, now, limit)).await?;
        let webhook_deliveries = self
            .run(move |c| delete(c, WEBHOOK_DELIVERIES, runs_cutoff, limit))
            .await?;
        Ok(Pruned {
            webhook_deliveries,
            runs,
            audit,
            link_sessions,
            console_sessions,
            leases,
        })
    }
}

/// Each deletes at most `?2` rows whose time is at or before `?1`, oldest first (through the
/// index on that time, so a batch costs O(batch) whatever the table's size).
const RUNS: &str = "DELETE FROM runs WHERE rowid IN
    (SELECT rowid FROM runs WHERE started_at <= ?1 ORDER BY started_at LIMIT ?2)";
const AUDIT: &str = "DELETE FROM audit WHERE seq IN
    (SELECT seq FROM audit WHERE at <= ?1 ORDER BY at LIMIT ?2)";
/// A session is expired once `expires_at <= now` (see `consume_link_session`).
const SESSIONS: &str = "DELETE FROM link_sessions WHERE rowid IN
    (SELECT rowid FROM link_sessions WHERE expires_at <= ?1 ORDER BY expires_at LIMIT ?2)";
/// Expired once `expires_at <= now`, as link sessions (see `get_console_session`).
const CONSOLE_SESSIONS: &str = "DELETE FROM console_sessions WHERE rowid IN
    (SELECT rowid FROM console_sessions WHERE expires_at <= ?1 ORDER BY expires_at LIMIT ?2)";
/// `keep_until` is a day after the lease's last expiry; a release keeps it.
const LEASES: &str = "DELETE FROM leases WHERE rowid IN
    (SELECT rowid FROM leases WHERE keep_until <= ?1 ORDER BY keep_until LIMIT ?2)";

/// Finished deliveries (delivered or failed) go with the run reports of their time; pending ones
/// never (they give up by themselves after three days).
const WEBHOOK_DELIVERIES: &str = "DELETE FROM webhook_deliveries WHERE seq IN
    (SELECT seq FROM webhook_deliveries WHERE status != 'pending' AND updated_at <= ?1
     ORDER BY updated_at LIMIT ?2)";

fn delete(conn: &Connection, sql: &str, cutoff: Timestamp, limit: i64) -> StoreResult<u64> {
    let removed = conn.prepare_cached(sql)?.execute(params![cutoff, limit])?;
    Ok(removed as u64)
}
