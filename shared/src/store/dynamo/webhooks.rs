//! `WebhookOutbox` on DynamoDB: not implemented yet. The link writes add no entries here, so a
//! client on AWS gets no website webhooks; these answer as an empty outbox.

use async_trait::async_trait;

use super::DynamoStore;
use crate::clock::Timestamp;
use crate::domain::{DeliveryAttempt, WebhookDelivery};
use crate::store::{Cursor, Page, StoreError, StoreResult, WebhookOutbox};

#[async_trait]
impl WebhookOutbox for DynamoStore {
    async fn due_deliveries(
        &self,
        _now: Timestamp,
        _limit: usize,
    ) -> StoreResult<Vec<WebhookDelivery>> {
        Ok(Vec::new())
    }

    async fn record_attempt(
        &self,
        _id: &str,
        _attempt: &DeliveryAttempt,
        _now: Timestamp,
    ) -> StoreResult<()> {
        Err(StoreError::NotFound)
    }

    async fn list_deliveries(
        &self,
        _client: &str,
        _after: Option<&Cursor>,
        _limit: usize,
    ) -> StoreResult<Page<WebhookDelivery>> {
        Ok(Page {
            items: Vec::new(),
            next: None,
        })
    }

    async fn retry_delivery(
        &self,
        _client: &str,
        _id: &str,
        _now: Timestamp,
    ) -> StoreResult<WebhookDelivery> {
        Err(StoreError::NotFound)
    }
}
