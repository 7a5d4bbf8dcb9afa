//! `RunLog`: run reports and the audit trail, the `runs` and `audit` tables.

use async_trait::async_trait;
use rusqlite::{params, Connection, TransactionBehavior};

use super::{fetch_count, from_json, page, to_json, SqliteStore};
use crate::clock::Timestamp;
use crate::domain::{AuditEntry, RunReport};
use crate::store::{Cursor, Page, RunLog, StoreError, StoreResult};

#[async_trait]
impl RunLog for SqliteStore {
    async fn put_run(&self, report: &RunReport) -> StoreResult<()> {
        let report = report.clone();
        self.run(move |c| put_run(c, &report)).await
    }

    async fn list_runs(
        &self,
        client: &str,
        after: Option<&Cursor>,
        limit: usize,
    ) -> StoreResult<Page<RunReport>> {
        let (client, after) = (client.to_owned(), after.cloned());
        self.run(move |c| list_runs(c, &client, after.as_ref(), limit))
            .await
    }

    async fn append_audit(&self, entries: &[AuditEntry]) -> StoreResult<()> {
        let entries = entries.to_vec();
        self.run(move |c| append_audit(c, &entries)).await
    }

    async fn list_audit(
        &self,
        client: &str,
        after: Option<&Cursor>,
        limit: usize,
    ) -> StoreResult<Page<AuditEntry>> {
        let (client, after) = (client.to_owned(), after.cloned());
        self.run(move |c| list_audit(c, &client, after.as_ref(), limit))
            .await
    }
}

// --- runs --------------------------------------------------------------------------------------

fn put_run(conn: &Connection, report: &RunReport) -> StoreResult<()> {
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

fn list_runs(
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

fn append_audit(conn: &mut Connection, entries: &[AuditEntry]) -> StoreResult<()> {
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
fn list_audit(
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
