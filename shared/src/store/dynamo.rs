//! The AWS `Store` adapter: one DynamoDB table (`PK`/`SK`, one GSI `GSI1` on `GSI1PK`/`GSI1SK`,
//! TTL on `ttl`, on-demand billing). The key layout is in [`keys`]; items are serde types
//! ([`items`]) mapped by `serde_dynamo`.
//!
//! How the port's guarantees are kept:
//! - A link is unique both ways: the member item carries the link, and a `DISCORD#<id>` item in
//!   the client's partition names its holder. Both are written by ONE `TransactWriteItems` with
//!   conditions, so a refused link writes nothing.
//! - Every read is strongly consistent except GSI queries (`list_pending`), which DynamoDB serves
//!   eventually consistent: a member marked pending a moment ago may show up one run later.
//! - Conditional writes replace SQLite's transactions: `record_outcome`'s version guard, leases,
//!   settings, single-use link sessions (`DeleteItem` + condition + `ALL_OLD`), work marks.
//! - Leases are conditional `UpdateItem`s, never puts or deletes, so the `handover` one holder
//!   leaves survives the next one's takeover; a release only sets `expires_at` to 0.
//! - Listings page on the table's own order and return exact pages: the adapter keeps querying
//!   until it has `limit + 1` items or the data ends, so a short page is always the last. The
//!   cursor is the sort key of the last item returned.
//! - `list_linked_by_discord` reads the client's `DISCORD#N#` items, whose sort keys are the
//!   zero-padded ids, then the members they name (one `BatchGetItem` per 100).
//! - Retention is the table's TTL: run reports, audit entries, link and console sessions and
//!   leases carry a `ttl` from the adapter's [`RetentionPolicy`] or their expiry (`Pruning`
//!   removes nothing here). The sweep may come days late, so what must not outlive its expiry
//!   (sessions, leases) is checked on read; run reports and audit entries may show a little past
//!   their retention.
//! - Errors become `StoreError::Backend` naming the operation and the AWS error code, never an
//!   item's contents.
//!
//! This module holds the store type, the table's creation, and the reads, writes, listings and
//! batches the ports share (with [`keys`], [`items`] and [`expr`]). Each port is implemented in
//! its own module: `catalog` (`ClientCatalog`), `members` (`MemberStore`; linking and unlinking in
//! `links`, its counts in `member_counts`), `sessions` (`LinkSessions`), `run_log` (`RunLog`:
//! runs and audit), `settings` (`Settings`), `leases` (`Leases`), `work` (`WorkIndex`),
//! `api_tokens` (`ApiTokens`), `console_sessions` (`ConsoleSessions`); `Pruning` is below.

mod api_tokens;
mod catalog;
mod console_sessions;
mod expr;
mod items;
mod keys;
mod leases;
mod links;
mod member_counts;
mod members;
mod run_log;
mod sessions;
mod settings;
mod webhooks;
mod work;

use std::ops::ControlFlow;
use std::time::Duration;

use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    KeysAndAttributes, Projection, ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
    WriteRequest,
};
use aws_sdk_dynamodb::Client as DynamoClient;

use super::{Cursor, Page, Pruned, Pruning, RetentionPolicy, StoreError, StoreResult};
use crate::clock::Timestamp;
use expr::Expr;
use items::Item;

pub use keys::{GSI1, GSI1PK, GSI1SK, PK, SK, TTL};

/// DynamoDB's limit of requests in one `BatchWriteItem`.
const BATCH_WRITE_LIMIT: usize = 25;
/// DynamoDB's limit of keys in one `BatchGetItem`.
const BATCH_GET_LIMIT: usize = 100;
/// How often a write that lost a race (condition on a value it read, transaction conflict) or a
/// batch with unprocessed items is tried before giving up.
const ATTEMPTS: u32 = 8;

/// The DynamoDB adapter. Cheap to clone; clones share the SDK client.
#[derive(Clone)]
pub struct DynamoStore {
    client: DynamoClient,
    table: String,
    /// Sets the `ttl` of run reports and audit entries.
    retention: RetentionPolicy,
}

impl std::fmt::Debug for DynamoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoStore")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

impl DynamoStore {
    /// An adapter on an existing table (see [`DynamoStore::create_table`] for its schema).
    pub fn new(client: DynamoClient, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            retention: RetentionPolicy::default(),
        }
    }

    /// The same store, giving run reports and audit entries the `ttl` of `policy` instead of the
    /// default one.
    pub fn with_retention(mut self, policy: RetentionPolicy) -> Self {
        self.retention = policy;
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates `table` with the schema this adapter expects — the same one `template.yaml`
    /// declares — waits until it is active and enables TTL on `ttl`. For tests and local runs.
    pub async fn create_table(client: &DynamoClient, table: &str) -> StoreResult<()> {
        let string_attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| StoreError::Backend(format!("CreateTable: {e}")))
        };
        let key = |name: &str, key_type: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(key_type)
                .build()
                .map_err(|e| StoreError::Backend(format!("CreateTable: {e}")))
        };
        let gsi = GlobalSecondaryIndex::builder()
            .index_name(GSI1)
            .key_schema(key(GSI1PK, KeyType::Hash)?)
            .key_schema(key(GSI1SK, KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .map_err(|e| StoreError::Backend(format!("CreateTable: {e}")))?;
        client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(string_attr(PK)?)
            .attribute_definitions(string_attr(SK)?)
            .attribute_definitions(string_attr(GSI1PK)?)
            .attribute_definitions(string_attr(GSI1SK)?)
            .key_schema(key(PK, KeyType::Hash)?)
            .key_schema(key(SK, KeyType::Range)?)
            .global_secondary_indexes(gsi)
            .send()
            .await
            .map_err(|e| backend("CreateTable", &e))?;
        client
            .wait_until_table_exists()
            .table_name(table)
            .wait(Duration::from_secs(300))
            .await
            .map_err(|_| {
                StoreError::Backend("CreateTable: the table did not become active".into())
            })?;
        client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(TTL)
                    .build()
                    .map_err(|e| StoreError::Backend(format!("UpdateTimeToLive: {e}")))?,
            )
            .send()
            .await
            .map_err(|e| backend("UpdateTimeToLive", &e))?;
        Ok(())
    }

    // --- reads and writes shared by the submodules -----------------------------------------------

    async fn get(&self, key: Item) -> StoreResult<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend("GetItem", &e))?;
        Ok(out.item)
    }

    /// Runs `query` from `start`, following DynamoDB's pages until it has more than `want` items
    /// (then returns `want` of them and `true`) or the data ends (`false`). `None` reads all.
    async fn query(
        &self,
        query: &Query,
        mut start: Option<Item>,
        want: Option<usize>,
    ) -> StoreResult<(Vec<Item>, bool)> {
        let mut items: Vec<Item> = Vec::new();
        loop {
            // DynamoDB's Limit counts items read before a filter: only a plain query can use it.
            let limit = match (want, &query.filter) {
                (Some(want), None) => Some(
                    i32::try_from((want + 1).saturating_sub(items.len()).clamp(1, 1000))
                        .unwrap_or(1000),
                ),
                _ => None,
            };
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(query.index.map(str::to_owned))
                .consistent_read(query.index.is_none())
                .key_condition_expression(&query.key_condition)
                .set_filter_expression(query.filter.clone())
                .set_projection_expression(query.projection.clone())
                .set_expression_attribute_names(query.expr.names())
                .set_expression_attribute_values(query.expr.values())
                .scan_index_forward(query.forward)
                .set_exclusive_start_key(start.take())
                .set_limit(limit)
                .send()
                .await
                .map_err(|e| backend("Query", &e))?;
            items.extend(out.items.unwrap_or_default());
            if let Some(want) = want {
                if items.len() > want {
                    items.truncate(want);
                    return Ok((items, true));
                }
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok((items, false)),
            }
        }
    }

    /// Runs `query` to the end, DynamoDB's page by page, handing each page's items to `visit`
    /// until it answers `Break`. For reads that fold a partition (counts, a filtered search for
    /// one item) without holding it all.
    async fn query_pages(
        &self,
        query: &Query,
        mut visit: impl FnMut(Vec<Item>) -> StoreResult<ControlFlow<()>>,
    ) -> StoreResult<()> {
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(query.index.map(str::to_owned))
                .consistent_read(query.index.is_none())
                .key_condition_expression(&query.key_condition)
                .set_filter_expression(query.filter.clone())
                .set_projection_expression(query.projection.clone())
                .set_expression_attribute_names(query.expr.names())
                .set_expression_attribute_values(query.expr.values())
                .scan_index_forward(query.forward)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| backend("Query", &e))?;
            if visit(out.items.unwrap_or_default())?.is_break() {
                return Ok(());
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(()),
            }
        }
    }

    /// One page of a listing: `decode`d items and, when more follow, a cursor holding the sort
    /// key of the last one. `start_key` turns a decoded cursor back into an `ExclusiveStartKey`.
    async fn list<T>(
        &self,
        query: &Query,
        after: Option<&Cursor>,
        limit: usize,
        start_key: impl Fn(&str) -> Item,
        decode: impl Fn(Item) -> StoreResult<T>,
    ) -> StoreResult<Page<T>> {
        let limit = limit.max(1);
        let start = match after {
            Some(cursor) => {
                let sk = cursor.decode()?;
                if !sk.starts_with(query.sk_prefix) {
                    return Err(StoreError::InvalidCursor);
                }
                Some(start_key(&sk))
            }
            None => None,
        };
        let (items, more) = self.query(query, start, Some(limit)).await?;
        let next = match (more, items.last()) {
            (true, Some(last)) => Some(Cursor::encode(items::key_string(last, SK)?)),
            _ => None,
        };
        let items = items.into_iter().map(decode).collect::<StoreResult<_>>()?;
        Ok(Page { items, next })
    }

    /// `BatchGetItem` (strongly consistent) in chunks of 100, retrying unprocessed keys. The
    /// items come back in no particular order.
    async fn batch_get(&self, keys: Vec<Item>) -> StoreResult<Vec<Item>> {
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(BATCH_GET_LIMIT) {
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.to_vec()))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError::Backend(format!("BatchGetItem: {e}")))?,
            );
            let mut attempt = 0;
            while let Some(request) = pending.take() {
                let mut out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| backend("BatchGetItem", &e))?;
                if let Some(items) = out.responses.as_mut().and_then(|r| r.remove(&self.table)) {
                    found.extend(items);
                }
                pending = out
                    .unprocessed_keys
                    .and_then(|mut m| m.remove(&self.table))
                    .filter(|k| !k.keys().is_empty());
                if pending.is_some() {
                    attempt += 1;
                    if attempt >= ATTEMPTS {
                        return Err(StoreError::Backend(
                            "BatchGetItem: keys stayed unprocessed after retries".into(),
                        ));
                    }
                    backoff(attempt).await;
                }
            }
        }
        Ok(found)
    }

    /// `BatchWriteItem` in chunks of 25, retrying unprocessed items with backoff.
    async fn batch_write(&self, requests: Vec<WriteRequest>) -> StoreResult<()> {
        for chunk in chunks(requests) {
            let mut pending = chunk;
            let mut attempt = 0;
            while !pending.is_empty() {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(|e| backend("BatchWriteItem", &e))?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&self.table))
                    .unwrap_or_default();
                if !pending.is_empty() {
                    attempt += 1;
                    if attempt >= ATTEMPTS {
                        return Err(StoreError::Backend(
                            "BatchWriteItem: items stayed unprocessed after retries".into(),
                        ));
                    }
                    backoff(attempt).await;
                }
            }
        }
        Ok(())
    }
}

/// DynamoDB removes what is past retention by itself: every such item carries a `ttl`.
#[async_trait::async_trait]
impl Pruning for DynamoStore {
    async fn prune_expired(&self, _now: Timestamp, _batch: usize) -> StoreResult<Pruned> {
        Ok(Pruned::default())
    }
}

/// A key-condition query on the table or on `GSI1`.
struct Query {
    index: Option<&'static str>,
    key_condition: String,
    filter: Option<String>,
    projection: Option<String>,
    expr: Expr,
    forward: bool,
    /// What every sort key (of the table or index) this query returns starts with; cursors that
    /// do not are refused.
    sk_prefix: &'static str,
}

impl Query {
    /// `PK = pk AND begins_with(SK, prefix)` on the table (the whole partition for `""`).
    fn partition(pk: String, sk_prefix: &'static str) -> Self {
        let mut expr = Expr::new();
        let mut key_condition = format!("{} = {}", expr.name(PK), expr.value(expr::s(pk)));
        if !sk_prefix.is_empty() {
            let condition = format!(
                " AND begins_with({}, {})",
                expr.name(SK),
                expr.value(expr::s(sk_prefix))
            );
            key_condition.push_str(&condition);
        }
        Self {
            index: None,
            key_condition,
            filter: None,
            projection: None,
            expr,
            forward: true,
            sk_prefix,
        }
    }

    /// `GSI1PK = pk` on `GSI1`.
    fn gsi1(pk: String, sk_prefix: &'static str) -> Self {
        let mut expr = Expr::new();
        let key_condition = format!("{} = {}", expr.name(GSI1PK), expr.value(expr::s(pk)));
        Self {
            index: Some(GSI1),
            key_condition,
            filter: None,
            projection: None,
            expr,
            forward: true,
            sk_prefix,
        }
    }

    /// Reads only these top-level attributes.
    fn project(mut self, attrs: &[&str]) -> Self {
        let names: Vec<String> = attrs.iter().map(|a| self.expr.name(a)).collect();
        self.projection = Some(names.join(", "));
        self
    }

    /// Returns only the items `filter` (written with `expr`'s placeholders) admits.
    fn filtered(mut self, filter: impl FnOnce(&mut Expr) -> String) -> Self {
        self.filter = Some(filter(&mut self.expr));
        self
    }

    /// Reads only the table keys (for deletes).
    fn keys_only(mut self) -> Self {
        self.projection = Some(format!("{}, {}", self.expr.name(PK), self.expr.name(SK)));
        self
    }

    fn newest_first(mut self) -> Self {
        self.forward = false;
        self
    }
}

/// Splits write requests into `BatchWriteItem`-sized chunks.
fn chunks(requests: Vec<WriteRequest>) -> Vec<Vec<WriteRequest>> {
    let mut out = Vec::with_capacity(requests.len().div_ceil(BATCH_WRITE_LIMIT));
    let mut iter = requests.into_iter().peekable();
    while iter.peek().is_some() {
        out.push(iter.by_ref().take(BATCH_WRITE_LIMIT).collect());
    }
    out
}

async fn backoff(attempt: u32) {
    tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt.min(6)).pow(2))).await;
}

/// An SDK error as `StoreError::Backend`: the operation and the AWS error code, nothing from the
/// request (item contents never appear in store errors).
fn backend<E, R>(op: &str, err: &SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StoreError::Backend(crate::aws::sdk_error_message(op, err))
}

/// An unconditional PutItem.
async fn put(store: &DynamoStore, item: items::Item) -> StoreResult<()> {
    store
        .client
        .put_item()
        .table_name(&store.table)
        .set_item(Some(item))
        .send()
        .await
        .map_err(|e| backend("PutItem", &e))?;
    Ok(())
}

/// A PutItem under `condition` (names and values from `expr`): `false` when the condition failed.
async fn put_if(
    store: &DynamoStore,
    item: items::Item,
    condition: String,
    expr: &expr::Expr,
) -> StoreResult<bool> {
    let result = store
        .client
        .put_item()
        .table_name(&store.table)
        .set_item(Some(item))
        .condition_expression(condition)
        .set_expression_attribute_names(expr.names())
        .set_expression_attribute_values(expr.values())
        .send()
        .await;
    match result {
        Ok(_) => Ok(true),
        Err(e) if is_condition_failed(&e) => Ok(false),
        Err(e) => Err(backend("PutItem", &e)),
    }
}

/// An UpdateItem of `key` with `expr` under `condition`: `false` when the condition failed.
async fn update_if(
    store: &DynamoStore,
    key: items::Item,
    expr: &expr::Expr,
    condition: String,
) -> StoreResult<bool> {
    let result = store
        .client
        .update_item()
        .table_name(&store.table)
        .set_key(Some(key))
        .update_expression(expr.update_expression())
        .condition_expression(condition)
        .set_expression_attribute_names(expr.names())
        .set_expression_attribute_values(expr.values())
        .send()
        .await;
    match result {
        Ok(_) => Ok(true),
        Err(e) if is_condition_failed(&e) => Ok(false),
        Err(e) => Err(backend("UpdateItem", &e)),
    }
}

/// Whether an SDK error is a failed condition of a single-item write.
fn is_condition_failed<E, R>(err: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    err.as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "ConditionalCheckFailedException")
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::types::{DeleteRequest, WriteRequest};

    use super::*;

    fn delete(n: usize) -> WriteRequest {
        WriteRequest::builder()
            .delete_request(
                DeleteRequest::builder()
                    .set_key(Some(items::key(format!("P{n}"), "S")))
                    .build()
                    .unwrap(),
            )
            .build()
    }

    #[test]
    fn batches_hold_at_most_25_requests_and_keep_them_all() {
        for n in [0, 1, 25, 26, 50, 51, 120] {
            let batches = chunks((0..n).map(delete).collect());
            assert!(batches.iter().all(|b| !b.is_empty() && b.len() <= 25));
            assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), n);
            assert_eq!(batches.len(), n.div_ceil(25));
        }
    }
}
