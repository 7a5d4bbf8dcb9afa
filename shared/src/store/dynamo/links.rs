//! Linking and unlinking: the member's link and the `DISCORD#` uniqueness item change together,
//! in one `TransactWriteItems` each.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem, Update};

use super::expr::{n, s, Expr};
use super::items::{self, AccountData, Item, Keyed, MemberData};
use super::keys::{self, PK};
use super::members::{
    account_holder, account_key, get, get_data, identify, member_key, set_pending,
};
use super::webhooks::outbox_puts;
use super::{backend, backoff, update_if, DynamoStore, Query, ATTEMPTS};
use crate::clock::Timestamp;
use crate::domain::{Link, LinkStatus, Member, UnlinkCleanup, Unlinking, WebhookEvent};
use crate::store::{StoreError, StoreResult};

/// ONE transaction: claim the account's `DISCORD#` item (absent, or already ours), release the
/// user's previous account (if another), and write the link on the member, on condition that
/// the member's link is still the one read. A claim refused on the account means another user
/// holds it: `DiscordAccountTaken`, nothing written. Any other refusal (a concurrent change) is
/// retried from a fresh read.
#[allow(clippy::too_many_arguments)]
pub(super) async fn create_link(
    store: &DynamoStore,
    client: &str,
    user_id: &str,
    link: &Link,
    replaced: Option<&UnlinkCleanup>,
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
        let current = get_data(store, client, user_id).await?;
        let old_link = current.as_ref().and_then(|m| m.link.as_ref());
        let old_account = old_link.map(|l| l.discord_user_id.clone());
        let (read_unlinking, rev) = current
            .as_ref()
            .map(|m| (m.unlinking.clone(), m.unlinking_rev))
            .unwrap_or_default();
        // The account is back: whatever clean-up it was waiting for is the new link's business.
        let mut unlinking = read_unlinking.clone();
        unlinking.remove(&link.discord_user_id);
        let retired = old_link
            .filter(|old| old.discord_user_id != link.discord_user_id)
            .zip(replaced)
            .and_then(|(old, cleanup)| cleanup.for_link(old, now));
        let pending = pending || retired.is_some();
        if let Some(retired) = retired {
            unlinking.insert(retired.discord_user_id.clone(), retired);
        }

        let events = WebhookEvent::for_new_link(user_id, old_link, link, replaced);
        let mut ops = Vec::with_capacity(3 + events.len());
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
        let mut condition = match &old_account {
            Some(old) => format!("{linked} = {}", write.value(s(old))),
            None => format!("attribute_not_exists({linked})"),
        };
        if unlinking != read_unlinking {
            write_unlinking(&mut write, &unlinking)?;
            condition = format!("{condition} AND {}", unlinking_unchanged(&mut write, rev));
        }
        ops.push(update(
            store,
            member_key(client, user_id),
            &write,
            condition,
        )?);
        // Last: a refusal's reason code is read from the first operation (the claim).
        ops.extend(outbox_puts(store, client, &events, now).await?);

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

pub(super) fn update(
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

pub(super) enum Transacted {
    Done,
    /// Cancelled; the reason code of each operation, in order (`"None"` for those that passed).
    Refused(Vec<String>),
}

pub(super) async fn transact(
    store: &DynamoStore,
    ops: Vec<TransactWriteItem>,
) -> StoreResult<Transacted> {
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

pub(super) fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Backend(format!("cannot build a request: {e}"))
}

fn contention(op: &str) -> StoreError {
    StoreError::Backend(format!("{op}: the item kept changing meanwhile"))
}

/// Deletes the `DISCORD#` item and clears the member's link in one transaction, on condition
/// that the member still has the link that was read. With a clean-up, the link becomes an
/// unlinking of the member (pending, version bumped) in the same write.
pub(super) async fn delete_link(
    store: &DynamoStore,
    client: &str,
    user_id: &str,
    cleanup: Option<&UnlinkCleanup>,
    now: Timestamp,
) -> StoreResult<Option<Link>> {
    for attempt in 1..=ATTEMPTS {
        let Some(member) = get_data(store, client, user_id).await? else {
            return Ok(None);
        };
        let Some(link) = member.link.clone() else {
            return Ok(None);
        };
        let mut write = Expr::new();
        write
            .remove(&["link"])
            .remove(&["discord_user_id"])
            .remove(&["link_status"]);
        let mut condition = format!(
            "{} = {}",
            write.name("discord_user_id"),
            write.value(s(&link.discord_user_id))
        );
        match cleanup.and_then(|c| c.for_link(&link, now)) {
            Some(retired) => {
                let mut unlinking = member.unlinking.clone();
                unlinking.insert(retired.discord_user_id.clone(), retired);
                write_unlinking(&mut write, &unlinking)?;
                set_pending(&mut write, client, user_id, true);
                write.set(&["updated_at"], n(now)).increment("version", 1);
                condition = format!(
                    "{condition} AND {}",
                    unlinking_unchanged(&mut write, member.unlinking_rev)
                );
            }
            // Nothing left for the writer, unless earlier unlinkings still wait.
            None if member.unlinking.is_empty() => set_pending(&mut write, client, user_id, false),
            None => {}
        }
        let removed = WebhookEvent::link_removed(user_id, &link, cleanup.map(|c| c.reason));
        let mut ops = vec![
            release_account(store, client, user_id, &link.discord_user_id)?,
            update(store, member_key(client, user_id), &write, condition)?,
        ];
        ops.extend(outbox_puts(store, client, &[removed], now).await?);
        match transact(store, ops).await? {
            Transacted::Done => return Ok(Some(link)),
            Transacted::Refused(_) => backoff(attempt).await,
        }
    }
    Err(contention("TransactWriteItems"))
}

/// Replaces (`Some`) or removes (`None`) one unlinking, if it is still there: a rewrite of the
/// member's `unlinking` map on condition that nobody rewrote it since it was read.
pub(super) async fn record_unlinking(
    store: &DynamoStore,
    client: &str,
    user_id: &str,
    discord_user_id: &str,
    progress: Option<&Unlinking>,
) -> StoreResult<()> {
    for attempt in 1..=ATTEMPTS {
        let Some(member) = get_data(store, client, user_id).await? else {
            return Ok(());
        };
        let mut unlinking = member.unlinking.clone();
        if !unlinking.contains_key(discord_user_id) {
            // Gone meanwhile (finished, or the account linked again): nothing to record.
            return Ok(());
        }
        match progress {
            Some(p) => unlinking.insert(discord_user_id.to_owned(), p.clone()),
            None => unlinking.remove(discord_user_id),
        };
        if rewrite_unlinking(store, client, user_id, &member, &unlinking, None).await? {
            return Ok(());
        }
        backoff(attempt).await;
    }
    Err(contention("UpdateItem"))
}

/// After a mapping change or `roles/sync`: every member with unlinkings becomes pending and
/// their refused clean-ups are tried again. Returns how many members without an active link
/// were marked (those with one are counted by the caller).
pub(super) async fn mark_unlinkings_pending(
    store: &DynamoStore,
    client: &str,
    now: Timestamp,
) -> StoreResult<u64> {
    let mut query = Query::partition(keys::client_pk(client), keys::USER_PREFIX);
    query.filter = Some(format!(
        "attribute_exists({})",
        query.expr.name("unlinking")
    ));
    let (found, _) = store.query(&query, None, None).await?;
    let mut marked = 0;
    for item in found {
        let mut member: MemberData = items::decode(item, items::MEMBER)?;
        for attempt in 1..=ATTEMPTS {
            if member.unlinking.is_empty() {
                break;
            }
            let mut unlinking = member.unlinking.clone();
            unlinking.values_mut().for_each(|u| u.refused = false);
            let user_id = member.user_id.clone();
            if rewrite_unlinking(store, client, &user_id, &member, &unlinking, Some(now)).await? {
                if member.link_status != Some(LinkStatus::Active) {
                    marked += 1;
                }
                break;
            }
            backoff(attempt).await;
            match get_data(store, client, &user_id).await? {
                Some(fresh) => member = fresh,
                None => break,
            }
        }
    }
    Ok(marked)
}

/// Writes `unlinking` (and, with `mark_pending_at`, marks the member pending with its version
/// bumped) on condition that the map is still the one `read` holds. `false`: it changed.
async fn rewrite_unlinking(
    store: &DynamoStore,
    client: &str,
    user_id: &str,
    read: &MemberData,
    unlinking: &BTreeMap<String, Unlinking>,
    mark_pending_at: Option<Timestamp>,
) -> StoreResult<bool> {
    let mut expr = Expr::new();
    write_unlinking(&mut expr, unlinking)?;
    if let Some(now) = mark_pending_at {
        set_pending(&mut expr, client, user_id, true);
        expr.set(&["updated_at"], n(now)).increment("version", 1);
    }
    let condition = format!(
        "attribute_exists({}) AND {}",
        expr.name(PK),
        unlinking_unchanged(&mut expr, read.unlinking_rev)
    );
    update_if(store, member_key(client, user_id), &expr, condition).await
}

/// `unlinking` as a whole (removed when empty), with its revision bumped.
fn write_unlinking(expr: &mut Expr, unlinking: &BTreeMap<String, Unlinking>) -> StoreResult<()> {
    if unlinking.is_empty() {
        expr.remove(&["unlinking"]);
    } else {
        expr.set(&["unlinking"], items::value(unlinking, "unlinking")?);
    }
    expr.increment("unlinking_rev", 1);
    Ok(())
}

/// The condition that `unlinking` was not rewritten since it was read at `rev` (0: never).
fn unlinking_unchanged(expr: &mut Expr, rev: i64) -> String {
    let name = expr.name("unlinking_rev");
    if rev == 0 {
        format!("attribute_not_exists({name})")
    } else {
        format!("{name} = {}", expr.value(n(rev)))
    }
}
