//! The embedded `Store` adapter: one SQLite file (WAL), schema migrated on open.
//!
//! Queries run on tokio's blocking pool through one connection behind a mutex. Writes that read
//! before they write take SQLite's write lock up front (`BEGIN IMMEDIATE`), so a second process
//! or connection on the same file cannot interleave.
//!
//! This module holds the store type, opening and the connection, and the row/JSON helpers the
//! ports share. Each port is implemented in its own module, next to its SQL: `catalog`
//! (`ClientCatalog`), `members` (`MemberStore`), `sessions` (`LinkSessions`), `run_log`
//! (`RunLog`: runs and audit), `settings` (`Settings`), `leases` (`Leases`), `work`
//! (`WorkIndex`), `api_tokens` (`ApiTokens`), `console_sessions` (`ConsoleSessions`), `pruning`
//! (`Pruning`: retention); `db` is the connection, `migrations` the schema.

mod api_tokens;
mod catalog;
mod console_sessions;
mod db;
mod leases;
mod members;
mod migrations;
mod pruning;
mod run_log;
mod sessions;
mod settings;
mod webhooks;
mod work;

use std::path::Path;

use rusqlite::types::Type;
use rusqlite::{Connection, ErrorCode, Row};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{Cursor, Page, RetentionPolicy, StoreError, StoreResult};

pub(crate) use db::Db;

/// The schema version a freshly opened database ends at (`PRAGMA user_version`).
pub const SCHEMA_VERSION: usize = migrations::LATEST;

/// The SQLite adapter. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct SqliteStore {
    db: Db,
    /// What `Pruning` removes.
    retention: RetentionPolicy,
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

    /// The connection (the key rotation re-seals values in the store's tables).
    pub(crate) fn db(&self) -> &Db {
        &self.db
    }

    fn migrated(db: Db) -> StoreResult<Self> {
        db.with_blocking(migrations::migrate)
            .map_err(StoreError::Backend)?;
        Ok(Self {
            db,
            retention: RetentionPolicy::default(),
        })
    }

    /// The same store, pruned (see [`Pruning`](crate::store::Pruning)) by `policy` instead of
    /// the default one.
    pub fn with_retention(mut self, policy: RetentionPolicy) -> Self {
        self.retention = policy;
        self
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

/// `limit + 1` rows are read, to know whether another page follows.
fn fetch_count(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1
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
