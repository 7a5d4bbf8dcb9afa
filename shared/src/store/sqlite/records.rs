//! Link sessions, run reports, the audit trail, settings, leases and the work index.

use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use super::{from_json, page, to_json};
use crate::clock::Timestamp;
use crate::domain::{AuditEntry, LinkSession, RunReport, TaskName};
use crate::store::{ConsumedSession, Cursor, LeaseGrant, Page, StoreError, StoreResult, WorkMark};

/// `limit + 1` rows are read, to know whether another page follows.
fn fetch_count(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1
}

// --- link sessions ---------------------------------------------------------------------------

pub(super) fn put_link_session(conn: &Connection, session: &LinkSession) -> StoreResult<()> {
    conn.execute(
        "INSERT OR REPLACE INTO link_sessions (state_hash, client, expires_at, session)
         VALUES (?1, ?2, ?3, ?4)",
        params![
            session.state_hash,
            session.client,
            session.expires_at,
            to_json(session)?
        ],
    )?;
    Ok(())
}

/// A session is valid while `now < expires_at`. Expired sessions (this one and any other) are
/// deleted on the way.
pub(super) fn consume_link_session(
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

// --- runs --------------------------------------------------------------------------------------

pub(super) fn put_run(conn: &Connection, report: &RunReport) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO runs (client, id, started_at, report) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (client, id) DO UPDATE SET
             started_at = excluded.started_at, report = excluded.report",
        params![
            report.client,
            report.id,
            report.started_at,
            to_json(report)?
        ],
    )?;
    Ok(())
}

/// Runs are ordered by `(started_at, id)` descending; the cursor is `"<started_at>/<id>"`.
fn run_position(cursor: &Cursor) -> StoreResult<(Timestamp, String)> {
    let raw = cursor.decode()?;
    let (started_at, id) = raw.split_once('/').ok_or(StoreError::InvalidCursor)?;
    let started_at = started_at.parse().map_err(|_| StoreError::InvalidCursor)?;
    Ok((started_at, id.to_owned()))
}

pub(super) fn list_runs(
    conn: &Connection,
    client: &str,
    after: Option<&Cursor>,
    limit: usize,
) -> StoreResult<Page<RunReport>> {
    let limit = limit.max(1);
    let (started_at, id) = match after {
        Some(cursor) => {
            let (started_at, id) = run_position(cursor)?;
            (Some(started_at), Some(id))
        }
        None => (None, None),
    };
    let mut stmt = conn.prepare_cached(
        "SELECT report FROM runs
         WHERE client = ?1 AND (?3 IS NULL OR (started_at, id) < (?3, ?4))
         ORDER BY started_at DESC, id DESC LIMIT ?2",
    )?;
    let rows = stmt
        .query_map(params![client, fetch_count(limit), started_at, id], |r| {
            from_json::<RunReport>(r, 0)
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(page(rows, limit, |r| format!("{}/{}", r.started_at, r.id)))
}

// --- audit -------------------------------------------------------------------------------------

pub(super) fn append_audit(conn: &mut Connection, entries: &[AuditEntry]) -> StoreResult<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut insert =
            tx.prepare_cached("INSERT INTO audit (client, at, entry) VALUES (?1, ?2, ?3)")?;
        for entry in entries {
            insert.execute(params![entry.client, entry.at, to_json(entry)?])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Entries are ordered by insertion, newest first; the cursor is the last `seq` returned.
pub(super) fn list_audit(
    conn: &Connection,
    client: &str,
    after: Option<&Cursor>,
    limit: usize,
) -> StoreResult<Page<AuditEntry>> {
    let limit = limit.max(1);
    let before: Option<i64> = after
        .map(|c| c.decode()?.parse().map_err(|_| StoreError::InvalidCursor))
        .transpose()?;
    let mut stmt = conn.prepare_cached(
        "SELECT seq, entry FROM audit
         WHERE client = ?1 AND (?3 IS NULL OR seq < ?3)
         ORDER BY seq DESC LIMIT ?2",
    )?;
    let rows = stmt
        .query_map(params![client, fetch_count(limit), before], |r| {
            Ok((r.get::<_, i64>(0)?, from_json::<AuditEntry>(r, 1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let page = page(rows, limit, |(seq, _)| seq.to_string());
    Ok(Page {
        items: page.items.into_iter().map(|(_, entry)| entry).collect(),
        next: page.next,
    })
}

// --- settings and leases -------------------------------------------------------------------------

pub(super) fn get_setting(conn: &Connection, key: &str) -> StoreResult<Option<String>> {
    Ok(conn
        .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
            r.get(0)
        })
        .optional()?)
}

pub(super) fn put_setting_if_absent(
    conn: &Connection,
    key: &str,
    value: &str,
) -> StoreResult<bool> {
    let stored = conn.execute(
        "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
        params![key, value],
    )?;
    Ok(stored == 1)
}

/// A lease is free when absent, held by `holder` already (renewal), or expired (`expires_at <=
/// now`). The handover column survives holders.
pub(super) fn acquire_lease(
    conn: &mut Connection,
    name: &str,
    holder: &str,
    now: Timestamp,
    ttl_secs: i64,
) -> StoreResult<Option<LeaseGrant>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let taken = tx.execute(
        "INSERT INTO leases (name, holder, expires_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
         WHERE leases.holder = excluded.holder OR leases.expires_at <= ?4",
        params![name, holder, now.saturating_add(ttl_secs), now],
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

pub(super) fn renew_lease(
    conn: &Connection,
    name: &str,
    holder: &str,
    now: Timestamp,
    ttl_secs: i64,
    handover: Option<&str>,
) -> StoreResult<bool> {
    let renewed = conn.execute(
        "UPDATE leases SET expires_at = ?3, handover = COALESCE(?5, handover)
         WHERE name = ?1 AND holder = ?2 AND expires_at > ?4",
        params![name, holder, now.saturating_add(ttl_secs), now, handover],
    )?;
    Ok(renewed == 1)
}

/// Frees the lease at once (expired) but keeps the row, so the handover reaches the next holder.
pub(super) fn release_lease(
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

// --- the work index ------------------------------------------------------------------------------

fn work_from_row(row: &Row<'_>) -> rusqlite::Result<WorkMark> {
    let task: String = row.get(1)?;
    Ok(WorkMark {
        client: row.get(0)?,
        task: TaskName::parse(&task).unwrap_or(TaskName::VerifyGroups),
        seq: u64::try_from(row.get::<_, i64>(2)?).unwrap_or_default(),
        since: row.get(3)?,
    })
}

pub(super) fn mark_work(
    conn: &Connection,
    client: &str,
    task: TaskName,
    now: Timestamp,
) -> StoreResult<u64> {
    let seq: i64 = conn.query_row(
        "INSERT INTO work (client, task, seq, since) VALUES (?1, ?2, ?4, ?3)
         ON CONFLICT (client, task) DO UPDATE SET seq = work.seq + 1
         RETURNING seq",
        params![
            client,
            task.as_str(),
            now,
            // SQLite integers are i64: keep the base well inside.
            i64::try_from(crate::store::work_seq_base(now) + 1).unwrap_or(i64::MAX / 2)
        ],
        |r| r.get(0),
    )?;
    Ok(u64::try_from(seq).unwrap_or_default())
}

pub(super) fn get_work(
    conn: &Connection,
    client: &str,
    task: TaskName,
) -> StoreResult<Option<WorkMark>> {
    Ok(conn
        .query_row(
            "SELECT client, task, seq, since FROM work WHERE client = ?1 AND task = ?2",
            params![client, task.as_str()],
            work_from_row,
        )
        .optional()?)
}

pub(super) fn list_work(
    conn: &Connection,
    after: Option<&Cursor>,
    limit: usize,
) -> StoreResult<Page<WorkMark>> {
    let (client, task) = match after {
        Some(c) => {
            let pos = c.decode()?;
            let (client, task) = pos.split_once('\n').ok_or(StoreError::InvalidCursor)?;
            (client.to_owned(), task.to_owned())
        }
        None => (String::new(), String::new()),
    };
    let mut stmt = conn.prepare_cached(
        "SELECT client, task, seq, since FROM work WHERE (client, task) > (?1, ?2)
         ORDER BY client, task LIMIT ?3",
    )?;
    let rows = stmt
        .query_map(params![client, task, fetch_count(limit)], work_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(page(rows, limit.max(1), |w| {
        format!("{}\n{}", w.client, w.task.as_str())
    }))
}

pub(super) fn clear_work(
    conn: &Connection,
    client: &str,
    task: TaskName,
    seen_seq: u64,
) -> StoreResult<bool> {
    conn.execute(
        "DELETE FROM work WHERE client = ?1 AND task = ?2 AND seq = ?3",
        params![
            client,
            task.as_str(),
            i64::try_from(seen_seq).unwrap_or(i64::MAX)
        ],
    )?;
    Ok(get_work(conn, client, task)?.is_none())
}
