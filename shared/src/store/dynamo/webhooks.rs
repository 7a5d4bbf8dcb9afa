//! `WebhookOutbox` on DynamoDB. An entry is an item in its client's partition under
//! `WEBHOOK#<key>` (its id is `msg_<key>`), written by the link writes in the same
//! `TransactWriteItems` as the change it describes ([`outbox_puts`]). `<key>` starts with the
//! wall clock in nanoseconds, so a client's entries sort in the order they were written (one
//! member's writes are serialised by their conditions, far more than a nanosecond apart).
//!
//! While pending an entry carries the sparse `GSI1PK = WEBHOOKS_PENDING` (sorted by client and
//! key): the due scan reads O(pending entries), never the table. A finished entry loses it and
//! gets the runs' `ttl`.

use std::collections::HashSet;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Put, ReturnValue, TransactWriteItem};
use serde::{Deserialize, Serialize};

use super::expr::{n, s, Expr};
use super::items::{self, Item, Keyed};
use super::keys::{self, GSI1PK, GSI1SK, PK, TTL};
use super::links::build_error;
use super::{backend, is_condition_failed, DynamoStore, Query};
use crate::clock::Timestamp;
use crate::domain::{
    DeliveryAttempt, DeliveryStatus, WebhookDelivery, WebhookEvent, WebhookEventType,
};
use crate::store::{ClientCatalog, Cursor, Page, StoreError, StoreResult, WebhookOutbox};

const WEBHOOK_PREFIX: &str = "WEBHOOK#";
const PENDING_GSI_PK: &str = "WEBHOOKS_PENDING";
const ENTITY: &str = "webhook_delivery";

#[derive(Serialize, Deserialize)]
struct DeliveryData {
    id: String,
    client: String,
    event_type: String,
    user_id: String,
    /// The JSON body as text.
    payload: String,
    status: DeliveryStatus,
    attempts: u32,
    #[serde(default)]
    last_status_code: Option<u16>,
    #[serde(default)]
    last_error: Option<String>,
    #[serde(default)]
    next_attempt_at: Option<Timestamp>,
    created_at: Timestamp,
}

impl DeliveryData {
    fn into_delivery(self) -> StoreResult<WebhookDelivery> {
        let bad = || StoreError::Backend("cannot decode a stored webhook delivery".into());
        Ok(WebhookDelivery {
            event_type: WebhookEventType::parse(&self.event_type).ok_or_else(bad)?,
            payload: serde_json::from_str(&self.payload).map_err(|_| bad())?,
            id: self.id,
            client: self.client,
            user_id: self.user_id,
            status: self.status,
            attempts: self.attempts,
            last_status_code: self.last_status_code,
            last_error: self.last_error,
            next_attempt_at: self.next_attempt_at,
            created_at: self.created_at,
        })
    }
}

fn decode(item: Item) -> StoreResult<WebhookDelivery> {
    items::decode::<DeliveryData>(item, ENTITY)?.into_delivery()
}

/// The `<key>` of an id (`msg_<key>`); `NotFound` for anything else.
fn key_of(id: &str) -> StoreResult<&str> {
    id.strip_prefix("msg_")
        .filter(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric()))
        .ok_or(StoreError::NotFound)
}

fn entry_key(client: &str, key: &str) -> Item {
    items::key(keys::client_pk(client), format!("{WEBHOOK_PREFIX}{key}"))
}

fn gsi_sk(client: &str, key: &str) -> String {
    format!("{client}#{key}")
}

/// The puts that add `events` to `client`'s outbox, for the caller's transaction — none when
/// the client has no `webhook_url`. (The URL is read just before the transaction: a client
/// whose URL is set or removed at that very moment may get or miss that one event.)
pub(super) async fn outbox_puts(
    store: &DynamoStore,
    client: &str,
    events: &[WebhookEvent],
    now: Timestamp,
) -> StoreResult<Vec<TransactWriteItem>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let has_url = store
        .get_client(client)
        .await?
        .is_some_and(|c| c.webhook_url.is_some());
    if !has_url {
        return Ok(Vec::new());
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let tiebreak = uuid::Uuid::new_v4().simple().to_string();
    events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let key = format!("{nanos:024}{i:02}{}", &tiebreak[..8]);
            let data = DeliveryData {
                id: format!("msg_{key}"),
                client: client.to_owned(),
                event_type: e.event_type.as_str().to_owned(),
                user_id: e.user_id.clone(),
                payload: e.body(client, now).to_string(),
                status: DeliveryStatus::Pending,
                attempts: 0,
                last_status_code: None,
                last_error: None,
                next_attempt_at: Some(now),
                created_at: now,
            };
            let item = Keyed::new(
                keys::client_pk(client),
                format!("{WEBHOOK_PREFIX}{key}"),
                ENTITY,
                data,
            )
            .gsi1(PENDING_GSI_PK.to_owned(), gsi_sk(client, &key))
            .to_item()?;
            let mut expr = Expr::new();
            let condition = format!("attribute_not_exists({})", expr.name(PK));
            Ok(TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(&store.table)
                        .set_item(Some(item))
                        .condition_expression(condition)
                        .set_expression_attribute_names(expr.names())
                        .build()
                        .map_err(build_error)?,
                )
                .build())
        })
        .collect()
}

#[async_trait]
impl WebhookOutbox for DynamoStore {
    async fn due_deliveries(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<WebhookDelivery>> {
        // Every pending entry, by client then key (oldest first): the first of each user is the
        // only one that may go.
        let query = Query::gsi1(PENDING_GSI_PK.to_owned(), "");
        let (found, _) = self.query(&query, None, None).await?;
        let mut seen = HashSet::new();
        let mut due = Vec::new();
        for item in found {
            let d = decode(item)?;
            if d.status != DeliveryStatus::Pending
                || !seen.insert((d.client.clone(), d.user_id.clone()))
            {
                continue;
            }
            if d.next_attempt_at.is_some_and(|at| at <= now) {
                due.push(d);
            }
        }
        // Oldest first across clients.
        due.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        due.truncate(limit.max(1));
        Ok(due)
    }

    async fn record_attempt(
        &self,
        client: &str,
        id: &str,
        attempt: &DeliveryAttempt,
        now: Timestamp,
    ) -> StoreResult<()> {
        let key = key_of(id)?;
        let mut expr = Expr::new();
        expr.increment("attempts", 1)
            .set(&["status"], items::value(&attempt.status, "status")?)
            .set(
                &["last_status_code"],
                items::value(&attempt.status_code, "status code")?,
            )
            .set(&["last_error"], items::value(&attempt.error, "error")?)
            .set(
                &["next_attempt_at"],
                items::value(&attempt.next_attempt_at, "next attempt")?,
            );
        if attempt.status != DeliveryStatus::Pending {
            expr.remove(&[GSI1PK])
                .remove(&[GSI1SK])
                .set(&[TTL], n(self.retention.run_expiry(now)));
        }
        let condition = format!("attribute_exists({})", expr.name(PK));
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(entry_key(client, key)))
            .update_expression(expr.update_expression())
            .condition_expression(condition)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Err(StoreError::NotFound),
            Err(e) => Err(backend("UpdateItem", &e)),
        }
    }

    async fn list_deliveries(
        &self,
        client: &str,
        after: Option<&Cursor>,
        limit: usize,
    ) -> StoreResult<Page<WebhookDelivery>> {
        let pk = keys::client_pk(client);
        let query = Query::partition(pk.clone(), WEBHOOK_PREFIX).newest_first();
        let start = |sk: &str| items::key(pk.clone(), sk);
        self.list(&query, after, limit.clamp(1, 500), start, decode)
            .await
    }

    async fn retry_delivery(
        &self,
        client: &str,
        id: &str,
        now: Timestamp,
    ) -> StoreResult<WebhookDelivery> {
        let key = key_of(id)?;
        let mut expr = Expr::new();
        expr.set(
            &["status"],
            items::value(&DeliveryStatus::Pending, "status")?,
        )
        .set(&["next_attempt_at"], n(now))
        .set(&[GSI1PK], s(PENDING_GSI_PK))
        .set(&[GSI1SK], s(gsi_sk(client, key)))
        .remove(&[TTL]);
        let condition = format!("attribute_exists({})", expr.name(PK));
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(entry_key(client, key)))
            .update_expression(expr.update_expression())
            .condition_expression(condition)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => decode(out.attributes.unwrap_or_default()),
            Err(e) if is_condition_failed(&e) => Err(StoreError::NotFound),
            Err(e) => Err(backend("UpdateItem", &e)),
        }
    }
}
