//! `WebhookOutbox`: the `webhook_deliveries` table. [`enqueue`] is called by the member writes
//! inside their own transaction, so an entry exists exactly when its change was committed.

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};

use super::{page, SqliteStore};
use crate::clock::Timestamp;
use crate::domain::{
    DeliveryAttempt, DeliveryStatus, WebhookDelivery, WebhookEvent, WebhookEventType,
};
use crate::store::{Cursor, Page, StoreError, StoreResult, WebhookOutbox};

const COLUMNS: &str = "id, client, event_type, user_id, payload, status, attempts, \
    last_status_code, last_error, next_attempt_at, created_at, seq";

/// Adds `events` to the outbox of `client` inside `tx` — only if the client has a
/// `webhook_url` (read in the same transaction, so a change and the decision agree).
pub(super) fn enqueue(
    tx: &Transaction<'_>,
    client: &str,
    events: &[WebhookEvent],
    now: Timestamp,
) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let url: Option<String> = tx
        .query_row(
            "SELECT json_extract(config, '$.webhook_url') FROM clients WHERE id = ?1",
            [client],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    if url.is_none() {
        return Ok(());
    }
    let mut insert = tx.prepare_cached(
        "INSERT INTO webhook_deliveries (id, client, event_type, user_id, payload, status,
             attempts, next_attempt_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 0, ?6, ?6, ?6)",
    )?;
    for e in events {
        let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
        let payload = super::to_json(&e.body(client, now))?;
        insert.execute(params![
            id,
            client,
            e.event_type.as_str(),
            e.user_id,
            payload,
            now
        ])?;
    }
    Ok(())
}

#[async_trait]
impl WebhookOutbox for SqliteStore {
    async fn due_deliveries(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<WebhookDelivery>> {
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        self.run(move |c| due(c, now, limit)).await
    }

    async fn record_attempt(
        &self,
        client: &str,
        id: &str,
        attempt: &DeliveryAttempt,
        now: Timestamp,
    ) -> StoreResult<()> {
        let (client, id, attempt) = (client.to_owned(), id.to_owned(), attempt.clone());
        self.run(move |c| {
            let changed = c.execute(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, status = ?2,
                     last_status_code = ?3, last_error = ?4, next_attempt_at = ?5, updated_at = ?6
                 WHERE id = ?1 AND client = ?7",
                params![
                    id,
                    attempt.status.as_str(),
                    attempt.status_code,
                    attempt.error,
                    attempt.next_attempt_at,
                    now,
                    client
                ],
            )?;
            if changed == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
    }

    async fn list_deliveries(
        &self,
        client: &str,
        after: Option<&Cursor>,
        limit: usize,
    ) -> StoreResult<Page<WebhookDelivery>> {
        let client = client.to_owned();
        let after = match after {
            Some(c) => c
                .decode()?
                .parse::<i64>()
                .map_err(|_| StoreError::InvalidCursor)?,
            None => i64::MAX,
        };
        let limit = limit.clamp(1, 500);
        self.run(move |c| {
            let sql = format!(
                "SELECT {COLUMNS} FROM webhook_deliveries WHERE client = ?1 AND seq < ?2
                 ORDER BY seq DESC LIMIT ?3"
            );
            let rows = c
                .prepare_cached(&sql)?
                .query_map(params![client, after, limit as i64 + 1], row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let p = page(rows, limit, |(_, seq)| seq.to_string());
            Ok(Page {
                items: p.items.into_iter().map(|(d, _)| d).collect(),
                next: p.next,
            })
        })
        .await
    }

    async fn retry_delivery(
        &self,
        client: &str,
        id: &str,
        now: Timestamp,
    ) -> StoreResult<WebhookDelivery> {
        let (client, id) = (client.to_owned(), id.to_owned());
        self.run(move |c| {
            let sql = format!(
                "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = ?3,
                     updated_at = ?3
                 WHERE client = ?1 AND id = ?2 RETURNING {COLUMNS}"
            );
            c.prepare_cached(&sql)?
                .query_row(params![client, id, now], row)
                .optional()?
                .map(|(d, _)| d)
                .ok_or(StoreError::NotFound)
        })
        .await
    }
}

/// The oldest pending entry of each user, if it is due.
fn due(conn: &Connection, now: Timestamp, limit: i64) -> StoreResult<Vec<WebhookDelivery>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM webhook_deliveries d
         WHERE status = 'pending' AND next_attempt_at <= ?1
           AND NOT EXISTS (SELECT 1 FROM webhook_deliveries o
                           WHERE o.client = d.client AND o.user_id = d.user_id
                             AND o.status = 'pending' AND o.seq < d.seq)
         ORDER BY seq LIMIT ?2"
    );
    let rows = conn
        .prepare_cached(&sql)?
        .query_map(params![now, limit], row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows.into_iter().map(|(d, _)| d).collect())
}

fn row(r: &Row<'_>) -> rusqlite::Result<(WebhookDelivery, i64)> {
    let bad = |idx: usize, what: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            idx,
            rusqlite::types::Type::Text,
            format!("unknown {what}").into(),
        )
    };
    let event_type: String = r.get(2)?;
    let status: String = r.get(5)?;
    Ok((
        WebhookDelivery {
            id: r.get(0)?,
            client: r.get(1)?,
            event_type: WebhookEventType::parse(&event_type).ok_or_else(|| bad(2, "event type"))?,
            user_id: r.get(3)?,
            payload: super::from_json(r, 4)?,
            status: DeliveryStatus::parse(&status).ok_or_else(|| bad(5, "status"))?,
            attempts: r.get(6)?,
            last_status_code: r.get(7)?,
            last_error: r.get(8)?,
            next_attempt_at: r.get(9)?,
            created_at: r.get(10)?,
        },
        r.get(11)?,
    ))
}
