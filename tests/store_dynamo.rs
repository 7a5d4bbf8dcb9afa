//! The DynamoDB store against moto: the whole `Store` contract on a fresh table per test, then
//! what only DynamoDB has — the table schema, batch chunking, TTL'd items that outlive their
//! expiry, the sparse pending index, the link uniqueness transaction.

use std::collections::HashMap;

use connector::aws::aws_sdk_dynamodb::types::{
    AttributeValue, BillingMode, KeyType, ProjectionType, TimeToLiveStatus,
};
use connector::aws::aws_sdk_dynamodb::Client;
use connector::store::contract::{
    audit_entry, client, link, link_session, outcome, role, run_report, site_user, T0,
};
use connector::store::dynamo::{DynamoStore, GSI1};
use connector::store::{Store, StoreError};
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
                .create_link("big", &user, &link(&format!("d{n}")), true, T0)
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
            .put_link_session(&link_session(&format!("s{n}"), "big", "u00", T0 + 600))
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
        .create_link("a", "done", &link("d1"), true, T0)
        .await
        .unwrap();
    store
        .record_outcome("a", "done", m.version, &outcome(&[], false), T0 + 1)
        .await
        .unwrap();
    store
        .create_link("a", "p2", &link("d2"), true, T0)
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
        .create_link("a", "u1", &link("d1"), false, T0)
        .await
        .unwrap();
    store
        .create_link("a", "u2", &link("d2"), true, T0)
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
            .create_link("a", user, &link("d1"), true, T0 + 1)
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
        .create_link("a", "u1", &link("d1"), true, T0)
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
            "setting"
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
