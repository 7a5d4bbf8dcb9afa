//! `Leases`: named, expiring leases and their handover, the `leases` table.

use async_trait::async_trait;
use rusqlite::{params, Connection, TransactionBehavior};

use super::SqliteStore;
use crate::clock::Timestamp;
use crate::store::retention::lease_expiry;
use crate::store::{LeaseGrant, Leases, StoreResult};

#[async_trait]
impl Leases for SqliteStore {
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        ttl_secs: i64,
    ) -> StoreResult<Option<LeaseGrant>> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.run(move |c| acquire_lease(c, &name, &holder, now, ttl_secs))
            .await
    }

    async fn renew_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        ttl_secs: i64,
        handover: Option<&str>,
    ) -> StoreResult<bool> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        let handover = handover.map(str::to_owned);
        self.run(move |c| renew_lease(c, &name, &holder, now, ttl_secs, handover.as_deref()))
            .await
    }

    async fn release_lease(
        &self,
        name: &str,
        holder: &str,
        handover: Option<&str>,
    ) -> StoreResult<()> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        let handover = handover.map(str::to_owned);
        self.run(move |c| release_lease(c, &name, &holder, handover.as_deref()))
            .await
    }
}

/// A lease is free when absent, held by `holder` already (renewal), or expired (`expires_at <=
/// now`). The handover column survives holders.
fn acquire_lease(
    conn: &mut Connection,
    name: &str,
    holder: &str,
    now: Timestamp,
    ttl_secs: i64,
) -> StoreResult<Option<LeaseGrant>> {
    let expires_at = now.saturating_add(ttl_secs);
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let taken = tx.execute(
        "INSERT INTO leases (name, holder, expires_at, keep_until) VALUES (?1, ?2, ?3, ?5)
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,
             expires_at = excluded.expires_at, keep_until = excluded.keep_until
         WHERE leases.holder = excluded.holder OR leases.expires_at <= ?4",
        params![name, holder, expires_at, now, lease_expiry(expires_at)],
    )?;
    if taken != 1 {
        return Ok(None);
    }
    let handover: Option<String> =
        tx.query_row("SELECT handover FROM leases WHERE name = ?1", [name], |r| {
            r.get(0)
        })?;
    tx.commit()?;
    Ok(Some(LeaseGrant { handover }))
}

fn renew_lease(
    conn: &Connection,
    name: &str,
    holder: &str,
    now: Timestamp,
    ttl_secs: i64,
    handover: Option<&str>,
) -> StoreResult<bool> {
    let expires_at = now.saturating_add(ttl_secs);
    let renewed = conn.execute(
        "UPDATE leases SET expires_at = ?3, keep_until = ?6, handover = COALESCE(?5, handover)
         WHERE name = ?1 AND holder = ?2 AND expires_at > ?4",
        params![
            name,
            holder,
            expires_at,
            now,
            handover,
            lease_expiry(expires_at)
        ],
    )?;
    Ok(renewed == 1)
}

/// Frees the lease at once (expired) but keeps the row — and its `keep_until` — so the handover
/// reaches the next holder.
fn release_lease(
    conn: &Connection,
    name: &str,
    holder: &str,
    handover: Option<&str>,
) -> StoreResult<()> {
    conn.execute(
        "UPDATE leases SET expires_at = 0, handover = COALESCE(?3, handover)
         WHERE name = ?1 AND holder = ?2",
        params![name, holder, handover],
    )?;
    Ok(())
}
