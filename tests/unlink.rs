//! Unlinking frees the Discord account at once and leaves the Discord side — the client's
//! policy, then revoking the member's grant — to the guild's writer. A relink to another account
//! (and an import over a link) gives the old account the same clean-up.

use connector_e2e::discord_emulator::Fault;
use connector_e2e::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn unlink(h: &Harness, user: &str) -> (StatusCode, Value) {
    h.api(
        Method::DELETE,
        &format!("/clients/{CLIENT}/users/{user}/link"),
        None,
    )
    .await
}

fn role_deletes(h: &Harness, discord_user: &str) -> usize {
    let member = format!("/members/{}/roles/", h.discord_id(discord_user));
    h.emu
        .requests()
        .iter()
        .filter(|r| r.method == "DELETE" && r.path.contains(&member))
        .count()
}

async fn audit_actions(h: &Harness) -> Vec<Value> {
    let (status, audit) = h
        .api(Method::GET, &format!("/clients/{CLIENT}/audit"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    audit["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn remove_roles_policy_takes_only_managed_roles_and_keeps_the_member() {
    // given alice is linked with managed roles and carries an unmanaged one too
    let h = Harness::start().await;
    h.setup_client().await;
    h.put_user("u-alice", &["members", "pilots"]).await;
    h.link("u-alice", "alice").await;
    h.settle().await;
    let mut roles: Vec<String> = ["Member", "Pilot", "Recruit"]
        .iter()
        .map(|r| h.role(r))
        .collect();
    roles.sort();
    h.emu
        .set_member_roles(h.emu.guild_id(), &h.discord_id("alice"), roles);
    assert_eq!(h.emu.active_grants(&h.discord_id("alice")), 1);

    // when the site unlinks her
    let (status, body) = unlink(&h, "u-alice").await;

    // then the answer comes at once: unlinked, the clean-up pending for the writer
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["linked"], false, "{body}");
    assert_eq!(body["pending"], true, "{body}");
    assert_eq!(
        body["unlinking"][0]["discord_user_id"],
        h.discord_id("alice")
    );
    assert_eq!(body["unlinking"][0]["reason"], "unlinked");
    assert_eq!(body["unlinking"][0]["policy"], "remove_roles");
    // and the account is free at once
    assert_eq!(
        h.link("u-other", "alice").await,
        format!("{SITE}/profile?discord=linked")
    );
    assert!(h.settle().await);

    // the writer removed nothing it does not manage and left the new link its roles
    let user = h.get_user("u-alice").await;
    assert_eq!(user["pending"], false, "{user}");
    assert_eq!(user["unlinking"], json!([]), "{user}");
    assert!(audit_actions(&h)
        .await
        .iter()
        .any(|e| e["action"] == "link.delete" && e["user_id"] == "u-alice"));
}

#[tokio::test]
async fn the_writer_removes_managed_roles_records_each_and_revokes_the_grant() {
    let h = Harness::start().await;
    h.setup_client().await;
    h.put_user("u-alice", &["members", "pilots"]).await;
    h.link("u-alice", "alice").await;
    h.settle().await;
    let recruit = h.role("Recruit");
    let mut roles = vec![h.role("Member"), h.role("Pilot"), recruit];
    roles.sort();
    h.emu
        .set_member_roles(h.emu.guild_id(), &h.discord_id("alice"), roles);

    let (status, _) = unlink(&h, "u-alice").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(h.settle().await);

    assert_eq!(h.roles_on_discord("alice"), Some(names(&["Recruit"])));
    assert_eq!(h.emu.active_grants(&h.discord_id("alice")), 0);
    let user = h.get_user("u-alice").await;
    assert_eq!(user["linked"], false);
    assert_eq!(user["pending"], false, "{user}");
    assert_eq!(user["unlinking"], json!([]));
    let removed: Vec<_> = audit_actions(&h)
        .await
        .into_iter()
        .filter(|e| e["action"] == "role.remove" && e["user_id"] == "u-alice")
        .collect();
    assert_eq!(removed.len(), 2, "{removed:?}");
    assert!(removed.iter().all(|e| e["detail"]["reason"] == "unlinked"));
    let reason = h
        .emu
        .requests()
        .into_iter()
        .find(|r| r.method == "DELETE" && r.path.contains("/roles/"))
        .and_then(|r| r.audit_reason);
    assert!(reason.is_some_and(|r| r.contains("u-alice")));
}

#[tokio::test]
async fn kick_policy_removes_the_member_from_the_guild() {
    let h = Harness::start().await;
    h.setup_client().await;
    let (status, _) = h
        .api(
            Method::PATCH,
            &format!("/clients/{CLIENT}"),
            Some(json!({"unlink_policy": "kick"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    h.put_user("u-bob", &["members"]).await;
    h.link("u-bob", "bob").await;
    h.settle().await;

    let (status, body) = unlink(&h, "u-bob").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body["unlinking"][0]["policy"], "kick");
    assert!(h.settle().await);

    assert_eq!(h.roles_on_discord("bob"), None, "kicked");
    let kick = h
        .emu
        .requests()
        .into_iter()
        .find(|r| r.method == "DELETE" && r.path.ends_with(&h.discord_id("bob")));
    assert!(kick
        .and_then(|k| k.audit_reason)
        .is_some_and(|r| r.contains("u-bob")));
    assert!(audit_actions(&h)
        .await
        .iter()
        .any(|e| e["action"] == "member.kick" && e["user_id"] == "u-bob"));
}

#[tokio::test]
async fn a_refused_clean_up_is_reported_not_resent_and_tried_again_after_roles_sync() {
    let h = Harness::start().await;
    h.setup_client().await;
    h.put_user("u-bob", &["members", "officers"]).await;
    h.link("u-bob", "bob").await;
    h.settle().await;
    h.emu.inject_fault(
        Fault::new("/roles/", 403, 1)
            .with_method("DELETE")
            .with_code(50013, "Missing Permissions"),
    );

    let (status, _) = unlink(&h, "u-bob").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(h.settle().await, "a refusal is not retried every tick");

    // reported on the user, not linked any more, one role still on Discord
    let user = h.get_user("u-bob").await;
    assert_eq!(user["linked"], false);
    assert_eq!(user["pending"], false, "{user}");
    let left = &user["unlinking"][0];
    assert_eq!(left["refused"], true, "{user}");
    assert_eq!(left["last_error"]["discord_code"], 50013, "{user}");
    assert_eq!(left["roles"].as_array().unwrap().len(), 1, "{user}");
    assert_eq!(h.roles_on_discord("bob").unwrap().len(), 1);
    let sent = role_deletes(&h, "bob");

    // another tick and another push send nothing for it
    h.run_task("verify-groups", false).await;
    h.put_user("u-bob", &["members"]).await;
    assert_eq!(
        role_deletes(&h, "bob"),
        sent,
        "a refused write is not re-sent"
    );

    // after roles/sync (the operator fixed the hierarchy) it is tried again and finishes
    let (status, _) = h
        .api(Method::POST, &format!("/clients/{CLIENT}/roles/sync"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(h.settle().await);
    assert_eq!(h.roles_on_discord("bob"), Some(names(&[])));
    let user = h.get_user("u-bob").await;
    assert_eq!(user["unlinking"], json!([]), "{user}");
    assert_eq!(h.emu.active_grants(&h.discord_id("bob")), 0);
}

#[tokio::test]
async fn relinking_to_another_account_cleans_up_the_old_one() {
    // given u-alice is linked to alice, who carries the managed roles
    let h = Harness::start().await;
    h.setup_client().await;
    h.put_user("u-alice", &["members", "pilots"]).await;
    h.link("u-alice", "alice").await;
    h.settle().await;
    assert_eq!(
        h.roles_on_discord("alice"),
        Some(names(&["Member", "Pilot"]))
    );

    // when the same site user links another Discord account
    assert_eq!(
        h.link("u-alice", "carol").await,
        format!("{SITE}/profile?discord=linked")
    );
    assert!(h.settle().await);

    // then the new account carries the roles and the old one lost them and our grant
    assert_eq!(
        h.roles_on_discord("carol"),
        Some(names(&["Member", "Pilot"]))
    );
    assert_eq!(h.roles_on_discord("alice"), Some(names(&[])));
    assert_eq!(h.emu.active_grants(&h.discord_id("alice")), 0);
    let user = h.get_user("u-alice").await;
    assert_eq!(user["link"]["discord_user_id"], h.discord_id("carol"));
    assert_eq!(user["unlinking"], json!([]), "{user}");
    let audit = audit_actions(&h).await;
    assert!(audit.iter().any(|e| e["action"] == "role.remove"
        && e["discord_user_id"] == h.discord_id("alice")
        && e["detail"]["reason"] == "relinked"));
}

#[tokio::test]
async fn an_import_over_a_link_cleans_up_the_replaced_account() {
    let h = Harness::start().await;
    h.setup_client().await;
    h.put_user("u-alice", &["members"]).await;
    h.link("u-alice", "alice").await;
    h.settle().await;
    assert_eq!(h.roles_on_discord("alice"), Some(names(&["Member"])));

    let (status, report) = h
        .api(
            Method::POST,
            &format!("/clients/{CLIENT}/users/import"),
            Some(
                json!([{"user_id": "u-alice", "discord_user_id": h.discord_id("dave"),
                         "groups": ["members"]}]),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["updated"], 1, "{report}");
    assert!(h.settle().await);

    assert_eq!(h.roles_on_discord("alice"), Some(names(&[])));
    assert_eq!(h.emu.active_grants(&h.discord_id("alice")), 0);
    let user = h.get_user("u-alice").await;
    assert_eq!(user["link"]["discord_user_id"], h.discord_id("dave"));
    assert_eq!(user["unlinking"], json!([]), "{user}");
}

#[tokio::test]
async fn an_account_linked_again_before_the_writer_ran_keeps_its_roles() {
    // The unlinking of an account that is linked again meanwhile is dropped: the new link owns
    // its roles. Whichever comes first — the writer's clean-up or the new link — the account
    // ends with the new link's roles and grant.
    let h = Harness::start().await;
    h.setup_client().await;
    h.put_user("u-alice", &["members"]).await;
    h.put_user("u-other", &["members", "pilots"]).await;
    h.link("u-alice", "alice").await;
    h.settle().await;

    let (status, _) = unlink(&h, "u-alice").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    h.link("u-other", "alice").await;
    assert!(h.settle().await);

    assert_eq!(
        h.roles_on_discord("alice"),
        Some(names(&["Member", "Pilot"]))
    );
    assert_eq!(
        h.emu.active_grants(&h.discord_id("alice")),
        1,
        "the new grant"
    );
    assert_eq!(h.get_user("u-alice").await["unlinking"], json!([]));
}

#[tokio::test]
async fn unlinking_a_user_without_a_link_is_a_404() {
    let h = Harness::start().await;
    h.setup_client().await;
    h.put_user("u-x", &["members"]).await;
    let (status, problem) = unlink(&h, "u-x").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(problem["detail"], "link not found");
    let (status, problem) = unlink(&h, "u-nobody").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
}
