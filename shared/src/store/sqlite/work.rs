//! `WorkIndex`: which clients have work for which task, the `work` table.

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{fetch_count, page, SqliteStore};
use crate::clock::Timestamp;
use crate::domain::TaskName;
use crate::store::{Cursor, Page, StoreError, StoreResult, WorkIndex, WorkMark};

#[async_trait]
impl WorkIndex for SqliteStore {
    async fn mark_work(&self, client: &str, task: TaskName, now: Timestamp) -> StoreResult<u64> {
        let client = client.to_owned();
        self.run(move |c| mark_work(c, &client, task, now)).await
    }

    async fn get_work(&self, client: &str, task: TaskName) -> StoreResult<Option<WorkMark>> {
        let client = client.to_owned();
        self.run(move |c| get_work(c, &client, task)).await
    }

    async fn list_work(&self, after: Option<&Cursor>, limit: usize) -> StoreResult<Page<WorkMark>> {
        let after = after.cloned();
        self.run(move |c| list_work(c, after.as_ref(), limit)).await
    }

    async fn clear_work(&self, client: &str, task: TaskName, seen_seq: u64) -> StoreResult<bool> {
        let client = client.to_owned();
        self.run(move |c| clear_work(c, &client, task, seen_seq))
            .await
    }
}

fn work_from_row(row: &Row<'_>) -> rusqlite::Result<WorkMark> {
    let task: String = row.get(1)?;
    Ok(WorkMark {
        client: row.get(0)?,
        task: TaskName::parse(&task).unwrap_or(TaskName::VerifyGroups),
        seq: u64::try_from(row.get::<_, i64>(2)?).unwrap_or_default(),
        since: row.get(3)?,
    })
}

fn mark_work(conn: &Connection, client: &str, task: TaskName, now: Timestamp) -> StoreResult<u64> {
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

fn get_work(conn: &Connection, client: &str, task: TaskName) -> StoreResult<Option<WorkMark>> {
    Ok(conn
        .query_row(
            "SELECT client, task, seq, since FROM work WHERE client = ?1 AND task = ?2",
            params![client, task.as_str()],
            work_from_row,
        )
        .optional()?)
}

fn list_work(
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

fn clear_work(conn: &Connection, client: &str, task: TaskName, seen_seq: u64) -> StoreResult<bool> {
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
