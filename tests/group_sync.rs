//! Group changes reach Discord: at once when possible, else through the 5-minute verify task.

use connector_e2e::discord_emulator::Fault;
use connector_e2e::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn changing_a_linked_users_groups_changes_their_roles_at_once() {
    let h = Harness::start().await;
    h.setup_client().await;
    h.put_user("u-alice", &["members"]).await;
    h.link("u-alice", "alice").await;
    assert_eq!(h.roles_on_discord("alice"), Some(names(&["Member"])));

    let user = h.put_user("u-alice", &["officers", "pilots"]).await;

    assert_eq!(
        h.roles_on_discord("alice"),
        Some(names(&["Officer", "Pilot"]))
    );
    assert_eq!(user["pending"], false, "{user}");
    let roles = user["link"]["applied_roles"].as_array().unwrap().len();
    assert_eq!(roles, 2);
}

#[tokio::test]
async fn a_failed_immediate_apply_stays_pending_and_verify_groups_finishes_it() {
    // given Discord fails role writes for a moment
    let h = Harness::start().await;
    h.setup_client().await;
    h.put_user("u-alice", &["members"]).await;
    h.link("u-alice", "alice").await;
    h.emu
        .inject_fault(Fault::new("/roles/", 500, 100).with_method("PUT"));

    // when the site adds a group
    let answer = h.put_user_nowait("u-alice", &["members", "pilots"]).await;
    assert_eq!(answer["pending"], true, "the API answers at once: {answer}");

    // then the user stays pending with the error recorded
    let user = h
        .wait_for_user("u-alice", |u| !u["last_error"].is_null())
        .await;
    assert_eq!(user["pending"], true, "{user}");
    assert_eq!(user["last_error"]["code"], "discord_unavailable");
    assert_eq!(h.roles_on_discord("alice"), Some(names(&["Member"])));

    // and once Discord recovers, the 5-minute task applies it and records a run
    h.emu.clear_faults();
    let report = h.run_task("verify-groups", false).await;
    assert_eq!(report["counts"]["changed"], 1, "{report}");
    assert_eq!(report["complete"], true);
    assert_eq!(
        h.roles_on_discord("alice"),
        Some(names(&["Member", "Pilot"]))
    );
    let user = h.get_user("u-alice").await;
    assert_eq!(user["pending"], false);
    assert_eq!(user["last_error"], serde_json::Value::Null);
    let (_, runs) = h
        .api(Method::GET, &format!("/clients/{CLIENT}/runs"), None)
        .await;
    assert!(
        runs["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == report["id"]),
        "{runs}"
    );
}

#[tokio::test]
async fn verify_groups_with_nothing_pending_makes_no_discord_call() {
    let h = Harness::start().await;
    h.setup_client().await;
    for (u, d) in [("u-alice", "alice"), ("u-bob", "bob")] {
        h.put_user(u, &["members"]).await;
        h.link(u, d).await;
    }
    h.emu.clear_requests();

    let report = h.run_task("verify-groups", false).await;

    assert_eq!(report["counts"].get("examined"), None, "{report}");
    assert!(h.emu.requests().is_empty(), "{:?}", h.emu.requests());
}

#[tokio::test]
async fn a_member_who_left_the_guild_becomes_left_and_is_not_retried() {
    let h = Harness::start().await;
    h.setup_client().await;
    h.put_user("u-bob", &["members"]).await;
    h.link("u-bob", "bob").await;
    h.emu.remove_member(h.emu.guild_id(), &h.discord_id("bob"));

    h.put_user("u-bob", &["members", "officers"]).await;

    let user = h.get_user("u-bob").await;
    assert_eq!(user["link"]["status"], "left", "{user}");
    assert_eq!(user["pending"], false);
    h.emu.clear_requests();
    h.run_task("verify-groups", false).await;
    assert!(h.emu.requests().is_empty(), "a left member is not retried");
}

#[tokio::test]
async fn mapping_a_role_marks_members_and_the_dry_run_plans_without_writing() {
    // given a linked member and a newly mapped role
    let h = Harness::start().await;
    h.setup_client().await;
    h.put_user("u-carol", &["members", "recruits"]).await;
    h.link("u-carol", "carol").await;
    // (Discord failing for a moment keeps the change pending, so there is something to plan)
    h.emu
        .inject_fault(Fault::new("/roles/", 502, 100).with_method("PUT"));
    let recruit = h.role("Recruit");
    h.api(
        Method::PUT,
        &format!("/clients/{CLIENT}/roles/{recruit}"),
        Some(json!({"groups": ["recruits"]})),
    )
    .await;
    h.wait_for_user("u-carol", |u| !u["last_error"].is_null())
        .await;
    h.emu.clear_faults();
    h.emu.clear_requests();

    // when an operator asks for the plan
    let plan = h.run_task("verify-groups", true).await;

    // then it shows the change, sends nothing to Discord and stores nothing
    assert_eq!(plan["dry_run"], true);
    assert_eq!(
        plan["changes"][0]["add_roles"],
        json!([h.role("Recruit")]),
        "{plan}"
    );
    assert!(h.emu.requests().is_empty());
    assert_eq!(h.get_user("u-carol").await["pending"], true);
    let (_, runs) = h
        .api(Method::GET, &format!("/clients/{CLIENT}/runs"), None)
        .await;
    assert!(
        runs["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["dry_run"] == false),
        "a dry run stores no report: {runs}"
    );

    // and the real run applies exactly that
    h.run_task("verify-groups", false).await;
    assert_eq!(
        h.roles_on_discord("carol"),
        Some(names(&["Member", "Recruit"]))
    );
}

#[tokio::test]
async fn nickname_template_is_applied_and_the_owner_is_reported_not_called() {
    let h = Harness::start().await;
    h.setup_client().await;
    let (status, _) = h
        .api(
            Method::PATCH,
            &format!("/clients/{CLIENT}"),
            Some(json!({"nickname_template": "[{corp_ticker}] {username}"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, _) = h
        .api(
            Method::PUT,
            &format!("/clients/{CLIENT}/users/u-alice"),
            Some(json!({"groups": ["members"], "attributes": {"corp_ticker": "TEST"}})),
        )
        .await;
    h.link("u-alice", "alice").await;
    assert_eq!(h.nick_on_discord("alice").as_deref(), Some("[TEST] alice"));

    // the guild owner links: Discord forbids bots to rename owners, so no call is made
    h.put_user("u-dave", &["members"]).await;
    h.link("u-dave", "dave").await;
    let dave = h.get_user("u-dave").await;
    assert_eq!(h.nick_on_discord("dave"), None);
    assert_eq!(dave["last_error"]["code"], "nickname_of_owner", "{dave}");
    let patches = h
        .emu
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH" && r.status == 403)
        .count();
    assert_eq!(patches, 0);
}

#[tokio::test]
async fn a_verify_run_stays_within_discords_limits_without_a_single_429() {
    // given Discord's real limits (role writes: 10 per 10 s per guild) and many changes
    let h = Harness::start_with(Options {
        rate_limits: connector_e2e::discord_emulator::RateLimits::default(),
        ..Options::default()
    })
    .await;
    h.setup_client().await;
    for (u, d) in [("u-alice", "alice"), ("u-bob", "bob"), ("u-carol", "carol")] {
        h.put_user(u, &[]).await;
        h.link(u, d).await;
    }
    h.map_role("Member", &["members", "everyone"]).await;
    h.map_role("Officer", &["officers", "everyone"]).await;
    h.map_role("Pilot", &["pilots", "everyone"]).await;
    h.map_role("Recruit", &["everyone"]).await;
    for u in ["u-alice", "u-bob", "u-carol"] {
        // store the new groups without the immediate apply racing the run below
        h.app
            .store
            .save_site_user(
                CLIENT,
                &connector::domain::SiteUser {
                    user_id: u.into(),
                    groups: names(&["everyone"]),
                    ..Default::default()
                },
                true,
                0,
            )
            .await
            .unwrap();
    }

    // when verify applies 12 role adds
    let report = h.run_task("verify-groups", false).await;

    // then all land and Discord never had to say 429
    assert_eq!(report["counts"]["changed"], 3, "{report}");
    assert_eq!(
        h.roles_on_discord("bob"),
        Some(names(&["Member", "Officer", "Pilot", "Recruit"]))
    );
    assert_eq!(h.emu.rate_limited_count(), 0);
    assert_eq!(report["rate_limited"], 0);
}
