//! `Leases`: named, expiring leases, one `LEASE#<name>` item each, changed only by conditional
//! updates so the handover survives holders.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;

use super::expr::{n, s, Expr};
use super::items::{self, Item, LeaseData};
use super::keys::{self, PK, TTL};
use super::{backend, is_condition_failed, DynamoStore};
use crate::clock::Timestamp;
use crate::store::retention::lease_expiry;
use crate::store::{LeaseGrant, Leases, StoreResult};

#[async_trait]
impl Leases for DynamoStore {
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        ttl_secs: i64,
    ) -> StoreResult<Option<LeaseGrant>> {
        acquire_lease(self, name, holder, now, ttl_secs).await
    }

    async fn renew_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        ttl_secs: i64,
        handover: Option<&str>,
    ) -> StoreResult<bool> {
        renew_lease(self, name, holder, now, ttl_secs, handover).await
    }

    async fn release_lease(
        &self,
        name: &str,
        holder: &str,
        handover: Option<&str>,
    ) -> StoreResult<()> {
        release_lease(self, name, holder, handover).await
    }
}

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
async fn acquire_lease(
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
        .set(&[TTL], n(lease_expiry(expires_at)));
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
async fn renew_lease(
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
        .set(&[TTL], n(lease_expiry(expires_at)));
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
async fn release_lease(
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
