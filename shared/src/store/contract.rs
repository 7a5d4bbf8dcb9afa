//! The behaviour every `Store` adapter must show, as test functions over a fresh, empty
//! `&dyn Store`. An adapter's test file runs them all with
//! [`store_contract_tests!`](crate::store_contract_tests):
//!
//! ```text
//! async fn fresh() -> impl std::ops::Deref<Target = MyStore> { /* new, empty store */ }
//! connector::store_contract_tests!(fresh);
//! ```
//!
//! A new contract function must also be added to the list in that macro.
//!
//! Adapter-specific details are left open: cursor contents, the order of `list_clients` ties, and
//! whether a full last page carries a cursor (if it does, the next page must be empty and final).
//! Session and lease expiry is tested away from the exact boundary second.

mod console;
mod webhooks;

pub use console::*;
pub use webhooks::*;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use serde_json::json;

use super::{ConsumedSession, Cursor, Outcome, Page, Store, StoreError, StoreResult};
use crate::clock::Timestamp;
use crate::domain::Count;
use crate::domain::{
    ApiToken, AuditEntry, Client, GuildFacts, LastError, Link, LinkSession, LinkStatus, Role,
    RunReport, SiteUser, SourceOfTruth, StoredTokens, TaskName, TokenScope, UnlinkCleanup,
    UnlinkPolicy, UnlinkReason, Unlinking,
};

/// Runs every contract function against a fresh store from `$fresh`, one `#[tokio::test]` each.
/// `$fresh` is an async fn returning anything that dereferences to a `Store` (keep temp dirs
/// alive in it).
#[macro_export]
macro_rules! store_contract_tests {
    ($fresh:path) => {
        $crate::store_contract_tests!(@each $fresh;
            clients_are_created_once_read_updated_and_deleted,
            a_clients_linked_roles_are_kept_and_can_be_removed,
            deleting_a_client_removes_everything_stored_under_it,
            roles_are_replaced_in_one_step_and_listed_highest_first,
            role_groups_are_set_on_mirrored_roles_only,
            saving_a_site_user_upserts_and_bumps_the_version,
            saving_a_site_user_keeps_the_link,
            linking_an_unknown_user_creates_the_member,
            linking_again_replaces_the_earlier_link,
            a_discord_account_linked_to_another_user_is_refused_and_nothing_written,
            concurrent_links_of_one_discord_account_let_exactly_one_win,
            one_discord_account_may_link_in_two_clients,
            unlinking_returns_the_old_link_frees_the_account_and_clears_pending,
            an_outcome_clears_pending_when_the_version_is_unchanged,
            an_outcome_keeps_pending_when_the_desired_state_moved_on,
            an_outcome_writes_names_only_when_given_and_always_the_error,
            an_outcome_without_member_or_link_is_not_found,
            tokens_are_replaced_and_dropped_on_links_only,
            a_pushed_role_connection_is_kept_on_its_own_link_only,
            marking_linked_members_pending_touches_active_links_only,
            members_are_listed_by_user_id_across_pages,
            pending_members_are_listed_by_user_id_across_pages,
            a_listing_of_an_exact_multiple_of_the_limit_ends,
            linked_members_are_listed_in_discords_numeric_order,
            a_link_session_is_consumed_once,
            an_expired_link_session_is_refused_once_and_gone,
            runs_are_upserted_and_listed_newest_first,
            audit_entries_are_listed_newest_first,
            settings_are_stored_only_when_absent,
            a_lease_is_exclusive_until_released_or_expired,
            concurrent_lease_claims_let_exactly_one_win,
            a_lease_is_renewed_only_by_its_live_holder,
            a_lease_hands_over_what_its_last_holder_left,
            work_marks_count_up_and_clear_only_when_unchanged,
            work_marks_are_listed_by_client_and_task_across_pages,
            deleting_a_client_removes_its_work_marks,
            refused_writes_and_unknown_roles_round_trip_and_mapping_forgets_refusals,
            unlinking_with_a_cleanup_records_it_in_the_same_write,
            relinking_to_another_account_records_the_old_ones_unlinking,
            unlinking_progress_is_recorded_then_removed,
            clearing_pending_is_version_guarded,
            marking_pending_includes_unlinkings_and_forgets_their_refusals,
            a_new_link_session_replaces_the_users_earlier_one,
            api_tokens_are_found_by_hash_listed_oldest_first_and_deleted_by_id,
            pruning_spares_what_is_within_retention_and_the_work_index,
            console_sessions_are_read_until_they_expire_and_deleted_on_sign_out,
            members_are_counted_in_every_standing,
            members_are_searched_by_filter_and_text_across_pages,
            a_member_search_continues_from_a_listing_cursor_and_back,
            a_run_is_read_by_id_within_its_client,
            the_audit_is_searched_by_member_action_actor_and_time_across_pages,
            link_changes_write_webhook_entries_for_clients_with_a_url_only,
            a_refused_link_writes_no_webhook_entry,
            outcomes_write_left_returned_revoked_and_each_new_refusal_once,
            due_deliveries_hand_out_each_users_oldest_pending_entry,
            a_relink_request_is_recorded_once_per_link_with_its_event,
        );
    };
    (@each $fresh:path; $($name:ident),+ $(,)?) => {
        $(
            #[::tokio::test]
            async fn $name() {
                let store = $fresh().await;
                $crate::store::contract::$name(&*store).await;
            }
        )+
    };
}

// --- fixtures ------------------------------------------------------------------------------------

/// An arbitrary "now" for the contract's timelines.
pub const T0: Timestamp = 1_700_000_000;

pub fn client(id: &str) -> Client {
    Client {
        id: id.to_owned(),
        name: format!("Client {id}"),
        guild_id: format!("guild-{id}"),
        client_id: format!("app-{id}"),
        callback_url: "https://example.test/discord/sso/callback".to_owned(),
        invite_link: None,
        nickname_template: Some("[{corp}] {username}".to_owned()),
        unlink_policy: UnlinkPolicy::RemoveRoles,
        source_of_truth: SourceOfTruth::Site,
        return_to_origins: vec!["https://example.test".to_owned()],
        discord_api_base: crate::domain::client::DEFAULT_API_BASE.to_owned(),
        discord_authorize_url: crate::domain::client::DEFAULT_AUTHORIZE_URL.to_owned(),
        public_key: Some(
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c".to_owned(),
        ),
        webhook_url: None,
        linked_roles: None,
        guild: GuildFacts::default(),
        created_at: T0,
        updated_at: T0,
    }
}

pub fn role(id: &str, position: i64, groups: &[&str]) -> Role {
    Role {
        id: id.to_owned(),
        name: format!("role {id}"),
        position,
        managed: false,
        color: 0,
        groups: set(groups),
    }
}

pub fn site_user(user_id: &str, groups: &[&str]) -> SiteUser {
    SiteUser {
        user_id: user_id.to_owned(),
        groups: set(groups),
        attributes: BTreeMap::from([("corp".to_owned(), format!("C-{user_id}"))]),
    }
}

pub fn link(discord_user_id: &str) -> Link {
    Link {
        discord_user_id: discord_user_id.to_owned(),
        username: format!("name-{discord_user_id}"),
        global_name: Some(format!("Global {discord_user_id}")),
        nickname: None,
        status: LinkStatus::Active,
        applied_roles: BTreeSet::new(),
        tokens: Some(StoredTokens {
            sealed: format!("v1.sealed-{discord_user_id}"),
            expires_at: T0 + 3600,
        }),
        linked_at: T0,
        roles_known: true,
        refused: BTreeSet::new(),
        // Non-empty, so every link round trip also covers the granted scopes.
        scopes: ["identify".to_owned(), "role_connections.write".to_owned()].into(),
        role_connection: None,
        relink_requested_at: None,
    }
}

pub fn link_session(
    state_hash: &str,
    client: &str,
    user_id: &str,
    expires_at: Timestamp,
) -> LinkSession {
    LinkSession {
        state_hash: state_hash.to_owned(),
        client: client.to_owned(),
        user_id: user_id.to_owned(),
        return_to: Some("https://example.test/profile".to_owned()),
        pkce_verifier: format!("verifier-{state_hash}"),
        expires_at,
        browser_hash: Some(format!("browser-{state_hash}")),
    }
}

pub fn run_report(client: &str, id: &str, started_at: Timestamp) -> RunReport {
    RunReport::new(
        id.to_owned(),
        client,
        TaskName::VerifyGroups,
        false,
        started_at,
    )
}

pub fn audit_entry(client: &str, id: &str, at: Timestamp) -> AuditEntry {
    AuditEntry {
        id: id.to_owned(),
        client: client.to_owned(),
        at,
        actor: "admin".to_owned(),
        action: "role.map".to_owned(),
        user_id: None,
        discord_user_id: None,
        detail: json!({ "n": id }),
    }
}

pub fn outcome(applied: &[&str], still_pending: bool) -> Outcome {
    Outcome {
        applied_roles: set(applied),
        nickname: Some("[C] nick".to_owned()),
        username: None,
        global_name: None,
        status: LinkStatus::Active,
        still_pending,
        last_error: None,
        refused: None,
        roles_observed: false,
    }
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Follows `next` cursors to the end, checking the paging rules on the way; returns the pages.
pub async fn all_pages<T, F, Fut>(limit: usize, mut list: F) -> Vec<Vec<T>>
where
    F: FnMut(Option<Cursor>) -> Fut,
    Fut: Future<Output = StoreResult<Page<T>>>,
{
    let mut pages: Vec<Vec<T>> = Vec::new();
    let mut after = None;
    for _ in 0..10_000 {
        let page = list(after).await.expect("listing a page");
        assert!(
            page.items.len() <= limit,
            "a page holds at most `limit` items"
        );
        if page.items.len() < limit {
            assert!(page.next.is_none(), "a short page must be the last one");
        }
        if let Some(previous) = pages.last() {
            assert_eq!(previous.len(), limit, "only the last page may be short");
        }
        let empty = page.items.is_empty();
        if !empty || pages.is_empty() {
            pages.push(page.items);
        }
        match page.next {
            None => return pages,
            Some(cursor) => {
                assert!(!empty, "an empty page must not carry a cursor");
                after = Some(cursor);
            }
        }
    }
    panic!("pagination never ended");
}

async fn member_ids(
    store: &dyn Store,
    client: &str,
    pending_only: bool,
    limit: usize,
) -> Vec<Vec<String>> {
    let pages = all_pages(limit, |after| async move {
        if pending_only {
            store.list_pending(client, after.as_ref(), limit).await
        } else {
            store.list_members(client, after.as_ref(), limit).await
        }
    })
    .await;
    pages
        .into_iter()
        .map(|p| p.into_iter().map(|m| m.user.user_id).collect())
        .collect()
}

async fn setup_client(store: &dyn Store, id: &str) {
    store
        .create_client(&client(id))
        .await
        .expect("create client");
}

// --- clients and roles ---------------------------------------------------------------------------

pub async fn clients_are_created_once_read_updated_and_deleted(store: &dyn Store) {
    assert_eq!(store.get_client("a").await.unwrap(), None);
    assert!(store.list_clients().await.unwrap().is_empty());

    store.create_client(&client("b")).await.unwrap();
    store.create_client(&client("a")).await.unwrap();
    let mut other = client("a");
    other.name = "impostor".to_owned();
    assert!(matches!(
        store.create_client(&other).await,
        Err(StoreError::ClientExists)
    ));
    assert_eq!(
        store.get_client("a").await.unwrap(),
        Some(client("a")),
        "a duplicate changes nothing"
    );

    let mut ids: Vec<String> = store
        .list_clients()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    ids.sort();
    assert_eq!(ids, ["a", "b"]);

    let mut updated = client("a");
    updated.name = "Renamed".to_owned();
    updated.guild.bot_top_position = Some(7);
    // The Webhook Events key is kept and can be removed again.
    updated.public_key = None;
    updated.updated_at = T0 + 5;
    store.update_client(&updated).await.unwrap();
    assert_eq!(store.get_client("a").await.unwrap(), Some(updated));
    assert!(matches!(
        store.update_client(&client("zz")).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        store.get_client("zz").await.unwrap(),
        None,
        "update does not create"
    );

    store.delete_client("a").await.unwrap();
    assert_eq!(store.get_client("a").await.unwrap(), None);
    assert!(matches!(
        store.delete_client("a").await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.list_clients().await.unwrap(), vec![client("b")]);
}

pub async fn a_clients_linked_roles_are_kept_and_can_be_removed(store: &dyn Store) {
    use crate::domain::linked_roles::{
        Comparison, LinkedRoles, MetadataField, MetadataSource, ValueKind,
    };
    store.create_client(&client("a")).await.unwrap();
    assert_eq!(
        store.get_client("a").await.unwrap().unwrap().linked_roles,
        None
    );
    let mut updated = client("a");
    updated.linked_roles = Some(LinkedRoles {
        enabled: true,
        platform_name: "Example Site".into(),
        username_attribute: Some("username".into()),
        metadata: vec![
            MetadataField {
                key: "officer".into(),
                name: "Officer".into(),
                description: "Is an officer".into(),
                kind: ValueKind::Boolean,
                comparison: Comparison::Equal,
                source: MetadataSource::Group("officers".into()),
            },
            MetadataField {
                key: "member_since".into(),
                name: "Member since".into(),
                description: "Joined the site on".into(),
                kind: ValueKind::Datetime,
                comparison: Comparison::LessThanOrEqual,
                source: MetadataSource::Attribute("joined_at".into()),
            },
        ],
    });
    store.update_client(&updated).await.unwrap();
    assert_eq!(store.get_client("a").await.unwrap(), Some(updated.clone()));
    assert_eq!(store.list_clients().await.unwrap(), vec![updated.clone()]);
    updated.linked_roles = None;
    store.update_client(&updated).await.unwrap();
    assert_eq!(store.get_client("a").await.unwrap(), Some(updated));
}

pub async fn deleting_a_client_removes_everything_stored_under_it(store: &dyn Store) {
    for id in ["a", "b"] {
        setup_client(store, id).await;
        store
            .replace_roles(id, &[role("r1", 1, &["g"])])
            .await
            .unwrap();
        store
            .save_site_user(id, &site_user("u1", &["g"]), true, T0)
            .await
            .unwrap();
        store
            .create_link(id, "u1", &link("d1"), None, true, T0)
            .await
            .unwrap();
        store
            .put_link_session(&link_session(&format!("s-{id}"), id, "u1", T0 + 600))
            .await
            .unwrap();
        store.put_run(&run_report(id, "run1", T0)).await.unwrap();
        store
            .append_audit(&[audit_entry(id, "e1", T0)])
            .await
            .unwrap();
    }

    store.delete_client("a").await.unwrap();

    assert!(store.list_roles("a").await.unwrap().is_empty());
    assert_eq!(store.get_member("a", "u1").await.unwrap(), None);
    assert_eq!(store.find_member_by_discord("a", "d1").await.unwrap(), None);
    assert!(store
        .list_members("a", None, 10)
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(store
        .list_pending("a", None, 10)
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(store
        .list_runs("a", None, 10)
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(store
        .list_audit("a", None, 10)
        .await
        .unwrap()
        .items
        .is_empty());
    assert_eq!(store.consume_link_session("s-a", T0).await.unwrap(), None);

    // Client `b` is untouched.
    assert_eq!(store.list_roles("b").await.unwrap().len(), 1);
    assert!(store.get_member("b", "u1").await.unwrap().is_some());
    assert_eq!(store.list_runs("b", None, 10).await.unwrap().items.len(), 1);
    assert_eq!(
        store.list_audit("b", None, 10).await.unwrap().items.len(),
        1
    );
    assert!(store
        .consume_link_session("s-b", T0)
        .await
        .unwrap()
        .is_some());

    // A client created again under the same id starts empty, its Discord accounts free.
    setup_client(store, "a").await;
    assert!(store
        .list_members("a", None, 10)
        .await
        .unwrap()
        .items
        .is_empty());
    store
        .create_link("a", "u2", &link("d1"), None, false, T0)
        .await
        .unwrap();
}

pub async fn roles_are_replaced_in_one_step_and_listed_highest_first(store: &dyn Store) {
    setup_client(store, "a").await;
    setup_client(store, "b").await;
    assert!(store.list_roles("a").await.unwrap().is_empty());

    let mut managed = role("r3", 3, &[]);
    managed.managed = true;
    let first = vec![
        role("r1", 1, &["g1"]),
        managed.clone(),
        role("r7", 7, &["g1", "g2"]),
    ];
    store.replace_roles("a", &first).await.unwrap();
    store
        .replace_roles("b", &[role("other", 2, &[])])
        .await
        .unwrap();
    assert_eq!(
        store.list_roles("a").await.unwrap(),
        vec![
            role("r7", 7, &["g1", "g2"]),
            managed,
            role("r1", 1, &["g1"])
        ]
    );

    let second = vec![role("r2", 2, &["g3"]), role("r9", 9, &[])];
    store.replace_roles("a", &second).await.unwrap();
    assert_eq!(
        store.list_roles("a").await.unwrap(),
        vec![role("r9", 9, &[]), role("r2", 2, &["g3"])]
    );

    store.replace_roles("a", &[]).await.unwrap();
    assert!(store.list_roles("a").await.unwrap().is_empty());
    assert_eq!(
        store.list_roles("b").await.unwrap(),
        vec![role("other", 2, &[])]
    );
}

pub async fn role_groups_are_set_on_mirrored_roles_only(store: &dyn Store) {
    setup_client(store, "a").await;
    store
        .replace_roles("a", &[role("r1", 1, &["old"]), role("r2", 2, &["keep"])])
        .await
        .unwrap();

    store
        .set_role_groups("a", "r1", &set(&["new1", "new2"]))
        .await
        .unwrap();
    assert!(matches!(
        store.set_role_groups("a", "nope", &set(&["g"])).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.set_role_groups("b", "r1", &set(&["g"])).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        store.list_roles("a").await.unwrap(),
        vec![role("r2", 2, &["keep"]), role("r1", 1, &["new1", "new2"])]
    );

    store
        .set_role_groups("a", "r1", &BTreeSet::new())
        .await
        .unwrap();
    assert!(!store.list_roles("a").await.unwrap()[1].is_mapped());
}

// --- members -------------------------------------------------------------------------------------

pub async fn saving_a_site_user_upserts_and_bumps_the_version(store: &dyn Store) {
    setup_client(store, "a").await;
    assert_eq!(store.get_member("a", "u1").await.unwrap(), None);

    let first = store
        .save_site_user("a", &site_user("u1", &["g1"]), true, T0)
        .await
        .unwrap();
    assert_eq!(first.client, "a");
    assert_eq!(first.user, site_user("u1", &["g1"]));
    assert!(first.pending);
    assert_eq!(first.link, None);
    assert_eq!(first.last_error, None);
    assert_eq!(first.updated_at, T0);
    assert_eq!(
        store.get_member("a", "u1").await.unwrap(),
        Some(first.clone())
    );

    let mut changed = site_user("u1", &["g2", "g3"]);
    changed.attributes = BTreeMap::from([("x".to_owned(), "y".to_owned())]);
    let second = store
        .save_site_user("a", &changed, false, T0 + 1)
        .await
        .unwrap();
    assert_eq!(second.user, changed, "groups and attributes are replaced");
    assert!(!second.pending);
    assert!(second.version > first.version);
    assert_eq!(second.updated_at, T0 + 1);
    assert_eq!(
        store.get_member("a", "u1").await.unwrap(),
        Some(second.clone())
    );

    let third = store
        .save_site_user("a", &changed, true, T0 + 2)
        .await
        .unwrap();
    assert!(
        third.version > second.version,
        "every save bumps the version"
    );
    assert_eq!(
        store.get_member("b", "u1").await.unwrap(),
        None,
        "members belong to one client"
    );
}

pub async fn saving_a_site_user_keeps_the_link(store: &dyn Store) {
    setup_client(store, "a").await;
    store
        .create_link("a", "u1", &link("d1"), None, false, T0)
        .await
        .unwrap();
    let saved = store
        .save_site_user("a", &site_user("u1", &["g"]), true, T0 + 1)
        .await
        .unwrap();
    assert_eq!(saved.link, Some(link("d1")));
    assert_eq!(saved.user.groups, set(&["g"]));
    assert_eq!(
        store.find_member_by_discord("a", "d1").await.unwrap(),
        Some(saved)
    );
}

pub async fn linking_an_unknown_user_creates_the_member(store: &dyn Store) {
    setup_client(store, "a").await;
    assert_eq!(store.find_member_by_discord("a", "d1").await.unwrap(), None);

    let member = store
        .create_link("a", "u1", &link("d1"), None, true, T0)
        .await
        .unwrap();
    assert_eq!(
        member.user,
        SiteUser {
            user_id: "u1".to_owned(),
            ..SiteUser::default()
        }
    );
    assert_eq!(member.link, Some(link("d1")));
    assert!(member.pending);
    assert_eq!(
        store.get_member("a", "u1").await.unwrap(),
        Some(member.clone())
    );
    assert_eq!(
        store.find_member_by_discord("a", "d1").await.unwrap(),
        Some(member)
    );
}

pub async fn linking_again_replaces_the_earlier_link(store: &dyn Store) {
    setup_client(store, "a").await;
    let saved = store
        .save_site_user("a", &site_user("u1", &["g"]), false, T0)
        .await
        .unwrap();
    let first = store
        .create_link("a", "u1", &link("d1"), None, false, T0 + 1)
        .await
        .unwrap();
    assert!(first.version > saved.version);
    assert_eq!(
        first.user, saved.user,
        "linking keeps groups and attributes"
    );

    let second = store
        .create_link("a", "u1", &link("d2"), None, true, T0 + 2)
        .await
        .unwrap();
    assert!(second.version > first.version);
    assert!(second.pending);
    assert_eq!(second.link, Some(link("d2")));
    assert_eq!(
        store.find_member_by_discord("a", "d1").await.unwrap(),
        None,
        "the old account is free"
    );
    assert_eq!(
        store.find_member_by_discord("a", "d2").await.unwrap(),
        Some(second)
    );

    // Linking the same account to the same user again is a refresh, not a conflict.
    let mut refreshed = link("d2");
    refreshed.username = "renamed".to_owned();
    let third = store
        .create_link("a", "u1", &refreshed, None, false, T0 + 3)
        .await
        .unwrap();
    assert_eq!(third.link, Some(refreshed));
}

pub async fn a_discord_account_linked_to_another_user_is_refused_and_nothing_written(
    store: &dyn Store,
) {
    setup_client(store, "a").await;
    store
        .create_link("a", "u1", &link("d1"), None, false, T0)
        .await
        .unwrap();
    store
        .save_site_user("a", &site_user("u2", &["g"]), false, T0)
        .await
        .unwrap();
    store
        .create_link("a", "u2", &link("d2"), None, false, T0)
        .await
        .unwrap();
    let u1 = store.get_member("a", "u1").await.unwrap();
    let u2 = store.get_member("a", "u2").await.unwrap();

    match store
        .create_link("a", "u2", &link("d1"), None, true, T0 + 1)
        .await
    {
        Err(StoreError::DiscordAccountTaken { user_id }) => assert_eq!(user_id, "u1"),
        other => panic!("expected DiscordAccountTaken, got {other:?}"),
    }
    match store
        .create_link("a", "u3", &link("d1"), None, true, T0 + 1)
        .await
    {
        Err(StoreError::DiscordAccountTaken { user_id }) => assert_eq!(user_id, "u1"),
        other => panic!("expected DiscordAccountTaken, got {other:?}"),
    }

    assert_eq!(store.get_member("a", "u1").await.unwrap(), u1);
    assert_eq!(
        store.get_member("a", "u2").await.unwrap(),
        u2,
        "the refused user keeps their old link"
    );
    assert_eq!(
        store.get_member("a", "u3").await.unwrap(),
        None,
        "no member is created"
    );
    assert_eq!(store.find_member_by_discord("a", "d1").await.unwrap(), u1);
}

pub async fn concurrent_links_of_one_discord_account_let_exactly_one_win(store: &dyn Store) {
    setup_client(store, "a").await;
    let l = link("d1");
    let (r1, r2, r3, r4) = tokio::join!(
        store.create_link("a", "u1", &l, None, true, T0),
        store.create_link("a", "u2", &l, None, true, T0),
        store.create_link("a", "u3", &l, None, true, T0),
        store.create_link("a", "u4", &l, None, true, T0),
    );
    let results = [r1, r2, r3, r4];
    let winners: Vec<&str> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|m| m.user.user_id.as_str())
        .collect();
    assert_eq!(winners.len(), 1, "exactly one link wins: {results:?}");
    for r in &results {
        match r {
            Ok(_) => {}
            Err(StoreError::DiscordAccountTaken { user_id }) => assert_eq!(user_id, winners[0]),
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    let holder = store
        .find_member_by_discord("a", "d1")
        .await
        .unwrap()
        .expect("linked");
    assert_eq!(holder.user.user_id, winners[0]);
    assert_eq!(
        store.list_members("a", None, 10).await.unwrap().items.len(),
        1
    );
}

pub async fn one_discord_account_may_link_in_two_clients(store: &dyn Store) {
    setup_client(store, "a").await;
    setup_client(store, "b").await;
    store
        .create_link("a", "u1", &link("d1"), None, false, T0)
        .await
        .unwrap();
    store
        .create_link("b", "u9", &link("d1"), None, false, T0)
        .await
        .unwrap();
    assert_eq!(
        store
            .find_member_by_discord("a", "d1")
            .await
            .unwrap()
            .unwrap()
            .user
            .user_id,
        "u1"
    );
    assert_eq!(
        store
            .find_member_by_discord("b", "d1")
            .await
            .unwrap()
            .unwrap()
            .user
            .user_id,
        "u9"
    );
}

pub async fn unlinking_returns_the_old_link_frees_the_account_and_clears_pending(
    store: &dyn Store,
) {
    setup_client(store, "a").await;
    store
        .save_site_user("a", &site_user("u1", &["g"]), true, T0)
        .await
        .unwrap();
    store
        .create_link("a", "u1", &link("d1"), None, true, T0)
        .await
        .unwrap();

    assert_eq!(
        store.delete_link("a", "u1", None, T0).await.unwrap(),
        Some(link("d1"))
    );
    let member = store
        .get_member("a", "u1")
        .await
        .unwrap()
        .expect("the site user stays");
    assert_eq!(member.link, None);
    assert!(!member.pending);
    assert_eq!(member.user, site_user("u1", &["g"]));
    assert_eq!(store.find_member_by_discord("a", "d1").await.unwrap(), None);
    assert!(store
        .list_pending("a", None, 10)
        .await
        .unwrap()
        .items
        .is_empty());

    assert_eq!(
        store.delete_link("a", "u1", None, T0).await.unwrap(),
        None,
        "nothing left to unlink"
    );
    assert_eq!(
        store.delete_link("a", "ghost", None, T0).await.unwrap(),
        None
    );
    store
        .create_link("a", "u2", &link("d1"), None, false, T0)
        .await
        .expect("the account is free again");
}

pub async fn an_outcome_clears_pending_when_the_version_is_unchanged(store: &dyn Store) {
    setup_client(store, "a").await;
    store
        .save_site_user("a", &site_user("u1", &["g"]), true, T0)
        .await
        .unwrap();
    let member = store
        .create_link("a", "u1", &link("d1"), None, true, T0)
        .await
        .unwrap();
    let mut done = outcome(&["r1", "r2"], false);
    done.username = Some("new-name".to_owned());
    done.global_name = Some(Some("New Global".to_owned()));
    done.last_error = Some(LastError {
        code: "role_above_bot".to_owned(),
        message: "role r3 is above the bot".to_owned(),
        discord_code: None,
        at: T0 + 1,
    });

    let clear = store
        .record_outcome("a", "u1", member.version, &done, T0 + 1)
        .await
        .unwrap();
    assert!(clear);
    let after = store.get_member("a", "u1").await.unwrap().unwrap();
    assert!(!after.pending);
    assert_eq!(
        after.version, member.version,
        "an outcome does not change the desired state"
    );
    assert_eq!(after.last_error, done.last_error);
    let l = after.link.expect("still linked");
    assert_eq!(l.applied_roles, set(&["r1", "r2"]));
    assert_eq!(l.nickname.as_deref(), Some("[C] nick"));
    assert_eq!(l.username, "new-name");
    assert_eq!(l.global_name.as_deref(), Some("New Global"));
    assert_eq!(l.status, LinkStatus::Active);
    assert_eq!(l.tokens, link("d1").tokens, "tokens are untouched");
    assert!(store
        .list_pending("a", None, 10)
        .await
        .unwrap()
        .items
        .is_empty());
}

pub async fn an_outcome_keeps_pending_when_the_desired_state_moved_on(store: &dyn Store) {
    setup_client(store, "a").await;
    let read = store
        .create_link("a", "u1", &link("d1"), None, true, T0)
        .await
        .unwrap();
    // The site pushes new groups while a task works on the member.
    store
        .save_site_user("a", &site_user("u1", &["g2"]), true, T0 + 1)
        .await
        .unwrap();

    let clear = store
        .record_outcome("a", "u1", read.version, &outcome(&["r1"], false), T0 + 2)
        .await
        .unwrap();
    assert!(!clear);
    let after = store.get_member("a", "u1").await.unwrap().unwrap();
    assert!(after.pending, "the newer change is not lost");
    assert_eq!(
        after.link.unwrap().applied_roles,
        set(&["r1"]),
        "what Discord has is still recorded"
    );

    // A task that read the newer version may clear it.
    let clear = store
        .record_outcome("a", "u1", after.version, &outcome(&["r2"], false), T0 + 3)
        .await
        .unwrap();
    assert!(clear);
    assert!(!store.get_member("a", "u1").await.unwrap().unwrap().pending);
}

pub async fn an_outcome_writes_names_only_when_given_and_always_the_error(store: &dyn Store) {
    setup_client(store, "a").await;
    let m = store
        .create_link("a", "u1", &link("d1"), None, true, T0)
        .await
        .unwrap();
    let mut failed = outcome(&[], true);
    failed.last_error = Some(LastError {
        code: "missing_permissions".to_owned(),
        message: "Missing Permissions".to_owned(),
        discord_code: Some(50013),
        at: T0 + 1,
    });
    let clear = store
        .record_outcome("a", "u1", m.version, &failed, T0 + 1)
        .await
        .unwrap();
    assert!(!clear, "still pending when the outcome says so");
    let after = store.get_member("a", "u1").await.unwrap().unwrap();
    assert!(after.pending);
    assert_eq!(after.last_error, failed.last_error);
    let l = after.link.unwrap();
    assert_eq!(
        l.username,
        link("d1").username,
        "username kept when not given"
    );
    assert_eq!(
        l.global_name,
        link("d1").global_name,
        "global name kept when not given"
    );

    let mut left = outcome(&[], false);
    left.global_name = Some(None);
    left.nickname = None;
    left.status = LinkStatus::Left;
    assert!(store
        .record_outcome("a", "u1", m.version, &left, T0 + 2)
        .await
        .unwrap());
    let after = store.get_member("a", "u1").await.unwrap().unwrap();
    assert_eq!(after.last_error, None, "a success clears the last error");
    let l = after.link.unwrap();
    assert_eq!(l.global_name, None, "Some(None) clears the global name");
    assert_eq!(l.nickname, None);
    assert_eq!(l.status, LinkStatus::Left);
}

pub async fn an_outcome_without_member_or_link_is_not_found(store: &dyn Store) {
    setup_client(store, "a").await;
    let o = outcome(&[], false);
    assert!(matches!(
        store.record_outcome("a", "ghost", 1, &o, T0).await,
        Err(StoreError::NotFound)
    ));
    let m = store
        .save_site_user("a", &site_user("u1", &[]), true, T0)
        .await
        .unwrap();
    assert!(matches!(
        store.record_outcome("a", "u1", m.version, &o, T0).await,
        Err(StoreError::NotFound)
    ));
    assert!(
        store.get_member("a", "u1").await.unwrap().unwrap().pending,
        "nothing written"
    );
}

pub async fn tokens_are_replaced_and_dropped_on_links_only(store: &dyn Store) {
    setup_client(store, "a").await;
    let fresh = StoredTokens {
        sealed: "v1.fresh".to_owned(),
        expires_at: T0 + 7200,
    };
    assert!(matches!(
        store.set_tokens("a", "ghost", Some(&fresh)).await,
        Err(StoreError::NotFound)
    ));
    store
        .save_site_user("a", &site_user("u1", &[]), false, T0)
        .await
        .unwrap();
    assert!(matches!(
        store.set_tokens("a", "u1", Some(&fresh)).await,
        Err(StoreError::NotFound)
    ));

    store
        .create_link("a", "u1", &link("d1"), None, false, T0)
        .await
        .unwrap();
    store.set_tokens("a", "u1", Some(&fresh)).await.unwrap();
    let l = store
        .get_member("a", "u1")
        .await
        .unwrap()
        .unwrap()
        .link
        .unwrap();
    assert_eq!(l.tokens, Some(fresh));
    assert_eq!(
        Link { tokens: None, ..l },
        Link {
            tokens: None,
            ..link("d1")
        },
        "nothing else changes"
    );

    store.set_tokens("a", "u1", None).await.unwrap();
    let l = store
        .get_member("a", "u1")
        .await
        .unwrap()
        .unwrap()
        .link
        .unwrap();
    assert_eq!(l.tokens, None);
}

pub async fn a_pushed_role_connection_is_kept_on_its_own_link_only(store: &dyn Store) {
    use crate::domain::linked_roles::RoleConnection;
    setup_client(store, "a").await;
    let pushed = RoleConnection {
        platform_name: "Site".to_owned(),
        platform_username: "u1".to_owned(),
        metadata: [("officer".to_owned(), "1".to_owned())].into(),
    };
    store
        .save_site_user("a", &site_user("u1", &[]), false, T0)
        .await
        .unwrap();
    assert!(matches!(
        store
            .set_role_connection("a", "u1", "d1", Some(&pushed))
            .await,
        Err(StoreError::NotFound)
    ));
    store
        .create_link("a", "u1", &link("d1"), None, false, T0)
        .await
        .unwrap();
    assert!(
        matches!(
            store
                .set_role_connection("a", "u1", "d2", Some(&pushed))
                .await,
            Err(StoreError::NotFound)
        ),
        "not on a link to another account"
    );
    store
        .set_role_connection("a", "u1", "d1", Some(&pushed))
        .await
        .unwrap();
    let member = store.get_member("a", "u1").await.unwrap().unwrap();
    let l = member.link.unwrap();
    assert_eq!(l.role_connection.as_ref(), Some(&pushed));
    assert_eq!(
        Link {
            role_connection: None,
            relink_requested_at: None,
            ..l
        },
        link("d1"),
        "nothing else changes"
    );
    assert!(!member.pending, "pending is untouched");
    store
        .set_role_connection("a", "u1", "d1", None)
        .await
        .unwrap();
    let l = store.get_member("a", "u1").await.unwrap().unwrap().link;
    assert_eq!(l.unwrap().role_connection, None);
}

pub async fn marking_linked_members_pending_touches_active_links_only(store: &dyn Store) {
    setup_client(store, "a").await;
    setup_client(store, "b").await;
    let active1 = store
        .create_link("a", "active1", &link("d1"), None, false, T0)
        .await
        .unwrap();
    store
        .create_link("a", "active2", &link("d2"), None, false, T0)
        .await
        .unwrap();
    let gone = store
        .create_link("a", "left", &link("d3"), None, false, T0)
        .await
        .unwrap();
    let mut left = outcome(&[], false);
    left.status = LinkStatus::Left;
    store
        .record_outcome("a", "left", gone.version, &left, T0)
        .await
        .unwrap();
    store
        .save_site_user("a", &site_user("unlinked", &["g"]), false, T0)
        .await
        .unwrap();
    store
        .create_link("b", "other", &link("d9"), None, false, T0)
        .await
        .unwrap();

    assert_eq!(store.mark_all_linked_pending("a", T0 + 1).await.unwrap(), 2);

    assert_eq!(
        member_ids(store, "a", true, 10).await.concat(),
        ["active1", "active2"]
    );
    let after = store.get_member("a", "active1").await.unwrap().unwrap();
    assert!(
        after.version > active1.version,
        "a task that read before the change cannot clear it"
    );
    assert!(
        !store
            .get_member("b", "other")
            .await
            .unwrap()
            .unwrap()
            .pending
    );
}

pub async fn members_are_listed_by_user_id_across_pages(store: &dyn Store) {
    setup_client(store, "a").await;
    setup_client(store, "b").await;
    for id in ["u5", "u2", "u7", "u1", "u4", "u6", "u3"] {
        store
            .save_site_user("a", &site_user(id, &[]), id == "u4", T0)
            .await
            .unwrap();
    }
    store
        .create_link("a", "u8", &link("d8"), None, false, T0)
        .await
        .unwrap();
    store
        .save_site_user("b", &site_user("u0", &[]), false, T0)
        .await
        .unwrap();

    let pages = member_ids(store, "a", false, 3).await;
    assert_eq!(
        pages,
        [
            vec!["u1", "u2", "u3"],
            vec!["u4", "u5", "u6"],
            vec!["u7", "u8"]
        ]
    );
    assert_eq!(
        member_ids(store, "a", false, 100).await,
        [["u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8"]]
    );
    assert_eq!(member_ids(store, "b", false, 1).await, [["u0"]]);
    assert_eq!(
        member_ids(store, "c", false, 5).await,
        [Vec::<String>::new()]
    );

    let first = store.list_members("a", None, 3).await.unwrap();
    assert_eq!(
        first.items[0],
        store.get_member("a", "u1").await.unwrap().unwrap(),
        "full members"
    );
}

pub async fn pending_members_are_listed_by_user_id_across_pages(store: &dyn Store) {
    setup_client(store, "a").await;
    for n in (0..12).rev() {
        store
            .save_site_user("a", &site_user(&format!("u{n:02}"), &[]), n % 2 == 0, T0)
            .await
            .unwrap();
    }
    store
        .create_link("a", "u99", &link("d1"), None, true, T0)
        .await
        .unwrap();

    let pages = member_ids(store, "a", true, 2).await;
    assert_eq!(
        pages,
        [
            vec!["u00", "u02"],
            vec!["u04", "u06"],
            vec!["u08", "u10"],
            vec!["u99"]
        ]
    );
    let page = store.list_pending("a", None, 100).await.unwrap();
    assert!(page.items.iter().all(|m| m.pending));
    assert_eq!(page.next, None);
}

/// Discord lists members by numeric user id; "9" sorts before "10" there, unlike in text.
pub async fn linked_members_are_listed_in_discords_numeric_order(store: &dyn Store) {
    setup_client(store, "a").await;
    setup_client(store, "b").await;
    for (user, discord) in [
        ("u1", "100000000000000010"),
        ("u2", "99999999999999999"),
        ("u3", "100000000000000002"),
        ("u4", "1000000000000000000"),
    ] {
        store
            .create_link("a", user, &link(discord), None, false, T0)
            .await
            .unwrap();
    }
    store
        .save_site_user("a", &site_user("u-unlinked", &[]), false, T0)
        .await
        .unwrap();
    store
        .create_link("b", "u9", &link("5"), None, false, T0)
        .await
        .unwrap();

    let mut ids: Vec<Vec<String>> = Vec::new();
    let mut after = None;
    loop {
        let page = store.list_linked_by_discord("a", after, 3).await.unwrap();
        let page_ids: Vec<String> = page
            .items
            .iter()
            .map(|m| m.link.as_ref().unwrap().discord_user_id.clone())
            .collect();
        after = page_ids.last().map(|id| id.parse().unwrap());
        let more = page.next.is_some();
        ids.push(page_ids);
        if !more {
            break;
        }
    }
    assert_eq!(
        store
            .list_linked_by_discord("a", Some(100000000000000002), 10)
            .await
            .unwrap()
            .items
            .len(),
        2,
        "resumes after a Discord id"
    );
    assert_eq!(
        ids,
        [
            vec![
                "99999999999999999",
                "100000000000000002",
                "100000000000000010"
            ],
            vec!["1000000000000000000"],
        ]
    );
}

pub async fn a_listing_of_an_exact_multiple_of_the_limit_ends(store: &dyn Store) {
    setup_client(store, "a").await;
    for id in ["u1", "u2", "u3", "u4"] {
        store
            .save_site_user("a", &site_user(id, &[]), true, T0)
            .await
            .unwrap();
    }
    let expected = ["u1", "u2", "u3", "u4"];
    assert_eq!(member_ids(store, "a", false, 2).await.concat(), expected);
    assert_eq!(member_ids(store, "a", true, 2).await.concat(), expected);
    assert_eq!(member_ids(store, "a", true, 4).await.concat(), expected);
}

// --- link sessions -------------------------------------------------------------------------------

pub async fn a_link_session_is_consumed_once(store: &dyn Store) {
    setup_client(store, "a").await;
    let session = link_session("hash1", "a", "u1", T0 + 600);
    store.put_link_session(&session).await.unwrap();
    store
        .put_link_session(&link_session("hash2", "a", "u2", T0 + 600))
        .await
        .unwrap();

    assert_eq!(
        store.consume_link_session("unknown", T0).await.unwrap(),
        None
    );
    assert_eq!(
        store.consume_link_session("hash1", T0 + 10).await.unwrap(),
        Some(ConsumedSession::Valid(session))
    );
    assert_eq!(
        store.consume_link_session("hash1", T0 + 11).await.unwrap(),
        None,
        "single use"
    );
    assert!(
        store
            .consume_link_session("hash2", T0 + 12)
            .await
            .unwrap()
            .is_some(),
        "others unaffected"
    );

    // Two callbacks racing for one state: one wins.
    store
        .put_link_session(&link_session("hash3", "a", "u3", T0 + 600))
        .await
        .unwrap();
    let (x, y) = tokio::join!(
        store.consume_link_session("hash3", T0 + 20),
        store.consume_link_session("hash3", T0 + 20)
    );
    assert_eq!(
        usize::from(x.unwrap().is_some()) + usize::from(y.unwrap().is_some()),
        1
    );
}

pub async fn an_expired_link_session_is_refused_once_and_gone(store: &dyn Store) {
    setup_client(store, "a").await;
    let session = link_session("late", "a", "u1", T0 + 600);
    store.put_link_session(&session).await.unwrap();
    assert_eq!(
        store.consume_link_session("late", T0 + 601).await.unwrap(),
        Some(ConsumedSession::Expired(session)),
        "expired: never valid, but its return_to is known"
    );
    assert_eq!(
        store.consume_link_session("late", T0).await.unwrap(),
        None,
        "the expired session was deleted, not left for a clock that runs behind"
    );
}

// --- runs and audit ------------------------------------------------------------------------------

pub async fn runs_are_upserted_and_listed_newest_first(store: &dyn Store) {
    setup_client(store, "a").await;
    setup_client(store, "b").await;
    for (id, started) in [("r1", 10), ("r3", 30), ("r2", 20), ("r5", 50), ("r4", 40)] {
        store
            .put_run(&run_report("a", id, T0 + started))
            .await
            .unwrap();
    }
    store
        .put_run(&run_report("b", "r9", T0 + 99))
        .await
        .unwrap();

    let mut finished = run_report("a", "r3", T0 + 30);
    finished.complete = true;
    finished.finished_at = T0 + 35;
    finished.count(Count::Changed);
    store.put_run(&finished).await.unwrap();

    let pages = all_pages(2, |after| async move {
        store.list_runs("a", after.as_ref(), 2).await
    })
    .await;
    let ids: Vec<Vec<String>> = pages
        .iter()
        .map(|p| p.iter().map(|r| r.id.clone()).collect())
        .collect();
    assert_eq!(ids, [vec!["r5", "r4"], vec!["r3", "r2"], vec!["r1"]]);
    assert_eq!(pages[1][0], finished, "the second put replaced the first");
    assert_eq!(
        store.list_runs("b", None, 10).await.unwrap().items,
        vec![run_report("b", "r9", T0 + 99)]
    );
}

pub async fn audit_entries_are_listed_newest_first(store: &dyn Store) {
    setup_client(store, "a").await;
    setup_client(store, "b").await;
    store.append_audit(&[]).await.unwrap();
    store
        .append_audit(&[
            audit_entry("a", "e1", T0 + 1),
            audit_entry("b", "x1", T0 + 1),
            audit_entry("a", "e2", T0 + 2),
        ])
        .await
        .unwrap();
    store
        .append_audit(&[audit_entry("a", "e3", T0 + 3)])
        .await
        .unwrap();
    store
        .append_audit(&[
            audit_entry("a", "e4", T0 + 4),
            audit_entry("a", "e5", T0 + 5),
        ])
        .await
        .unwrap();

    let pages = all_pages(2, |after| async move {
        store.list_audit("a", after.as_ref(), 2).await
    })
    .await;
    let ids: Vec<Vec<String>> = pages
        .iter()
        .map(|p| p.iter().map(|e| e.id.clone()).collect())
        .collect();
    assert_eq!(ids, [vec!["e5", "e4"], vec!["e3", "e2"], vec!["e1"]]);
    assert_eq!(pages[2][0], audit_entry("a", "e1", T0 + 1));
    assert_eq!(
        store.list_audit("b", None, 10).await.unwrap().items,
        vec![audit_entry("b", "x1", T0 + 1)]
    );
}

// --- settings and leases -------------------------------------------------------------------------

pub async fn settings_are_stored_only_when_absent(store: &dyn Store) {
    assert_eq!(store.get_setting("admin_token_hash").await.unwrap(), None);
    assert!(store
        .put_setting_if_absent("admin_token_hash", "first")
        .await
        .unwrap());
    assert!(!store
        .put_setting_if_absent("admin_token_hash", "second")
        .await
        .unwrap());
    assert_eq!(
        store
            .get_setting("admin_token_hash")
            .await
            .unwrap()
            .as_deref(),
        Some("first")
    );
    assert!(store.put_setting_if_absent("other", "x").await.unwrap());
}

async fn take(store: &dyn Store, name: &str, holder: &str, now: Timestamp, ttl: i64) -> bool {
    store
        .acquire_lease(name, holder, now, ttl)
        .await
        .unwrap()
        .is_some()
}

pub async fn a_lease_is_exclusive_until_released_or_expired(store: &dyn Store) {
    let lease = "scheduler:verify-groups";
    assert!(take(store, lease, "A", T0, 60).await);
    assert!(!take(store, lease, "B", T0 + 10, 60).await);
    assert!(
        take(store, "another", "B", T0 + 10, 60).await,
        "leases are independent"
    );
    assert!(
        take(store, lease, "A", T0 + 30, 60).await,
        "the holder renews"
    );
    assert!(
        !take(store, lease, "B", T0 + 70, 60).await,
        "renewed until T0+90"
    );
    assert!(
        take(store, lease, "B", T0 + 91, 60).await,
        "expired: B takes over"
    );
    assert!(!take(store, lease, "A", T0 + 92, 60).await);

    store.release_lease(lease, "A", None).await.unwrap();
    assert!(
        !take(store, lease, "C", T0 + 93, 60).await,
        "only the holder releases"
    );
    store.release_lease(lease, "B", None).await.unwrap();
    assert!(take(store, lease, "C", T0 + 94, 60).await);
    store.release_lease("never-taken", "C", None).await.unwrap();
}

pub async fn concurrent_lease_claims_let_exactly_one_win(store: &dyn Store) {
    let (a, b, c, d) = tokio::join!(
        store.acquire_lease("l", "A", T0, 60),
        store.acquire_lease("l", "B", T0, 60),
        store.acquire_lease("l", "C", T0, 60),
        store.acquire_lease("l", "D", T0, 60),
    );
    let won = [a, b, c, d]
        .into_iter()
        .filter(|r| r.as_ref().unwrap().is_some())
        .count();
    assert_eq!(won, 1);
}

pub async fn a_lease_is_renewed_only_by_its_live_holder(store: &dyn Store) {
    assert!(take(store, "w", "A", T0, 15).await);
    assert!(store
        .renew_lease("w", "A", T0 + 10, 15, None)
        .await
        .unwrap());
    assert!(
        !take(store, "w", "B", T0 + 20, 15).await,
        "renewed until T0+25"
    );
    assert!(
        !store
            .renew_lease("w", "B", T0 + 20, 15, None)
            .await
            .unwrap(),
        "not B's"
    );
    // A stops renewing (crashed): B takes over once it expired, and A's late renewal fails
    assert!(take(store, "w", "B", T0 + 26, 15).await);
    assert!(!store
        .renew_lease("w", "A", T0 + 27, 15, None)
        .await
        .unwrap());
    assert!(
        !store.renew_lease("never", "A", T0, 15, None).await.unwrap(),
        "an absent lease is not renewed"
    );
}

pub async fn a_lease_hands_over_what_its_last_holder_left(store: &dyn Store) {
    let first = store.acquire_lease("g", "A", T0, 15).await.unwrap();
    assert_eq!(first, Some(super::LeaseGrant { handover: None }));
    assert!(store
        .renew_lease("g", "A", T0 + 5, 15, Some("window-1"))
        .await
        .unwrap());
    // a renewal without a handover keeps the last one
    assert!(store.renew_lease("g", "A", T0 + 9, 15, None).await.unwrap());
    store
        .release_lease("g", "A", Some("window-2"))
        .await
        .unwrap();
    // released: free at once, with what A left
    let next = store.acquire_lease("g", "B", T0 + 10, 15).await.unwrap();
    assert_eq!(next.and_then(|g| g.handover).as_deref(), Some("window-2"));
    // a holder that died hands over what its last renewal stored
    assert!(store
        .renew_lease("g", "B", T0 + 12, 15, Some("window-3"))
        .await
        .unwrap());
    let after_crash = store.acquire_lease("g", "C", T0 + 40, 15).await.unwrap();
    assert_eq!(
        after_crash.and_then(|g| g.handover).as_deref(),
        Some("window-3")
    );
    // a release by someone else changes nothing
    store.release_lease("g", "B", Some("stale")).await.unwrap();
    assert!(!take(store, "g", "D", T0 + 41, 15).await);
}

// --- retention -----------------------------------------------------------------------------------

/// With the default retention, nothing a prune may take is touched while it is within it: runs
/// under 90 days old, audit entries under 365, unexpired sessions, leases (and their handover) up
/// to a day after their expiry, and work marks however old. (Past retention, the SQLite store
/// deletes — `shared/tests/store_sqlite.rs` — and DynamoDB items carry their `ttl` —
/// `tests/store_dynamo.rs`.)
pub async fn pruning_spares_what_is_within_retention_and_the_work_index(store: &dyn Store) {
    use super::retention::{prune_all, DAY_SECS};
    let now = T0 + 400 * DAY_SECS;
    setup_client(store, "a").await;
    let run = run_report("a", "recent", now - 89 * DAY_SECS);
    store.put_run(&run).await.unwrap();
    let entry = audit_entry("a", "recent", now - 364 * DAY_SECS);
    store
        .append_audit(std::slice::from_ref(&entry))
        .await
        .unwrap();
    store
        .put_link_session(&link_session("live", "a", "u1", now + 60))
        .await
        .unwrap();
    let console = console_session("console", now + 60);
    store.put_console_session(&console).await.unwrap();
    assert!(take(store, "held", "A", now - 10, 60).await);
    assert!(take(store, "left", "A", now - 20 * 3600, 60).await);
    store
        .release_lease("left", "A", Some("window"))
        .await
        .unwrap();
    let mark = store
        .mark_work("a", TaskName::VerifyGroups, T0)
        .await
        .unwrap();

    prune_all(store, now, 1).await.unwrap();

    assert_eq!(store.list_runs("a", None, 10).await.unwrap().items, [run]);
    assert_eq!(
        store.list_audit("a", None, 10).await.unwrap().items,
        [entry]
    );
    assert!(
        !take(store, "held", "B", now, 60).await,
        "a live lease stays"
    );
    let grant = store.acquire_lease("left", "B", now, 60).await.unwrap();
    assert_eq!(
        grant.and_then(|g| g.handover).as_deref(),
        Some("window"),
        "a lease released less than a day ago keeps its handover"
    );
    assert_eq!(
        store
            .get_work("a", TaskName::VerifyGroups)
            .await
            .unwrap()
            .map(|m| m.seq),
        Some(mark)
    );
    assert!(matches!(
        store.consume_link_session("live", now).await.unwrap(),
        Some(ConsumedSession::Valid(_))
    ));
    assert_eq!(
        store.get_console_session("console", now).await.unwrap(),
        Some(console)
    );
}

// --- the work index ------------------------------------------------------------------------------

pub async fn work_marks_count_up_and_clear_only_when_unchanged(store: &dyn Store) {
    assert_eq!(
        store.get_work("a", TaskName::VerifyGroups).await.unwrap(),
        None
    );
    let s1 = store
        .mark_work("a", TaskName::VerifyGroups, T0)
        .await
        .unwrap();
    let s2 = store
        .mark_work("a", TaskName::VerifyGroups, T0 + 5)
        .await
        .unwrap();
    assert!(s2 > s1);
    let mark = store
        .get_work("a", TaskName::VerifyGroups)
        .await
        .unwrap()
        .expect("marked");
    assert_eq!(
        (mark.seq, mark.since),
        (s2, T0),
        "since is the first mark's time"
    );
    // a clear with the seq read before the second mark keeps it
    assert!(!store
        .clear_work("a", TaskName::VerifyGroups, s1)
        .await
        .unwrap());
    assert!(store
        .get_work("a", TaskName::VerifyGroups)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .clear_work("a", TaskName::VerifyGroups, s2)
        .await
        .unwrap());
    assert_eq!(
        store.get_work("a", TaskName::VerifyGroups).await.unwrap(),
        None
    );
    assert!(
        store
            .clear_work("a", TaskName::VerifyGroups, s2)
            .await
            .unwrap(),
        "absent counts as cleared"
    );
    // tasks and clients are separate marks
    store
        .mark_work("a", TaskName::SyncAccounts, T0)
        .await
        .unwrap();
    assert_eq!(
        store.get_work("a", TaskName::VerifyGroups).await.unwrap(),
        None
    );
    assert_eq!(
        store.get_work("b", TaskName::SyncAccounts).await.unwrap(),
        None
    );
}

pub async fn work_marks_are_listed_by_client_and_task_across_pages(store: &dyn Store) {
    for c in ["c3", "c1", "c2"] {
        store
            .mark_work(c, TaskName::VerifyGroups, T0)
            .await
            .unwrap();
    }
    store
        .mark_work("c2", TaskName::RemoteSyncGroups, T0)
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.list_work(after.as_ref(), 2).await.unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items.into_iter().map(|w| (w.client, w.task)));
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(
        seen,
        vec![
            ("c1".to_owned(), TaskName::VerifyGroups),
            ("c2".to_owned(), TaskName::RemoteSyncGroups),
            ("c2".to_owned(), TaskName::VerifyGroups),
            ("c3".to_owned(), TaskName::VerifyGroups),
        ]
    );
}

pub async fn deleting_a_client_removes_its_work_marks(store: &dyn Store) {
    store.create_client(&client("a")).await.unwrap();
    store.create_client(&client("b")).await.unwrap();
    for t in TaskName::ALL {
        store.mark_work("a", t, T0).await.unwrap();
    }
    store
        .mark_work("b", TaskName::VerifyGroups, T0)
        .await
        .unwrap();
    store.delete_client("a").await.unwrap();
    let left: Vec<String> = store
        .list_work(None, 10)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|w| w.client)
        .collect();
    assert_eq!(left, vec!["b".to_owned()]);
}

pub async fn refused_writes_and_unknown_roles_round_trip_and_mapping_forgets_refusals(
    store: &dyn Store,
) {
    let imported = Link {
        roles_known: false,
        ..link("d1")
    };
    let m = store
        .create_link("a", "u1", &imported, None, true, T0)
        .await
        .unwrap();
    assert!(!m.link.as_ref().unwrap().roles_known);
    assert!(
        !store
            .get_member("a", "u1")
            .await
            .unwrap()
            .unwrap()
            .link
            .unwrap()
            .roles_known,
        "an imported link's roles stay unknown until observed"
    );
    // a writer's outcome with a refusal, from a read of Discord
    let refused: BTreeSet<String> = ["add:r1".to_owned(), "nick".to_owned()].into();
    let mut o = outcome(&["r2"], false);
    o.refused = Some(refused.clone());
    o.roles_observed = true;
    store
        .record_outcome("a", "u1", m.version, &o, T0 + 1)
        .await
        .unwrap();
    let l = store
        .get_member("a", "u1")
        .await
        .unwrap()
        .unwrap()
        .link
        .unwrap();
    assert!(l.roles_known);
    assert_eq!(l.refused, refused);
    // an outcome that says nothing of refusals keeps them
    let mut keep = outcome(&["r2"], false);
    keep.refused = None;
    store
        .record_outcome("a", "u1", m.version, &keep, T0 + 2)
        .await
        .unwrap();
    let l = store
        .get_member("a", "u1")
        .await
        .unwrap()
        .unwrap()
        .link
        .unwrap();
    assert_eq!(l.refused, refused);
    assert!(
        l.roles_known,
        "roles_observed=false never makes roles unknown again"
    );
    // a mapping change (or roles/sync) forgets them: what was refused may work now
    assert_eq!(store.mark_all_linked_pending("a", T0 + 3).await.unwrap(), 1);
    let l = store
        .get_member("a", "u1")
        .await
        .unwrap()
        .unwrap()
        .link
        .unwrap();
    assert!(l.refused.is_empty());
    // and an outcome may clear them explicitly
    o.refused = Some(refused.clone());
    store
        .record_outcome("a", "u1", m.version, &o, T0 + 4)
        .await
        .unwrap();
    let mut clear = outcome(&["r2"], false);
    clear.refused = Some(BTreeSet::new());
    store
        .record_outcome("a", "u1", m.version, &clear, T0 + 5)
        .await
        .unwrap();
    let l = store
        .get_member("a", "u1")
        .await
        .unwrap()
        .unwrap()
        .link
        .unwrap();
    assert!(l.refused.is_empty());
}

// --- unlinking -----------------------------------------------------------------------------------

fn cleanup(reason: UnlinkReason, policy: UnlinkPolicy) -> UnlinkCleanup {
    UnlinkCleanup {
        reason,
        policy,
        actor: "admin".to_owned(),
    }
}

fn link_with_roles(discord_user_id: &str, roles: &[&str]) -> Link {
    Link {
        applied_roles: set(roles),
        ..link(discord_user_id)
    }
}

pub async fn unlinking_with_a_cleanup_records_it_in_the_same_write(store: &dyn Store) {
    setup_client(store, "a").await;
    store
        .save_site_user("a", &site_user("u1", &["g"]), false, T0)
        .await
        .unwrap();
    let linked = store
        .create_link(
            "a",
            "u1",
            &link_with_roles("d1", &["r1", "r2"]),
            None,
            false,
            T0,
        )
        .await
        .unwrap();
    let kick = cleanup(UnlinkReason::Unlinked, UnlinkPolicy::Kick);

    let old = store
        .delete_link("a", "u1", Some(&kick), T0 + 5)
        .await
        .unwrap();
    assert_eq!(old, Some(link_with_roles("d1", &["r1", "r2"])));
    let member = store.get_member("a", "u1").await.unwrap().unwrap();
    assert_eq!(member.link, None);
    assert!(member.pending, "the writer has the clean-up to do");
    assert!(member.version > linked.version, "a change of the member");
    let expected = Unlinking {
        discord_user_id: "d1".to_owned(),
        reason: UnlinkReason::Unlinked,
        policy: Some(UnlinkPolicy::Kick),
        roles: set(&["r1", "r2"]),
        roles_known: true,
        tokens: link("d1").tokens,
        actor: "admin".to_owned(),
        since: T0 + 5,
        refused: false,
        last_error: None,
    };
    assert_eq!(
        member.unlinking,
        BTreeMap::from([("d1".to_owned(), expected)])
    );
    let pending = store.list_pending("a", None, 10).await.unwrap().items;
    assert_eq!(pending, vec![member.clone()]);
    assert_eq!(store.find_member_by_discord("a", "d1").await.unwrap(), None);
    store
        .create_link("a", "u2", &link("d1"), None, false, T0 + 6)
        .await
        .expect("the account is free at once");

    // A link that left the guild and holds no tokens needs nothing on Discord.
    let left = Link {
        status: LinkStatus::Left,
        tokens: None,
        ..link("d3")
    };
    store
        .create_link("a", "u3", &left, None, false, T0)
        .await
        .unwrap();
    store
        .delete_link("a", "u3", Some(&kick), T0 + 5)
        .await
        .unwrap();
    let member = store.get_member("a", "u3").await.unwrap().unwrap();
    assert!(member.unlinking.is_empty());
    assert!(!member.pending);
}

pub async fn relinking_to_another_account_records_the_old_ones_unlinking(store: &dyn Store) {
    setup_client(store, "a").await;
    let relinked = cleanup(UnlinkReason::Relinked, UnlinkPolicy::RemoveRoles);
    store
        .create_link("a", "u1", &link_with_roles("d1", &["r1"]), None, false, T0)
        .await
        .unwrap();

    // The same account again: nothing to clean up.
    let member = store
        .create_link(
            "a",
            "u1",
            &link_with_roles("d1", &["r1"]),
            Some(&relinked),
            false,
            T0 + 1,
        )
        .await
        .unwrap();
    assert!(member.unlinking.is_empty());
    assert!(!member.pending);

    let member = store
        .create_link("a", "u1", &link("d2"), Some(&relinked), false, T0 + 2)
        .await
        .unwrap();
    assert_eq!(member.link.as_ref().unwrap().discord_user_id, "d2");
    assert!(member.pending, "the old account's clean-up is work");
    let old = &member.unlinking["d1"];
    assert_eq!(old.reason, UnlinkReason::Relinked);
    assert_eq!(old.policy, Some(UnlinkPolicy::RemoveRoles));
    assert_eq!(old.roles, set(&["r1"]));
    assert_eq!(old.since, T0 + 2);
    assert_eq!(member, store.get_member("a", "u1").await.unwrap().unwrap());

    // Back to the first account (a rolled-back link): its unlinking is dropped, and the
    // replaced link is dropped as it is.
    let member = store
        .create_link(
            "a",
            "u1",
            &link_with_roles("d1", &["r1"]),
            None,
            true,
            T0 + 3,
        )
        .await
        .unwrap();
    assert!(member.unlinking.is_empty(), "{:?}", member.unlinking);
    assert_eq!(store.find_member_by_discord("a", "d2").await.unwrap(), None);
}

pub async fn unlinking_progress_is_recorded_then_removed(store: &dyn Store) {
    setup_client(store, "a").await;
    store
        .create_link(
            "a",
            "u1",
            &link_with_roles("d1", &["r1", "r2"]),
            None,
            false,
            T0,
        )
        .await
        .unwrap();
    store
        .delete_link(
            "a",
            "u1",
            Some(&cleanup(UnlinkReason::Unlinked, UnlinkPolicy::RemoveRoles)),
            T0,
        )
        .await
        .unwrap();
    let before = store.get_member("a", "u1").await.unwrap().unwrap();
    let mut progress = before.unlinking["d1"].clone();
    progress.roles = set(&["r2"]);
    progress.refused = true;
    progress.last_error = Some(LastError {
        code: "missing_permissions".to_owned(),
        message: "refused".to_owned(),
        discord_code: Some(50013),
        at: T0 + 1,
    });

    store
        .record_unlinking("a", "u1", "d1", Some(&progress))
        .await
        .unwrap();
    let member = store.get_member("a", "u1").await.unwrap().unwrap();
    assert_eq!(member.unlinking["d1"], progress);
    assert_eq!(
        member.version, before.version,
        "progress is not a change of the member"
    );
    assert!(member.pending);

    // Progress of an unlinking that is gone does not bring it back.
    store
        .record_unlinking("a", "u1", "d9", Some(&progress))
        .await
        .unwrap();
    store
        .record_unlinking("a", "ghost", "d1", None)
        .await
        .unwrap();
    let member = store.get_member("a", "u1").await.unwrap().unwrap();
    assert_eq!(member.unlinking.keys().collect::<Vec<_>>(), vec!["d1"]);

    store.record_unlinking("a", "u1", "d1", None).await.unwrap();
    let member = store.get_member("a", "u1").await.unwrap().unwrap();
    assert!(member.unlinking.is_empty());
    assert!(member.pending, "pending is the writer's to clear");
}

pub async fn clearing_pending_is_version_guarded(store: &dyn Store) {
    setup_client(store, "a").await;
    let member = store
        .save_site_user("a", &site_user("u1", &["g"]), true, T0)
        .await
        .unwrap();
    let newer = store
        .save_site_user("a", &site_user("u1", &["g", "h"]), true, T0 + 1)
        .await
        .unwrap();
    assert!(!store
        .clear_pending("a", "u1", member.version, T0 + 2)
        .await
        .unwrap());
    assert!(store.get_member("a", "u1").await.unwrap().unwrap().pending);

    assert!(store
        .clear_pending("a", "u1", newer.version, T0 + 2)
        .await
        .unwrap());
    let member = store.get_member("a", "u1").await.unwrap().unwrap();
    assert!(!member.pending);
    assert_eq!(member.user, site_user("u1", &["g", "h"]));
    assert!(store
        .list_pending("a", None, 10)
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(!store.clear_pending("a", "ghost", 1, T0).await.unwrap());
}

pub async fn marking_pending_includes_unlinkings_and_forgets_their_refusals(store: &dyn Store) {
    setup_client(store, "a").await;
    store
        .create_link("a", "u1", &link_with_roles("d1", &["r1"]), None, false, T0)
        .await
        .unwrap();
    store
        .delete_link(
            "a",
            "u1",
            Some(&cleanup(UnlinkReason::Unlinked, UnlinkPolicy::RemoveRoles)),
            T0,
        )
        .await
        .unwrap();
    let member = store.get_member("a", "u1").await.unwrap().unwrap();
    let mut refused = member.unlinking["d1"].clone();
    refused.refused = true;
    store
        .record_unlinking("a", "u1", "d1", Some(&refused))
        .await
        .unwrap();
    assert!(store
        .clear_pending("a", "u1", member.version, T0 + 1)
        .await
        .unwrap());

    assert_eq!(store.mark_all_linked_pending("a", T0 + 2).await.unwrap(), 1);
    let member = store.get_member("a", "u1").await.unwrap().unwrap();
    assert!(member.pending);
    assert!(
        !member.unlinking["d1"].refused,
        "tried again after roles/sync"
    );
    assert_eq!(member.unlinking["d1"].roles, set(&["r1"]));
}

pub async fn a_new_link_session_replaces_the_users_earlier_one(store: &dyn Store) {
    setup_client(store, "a").await;
    setup_client(store, "b").await;
    store
        .put_link_session(&link_session("s1", "a", "u1", T0 + 600))
        .await
        .unwrap();
    store
        .put_link_session(&link_session("s-other-user", "a", "u2", T0 + 600))
        .await
        .unwrap();
    store
        .put_link_session(&link_session("s-other-client", "b", "u1", T0 + 600))
        .await
        .unwrap();

    store
        .put_link_session(&link_session("s2", "a", "u1", T0 + 600))
        .await
        .unwrap();

    assert_eq!(
        store.consume_link_session("s1", T0).await.unwrap(),
        None,
        "the older session of the same user is gone"
    );
    for (hash, client, user) in [
        ("s2", "a", "u1"),
        ("s-other-user", "a", "u2"),
        ("s-other-client", "b", "u1"),
    ] {
        assert_eq!(
            store.consume_link_session(hash, T0).await.unwrap(),
            Some(ConsumedSession::Valid(link_session(
                hash,
                client,
                user,
                T0 + 600
            ))),
            "{hash}"
        );
    }
    // The same session stored again (no other) is kept.
    store
        .put_link_session(&link_session("s3", "a", "u1", T0 + 600))
        .await
        .unwrap();
    store
        .put_link_session(&link_session("s3", "a", "u1", T0 + 600))
        .await
        .unwrap();
    assert!(store
        .consume_link_session("s3", T0)
        .await
        .unwrap()
        .is_some());
}

fn api_token(id: &str, scope: TokenScope, clients: &[&str], created_at: Timestamp) -> ApiToken {
    ApiToken {
        id: id.to_owned(),
        name: format!("token {id}"),
        scope,
        clients: clients.iter().map(|c| (*c).to_owned()).collect(),
        token_sha256: format!("sha-{id}"),
        prefix: format!("dct_{id}"),
        created_at,
    }
}

pub async fn api_tokens_are_found_by_hash_listed_oldest_first_and_deleted_by_id(store: &dyn Store) {
    assert!(store.list_api_tokens().await.unwrap().is_empty());
    let site = api_token("t2", TokenScope::Site, &["a", "b"], T0 + 1);
    let operator = api_token("t1", TokenScope::Operator, &[], T0);
    store.put_api_token(&site).await.unwrap();
    store.put_api_token(&operator).await.unwrap();

    assert_eq!(
        store.find_api_token("sha-t2").await.unwrap(),
        Some(site.clone())
    );
    assert_eq!(store.find_api_token("sha-none").await.unwrap(), None);
    assert_eq!(
        store.list_api_tokens().await.unwrap(),
        vec![operator.clone(), site.clone()]
    );

    assert!(store.delete_api_token("t2").await.unwrap());
    assert!(!store.delete_api_token("t2").await.unwrap());
    assert_eq!(store.find_api_token("sha-t2").await.unwrap(), None);
    assert_eq!(store.list_api_tokens().await.unwrap(), vec![operator]);
}
