//! The DynamoDB store against moto: the whole `Store` contract on a fresh table per test, then
//! what only DynamoDB has — the table schema, batch chunking, TTL'd items that outlive their
//! expiry, the sparse pending index, the link uniqueness transaction.

use std::collections::{BTreeSet, HashMap};

use connector::aws::aws_sdk_dynamodb::types::{
    AttributeValue, BillingMode, KeyType, ProjectionType, TimeToLiveStatus,
};
use connector::aws::aws_sdk_dynamodb::Client;
use connector::domain::{Link, TaskName};
use connector::store::contract::{
    all_pages, audit_entry, client, console_session, link, link_session, outcome, role, run_report,
    site_user, T0,
};
use connector::store::dynamo::{DynamoStore, GSI1};
use connector::store::prelude::*;
use connector::store::{LeaseGrant, Outcome, StoreError, WorkMark};
use connector_e2e::moto::{moto, unique_name};

type Item = HashMap<String, AttributeValue>;

/// A new table on the process's moto server.
async fn fresh_table() -> (Client, String) {
    let dynamodb = moto().await.dynamodb();
    let table = unique_name("store");
    DynamoStore::create_table(&dynamodb, &table)
        .await
        .expect("create table");
    (dynamodb, table)
}

/// Boxed for the contract suite; clones share the table.
async fn fresh() -> Box<DynamoStore> {
    let (dynamodb, table) = fresh_table().await;
    Box::new(DynamoStore::new(dynamodb, table))
}

connector::store_contract_tests!(fresh);

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

async fn scan(dynamodb: &Client, table: &str) -> Vec<Item> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let out = dynamodb
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        items.extend(out.items.unwrap_or_default());
        match out.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => return items,
        }
    }
}

async fn get_item(dynamodb: &Client, table: &str, pk: &str, sk: &str) -> Option<Item> {
    dynamodb
        .get_item()
        .table_name(table)
        .key("PK", s(pk))
        .key("SK", s(sk))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
}

/// An attribute value as text, map keys sorted, so two scans compare equal when equal.
fn canonical(v: &AttributeValue) -> String {
    match v {
        AttributeValue::M(map) => {
            let mut fields: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}={}", canonical(v)))
                .collect();
            fields.sort();
            format!("M{{{}}}", fields.join(","))
        }
        AttributeValue::L(list) => {
            format!(
                "L[{}]",
                list.iter().map(canonical).collect::<Vec<_>>().join(",")
            )
        }
        other => format!("{other:?}"),
    }
}

fn sorted(items: Vec<Item>) -> Vec<Vec<(String, String)>> {
    let mut rows: Vec<Vec<(String, String)>> = items
        .iter()
        .map(|item| {
            let mut row: Vec<(String, String)> = item
                .iter()
                .map(|(k, v)| (k.clone(), canonical(v)))
                .collect();
            row.sort();
            row
        })
        .collect();
    rows.sort();
    rows
}

#[tokio::test]
async fn the_table_has_the_schema_the_template_declares() {
    let (dynamodb, table) = fresh_table().await;
    let described = dynamodb
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let keys: Vec<(String, KeyType)> = described
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name().to_owned(), k.key_type().clone()))
        .collect();
    assert_eq!(
        keys,
        [("PK".into(), KeyType::Hash), ("SK".into(), KeyType::Range)]
    );
    let gsis = described.global_secondary_indexes();
    assert_eq!(gsis.len(), 1);
    assert_eq!(gsis[0].index_name(), Some(GSI1));
    let gsi_keys: Vec<(String, KeyType)> = gsis[0]
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name().to_owned(), k.key_type().clone()))
        .collect();
    assert_eq!(
        gsi_keys,
        [
            ("GSI1PK".into(), KeyType::Hash),
            ("GSI1SK".into(), KeyType::Range)
        ]
    );
    assert_eq!(
        gsis[0].projection().and_then(|p| p.projection_type()),
        Some(&ProjectionType::All)
    );
    assert_eq!(
        described
            .billing_mode_summary()
            .and_then(|b| b.billing_mode()),
        Some(&BillingMode::PayPerRequest)
    );
    let ttl = dynamodb
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .unwrap()
        .time_to_live_description
        .unwrap();
    assert_eq!(ttl.attribute_name(), Some("ttl"));
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
}

#[tokio::test]
async fn deleting_a_client_with_more_than_25_items_removes_them_all_in_batches() {
    let (dynamodb, table) = fresh_table().await;
    let store = DynamoStore::new(dynamodb.clone(), &table);
    for id in ["big", "other"] {
        store.create_client(&client(id)).await.unwrap();
        store
            .replace_roles(id, &[role("r1", 1, &["g"])])
            .await
            .unwrap();
    }
    for n in 0..40 {
        let user = format!("u{n:02}");
        store
            .save_site_user("big", &site_user(&user, &["g"]), n % 3 == 0, T0)
            .await
            .unwrap();
        if n % 4 == 0 {
            store
                .create_link("big", &user, &link(&format!("d{n}")), None, true, T0)
                .await
                .unwrap();
        }
    }
    for n in 0..12 {
        store
            .put_run(&run_report("big", &format!("run{n}"), T0 + n))
            .await
            .unwrap();
    }
    let entries: Vec<_> = (0..30)
        .map(|n| audit_entry("big", &format!("e{n}"), T0 + n))
        .collect();
    store.append_audit(&entries).await.unwrap();
    for n in 0..3 {
        store
            .put_link_session(&link_session(
                &format!("s{n}"),
                "big",
                &format!("u{n:02}"),
                T0 + 600,
            ))
            .await
            .unwrap();
    }
    store
        .save_site_user("other", &site_user("u1", &[]), true, T0)
        .await
        .unwrap();
    let before = scan(&dynamodb, &table).await.len();
    assert!(before >= 100, "{before} items: several batches of 25");

    store.delete_client("big").await.unwrap();

    let left = scan(&dynamodb, &table).await;
    let mentions_big = |item: &Item| {
        item.values()
            .any(|v| matches!(v, AttributeValue::S(text) if text.contains("big")))
    };
    assert!(
        !left.iter().any(mentions_big),
        "nothing of the deleted client is left"
    );
    // `other`: client, roles, member.
    assert_eq!(left.len(), 3);
    assert!(store.get_member("other", "u1").await.unwrap().is_some());
}

#[tokio::test]
async fn a_link_session_past_its_expiry_but_not_yet_removed_by_ttl_is_refused() {
    let (dynamodb, table) = fresh_table().await;
    let store = DynamoStore::new(dynamodb.clone(), &table);
    store
        .put_link_session(&link_session("h1", "a", "u1", T0 + 600))
        .await
        .unwrap();

    let stored = get_item(&dynamodb, &table, "SESSION#h1", "SESSION")
        .await
        .expect("stored");
    assert_eq!(
        stored.get("ttl"),
        Some(&AttributeValue::N((T0 + 600).to_string())),
        "the TTL attribute is the expiry, in epoch seconds"
    );
    assert_eq!(stored.get("entity"), Some(&s("link_session")));

    // moto never runs TTL (real DynamoDB takes up to days): the item is still there at T0+601.
    assert!(matches!(
        store.consume_link_session("h1", T0 + 601).await.unwrap(),
        Some(connector::store::ConsumedSession::Expired(_))
    ));
    assert!(
        get_item(&dynamodb, &table, "SESSION#h1", "SESSION")
            .await
            .is_none(),
        "the expired session is deleted on the way"
    );
}

#[tokio::test]
async fn a_console_session_past_its_expiry_but_not_yet_removed_by_ttl_is_refused() {
    let (dynamodb, table) = fresh_table().await;
    let store = DynamoStore::new(dynamodb.clone(), &table);
    store
        .put_console_session(&console_session("h1", T0 + 600))
        .await
        .unwrap();

    let stored = get_item(&dynamodb, &table, "CONSOLESESSION#h1", "CONSOLESESSION")
        .await
        .expect("stored under the id's hash");
    assert_eq!(
        stored.get("ttl"),
        Some(&AttributeValue::N((T0 + 600).to_string())),
        "the TTL attribute is the expiry, in epoch seconds"
    );
    assert_eq!(stored.get("entity"), Some(&s("console_session")));
    assert!(store
        .get_console_session("h1", T0 + 599)
        .await
        .unwrap()
        .is_some());

    // moto never runs TTL: the item is still there at T0+601, but the session is over.
    assert_eq!(
        store.get_console_session("h1", T0 + 601).await.unwrap(),
        None
    );
    assert!(
        get_item(&dynamodb, &table, "CONSOLESESSION#h1", "CONSOLESESSION")
            .await
            .is_some()
    );

    // and signing out deletes it
    store.delete_console_session("h1").await.unwrap();
    assert!(
        get_item(&dynamodb, &table, "CONSOLESESSION#h1", "CONSOLESESSION")
            .await
            .is_none()
    );
}

#[tokio::test]
async fn the_pending_index_holds_pending_members_only() {
    let (dynamodb, table) = fresh_table().await;
    let store = DynamoStore::new(dynamodb.clone(), &table);
    store.create_client(&client("a")).await.unwrap();
    store
        .save_site_user("a", &site_user("p1", &["g"]), true, T0)
        .await
        .unwrap();
    store
        .save_site_user("a", &site_user("idle", &["g"]), false, T0)
        .await
        .unwrap();
    let m = store
        .create_link("a", "done", &link("d1"), None, true, T0)
        .await
        .unwrap();
    store
        .record_outcome("a", "done", m.version, &outcome(&[], false), T0 + 1)
        .await
        .unwrap();
    store
        .create_link("a", "p2", &link("d2"), None, true, T0)
        .await
        .unwrap();
    // Pending, then cleared by a later save: leaves the index.
    store
        .save_site_user("a", &site_user("was", &[]), true, T0)
        .await
        .unwrap();
    store
        .save_site_user("a", &site_user("was", &[]), false, T0 + 1)
        .await
        .unwrap();

    let out = dynamodb
        .query()
        .table_name(&table)
        .index_name(GSI1)
        .key_condition_expression("GSI1PK = :p")
        .expression_attribute_values(":p", s("PENDING#a"))
        .send()
        .await
        .unwrap();
    let in_index: Vec<String> = out
        .items()
        .iter()
        .map(|i| match i.get("user_id") {
            Some(AttributeValue::S(u)) => u.clone(),
            other => panic!("no user_id: {other:?}"),
        })
        .collect();
    assert_eq!(in_index, ["p1", "p2"]);

    for idle in ["idle", "done", "was"] {
        let item = get_item(&dynamodb, &table, "CLIENT#a", &format!("USER#{idle}"))
            .await
            .unwrap();
        assert!(
            !item.contains_key("GSI1PK") && !item.contains_key("GSI1SK"),
            "{idle}: index keys are absent (not NULL) when not pending"
        );
        assert_eq!(item.get("pending"), Some(&AttributeValue::Bool(false)));
    }
}

#[tokio::test]
async fn a_refused_link_writes_nothing_at_all() {
    let (dynamodb, table) = fresh_table().await;
    let store = DynamoStore::new(dynamodb.clone(), &table);
    store.create_client(&client("a")).await.unwrap();
    store
        .create_link("a", "u1", &link("d1"), None, false, T0)
        .await
        .unwrap();
    store
        .create_link("a", "u2", &link("d2"), None, true, T0)
        .await
        .unwrap();
    let holder = get_item(&dynamodb, &table, "CLIENT#a", "DISCORD#S#d1")
        .await
        .expect("the uniqueness item");
    assert_eq!(holder.get("user_id"), Some(&s("u1")));
    assert_eq!(holder.get("entity"), Some(&s("discord_account")));
    let before = sorted(scan(&dynamodb, &table).await);

    // u2 would move from d2 to d1 (three writes in one transaction); u3 is new.
    for user in ["u2", "u3"] {
        match store
            .create_link("a", user, &link("d1"), None, true, T0 + 1)
            .await
        {
            Err(StoreError::DiscordAccountTaken { user_id }) => assert_eq!(user_id, "u1"),
            other => panic!("expected DiscordAccountTaken, got {other:?}"),
        }
    }
    assert_eq!(sorted(scan(&dynamodb, &table).await), before);
}

#[tokio::test]
async fn every_item_names_its_entity() {
    let (dynamodb, table) = fresh_table().await;
    let store = DynamoStore::new(dynamodb.clone(), &table);
    store.create_client(&client("a")).await.unwrap();
    store
        .replace_roles("a", &[role("r1", 1, &["g"])])
        .await
        .unwrap();
    store
        .create_link("a", "u1", &link("d1"), None, true, T0)
        .await
        .unwrap();
    store
        .put_link_session(&link_session("h", "a", "u1", T0 + 600))
        .await
        .unwrap();
    store.put_run(&run_report("a", "r", T0)).await.unwrap();
    store
        .append_audit(&[audit_entry("a", "e", T0)])
        .await
        .unwrap();
    store.put_setting_if_absent("k", "v").await.unwrap();
    store.acquire_lease("l", "me", T0, 60).await.unwrap();
    store
        .mark_work("a", TaskName::VerifyGroups, T0)
        .await
        .unwrap();

    let mut entities: Vec<String> = scan(&dynamodb, &table)
        .await
        .iter()
        .map(|item| match item.get("entity") {
            Some(AttributeValue::S(e)) => e.clone(),
            other => panic!("an item without entity: {other:?}"),
        })
        .collect();
    entities.sort();
    assert_eq!(
        entities,
        [
            "audit",
            "client",
            "discord_account",
            "lease",
            "link_session",
            "member",
            "roles",
            "run",
            "setting",
            "user_link_session",
            "work"
        ]
    );
}

#[tokio::test]
async fn a_cursor_from_another_listing_is_refused() {
    let store = fresh().await;
    store.create_client(&client("a")).await.unwrap();
    for id in ["r1", "r2"] {
        store.put_run(&run_report("a", id, T0)).await.unwrap();
    }
    let page = store.list_runs("a", None, 1).await.unwrap();
    let cursor = page.next.expect("a second page");
    assert!(matches!(
        store.list_members("a", Some(&cursor), 1).await,
        Err(StoreError::InvalidCursor)
    ));
}

// --- leases: handover, renewal, release ------------------------------------------------------------

#[tokio::test]
async fn a_lease_hands_its_handover_to_the_next_holder_across_takeovers_and_releases() {
    let (dynamodb, table) = fresh_table().await;
    let store = DynamoStore::new(dynamodb.clone(), &table);
    let lease = "writer:g1";

    // Given A holds a new lease and renews it leaving a handover
    let grant = store.acquire_lease(lease, "A", T0, 60).await.unwrap();
    assert_eq!(grant, Some(LeaseGrant { handover: None }));
    assert!(store
        .renew_lease(lease, "A", T0 + 30, 60, Some(r#"{"h":1}"#))
        .await
        .unwrap());
    // When A dies and B takes the expired lease, then B gets what A left
    let grant = store.acquire_lease(lease, "B", T0 + 90, 60).await.unwrap();
    assert_eq!(grant.unwrap().handover.as_deref(), Some(r#"{"h":1}"#));

    // When B releases it with a handover, C may take it at once and gets it
    store
        .release_lease(lease, "B", Some(r#"{"h":2}"#))
        .await
        .unwrap();
    let stored = get_item(&dynamodb, &table, "LEASE#writer:g1", "LEASE")
        .await
        .unwrap();
    assert_eq!(
        stored.get("expires_at"),
        Some(&AttributeValue::N("0".into()))
    );
    assert_eq!(stored.get("handover"), Some(&s(r#"{"h":2}"#)));
    assert!(
        matches!(stored.get("ttl"), Some(AttributeValue::N(t)) if t.parse::<i64>().unwrap() > T0 + 150),
        "a released lease keeps a TTL past its last expiry: {stored:?}"
    );
    let grant = store.acquire_lease(lease, "C", T0 + 91, 60).await.unwrap();
    assert_eq!(grant.unwrap().handover.as_deref(), Some(r#"{"h":2}"#));

    // A release or renewal without a handover keeps the one stored
    assert!(store
        .renew_lease(lease, "C", T0 + 92, 60, None)
        .await
        .unwrap());
    store.release_lease(lease, "C", None).await.unwrap();
    let grant = store.acquire_lease(lease, "D", T0 + 93, 60).await.unwrap();
    assert_eq!(grant.unwrap().handover.as_deref(), Some(r#"{"h":2}"#));

    // The holder taking its own lease again sees its own handover; the item keeps its attributes
    let grant = store.acquire_lease(lease, "D", T0 + 94, 60).await.unwrap();
    assert_eq!(grant.unwrap().handover.as_deref(), Some(r#"{"h":2}"#));
    let stored = get_item(&dynamodb, &table, "LEASE#writer:g1", "LEASE")
        .await
        .unwrap();
    assert_eq!(stored.get("entity"), Some(&s("lease")));
    assert_eq!(stored.get("holder"), Some(&s("D")));
    assert_eq!(stored.get("name"), Some(&s(lease)));
    assert_eq!(
        stored.get("expires_at"),
        Some(&AttributeValue::N((T0 + 154).to_string()))
    );
    assert!(
        matches!(stored.get("ttl"), Some(AttributeValue::N(t)) if t.parse::<i64>().unwrap() >= T0 + 154)
    );
}

#[tokio::test]
async fn a_renewal_fails_once_the_lease_expired_or_another_holder_took_it() {
    let store = fresh().await;
    let lease = "writer:g1";
    assert!(store
        .acquire_lease(lease, "A", T0, 60)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .renew_lease(lease, "A", T0 + 59, 60, None)
        .await
        .unwrap());

    // Expired (at T0+119) but not yet taken: the holder may not renew it.
    assert!(!store
        .renew_lease(lease, "A", T0 + 119, 60, Some("a"))
        .await
        .unwrap());
    // B takes it; A's renewal and release change nothing.
    let grant = store.acquire_lease(lease, "B", T0 + 120, 60).await.unwrap();
    assert_eq!(
        grant,
        Some(LeaseGrant { handover: None }),
        "A's failed renewal wrote nothing"
    );
    assert!(!store
        .renew_lease(lease, "A", T0 + 121, 60, Some("a"))
        .await
        .unwrap());
    store.release_lease(lease, "A", Some("a")).await.unwrap();
    assert_eq!(
        store.acquire_lease(lease, "C", T0 + 122, 60).await.unwrap(),
        None
    );
    assert!(store
        .renew_lease(lease, "B", T0 + 123, 60, Some("b"))
        .await
        .unwrap());

    // Unknown leases: no renewal, a release is a no-op that creates nothing.
    assert!(!store.renew_lease("never", "A", T0, 60, None).await.unwrap());
    store.release_lease("never", "A", Some("x")).await.unwrap();
    assert_eq!(
        store.acquire_lease("never", "B", T0, 60).await.unwrap(),
        Some(LeaseGrant { handover: None })
    );
}

#[tokio::test]
async fn concurrent_acquires_of_a_free_or_expired_lease_let_exactly_one_win() {
    let store = fresh().await;
    for (round, now) in [(0, T0), (1, T0 + 1000)] {
        // round 0: the lease is absent; round 1: it expired (held by round 0's winner).
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..8 {
            let store = store.clone();
            tasks.spawn(async move {
                let holder = format!("r{round}-{n}");
                store.acquire_lease("l", &holder, now, 60).await.unwrap()
            });
        }
        let mut won = 0;
        while let Some(grant) = tasks.join_next().await {
            won += usize::from(grant.unwrap().is_some());
        }
        assert_eq!(won, 1, "round {round}");
    }
}

// --- the work index --------------------------------------------------------------------------------

#[tokio::test]
async fn a_work_mark_counts_up_and_a_stale_clear_is_refused() {
    let (dynamodb, table) = fresh_table().await;
    let store = DynamoStore::new(dynamodb.clone(), &table);
    let task = TaskName::VerifyGroups;
    assert_eq!(store.get_work("a", task).await.unwrap(), None);

    let s1 = store.mark_work("a", task, T0).await.unwrap();
    let s2 = store.mark_work("a", task, T0 + 5).await.unwrap();
    assert_eq!(s2, s1 + 1);
    let mark = store.get_work("a", task).await.unwrap().unwrap();
    assert_eq!(
        mark,
        WorkMark {
            client: "a".into(),
            task,
            seq: s2,
            since: T0
        },
        "`since` is the first mark's"
    );
    let item = get_item(&dynamodb, &table, "WORK", "a#verify-groups")
        .await
        .unwrap();
    assert_eq!(item.get("entity"), Some(&s("work")));
    assert!(!item.contains_key("ttl"), "marks stay until cleared");

    // A dispatcher read s2; the member is marked again before it clears.
    let s3 = store.mark_work("a", task, T0 + 6).await.unwrap();
    assert_eq!(s3, s2 + 1);
    assert!(!store.clear_work("a", task, s2).await.unwrap());
    assert_eq!(store.get_work("a", task).await.unwrap().unwrap().seq, s3);
    assert!(store.clear_work("a", task, s3).await.unwrap());
    assert_eq!(store.get_work("a", task).await.unwrap(), None);
    assert!(
        store.clear_work("a", task, s3).await.unwrap(),
        "absent counts as cleared"
    );

    // A new mark starts over, from a seq no earlier incarnation handed out.
    let s4 = store.mark_work("a", task, T0 + 9).await.unwrap();
    assert!(![s1, s2, s3].contains(&s4));
    assert_eq!(
        store.get_work("a", task).await.unwrap().unwrap().since,
        T0 + 9
    );
}

#[tokio::test]
async fn work_marks_are_listed_by_client_and_task_in_exact_pages() {
    let store = fresh().await;
    let clients = ["a", "a-b", "b", "c2", "zz"];
    for client in clients.iter().rev() {
        for task in TaskName::ALL {
            store.mark_work(client, task, T0).await.unwrap();
        }
    }
    let mut expected: Vec<(String, String)> = clients
        .iter()
        .flat_map(|c| TaskName::ALL.map(|t| ((*c).to_owned(), t.as_str().to_owned())))
        .collect();
    expected.sort();

    for limit in [1, 4, 5, 15, 100] {
        let pages = all_pages(limit, |after| {
            let store = store.clone();
            async move { store.list_work(after.as_ref(), limit).await }
        })
        .await;
        let listed: Vec<(String, String)> = pages
            .into_iter()
            .flatten()
            .map(|m| (m.client, m.task.as_str().to_owned()))
            .collect();
        assert_eq!(listed, expected, "limit {limit}");
    }

    // The dispatcher clears what it read before asking for the next page.
    let first = store.list_work(None, 4).await.unwrap();
    for mark in &first.items {
        assert!(store
            .clear_work(&mark.client, mark.task, mark.seq)
            .await
            .unwrap());
    }
    let rest = store.list_work(first.next.as_ref(), 100).await.unwrap();
    assert_eq!(rest.items.len(), 11);
    assert_eq!(
        (rest.items[0].client.as_str(), rest.items[0].task),
        (
            expected[4].0.as_str(),
            TaskName::parse(&expected[4].1).unwrap()
        )
    );

    // A cursor from another listing is refused.
    store.create_client(&client("a")).await.unwrap();
    for id in ["r1", "r2"] {
        store.put_run(&run_report("a", id, T0)).await.unwrap();
    }
    let runs = store.list_runs("a", None, 1).await.unwrap().next.unwrap();
    assert!(matches!(
        store.list_work(Some(&runs), 1).await,
        Err(StoreError::InvalidCursor)
    ));
}

#[tokio::test]
async fn deleting_a_client_removes_its_work_marks_only() {
    let (dynamodb, table) = fresh_table().await;
    let store = DynamoStore::new(dynamodb.clone(), &table);
    for id in ["a", "b"] {
        store.create_client(&client(id)).await.unwrap();
    }
    for task in TaskName::ALL {
        store.mark_work("a", task, T0).await.unwrap();
    }
    store
        .mark_work("b", TaskName::SyncAccounts, T0)
        .await
        .unwrap();

    store.delete_client("a").await.unwrap();

    let left = store.list_work(None, 100).await.unwrap();
    let left: Vec<(String, TaskName)> =
        left.items.into_iter().map(|m| (m.client, m.task)).collect();
    assert_eq!(left, [("b".to_owned(), TaskName::SyncAccounts)]);
    assert!(get_item(&dynamodb, &table, "WORK", "a#verify-groups")
        .await
        .is_none());
}

// --- refused writes and known roles on a link ---------------------------------------------------

fn names(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn refused_writes_round_trip_and_an_empty_set_leaves_no_attribute() {
    let (dynamodb, table) = fresh_table().await;
    let store = DynamoStore::new(dynamodb.clone(), &table);
    store.create_client(&client("a")).await.unwrap();
    let raw_link = || async {
        match get_item(&dynamodb, &table, "CLIENT#a", "USER#u1")
            .await
            .unwrap()
            .remove("link")
        {
            Some(AttributeValue::M(link)) => link,
            other => panic!("no link map: {other:?}"),
        }
    };

    // An imported link: roles unknown, nothing refused (no attribute).
    let imported = Link {
        roles_known: false,
        refused: BTreeSet::new(),
        ..link("d1")
    };
    let m = store
        .create_link("a", "u1", &imported, None, true, T0)
        .await
        .unwrap();
    assert_eq!(m.link.as_ref(), Some(&imported));
    assert!(!raw_link().await.contains_key("refused"));
    assert_eq!(
        raw_link().await.get("roles_known"),
        Some(&AttributeValue::Bool(false))
    );

    // An outcome that only derived roles leaves them unknown; refused writes are stored.
    let refused = names(&["add:r1", "nick"]);
    let derived = Outcome {
        refused: Some(refused.clone()),
        roles_observed: false,
        ..outcome(&["r2"], true)
    };
    store
        .record_outcome("a", "u1", m.version, &derived, T0 + 1)
        .await
        .unwrap();
    let got = store.get_member("a", "u1").await.unwrap().unwrap();
    let got_link = got.link.unwrap();
    assert!(!got_link.roles_known);
    assert_eq!(got_link.refused, refused);

    // Observed roles become known; `None` leaves the refused writes; a stale version (the plain
    // update) writes them too.
    let observed = Outcome {
        refused: None,
        roles_observed: true,
        ..outcome(&["r2"], true)
    };
    store
        .record_outcome("a", "u1", got.version, &observed, T0 + 2)
        .await
        .unwrap();
    let got = store.get_member("a", "u1").await.unwrap().unwrap();
    assert!(got.link.as_ref().unwrap().roles_known);
    assert_eq!(got.link.as_ref().unwrap().refused, refused);
    let stale = Outcome {
        refused: Some(names(&["remove:r3"])),
        roles_observed: false,
        ..outcome(&["r2"], false)
    };
    assert!(!store
        .record_outcome("a", "u1", got.version - 1, &stale, T0 + 3)
        .await
        .unwrap());
    let got = store.get_member("a", "u1").await.unwrap().unwrap();
    assert_eq!(got.link.as_ref().unwrap().refused, names(&["remove:r3"]));
    assert!(
        got.link.as_ref().unwrap().roles_known,
        "false leaves roles_known"
    );

    // An empty set clears them: the attribute goes.
    let cleared = Outcome {
        refused: Some(BTreeSet::new()),
        roles_observed: false,
        ..outcome(&["r2"], true)
    };
    store
        .record_outcome("a", "u1", got.version, &cleared, T0 + 4)
        .await
        .unwrap();
    assert!(!raw_link().await.contains_key("refused"));
    let got = store.get_member("a", "u1").await.unwrap().unwrap();
    assert!(got.link.as_ref().unwrap().refused.is_empty());

    // A link created with refused writes keeps them; marking all pending forgets them.
    let with_refused = Link {
        refused: names(&["add:r9"]),
        ..link("d2")
    };
    let m = store
        .create_link("a", "u2", &with_refused, None, false, T0)
        .await
        .unwrap();
    assert_eq!(m.link.as_ref().unwrap().refused, names(&["add:r9"]));
    store
        .record_outcome("a", "u1", got.version, &derived, T0 + 5)
        .await
        .unwrap();
    assert_eq!(store.mark_all_linked_pending("a", T0 + 6).await.unwrap(), 2);
    for user in ["u1", "u2"] {
        let m = store.get_member("a", user).await.unwrap().unwrap();
        assert!(m.pending);
        assert!(m.link.unwrap().refused.is_empty(), "{user}");
    }
    assert!(!raw_link().await.contains_key("refused"));
}

// --- retention: the table's TTL ----------------------------------------------------------------------

fn ttl_of(item: &Item) -> Option<i64> {
    match item.get("ttl") {
        Some(AttributeValue::N(n)) => n.parse().ok(),
        _ => None,
    }
}

#[tokio::test]
async fn runs_audit_entries_sessions_and_leases_carry_their_retention_as_ttl() {
    use connector::store::retention::{prune_all, DAY_SECS};
    use connector::store::{Pruned, RetentionPolicy};

    // given a store keeping runs 7 days and audit entries 30
    let (dynamodb, table) = fresh_table().await;
    let store = DynamoStore::new(dynamodb.clone(), &table).with_retention(RetentionPolicy {
        runs_days: 7,
        audit_days: 30,
    });
    store.create_client(&client("a")).await.unwrap();

    // when a run, an audit entry, a link session and a lease are written
    store.put_run(&run_report("a", "r1", T0)).await.unwrap();
    store
        .append_audit(&[audit_entry("a", "e1", T0 + 5)])
        .await
        .unwrap();
    store
        .put_link_session(&link_session("s1", "a", "u1", T0 + 600))
        .await
        .unwrap();
    store.acquire_lease("g", "A", T0, 60).await.unwrap();
    store
        .put_console_session(&console_session("c1", T0 + 900))
        .await
        .unwrap();

    // then each carries the time it may go as `ttl`, and only those do
    let items = scan(&dynamodb, &table).await;
    let ttl_by_entity = |entity: &str| -> Vec<Option<i64>> {
        items
            .iter()
            .filter(|i| i.get("entity") == Some(&s(entity)))
            .map(ttl_of)
            .collect()
    };
    assert_eq!(ttl_by_entity("run"), [Some(T0 + 7 * DAY_SECS)]);
    assert_eq!(ttl_by_entity("audit"), [Some(T0 + 5 + 30 * DAY_SECS)]);
    assert_eq!(ttl_by_entity("link_session"), [Some(T0 + 600)]);
    assert_eq!(ttl_by_entity("user_link_session"), [Some(T0 + 600)]);
    assert_eq!(ttl_by_entity("lease"), [Some(T0 + 60 + DAY_SECS)]);
    assert_eq!(ttl_by_entity("console_session"), [Some(T0 + 900)]);
    assert_eq!(ttl_by_entity("client"), [None], "configuration stays");

    // and the default retention is 90 days of runs, a year of audit entries
    let default = DynamoStore::new(dynamodb.clone(), &table);
    default.put_run(&run_report("a", "r2", T0)).await.unwrap();
    default
        .append_audit(&[audit_entry("a", "e2", T0)])
        .await
        .unwrap();
    let items = scan(&dynamodb, &table).await;
    let ttl_of_data = |entity: &str, id: &str| {
        items
            .iter()
            .find(|i| i.get("entity") == Some(&s(entity)) && i.get("id") == Some(&s(id)))
            .and_then(ttl_of)
    };
    assert_eq!(ttl_of_data("run", "r2"), Some(T0 + 90 * DAY_SECS));
    assert_eq!(ttl_of_data("audit", "e2"), Some(T0 + 365 * DAY_SECS));

    // and pruning is left to DynamoDB: it removes nothing itself
    assert_eq!(
        prune_all(&store, T0 + 1000 * DAY_SECS, 10).await.unwrap(),
        Pruned::default()
    );
}

#[tokio::test]
async fn a_webhook_delivery_leaves_the_pending_index_and_gets_the_runs_ttl_once_finished() {
    use connector::domain::{DeliveryAttempt, DeliveryStatus};
    use connector::store::retention::DAY_SECS;
    use connector::store::RetentionPolicy;
    // given a client with a webhook URL and one entry from a link
    let (dynamodb, table) = fresh_table().await;
    let store = DynamoStore::new(dynamodb.clone(), &table).with_retention(RetentionPolicy {
        runs_days: 7,
        audit_days: 30,
    });
    let mut c = client("a");
    c.webhook_url = Some("https://a.example.test/hooks".into());
    store.create_client(&c).await.unwrap();
    store
        .create_link("a", "u1", &link("d1"), None, false, T0)
        .await
        .unwrap();
    let entry = |items: &[Item]| {
        items
            .iter()
            .find(|i| i.get("entity") == Some(&s("webhook_delivery")))
            .cloned()
            .expect("an outbox item")
    };
    // while pending: in the sparse index, no ttl
    let pending = entry(&scan(&dynamodb, &table).await);
    assert_eq!(pending.get("GSI1PK"), Some(&s("WEBHOOKS_PENDING")));
    assert_eq!(
        ttl_of(&pending),
        None,
        "a pending delivery is never expired"
    );

    // when it is delivered
    let id = match pending.get("id") {
        Some(AttributeValue::S(id)) => id.clone(),
        other => panic!("id: {other:?}"),
    };
    let delivered = DeliveryAttempt {
        status: DeliveryStatus::Delivered,
        status_code: Some(200),
        error: None,
        next_attempt_at: None,
    };
    store
        .record_attempt("a", &id, &delivered, T0 + 10)
        .await
        .unwrap();

    // then it leaves the index and goes with the run reports of its time
    let done = entry(&scan(&dynamodb, &table).await);
    assert!(
        !done.contains_key("GSI1PK") && !done.contains_key("GSI1SK"),
        "{done:?}"
    );
    assert_eq!(ttl_of(&done), Some(T0 + 10 + 7 * DAY_SECS));
    // and a retry puts it back, without a ttl
    store.retry_delivery("a", &id, T0 + 20).await.unwrap();
    let again = entry(&scan(&dynamodb, &table).await);
    assert_eq!(again.get("GSI1PK"), Some(&s("WEBHOOKS_PENDING")));
    assert_eq!(ttl_of(&again), None);
}
