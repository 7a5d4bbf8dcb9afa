//! `ClientCatalog`: client configurations, their mirrored roles, and deleting a client with
//! everything under it.

use std::collections::BTreeSet;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{DeleteRequest, ReturnValue, WriteRequest};

use super::expr::{n, s, Expr};
use super::items::{self, Keyed, RolesData};
use super::keys;
use super::{backend, backoff, is_condition_failed, put_if, work, DynamoStore, Query, ATTEMPTS};
use crate::domain::{Client, Role, TaskName};
use crate::store::{ClientCatalog, StoreError, StoreResult};

#[async_trait]
impl ClientCatalog for DynamoStore {
    async fn create_client(&self, client: &Client) -> StoreResult<()> {
        create_client(self, client).await
    }

    async fn get_client(&self, id: &str) -> StoreResult<Option<Client>> {
        get_client(self, id).await
    }

    async fn list_clients(&self) -> StoreResult<Vec<Client>> {
        list_clients(self).await
    }

    async fn update_client(&self, client: &Client) -> StoreResult<()> {
        update_client(self, client).await
    }

    async fn delete_client(&self, id: &str) -> StoreResult<()> {
        delete_client(self, id).await
    }

    async fn replace_roles(&self, client: &str, roles: &[Role]) -> StoreResult<()> {
        replace_roles(self, client, roles).await
    }

    async fn list_roles(&self, client: &str) -> StoreResult<Vec<Role>> {
        list_roles(self, client).await
    }

    async fn set_role_groups(
        &self,
        client: &str,
        role_id: &str,
        groups: &BTreeSet<String>,
    ) -> StoreResult<()> {
        set_role_groups(self, client, role_id, groups).await
    }
}

/// Client items live in one `CLIENTS` partition, so listing them is one strongly consistent
/// query (there are few clients).
fn client_item(client: &Client) -> Keyed<&Client> {
    Keyed::new(
        keys::CLIENTS.to_owned(),
        keys::client_registry_sk(&client.id),
        items::CLIENT,
        client,
    )
}

fn client_key(id: &str) -> items::Item {
    items::key(keys::CLIENTS, keys::client_registry_sk(id))
}

/// Puts the client item; `exists` chooses the condition (`true`: must exist, `false`: must not).
async fn put_client(store: &DynamoStore, client: &Client, exists: bool) -> StoreResult<bool> {
    let mut expr = Expr::new();
    let pk = expr.name(keys::PK);
    let condition = if exists {
        format!("attribute_exists({pk})")
    } else {
        format!("attribute_not_exists({pk})")
    };
    put_if(store, client_item(client).to_item()?, condition, &expr).await
}

async fn create_client(store: &DynamoStore, client: &Client) -> StoreResult<()> {
    if put_client(store, client, false).await? {
        Ok(())
    } else {
        Err(StoreError::ClientExists)
    }
}

async fn get_client(store: &DynamoStore, id: &str) -> StoreResult<Option<Client>> {
    store
        .get(client_key(id))
        .await?
        .map(|item| items::decode(item, items::CLIENT))
        .transpose()
}

async fn list_clients(store: &DynamoStore) -> StoreResult<Vec<Client>> {
    let query = Query::partition(keys::CLIENTS.to_owned(), "CLIENT#");
    let (found, _) = store.query(&query, None, None).await?;
    found
        .into_iter()
        .map(|item| items::decode(item, items::CLIENT))
        .collect()
}

async fn update_client(store: &DynamoStore, client: &Client) -> StoreResult<()> {
    if put_client(store, client, true).await? {
        Ok(())
    } else {
        Err(StoreError::NotFound)
    }
}

/// Deletes the client's partition (roles, members, Discord accounts, runs, audit), its link
/// sessions and its work marks in batches, then the client item itself — last, so a delete that failed half-way can
/// simply be repeated.
async fn delete_client(store: &DynamoStore, id: &str) -> StoreResult<()> {
    if get_client(store, id).await?.is_none() {
        return Err(StoreError::NotFound);
    }
    let owned = Query::partition(keys::client_pk(id), "").keys_only();
    let (mut found, _) = store.query(&owned, None, None).await?;
    let sessions = Query::gsi1(keys::sessions_gsi_pk(id), "").keys_only();
    found.extend(store.query(&sessions, None, None).await?.0);

    let mut found_keys = Vec::with_capacity(found.len() + TaskName::ALL.len());
    for item in found {
        found_keys.push(items::key(
            items::key_string(&item, keys::PK)?,
            items::key_string(&item, keys::SK)?,
        ));
    }
    // The client's work marks live in the shared `WORK` partition: one per task, absent or not.
    found_keys.extend(TaskName::ALL.map(|task| work::work_key(id, task)));

    let mut requests = Vec::with_capacity(found_keys.len());
    for key in found_keys {
        let delete = DeleteRequest::builder()
            .set_key(Some(key))
            .build()
            .map_err(|e| StoreError::Backend(format!("BatchWriteItem: {e}")))?;
        requests.push(WriteRequest::builder().delete_request(delete).build());
    }
    store.batch_write(requests).await?;

    let mut expr = Expr::new();
    let condition = format!("attribute_exists({})", expr.name(keys::PK));
    let result = store
        .client
        .delete_item()
        .table_name(&store.table)
        .set_key(Some(client_key(id)))
        .condition_expression(condition)
        .set_expression_attribute_names(expr.names())
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        // Someone else deleted it meanwhile.
        Err(e) if is_condition_failed(&e) => Err(StoreError::NotFound),
        Err(e) => Err(backend("DeleteItem", &e)),
    }
}

// --- roles ---------------------------------------------------------------------------------------

fn roles_key(client: &str) -> items::Item {
    items::key(keys::client_pk(client), keys::ROLES)
}

async fn read_roles(store: &DynamoStore, client: &str) -> StoreResult<Option<RolesData>> {
    store
        .get(roles_key(client))
        .await?
        .map(|item| items::decode(item, items::ROLES))
        .transpose()
}

/// All roles are one item, so the replacement is a single write; `rev` is bumped.
async fn replace_roles(store: &DynamoStore, client: &str, roles: &[Role]) -> StoreResult<()> {
    let mut expr = Expr::new();
    expr.set(&["entity"], s(items::ROLES))
        .set(&["client"], s(client))
        .set(&["roles"], items::value(roles, "roles")?)
        .increment("rev", 1);
    store
        .client
        .update_item()
        .table_name(&store.table)
        .set_key(Some(roles_key(client)))
        .update_expression(expr.update_expression())
        .set_expression_attribute_names(expr.names())
        .set_expression_attribute_values(expr.values())
        .send()
        .await
        .map_err(|e| backend("UpdateItem", &e))?;
    Ok(())
}

async fn list_roles(store: &DynamoStore, client: &str) -> StoreResult<Vec<Role>> {
    let mut roles = read_roles(store, client)
        .await?
        .map(|data| data.roles)
        .unwrap_or_default();
    roles.sort_by(|a, b| b.position.cmp(&a.position).then_with(|| a.id.cmp(&b.id)));
    Ok(roles)
}

/// Read, change, write back on condition that no other write came between (`rev`).
async fn set_role_groups(
    store: &DynamoStore,
    client: &str,
    role_id: &str,
    groups: &BTreeSet<String>,
) -> StoreResult<()> {
    for attempt in 1..=ATTEMPTS {
        let mut data = read_roles(store, client)
            .await?
            .ok_or(StoreError::NotFound)?;
        let role = data
            .roles
            .iter_mut()
            .find(|r| r.id == role_id)
            .ok_or(StoreError::NotFound)?;
        role.groups = groups.clone();

        let mut expr = Expr::new();
        expr.set(&["roles"], items::value(&data.roles, "roles")?)
            .set(&["rev"], n(data.rev + 1));
        let condition = format!("{} = {}", expr.name("rev"), expr.value(n(data.rev)));
        let result = store
            .client
            .update_item()
            .table_name(&store.table)
            .set_key(Some(roles_key(client)))
            .update_expression(expr.update_expression())
            .condition_expression(condition)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .return_values(ReturnValue::None)
            .send()
            .await;
        match result {
            Ok(_) => return Ok(()),
            Err(e) if is_condition_failed(&e) => backoff(attempt).await,
            Err(e) => return Err(backend("UpdateItem", &e)),
        }
    }
    Err(StoreError::Backend(
        "UpdateItem: roles kept changing meanwhile".into(),
    ))
}
