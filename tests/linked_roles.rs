//! Linked Roles: a client's metadata definitions are validated, registered with Discord on save
//! and shown beside what Discord holds.

use connector_e2e::console_http::{page, signed_in};
use connector_e2e::*;
use discord_emulator::AuthorizationKind;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn definitions() -> Value {
    json!({
        "enabled": true,
        "platform_name": "Example Site",
        "metadata": [
            {"key": "officer", "name": "Officer", "description": "Is an officer on the site",
             "type": "boolean", "source": {"group": "officers"}},
            {"key": "member_since", "name": "Member since", "description": "Joined the site on",
             "type": "datetime", "comparison": 5, "source": {"attribute": "joined_at"}},
            {"key": "missions", "name": "Missions", "description": "Missions flown",
             "type": "integer", "comparison": "greater_than_or_equal",
             "source": {"attribute": "missions"}},
        ],
    })
}

fn path() -> String {
    format!("/clients/{CLIENT}/linked-roles")
}

fn metadata_calls(h: &Harness) -> Vec<discord_emulator::RecordedRequest> {
    h.emu
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/role-connections/metadata"))
        .collect()
}

#[tokio::test]
async fn saving_definitions_registers_them_with_discord() {
    // Given a client without Linked Roles
    let h = Harness::start().await;
    h.setup_client().await;
    let (status, view) = h.api(Method::GET, &path(), None).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["config"], Value::Null);
    assert_eq!(view["discord"], json!([]));

    // When the operator saves three definitions
    let (status, view) = h.api(Method::PUT, &path(), Some(definitions())).await;

    // Then Discord holds them with the right type numbers, through a bot call on /v10 that
    // carries an audit reason
    assert_eq!(status, StatusCode::OK, "{view}");
    let held = h.emu.role_connection_metadata();
    assert_eq!(
        held,
        vec![
            json!({"type": 7, "key": "officer", "name": "Officer", "description": "Is an officer on the site"}),
            json!({"type": 5, "key": "member_since", "name": "Member since", "description": "Joined the site on"}),
            json!({"type": 2, "key": "missions", "name": "Missions", "description": "Missions flown"}),
        ]
    );
    let puts: Vec<_> = metadata_calls(&h)
        .into_iter()
        .filter(|r| r.method == "PUT")
        .collect();
    assert_eq!(puts.len(), 1);
    assert_eq!(
        puts[0].path,
        format!(
            "/api/v10/applications/{}/role-connections/metadata",
            h.emu.application_id()
        )
    );
    assert_eq!(puts[0].authorization_kind, AuthorizationKind::Bot);
    assert!(puts[0].audit_reason.is_some());
    assert_eq!(view["in_sync"], true, "{view}");
    assert_eq!(
        view["config"]["metadata"][1]["comparison"],
        "less_than_or_equal"
    );
    assert_eq!(view["config"]["metadata"][0]["comparison"], "equal");

    // And reading it back shows ours (stored) and what Discord holds (asked now)
    h.emu.clear_requests();
    let (status, read) = h.api(Method::GET, &path(), None).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read["config"], view["config"]);
    assert_eq!(read["discord"].as_array().map(Vec::len), Some(3), "{read}");
    assert_eq!(read["in_sync"], true);
    assert_eq!(metadata_calls(&h).len(), 1, "GET asks Discord");
}

#[tokio::test]
async fn what_discord_holds_is_shown_when_it_drifted() {
    let h = Harness::start().await;
    h.setup_client().await;
    let (status, _) = h.api(Method::PUT, &path(), Some(definitions())).await;
    assert_eq!(status, StatusCode::OK);
    // Someone replaced the records with the bot token elsewhere.
    let resp = h
        .http
        .put(format!(
            "{}/applications/{}/role-connections/metadata",
            h.emu.api_base(),
            h.emu.application_id()
        ))
        .header("authorization", format!("Bot {}", h.emu.bot_token()))
        .json(&json!([{"type": 3, "key": "other", "name": "Other", "description": "d"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    let (_, read) = h.api(Method::GET, &path(), None).await;
    assert_eq!(read["in_sync"], false, "{read}");
    assert_eq!(read["discord"][0]["key"], "other");
    assert_eq!(read["config"]["metadata"][0]["key"], "officer");
}

#[tokio::test]
async fn bad_definitions_are_refused_naming_the_field_and_nothing_is_registered() {
    let h = Harness::start().await;
    h.setup_client().await;
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut body = definitions();
        edit(&mut body);
        body
    };
    let six: Vec<Value> = (0..6)
        .map(|i| {
            json!({"key": format!("k{i}"), "name": "N", "description": "D", "type": "boolean",
                   "source": {"group": "g"}})
        })
        .collect();
    let cases = [
        (
            with(&|b| b["metadata"][0]["key"] = json!("Officer!")),
            "metadata[0].key",
        ),
        (
            with(&|b| b["metadata"][2]["key"] = json!("officer")),
            "metadata[2].key",
        ),
        (
            with(&|b| b["metadata"][0]["key"] = json!("k".repeat(51))),
            "metadata[0].key",
        ),
        (
            with(&|b| b["metadata"][0]["source"] = json!({"attribute": "rank"})),
            "metadata[0].source",
        ),
        (
            with(&|b| b["metadata"][2]["source"] = json!({"group": "pilots"})),
            "metadata[2].source",
        ),
        (
            with(&|b| b["metadata"][0]["comparison"] = json!("greater_than_or_equal")),
            "metadata[0].comparison",
        ),
        (
            // Discord type 7 is a boolean's: not for a datetime record.
            with(&|b| b["metadata"][1]["comparison"] = json!(7)),
            "metadata[1].comparison",
        ),
        (
            with(&|b| b["metadata"][1]["name"] = json!("")),
            "metadata[1].name",
        ),
        (
            with(&|b| b["metadata"][1]["description"] = json!("d".repeat(201))),
            "metadata[1].description",
        ),
        (with(&|b| b["platform_name"] = json!("")), "platform_name"),
        (with(&|b| b["metadata"] = json!(six)), "metadata"),
        (
            with(&|b| b["metadata"][0]["type"] = json!("float")),
            "metadata[0].type",
        ),
    ];
    for (body, field) in cases {
        let (status, problem) = h.api(Method::PUT, &path(), Some(body.clone())).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body} → {problem}"
        );
        assert_eq!(problem["field"], field, "{body} → {problem}");
        assert!(problem["detail"].is_string(), "{problem}");
    }
    assert!(
        metadata_calls(&h).iter().all(|r| r.method != "PUT"),
        "nothing refused reaches Discord"
    );
    let (_, read) = h.api(Method::GET, &path(), None).await;
    assert_eq!(read["config"], Value::Null, "nothing refused is stored");
}

#[tokio::test]
async fn only_operators_configure_linked_roles() {
    let h = Harness::start().await;
    h.setup_client().await;
    let (status, created) = h
        .api(
            Method::POST,
            "/tokens",
            Some(json!({"name": "website", "scope": "site", "clients": [CLIENT]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let token = created["token"].as_str().expect("shown once");
    for method in [Method::GET, Method::PUT] {
        let resp = h
            .http
            .request(method.clone(), h.url(&format!("/api/v1{}", path())))
            .bearer_auth(token)
            .json(&definitions())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{method}");
    }
    assert!(h.emu.role_connection_metadata().is_empty());
}

#[tokio::test]
async fn an_unknown_client_is_not_found() {
    let h = Harness::start().await;
    let (status, problem) = h
        .api(
            Method::PUT,
            "/clients/nope/linked-roles",
            Some(definitions()),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
}

/// The scopes the authorize URL of a fresh link session asks for.
async fn asked_scopes(h: &Harness, user: &str) -> Vec<String> {
    let link_url = h.link_session(user).await;
    let start = h.http.get(&link_url).send().await.unwrap();
    assert_eq!(start.status(), StatusCode::FOUND);
    let authorize = url::Url::parse(&location(&start)).unwrap();
    let scope = authorize
        .query_pairs()
        .find(|(k, _)| k == "scope")
        .map(|(_, v)| v.into_owned())
        .expect("a scope");
    scope.split(' ').map(str::to_owned).collect()
}

async fn set_enabled(h: &Harness, enabled: bool) {
    let mut body = definitions();
    body["enabled"] = json!(enabled);
    let (status, view) = h.api(Method::PUT, &path(), Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{view}");
}

#[tokio::test]
async fn role_connections_write_is_asked_only_when_linked_roles_are_on() {
    let h = Harness::start().await;
    h.setup_client().await;
    h.put_user("u-alice", &["members"]).await;
    assert_eq!(
        asked_scopes(&h, "u-alice").await,
        ["identify", "guilds.join"],
        "not configured"
    );
    set_enabled(&h, false).await;
    assert_eq!(
        asked_scopes(&h, "u-alice").await,
        ["identify", "guilds.join"],
        "configured but off"
    );
    set_enabled(&h, true).await;
    assert_eq!(
        asked_scopes(&h, "u-alice").await,
        ["identify", "guilds.join", "role_connections.write"]
    );
}

#[tokio::test]
async fn a_member_linked_before_linked_roles_needs_to_link_again() {
    // Given alice linked while Linked Roles were off
    let h = Harness::start().await;
    h.setup_client().await;
    h.put_user("u-alice", &["members"]).await;
    h.link("u-alice", "alice").await;
    assert_eq!(h.get_user("u-alice").await["needs_relink"], false);

    // When the operator turns Linked Roles on
    set_enabled(&h, true).await;

    // Then her view (and the listing) says she must link again
    assert_eq!(h.get_user("u-alice").await["needs_relink"], true);
    let (_, page) = h
        .api(Method::GET, &format!("/clients/{CLIENT}/users"), None)
        .await;
    assert_eq!(page["items"][0]["needs_relink"], true, "{page}");

    // And once she links again (granting role_connections.write at Discord), she need not
    h.link("u-alice", "alice").await;
    assert_eq!(h.get_user("u-alice").await["needs_relink"], false);

    // And turning Linked Roles off asks nothing of anyone
    set_enabled(&h, false).await;
    h.put_user("u-bob", &["members"]).await;
    h.link("u-bob", "bob").await;
    assert_eq!(h.get_user("u-bob").await["needs_relink"], false);
    set_enabled(&h, true).await;
    assert_eq!(h.get_user("u-bob").await["needs_relink"], true);
    assert_eq!(h.get_user("u-alice").await["needs_relink"], false);
}

#[tokio::test]
async fn an_unlinked_user_never_needs_a_relink() {
    let h = Harness::start().await;
    h.setup_client().await;
    set_enabled(&h, true).await;
    h.put_user("u-alice", &["members"]).await;
    let user = h.get_user("u-alice").await;
    assert_eq!(user["linked"], false);
    assert_eq!(user["needs_relink"], false);
}

async fn put_member(h: &Harness, user: &str, groups: &[&str], attributes: Value) {
    let (status, body) = h
        .api(
            Method::PUT,
            &format!("/clients/{CLIENT}/users/{user}"),
            Some(json!({"groups": groups, "attributes": attributes})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(h.settle().await, "settles");
}

fn role_connection_puts(h: &Harness) -> Vec<discord_emulator::RecordedRequest> {
    h.emu
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT" && r.path.ends_with("/role-connection"))
        .collect()
}

/// Linked Roles on; alice linked (granting role_connections.write) with `members` only.
async fn linked_alice() -> Harness {
    linked_alice_under(None).await
}

/// [`linked_alice`] with Discord's rate limits set first (`None`: the harness's).
async fn linked_alice_under(limits: Option<discord_emulator::RateLimits>) -> Harness {
    let h = Harness::start().await;
    if let Some(limits) = limits {
        h.emu.set_rate_limits(limits);
    }
    h.setup_client().await;
    set_enabled(&h, true).await;
    put_member(
        &h,
        "u-alice",
        &["members"],
        json!({"missions": "3", "joined_at": "2024-01-02"}),
    )
    .await;
    h.link("u-alice", "alice").await;
    assert!(h.settle().await);
    h
}

#[tokio::test]
async fn the_role_connection_is_pushed_on_link_and_on_every_change_of_the_member() {
    // Given Linked Roles on, when alice links
    let h = linked_alice().await;
    let alice = h.discord_id("alice");

    // Then Discord holds her metadata, written with her own token on /v10
    assert_eq!(
        h.emu.role_connection(&alice),
        Some(json!({
            "platform_name": "Example Site",
            "platform_username": "u-alice",
            "metadata": {"officer": "0", "missions": "3", "member_since": "2024-01-02"},
        }))
    );
    let puts = role_connection_puts(&h);
    assert_eq!(puts.len(), 1);
    assert_eq!(puts[0].authorization_kind, AuthorizationKind::Bearer);
    assert_eq!(
        puts[0].path,
        format!(
            "/api/v10/users/@me/applications/{}/role-connection",
            h.emu.application_id()
        )
    );

    // When she joins the officers
    put_member(
        &h,
        "u-alice",
        &["members", "officers"],
        json!({"missions": "3", "joined_at": "2024-01-02"}),
    )
    .await;
    assert_eq!(
        h.emu.role_connection(&alice).unwrap()["metadata"]["officer"],
        "1"
    );

    // And when only an attribute changes (no Discord role moves), it is pushed too
    put_member(
        &h,
        "u-alice",
        &["members", "officers"],
        json!({"missions": "4", "joined_at": "2024-01-02"}),
    )
    .await;
    assert_eq!(
        h.emu.role_connection(&alice).unwrap()["metadata"],
        json!({"officer": "1", "missions": "4", "member_since": "2024-01-02"})
    );
    assert_eq!(role_connection_puts(&h).len(), 3);
}

#[tokio::test]
async fn nothing_is_pushed_when_the_metadata_did_not_change() {
    let h = linked_alice().await;
    h.emu.clear_requests();

    // The same groups and attributes again; a group that feeds no metadata; a re-check of
    // every linked member (roles/sync)
    put_member(
        &h,
        "u-alice",
        &["members"],
        json!({"missions": "3", "joined_at": "2024-01-02"}),
    )
    .await;
    put_member(
        &h,
        "u-alice",
        &["members", "pilots"],
        json!({"missions": "3", "joined_at": "2024-01-02"}),
    )
    .await;
    let (status, _) = h
        .api(Method::POST, &format!("/clients/{CLIENT}/roles/sync"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(h.settle().await);

    assert!(
        h.roles_on_discord("alice").unwrap().contains("Pilot"),
        "the writer did work on her"
    );
    assert_eq!(role_connection_puts(&h).len(), 0, "{:?}", h.emu.requests());
}

#[tokio::test]
async fn a_token_about_to_expire_is_refreshed_and_stored_before_the_push() {
    let h = linked_alice().await;
    // Six and a half days later her access token expires within a day.
    let later = 6 * 86_400 + 12 * 3_600;
    h.clock.advance(later);
    h.emu.advance_clock(later);
    h.emu.clear_requests();

    put_member(
        &h,
        "u-alice",
        &["members", "officers"],
        json!({"missions": "3", "joined_at": "2024-01-02"}),
    )
    .await;

    let calls: Vec<(String, String)> = h
        .emu
        .requests()
        .into_iter()
        .map(|r| (r.method, r.path))
        .filter(|(_, p)| p.ends_with("/oauth2/token") || p.ends_with("/role-connection"))
        .collect();
    assert_eq!(
        calls,
        [
            ("POST".to_owned(), "/api/v10/oauth2/token".to_owned()),
            (
                "PUT".to_owned(),
                format!(
                    "/api/v10/users/@me/applications/{}/role-connection",
                    h.emu.application_id()
                )
            ),
        ]
    );
    assert_eq!(
        h.emu.role_connection(&h.discord_id("alice")).unwrap()["metadata"]["officer"],
        "1"
    );
    // The rotated refresh token was kept: the weekly refresh with it succeeds.
    let report = h.run_task("sync-accounts", false).await;
    assert_eq!(report["counts"]["tokens_refreshed"], 1, "{report}");
}

#[tokio::test]
async fn a_withdrawn_authorization_revokes_the_link_and_applies_the_unlink_policy() {
    let h = linked_alice().await;
    assert!(h.roles_on_discord("alice").unwrap().contains("Member"));
    // She removes the app in Discord: her tokens (access and refresh) die.
    h.emu.revoke_user_grants(&h.discord_id("alice"));

    put_member(
        &h,
        "u-alice",
        &["members", "officers"],
        json!({"missions": "3", "joined_at": "2024-01-02"}),
    )
    .await;

    let user = h.get_user("u-alice").await;
    assert_eq!(user["link"]["status"], "revoked", "{user}");
    let roles = h.roles_on_discord("alice").unwrap();
    assert!(
        !roles.contains("Member") && !roles.contains("Officer"),
        "remove_roles policy applied: {roles:?}"
    );
    let (_, audit) = h
        .api(Method::GET, &format!("/clients/{CLIENT}/audit"), None)
        .await;
    assert!(audit.to_string().contains("link.revoked"), "{audit}");
}

#[tokio::test]
async fn a_member_gains_a_linked_role_in_the_emulator_when_they_join_the_group() {
    // Given a server role that requires officer = true (set through the control API)
    let h = linked_alice().await;
    let (guild, officer) = (h.emu.guild_id().to_owned(), h.role("Officer"));
    let alice = h.discord_id("alice");
    let resp = h
        .http
        .put(format!(
            "{}/_emulator/guilds/{guild}/roles/{officer}/linked-requirements",
            h.emu.base_url()
        ))
        .json(&json!([{"key": "officer", "value": "1"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(h.emu.qualifies(&guild, &officer, &alice), Some(false));
    assert_eq!(h.emu.qualifies(&guild, &h.role("Pilot"), &alice), None);

    // When she joins the officers on the site
    put_member(
        &h,
        "u-alice",
        &["members", "officers"],
        json!({"missions": "3", "joined_at": "2024-01-02"}),
    )
    .await;

    // Then Discord would let her claim it, and the dashboard says so
    assert_eq!(h.emu.qualifies(&guild, &officer, &alice), Some(true));
    let page = h
        .http
        .get(format!("{}/", h.emu.base_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("<h2>Linked Roles</h2>"), "{page}");
    assert!(page.contains("officer=1"), "{page}");
    assert!(page.contains(&format!("may claim it: {alice}")), "{page}");
}

#[tokio::test]
async fn the_console_shows_the_linked_roles_and_who_must_link_again() {
    // Given alice linked before Linked Roles were turned on
    let h = Harness::start().await;
    h.setup_client().await;
    h.put_user("u-alice", &["members"]).await;
    let b = signed_in(&h, ADMIN_TOKEN).await;
    let (_, _, overview) = page(&h, &b, &format!("/admin/clients/{CLIENT}")).await;
    assert!(overview.contains("Linked roles"), "{overview}");
    assert!(overview.contains("Not configured"), "{overview}");
    h.link("u-alice", "alice").await;
    set_enabled(&h, true).await;

    // Then the overview lists the metadata and the member page asks for a relink
    let (status, _, overview) = page(&h, &b, &format!("/admin/clients/{CLIENT}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(overview.contains("<code>member_since</code>"), "{overview}");
    assert!(overview.contains("<code>officers</code>"), "{overview}");
    let member_page = format!("/admin/clients/{CLIENT}/members/u-alice");
    let (status, _, member) = page(&h, &b, &member_page).await;
    assert_eq!(status, StatusCode::OK);
    assert!(member.contains("needs relink"), "{member}");

    // And not once she linked again
    h.link("u-alice", "alice").await;
    let (_, _, member) = page(&h, &b, &member_page).await;
    assert!(!member.contains("needs relink"), "{member}");
}

#[tokio::test]
async fn the_weekly_sync_repairs_a_role_connection_that_drifted_and_only_that() {
    let h = linked_alice().await;
    let alice = h.discord_id("alice");
    let pushed = h.emu.role_connection(&alice).expect("pushed on link");

    // Nothing drifted: the weekly sync reads it and writes nothing
    h.emu.clear_requests();
    let report = h.run_task("sync-accounts", false).await;
    assert_eq!(
        report["counts"]["role_connections_repaired"],
        Value::Null,
        "{report}"
    );
    assert_eq!(role_connection_puts(&h).len(), 0, "{report}");
    assert!(h
        .emu
        .requests()
        .iter()
        .any(|r| r.method == "GET" && r.path.ends_with("/role-connection")));

    // Changed on Discord's side: the sync writes hers back
    assert!(h.emu.set_role_connection(
        &alice,
        json!({"platform_name": "Example Site", "platform_username": "u-alice",
               "metadata": {"officer": "1"}}),
    ));
    let report = h.run_task("sync-accounts", false).await;
    assert_eq!(report["counts"]["role_connections_repaired"], 1, "{report}");
    assert_eq!(h.emu.role_connection(&alice), Some(pushed));
}

fn failed_puts(h: &Harness) -> usize {
    role_connection_puts(h)
        .iter()
        .filter(|r| r.status >= 500)
        .count()
}

#[tokio::test]
async fn a_push_that_fails_for_a_moment_is_tried_again_at_the_next_tick() {
    // Given alice linked with Linked Roles on, and Discord failing role-connection writes
    let h = linked_alice().await;
    h.emu.inject_fault(
        discord_emulator::Fault::new("/role-connection", 500, 100).with_method("PUT"),
    );

    // When she joins the officers
    let (status, _) = h
        .api(
            Method::PUT,
            &format!("/clients/{CLIENT}/users/u-alice"),
            Some(json!({"groups": ["members", "officers"],
                        "attributes": {"missions": "3", "joined_at": "2024-01-02"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // Then her roles are applied, the push fails (retried in the call: 4 tries), and she
    // stays pending instead of being forgotten until her next change
    for _ in 0..200 {
        if failed_puts(&h) >= 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(failed_puts(&h) >= 4, "{:?}", role_connection_puts(&h));
    assert!(h.roles_on_discord("alice").unwrap().contains("Officer"));
    let user = h.wait_for_user("u-alice", |u| u["pending"] == true).await;
    assert_eq!(user["linked"], true, "{user}");
    assert_eq!(
        h.emu.role_connection(&h.discord_id("alice")).unwrap()["metadata"]["officer"],
        "0",
        "Discord still holds the old one"
    );

    // And once Discord recovers, the next verify-groups pushes it
    h.emu.clear_faults();
    h.run_task("verify-groups", false).await;
    assert_eq!(
        h.emu.role_connection(&h.discord_id("alice")).unwrap()["metadata"]["officer"],
        "1"
    );
    assert_eq!(h.get_user("u-alice").await["pending"], false);
}

#[tokio::test]
async fn a_refused_push_is_not_sent_again_until_the_member_changes() {
    // Given alice linked with Linked Roles on, and Discord refusing her role connection
    let h = linked_alice().await;
    h.emu.inject_fault(
        discord_emulator::Fault::new("/role-connection", 400, 100)
            .with_method("PUT")
            .with_code(50035, "Invalid Form Body"),
    );
    let put = |groups: Value| {
        let h = &h;
        async move {
            let (status, _) = h
                .api(
                    Method::PUT,
                    &format!("/clients/{CLIENT}/users/u-alice"),
                    Some(json!({"groups": groups,
                                "attributes": {"missions": "3", "joined_at": "2024-01-02"}})),
                )
                .await;
            assert_eq!(status, StatusCode::OK);
            assert!(h.settle().await, "settles: a refusal is not retried");
        }
    };

    // When she joins the officers: one refused push, and she is not left pending
    put(json!(["members", "officers"])).await;
    let refused = role_connection_puts(&h).len();
    assert!(refused >= 2, "{:?}", role_connection_puts(&h));
    assert_eq!(h.get_user("u-alice").await["pending"], false);

    // Then the 5-minute task sends nothing more
    h.run_task("verify-groups", false).await;
    assert_eq!(role_connection_puts(&h).len(), refused);

    // And her next change is tried (and goes through once Discord accepts)
    h.emu.clear_faults();
    put(json!(["members", "officers", "pilots"])).await;
    assert_eq!(
        h.emu.role_connection(&h.discord_id("alice")).unwrap()["metadata"]["officer"],
        "1"
    );
}

#[tokio::test]
async fn pushes_wait_for_the_members_own_rate_limit_bucket() {
    // Given Discord allows one role-connection call per member token every 2 seconds, and
    // alice linked with Linked Roles on
    let h = linked_alice_under(Some(discord_emulator::RateLimits {
        role_connection: Some(discord_emulator::Limit::new(1, 2.0)),
        ..discord_emulator::RateLimits::unlimited()
    }))
    .await;
    let before = h.emu.rate_limited_count();

    // When her metadata changes three times in a row
    for missions in ["4", "5", "6"] {
        put_member(
            &h,
            "u-alice",
            &["members"],
            json!({"missions": missions, "joined_at": "2024-01-02"}),
        )
        .await;
    }

    // Then every push reached Discord and none was answered 429: the writer waited
    assert_eq!(
        h.emu.role_connection(&h.discord_id("alice")).unwrap()["metadata"]["missions"],
        "6"
    );
    let statuses: Vec<(u16, f64)> = role_connection_puts(&h)
        .iter()
        .map(|r| (r.status, r.at))
        .collect();
    assert_eq!(role_connection_puts(&h).len(), 4, "{statuses:?}");
    assert_eq!(h.emu.rate_limited_count(), before, "no 429");
    assert_eq!(before, 0);
}

#[tokio::test]
async fn discord_shows_the_members_site_name_when_an_attribute_is_named() {
    // Given Linked Roles name the member by their site attribute `username`
    let h = Harness::start().await;
    h.setup_client().await;
    let mut body = definitions();
    body["username_attribute"] = json!("username");
    let (status, view) = h.api(Method::PUT, &path(), Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["config"]["username_attribute"], "username");

    // When alice, known on the site as "Ace Pilot", links
    put_member(
        &h,
        "u-alice",
        &["members"],
        json!({"username": "Ace Pilot", "missions": "3"}),
    )
    .await;
    h.link("u-alice", "alice").await;
    assert!(h.settle().await);

    // Then Discord shows that name on her connection
    let held = h
        .emu
        .role_connection(&h.discord_id("alice"))
        .expect("pushed");
    assert_eq!(held["platform_username"], "Ace Pilot");
}
