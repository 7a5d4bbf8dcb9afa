//! The website webhooks' outbox (`WebhookOutbox`): entries are written by the link writes
//! themselves, only for clients with a `webhook_url`, and handed out oldest first, one per user.

use serde_json::{json, Value};

use super::{all_pages, client, link, outcome, T0};
use crate::domain::{
    DeliveryAttempt, DeliveryStatus, LastError, LinkStatus, UnlinkCleanup, UnlinkPolicy,
    UnlinkReason, WebhookDelivery,
};
use crate::store::{Outcome, Store, StoreError};

async fn setup(store: &dyn Store, id: &str, with_url: bool) {
    let mut c = client(id);
    if with_url {
        c.webhook_url = Some(format!("https://{id}.example.test/hooks"));
    }
    store.create_client(&c).await.expect("create client");
}

/// The client's entries, oldest first.
async fn entries(store: &dyn Store, client: &str) -> Vec<WebhookDelivery> {
    let mut all: Vec<WebhookDelivery> = all_pages(2, |after| async move {
        store.list_deliveries(client, after.as_ref(), 2).await
    })
    .await
    .into_iter()
    .flatten()
    .collect();
    all.reverse();
    all
}

/// (type, discord_user_id, reason) of each entry, oldest first.
async fn events(store: &dyn Store, client: &str) -> Vec<(String, Value, Value)> {
    entries(store, client)
        .await
        .iter()
        .map(|d| {
            (
                d.payload["type"].as_str().unwrap_or_default().to_owned(),
                d.payload["data"]["discord_user_id"].clone(),
                d.payload["data"]["reason"].clone(),
            )
        })
        .collect()
}

fn cleanup(reason: UnlinkReason) -> UnlinkCleanup {
    UnlinkCleanup {
        reason,
        policy: UnlinkPolicy::RemoveRoles,
        actor: "admin".to_owned(),
    }
}

fn ev(t: &str, d: &str, reason: Value) -> (String, Value, Value) {
    (t.to_owned(), json!(d), reason)
}

pub async fn link_changes_write_webhook_entries_for_clients_with_a_url_only(store: &dyn Store) {
    setup(store, "a", true).await;
    setup(store, "b", false).await;
    // a link, a relink to another account, an unlink; the same in a client without a URL
    for c in ["a", "b"] {
        store
            .create_link(c, "u1", &link("d1"), None, true, T0)
            .await
            .unwrap();
        store
            .create_link(
                c,
                "u1",
                &link("d2"),
                Some(&cleanup(UnlinkReason::Relinked)),
                true,
                T0 + 1,
            )
            .await
            .unwrap();
        store
            .delete_link(c, "u1", Some(&cleanup(UnlinkReason::Unlinked)), T0 + 2)
            .await
            .unwrap();
    }

    assert_eq!(
        events(store, "a").await,
        vec![
            ev("link.created", "d1", Value::Null),
            ev("link.removed", "d1", json!("relinked")),
            ev("link.created", "d2", Value::Null),
            ev("link.removed", "d2", json!("unlinked")),
        ]
    );
    assert!(entries(store, "b").await.is_empty(), "no URL, no entries");
    let first = &entries(store, "a").await[0];
    assert_eq!(first.status, DeliveryStatus::Pending);
    assert_eq!(first.attempts, 0);
    assert_eq!(first.user_id, "u1");
    assert_eq!(first.next_attempt_at, Some(T0));
    assert_eq!(first.payload["data"]["client"], "a");
    assert_eq!(first.payload["data"]["user_id"], "u1");
    assert!(first.id.starts_with("msg_"), "{}", first.id);
    // linking the same, still active account again tells the site nothing new
    store
        .create_link("a", "u2", &link("d3"), None, false, T0 + 3)
        .await
        .unwrap();
    store
        .create_link("a", "u2", &link("d3"), None, false, T0 + 4)
        .await
        .unwrap();
    assert_eq!(entries(store, "a").await.len(), 5);
}

pub async fn a_refused_link_writes_no_webhook_entry(store: &dyn Store) {
    setup(store, "a", true).await;
    store
        .create_link("a", "u1", &link("d1"), None, false, T0)
        .await
        .unwrap();
    match store
        .create_link("a", "u2", &link("d1"), None, true, T0 + 1)
        .await
    {
        Err(StoreError::DiscordAccountTaken { .. }) => {}
        other => panic!("expected DiscordAccountTaken, got {other:?}"),
    }
    assert_eq!(
        events(store, "a").await,
        vec![ev("link.created", "d1", Value::Null)],
        "the refused link left no entry"
    );
    // and an unlink of a user without a link neither
    assert_eq!(
        store.delete_link("a", "u2", None, T0 + 2).await.unwrap(),
        None
    );
    assert_eq!(entries(store, "a").await.len(), 1);
}

pub async fn outcomes_write_left_returned_revoked_and_each_new_refusal_once(store: &dyn Store) {
    setup(store, "a", true).await;
    let m = store
        .create_link("a", "u1", &link("d1"), None, true, T0)
        .await
        .unwrap();
    let with = |status: LinkStatus, error: Option<u64>| {
        let mut o = outcome(&[], false);
        o.status = status;
        o.last_error = error.map(|code| LastError {
            code: "missing_permissions".to_owned(),
            message: "Discord refused".to_owned(),
            discord_code: Some(code),
            at: T0,
        });
        o
    };
    let steps = [
        with(LinkStatus::Active, None),
        with(LinkStatus::Left, None),
        with(LinkStatus::Left, None),
        with(LinkStatus::Active, None),
        with(LinkStatus::Active, Some(50013)),
        with(LinkStatus::Active, Some(50013)),
        with(LinkStatus::Active, None),
        with(LinkStatus::Revoked, None),
    ];
    for (i, o) in steps.iter().enumerate() {
        store
            .record_outcome("a", "u1", m.version, o, T0 + 1 + i as i64)
            .await
            .unwrap();
    }
    let types: Vec<String> = events(store, "a").await.into_iter().map(|e| e.0).collect();
    assert_eq!(
        types,
        [
            "link.created",
            "member.left",
            "member.returned",
            "member.sync_failed",
            "link.revoked"
        ]
    );
    let failed = &entries(store, "a").await[3];
    assert_eq!(failed.payload["data"]["discord_code"], 50013);
    assert_eq!(failed.payload["data"]["code"], "missing_permissions");
}

pub async fn due_deliveries_hand_out_each_users_oldest_pending_entry(store: &dyn Store) {
    setup(store, "a", true).await;
    setup(store, "b", true).await;
    store
        .create_link("a", "u1", &link("d1"), None, false, T0)
        .await
        .unwrap();
    store.delete_link("a", "u1", None, T0 + 1).await.unwrap();
    store
        .create_link("b", "u2", &link("d2"), None, false, T0 + 2)
        .await
        .unwrap();
    let a = entries(store, "a").await;
    let b = entries(store, "b").await;
    let ids = |d: &[WebhookDelivery]| d.iter().map(|d| d.id.clone()).collect::<Vec<_>>();

    // each user's oldest entry, once due
    assert!(store.due_deliveries(T0 - 1, 10).await.unwrap().is_empty());
    let due = store.due_deliveries(T0 + 5, 10).await.unwrap();
    assert_eq!(ids(&due), vec![a[0].id.clone(), b[0].id.clone()]);

    // a failed attempt holds the user's later entry back until it succeeds
    let retry_at = DeliveryAttempt {
        status: DeliveryStatus::Pending,
        status_code: Some(500),
        error: Some("answered 500".to_owned()),
        next_attempt_at: Some(T0 + 30),
    };
    store
        .record_attempt("a", &a[0].id, &retry_at, T0 + 5)
        .await
        .unwrap();
    assert_eq!(
        ids(&store.due_deliveries(T0 + 6, 10).await.unwrap()),
        vec![b[0].id.clone()]
    );
    assert_eq!(
        ids(&store.due_deliveries(T0 + 30, 10).await.unwrap()),
        vec![a[0].id.clone(), b[0].id.clone()]
    );
    let delivered = DeliveryAttempt {
        status: DeliveryStatus::Delivered,
        status_code: Some(204),
        error: None,
        next_attempt_at: None,
    };
    store
        .record_attempt("a", &a[0].id, &delivered, T0 + 31)
        .await
        .unwrap();
    store
        .record_attempt("b", &b[0].id, &delivered, T0 + 31)
        .await
        .unwrap();
    assert_eq!(
        ids(&store.due_deliveries(T0 + 31, 10).await.unwrap()),
        vec![a[1].id.clone()]
    );
    let now = entries(store, "a").await;
    assert_eq!(now[0].status, DeliveryStatus::Delivered);
    assert_eq!(now[0].attempts, 2);
    assert_eq!(now[0].last_status_code, Some(204));
    assert_eq!(now[0].next_attempt_at, None);

    // a retry makes a delivered entry due again at once; unknown ids are not found
    let again = store.retry_delivery("b", &b[0].id, T0 + 40).await.unwrap();
    assert_eq!(again.status, DeliveryStatus::Pending);
    assert_eq!(again.next_attempt_at, Some(T0 + 40));
    assert!(ids(&store.due_deliveries(T0 + 40, 10).await.unwrap()).contains(&b[0].id));
    assert!(matches!(
        store.retry_delivery("a", &b[0].id, T0 + 40).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.retry_delivery("a", "msg_nope", T0 + 40).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.record_attempt("a", "msg_nope", &delivered, T0).await,
        Err(StoreError::NotFound)
    ));
    // and the limit bounds a round
    assert_eq!(store.due_deliveries(T0 + 40, 1).await.unwrap().len(), 1);
}

pub async fn a_relink_request_is_recorded_once_per_link_with_its_event(store: &dyn Store) {
    const SCOPE: &str = "role_connections.write";
    setup(store, "a", true).await;
    setup(store, "b", false).await;
    for c in ["a", "b"] {
        store
            .create_link(c, "u1", &link("d1"), None, false, T0)
            .await
            .unwrap();
    }

    // told once per link; never for another account or a user without a link
    assert!(store
        .request_relink("a", "u1", "d1", SCOPE, T0 + 1)
        .await
        .unwrap());
    assert!(!store
        .request_relink("a", "u1", "d1", SCOPE, T0 + 2)
        .await
        .unwrap());
    assert!(!store
        .request_relink("a", "u1", "d9", SCOPE, T0 + 2)
        .await
        .unwrap());
    assert!(!store
        .request_relink("a", "nobody", "d1", SCOPE, T0 + 2)
        .await
        .unwrap());
    let member = store.get_member("a", "u1").await.unwrap().unwrap();
    assert_eq!(member.link.unwrap().relink_requested_at, Some(T0 + 1));
    assert_eq!(
        events(store, "a").await,
        vec![
            ev("link.created", "d1", Value::Null),
            ev("link.needs_relink", "d1", Value::Null),
        ]
    );
    let told = entries(store, "a").await.pop().unwrap();
    assert_eq!(told.payload["data"]["missing_scope"], SCOPE);
    assert_eq!(told.payload["data"]["user_id"], "u1");

    // a client without a webhook URL records the request and writes no entry
    assert!(store
        .request_relink("b", "u1", "d1", SCOPE, T0 + 1)
        .await
        .unwrap());
    assert!(entries(store, "b").await.is_empty());

    // a new link starts afresh
    store
        .create_link("a", "u1", &link("d2"), None, false, T0 + 3)
        .await
        .unwrap();
    assert!(store
        .request_relink("a", "u1", "d2", SCOPE, T0 + 4)
        .await
        .unwrap());

    // a link that is no longer active is not asked to link again
    store
        .create_link("b", "u2", &link("d5"), None, false, T0)
        .await
        .unwrap();
    let version = store.get_member("b", "u2").await.unwrap().unwrap().version;
    let gone = Outcome {
        status: LinkStatus::Left,
        ..outcome(&[], false)
    };
    store
        .record_outcome("b", "u2", version, &gone, T0 + 5)
        .await
        .unwrap();
    assert!(!store
        .request_relink("b", "u2", "d5", SCOPE, T0 + 6)
        .await
        .unwrap());
}
