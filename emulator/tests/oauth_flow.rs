//! The authorization-code grant with PKCE, refresh rotation and revocation.

mod support;

use discord_emulator::Consent;
use reqwest::StatusCode;
use support::{json, location, query_value, start, REDIRECT_URI, VERIFIER};

#[tokio::test]
async fn code_with_the_right_verifier_yields_tokens_for_the_user() {
    let h = start().await;
    let alice = h.user("alice");
    let code = h
        .authorize_code(&alice, "identify guilds.join", VERIFIER)
        .await;

    let tokens = json(h.exchange(&code, VERIFIER).await).await;

    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 604800);
    assert_eq!(tokens["scope"], "identify guilds.join");
    let me = h
        .http
        .get(format!("{}/users/@me", h.emu.api_base()))
        .bearer_auth(tokens["access_token"].as_str().expect("token"))
        .send()
        .await
        .expect("me");
    assert_eq!(me.status(), 200);
    let me = json(me).await;
    assert_eq!(me["id"], alice.as_str());
    assert_eq!(me["username"], "alice");
    assert_eq!(me["discriminator"], "0");
    assert!(me.get("email").is_none(), "no email scope, no email");
    assert_eq!(h.emu.active_grants(&alice), 1);
}

#[tokio::test]
async fn wrong_verifier_is_invalid_grant() {
    let h = start().await;
    let code = h.authorize_code(&h.user("bob"), "identify", VERIFIER).await;

    let response = h
        .exchange(&code, "some-other-verifier-entirely-0123456789-abcdef")
        .await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json(response).await["error"], "invalid_grant");
}

#[tokio::test]
async fn a_code_works_once() {
    let h = start().await;
    let code = h.authorize_code(&h.user("bob"), "identify", VERIFIER).await;
    assert_eq!(h.exchange(&code, VERIFIER).await.status(), 200);

    let again = h.exchange(&code, VERIFIER).await;

    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json(again).await["error"], "invalid_grant");
}

#[tokio::test]
async fn a_code_expires_after_ten_minutes() {
    let h = start().await;
    let code = h.authorize_code(&h.user("bob"), "identify", VERIFIER).await;
    h.emu.advance_clock(601);

    let response = h.exchange(&code, VERIFIER).await;

    assert_eq!(json(response).await["error"], "invalid_grant");
}

#[tokio::test]
async fn redirect_uri_must_match_the_authorize_request() {
    let h = start().await;
    let code = h.authorize_code(&h.user("bob"), "identify", VERIFIER).await;

    let response = h
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://elsewhere.test/cb"),
            ("code_verifier", VERIFIER),
        ])
        .await;

    assert_eq!(json(response).await["error"], "invalid_grant");
}

#[tokio::test]
async fn refresh_rotates_and_kills_the_old_pair() {
    let h = start().await;
    let first = h.link("alice").await;
    let old_refresh = first["refresh_token"].as_str().expect("refresh");

    let second = h
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", old_refresh),
        ])
        .await;
    assert_eq!(second.status(), 200);
    let second = json(second).await;
    assert_ne!(second["refresh_token"], first["refresh_token"]);

    let replay = h
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", old_refresh),
        ])
        .await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json(replay).await["error"], "invalid_grant");
    let old_access = h
        .http
        .get(format!("{}/users/@me", h.emu.api_base()))
        .bearer_auth(first["access_token"].as_str().expect("access"))
        .send()
        .await
        .expect("me");
    assert_eq!(old_access.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn revoke_ends_the_whole_authorization() {
    let h = start().await;
    let tokens = h.link("carol").await;
    let carol = h.user("carol");
    assert_eq!(h.emu.active_grants(&carol), 1);

    let response = h
        .http
        .post(format!("{}/oauth2/token/revoke", h.emu.api_base()))
        .basic_auth(h.emu.application_id(), Some(h.emu.client_secret()))
        .form(&[
            ("token", tokens["access_token"].as_str().expect("access")),
            ("token_type_hint", "access_token"),
        ])
        .send()
        .await
        .expect("revoke");

    assert_eq!(response.status(), 200);
    assert_eq!(h.emu.active_grants(&carol), 0);
    let refresh = tokens["refresh_token"].as_str().expect("refresh");
    let refreshed = h
        .token(&[("grant_type", "refresh_token"), ("refresh_token", refresh)])
        .await;
    assert_eq!(json(refreshed).await["error"], "invalid_grant");
}

#[tokio::test]
async fn wrong_client_secret_is_invalid_client() {
    let h = start().await;
    let response = h
        .http
        .post(format!("{}/oauth2/token", h.emu.api_base()))
        .basic_auth(h.emu.application_id(), Some("not-the-secret"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
        .send()
        .await
        .expect("token");

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json(response).await["error"], "invalid_client");
}

#[tokio::test]
async fn json_token_requests_are_rejected() {
    let h = start().await;
    let response = h
        .http
        .post(format!("{}/oauth2/token", h.emu.api_base()))
        .json(&serde_json::json!({"grant_type": "refresh_token", "client_id": h.emu.application_id()}))
        .send()
        .await
        .expect("token");

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn denied_consent_comes_back_with_access_denied_and_state() {
    let h = start().await;
    h.emu.set_consent(Consent::Deny);

    let response = h
        .http
        .get(h.emu.authorize_url())
        .query(&[
            ("response_type", "code"),
            ("client_id", h.emu.application_id()),
            ("scope", "identify"),
            ("state", "s1"),
            ("redirect_uri", REDIRECT_URI),
        ])
        .send()
        .await
        .expect("authorize");

    assert_eq!(response.status(), StatusCode::FOUND);
    let back = location(&response);
    assert_eq!(
        query_value(&back, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(query_value(&back, "state").as_deref(), Some("s1"));
}

#[tokio::test]
async fn consent_page_posts_back_a_code() {
    let h = start().await;
    let params = [
        ("response_type", "code"),
        ("client_id", h.emu.application_id()),
        ("scope", "identify"),
        ("state", "s2"),
        ("redirect_uri", REDIRECT_URI),
    ];
    let page = h
        .http
        .get(h.emu.authorize_url())
        .query(&params)
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), 200);
    assert!(page
        .text()
        .await
        .expect("html")
        .contains("wants to access your account"));

    let alice = h.user("alice");
    let mut form: Vec<(&str, &str)> = params.to_vec();
    form.extend([("user_id", alice.as_str()), ("action", "authorize")]);
    let response = h
        .http
        .post(h.emu.authorize_url())
        .form(&form)
        .send()
        .await
        .expect("post");

    assert_eq!(response.status(), StatusCode::FOUND);
    let back = location(&response);
    assert!(query_value(&back, "code").is_some());
    assert_eq!(query_value(&back, "state").as_deref(), Some("s2"));
}

#[tokio::test]
async fn unknown_client_id_gets_an_error_page() {
    let h = start().await;
    let response = h
        .http
        .get(h.emu.authorize_url())
        .query(&[
            ("response_type", "code"),
            ("client_id", "1"),
            ("scope", "identify"),
            ("redirect_uri", REDIRECT_URI),
        ])
        .send()
        .await
        .expect("authorize");

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}
