//! Injected faults, bot authentication and what the request log keeps.

mod support;

use discord_emulator::{AuthorizationKind, Fault};
use reqwest::{Method, StatusCode};
use support::{json, start};

#[tokio::test]
async fn an_injected_fault_answers_the_next_matching_requests_only() {
    let h = start().await;
    h.emu
        .inject_fault(Fault::new("/roles", 502, 2).with_method("GET"));
    let path = format!("/guilds/{}/roles", h.guild());

    for _ in 0..2 {
        assert_eq!(
            h.bot(Method::GET, &path)
                .send()
                .await
                .expect("roles")
                .status(),
            StatusCode::BAD_GATEWAY
        );
    }

    assert_eq!(
        h.bot(Method::GET, &path)
            .send()
            .await
            .expect("roles")
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_fault_can_carry_a_discord_error_code() {
    let h = start().await;
    h.emu
        .inject_fault(Fault::new("/members/", 403, 1).with_code(50013, "Missing Permissions"));

    let response = h
        .bot(
            Method::GET,
            &format!("/guilds/{}/members/{}", h.guild(), h.user("dave")),
        )
        .send()
        .await
        .expect("get");

    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(json(response).await["code"], 50013);
}

#[tokio::test]
async fn a_wrong_bot_token_is_unauthorized() {
    let h = start().await;

    let response = h
        .http
        .get(format!("{}/guilds/{}", h.emu.api_base(), h.guild()))
        .header("Authorization", "Bot not-the-token")
        .send()
        .await
        .expect("get");

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body = json(response).await;
    assert_eq!(body["code"], 0);
    assert_eq!(body["message"], "401: Unauthorized");
}

#[tokio::test]
async fn the_request_log_records_kinds_and_reasons_but_no_secrets() {
    let h = start().await;
    let tokens = h.link("alice").await;
    let (guild, alice) = (h.guild(), h.user("alice"));
    h.emu.add_member(&guild, &alice, None, []);
    h.bot(Method::PATCH, &format!("/guilds/{guild}/members/{alice}"))
        .header("X-Audit-Log-Reason", "Sync%20from%20website")
        .json(&serde_json::json!({ "nick": "Ali" }))
        .send()
        .await
        .expect("patch");

    let log = h.emu.requests();

    let patch = log
        .iter()
        .find(|r| r.method == "PATCH")
        .expect("patch logged");
    assert_eq!(patch.authorization_kind, AuthorizationKind::Bot);
    assert_eq!(patch.audit_reason.as_deref(), Some("Sync from website"));
    assert_eq!(patch.status, 200);
    assert!(patch
        .user_agent
        .as_deref()
        .is_some_and(|ua| ua.starts_with("DiscordBot")));
    let dump = serde_json::to_string(&log).expect("serializable");
    for secret in [
        tokens["access_token"].as_str(),
        tokens["refresh_token"].as_str(),
        Some(h.emu.bot_token()),
    ] {
        assert!(
            !dump.contains(secret.expect("string")),
            "a secret leaked into the log"
        );
    }
    assert!(!dump.contains("state=xyz"), "OAuth state is redacted");
}

#[tokio::test]
async fn the_control_api_changes_roles_out_of_band() {
    let h = start().await;
    let (guild, bob, pilot) = (h.guild(), h.user("bob"), h.role("Pilot"));
    h.emu.add_member(&guild, &bob, None, []);

    let response = h
        .http
        .put(format!(
            "{}/_emulator/guilds/{guild}/members/{bob}/roles",
            h.emu.base_url()
        ))
        .json(&serde_json::json!({ "roles": [pilot] }))
        .send()
        .await
        .expect("control");

    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(h
        .emu
        .member(&guild, &bob)
        .expect("member")
        .roles
        .contains(&pilot));
    let state = json(
        h.http
            .get(format!("{}/_emulator/state", h.emu.base_url()))
            .send()
            .await
            .expect("state"),
    )
    .await;
    assert!(!state.to_string().contains(h.emu.bot_token()));
    assert!(!state.to_string().contains(h.emu.client_secret()));
}
