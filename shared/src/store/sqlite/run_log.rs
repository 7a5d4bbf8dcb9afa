//! `RunLog`: run reports and the audit trail, the `runs` and `audit` tables.

use async_trait::async_trait;
use rusqlite::types::ToSql;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{fetch_count, from_json, page, to_json, SqliteStore};
use crate::clock::Timestamp;
use crate::domain::{AuditEntry, AuditSearch, RunReport};
use crate::store::{Cursor, Page, RunLog, StoreError, StoreResult, SEARCH_BUDGET};

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

    async fn get_run(&self, client: &str, run_id: &str) -> StoreResult<Option<RunReport>> {
        let (client, run_id) = (client.to_owned(), run_id.to_owned());
        self.run(move |c| get_run(c, &client, &run_id)).await
    }

    async fn search_audit(
        &self,
        client: &str,
        search: &AuditSearch,
        after: Option<&Cursor>,
        limit: usize,
    ) -> StoreResult<Page<AuditEntry>> {
        let (client, search, after) = (client.to_owned(), search.clone(), after.cloned());
        self.run(move |c| search_audit(c, &client, &search, after.as_ref(), limit))
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

/// By the primary key.
fn get_run(conn: &Connection, client: &str, run_id: &str) -> StoreResult<Option<RunReport>> {
    Ok(conn
        .prepare_cached("SELECT report FROM runs WHERE client = ?1 AND id = ?2")?
        .query_row(params![client, run_id], |r| from_json(r, 0))
        .optional()?)
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

/// The cursor's position: entries before this `seq` (all of them without a cursor).
fn audit_position(after: Option<&Cursor>) -> StoreResult<i64> {
    after.map_or(Ok(i64::MAX), |c| {
        c.decode()?.parse().map_err(|_| StoreError::InvalidCursor)
    })
}

/// Entries are ordered by insertion, newest first; the cursor is the last `seq` returned.
fn list_audit(
    conn: &Connection,
    client: &str,
    after: Option<&Cursor>,
    limit: usize,
) -> StoreResult<Page<AuditEntry>> {
    let limit = limit.max(1);
    let before = audit_position(after)?;
    let mut stmt = conn.prepare_cached(
        "SELECT seq, entry FROM audit
         WHERE client = ?1 AND seq < ?3
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

/// The audit search in SQL, on `list_audit`'s order and cursor. A request examines at most
/// [`SEARCH_BUDGET`] entries; it answers with at most `limit` matches and a cursor when more may
/// follow: after the last match when there are more matches, after the last entry examined when
/// the budget ran out first — unless that entry is older than `since` (entries are appended
/// roughly in time order: nothing older can match, as the default search assumes too).
fn search_audit(
    conn: &Connection,
    client: &str,
    search: &AuditSearch,
    after: Option<&Cursor>,
    limit: usize,
) -> StoreResult<Page<AuditEntry>> {
    let limit = limit.clamp(1, 500);
    let before = audit_position(after)?;
    let offset = i64::try_from(SEARCH_BUDGET - 1).unwrap_or(i64::MAX);
    // The last entry this request may examine, when more than the budget follow the cursor.
    let last_examined: Option<(i64, Timestamp)> = conn
        .prepare_cached(
            "SELECT seq, at FROM audit WHERE client = ?1 AND seq < ?2
             ORDER BY seq DESC LIMIT 1 OFFSET ?3",
        )?
        .query_row(params![client, before, offset], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;

    let mut sql =
        "SELECT seq, entry FROM audit WHERE client = :client AND seq < :before".to_owned();
    let mut args: Vec<(&str, &dyn ToSql)> = vec![(":client", &client), (":before", &before)];
    if let Some((seq, _)) = &last_examined {
        sql.push_str(" AND seq >= :last");
        args.push((":last", seq));
    }
    if let Some(member) = &search.member {
        sql.push_str(
            " AND (json_extract(entry, '$.user_id') = :member
                   OR json_extract(entry, '$.discord_user_id') = :member)",
        );
        args.push((":member", member));
    }
    if let Some(action) = &search.action {
        sql.push_str(" AND json_extract(entry, '$.action') = :action");
        args.push((":action", action));
    }
    if let Some(actor) = &search.actor {
        sql.push_str(" AND json_extract(entry, '$.actor') = :actor");
        args.push((":actor", actor));
    }
    if let Some(since) = &search.since {
        sql.push_str(" AND at >= :since");
        args.push((":since", since));
    }
    if let Some(until) = &search.until {
        sql.push_str(" AND at <= :until");
        args.push((":until", until));
    }
    sql.push_str(" ORDER BY seq DESC LIMIT :fetch");
    let fetch = fetch_count(limit);
    args.push((":fetch", &fetch));
    let rows = conn
        .prepare_cached(&sql)?
        .query_map(args.as_slice(), |r| {
            Ok((r.get::<_, i64>(0)?, from_json::<AuditEntry>(r, 1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut page = page(rows, limit, |(seq, _)| seq.to_string());
    if page.next.is_none() {
        page.next = last_examined
            .filter(|(_, at)| search.since.is_none_or(|since| *at >= since))
            .map(|(seq, _)| Cursor::encode(&seq.to_string()));
    }
    Ok(Page {
        items: page.items.into_iter().map(|(_, entry)| entry).collect(),
        next: page.next,
    })
}
