//! Webhook Events: what the emulator POSTs to the events URL, signed as Discord signs them.

mod support;

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use ed25519_dalek::{Signature, VerifyingKey};
use serde_json::Value;
use support::start;

/// One request the receiver got: its headers and body.
#[derive(Clone, Debug)]
struct Received {
    timestamp: String,
    signature: String,
    body: Vec<u8>,
}

type Inbox = Arc<Mutex<Vec<Received>>>;

/// A stand-in events endpoint on an ephemeral port that keeps what it gets and answers 204.
async fn receiver() -> (String, Inbox) {
    async fn keep(State(inbox): State<Inbox>, headers: HeaderMap, body: Bytes) -> StatusCode {
        let header = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        inbox.lock().unwrap().push(Received {
            timestamp: header("x-signature-timestamp"),
            signature: header("x-signature-ed25519"),
            body: body.to_vec(),
        });
        StatusCode::NO_CONTENT
    }
    let inbox = Inbox::default();
    let app = Router::new()
        .route("/discord/events", post(keep))
        .with_state(inbox.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/discord/events", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, inbox)
}

/// Verifies as a connector does: the public key the emulator shows, over timestamp + body.
fn verifies(public_key: &str, r: &Received) -> bool {
    let key: [u8; 32] = hex(public_key).try_into().unwrap();
    let Ok(signature) = <[u8; 64]>::try_from(hex(&r.signature)) else {
        return false;
    };
    let mut message = r.timestamp.as_bytes().to_vec();
    message.extend_from_slice(&r.body);
    VerifyingKey::from_bytes(&key)
        .unwrap()
        .verify_strict(&message, &Signature::from_bytes(&signature))
        .is_ok()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

#[tokio::test]
async fn deauthorizing_in_the_emulator_posts_a_signed_application_deauthorized_event() {
    // Given a user who authorized the application, and an events URL.
    let h = start().await;
    let (url, inbox) = receiver().await;
    h.emu.set_events_url(&url);
    h.link("alice").await;
    let alice = h.user("alice");
    assert_eq!(h.emu.active_grants(&alice), 1);

    // When the user removes the application (the dashboard's Deauthorize button).
    let response = h
        .http
        .post(format!(
            "{}/_emulator/users/{alice}/deauthorize",
            h.emu.base_url()
        ))
        .send()
        .await
        .unwrap();

    // Then their grants are gone and one signed event in Discord's shape reached the URL.
    assert_eq!(response.status(), 200);
    let delivery: Value = response.json().await.unwrap();
    assert_eq!(delivery["status"], 204);
    assert_eq!(h.emu.active_grants(&alice), 0);
    let received = inbox.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    assert!(verifies(&h.emu.public_key(), &received[0]));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let signed_at: i64 = received[0].timestamp.parse().unwrap();
    assert!((now - signed_at).abs() <= 5, "signed now");
    let body: Value = serde_json::from_slice(&received[0].body).unwrap();
    assert_eq!(body["version"], 1);
    assert_eq!(body["type"], 1);
    assert_eq!(body["application_id"], h.emu.application_id());
    assert_eq!(body["event"]["type"], "APPLICATION_DEAUTHORIZED");
    assert_eq!(body["event"]["data"]["user"]["id"], alice.as_str());
    assert_eq!(body["event"]["data"]["user"]["username"], "alice");
    assert!(body["event"]["timestamp"].as_str().unwrap().contains('T'));

    // And a second removal finds nothing authorized: nothing more is sent.
    let again = h
        .http
        .post(format!(
            "{}/_emulator/users/{alice}/deauthorize",
            h.emu.base_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
    assert_eq!(inbox.lock().unwrap().len(), 1);
    assert_eq!(h.emu.event_deliveries().len(), 1);
}

#[tokio::test]
async fn revoking_grants_sends_the_event_in_the_background_only_with_an_events_url() {
    let h = start().await;
    let (url, inbox) = receiver().await;
    h.link("alice").await;
    h.link("bob").await;

    // Without an events URL, revoking sends nothing.
    h.emu.revoke_user_grants(&h.user("alice"));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(h.emu.event_deliveries().is_empty());

    h.emu.set_events_url(&url);
    h.emu.revoke_user_grants(&h.user("bob"));
    for _ in 0..50 {
        if !inbox.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let received = inbox.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    assert!(verifies(&h.emu.public_key(), &received[0]));
    let body: Value = serde_json::from_slice(&received[0].body).unwrap();
    assert_eq!(body["event"]["data"]["user"]["id"], h.user("bob").as_str());
}

#[tokio::test]
async fn a_ping_is_signed_and_a_raw_event_carries_what_the_test_chose() {
    let h = start().await;
    let (url, inbox) = receiver().await;
    assert!(h.emu.send_ping().await.is_none(), "no URL, nothing sent");
    h.emu.set_events_url(&url);

    let ping = h.emu.send_ping().await.expect("sent");
    assert_eq!(ping.status, Some(204));
    let raw = h
        .emu
        .send_raw_event(b"{}".to_vec(), Some("12".into()), Some(Some("00".into())))
        .await
        .expect("sent");
    assert_eq!(raw.kind, "RAW");

    let received = inbox.lock().unwrap().clone();
    assert!(verifies(&h.emu.public_key(), &received[0]));
    let body: Value = serde_json::from_slice(&received[0].body).unwrap();
    assert_eq!(body["type"], 0);
    assert_eq!(body["application_id"], h.emu.application_id());
    assert_eq!(received[1].timestamp, "12");
    assert_eq!(received[1].signature, "00");
    assert!(!verifies(&h.emu.public_key(), &received[1]));
}

#[tokio::test]
async fn the_public_key_survives_a_restart_of_the_same_scenario() {
    let a = start().await;
    let b = start().await;
    assert_eq!(a.emu.public_key(), b.emu.public_key());
    assert_eq!(a.emu.public_key().len(), 64);
}

#[tokio::test]
async fn the_dashboard_lists_authorized_users_with_a_deauthorize_button_that_sends_the_event() {
    let h = start().await;
    let (url, inbox) = receiver().await;
    h.emu.set_events_url(&url);
    h.link("alice").await;
    let alice = h.user("alice");

    let page = h
        .http
        .get(format!("{}/", h.emu.base_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let action = format!("/_emulator/users/{alice}/deauthorize?then=dashboard");
    assert!(page.contains(&action), "{page}");
    assert!(page.contains(&url), "the events URL is shown");

    // the button's POST goes back to the dashboard, which no longer lists her
    let pressed = h
        .http
        .post(format!("{}{action}", h.emu.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(pressed.status(), 303);
    assert_eq!(pressed.headers()["location"], "/");
    assert_eq!(inbox.lock().unwrap().len(), 1);
    let page = h
        .http
        .get(format!("{}/", h.emu.base_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains(&action));
}
