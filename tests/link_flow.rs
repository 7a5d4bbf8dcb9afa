//! The link flow end to end: site backend → link session → Discord consent → our callback →
//! member in the guild with their roles → back on the site.

use connector_e2e::discord_emulator::{Consent, Fault};
use connector_e2e::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn linking_joins_the_member_with_the_roles_their_groups_map_to() {
    // given a client with mapped roles and a site user in two groups
    let h = Harness::start().await;
    h.setup_client().await;
    h.put_user("u-alice", &["members", "pilots"]).await;

    // when the member links through the consent screen
    let landed = h.link("u-alice", "alice").await;

    // then they land on the site, joined the guild with exactly the mapped roles
    assert_eq!(landed, format!("{SITE}/profile?discord=linked"));
    assert_eq!(
        h.roles_on_discord("alice"),
        Some(names(&["Member", "Pilot"]))
    );
    let user = h.get_user("u-alice").await;
    assert_eq!(user["link"]["discord_user_id"], h.discord_id("alice"));
    assert_eq!(user["link"]["display"], "@alice");
    assert_eq!(user["link"]["status"], "active");
    assert_eq!(user["pending"], false);
    assert!(
        user.to_string().find("token").is_none(),
        "no token in the user view: {user}"
    );

    // and every Discord call used /v10 and our User-Agent
    let requests = h.emu.requests();
    assert!(requests.iter().any(|r| r.method == "PUT"
        && r.path
            .ends_with(&format!("/members/{}", h.discord_id("alice")))));
    for r in requests.iter().filter(|r| r.path.starts_with("/api/")) {
        assert!(r.path.starts_with("/api/v10/"), "{} without /v10", r.path);
        let ua = r.user_agent.as_deref().unwrap_or_default();
        assert!(
            ua.starts_with("DiscordBot ("),
            "user agent {ua:?} on {}",
            r.path
        );
    }
}

#[tokio::test]
async fn a_member_already_in_the_guild_is_reconciled_with_per_role_calls_and_an_audit_reason() {
    // given alice is already in the guild with an unmapped role and a role she is not entitled to
    let h = Harness::start().await;
    h.setup_client().await;
    h.emu.add_member(
        h.emu.guild_id(),
        &h.discord_id("alice"),
        None,
        [h.role("Recruit"), h.role("Officer")],
    );
    h.put_user("u-alice", &["members"]).await;

    // when she links (Discord answers 204: nick/roles in the join body are ignored)
    h.link("u-alice", "alice").await;

    // then the managed roles are fixed and the unmanaged one is untouched
    assert_eq!(
        h.roles_on_discord("alice"),
        Some(names(&["Member", "Recruit"]))
    );
    let writes: Vec<_> = h
        .emu
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/roles/") && (r.method == "PUT" || r.method == "DELETE"))
        .collect();
    assert_eq!(writes.len(), 2, "{writes:?}");
    for w in writes {
        let reason = w.audit_reason.unwrap_or_default();
        assert!(
            reason.contains("discord-connector") && reason.contains("u-alice"),
            "{reason}"
        );
    }
}

#[tokio::test]
async fn denied_consent_returns_to_the_site_with_a_reason_and_writes_nothing() {
    let h = Harness::start().await;
    h.setup_client().await;
    let url = h.link_session("u-bob").await;

    let cb = h.authorize(&url, Consent::Deny).await;
    let (status, loc, _) = h.callback(&cb).await;

    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(
        loc,
        format!("{SITE}/profile?discord=error&reason=access_denied")
    );
    let (status, _) = h
        .api(Method::GET, &format!("/clients/{CLIENT}/users/u-bob"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(h.roles_on_discord("bob"), None);
}

#[tokio::test]
async fn a_replayed_state_is_refused_with_a_plain_page() {
    let h = Harness::start().await;
    h.setup_client().await;
    let url = h.link_session("u-bob").await;
    let cb = h
        .authorize(
            &url,
            Consent::Approve {
                user_id: h.discord_id("bob"),
            },
        )
        .await;
    let (first, _, _) = h.callback(&cb).await;
    assert_eq!(first, StatusCode::FOUND);

    let (status, loc, body) = h.callback(&cb).await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(loc.is_empty(), "no redirect on a replay");
    assert!(body.contains("expired"), "{body}");
}

#[tokio::test]
async fn an_expired_state_sends_the_member_back_with_a_reason_and_nothing_is_linked() {
    let h = Harness::start().await;
    h.setup_client().await;
    let url = h.link_session("u-bob").await;
    let cb = h
        .authorize(
            &url,
            Consent::Approve {
                user_id: h.discord_id("bob"),
            },
        )
        .await;

    h.clock.advance(601);
    let (status, loc, _) = h.callback(&cb).await;

    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(loc, format!("{SITE}/profile?discord=error&reason=expired"));
    assert_eq!(h.roles_on_discord("bob"), None);
    let (status, _) = h
        .api(Method::GET, &format!("/clients/{CLIENT}/users/u-bob"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // and the expired state is gone: a second try is unknown
    let (status, loc, _) = h.callback(&cb).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(loc.is_empty());
}

#[tokio::test]
async fn a_discord_account_linked_to_another_site_user_is_refused_and_the_grant_revoked() {
    let h = Harness::start().await;
    h.setup_client().await;
    h.put_user("u-alice", &["members"]).await;
    h.link("u-alice", "alice").await;
    let grants_before = h.emu.active_grants(&h.discord_id("alice"));

    let landed = h.link("u-mallory", "alice").await;

    assert_eq!(
        landed,
        format!("{SITE}/profile?discord=error&reason=account_already_linked")
    );
    assert_eq!(
        h.get_user("u-alice").await["link"]["discord_user_id"],
        h.discord_id("alice")
    );
    let (status, _) = h
        .api(
            Method::GET,
            &format!("/clients/{CLIENT}/users/u-mallory"),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "nothing stored for the refused user"
    );
    assert_eq!(
        h.emu.active_grants(&h.discord_id("alice")),
        grants_before,
        "the second grant was revoked"
    );
}

#[tokio::test]
async fn a_banned_user_is_sent_back_with_a_reason_and_no_link_is_kept() {
    let h = Harness::start().await;
    h.setup_client().await;
    h.emu.ban(h.emu.guild_id(), &h.discord_id("bob"));
    h.put_user("u-bob", &["members"]).await;

    let landed = h.link("u-bob", "bob").await;

    assert_eq!(
        landed,
        format!("{SITE}/profile?discord=error&reason=banned")
    );
    let user = h.get_user("u-bob").await;
    assert_eq!(
        user["link"],
        serde_json::Value::Null,
        "the reserved link was rolled back: {user}"
    );
    eprintln!(
        "{:#?}",
        h.emu
            .requests()
            .iter()
            .filter(|r| r.path.contains("oauth2"))
            .collect::<Vec<_>>()
    );
    assert_eq!(h.emu.active_grants(&h.discord_id("bob")), 0);
}

#[tokio::test]
async fn when_the_bot_sits_below_a_mapped_role_the_member_still_joins_and_the_error_is_reported() {
    // given Officer moved above the bot's role after roles were synced
    let h = Harness::start().await;
    h.setup_client().await;
    h.emu
        .set_role_position(h.emu.guild_id(), &h.role("Officer"), 15);
    h.put_user("u-bob", &["members", "officers"]).await;

    // when bob links
    let landed = h.link("u-bob", "bob").await;

    // then he is linked and joined with what the bot can grant; the rest is an admin-visible error
    assert_eq!(landed, format!("{SITE}/profile?discord=linked"));
    assert_eq!(h.roles_on_discord("bob"), Some(names(&["Member"])));
    let user = h.get_user("u-bob").await;
    assert_eq!(user["last_error"]["code"], "missing_permissions", "{user}");
    assert_eq!(user["last_error"]["discord_code"], 50013);
    assert_eq!(
        user["pending"], false,
        "a 403 is not retried every 5 minutes"
    );

    // and once roles/sync learns the hierarchy, the writer re-checks linked members and the
    // planner stops sending calls Discord would refuse
    h.emu.clear_requests();
    let (status, _) = h
        .api(Method::POST, &format!("/clients/{CLIENT}/roles/sync"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    h.settle().await;
    assert!(
        h.emu.requests().iter().all(|r| r.method == "GET"),
        "no refused writes: {:?}",
        h.emu.requests()
    );
    assert_eq!(
        h.get_user("u-bob").await["last_error"]["code"],
        "role_above_bot"
    );
    let (_, runs) = h
        .api(Method::GET, &format!("/clients/{CLIENT}/runs"), None)
        .await;
    assert!(
        runs["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["errors"][0]["code"] == "role_above_bot"),
        "{runs}"
    );
}

#[tokio::test]
async fn return_to_outside_the_allowed_origins_is_rejected_up_front() {
    let h = Harness::start().await;
    h.setup_client().await;
    let (status, body) = h
        .api(
            Method::POST,
            &format!("/clients/{CLIENT}/link-sessions"),
            Some(json!({"user_id": "u1", "return_to": "https://evil.example/steal"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["field"], "return_to");
}

#[tokio::test]
async fn without_return_to_the_member_sees_a_plain_confirmation_page() {
    let h = Harness::start().await;
    h.setup_client().await;
    let (_, body) = h
        .api(
            Method::POST,
            &format!("/clients/{CLIENT}/link-sessions"),
            Some(json!({"user_id": "u-carol"})),
        )
        .await;
    let cb = h
        .authorize(
            body["url"].as_str().unwrap(),
            Consent::Approve {
                user_id: h.discord_id("carol"),
            },
        )
        .await;
    let (status, loc, page) = h.callback(&cb).await;
    assert_eq!(status, StatusCode::OK);
    assert!(loc.is_empty());
    assert!(page.contains("carol#4321"), "{page}");
}

#[tokio::test]
async fn a_discord_outage_during_the_exchange_sends_the_member_back_with_a_reason() {
    let h = Harness::start().await;
    h.setup_client().await;
    let url = h.link_session("u-bob").await;
    let cb = h
        .authorize(
            &url,
            Consent::Approve {
                user_id: h.discord_id("bob"),
            },
        )
        .await;
    h.emu.inject_fault(Fault::new("/oauth2/token", 503, 10));

    let (status, loc, _) = h.callback(&cb).await;

    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(
        loc,
        format!("{SITE}/profile?discord=error&reason=discord_unavailable")
    );
    let (status, _) = h
        .api(Method::GET, &format!("/clients/{CLIENT}/users/u-bob"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn fixing_the_hierarchy_and_syncing_roles_heals_a_refused_role() {
    // given bob's Officer role was refused because it sat above the bot
    let h = Harness::start().await;
    h.setup_client().await;
    h.emu
        .set_role_position(h.emu.guild_id(), &h.role("Officer"), 15);
    h.put_user("u-bob", &["members", "officers"]).await;
    h.link("u-bob", "bob").await;
    h.run_task("verify-groups", false).await;
    let refused = h.emu.requests().iter().filter(|r| r.status == 403).count();

    // when an admin moves the role back below the bot and syncs roles
    h.emu
        .set_role_position(h.emu.guild_id(), &h.role("Officer"), 5);
    h.api(Method::POST, &format!("/clients/{CLIENT}/roles/sync"), None)
        .await;
    h.run_task("verify-groups", false).await;

    // then bob gets the role, and the refused call was not repeated in between
    assert_eq!(
        refused,
        2,
        "join with roles, then the per-role add: {:?}",
        h.emu.requests()
    );
    assert_eq!(
        h.roles_on_discord("bob"),
        Some(names(&["Member", "Officer"]))
    );
    assert_eq!(
        h.get_user("u-bob").await["last_error"],
        serde_json::Value::Null
    );
}

#[tokio::test]
async fn the_link_url_binds_the_flow_to_the_browser_that_opened_it() {
    let h = Harness::start().await;
    h.setup_client().await;
    h.put_user("u-alice", &["members"]).await;
    let url = h.link_session("u-alice").await;
    assert!(
        url.starts_with(&h.url("/discord/sso/callback?start=")),
        "the site sends the member to the connector first: {url}"
    );

    // the member's browser opens it: a short-lived, HttpOnly, SameSite=Lax cookie, then Discord
    let start = h.http.get(&url).send().await.unwrap();
    assert_eq!(start.status(), StatusCode::FOUND);
    let cookie = start
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(cookie.starts_with("dc_link_"), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=600"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(
        location(&start).starts_with(&h.emu.authorize_url()),
        "then on to Discord"
    );

    // and the link URL is single use
    let again = h.http.get(&url).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_callback_in_another_browser_links_nothing_and_revokes_the_grant() {
    // given the victim opened their link URL (their browser holds the cookie) …
    let h = Harness::start().await;
    h.setup_client().await;
    h.put_user("u-victim", &["members"]).await;
    let url = h.link_session("u-victim").await;
    let start = h.http.get(&url).send().await.unwrap();
    let discord_url = location(&start);

    // … when someone else gets hold of the Discord URL and approves with their own account
    h.emu.set_consent(Consent::Approve {
        user_id: h.discord_id("erin"),
    });
    let attacker = browser();
    let consent = attacker.get(&discord_url).send().await.unwrap();
    assert_eq!(consent.status(), StatusCode::FOUND);
    let answer = attacker.get(location(&consent)).send().await.unwrap();

    // then they land on the site with a reason, nothing is linked and the grant is revoked
    assert_eq!(answer.status(), StatusCode::FOUND);
    assert_eq!(
        location(&answer),
        format!("{SITE}/profile?discord=error&reason=session_mismatch")
    );
    assert_eq!(h.get_user("u-victim").await["linked"], false);
    assert_eq!(h.roles_on_discord("erin"), None);
    assert_eq!(h.emu.active_grants(&h.discord_id("erin")), 0);
}

#[tokio::test]
async fn a_newer_link_session_of_the_same_user_replaces_the_older_one() {
    let h = Harness::start().await;
    h.setup_client().await;
    let older = h.link_session("u-bob").await;
    let newer = h.link_session("u-bob").await;

    let refused = h.http.get(&older).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(refused.text().await.unwrap().contains("expired"));

    let cb = h
        .authorize(
            &newer,
            Consent::Approve {
                user_id: h.discord_id("bob"),
            },
        )
        .await;
    let (status, loc, _) = h.callback(&cb).await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(loc, format!("{SITE}/profile?discord=linked"));
}

#[tokio::test]
async fn a_return_to_longer_than_2048_bytes_is_refused() {
    let h = Harness::start().await;
    h.setup_client().await;
    let long = format!("{SITE}/{}", "a".repeat(2049 - SITE.len()));
    let (status, problem) = h
        .api(
            Method::POST,
            &format!("/clients/{CLIENT}/link-sessions"),
            Some(json!({"user_id": "ada", "return_to": long})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["field"], "return_to");
    let fits = format!("{SITE}/{}", "a".repeat(2048 - SITE.len() - 1));
    let (status, body) = h
        .api(
            Method::POST,
            &format!("/clients/{CLIENT}/link-sessions"),
            Some(json!({"user_id": "ada", "return_to": fits})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn a_malformed_state_is_refused_before_the_store_is_asked() {
    // given a connector whose link-session table is gone: any lookup there fails (500 page)
    let h = Harness::start().await;
    h.setup_client().await;
    let url = h.link_session("ada").await;
    let start = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "start")
        .map(|(_, v)| v.into_owned())
        .expect("start token in the link URL");
    let opened = h.http.get(&url).send().await.unwrap();
    let state = url::Url::parse(&location(&opened))
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("state in the authorize URL");
    rusqlite::Connection::open(&h.database)
        .unwrap()
        .execute_batch("DROP TABLE link_sessions")
        .unwrap();
    let callback = |state: &str| {
        h.url(&format!(
            "/discord/sso/callback?code=c&state={}",
            url::form_urlencoded::byte_serialize(state.as_bytes()).collect::<String>()
        ))
    };
    // a state shaped like ours does reach the store
    let (status, _, _) = h.callback(&callback(&"a".repeat(state.len()))).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    // when states we cannot have generated arrive, then the unknown-link page, store untouched
    for bad in [
        String::new(),
        "short".to_owned(),
        format!("{state}a"),
        state[1..].to_owned(),
        format!("{}!", &state[1..]),
        format!("{}é", &state[2..]),
        "a".repeat(4096),
    ] {
        let (status, _, page) = h.callback(&callback(&bad)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad:.40}: {page}");
        assert!(page.contains("expired"), "{page}");
    }
    // the same for the link URL's start token
    let opening = |token: &str| {
        h.url(&format!(
            "/discord/sso/callback?start={}",
            url::form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>()
        ))
    };
    let (status, _, _) = h.callback(&opening(&"a".repeat(start.len()))).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    for bad in [format!("{start}a"), start[1..].to_owned(), "x".repeat(4096)] {
        let (status, _, page) = h.callback(&opening(&bad)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad:.40}: {page}");
    }
}
