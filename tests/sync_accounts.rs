//! sync-accounts: names and nicknames from the member list, OAuth tokens refreshed or revoked.

use connector_e2e::discord_emulator::ScenarioUser;
use connector_e2e::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn with_template() -> Harness {
    let h = Harness::start().await;
    h.setup_client().await;
    let (status, _) = h
        .api(
            Method::PATCH,
            &format!("/clients/{CLIENT}"),
            Some(json!({"nickname_template": "%corp {username}"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for (user, discord) in [("u-alice", "alice"), ("u-dave", "dave")] {
        h.api(
            Method::PUT,
            &format!("/clients/{CLIENT}/users/{user}"),
            Some(json!({"groups": ["members"], "attributes": {"corp": "TEST"}})),
        )
        .await;
        h.link(user, discord).await;
    }
    h
}

#[tokio::test]
async fn names_are_refreshed_and_the_nickname_template_enforced_from_the_member_list() {
    // given alice renamed herself on Discord and a moderator changed her nickname
    let h = with_template().await;
    let alice = h.discord_id("alice");
    let mut renamed = ScenarioUser::new(alice.clone(), "alice2");
    renamed.global_name = Some("Alice Two".into());
    h.emu.add_user(renamed);
    h.emu.add_member(
        h.emu.guild_id(),
        &alice,
        Some("whatever"),
        [h.role("Member")],
    );
    h.emu.clear_requests();

    // when the weekly sync runs
    let report = h.run_task("sync-accounts", false).await;

    // then her stored names follow Discord and the template wins again, from one list call
    let user = h.get_user("u-alice").await;
    assert_eq!(user["link"]["username"], "alice2", "{user}");
    assert_eq!(user["link"]["global_name"], "Alice Two");
    let nick = h.emu.member(h.emu.guild_id(), &alice).and_then(|m| m.nick);
    assert_eq!(nick.as_deref(), Some("TEST alice2"));
    assert_eq!(
        report["calls"]["GET /guilds/{guild}/members"], 1,
        "{report}"
    );
    assert!(report["calls"]
        .get("GET /guilds/{guild}/members/{user}")
        .is_none());
    // the owner is skipped with a reported issue, never a refused call
    assert!(
        report["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["code"] == "nickname_of_owner"),
        "{report}"
    );
    assert!(
        h.emu.requests().iter().all(|r| r.status < 400),
        "{:?}",
        h.emu.requests()
    );
    // roles are not this task's business
    assert!(h.emu.requests().iter().all(|r| !r.path.contains("/roles/")));
}

#[tokio::test]
async fn tokens_are_refreshed_and_the_single_use_refresh_token_is_replaced() {
    let h = with_template().await;

    let first = h.run_task("sync-accounts", false).await;
    assert_eq!(first["counts"]["tokens_refreshed"], 2, "{first}");

    // the rotated token was stored: a second refresh with it succeeds (the old one is dead now)
    let second = h.run_task("sync-accounts", false).await;
    assert_eq!(second["counts"]["tokens_refreshed"], 2, "{second}");
    assert!(
        second["errors"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["code"] != "invalid_grant"),
        "{second}"
    );
}

#[tokio::test]
async fn a_withdrawn_authorization_marks_the_link_revoked_and_applies_the_unlink_policy() {
    // given alice removed the app from her Discord account
    let h = with_template().await;
    h.emu.revoke_user_grants(&h.discord_id("alice"));

    let report = h.run_task("sync-accounts", false).await;

    assert_eq!(report["counts"]["revoked"], 1, "{report}");
    let user = h.get_user("u-alice").await;
    assert_eq!(user["link"]["status"], "revoked", "{user}");
    assert_eq!(
        h.roles_on_discord("alice"),
        Some(names(&[])),
        "managed roles removed"
    );
    let (_, audit) = h
        .api(Method::GET, &format!("/clients/{CLIENT}/audit"), None)
        .await;
    assert!(audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "link.revoked"));
}

#[tokio::test]
async fn a_dry_run_refreshes_no_token_and_renames_nobody() {
    let h = with_template().await;
    h.emu.add_member(
        h.emu.guild_id(),
        &h.discord_id("alice"),
        Some("whatever"),
        [h.role("Member")],
    );
    h.emu.clear_requests();

    let plan = h.run_task("sync-accounts", true).await;

    assert_eq!(plan["counts"]["tokens_to_refresh"], 2, "{plan}");
    assert_eq!(plan["changes"][0]["set_nickname"], "TEST alice", "{plan}");
    assert!(
        h.emu.requests().iter().all(|r| r.method == "GET"),
        "{:?}",
        h.emu.requests()
    );
    assert_eq!(h.nick_on_discord("alice").as_deref(), Some("whatever"));
}
