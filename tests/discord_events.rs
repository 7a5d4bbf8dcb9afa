//! Discord's Webhook Events (`POST /discord/events`): only requests signed with the client's
//! public key, within 5 minutes, are heard; a member who removes the application on Discord is
//! unlinked with reason `revoked` by the guild's writer, once however often Discord delivers it.

use std::time::Duration;

use connector_e2e::discord_emulator::{Consent, Scenario};
use connector_e2e::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// RFC 8032's second test key: a valid Ed25519 public key that is not the emulator's.
const OTHER_KEY: &str = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";

/// The test client with the application's public key, and the emulator sending its events to
/// the connector.
async fn start() -> Harness {
    let h = Harness::start().await;
    h.setup_client().await;
    set_public_key(&h, CLIENT, json!(h.emu.public_key())).await;
    h.emu.set_events_url(&h.url("/discord/events"));
    h
}

async fn set_public_key(h: &Harness, client: &str, key: Value) {
    let (status, body) = h
        .api(
            Method::PATCH,
            &format!("/clients/{client}"),
            Some(json!({"public_key": key})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// The connector's clock (the harness holds it still; tests move it).
fn now(h: &Harness) -> i64 {
    use connector::clock::Clock;
    h.clock.now()
}

fn deauthorized(h: &Harness, discord_user: &str) -> Vec<u8> {
    event(h, "APPLICATION_DEAUTHORIZED", discord_user)
}

fn event(h: &Harness, kind: &str, discord_user: &str) -> Vec<u8> {
    json!({
        "version": 1,
        "application_id": h.emu.application_id(),
        "type": 1,
        "event": {
            "type": kind,
            "timestamp": "2026-11-30T08:00:00.000000+00:00",
            "data": {"user": {"id": h.discord_id(discord_user), "username": discord_user}},
        },
    })
    .to_string()
    .into_bytes()
}

/// A POST as Discord makes it; `signature` `None` leaves the header out.
async fn post(
    h: &Harness,
    body: Vec<u8>,
    timestamp: Option<String>,
    signature: Option<String>,
) -> (StatusCode, String, String) {
    let mut request = h
        .http
        .post(h.url("/discord/events"))
        .header("content-type", "application/json")
        .body(body);
    if let Some(t) = timestamp {
        request = request.header("x-signature-timestamp", t);
    }
    if let Some(s) = signature {
        request = request.header("x-signature-ed25519", s);
    }
    let response = request.send().await.expect("sent");
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

/// Signed by the application's key at `timestamp`.
async fn post_signed_at(
    h: &Harness,
    body: Vec<u8>,
    timestamp: i64,
) -> (StatusCode, String, String) {
    let timestamp = timestamp.to_string();
    let signature = h.emu.sign_event(&timestamp, &body);
    post(h, body, Some(timestamp), Some(signature)).await
}

async fn audit(h: &Harness) -> Vec<Value> {
    let (status, audit) = h
        .api(Method::GET, &format!("/clients/{CLIENT}/audit"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    audit["items"].as_array().unwrap().clone()
}

fn assert_refused(response: &(StatusCode, String, String)) {
    assert_eq!(response.0, StatusCode::UNAUTHORIZED, "{}", response.2);
    assert!(
        response.1.starts_with("application/problem+json"),
        "{}",
        response.1
    );
    let problem: Value = serde_json::from_str(&response.2).unwrap();
    assert_eq!(problem["status"], 401);
    assert_eq!(
        problem["type"],
        "urn:discord-connector:problem:invalid-signature"
    );
}

/// alice linked as `u-alice` with Member and Pilot.
async fn linked_alice(h: &Harness) {
    h.put_user("u-alice", &["members", "pilots"]).await;
    h.link("u-alice", "alice").await;
    assert!(h.settle().await);
    assert_eq!(
        h.roles_on_discord("alice"),
        Some(names(&["Member", "Pilot"]))
    );
}

/// alice is still linked and keeps her roles; the audit trail is as long as before.
async fn assert_nothing_changed(h: &Harness, audit_len: usize) {
    assert!(h.settle().await);
    let user = h.get_user("u-alice").await;
    assert_eq!(user["linked"], true, "{user}");
    assert_eq!(user["link"]["status"], "active", "{user}");
    assert_eq!(
        h.roles_on_discord("alice"),
        Some(names(&["Member", "Pilot"]))
    );
    assert_eq!(audit(h).await.len(), audit_len);
}

#[tokio::test]
async fn a_ping_is_answered_204_without_a_body() {
    let h = start().await;

    let delivery = h.emu.send_ping().await.expect("sent");
    assert_eq!(delivery.status, Some(204));

    let ping = json!({"version": 1, "application_id": h.emu.application_id(), "type": 0});
    let (status, _, body) = post_signed_at(&h, ping.to_string().into_bytes(), now(&h)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(body, "");
}

#[tokio::test]
async fn the_sso_callback_function_serves_the_events_endpoint_too() {
    // On AWS the sso-callback function (sso_router) is the public one that receives events.
    let h = start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/discord/events", listener.local_addr().unwrap());
    let router = connector::http::sso_router(h.app.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    h.emu.set_events_url(&url);

    assert_eq!(h.emu.send_ping().await.expect("sent").status, Some(204));
    let unsigned = h
        .emu
        .send_raw_event(b"{}".to_vec(), None, Some(None))
        .await
        .expect("sent");
    assert_eq!(unsigned.status, Some(401));
}

#[tokio::test]
async fn a_validly_signed_application_authorized_event_is_audited_for_the_application() {
    let h = start().await;
    let before = audit(&h).await.len();

    let (status, _, body) =
        post_signed_at(&h, event(&h, "APPLICATION_AUTHORIZED", "bob"), now(&h)).await;

    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let entries = audit(&h).await;
    assert_eq!(entries.len(), before + 1);
    assert_eq!(entries[0]["action"], "app.authorized");
    assert_eq!(entries[0]["actor"], "discord");
    assert_eq!(entries[0]["discord_user_id"], h.discord_id("bob"));
    assert_eq!(
        entries[0]["user_id"],
        Value::Null,
        "bob is linked to nobody"
    );

    // a linked account's entry names the site user
    linked_alice(&h).await;
    let (status, _, _) =
        post_signed_at(&h, event(&h, "APPLICATION_AUTHORIZED", "alice"), now(&h)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let entries = audit(&h).await;
    assert_eq!(entries[0]["action"], "app.authorized");
    assert_eq!(entries[0]["user_id"], "u-alice");
}

#[tokio::test]
async fn a_body_delivered_twice_is_handled_once() {
    // Discord retries a delivery it thinks failed: the same body, signed anew.
    let h = start().await;
    let before = audit(&h).await.len();
    let body = event(&h, "APPLICATION_AUTHORIZED", "bob");

    let first = post_signed_at(&h, body.clone(), now(&h)).await;
    let retry = post_signed_at(&h, body, now(&h) + 1).await;

    assert_eq!(first.0, StatusCode::NO_CONTENT);
    assert_eq!(retry.0, StatusCode::NO_CONTENT);
    assert_eq!(audit(&h).await.len(), before + 1);
    // another event (another timestamp in the body) is new
    let mut other: Value =
        serde_json::from_slice(&event(&h, "APPLICATION_AUTHORIZED", "bob")).unwrap();
    other["event"]["timestamp"] = json!("2026-11-30T09:00:00.000000+00:00");
    let third = post_signed_at(&h, other.to_string().into_bytes(), now(&h)).await;
    assert_eq!(third.0, StatusCode::NO_CONTENT);
    assert_eq!(audit(&h).await.len(), before + 2);
}

#[tokio::test]
async fn an_event_type_we_do_not_handle_is_answered_204_and_recorded_nowhere() {
    let h = start().await;
    let before = audit(&h).await.len();

    let (status, _, _) = post_signed_at(&h, event(&h, "ENTITLEMENT_CREATE", "bob"), now(&h)).await;

    assert_eq!(status, StatusCode::NO_CONTENT);
    // whatever shape its data has
    let mut odd: Value =
        serde_json::from_slice(&event(&h, "QUEST_USER_ENROLLMENT", "bob")).unwrap();
    odd["event"]["data"] = json!(["not", "an", "object"]);
    let (status, _, body) = post_signed_at(&h, odd.to_string().into_bytes(), now(&h)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(audit(&h).await.len(), before);
}

#[tokio::test]
async fn bad_missing_or_foreign_signatures_are_refused_and_change_nothing() {
    // given alice is linked
    let h = start().await;
    linked_alice(&h).await;
    let before = audit(&h).await.len();
    let body = deauthorized(&h, "alice");
    let t = now(&h).to_string();
    let good = h.emu.sign_event(&t, &body);

    // a flipped bit in the signature
    let mut bad = good.clone().into_bytes();
    bad[10] = if bad[10] == b'0' { b'1' } else { b'0' };
    let bad = String::from_utf8(bad).unwrap();
    assert_refused(&post(&h, body.clone(), Some(t.clone()), Some(bad)).await);
    // not hex, or too short
    assert_refused(&post(&h, body.clone(), Some(t.clone()), Some("zz".repeat(64))).await);
    assert_refused(
        &post(
            &h,
            body.clone(),
            Some(t.clone()),
            Some(good[..64].to_owned()),
        )
        .await,
    );
    // a header missing
    assert_refused(&post(&h, body.clone(), None, Some(good.clone())).await);
    assert_refused(&post(&h, body.clone(), Some(t.clone()), None).await);
    // signed for another timestamp
    assert_refused(
        &post(
            &h,
            body.clone(),
            Some((now(&h) - 1).to_string()),
            Some(good.clone()),
        )
        .await,
    );
    // a timestamp that is not a number
    let odd = "soon".to_owned();
    let odd_sig = h.emu.sign_event(&odd, &body);
    assert_refused(&post(&h, body.clone(), Some(odd), Some(odd_sig)).await);

    // then nothing happened
    assert_nothing_changed(&h, before).await;

    // and the same request goes through once it is correct
    let (status, _, _) = post(&h, body, Some(t), Some(good)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(h.settle().await);
    assert_eq!(h.get_user("u-alice").await["linked"], false);
}

#[tokio::test]
async fn a_signature_by_another_key_or_for_an_unknown_application_is_refused() {
    let h = start().await;
    linked_alice(&h).await;
    let before = audit(&h).await.len();

    // the client holds another application's key
    set_public_key(&h, CLIENT, json!(OTHER_KEY)).await;
    assert_refused(&post_signed_at(&h, deauthorized(&h, "alice"), now(&h)).await);
    // the client holds no key at all
    set_public_key(&h, CLIENT, Value::Null).await;
    assert_refused(&post_signed_at(&h, deauthorized(&h, "alice"), now(&h)).await);
    set_public_key(&h, CLIENT, json!(h.emu.public_key())).await;
    // an application no client belongs to (signed with the right key all the same)
    let mut unknown: Value = serde_json::from_slice(&deauthorized(&h, "alice")).unwrap();
    unknown["application_id"] = json!("999999999999999999");
    assert_refused(&post_signed_at(&h, unknown.to_string().into_bytes(), now(&h)).await);
    // not JSON at all
    assert_refused(&post_signed_at(&h, b"not json".to_vec(), now(&h)).await);

    // the three PATCHes of the key are audited as client updates; nothing else happened
    let updates = 3;
    assert_nothing_changed(&h, before + updates).await;
}

#[tokio::test]
async fn old_future_tampered_and_replayed_requests_are_refused() {
    let h = start().await;
    linked_alice(&h).await;
    let before = audit(&h).await.len();
    let body = deauthorized(&h, "alice");

    // signed more than 5 minutes ago, or more than 5 minutes ahead
    assert_refused(&post_signed_at(&h, body.clone(), now(&h) - 301).await);
    assert_refused(&post_signed_at(&h, body.clone(), now(&h) + 301).await);

    // a valid signature of another body (Bob's deauthorization) on Alice's
    let t = now(&h).to_string();
    let bobs = h.emu.sign_event(&t, &deauthorized(&h, "bob"));
    assert_refused(&post(&h, body.clone(), Some(t.clone()), Some(bobs)).await);
    // one byte appended to a signed body
    let mut longer = body.clone();
    longer.push(b' ');
    let sig = h.emu.sign_event(&t, &body);
    assert_refused(&post(&h, longer, Some(t.clone()), Some(sig.clone())).await);

    // a captured valid request, replayed 6 minutes later
    let captured = (body.clone(), t.clone(), sig.clone());
    h.clock.advance(6 * 60);
    assert_refused(&post(&h, captured.0, Some(captured.1), Some(captured.2)).await);
    h.clock.advance(-6 * 60);

    assert_nothing_changed(&h, before).await;
}

#[tokio::test]
async fn a_body_past_64_kib_is_refused_before_anything_else() {
    let h = start().await;
    let mut body = deauthorized(&h, "alice");
    body.extend(vec![b' '; 64 * 1024]);

    let (status, content_type, _) = post_signed_at(&h, body, now(&h)).await;

    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(content_type.starts_with("application/problem+json"));
}

#[tokio::test]
async fn a_member_who_deauthorizes_the_app_is_unlinked_by_the_guild_writer_after_the_answer() {
    // given alice is linked with managed roles, and Discord answers slowly
    let h = start().await;
    linked_alice(&h).await;
    let alice = h.discord_id("alice");
    h.emu.set_latency(Duration::from_millis(700));
    h.emu.clear_requests();

    // when she removes the application in Discord
    let delivery = h.emu.deauthorize(&alice).await.expect("sent");

    // then Discord got its 204 before the writer touched her roles
    assert_eq!(delivery.status, Some(204), "{delivery:?}");
    assert_eq!(
        h.roles_on_discord("alice"),
        Some(names(&["Member", "Pilot"]))
    );
    let user = h.get_user("u-alice").await;
    assert_eq!(user["linked"], false, "{user}");
    assert_eq!(user["unlinking"][0]["reason"], "revoked", "{user}");
    assert_eq!(user["unlinking"][0]["policy"], "remove_roles", "{user}");

    // and the guild's writer takes the managed roles; she stays in the guild
    assert!(h.settle().await);
    assert_eq!(h.roles_on_discord("alice"), Some(names(&[])));
    let user = h.get_user("u-alice").await;
    assert_eq!(user["pending"], false, "{user}");
    assert_eq!(user["unlinking"], json!([]), "{user}");
    // her grant is already gone: no revocation is sent for it
    assert!(!h
        .emu
        .requests()
        .iter()
        .any(|r| r.path.contains("/oauth2/token/revoke")));
    // audited as a revocation by Discord, and the removals as the writer's
    let entries = audit(&h).await;
    let revoked = entries
        .iter()
        .find(|e| e["action"] == "link.revoked")
        .expect("link.revoked audited");
    assert_eq!(revoked["actor"], "discord");
    assert_eq!(revoked["user_id"], "u-alice");
    assert_eq!(revoked["discord_user_id"], alice);
    assert_eq!(revoked["detail"]["reason"], "revoked");
    assert_eq!(
        entries
            .iter()
            .filter(|e| e["action"] == "role.remove" && e["discord_user_id"] == alice)
            .count(),
        2
    );
    // and the account is free to link again
    h.emu.set_latency(Duration::ZERO);
    assert_eq!(
        h.link("u-alice", "alice").await,
        format!("{SITE}/profile?discord=linked")
    );
}

#[tokio::test]
async fn with_the_kick_policy_a_deauthorized_member_is_kicked() {
    let h = start().await;
    let (status, body) = h
        .api(
            Method::PATCH,
            &format!("/clients/{CLIENT}"),
            Some(json!({"unlink_policy": "kick"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    linked_alice(&h).await;

    h.emu
        .deauthorize(&h.discord_id("alice"))
        .await
        .expect("sent");

    assert!(h.settle().await);
    assert_eq!(h.roles_on_discord("alice"), None, "kicked");
    assert!(audit(&h)
        .await
        .iter()
        .any(|e| e["action"] == "member.kick" && e["user_id"] == "u-alice"));
}

#[tokio::test]
async fn the_same_deauthorization_delivered_again_does_nothing_more() {
    let h = start().await;
    linked_alice(&h).await;
    h.emu
        .deauthorize(&h.discord_id("alice"))
        .await
        .expect("sent");
    assert!(h.settle().await);
    let after_first = audit(&h).await.len();
    let discord_requests = h.emu.requests().len();

    // Discord retries the same body (signed anew), and later sends another event for her
    let first = h.emu.event_deliveries()[0].body.clone().into_bytes();
    let retry = h.emu.send_raw_event(first, None, None).await.expect("sent");
    let later = h
        .emu
        .send_event(
            "APPLICATION_DEAUTHORIZED",
            json!({"user": {"id": h.discord_id("alice")}}),
        )
        .await
        .expect("sent");

    assert_eq!(retry.status, Some(204));
    assert_eq!(later.status, Some(204));
    assert!(h.settle().await);
    assert_eq!(audit(&h).await.len(), after_first);
    assert_eq!(h.emu.requests().len(), discord_requests, "no Discord call");
}

/// A second guild beside the demo's (same roles, ids of its own), for a second client of the
/// same application: one client per guild.
const SECOND_GUILD: &str = "200000000000000009";

fn with_second_guild() -> Scenario {
    let mut scenario = Scenario::demo();
    let mut guild = scenario.guilds[0].clone();
    let first = guild.id.clone();
    let id = |id: &String| {
        if *id == first {
            SECOND_GUILD.to_owned()
        } else {
            id.replacen("21", "22", 1)
        }
    };
    guild.id = SECOND_GUILD.to_owned();
    guild.name = "Second Guild".to_owned();
    for role in &mut guild.roles {
        role.id = id(&role.id);
    }
    for member in &mut guild.members {
        member.roles = member.roles.iter().map(id).collect();
    }
    scenario.guilds.push(guild);
    scenario
}

#[tokio::test]
async fn an_account_linked_on_two_clients_of_the_application_is_revoked_on_both() {
    // given a second client of the same application on a second guild, and alice linked on both
    let h = Harness::start_with(Options {
        scenario: with_second_guild(),
        ..Options::default()
    })
    .await;
    h.setup_client().await;
    set_public_key(&h, CLIENT, json!(h.emu.public_key())).await;
    h.emu.set_events_url(&h.url("/discord/events"));
    let mut second = h.client_body();
    second["id"] = json!("second");
    second["name"] = json!("Second");
    second["guild_id"] = json!(SECOND_GUILD);
    second["public_key"] = json!(h.emu.public_key());
    let (status, body) = h.api(Method::POST, "/clients", Some(second)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let second_member_role = h.role("Member").replacen("21", "22", 1);
    let (status, body) = h
        .api(
            Method::PUT,
            &format!("/clients/second/roles/{second_member_role}"),
            Some(json!({"groups": ["members"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    linked_alice(&h).await;
    let (status, body) = h
        .api(
            Method::PUT,
            "/clients/second/users/s-alice",
            Some(json!({"groups": ["members"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = h
        .api(
            Method::POST,
            "/clients/second/link-sessions",
            Some(json!({"user_id": "s-alice", "return_to": format!("{SITE}/profile")})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let callback = h
        .authorize(
            body["url"].as_str().unwrap(),
            Consent::Approve {
                user_id: h.discord_id("alice"),
            },
        )
        .await;
    assert_eq!(h.callback(&callback).await.0, StatusCode::FOUND);
    assert!(h.settle().await);
    let alice = h.discord_id("alice");
    let on_second = |h: &Harness| h.emu.member(SECOND_GUILD, &alice).map(|m| m.roles);
    assert_eq!(on_second(&h), Some(names(&[&second_member_role])));

    // when she deauthorizes the application
    h.emu.deauthorize(&alice).await.expect("sent");

    // then both links are gone, each audited on its client, the roles taken in both guilds
    assert!(h.settle().await);
    assert_eq!(h.get_user("u-alice").await["linked"], false);
    let (_, second_user) = h
        .api(Method::GET, "/clients/second/users/s-alice", None)
        .await;
    assert_eq!(second_user["linked"], false, "{second_user}");
    let (_, second_audit) = h.api(Method::GET, "/clients/second/audit", None).await;
    assert!(second_audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "link.revoked" && e["user_id"] == "s-alice"));
    assert!(audit(&h)
        .await
        .iter()
        .any(|e| e["action"] == "link.revoked" && e["user_id"] == "u-alice"));
    assert_eq!(h.roles_on_discord("alice"), Some(names(&[])));
    assert_eq!(on_second(&h), Some(names(&[])));
}

#[tokio::test]
async fn a_deauthorization_of_an_account_nobody_linked_does_nothing() {
    let h = start().await;
    linked_alice(&h).await;
    let before = audit(&h).await.len();
    let requests = h.emu.requests().len();

    let (status, _, _) = post_signed_at(&h, deauthorized(&h, "bob"), now(&h)).await;

    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_nothing_changed(&h, before).await;
    assert_eq!(h.emu.requests().len(), requests);
}

#[tokio::test]
async fn the_public_key_is_validated_shown_and_removable() {
    let h = Harness::start().await;
    h.setup_client().await;

    for bad in ["abc", &"g".repeat(64), &"0".repeat(62)] {
        let (status, body) = h
            .api(
                Method::PATCH,
                &format!("/clients/{CLIENT}"),
                Some(json!({"public_key": bad})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        assert_eq!(body["field"], "public_key", "{body}");
    }
    let mut create = h.client_body();
    create["id"] = json!("other");
    create["public_key"] = json!("not a key");
    let (status, body) = h.api(Method::POST, "/clients", Some(create)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["field"], "public_key");

    // stored in one spelling (lowercase), shown as it is (it is not a secret)
    set_public_key(&h, CLIENT, json!(OTHER_KEY.to_uppercase())).await;
    let (_, client) = h
        .api(Method::GET, &format!("/clients/{CLIENT}"), None)
        .await;
    assert_eq!(client["public_key"], OTHER_KEY);
    // a PATCH without it keeps it; null removes it
    let (_, client) = h
        .api(
            Method::PATCH,
            &format!("/clients/{CLIENT}"),
            Some(json!({"name": "Renamed"})),
        )
        .await;
    assert_eq!(client["public_key"], OTHER_KEY);
    set_public_key(&h, CLIENT, Value::Null).await;
    let (_, client) = h
        .api(Method::GET, &format!("/clients/{CLIENT}"), None)
        .await;
    assert_eq!(client["public_key"], Value::Null);
}

#[tokio::test]
async fn the_console_sets_the_public_key_in_the_client_settings() {
    use connector_e2e::console_http::{hidden, page, signed_in};
    let h = Harness::start().await;
    h.setup_client().await;
    let b = signed_in(&h, &h.admin_token).await;

    // the guided setup asks for it beside the application id
    let (_, _, new_page) = page(&h, &b, "/admin/clients/new").await;
    assert!(new_page.contains("name=\"public_key\""), "{new_page}");
    assert!(new_page.contains("Public Key"));

    let (_, _, overview) = page(&h, &b, &format!("/admin/clients/{CLIENT}")).await;
    assert!(overview.contains("name=\"public_key\""), "{overview}");
    let csrf = hidden(&overview, "csrf");
    let settings = |key: &str| {
        vec![
            ("csrf", csrf.clone()),
            ("name", "Test guild".to_owned()),
            ("guild_id", h.emu.guild_id().to_owned()),
            ("client_id", h.emu.application_id().to_owned()),
            ("callback_url", h.url("/discord/sso/callback")),
            ("unlink_policy", "remove_roles".to_owned()),
            ("source_of_truth", "site".to_owned()),
            ("return_to_origins", SITE.to_owned()),
            ("discord_api_base", h.emu.api_base()),
            ("discord_authorize_url", h.emu.authorize_url()),
            ("public_key", key.to_owned()),
        ]
    };
    let path = h.url(&format!("/admin/clients/{CLIENT}/settings"));

    // a key that is not one is refused at the field, nothing saved
    let refused = b.post(&path).form(&settings("abc")).send().await.unwrap();
    let refused = refused.text().await.unwrap();
    assert!(refused.contains("id=\"f-public_key-error\""), "{refused}");
    let (_, client) = h
        .api(Method::GET, &format!("/clients/{CLIENT}"), None)
        .await;
    assert_eq!(client["public_key"], Value::Null);

    // the emulator's key is saved, and shown again
    let saved = b
        .post(&path)
        .form(&settings(&h.emu.public_key()))
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let (_, client) = h
        .api(Method::GET, &format!("/clients/{CLIENT}"), None)
        .await;
    assert_eq!(client["public_key"], h.emu.public_key());
    let (_, _, overview) = page(&h, &b, &format!("/admin/clients/{CLIENT}")).await;
    assert!(overview.contains(&h.emu.public_key()));

    // an emptied field removes it
    let cleared = b.post(&path).form(&settings("")).send().await.unwrap();
    assert_eq!(cleared.status(), StatusCode::SEE_OTHER);
    let (_, client) = h
        .api(Method::GET, &format!("/clients/{CLIENT}"), None)
        .await;
    assert_eq!(client["public_key"], Value::Null);
}

#[tokio::test]
async fn a_signed_deauthorization_without_a_user_is_refused_naming_the_field() {
    let h = start().await;
    let mut body: Value = serde_json::from_slice(&deauthorized(&h, "alice")).unwrap();
    body["event"]["data"] = json!({});

    let (status, content_type, problem) =
        post_signed_at(&h, body.to_string().into_bytes(), now(&h)).await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(content_type.starts_with("application/problem+json"));
    let problem: Value = serde_json::from_str(&problem).unwrap();
    assert_eq!(problem["field"], "event.data.user.id");
}
