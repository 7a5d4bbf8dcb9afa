//! `MemberStore`: site users and what tasks record on them, `USER#` items and the sparse pending
//! GSI. Linking and unlinking (with the `DISCORD#` uniqueness items) are in `links`.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;
use tokio::task::JoinSet;

use super::expr::{b, n, s, Expr};
use super::items::{self, AccountData, Item, MemberData};
use super::keys::{self, GSI1PK, GSI1SK};
use super::webhooks::outbox_puts;
use super::{backend, is_condition_failed, links, update_if, DynamoStore, Query};
use crate::clock::Timestamp;
use crate::domain::linked_roles::RoleConnection;
use crate::domain::{
    Link, LinkStatus, Member, MemberCounts, SiteUser, StoredTokens, UnlinkCleanup, Unlinking,
    WebhookEvent,
};
use crate::store::{Cursor, MemberStore, Outcome, Page, StoreError, StoreResult};

#[async_trait]
impl MemberStore for DynamoStore {
    async fn get_member(&self, client: &str, user_id: &str) -> StoreResult<Option<Member>> {
        get(self, client, user_id).await
    }

    async fn find_member_by_discord(
        &self,
        client: &str,
        discord_user_id: &str,
    ) -> StoreResult<Option<Member>> {
        find_by_discord(self, client, discord_user_id).await
    }

    async fn save_site_user(
        &self,
        client: &str,
        user: &SiteUser,
        pending: bool,
        now: Timestamp,
    ) -> StoreResult<Member> {
        save_site_user(self, client, user, pending, now).await
    }

    async fn create_link(
        &self,
        client: &str,
        user_id: &str,
        link: &Link,
        replaced: Option<&UnlinkCleanup>,
        pending: bool,
        now: Timestamp,
    ) -> StoreResult<Member> {
        links::create_link(self, client, user_id, link, replaced, pending, now).await
    }

    async fn delete_link(
        &self,
        client: &str,
        user_id: &str,
        cleanup: Option<&UnlinkCleanup>,
        now: Timestamp,
    ) -> StoreResult<Option<Link>> {
        links::delete_link(self, client, user_id, cleanup, now).await
    }

    async fn record_unlinking(
        &self,
        client: &str,
        user_id: &str,
        discord_user_id: &str,
        progress: Option<&Unlinking>,
    ) -> StoreResult<()> {
        links::record_unlinking(self, client, user_id, discord_user_id, progress).await
    }

    async fn clear_pending(
        &self,
        client: &str,
        user_id: &str,
        expected_version: i64,
        now: Timestamp,
    ) -> StoreResult<bool> {
        clear_pending(self, client, user_id, expected_version, now).await
    }

    async fn record_outcome(
        &self,
        client: &str,
        user_id: &str,
        expected_version: i64,
        outcome: &Outcome,
        now: Timestamp,
    ) -> StoreResult<bool> {
        record_outcome(self, client, user_id, expected_version, outcome, now).await
    }

    async fn set_tokens(
        &self,
        client: &str,
        user_id: &str,
        tokens: Option<&StoredTokens>,
    ) -> StoreResult<()> {
        set_tokens(self, client, user_id, tokens).await
    }

    async fn set_role_connection(
        &self,
        client: &str,
        user_id: &str,
        discord_user_id: &str,
        pushed: Option<&RoleConnection>,
    ) -> StoreResult<()> {
        let mut expr = Expr::new();
        expr.set(
            &["link", "role_connection"],
            items::value(&pushed, "role_connection")?,
        );
        // Only the link to that account: after a relink the new one's connection is still due.
        let account = expr.path(&["link", "discord_user_id"]);
        let wanted = expr.value(s(discord_user_id));
        let condition = format!("{account} = {wanted}");
        if update_if(self, member_key(client, user_id), &expr, condition).await? {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    async fn request_relink(
        &self,
        client: &str,
        user_id: &str,
        discord_user_id: &str,
        missing_scope: &str,
        now: Timestamp,
    ) -> StoreResult<bool> {
        request_relink(self, client, user_id, discord_user_id, missing_scope, now).await
    }

    async fn mark_all_linked_pending(&self, client: &str, now: Timestamp) -> StoreResult<u64> {
        mark_all_linked_pending(self, client, now).await
    }

    async fn mark_member_pending(
        &self,
        client: &str,
        user_id: &str,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let mut expr = Expr::new();
        set_pending(&mut expr, client, user_id, true);
        expr.set(&["updated_at"], n(now)).increment("version", 1);
        let condition = format!("attribute_exists({})", expr.name("version"));
        update_if(self, member_key(client, user_id), &expr, condition).await
    }

    async fn list_pending(
        &self,
        client: &str,
        after: Option<&Cursor>,
        limit: usize,
    ) -> StoreResult<Page<Member>> {
        list(self, client, true, after, limit).await
    }

    async fn list_members(
        &self,
        client: &str,
        after: Option<&Cursor>,
        limit: usize,
    ) -> StoreResult<Page<Member>> {
        list(self, client, false, after, limit).await
    }

    async fn list_linked_by_discord(
        &self,
        client: &str,
        after_discord_id: Option<u64>,
        limit: usize,
    ) -> StoreResult<Page<Member>> {
        list_linked_by_discord(self, client, after_discord_id, limit).await
    }

    async fn count_members(&self, client: &str) -> StoreResult<MemberCounts> {
        super::member_counts::count_members(self, client).await
    }
}

/// How many conditional updates `mark_all_linked_pending` keeps in flight.
const PARALLEL_UPDATES: usize = 16;

pub(super) fn member_key(client: &str, user_id: &str) -> Item {
    items::key(keys::client_pk(client), keys::member_sk(user_id))
}

pub(super) fn account_key(client: &str, discord_user_id: &str) -> Item {
    items::key(keys::client_pk(client), keys::discord_sk(discord_user_id))
}

fn decode_member(item: Item) -> StoreResult<Member> {
    items::decode::<MemberData>(item, items::MEMBER).map(Member::from)
}

/// The attributes that make an item a member (for upserts that may create it).
pub(super) fn identify(expr: &mut Expr, client: &str, user_id: &str) {
    expr.set(&["entity"], s(items::MEMBER))
        .set(&["client"], s(client))
        .set(&["user_id"], s(user_id));
}

/// Sets `pending` and, only while it is true, the member's entry in the sparse pending index.
pub(super) fn set_pending(expr: &mut Expr, client: &str, user_id: &str, pending: bool) {
    expr.set(&["pending"], b(pending));
    if pending {
        expr.set(&[GSI1PK], s(keys::pending_gsi_pk(client)))
            .set(&[GSI1SK], s(keys::member_sk(user_id)));
    } else {
        expr.remove(&[GSI1PK]).remove(&[GSI1SK]);
    }
}

pub(super) async fn get(
    store: &DynamoStore,
    client: &str,
    user_id: &str,
) -> StoreResult<Option<Member>> {
    Ok(get_data(store, client, user_id).await?.map(Member::from))
}

/// The member item as stored (with `unlinking_rev`, for conditional rewrites of `unlinking`).
pub(super) async fn get_data(
    store: &DynamoStore,
    client: &str,
    user_id: &str,
) -> StoreResult<Option<MemberData>> {
    store
        .get(member_key(client, user_id))
        .await?
        .map(|item| items::decode::<MemberData>(item, items::MEMBER))
        .transpose()
}

/// Through the account's uniqueness item, then the member (both strongly consistent reads).
async fn find_by_discord(
    store: &DynamoStore,
    client: &str,
    discord_user_id: &str,
) -> StoreResult<Option<Member>> {
    let Some(holder) = account_holder(store, client, discord_user_id).await? else {
        return Ok(None);
    };
    let member = get(store, client, &holder).await?;
    // Between the two reads the link may have changed: only a member still linked counts.
    Ok(member.filter(|m| {
        m.link
            .as_ref()
            .is_some_and(|l| l.discord_user_id == discord_user_id)
    }))
}

pub(super) async fn account_holder(
    store: &DynamoStore,
    client: &str,
    discord_user_id: &str,
) -> StoreResult<Option<String>> {
    Ok(store
        .get(account_key(client, discord_user_id))
        .await?
        .map(|item| items::decode::<AccountData>(item, items::DISCORD_ACCOUNT))
        .transpose()?
        .map(|account| account.user_id))
}

async fn save_site_user(
    store: &DynamoStore,
    client: &str,
    user: &SiteUser,
    pending: bool,
    now: Timestamp,
) -> StoreResult<Member> {
    let mut expr = Expr::new();
    identify(&mut expr, client, &user.user_id);
    expr.set(&["groups"], items::value(&user.groups, "groups")?)
        .set(
            &["attributes"],
            items::value(&user.attributes, "attributes")?,
        )
        .set(&["updated_at"], n(now))
        .increment("version", 1);
    set_pending(&mut expr, client, &user.user_id, pending);
    let out = store
        .client
        .update_item()
        .table_name(&store.table)
        .set_key(Some(member_key(client, &user.user_id)))
        .update_expression(expr.update_expression())
        .set_expression_attribute_names(expr.names())
        .set_expression_attribute_values(expr.values())
        .return_values(ReturnValue::AllNew)
        .send()
        .await
        .map_err(|e| backend("UpdateItem", &e))?;
    decode_member(out.attributes.unwrap_or_default())
}

/// What an outcome writes regardless of the version: it describes Discord. Nested paths leave
/// the rest of the link (tokens, linked_at) untouched.
fn outcome_update(expr: &mut Expr, outcome: &Outcome, now: Timestamp) -> StoreResult<()> {
    expr.set(
        &["link", "applied_roles"],
        items::value(&outcome.applied_roles, "roles")?,
    )
    .set(
        &["link", "nickname"],
        items::value(&outcome.nickname, "nickname")?,
    )
    .set(
        &["link", "status"],
        items::value(&outcome.status, "status")?,
    )
    .set(&["link_status"], items::value(&outcome.status, "status")?)
    .set(&["updated_at"], n(now));
    if let Some(username) = &outcome.username {
        expr.set(&["link", "username"], s(username));
    }
    if let Some(global_name) = &outcome.global_name {
        expr.set(
            &["link", "global_name"],
            items::value(global_name, "global name")?,
        );
    }
    match &outcome.last_error {
        Some(error) => expr.set(&["last_error"], items::value(error, "last error")?),
        None => expr.remove(&["last_error"]),
    };
    match &outcome.refused {
        // Absent when empty, as serde writes a link (and DynamoDB has no empty sets).
        Some(refused) if refused.is_empty() => {
            expr.remove(&["link", "refused"]);
        }
        Some(refused) => {
            expr.set(
                &["link", "refused"],
                items::value(refused, "refused writes")?,
            );
        }
        None => {}
    }
    if outcome.roles_observed {
        expr.set(&["link", "roles_known"], b(true));
    }
    Ok(())
}

/// First try: write the outcome and `pending` on condition `version = expected` (and a link).
/// If that condition fails, write the outcome alone on condition of a link, and report the
/// `pending` the member has.
async fn record_outcome(
    store: &DynamoStore,
    client: &str,
    user_id: &str,
    expected_version: i64,
    outcome: &Outcome,
    now: Timestamp,
) -> StoreResult<bool> {
    if let Some(clear) =
        record_outcome_with_events(store, client, user_id, expected_version, outcome, now).await?
    {
        return Ok(clear);
    }
    let mut guarded = Expr::new();
    outcome_update(&mut guarded, outcome, now)?;
    set_pending(&mut guarded, client, user_id, outcome.still_pending);
    let condition = format!(
        "attribute_exists({}) AND {} = {}",
        guarded.name("link"),
        guarded.name("version"),
        guarded.value(n(expected_version))
    );
    let result = store
        .client
        .update_item()
        .table_name(&store.table)
        .set_key(Some(member_key(client, user_id)))
        .update_expression(guarded.update_expression())
        .condition_expression(condition)
        .set_expression_attribute_names(guarded.names())
        .set_expression_attribute_values(guarded.values())
        .send()
        .await;
    match result {
        Ok(_) => return Ok(!outcome.still_pending),
        Err(e) if is_condition_failed(&e) => {}
        Err(e) => return Err(backend("UpdateItem", &e)),
    }

    let mut plain = Expr::new();
    outcome_update(&mut plain, outcome, now)?;
    let condition = format!("attribute_exists({})", plain.name("link"));
    let result = store
        .client
        .update_item()
        .table_name(&store.table)
        .set_key(Some(member_key(client, user_id)))
        .update_expression(plain.update_expression())
        .condition_expression(condition)
        .set_expression_attribute_names(plain.names())
        .set_expression_attribute_values(plain.values())
        .return_values(ReturnValue::AllNew)
        .send()
        .await;
    match result {
        Ok(out) => Ok(!decode_member(out.attributes.unwrap_or_default())?.pending),
        Err(e) if is_condition_failed(&e) => Err(StoreError::NotFound),
        Err(e) => Err(backend("UpdateItem", &e)),
    }
}

/// An outcome that changes what the website is told (left, returned, revoked, a new refusal):
/// the member's update and the outbox entries in ONE transaction, on condition that the link's
/// status is still the one the events were derived from. `None`: no events for this outcome
/// (or no webhook URL) — the plain path records it.
async fn record_outcome_with_events(
    store: &DynamoStore,
    client: &str,
    user_id: &str,
    expected_version: i64,
    outcome: &Outcome,
    now: Timestamp,
) -> StoreResult<Option<bool>> {
    for attempt in 1..=super::ATTEMPTS {
        let member = get_data(store, client, user_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let link = member.link.as_ref().ok_or(StoreError::NotFound)?;
        let events = WebhookEvent::for_outcome(
            user_id,
            link,
            outcome.status,
            member.last_error.as_ref(),
            outcome.last_error.as_ref(),
        );
        let puts = outbox_puts(store, client, &events, now).await?;
        if puts.is_empty() {
            return Ok(None);
        }
        // The version guard as in the plain path: `pending` is cleared only if nothing changed.
        let guarded = member.version == expected_version;
        let mut expr = Expr::new();
        outcome_update(&mut expr, outcome, now)?;
        if guarded {
            set_pending(&mut expr, client, user_id, outcome.still_pending);
        }
        let mut condition = format!(
            "attribute_exists({}) AND {} = {}",
            expr.name("link"),
            expr.name("link_status"),
            expr.value(items::value(&link.status, "status")?)
        );
        if guarded {
            condition = format!(
                "{condition} AND {} = {}",
                expr.name("version"),
                expr.value(n(expected_version))
            );
        }
        let mut ops = vec![links::update(
            store,
            member_key(client, user_id),
            &expr,
            condition,
        )?];
        ops.extend(puts);
        match links::transact(store, ops).await? {
            links::Transacted::Done if guarded => return Ok(Some(!outcome.still_pending)),
            links::Transacted::Done => {
                let pending = get_data(store, client, user_id)
                    .await?
                    .is_some_and(|m| m.pending);
                return Ok(Some(!pending));
            }
            links::Transacted::Refused(_) => super::backoff(attempt).await,
        }
    }
    Err(StoreError::Backend(
        "TransactWriteItems: the member kept changing meanwhile".into(),
    ))
}

/// The link's mark and the `link.needs_relink` entry in one transaction, on condition that the
/// link is still the active one to that account and not told yet; a refusal re-reads (a
/// concurrent change may have made the request moot).
async fn request_relink(
    store: &DynamoStore,
    client: &str,
    user_id: &str,
    discord_user_id: &str,
    missing_scope: &str,
    now: Timestamp,
) -> StoreResult<bool> {
    for attempt in 1..=super::ATTEMPTS {
        let Some(member) = get_data(store, client, user_id).await? else {
            return Ok(false);
        };
        let Some(link) = member.link.as_ref() else {
            return Ok(false);
        };
        if link.discord_user_id != discord_user_id
            || link.status != LinkStatus::Active
            || link.relink_requested_at.is_some()
        {
            return Ok(false);
        }
        let mut expr = Expr::new();
        expr.set(&["link", "relink_requested_at"], n(now));
        let account = expr.path(&["link", "discord_user_id"]);
        let wanted = expr.value(s(discord_user_id));
        let told = expr.path(&["link", "relink_requested_at"]);
        let condition = format!(
            "{account} = {wanted} AND attribute_not_exists({told}) AND {} = {}",
            expr.name("link_status"),
            expr.value(items::value(&LinkStatus::Active, "status")?)
        );
        let event = WebhookEvent::needs_relink(user_id, link, missing_scope);
        let puts = outbox_puts(store, client, &[event], now).await?;
        let key = member_key(client, user_id);
        if puts.is_empty() {
            if update_if(store, key, &expr, condition).await? {
                return Ok(true);
            }
        } else {
            let mut ops = vec![links::update(store, key, &expr, condition)?];
            ops.extend(puts);
            if let links::Transacted::Done = links::transact(store, ops).await? {
                return Ok(true);
            }
        }
        super::backoff(attempt).await;
    }
    Err(StoreError::Backend(
        "TransactWriteItems: the member kept changing meanwhile".into(),
    ))
}

async fn set_tokens(
    store: &DynamoStore,
    client: &str,
    user_id: &str,
    tokens: Option<&StoredTokens>,
) -> StoreResult<()> {
    let mut expr = Expr::new();
    expr.set(&["link", "tokens"], items::value(&tokens, "tokens")?);
    let condition = format!("attribute_exists({})", expr.name("link"));
    if update_if(store, member_key(client, user_id), &expr, condition).await? {
        Ok(())
    } else {
        Err(StoreError::NotFound)
    }
}

/// Finds the active links (a filtered key-only query of the client's members), then marks each
/// pending with a conditional update — version bumped, refused writes forgotten — a few in
/// parallel. DynamoDB has no
/// multi-item update; BatchWriteItem can only put or delete.
async fn mark_all_linked_pending(
    store: &DynamoStore,
    client: &str,
    now: Timestamp,
) -> StoreResult<u64> {
    let mut query = Query::partition(keys::client_pk(client), keys::USER_PREFIX).keys_only();
    let status = items::value(&LinkStatus::Active, "status")?;
    query.filter = Some(format!(
        "{} = {}",
        query.expr.name("link_status"),
        query.expr.value(status.clone())
    ));
    let (linked, _) = store.query(&query, None, None).await?;

    let mut marked = 0;
    let mut in_flight = JoinSet::new();
    for item in linked {
        let sk = items::key_string(&item, keys::SK)?;
        let user_id = sk.strip_prefix(keys::USER_PREFIX).unwrap_or(sk).to_owned();
        let mut expr = Expr::new();
        set_pending(&mut expr, client, &user_id, true);
        expr.set(&["updated_at"], n(now))
            .increment("version", 1)
            .remove(&["link", "refused"]);
        let condition = format!(
            "{} = {}",
            expr.name("link_status"),
            expr.value(status.clone())
        );
        let request = store
            .client
            .update_item()
            .table_name(&store.table)
            .set_key(Some(member_key(client, &user_id)))
            .update_expression(expr.update_expression())
            .condition_expression(condition)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values());
        in_flight.spawn(async move {
            match request.send().await {
                Ok(_) => Ok(1),
                // No longer active meanwhile.
                Err(e) if is_condition_failed(&e) => Ok(0),
                Err(e) => Err(backend("UpdateItem", &e)),
            }
        });
        if in_flight.len() >= PARALLEL_UPDATES {
            marked += joined(in_flight.join_next().await)?;
        }
    }
    while let Some(done) = in_flight.join_next().await {
        marked += joined(Some(done))?;
    }
    marked += links::mark_unlinkings_pending(store, client, now).await?;
    Ok(marked)
}

async fn clear_pending(
    store: &DynamoStore,
    client: &str,
    user_id: &str,
    expected_version: i64,
    now: Timestamp,
) -> StoreResult<bool> {
    let mut expr = Expr::new();
    set_pending(&mut expr, client, user_id, false);
    expr.set(&["updated_at"], n(now));
    let condition = format!(
        "{} = {}",
        expr.name("version"),
        expr.value(n(expected_version))
    );
    update_if(store, member_key(client, user_id), &expr, condition).await
}

fn joined(done: Option<Result<StoreResult<u64>, tokio::task::JoinError>>) -> StoreResult<u64> {
    match done {
        None => Ok(0),
        Some(Ok(result)) => result,
        Some(Err(_)) => Err(StoreError::Backend("an update task failed".into())),
    }
}

/// Members by user id: the client's `USER#` items, or for `pending_only` the client's partition
/// of the sparse GSI, which holds pending members and nothing else.
async fn list(
    store: &DynamoStore,
    client: &str,
    pending_only: bool,
    after: Option<&Cursor>,
    limit: usize,
) -> StoreResult<Page<Member>> {
    let client_pk = keys::client_pk(client);
    if pending_only {
        let pending_pk = keys::pending_gsi_pk(client);
        let query = Query::gsi1(pending_pk.clone(), keys::USER_PREFIX);
        let start = |sk: &str| {
            let mut key = items::key(client_pk.clone(), sk);
            key.insert(GSI1PK.to_owned(), s(pending_pk.clone()));
            key.insert(GSI1SK.to_owned(), s(sk));
            key
        };
        store.list(&query, after, limit, start, decode_member).await
    } else {
        let query = Query::partition(client_pk.clone(), keys::USER_PREFIX);
        let start = |sk: &str| items::key(client_pk.clone(), sk);
        store.list(&query, after, limit, start, decode_member).await
    }
}

/// Linked members in Discord's numeric order: the client's `DISCORD#N#` uniqueness items (sort
/// key = zero-padded id) from `after_discord_id` on, then their members in one batch read. A
/// member whose link moved on between the two reads is left out.
async fn list_linked_by_discord(
    store: &DynamoStore,
    client: &str,
    after_discord_id: Option<u64>,
    limit: usize,
) -> StoreResult<Page<Member>> {
    let client_pk = keys::client_pk(client);
    let query = Query::partition(client_pk.clone(), keys::DISCORD_NUMERIC_PREFIX);
    let start =
        after_discord_id.map(|id| items::key(client_pk.clone(), keys::numeric_discord_sk(id)));
    let (found, more) = store.query(&query, start, Some(limit.max(1))).await?;
    let accounts = found
        .into_iter()
        .map(|item| items::decode::<AccountData>(item, items::DISCORD_ACCOUNT))
        .collect::<StoreResult<Vec<_>>>()?;

    let mut wanted: Vec<&str> = accounts.iter().map(|a| a.user_id.as_str()).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let member_keys = wanted.iter().map(|u| member_key(client, u)).collect();
    let mut members: HashMap<String, Member> = store
        .batch_get(member_keys)
        .await?
        .into_iter()
        .map(|item| decode_member(item).map(|m| (m.user.user_id.clone(), m)))
        .collect::<StoreResult<_>>()?;

    let next = if more {
        accounts.last().map(|a| Cursor::encode(&a.discord_user_id))
    } else {
        None
    };
    let items = accounts
        .iter()
        .filter_map(|account| {
            members.remove(&account.user_id).filter(|m| {
                m.link
                    .as_ref()
                    .is_some_and(|l| l.discord_user_id == account.discord_user_id)
            })
        })
        .collect();
    Ok(Page { items, next })
}
