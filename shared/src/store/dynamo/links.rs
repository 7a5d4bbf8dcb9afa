//! Linking and unlinking: the member's link and the `DISCORD#` uniqueness item change together,
//! in one `TransactWriteItems` each.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem, Update};

use super::expr::{n, s, Expr};
use super::items::{self, AccountData, Item, Keyed};
use super::keys::{self, PK};
use super::members::{account_holder, account_key, get, identify, member_key, set_pending};
use super::{backend, backoff, DynamoStore, ATTEMPTS};
use crate::clock::Timestamp;
use crate::domain::{Link, Member};
use crate::store::{StoreError, StoreResult};

/// ONE transaction: claim the account's `DISCORD#` item (absent, or already ours), release the
/// user's previous account (if another), and write the link on the member, on condition that
/// the member's link is still the one read. A claim refused on the account means another user
/// holds it: `DiscordAccountTaken`, nothing written. Any other refusal (a concurrent change) is
/// retried from a fresh read.
pub(super) async fn create_link(
    store: &DynamoStore,
    client: &str,
    user_id: &str,
    link: &Link,
    pending: bool,
    now: Timestamp,
) -> StoreResult<Member> {
    let account = Keyed::new(
        keys::client_pk(client),
        keys::discord_sk(&link.discord_user_id),
        items::DISCORD_ACCOUNT,
        AccountData {
            client: client.to_owned(),
            discord_user_id: link.discord_user_id.clone(),
            user_id: user_id.to_owned(),
        },
    )
    .to_item()?;
    for attempt in 1..=ATTEMPTS {
        let current = get(store, client, user_id).await?;
        let old_account = current
            .as_ref()
            .and_then(|m| m.link.as_ref())
            .map(|l| l.discord_user_id.clone());

        let mut ops = Vec::with_capacity(3);
        let mut claim = Expr::new();
        let condition = format!(
            "attribute_not_exists({}) OR {} = {}",
            claim.name(PK),
            claim.name("user_id"),
            claim.value(s(user_id))
        );
        ops.push(
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(&store.table)
                        .set_item(Some(account.clone()))
                        .condition_expression(condition)
                        .set_expression_attribute_names(claim.names())
                        .set_expression_attribute_values(claim.values())
                        .build()
                        .map_err(build_error)?,
                )
                .build(),
        );
        if let Some(old) = old_account
            .as_deref()
            .filter(|old| *old != link.discord_user_id)
        {
            ops.push(release_account(store, client, user_id, old)?);
        }
        let mut write = Expr::new();
        identify(&mut write, client, user_id);
        write
            .set_default(
                "groups",
                items::value(&BTreeSet::<String>::new(), "groups")?,
            )
            .set_default(
                "attributes",
                items::value(&BTreeMap::<String, String>::new(), "attributes")?,
            )
            .set(&["link"], items::value(link, "link")?)
            .set(&["discord_user_id"], s(&link.discord_user_id))
            .set(&["link_status"], items::value(&link.status, "status")?)
            .set(&["updated_at"], n(now))
            .increment("version", 1);
        set_pending(&mut write, client, user_id, pending);
        let linked = write.name("discord_user_id");
        let condition = match &old_account {
            Some(old) => format!("{linked} = {}", write.value(s(old))),
            None => format!("attribute_not_exists({linked})"),
        };
        ops.push(update(
            store,
            member_key(client, user_id),
            &write,
            condition,
        )?);

        match transact(store, ops).await? {
            Transacted::Done => {
                return get(store, client, user_id).await?.ok_or_else(|| {
                    StoreError::Backend("the member vanished right after linking".into())
                });
            }
            Transacted::Refused(codes) if codes.first().is_some_and(|c| c == CONDITION) => {
                match account_holder(store, client, &link.discord_user_id).await? {
                    Some(holder) if holder != user_id => {
                        return Err(StoreError::DiscordAccountTaken { user_id: holder });
                    }
                    // Freed (or ours) meanwhile: try again.
                    _ => backoff(attempt).await,
                }
            }
            Transacted::Refused(_) => backoff(attempt).await,
        }
    }
    Err(contention("TransactWriteItems"))
}

/// Deletes the `DISCORD#` item of `discord_user_id` if it is held by `user_id` (or already gone).
fn release_account(
    store: &DynamoStore,
    client: &str,
    user_id: &str,
    discord_user_id: &str,
) -> StoreResult<TransactWriteItem> {
    let mut expr = Expr::new();
    let condition = format!(
        "attribute_not_exists({}) OR {} = {}",
        expr.name(PK),
        expr.name("user_id"),
        expr.value(s(user_id))
    );
    Ok(TransactWriteItem::builder()
        .delete(
            Delete::builder()
                .table_name(&store.table)
                .set_key(Some(account_key(client, discord_user_id)))
                .condition_expression(condition)
                .set_expression_attribute_names(expr.names())
                .set_expression_attribute_values(expr.values())
                .build()
                .map_err(build_error)?,
        )
        .build())
}

fn update(
    store: &DynamoStore,
    key: Item,
    expr: &Expr,
    condition: String,
) -> StoreResult<TransactWriteItem> {
    Ok(TransactWriteItem::builder()
        .update(
            Update::builder()
                .table_name(&store.table)
                .set_key(Some(key))
                .update_expression(expr.update_expression())
                .condition_expression(condition)
                .set_expression_attribute_names(expr.names())
                .set_expression_attribute_values(expr.values())
                .build()
                .map_err(build_error)?,
        )
        .build())
}

/// DynamoDB's cancellation reason for a failed condition.
const CONDITION: &str = "ConditionalCheckFailed";

enum Transacted {
    Done,
    /// Cancelled; the reason code of each operation, in order (`"None"` for those that passed).
    Refused(Vec<String>),
}

async fn transact(store: &DynamoStore, ops: Vec<TransactWriteItem>) -> StoreResult<Transacted> {
    let result = store
        .client
        .transact_write_items()
        .set_transact_items(Some(ops))
        .send()
        .await;
    match result {
        Ok(_) => Ok(Transacted::Done),
        Err(SdkError::ServiceError(e)) => match e.err() {
            TransactWriteItemsError::TransactionCanceledException(cancelled) => {
                Ok(Transacted::Refused(
                    cancelled
                        .cancellation_reasons()
                        .iter()
                        .map(|r| r.code().unwrap_or("None").to_owned())
                        .collect(),
                ))
            }
            _ => Err(backend("TransactWriteItems", &SdkError::ServiceError(e))),
        },
        Err(e) => Err(backend("TransactWriteItems", &e)),
    }
}

fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Backend(format!("cannot build a request: {e}"))
}

fn contention(op: &str) -> StoreError {
    StoreError::Backend(format!("{op}: the item kept changing meanwhile"))
}

/// Deletes the `DISCORD#` item and clears the member's link (and `pending`) in one transaction,
/// on condition that the member still has the link that was read.
pub(super) async fn delete_link(
    store: &DynamoStore,
    client: &str,
    user_id: &str,
) -> StoreResult<Option<Link>> {
    for attempt in 1..=ATTEMPTS {
        let Some(link) = get(store, client, user_id).await?.and_then(|m| m.link) else {
            return Ok(None);
        };
        let mut write = Expr::new();
        write
            .remove(&["link"])
            .remove(&["discord_user_id"])
            .remove(&["link_status"]);
        set_pending(&mut write, client, user_id, false);
        let condition = format!(
            "{} = {}",
            write.name("discord_user_id"),
            write.value(s(&link.discord_user_id))
        );
        let ops = vec![
            release_account(store, client, user_id, &link.discord_user_id)?,
            update(store, member_key(client, user_id), &write, condition)?,
        ];
        match transact(store, ops).await? {
            Transacted::Done => return Ok(Some(link)),
            Transacted::Refused(_) => backoff(attempt).await,
        }
    }
    Err(contention("TransactWriteItems"))
}
