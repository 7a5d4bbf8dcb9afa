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

// --- retention -----------------------------------------------------------------------------------

const DAY: i64 = 86_400;

#[tokio::test]
async fn pruning_removes_what_is_past_retention_a_bounded_batch_at_a_time() {
    use connector::domain::TaskName;
    use connector::store::contract::{audit_entry, console_session, link_session, run_report};
    use connector::store::retention::prune_all;
    use connector::store::{ConsumedSession, Pruned, RetentionPolicy};

    // given a store keeping runs 30 days and audit entries 60, with a backlog past both
    let (_dir, path) = db_path();
    let store = SqliteStore::open(&path)
        .unwrap()
        .with_retention(RetentionPolicy {
            runs_days: 30,
            audit_days: 60,
        });
    let now = T0 + 1000 * DAY;
    store.create_client(&client("a")).await.unwrap();
    for n in 0..5 {
        let old = run_report("a", &format!("old{n}"), now - 30 * DAY - n);
        store.put_run(&old).await.unwrap();
    }
    let kept_run = run_report("a", "kept", now - 30 * DAY + 1);
    store.put_run(&kept_run).await.unwrap();
    let mut entries: Vec<_> = (0..3)
        .map(|n| audit_entry("a", &format!("old{n}"), now - 60 * DAY - n))
        .collect();
    let kept_entry = audit_entry("a", "kept", now - 60 * DAY + 1);
    entries.push(kept_entry.clone());
    store.append_audit(&entries).await.unwrap();
    for n in 0..3 {
        let expired = link_session(&format!("gone{n}"), "a", &format!("u{n}"), now - n);
        store.put_link_session(&expired).await.unwrap();
    }
    store
        .put_link_session(&link_session("live", "a", "u9", now + 1))
        .await
        .unwrap();
    for n in 0..3 {
        let expired = console_session(&format!("gone{n}"), now - n);
        store.put_console_session(&expired).await.unwrap();
    }
    let live_console = console_session("live", now + 1);
    store.put_console_session(&live_console).await.unwrap();
    // a lease that expired more than a day ago, one released after its last renewal more than
    // a day ago, and one released a moment ago
    for (name, taken_at) in [
        ("dead", now - 2 * DAY),
        ("released", now - 2 * DAY),
        ("recent", now - 5),
    ] {
        assert!(store
            .acquire_lease(name, "A", taken_at, 60)
            .await
            .unwrap()
            .is_some());
    }
    store
        .release_lease("released", "A", Some("old"))
        .await
        .unwrap();
    store
        .release_lease("recent", "A", Some("fresh"))
        .await
        .unwrap();
    store
        .mark_work("a", TaskName::VerifyGroups, T0)
        .await
        .unwrap();

    // when one batch of 2 is pruned, then at most 2 of each kind go
    let first = store.prune_expired(now, 2).await.unwrap();
    assert_eq!(
        first,
        Pruned {
            runs: 2,
            audit: 2,
            link_sessions: 2,
            console_sessions: 2,
            leases: 2,
            webhook_deliveries: 0
        }
    );
    // and pruning on removes the rest, and nothing else
    let rest = prune_all(&store, now, 2).await.unwrap();
    assert_eq!(
        rest,
        Pruned {
            runs: 3,
            audit: 1,
            link_sessions: 1,
            console_sessions: 1,
            leases: 0,
            webhook_deliveries: 0
        }
    );
    assert_eq!(
        store.list_runs("a", None, 10).await.unwrap().items,
        [kept_run]
    );
    assert_eq!(
        store.list_audit("a", None, 10).await.unwrap().items,
        [kept_entry]
    );
    assert!(store
        .consume_link_session("gone2", now - 10)
        .await
        .unwrap()
        .is_none());
    assert!(matches!(
        store.consume_link_session("live", now).await.unwrap(),
        Some(ConsumedSession::Valid(_))
    ));
    assert_eq!(
        store.get_console_session("live", now).await.unwrap(),
        Some(live_console)
    );
    let remaining: i64 = raw(&path)
        .query_row("SELECT count(*) FROM console_sessions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(remaining, 1, "expired console sessions are gone");
    let grant = |name: &'static str| {
        let store = store.clone();
        async move { store.acquire_lease(name, "B", now, 60).await.unwrap() }
    };
    assert_eq!(grant("dead").await.unwrap().handover, None, "pruned");
    assert_eq!(grant("released").await.unwrap().handover, None, "pruned");
    assert_eq!(
        grant("recent").await.unwrap().handover.as_deref(),
        Some("fresh")
    );
    assert!(store
        .get_work("a", TaskName::VerifyGroups)
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        prune_all(&store, now, 2).await.unwrap(),
        Pruned::default(),
        "nothing left to prune"
    );
}

#[tokio::test]
async fn pruning_reads_by_time_through_indexes() {
    let (_dir, path) = db_path();
    SqliteStore::open(&path).unwrap();
    let conn = raw(&path);
    for (sql, index) in [
        (
            "SELECT rowid FROM runs WHERE started_at <= ?1 ORDER BY started_at LIMIT ?2",
            "runs_started",
        ),
        (
            "SELECT seq FROM audit WHERE at <= ?1 ORDER BY at LIMIT ?2",
            "audit_at",
        ),
        (
            "SELECT rowid FROM leases WHERE keep_until <= ?1 ORDER BY keep_until LIMIT ?2",
            "leases_keep_until",
        ),
        (
            "SELECT rowid FROM console_sessions WHERE expires_at <= ?1 ORDER BY expires_at LIMIT ?2",
            "console_sessions_expiry",
        ),
    ] {
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map(rusqlite::params![T0, 10], |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(plan.iter().any(|s| s.contains(index)), "{sql}: {plan:?}");
        assert!(
            !plan.iter().any(|s| s.contains("TEMP B-TREE")),
            "no sort: {plan:?}"
        );
    }
}

#[tokio::test]
async fn a_lease_from_before_the_retention_migration_is_kept_a_day_past_its_expiry() {
    // given a lease written by schema version 5 (no keep_until)
    let (_dir, path) = db_path();
    SqliteStore::open(&path).unwrap();
    {
        let conn = raw(&path);
        conn.execute_batch(
            "DROP TABLE webhook_deliveries;
             DROP TABLE console_sessions; ALTER TABLE roles DROP COLUMN color;
             DROP INDEX leases_keep_until; DROP INDEX runs_started; DROP INDEX audit_at;
             ALTER TABLE leases DROP COLUMN keep_until;
             INSERT INTO leases (name, holder, expires_at, handover) VALUES ('g', 'A', 1000, 'h');
             PRAGMA user_version = 5;",
        )
        .unwrap();
    }
    // when the store migrates it
    let store = SqliteStore::open(&path).unwrap();
    // then it is pruned only once a day has passed since its expiry
    assert_eq!(
        store
            .prune_expired(1000 + DAY - 1, 10)
            .await
            .unwrap()
            .leases,
        0
    );
    assert_eq!(store.prune_expired(1000 + DAY, 10).await.unwrap().leases, 1);
}

// --- the console's reads ---------------------------------------------------------------------------

#[tokio::test]
async fn member_searches_answer_exact_pages() {
    use connector::domain::{MemberFilter, MemberSearch};
    use connector::store::contract::{all_pages, seed_console_members};

    // given members in every standing and 20 more site users
    let store = fresh().await;
    seed_console_members(&*store, 20).await;

    // then a search's pages are exact: `limit` matches each, only the last one short, a cursor
    // only when more matches follow
    for (filter, text, limit, sizes) in [
        (MemberFilter::All, None, 4, vec![4, 4, 4, 4, 4, 4, 4, 1]),
        (MemberFilter::Pending, None, 3, vec![3, 3, 3, 1]),
        (MemberFilter::Unlinked, Some("u1"), 5, vec![5, 5]),
        (MemberFilter::All, Some("ärger"), 1, vec![1]),
        (MemberFilter::Left, Some("nobody"), 2, vec![0]),
    ] {
        let search = MemberSearch {
            filter,
            text: text.map(str::to_owned),
        };
        let pages = all_pages(limit, |after| {
            let (store, search) = (&store, &search);
            async move {
                store
                    .search_members("a", search, after.as_ref(), limit)
                    .await
            }
        })
        .await;
        let got: Vec<usize> = pages.iter().map(Vec::len).collect();
        assert_eq!(got, sizes, "{search:?}");
    }
}

#[tokio::test]
async fn a_search_examines_a_bounded_number_of_members_or_entries_per_request() {
    use connector::domain::{AuditSearch, MemberFilter, MemberSearch};
    use connector::store::contract::{audit_entry, search_all};
    use connector::store::SEARCH_BUDGET;

    // given more members and audit entries than one request examines, the only matches last
    let store = fresh().await;
    store.create_client(&client("a")).await.unwrap();
    let total = SEARCH_BUDGET + 3;
    for n in 0..total {
        let id = if n + 2 >= total {
            format!("u{n:05}-needle")
        } else {
            format!("u{n:05}")
        };
        store
            .save_site_user("a", &site_user(&id, &[]), false, T0)
            .await
            .unwrap();
    }
    let entries: Vec<_> = (0..total)
        .map(|n| {
            let mut e = audit_entry("a", &format!("e{n}"), T0 + n as i64);
            if n < 2 {
                e.action = "client.create".to_owned();
            }
            e
        })
        .collect();
    store.append_audit(&entries).await.unwrap();

    // when members are searched, then the first request stops at the budget, empty-handed but
    // with a cursor, and the next one finds them
    let search = MemberSearch {
        filter: MemberFilter::All,
        text: Some("needle".to_owned()),
    };
    let first = store.search_members("a", &search, None, 10).await.unwrap();
    assert!(first.items.is_empty(), "{:?}", first.items.len());
    assert!(first.next.is_some());
    let (found, pages) = search_all(|after| {
        let (store, search) = (&store, &search);
        async move { store.search_members("a", search, after.as_ref(), 10).await }
    })
    .await;
    assert_eq!(pages, 2);
    assert_eq!(found.len(), 2);

    // and the audit search does the same, newest first
    let search = AuditSearch {
        action: Some("client.create".to_owned()),
        ..AuditSearch::default()
    };
    let first = store.search_audit("a", &search, None, 10).await.unwrap();
    assert!(first.items.is_empty());
    assert!(first.next.is_some());
    let (found, pages) = search_all(|after| {
        let (store, search) = (&store, &search);
        async move { store.search_audit("a", search, after.as_ref(), 10).await }
    })
    .await;
    assert_eq!(pages, 2);
    let ids: Vec<&str> = found.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["e1", "e0"]);

    // but a search since a time stops at the first entry examined that is older
    let since = AuditSearch {
        since: Some(T0 + total as i64 - 1),
        ..AuditSearch::default()
    };
    let page = store.search_audit("a", &since, None, 10).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.next, None);
}

#[tokio::test]
async fn console_reads_use_indexes() {
    let (_dir, path) = db_path();
    SqliteStore::open(&path).unwrap();
    let conn = raw(&path);
    for (sql, index) in [
        (
            "SELECT report FROM runs WHERE client = ?1 AND id = ?2",
            "sqlite_autoindex_runs_1",
        ),
        (
            "SELECT session FROM console_sessions WHERE id_sha256 = ?1 AND expires_at > ?2",
            "sqlite_autoindex_console_sessions_1",
        ),
        (
            "SELECT user_id FROM members WHERE client = ?1 AND pending = 1 AND user_id > ?2
             ORDER BY user_id LIMIT 1 OFFSET 10",
            "members_pending",
        ),
    ] {
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map(rusqlite::params!["a", "b"], |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(plan.iter().any(|s| s.contains(index)), "{sql}: {plan:?}");
    }
}

#[tokio::test]
async fn finished_webhook_deliveries_are_pruned_with_run_reports_and_pending_ones_never() {
    use connector::domain::{DeliveryAttempt, DeliveryStatus};
    use connector::store::retention::DAY_SECS;
    // given a client with a webhook URL and three entries: delivered, failed, pending
    let store = fresh().await;
    let mut c = client("a");
    c.webhook_url = Some("https://a.example.test/hooks".into());
    store.create_client(&c).await.unwrap();
    for (user, discord) in [("u1", "d1"), ("u2", "d2"), ("u3", "d3")] {
        store
            .create_link("a", user, &link(discord), None, false, T0)
            .await
            .unwrap();
    }
    let entries = store.list_deliveries("a", None, 10).await.unwrap().items;
    assert_eq!(entries.len(), 3);
    for (entry, status) in entries
        .iter()
        .zip([DeliveryStatus::Delivered, DeliveryStatus::Failed])
    {
        let attempt = DeliveryAttempt {
            status,
            status_code: Some(200),
            error: None,
            next_attempt_at: None,
        };
        store
            .record_attempt("a", &entry.id, &attempt, T0)
            .await
            .unwrap();
    }
    // when pruned a day before and at the runs' retention (90 days) after they finished
    let before = store.prune_expired(T0 + 89 * DAY_SECS, 10).await.unwrap();
    let at = store.prune_expired(T0 + 90 * DAY_SECS, 10).await.unwrap();
    // then both finished ones go then, the pending one stays
    assert_eq!(before.webhook_deliveries, 0);
    assert_eq!(at.webhook_deliveries, 2);
    let left = store.list_deliveries("a", None, 10).await.unwrap().items;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].status, DeliveryStatus::Pending);
}
