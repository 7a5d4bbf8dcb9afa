//! Link sessions, run reports, the audit trail, settings and leases.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::{PutRequest, ReturnValue, WriteRequest};

use super::expr::{n, s, Expr};
use super::items::{self, Item, Keyed, LeaseData, SettingData};
use super::keys::{self, PK, TTL};
use super::{backend, is_condition_failed, put, put_if, DynamoStore, Query};
use crate::clock::Timestamp;
use crate::domain::{AuditEntry, LinkSession, RunReport};
use crate::store::{ConsumedSession, Cursor, LeaseGrant, Page, StoreError, StoreResult};

// --- link sessions ---------------------------------------------------------------------------

fn session_key(state_hash: &str) -> Item {
    items::key(keys::session_pk(state_hash), keys::SESSION)
}

/// The session's `ttl` is its `expires_at`: DynamoDB drops it some time after (up to days), so
/// expiry is also checked when it is consumed. `GSI1` finds a client's sessions on deletion.
pub(super) async fn put_link_session(
    store: &DynamoStore,
    session: &LinkSession,
) -> StoreResult<()> {
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
pub(super) async fn consume_link_session(
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

// --- runs --------------------------------------------------------------------------------------

/// Keyed by `(started_at, id)`: a report saved again as it progresses keeps its `started_at`, so
/// the second put replaces the first.
pub(super) async fn put_run(store: &DynamoStore, report: &RunReport) -> StoreResult<()> {
    let item = Keyed::new(
        keys::client_pk(&report.client),
        keys::run_sk(report.started_at, &report.id),
        items::RUN,
        report,
    )
    .to_item()?;
    put(store, item).await
}

/// Newest first: the sort key is `(started_at, id)`, read backwards.
pub(super) async fn list_runs(
    store: &DynamoStore,
    client: &str,
    after: Option<&Cursor>,
    limit: usize,
) -> StoreResult<Page<RunReport>> {
    let pk = keys::client_pk(client);
    let query = Query::partition(pk.clone(), keys::RUN_PREFIX).newest_first();
    let start = |sk: &str| items::key(pk.clone(), sk);
    store
        .list(&query, after, limit, start, |item| {
            items::decode(item, items::RUN)
        })
        .await
}

// --- audit -------------------------------------------------------------------------------------

/// Orders entries written within the same second by when they were written (wall clock, then a
/// per-process counter), after the entry's own `at`.
fn audit_tiebreak(index: usize) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{nanos:032x}{index:08x}{count:08x}")
}

pub(super) async fn append_audit(store: &DynamoStore, entries: &[AuditEntry]) -> StoreResult<()> {
    let mut requests = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let item = Keyed::new(
            keys::client_pk(&entry.client),
            keys::audit_sk(entry.at, &audit_tiebreak(index)),
            items::AUDIT,
            entry,
        )
        .to_item()?;
        let put = PutRequest::builder()
            .set_item(Some(item))
            .build()
            .map_err(|e| StoreError::Backend(format!("BatchWriteItem: {e}")))?;
        requests.push(WriteRequest::builder().put_request(put).build());
    }
    store.batch_write(requests).await
}

/// Newest first: by `at`, then by when they were appended.
pub(super) async fn list_audit(
    store: &DynamoStore,
    client: &str,
    after: Option<&Cursor>,
    limit: usize,
) -> StoreResult<Page<AuditEntry>> {
    let pk = keys::client_pk(client);
    let query = Query::partition(pk.clone(), keys::AUDIT_PREFIX).newest_first();
    let start = |sk: &str| items::key(pk.clone(), sk);
    store
        .list(&query, after, limit, start, |item| {
            items::decode(item, items::AUDIT)
        })
        .await
}

// --- settings and leases -------------------------------------------------------------------------

pub(super) async fn get_setting(store: &DynamoStore, key: &str) -> StoreResult<Option<String>> {
    Ok(store
        .get(items::key(keys::setting_pk(key), keys::SETTING))
        .await?
        .map(|item| items::decode::<SettingData>(item, items::SETTING))
        .transpose()?
        .map(|setting| setting.value))
}

pub(super) async fn put_setting_if_absent(
    store: &DynamoStore,
    key: &str,
    value: &str,
) -> StoreResult<bool> {
    let item = Keyed::new(
        keys::setting_pk(key),
        keys::SETTING.to_owned(),
        items::SETTING,
        SettingData {
            key: key.to_owned(),
            value: value.to_owned(),
        },
    )
    .to_item()?;
    let mut expr = Expr::new();
    let condition = format!("attribute_not_exists({})", expr.name(PK));
    put_if(store, item, condition, &expr).await
}

/// How long a lease item outlives its expiry before DynamoDB's TTL may drop it, so the handover
/// still reaches a holder that comes a while after the last one stopped (or died).
const LEASE_KEEP_SECS: i64 = 86_400;

fn lease_key(name: &str) -> Item {
    items::key(keys::lease_pk(name), keys::LEASE)
}

/// Runs a conditional UpdateItem on the lease `name`: `Some(old attributes)` when it was written
/// (empty when the item was new), `None` when the condition failed.
async fn update_lease(
    store: &DynamoStore,
    name: &str,
    expr: &Expr,
    condition: String,
    return_values: ReturnValue,
) -> StoreResult<Option<Item>> {
    let result = store
        .client
        .update_item()
        .table_name(&store.table)
        .set_key(Some(lease_key(name)))
        .update_expression(expr.update_expression())
        .condition_expression(condition)
        .set_expression_attribute_names(expr.names())
        .set_expression_attribute_values(expr.values())
        .return_values(return_values)
        .send()
        .await;
    match result {
        Ok(out) => Ok(Some(out.attributes.unwrap_or_default())),
        Err(e) if is_condition_failed(&e) => Ok(None),
        Err(e) => Err(backend("UpdateItem", &e)),
    }
}

/// A conditional update — not a put, which would drop the `handover` — taken when the lease is
/// absent, held by `holder` or expired; the old item (`ALL_OLD`) tells what was handed over.
pub(super) async fn acquire_lease(
    store: &DynamoStore,
    name: &str,
    holder: &str,
    now: Timestamp,
    ttl_secs: i64,
) -> StoreResult<Option<LeaseGrant>> {
    let expires_at = now.saturating_add(ttl_secs);
    let mut expr = Expr::new();
    expr.set(&["entity"], s(items::LEASE))
        .set(&["name"], s(name))
        .set(&["holder"], s(holder))
        .set(&["expires_at"], n(expires_at))
        .set(&[TTL], n(expires_at.saturating_add(LEASE_KEEP_SECS)));
    let condition = format!(
        "attribute_not_exists({}) OR {} = {} OR {} <= {}",
        expr.name(PK),
        expr.name("holder"),
        expr.value(s(holder)),
        expr.name("expires_at"),
        expr.value(n(now))
    );
    let Some(old) = update_lease(store, name, &expr, condition, ReturnValue::AllOld).await? else {
        return Ok(None);
    };
    let handover = if old.is_empty() {
        None
    } else {
        items::decode::<LeaseData>(old, items::LEASE)?.handover
    };
    Ok(Some(LeaseGrant { handover }))
}

/// Extends the lease on condition that `holder` has it unexpired.
pub(super) async fn renew_lease(
    store: &DynamoStore,
    name: &str,
    holder: &str,
    now: Timestamp,
    ttl_secs: i64,
    handover: Option<&str>,
) -> StoreResult<bool> {
    let expires_at = now.saturating_add(ttl_secs);
    let mut expr = Expr::new();
    expr.set(&["expires_at"], n(expires_at))
        .set(&[TTL], n(expires_at.saturating_add(LEASE_KEEP_SECS)));
    if let Some(handover) = handover {
        expr.set(&["handover"], s(handover));
    }
    let condition = format!(
        "{} = {} AND {} > {}",
        expr.name("holder"),
        expr.value(s(holder)),
        expr.name("expires_at"),
        expr.value(n(now))
    );
    let renewed = update_lease(store, name, &expr, condition, ReturnValue::None).await?;
    Ok(renewed.is_some())
}

/// Not a delete, which would lose the handover: the lease expires at once (`expires_at = 0`) and
/// keeps its `ttl`, so DynamoDB drops it a day after the last expiry it had.
pub(super) async fn release_lease(
    store: &DynamoStore,
    name: &str,
    holder: &str,
    handover: Option<&str>,
) -> StoreResult<()> {
    let mut expr = Expr::new();
    expr.set(&["expires_at"], n(0));
    if let Some(handover) = handover {
        expr.set(&["handover"], s(handover));
    }
    let condition = format!("{} = {}", expr.name("holder"), expr.value(s(holder)));
    // `None`: not ours (or not taken), nothing to release.
    update_lease(store, name, &expr, condition, ReturnValue::None).await?;
    Ok(())
}
