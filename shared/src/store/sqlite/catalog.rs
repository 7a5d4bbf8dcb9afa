//! `ClientCatalog`: client configurations and their mirrored roles, the `clients` and `roles`
//! tables.

use std::collections::BTreeSet;

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{from_json, is_unique_violation, to_json, SqliteStore};
use crate::domain::{Client, Role};
use crate::store::{ClientCatalog, StoreError, StoreResult};

#[async_trait]
impl ClientCatalog for SqliteStore {
    async fn create_client(&self, client: &Client) -> StoreResult<()> {
        let client = client.clone();
        self.run(move |c| create_client(c, &client)).await
    }

    async fn get_client(&self, id: &str) -> StoreResult<Option<Client>> {
        let id = id.to_owned();
        self.run(move |c| get_client(c, &id)).await
    }

    async fn list_clients(&self) -> StoreResult<Vec<Client>> {
        self.run(|c| list_clients(c)).await
    }

    async fn update_client(&self, client: &Client) -> StoreResult<()> {
        let client = client.clone();
        self.run(move |c| update_client(c, &client)).await
    }

    async fn delete_client(&self, id: &str) -> StoreResult<()> {
        let id = id.to_owned();
        self.run(move |c| delete_client(c, &id)).await
    }

    async fn replace_roles(&self, client: &str, roles: &[Role]) -> StoreResult<()> {
        let (client, roles) = (client.to_owned(), roles.to_vec());
        self.run(move |c| replace_roles(c, &client, &roles)).await
    }

    async fn list_roles(&self, client: &str) -> StoreResult<Vec<Role>> {
        let client = client.to_owned();
        self.run(move |c| list_roles(c, &client)).await
    }

    async fn set_role_groups(
        &self,
        client: &str,
        role_id: &str,
        groups: &BTreeSet<String>,
    ) -> StoreResult<()> {
        let (client, role_id, groups) = (client.to_owned(), role_id.to_owned(), groups.clone());
        self.run(move |c| set_role_groups(c, &client, &role_id, &groups))
            .await
    }
}

/// Every table holding rows of a client, emptied by `delete_client`.
const CLIENT_TABLES: &[&str] = &[
    "roles",
    "members",
    "link_sessions",
    "runs",
    "audit",
    "work",
    "webhook_deliveries",
];

fn create_client(conn: &Connection, client: &Client) -> StoreResult<()> {
    match conn.execute(
        "INSERT INTO clients (id, config) VALUES (?1, ?2)",
        params![client.id, to_json(client)?],
    ) {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(StoreError::ClientExists),
        Err(e) => Err(e.into()),
    }
}

fn get_client(conn: &Connection, id: &str) -> StoreResult<Option<Client>> {
    Ok(conn
        .prepare_cached("SELECT config FROM clients WHERE id = ?1")?
        .query_row([id], |r| from_json(r, 0))
        .optional()?)
}

fn list_clients(conn: &Connection) -> StoreResult<Vec<Client>> {
    let mut stmt = conn.prepare_cached("SELECT config FROM clients ORDER BY id")?;
    let clients = stmt
        .query_map([], |r| from_json(r, 0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(clients)
}

fn update_client(conn: &Connection, client: &Client) -> StoreResult<()> {
    let changed = conn.execute(
        "UPDATE clients SET config = ?2 WHERE id = ?1",
        params![client.id, to_json(client)?],
    )?;
    if changed == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

fn delete_client(conn: &mut Connection, id: &str) -> StoreResult<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if tx.execute("DELETE FROM clients WHERE id = ?1", [id])? == 0 {
        return Err(StoreError::NotFound);
    }
    for table in CLIENT_TABLES {
        tx.execute(&format!("DELETE FROM {table} WHERE client = ?1"), [id])?;
    }
    tx.commit()?;
    Ok(())
}

fn replace_roles(conn: &mut Connection, client: &str, roles: &[Role]) -> StoreResult<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute("DELETE FROM roles WHERE client = ?1", [client])?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO roles (client, role_id, name, position, managed, groups, color)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for role in roles {
            insert.execute(params![
                client,
                role.id,
                role.name,
                role.position,
                role.managed,
                to_json(&role.groups)?,
                role.color
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

fn list_roles(conn: &Connection, client: &str) -> StoreResult<Vec<Role>> {
    let mut stmt = conn.prepare_cached(
        "SELECT role_id, name, position, managed, groups, color FROM roles
         WHERE client = ?1 ORDER BY position DESC, role_id",
    )?;
    let roles = stmt
        .query_map([client], |r| {
            Ok(Role {
                id: r.get(0)?,
                name: r.get(1)?,
                position: r.get(2)?,
                managed: r.get(3)?,
                groups: from_json(r, 4)?,
                color: r.get(5)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(roles)
}

fn set_role_groups(
    conn: &Connection,
    client: &str,
    role_id: &str,
    groups: &BTreeSet<String>,
) -> StoreResult<()> {
    let changed = conn.execute(
        "UPDATE roles SET groups = ?3 WHERE client = ?1 AND role_id = ?2",
        params![client, role_id, to_json(groups)?],
    )?;
    if changed == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}
