//! `RunLog`: run reports (`RUN#` items) and the audit trail (`AUDIT#` items), both in the
//! client's partition.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};

use super::expr::s;
use super::items::{self, Keyed};
use super::keys;
use super::{put, DynamoStore, Query};
use crate::domain::{AuditEntry, RunReport};
use crate::store::{Cursor, Page, RunLog, StoreError, StoreResult};

#[async_trait]
impl RunLog for DynamoStore {
    async fn put_run(&self, report: &RunReport) -> StoreResult<()> {
        put_run(self, report).await
    }

    async fn list_runs(
        &self,
        client: &str,
        after: Option<&Cursor>,
        limit: usize,
    ) -> StoreResult<Page<RunReport>> {
        list_runs(self, client, after, limit).await
    }

    async fn append_audit(&self, entries: &[AuditEntry]) -> StoreResult<()> {
        append_audit(self, entries).await
    }

    async fn list_audit(
        &self,
        client: &str,
        after: Option<&Cursor>,
        limit: usize,
    ) -> StoreResult<Page<AuditEntry>> {
        list_audit(self, client, after, limit).await
    }

    async fn get_run(&self, client: &str, run_id: &str) -> StoreResult<Option<RunReport>> {
        get_run(self, client, run_id).await
    }
}

// --- runs --------------------------------------------------------------------------------------

/// Keyed by `(started_at, id)`: a report saved again as it progresses keeps its `started_at`, so
/// the second put replaces the first. Its `ttl` is `started_at` plus the runs' retention.
async fn put_run(store: &DynamoStore, report: &RunReport) -> StoreResult<()> {
    let item = Keyed::new(
        keys::client_pk(&report.client),
        keys::run_sk(report.started_at, &report.id),
        items::RUN,
        report,
    )
    .ttl(store.retention.run_expiry(report.started_at))
    .to_item()?;
    put(store, item).await
}

/// Newest first: the sort key is `(started_at, id)`, read backwards.
async fn list_runs(
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

/// The sort key holds `started_at` before the id, so a run is not found by its id alone: one
/// query of the client's runs, newest first, filtered on `id` by DynamoDB, stopping at the page
/// that holds it. A recent run (what the console opens) is in the first page.
async fn get_run(
    store: &DynamoStore,
    client: &str,
    run_id: &str,
) -> StoreResult<Option<RunReport>> {
    let query = Query::partition(keys::client_pk(client), keys::RUN_PREFIX)
        .newest_first()
        .filtered(|expr| format!("{} = {}", expr.name("id"), expr.value(s(run_id))));
    let mut found = None;
    store
        .query_pages(&query, |page| {
            found = page.into_iter().next();
            Ok(if found.is_some() {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            })
        })
        .await?;
    found
        .map(|item| items::decode(item, items::RUN))
        .transpose()
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

/// Each entry's `ttl` is its `at` plus the audit retention.
async fn append_audit(store: &DynamoStore, entries: &[AuditEntry]) -> StoreResult<()> {
    let mut requests = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let item = Keyed::new(
            keys::client_pk(&entry.client),
            keys::audit_sk(entry.at, &audit_tiebreak(index)),
            items::AUDIT,
            entry,
        )
        .ttl(store.retention.audit_expiry(entry.at))
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
async fn list_audit(
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
