//! The SQLite store: the whole store contract against a real file, plus what only a file has
//! (reopening, migrations, creation).

use connector::store::prelude::*;
use std::ops::Deref;
use std::path::PathBuf;

use connector::store::contract::{client, link, site_user, T0};
use connector::store::sqlite::SqliteStore;
use connector::store::{Cursor, StoreError};

/// A fresh store in its own temporary directory, removed when dropped.
struct Fresh {
    store: SqliteStore,
    _dir: tempfile::TempDir,
}

impl Deref for Fresh {
    type Target = SqliteStore;
    fn deref(&self) -> &SqliteStore {
        &self.store
    }
}

async fn fresh() -> Fresh {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("connector.db")).unwrap();
    Fresh { store, _dir: dir }
}

connector::store_contract_tests!(fresh);

fn db_path() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data").join("nested").join("connector.db");
    (dir, path)
}

fn raw(path: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

#[tokio::test]
async fn the_file_and_its_directory_are_created_when_absent() {
    let (_dir, path) = db_path();
    assert!(!path.exists());
    SqliteStore::open(&path).unwrap();
    assert!(path.is_file());
    let mode: String = raw(&path)
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn data_survives_closing_and_reopening() {
    let (_dir, path) = db_path();
    {
        let store = SqliteStore::open(&path).unwrap();
        store.create_client(&client("a")).await.unwrap();
        store
            .save_site_user("a", &site_user("u1", &["g"]), true, T0)
            .await
            .unwrap();
        store
            .create_link("a", "u1", &link("d1"), None, true, T0)
            .await
            .unwrap();
        store.put_setting_if_absent("k", "v").await.unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.get_client("a").await.unwrap(), Some(client("a")));
    let member = store
        .find_member_by_discord("a", "d1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(member.user, site_user("u1", &["g"]));
    assert!(member.pending);
    assert_eq!(store.get_setting("k").await.unwrap().as_deref(), Some("v"));
    // The uniqueness of links survives too.
    assert!(matches!(
        store
            .create_link("a", "u2", &link("d1"), None, true, T0)
            .await,
        Err(StoreError::DiscordAccountTaken { .. })
    ));
}

#[tokio::test]
async fn reopening_runs_no_migration_twice() {
    let (_dir, path) = db_path();
    SqliteStore::open(&path).unwrap();
    let version: i64 = raw(&path)
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, connector::store::sqlite::SCHEMA_VERSION as i64);
    SqliteStore::open(&path).unwrap();
    SqliteStore::open(&path).unwrap();
    let again: i64 = raw(&path)
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(again, version);
}

#[tokio::test]
async fn a_database_from_a_newer_version_is_refused() {
    let (_dir, path) = db_path();
    SqliteStore::open(&path).unwrap();
    raw(&path).pragma_update(None, "user_version", 99).unwrap();
    match SqliteStore::open(&path) {
        Err(StoreError::Backend(msg)) => assert!(msg.contains("newer"), "{msg}"),
        other => panic!("expected a backend error, got {other:?}"),
    }
}

#[tokio::test]
async fn two_stores_on_one_file_share_the_one_link_per_account_rule() {
    let (_dir, path) = db_path();
    let first = SqliteStore::open(&path).unwrap();
    let second = SqliteStore::open(&path).unwrap();
    first.create_client(&client("a")).await.unwrap();
    first
        .create_link("a", "u1", &link("d1"), None, false, T0)
        .await
        .unwrap();
    match second
        .create_link("a", "u2", &link("d1"), None, false, T0)
        .await
    {
        Err(StoreError::DiscordAccountTaken { user_id }) => assert_eq!(user_id, "u1"),
        other => panic!("expected DiscordAccountTaken, got {other:?}"),
    }
}

#[tokio::test]
async fn pending_members_are_read_through_the_partial_index() {
    let (_dir, path) = db_path();
    SqliteStore::open(&path).unwrap();
    let conn = raw(&path);
    let mut stmt = conn
        .prepare(
            "EXPLAIN QUERY PLAN SELECT user_id FROM members
             WHERE client = ?1 AND pending = 1 AND user_id > ?3 ORDER BY user_id LIMIT ?2",
        )
        .unwrap();
    let plan: Vec<String> = stmt
        .query_map(rusqlite::params!["a", 10, "u"], |r| r.get(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        plan.iter().any(|step| step.contains("members_pending")),
        "{plan:?}"
    );
}

#[tokio::test]
async fn linked_members_are_read_in_discord_order_from_an_index() {
    let (_dir, path) = db_path();
    SqliteStore::open(&path).unwrap();
    let conn = raw(&path);
    let mut stmt = conn
        .prepare(
            "EXPLAIN QUERY PLAN SELECT user_id FROM members
             WHERE client = ?1 AND discord_user_id IS NOT NULL AND CAST(discord_user_id AS INTEGER) > ?3
             ORDER BY CAST(discord_user_id AS INTEGER) LIMIT ?2",
        )
        .unwrap();
    let plan: Vec<String> = stmt
        .query_map(rusqlite::params!["a", 10, 5], |r| r.get(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        plan.iter()
            .any(|step| step.contains("members_by_discord_number")),
        "{plan:?}"
    );
    assert!(
        !plan.iter().any(|step| step.contains("TEMP B-TREE")),
        "no sort: {plan:?}"
    );
}

#[tokio::test]
async fn cursors_that_do_not_belong_to_a_listing_are_rejected() {
    let store = fresh().await;
    let garbage = Cursor::encode("not a position");
    assert!(matches!(
        store.list_runs("a", Some(&garbage), 10).await,
        Err(StoreError::InvalidCursor)
    ));
    assert!(matches!(
        store.list_audit("a", Some(&garbage), 10).await,
        Err(StoreError::InvalidCursor)
    ));
}

#[tokio::test]
async fn an_in_memory_store_works_for_tests() {
    let store = SqliteStore::open_in_memory().unwrap();
    store.create_client(&client("a")).await.unwrap();
    assert_eq!(store.list_clients().await.unwrap(), vec![client("a")]);
}
