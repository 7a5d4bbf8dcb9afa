//! `WorkIndex`: one item per (client, task) with work, all in the `WORK` partition, so the
//! dispatcher reads every mark with one query. `seq` is bumped by every mark; a clear is
//! conditional on the seq the clearer read, so it cannot erase a mark made after that read.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use super::expr::{n, s, Expr};
use super::items::{self, Item, WorkData};
use super::keys::{self, PK};
use super::{backend, is_condition_failed, DynamoStore, Query};
use crate::clock::Timestamp;
use crate::domain::TaskName;
use crate::store::{Cursor, Page, StoreError, StoreResult, WorkIndex, WorkMark};

#[async_trait]
impl WorkIndex for DynamoStore {
    async fn mark_work(&self, client: &str, task: TaskName, now: Timestamp) -> StoreResult<u64> {
        mark_work(self, client, task, now).await
    }

    async fn get_work(&self, client: &str, task: TaskName) -> StoreResult<Option<WorkMark>> {
        get_work(self, client, task).await
    }

    async fn list_work(&self, after: Option<&Cursor>, limit: usize) -> StoreResult<Page<WorkMark>> {
        list_work(self, after, limit).await
    }

    async fn clear_work(&self, client: &str, task: TaskName, seen_seq: u64) -> StoreResult<bool> {
        clear_work(self, client, task, seen_seq).await
    }
}

pub(super) fn work_key(client: &str, task: TaskName) -> Item {
    items::key(keys::WORK, keys::work_sk(client, task))
}

fn decode(item: Item) -> StoreResult<WorkMark> {
    let data = items::decode::<WorkData>(item, items::WORK)?;
    let task = TaskName::parse(&data.task)
        .ok_or_else(|| StoreError::Backend("a stored work mark names an unknown task".into()))?;
    Ok(WorkMark {
        client: data.client,
        task,
        seq: data.seq,
        since: data.since,
    })
}

/// One UpdateItem: `seq` incremented (a new mark starts from `work_seq_base`), `since` set only
/// on a new mark.
async fn mark_work(
    store: &DynamoStore,
    client: &str,
    task: TaskName,
    now: Timestamp,
) -> StoreResult<u64> {
    let mut expr = Expr::new();
    expr.set(&["entity"], s(items::WORK))
        .set(&["client"], s(client))
        .set(&["task"], s(task.as_str()))
        .set_default("since", n(now))
        .increment_from("seq", crate::store::work_seq_base(now), 1);
    let out = store
        .client
        .update_item()
        .table_name(&store.table)
        .set_key(Some(work_key(client, task)))
        .update_expression(expr.update_expression())
        .set_expression_attribute_names(expr.names())
        .set_expression_attribute_values(expr.values())
        .return_values(ReturnValue::UpdatedNew)
        .send()
        .await
        .map_err(|e| backend("UpdateItem", &e))?;
    match out.attributes.as_ref().and_then(|a| a.get("seq")) {
        Some(AttributeValue::N(seq)) => seq.parse().map_err(|_| {
            StoreError::Backend("UpdateItem: a work mark's seq is not a count".into())
        }),
        _ => Err(StoreError::Backend(
            "UpdateItem: the new seq of a work mark was not returned".into(),
        )),
    }
}

async fn get_work(
    store: &DynamoStore,
    client: &str,
    task: TaskName,
) -> StoreResult<Option<WorkMark>> {
    store
        .get(work_key(client, task))
        .await?
        .map(decode)
        .transpose()
}

/// The `WORK` partition in sort-key order, i.e. by (client, task name).
async fn list_work(
    store: &DynamoStore,
    after: Option<&Cursor>,
    limit: usize,
) -> StoreResult<Page<WorkMark>> {
    // Work sort keys have no common prefix: a cursor is checked by its shape instead.
    if let Some(cursor) = after {
        let sk = cursor.decode()?;
        let task = sk
            .rsplit_once('#')
            .and_then(|(_, task)| TaskName::parse(task));
        if task.is_none() {
            return Err(StoreError::InvalidCursor);
        }
    }
    let query = Query::partition(keys::WORK.to_owned(), "");
    let start = |sk: &str| items::key(keys::WORK, sk);
    store.list(&query, after, limit, start, decode).await
}

/// A DeleteItem on condition that the mark is gone already or still has `seen_seq`.
async fn clear_work(
    store: &DynamoStore,
    client: &str,
    task: TaskName,
    seen_seq: u64,
) -> StoreResult<bool> {
    let mut expr = Expr::new();
    let condition = format!(
        "attribute_not_exists({}) OR {} = {}",
        expr.name(PK),
        expr.name("seq"),
        expr.value(AttributeValue::N(seen_seq.to_string()))
    );
    let result = store
        .client
        .delete_item()
        .table_name(&store.table)
        .set_key(Some(work_key(client, task)))
        .condition_expression(condition)
        .set_expression_attribute_names(expr.names())
        .set_expression_attribute_values(expr.values())
        .send()
        .await;
    match result {
        Ok(_) => Ok(true),
        Err(e) if is_condition_failed(&e) => Ok(false),
        Err(e) => Err(backend("DeleteItem", &e)),
    }
}
