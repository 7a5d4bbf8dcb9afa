//! Bulk migration of existing links: idempotent, per-item conflicts, no Discord call.

use connector_e2e::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn importing_links_is_idempotent_costs_no_discord_call_and_reports_conflicts() {
    let h = Harness::start().await;
    h.setup_client().await;
    h.put_user("u-alice", &["members"]).await;
    h.link("u-alice", "alice").await;
    h.emu.clear_requests();
    let body = json!([
        {"user_id": "old-bob", "discord_user_id": h.discord_id("bob"), "groups": ["members", "officers"]},
        {"user_id": "old-carol", "discord_user_id": h.discord_id("carol"), "groups": ["members"], "attributes": {"corp": "X"}},
        {"user_id": "old-mallory", "discord_user_id": h.discord_id("alice"), "groups": []},
    ]);

    let (status, report) = h
        .api(
            Method::POST,
            &format!("/clients/{CLIENT}/users/import"),
            Some(body.clone()),
        )
        .await;

    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["created"], 2);
    assert_eq!(report["failed"][0]["index"], 2);
    assert_eq!(report["failed"][0]["code"], "account_already_linked");
    assert!(h.emu.requests().is_empty(), "an import never calls Discord");
    let bob = h.get_user("old-bob").await;
    assert_eq!(bob["link"]["discord_user_id"], h.discord_id("bob"));
    assert_eq!(bob["link"]["status"], "active");

    let (_, again) = h
        .api(
            Method::POST,
            &format!("/clients/{CLIENT}/users/import"),
            Some(body),
        )
        .await;
    assert_eq!(again["unchanged"], 2, "{again}");
    assert_eq!(again["created"], 0);

    // the next remote sync learns their real state from the list and repairs it
    h.emu.add_member(
        h.emu.guild_id(),
        &h.discord_id("bob"),
        None,
        [h.role("Member")],
    );
    h.run_task("remote-sync-groups", false).await;
    assert_eq!(
        h.roles_on_discord("bob"),
        Some(names(&["Member", "Officer"]))
    );
    assert_eq!(h.get_user("old-bob").await["link"]["username"], "bob");
}

#[tokio::test]
async fn a_malformed_import_is_refused_whole_naming_the_item_and_field() {
    let h = Harness::start().await;
    h.setup_client().await;
    for (body, field) in [
        (
            json!([{"user_id": "a", "discord_user_id": "1"}, {"user_id": "b", "discord_user_id": "nope"}]),
            "[1].discord_user_id",
        ),
        (
            json!([{"user_id": "a", "discord_user_id": "1"}, {"user_id": "a", "discord_user_id": "2"}]),
            "[1].user_id",
        ),
        (json!([{"user_id": "a"}]), "[0].discord_user_id"),
    ] {
        let (status, problem) = h
            .api(
                Method::POST,
                &format!("/clients/{CLIENT}/users/import"),
                Some(body),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        assert_eq!(problem["field"], field, "{problem}");
    }
    let (_, users) = h
        .api(Method::GET, &format!("/clients/{CLIENT}/users"), None)
        .await;
    assert_eq!(users["items"], json!([]), "nothing written");
}

#[tokio::test]
async fn import_items_follow_the_rules_of_put_user_and_the_request_is_capped() {
    let h = Harness::start().await;
    h.setup_client().await;
    let many: Vec<String> = (0..501).map(|i| format!("g{i}")).collect();
    let attributes: serde_json::Map<String, serde_json::Value> =
        (0..51).map(|i| (format!("a{i}"), json!("v"))).collect();
    let ok = json!({"user_id": "a", "discord_user_id": "300000000000000001"});
    for (item, field) in [
        (
            json!({"user_id": "b", "discord_user_id": "0300000000000000002"}),
            "[1].discord_user_id",
        ),
        (
            json!({"user_id": "b", "discord_user_id": "18446744073709551616"}),
            "[1].discord_user_id",
        ),
        (
            json!({"user_id": "b", "discord_user_id": "2", "groups": many}),
            "[1].groups",
        ),
        (
            json!({"user_id": "b", "discord_user_id": "2", "attributes": attributes}),
            "[1].attributes",
        ),
        (
            json!({"user_id": "b", "discord_user_id": "2", "attributes": {"t": "x".repeat(257)}}),
            "[1].attributes.t",
        ),
    ] {
        let (status, problem) = h
            .api(
                Method::POST,
                &format!("/clients/{CLIENT}/users/import"),
                Some(json!([ok, item])),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        assert_eq!(problem["field"], field, "{problem}");
    }
    // one request carries at most 250 users
    let items: Vec<serde_json::Value> = (0..251)
        .map(|i| json!({"user_id": format!("u{i}"), "discord_user_id": format!("{}", 400000000000000000u64 + i)}))
        .collect();
    let (status, problem) = h
        .api(
            Method::POST,
            &format!("/clients/{CLIENT}/users/import"),
            Some(json!(items)),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["field"], "body");
    let (status, report) = h
        .api(
            Method::POST,
            &format!("/clients/{CLIENT}/users/import"),
            Some(json!(items[..250])),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["created"], 250);
}
