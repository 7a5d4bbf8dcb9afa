//! Unlinking applies the client's policy on Discord and revokes the member's grant.

use connector_e2e::discord_emulator::Fault;
use connector_e2e::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn remove_roles_policy_takes_only_managed_roles_and_keeps_the_member() {
    // given alice is linked with managed roles and carries an unmanaged one too
    let h = Harness::start().await;
    h.setup_client().await;
    h.put_user("u-alice", &["members", "pilots"]).await;
    h.link("u-alice", "alice").await;
    let mut roles: Vec<String> = ["Member", "Pilot", "Recruit"]
        .iter()
        .map(|r| h.role(r))
        .collect();
    roles.sort();
    h.emu
        .set_member_roles(h.emu.guild_id(), &h.discord_id("alice"), roles);
    assert_eq!(h.emu.active_grants(&h.discord_id("alice")), 1);

    // when the site unlinks her
    let (status, _) = h
        .api(
            Method::DELETE,
            &format!("/clients/{CLIENT}/users/u-alice/link"),
            None,
        )
        .await;

    // then managed roles are gone, the rest stays, the grant is revoked, the Discord account is free
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(h.roles_on_discord("alice"), Some(names(&["Recruit"])));
    assert_eq!(h.emu.active_grants(&h.discord_id("alice")), 0);
    let user = h.get_user("u-alice").await;
    assert_eq!(user["linked"], false);
    assert_eq!(
        h.link("u-other", "alice").await,
        format!("{SITE}/profile?discord=linked")
    );
    let (_, audit) = h
        .api(Method::GET, &format!("/clients/{CLIENT}/audit"), None)
        .await;
    assert!(audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "link.delete"));
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

    let (status, _) = h
        .api(
            Method::DELETE,
            &format!("/clients/{CLIENT}/users/u-bob/link"),
            None,
        )
        .await;

    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(h.roles_on_discord("bob"), None, "kicked");
    let kick = h
        .emu
        .requests()
        .into_iter()
        .find(|r| r.method == "DELETE" && r.path.ends_with(&h.discord_id("bob")));
    assert!(kick
        .and_then(|k| k.audit_reason)
        .is_some_and(|r| r.contains("u-bob")));
}

#[tokio::test]
async fn a_refused_unlink_keeps_the_link_and_can_be_retried() {
    let h = Harness::start().await;
    h.setup_client().await;
    h.put_user("u-bob", &["members", "officers"]).await;
    h.link("u-bob", "bob").await;
    h.emu.inject_fault(
        Fault::new("/roles/", 403, 1)
            .with_method("DELETE")
            .with_code(50013, "Missing Permissions"),
    );

    let (status, problem) = h
        .api(
            Method::DELETE,
            &format!("/clients/{CLIENT}/users/u-bob/link"),
            None,
        )
        .await;

    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(problem["discord_code"], 50013, "{problem}");
    assert_eq!(h.get_user("u-bob").await["linked"], true);

    let (status, _) = h
        .api(
            Method::DELETE,
            &format!("/clients/{CLIENT}/users/u-bob/link"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(h.roles_on_discord("bob"), Some(names(&[])));
}

#[tokio::test]
async fn unlinking_a_user_without_a_link_is_a_404() {
    let h = Harness::start().await;
    h.setup_client().await;
    h.put_user("u-x", &["members"]).await;
    let (status, problem) = h
        .api(
            Method::DELETE,
            &format!("/clients/{CLIENT}/users/u-x/link"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(problem["detail"], "link not found");
}
