//! The embedded `Store` adapter: one SQLite file (WAL), schema migrated on open.
//!
//! Queries run on tokio's blocking pool through one connection behind a mutex. Writes that read
//! before they write take SQLite's write lock up front (`BEGIN IMMEDIATE`), so a second process
//! or connection on the same file cannot interleave.

mod catalog;
mod db;
mod members;
mod migrations;
mod records;

use std::collections::BTreeSet;
use std::path::Path;

use async_trait::async_trait;
use rusqlite::types::Type;
use rusqlite::{Connection, ErrorCode, Row};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::prelude::*;
use super::{
    ConsumedSession, Cursor, LeaseGrant, Outcome, Page, StoreError, StoreResult, WorkMark,
};
use crate::clock::Timestamp;
use crate::domain::{
    AuditEntry, Client, Link, LinkSession, Member, Role, RunReport, SiteUser, StoredTokens,
    TaskName,
};

pub(crate) use db::Db;

/// The schema version a freshly opened database ends at (`PRAGMA user_version`).
pub const SCHEMA_VERSION: usize = migrations::LATEST;

/// The SQLite adapter. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct SqliteStore {
    db: Db,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating the file and running migrations when needed) the database at `path`.
    pub fn open(path: &Path) -> StoreResult<Self> {
        Self::migrated(Db::open(path).map_err(StoreError::Backend)?)
    }

    /// A private, empty in-memory database: for tests and one-off runs.
    pub fn open_in_memory() -> StoreResult<Self> {
        Self::migrated(Db::open_in_memory().map_err(StoreError::Backend)?)
    }

    fn migrated(db: Db) -> StoreResult<Self> {
        db.with_blocking(migrations::migrate)
            .map_err(StoreError::Backend)?;
        Ok(Self { db })
    }

    /// Runs `f` with the connection off the async runtime.
    async fn run<T, F>(&self, f: F) -> StoreResult<T>
    where
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.db
            .call(f)
            .await
            .map_err(|e| StoreError::Backend(format!("sqlite worker failed: {e}")))?
    }
}

// --- helpers shared by the submodules ------------------------------------------------------------

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        // SQLite's messages name tables and columns, never bound values.
        StoreError::Backend(format!("sqlite: {e}"))
    }
}

fn to_json<T: Serialize + ?Sized>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Backend(format!("cannot encode: {e}")))
}

fn from_json<T: DeserializeOwned>(row: &Row<'_>, idx: usize) -> rusqlite::Result<T> {
    let text = row.get_ref(idx)?.as_str()?;
    serde_json::from_str(text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e)))
}

fn from_json_opt<T: DeserializeOwned>(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<T>> {
    match row.get_ref(idx)?.as_str_or_null()? {
        None => Ok(None),
        Some(text) => serde_json::from_str(text)
            .map(Some)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e))),
    }
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
    if f.code == ErrorCode::ConstraintViolation
        && matches!(
            f.extended_code,
            rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
        ))
}

/// Turns `limit + 1` fetched rows into a page: the extra row only tells that another page follows.
fn page<T>(mut rows: Vec<T>, limit: usize, position: impl Fn(&T) -> String) -> Page<T> {
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|last| Cursor::encode(&position(last)))
    } else {
        None
    };
    Page { items: rows, next }
}

// --- the port ------------------------------------------------------------------------------------

#[async_trait]
impl ClientCatalog for SqliteStore {
    async fn create_client(&self, client: &Client) -> StoreResult<()> {
        let client = client.clone();
        self.run(move |c| catalog::create_client(c, &client)).await
    }

    async fn get_client(&self, id: &str) -> StoreResult<Option<Client>> {
        let id = id.to_owned();
        self.run(move |c| catalog::get_client(c, &id)).await
    }

    async fn list_clients(&self) -> StoreResult<Vec<Client>> {
        self.run(|c| catalog::list_clients(c)).await
    }

    async fn update_client(&self, client: &Client) -> StoreResult<()> {
        let client = client.clone();
        self.run(move |c| catalog::update_client(c, &client)).await
    }

    async fn delete_client(&self, id: &str) -> StoreResult<()> {
        let id = id.to_owned();
        self.run(move |c| catalog::delete_client(c, &id)).await
    }

    async fn replace_roles(&self, client: &str, roles: &[Role]) -> StoreResult<()> {
        let (client, roles) = (client.to_owned(), roles.to_vec());
        self.run(move |c| catalog::replace_roles(c, &client, &roles))
            .await
    }

    async fn list_roles(&self, client: &str) -> StoreResult<Vec<Role>> {
        let client = client.to_owned();
        self.run(move |c| catalog::list_roles(c, &client)).await
    }

    async fn set_role_groups(
        &self,
        client: &str,
        role_id: &str,
        groups: &BTreeSet<String>,
    ) -> StoreResult<()> {
        let (client, role_id, groups) = (client.to_owned(), role_id.to_owned(), groups.clone());
        self.run(move |c| catalog::set_role_groups(c, &client, &role_id, &groups))
            .await
    }
}

#[async_trait]
impl MemberStore for SqliteStore {
    async fn get_member(&self, client: &str, user_id: &str) -> StoreResult<Option<Member>> {
        let (client, user_id) = (client.to_owned(), user_id.to_owned());
        self.run(move |c| members::get(c, &client, &user_id)).await
    }

    async fn find_member_by_discord(
        &self,
        client: &str,
        discord_user_id: &str,
    ) -> StoreResult<Option<Member>> {
        let (client, discord_user_id) = (client.to_owned(), discord_user_id.to_owned());
        self.run(move |c| members::find_by_discord(c, &client, &discord_user_id))
            .await
    }

    async fn save_site_user(
        &self,
        client: &str,
        user: &SiteUser,
        pending: bool,
        now: Timestamp,
    ) -> StoreResult<Member> {
        let (client, user) = (client.to_owned(), user.clone());
        self.run(move |c| members::save_site_user(c, &client, &user, pending, now))
            .await
    }

    async fn create_link(
        &self,
        client: &str,
        user_id: &str,
        link: &Link,
        pending: bool,
        now: Timestamp,
    ) -> StoreResult<Member> {
        let (client, user_id, link) = (client.to_owned(), user_id.to_owned(), link.clone());
        self.run(move |c| members::create_link(c, &client, &user_id, &link, pending, now))
            .await
    }

    async fn delete_link(&self, client: &str, user_id: &str) -> StoreResult<Option<Link>> {
        let (client, user_id) = (client.to_owned(), user_id.to_owned());
        self.run(move |c| members::delete_link(c, &client, &user_id))
            .await
    }

    async fn record_outcome(
        &self,
        client: &str,
        user_id: &str,
        expected_version: i64,
        outcome: &Outcome,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let (client, user_id, outcome) = (client.to_owned(), user_id.to_owned(), outcome.clone());
        self.run(move |c| {
            members::record_outcome(c, &client, &user_id, expected_version, &outcome, now)
        })
        .await
    }

    async fn set_tokens(
        &self,
        client: &str,
        user_id: &str,
        tokens: Option<&StoredTokens>,
    ) -> StoreResult<()> {
        let (client, user_id, tokens) = (client.to_owned(), user_id.to_owned(), tokens.cloned());
        self.run(move |c| members::set_tokens(c, &client, &user_id, tokens.as_ref()))
            .await
    }

    async fn mark_all_linked_pending(&self, client: &str, now: Timestamp) -> StoreResult<u64> {
        let client = client.to_owned();
        self.run(move |c| members::mark_all_linked_pending(c, &client, now))
            .await
    }

    async fn list_pending(
        &self,
        client: &str,
        after: Option<&Cursor>,
        limit: usize,
    ) -> StoreResult<Page<Member>> {
        let (client, after) = (client.to_owned(), after.cloned());
        self.run(move |c| members::list(c, &client, true, after.as_ref(), limit))
            .await
    }

    async fn list_members(
        &self,
        client: &str,
        after: Option<&Cursor>,
        limit: usize,
    ) -> StoreResult<Page<Member>> {
        let (client, after) = (client.to_owned(), after.cloned());
        self.run(move |c| members::list(c, &client, false, after.as_ref(), limit))
            .await
    }

    async fn list_linked_by_discord(
        &self,
        client: &str,
        after_discord_id: Option<u64>,
        limit: usize,
    ) -> StoreResult<Page<Member>> {
        let client = client.to_owned();
        self.run(move |c| members::list_linked_by_discord(c, &client, after_discord_id, limit))
            .await
    }
}

#[async_trait]
impl LinkSessions for SqliteStore {
    async fn put_link_session(&self, session: &LinkSession) -> StoreResult<()> {
        let session = session.clone();
        self.run(move |c| records::put_link_session(c, &session))
            .await
    }

    async fn consume_link_session(
        &self,
        state_hash: &str,
        now: Timestamp,
    ) -> StoreResult<Option<ConsumedSession>> {
        let state_hash = state_hash.to_owned();
        self.run(move |c| records::consume_link_session(c, &state_hash, now))
            .await
    }
}

#[async_trait]
impl RunLog for SqliteStore {
    async fn put_run(&self, report: &RunReport) -> StoreResult<()> {
        let report = report.clone();
        self.run(move |c| records::put_run(c, &report)).await
    }

    async fn list_runs(
        &self,
        client: &str,
        after: Option<&Cursor>,
        limit: usize,
    ) -> StoreResult<Page<RunReport>> {
        let (client, after) = (client.to_owned(), after.cloned());
        self.run(move |c| records::list_runs(c, &client, after.as_ref(), limit))
            .await
    }

    async fn append_audit(&self, entries: &[AuditEntry]) -> StoreResult<()> {
        let entries = entries.to_vec();
        self.run(move |c| records::append_audit(c, &entries)).await
    }

    async fn list_audit(
        &self,
        client: &str,
        after: Option<&Cursor>,
        limit: usize,
    ) -> StoreResult<Page<AuditEntry>> {
        let (client, after) = (client.to_owned(), after.cloned());
        self.run(move |c| records::list_audit(c, &client, after.as_ref(), limit))
            .await
    }
}

#[async_trait]
impl Settings for SqliteStore {
    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>> {
        let key = key.to_owned();
        self.run(move |c| records::get_setting(c, &key)).await
    }

    async fn put_setting_if_absent(&self, key: &str, value: &str) -> StoreResult<bool> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.run(move |c| records::put_setting_if_absent(c, &key, &value))
            .await
    }
}

#[async_trait]
impl Leases for SqliteStore {
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        ttl_secs: i64,
    ) -> StoreResult<Option<LeaseGrant>> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.run(move |c| records::acquire_lease(c, &name, &holder, now, ttl_secs))
            .await
    }

    async fn renew_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        ttl_secs: i64,
        handover: Option<&str>,
    ) -> StoreResult<bool> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        let handover = handover.map(str::to_owned);
        self.run(move |c| {
            records::renew_lease(c, &name, &holder, now, ttl_secs, handover.as_deref())
        })
        .await
    }

    async fn release_lease(
        &self,
        name: &str,
        holder: &str,
        handover: Option<&str>,
    ) -> StoreResult<()> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        let handover = handover.map(str::to_owned);
        self.run(move |c| records::release_lease(c, &name, &holder, handover.as_deref()))
            .await
    }
}

#[async_trait]
impl WorkIndex for SqliteStore {
    async fn mark_work(&self, client: &str, task: TaskName, now: Timestamp) -> StoreResult<u64> {
        let client = client.to_owned();
        self.run(move |c| records::mark_work(c, &client, task, now))
            .await
    }

    async fn get_work(&self, client: &str, task: TaskName) -> StoreResult<Option<WorkMark>> {
        let client = client.to_owned();
        self.run(move |c| records::get_work(c, &client, task)).await
    }

    async fn list_work(&self, after: Option<&Cursor>, limit: usize) -> StoreResult<Page<WorkMark>> {
        let after = after.cloned();
        self.run(move |c| records::list_work(c, after.as_ref(), limit))
            .await
    }

    async fn clear_work(&self, client: &str, task: TaskName, seen_seq: u64) -> StoreResult<bool> {
        let client = client.to_owned();
        self.run(move |c| records::clear_work(c, &client, task, seen_seq))
            .await
    }
}
