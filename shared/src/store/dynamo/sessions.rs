//! `LinkSessions`: single-use link sessions, one `SESSION#<hash>` item each.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;

use super::expr::Expr;
use super::items::{self, Item, Keyed};
use super::keys::{self, PK};
use super::{backend, is_condition_failed, put, DynamoStore};
use crate::clock::Timestamp;
use crate::domain::LinkSession;
use crate::store::{ConsumedSession, LinkSessions, StoreResult};

#[async_trait]
impl LinkSessions for DynamoStore {
    async fn put_link_session(&self, session: &LinkSession) -> StoreResult<()> {
        put_link_session(self, session).await
    }

    async fn consume_link_session(
        &self,
        state_hash: &str,
        now: Timestamp,
    ) -> StoreResult<Option<ConsumedSession>> {
        consume_link_session(self, state_hash, now).await
    }
}

fn session_key(state_hash: &str) -> Item {
    items::key(keys::session_pk(state_hash), keys::SESSION)
}

/// The session's `ttl` is its `expires_at`: DynamoDB drops it some time after (up to days), so
/// expiry is also checked when it is consumed. `GSI1` finds a client's sessions on deletion.
async fn put_link_session(store: &DynamoStore, session: &LinkSession) -> StoreResult<()> {
    let item = Keyed::new(
        keys::session_pk(&session.state_hash),
        keys::SESSION.to_owned(),
        items::LINK_SESSION,
        session,
    )
    .gsi1(
        keys::sessions_gsi_pk(&session.client),
        session.state_hash.clone(),
    )
    .ttl(session.expires_at)
    .to_item()?;
    put(store, item).await
}

/// One conditional delete returning the old item, so exactly one of two racing callbacks gets it;
/// the caller learns from the item whether it had expired.
async fn consume_link_session(
    store: &DynamoStore,
    state_hash: &str,
    now: Timestamp,
) -> StoreResult<Option<ConsumedSession>> {
    // Deleted whether or not it expired (single use either way); expiry is checked on the item
    // returned, as DynamoDB's TTL sweep may be days late.
    let mut expr = Expr::new();
    let condition = format!("attribute_exists({})", expr.name(PK));
    let result = store
        .client
        .delete_item()
        .table_name(&store.table)
        .set_key(Some(session_key(state_hash)))
        .condition_expression(condition)
        .set_expression_attribute_names(expr.names())
        .set_expression_attribute_values(expr.values())
        .return_values(ReturnValue::AllOld)
        .send()
        .await;
    match result {
        Ok(out) => Ok(out
            .attributes
            .map(|item| items::decode::<LinkSession>(item, items::LINK_SESSION))
            .transpose()?
            .map(|session| {
                if now < session.expires_at {
                    ConsumedSession::Valid(session)
                } else {
                    ConsumedSession::Expired(session)
                }
            })),
        Err(e) if is_condition_failed(&e) => Ok(None),
        Err(e) => Err(backend("DeleteItem", &e)),
    }
}
