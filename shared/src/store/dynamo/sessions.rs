//! `LinkSessions`: single-use link sessions, one `SESSION#<hash>` item each.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;

use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};

use super::expr::{n, s, Expr};
use super::items::{self, Item, Keyed};
use super::keys::{self, PK};
use super::links::{build_error, transact, Transacted};
use super::{backend, backoff, is_condition_failed, DynamoStore, ATTEMPTS};
use crate::clock::Timestamp;
use crate::domain::LinkSession;
use crate::store::{ConsumedSession, LinkSessions, StoreError, StoreResult};

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
/// One transaction puts it, moves the user's pointer item (`LINKSESSION#<user>`, on condition
/// that it still names the session read) and deletes the session it named: one live session
/// per user, whatever races.
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
    let pointer_key = items::key(
        keys::client_pk(&session.client),
        keys::user_session_sk(&session.user_id),
    );
    for attempt in 1..=ATTEMPTS {
        let previous = store
            .get(pointer_key.clone())
            .await?
            .and_then(|item| item.get("state_hash").and_then(|v| v.as_s().ok()).cloned());
        let mut pointer = pointer_key.clone();
        pointer.insert("entity".into(), s(items::USER_SESSION));
        pointer.insert("state_hash".into(), s(&session.state_hash));
        pointer.insert("ttl".into(), n(session.expires_at));
        let mut expr = Expr::new();
        let condition = match &previous {
            Some(hash) => format!("{} = {}", expr.name("state_hash"), expr.value(s(hash))),
            None => format!("attribute_not_exists({})", expr.name(PK)),
        };
        let mut ops = vec![
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(&store.table)
                        .set_item(Some(item.clone()))
                        .build()
                        .map_err(build_error)?,
                )
                .build(),
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(&store.table)
                        .set_item(Some(pointer))
                        .condition_expression(condition)
                        .set_expression_attribute_names(expr.names())
                        .set_expression_attribute_values(expr.values())
                        .build()
                        .map_err(build_error)?,
                )
                .build(),
        ];
        if let Some(old) = previous.filter(|old| *old != session.state_hash) {
            ops.push(
                TransactWriteItem::builder()
                    .delete(
                        Delete::builder()
                            .table_name(&store.table)
                            .set_key(Some(session_key(&old)))
                            .build()
                            .map_err(build_error)?,
                    )
                    .build(),
            );
        }
        match transact(store, ops).await? {
            Transacted::Done => return Ok(()),
            Transacted::Refused(_) => backoff(attempt).await,
        }
    }
    Err(StoreError::Backend(
        "TransactWriteItems: the user's link session kept changing meanwhile".into(),
    ))
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
