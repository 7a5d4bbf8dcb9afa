//! `WebhookOutbox`: the website webhooks' durable outbox. Entries are never written through this
//! port: the store's own link writes (`create_link`, `delete_link`, `record_outcome`) add them in
//! the same write as the change they describe, so a crash can neither lose an event nor invent
//! one. Only clients with a `webhook_url` at the time of the change get entries.

use async_trait::async_trait;

use super::{Cursor, Page, StoreResult};
use crate::clock::Timestamp;
use crate::domain::{DeliveryAttempt, WebhookDelivery};

#[async_trait]
pub trait WebhookOutbox: Send + Sync {
    /// Pending entries due at `now`, oldest first, at most one per (client, user): an entry is
    /// only due when no older entry of the same user is still pending, so a website sees one
    /// user's events in order.
    async fn due_deliveries(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<WebhookDelivery>>;

    /// Records one attempt: `attempts` + 1 and the outcome. `NotFound` when the entry is gone.
    async fn record_attempt(
        &self,
        client: &str,
        id: &str,
        attempt: &DeliveryAttempt,
        now: Timestamp,
    ) -> StoreResult<()>;

    /// A client's entries, newest first.
    async fn list_deliveries(
        &self,
        client: &str,
        after: Option<&Cursor>,
        limit: usize,
    ) -> StoreResult<Page<WebhookDelivery>>;

    /// Makes a delivered or failed entry pending again, due at `now` (a pending one just becomes
    /// due). Returns the entry; `NotFound` when the client has no such entry.
    async fn retry_delivery(
        &self,
        client: &str,
        id: &str,
        now: Timestamp,
    ) -> StoreResult<WebhookDelivery>;
}
