//! Discord's Webhook Events: the application's Ed25519 key, its Events Endpoint URL, and the
//! signed POSTs Discord sends there (PING, APPLICATION_DEAUTHORIZED when a user removes the
//! application, anything a test wants to send, well or badly signed).

use ed25519_dalek::{Signer, SigningKey};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::clock::rfc3339;
use crate::scenario::ScenarioApplication;

/// The application's signing key, derived from the scenario's application (id and secret), so
/// a restarted emulator keeps the public key a connector was configured with (the demo).
pub(crate) fn signing_key(app: &ScenarioApplication) -> SigningKey {
    let seed: [u8; 32] = Sha256::new()
        .chain_update(b"discord-emulator webhook events key\0")
        .chain_update(app.id.as_bytes())
        .chain_update(b"\0")
        .chain_update(app.client_secret.as_bytes())
        .finalize()
        .into();
    SigningKey::from_bytes(&seed)
}

/// `X-Signature-Ed25519` for `timestamp` + `body`, in hex.
pub(crate) fn sign(key: &SigningKey, timestamp: &str, body: &[u8]) -> String {
    let mut message = Vec::with_capacity(timestamp.len() + body.len());
    message.extend_from_slice(timestamp.as_bytes());
    message.extend_from_slice(body);
    hex_encode(&key.sign(&message).to_bytes())
}

pub(crate) fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `{"version":1,"application_id":…,"type":0}`.
pub(crate) fn ping_body(application_id: &str) -> Vec<u8> {
    json!({"version": 1, "application_id": application_id, "type": 0})
        .to_string()
        .into_bytes()
}

/// An event (`type` 1) as Discord shapes it.
pub(crate) fn event_body(application_id: &str, kind: &str, now: f64, data: Value) -> Vec<u8> {
    json!({
        "version": 1,
        "application_id": application_id,
        "type": 1,
        "event": {"type": kind, "timestamp": rfc3339(now), "data": data},
    })
    .to_string()
    .into_bytes()
}

/// One POST to the events URL, as sent, and how it was answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EventDelivery {
    /// `PING`, the event's type, or `RAW` for a test's own body.
    pub kind: String,
    pub url: String,
    pub body: String,
    /// The answer's status; `None` when none came (unreachable, timeout).
    pub status: Option<u16>,
    pub error: Option<String>,
}

/// POSTs `body` with the given headers; what came back is recorded by the caller.
pub(crate) async fn post(
    url: &str,
    body: Vec<u8>,
    headers: Vec<(String, String)>,
) -> (Option<u16>, Option<String>) {
    let client = reqwest::Client::new();
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .header(
            "user-agent",
            "Discord-Interactions/1.0 (+https://discord.com)",
        )
        // Discord gives an endpoint 3 seconds.
        .timeout(std::time::Duration::from_secs(3))
        .body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    match request.send().await {
        Ok(resp) => (Some(resp.status().as_u16()), None),
        Err(e) => (None, Some(e.to_string())),
    }
}

impl crate::shared::Shared {
    pub(crate) fn public_key_hex(&self) -> String {
        hex_encode(self.events_key.verifying_key().as_bytes())
    }

    /// POSTs `body` to the events URL, signed now unless `signature` overrides it (`None` in
    /// the override: the header is left out), and records the delivery. `None` without an
    /// events URL.
    pub(crate) async fn deliver(
        &self,
        kind: &str,
        body: Vec<u8>,
        timestamp: Option<String>,
        signature: Option<Option<String>>,
    ) -> Option<EventDelivery> {
        let url = lock(&self.settings).events_url.clone()?;
        let timestamp = timestamp.unwrap_or_else(|| (self.clock.now() as i64).to_string());
        let signature =
            signature.unwrap_or_else(|| Some(sign(&self.events_key, &timestamp, &body)));
        let mut headers = vec![("x-signature-timestamp".to_owned(), timestamp)];
        if let Some(signature) = signature {
            headers.push(("x-signature-ed25519".to_owned(), signature));
        }
        let text = String::from_utf8_lossy(&body).into_owned();
        let (status, error) = post(&url, body, headers).await;
        if let Some(error) = &error {
            tracing::warn!(%url, %error, "webhook event not delivered");
        }
        let delivery = EventDelivery {
            kind: kind.to_owned(),
            url,
            body: text,
            status,
            error,
        };
        lock(&self.deliveries).push(delivery.clone());
        Some(delivery)
    }

    /// The user removes the application (Discord → User Settings → Authorized Apps →
    /// Deauthorize): every grant of theirs is revoked. Returns the APPLICATION_DEAUTHORIZED body
    /// to send, or `None` when the user had not authorized the application.
    pub(crate) fn deauthorize_user(&self, user: u64) -> Option<Vec<u8>> {
        {
            let mut oauth = lock(&self.oauth);
            if oauth.active_grants(user) == 0 {
                return None;
            }
            oauth.revoke_user(user);
        }
        let data = json!({"user": lock(&self.world).user_json(user)});
        Some(event_body(
            &self.scenario.application.id,
            "APPLICATION_DEAUTHORIZED",
            self.clock.now(),
            data,
        ))
    }
}

use crate::shared::lock;
