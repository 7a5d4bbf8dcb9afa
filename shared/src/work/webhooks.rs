//! Delivery of the website webhooks from the store's outbox (`store::WebhookOutbox`), signed as
//! Standard Webhooks asks: `webhook-id`, `webhook-timestamp`, `webhook-signature`.
//!
//! Each client's due entries go out in a task of their own, so one slow or dead endpoint never
//! holds up another client's (nor the guild writers, which never wait on this). The outbox
//! answers at most one entry per user — the oldest pending one — so a user's events arrive in
//! order.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use sha2::Sha256;

use crate::app::AppState;
use crate::domain::webhook::{after_failure, webhook_secret_key};
use crate::domain::{DeliveryAttempt, DeliveryStatus, WebhookDelivery};
use crate::secrets::ClientSecretKind;
use crate::store::StoreResult;

/// How long one attempt may take before it counts as failed.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Entries read per round.
const BATCH: usize = 200;
/// How often the self-hosted loop looks for due entries.
const POLL: Duration = Duration::from_millis(500);
/// How long a client's delivery lease lasts: two processes on one database never send the same
/// client's entries side by side (which could reorder a user's events).
const LEASE_SECS: i64 = 60;

/// `v1,` + base64(HMAC-SHA256(key, `{id}.{timestamp}.{body}`)).
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

/// The HTTP client of deliveries: a per-attempt timeout, and no redirects (a 3xx is a failed
/// attempt: the signed body goes only to the configured URL).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(DELIVERY_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("the webhook HTTP client builds with static settings")
}

/// Clients whose deliveries are under way in this process.
#[derive(Clone, Default)]
pub struct InFlight(Arc<Mutex<HashSet<String>>>);

impl InFlight {
    fn start(&self, client: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(client.to_owned())
    }

    fn finish(&self, client: &str) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(client);
    }
}

/// One round: reads the due entries and starts one task per client not already being served.
/// Returns the tasks (the self-hosted loop lets them run; tests and one-shot callers may await
/// them).
pub async fn deliver_due(
    app: &AppState,
    http: &reqwest::Client,
    in_flight: &InFlight,
) -> StoreResult<Vec<tokio::task::JoinHandle<()>>> {
    let due = app.store.due_deliveries(app.clock.now(), BATCH).await?;
    let mut by_client: BTreeMap<String, Vec<WebhookDelivery>> = BTreeMap::new();
    for d in due {
        by_client.entry(d.client.clone()).or_default().push(d);
    }
    let mut tasks = Vec::new();
    for (client, entries) in by_client {
        if !in_flight.start(&client) {
            continue;
        }
        let (app, http, in_flight) = (app.clone(), http.clone(), in_flight.clone());
        tasks.push(tokio::spawn(async move {
            if let Err(e) = deliver_client(&app, &http, &client, entries).await {
                tracing::warn!(client = %client, error = %e, "webhook delivery round failed");
            }
            in_flight.finish(&client);
        }));
    }
    Ok(tasks)
}

/// Entries one client's job sends on AWS at most (the client's next job waits for them).
const ROUND_AFTER_JOB: usize = 20;

/// What the AWS worker does after each job of a client (a Lambda has no loop of its own): the
/// client's due deliveries — skipped when less than two attempt timeouts of the invocation
/// remain — and, while any of its entries is still pending, a work mark, so the 5-minute tick
/// brings a job (and this round) back for the retry.
pub async fn deliver_for_client(
    app: &AppState,
    http: &reqwest::Client,
    client: &str,
    deadline: Option<std::time::Instant>,
) -> StoreResult<()> {
    let time_left = deadline.is_none_or(|d| {
        d.saturating_duration_since(std::time::Instant::now()) > DELIVERY_TIMEOUT * 2
    });
    if time_left {
        let due: Vec<WebhookDelivery> = app
            .store
            .due_deliveries(app.clock.now(), 1_000)
            .await?
            .into_iter()
            .filter(|d| d.client == client)
            .take(ROUND_AFTER_JOB)
            .collect();
        if !due.is_empty() {
            deliver_client(app, http, client, due).await?;
        }
    }
    // Each user's first pending entry, due or not.
    let waiting = app
        .store
        .due_deliveries(i64::MAX, 1_000)
        .await?
        .iter()
        .any(|d| d.client == client);
    if waiting {
        app.store
            .mark_work(
                client,
                crate::domain::TaskName::VerifyGroups,
                app.clock.now(),
            )
            .await?;
    }
    Ok(())
}

/// The self-hosted delivery loop (started with the worker pool).
pub async fn run_loop(app: AppState) {
    let http = http_client();
    let in_flight = InFlight::default();
    loop {
        if let Err(e) = deliver_due(&app, &http, &in_flight).await {
            tracing::warn!(error = %e, "reading due webhooks failed");
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn deliver_client(
    app: &AppState,
    http: &reqwest::Client,
    client: &str,
    entries: Vec<WebhookDelivery>,
) -> StoreResult<()> {
    let lease = format!("webhooks:{client}");
    let holder = uuid::Uuid::new_v4().to_string();
    if app
        .store
        .acquire_lease(&lease, &holder, app.clock.now(), LEASE_SECS)
        .await?
        .is_none()
    {
        return Ok(());
    }
    let result = deliver_entries(app, http, client, entries).await;
    app.store.release_lease(&lease, &holder, None).await?;
    result
}

async fn deliver_entries(
    app: &AppState,
    http: &reqwest::Client,
    client: &str,
    entries: Vec<WebhookDelivery>,
) -> StoreResult<()> {
    let url = app
        .store
        .get_client(client)
        .await?
        .and_then(|c| c.webhook_url);
    let secret = app
        .secrets
        .get_client_secret(client, ClientSecretKind::WebhookSecret)
        .await
        .map_err(|e| crate::store::StoreError::Backend(e.to_string()))?;
    let key = secret.and_then(|s| webhook_secret_key(s.expose_secret()));
    for entry in entries {
        let (attempt, unreachable) = match (&url, &key) {
            (Some(url), Some(key)) => {
                let a = attempt(app, http, url, key, &entry).await;
                let unreachable = a.status != DeliveryStatus::Delivered && a.status_code.is_none();
                (a, unreachable)
            }
            // The site stopped taking webhooks: nothing to retry towards.
            (None, _) => (final_failure("the client has no webhook_url"), false),
            (_, None) => (final_failure("the client has no webhook secret"), false),
        };
        app.store
            .record_attempt(client, &entry.id, &attempt, app.clock.now())
            .await?;
        if unreachable {
            // No answer at all (refused, timed out): the other users' entries would only wait
            // for the same; they stay due for the next round.
            break;
        }
    }
    Ok(())
}

fn final_failure(why: &str) -> DeliveryAttempt {
    DeliveryAttempt {
        status: DeliveryStatus::Failed,
        status_code: None,
        error: Some(why.to_owned()),
        next_attempt_at: None,
    }
}

async fn attempt(
    app: &AppState,
    http: &reqwest::Client,
    url: &str,
    key: &[u8],
    entry: &WebhookDelivery,
) -> DeliveryAttempt {
    let body = entry.payload.to_string();
    let timestamp = app.clock.now();
    let sent = http
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &entry.id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", sign(key, &entry.id, timestamp, &body))
        .body(body)
        .send()
        .await;
    let attempts = entry.attempts + 1;
    let now = app.clock.now();
    match sent {
        Ok(resp) if resp.status().is_success() => DeliveryAttempt {
            status: DeliveryStatus::Delivered,
            status_code: Some(resp.status().as_u16()),
            error: None,
            next_attempt_at: None,
        },
        Ok(resp) => {
            let code = resp.status().as_u16();
            after_failure(
                attempts,
                entry.created_at,
                now,
                Some(code),
                format!("answered {code}"),
            )
        }
        Err(e) => {
            // Only the kind of failure: reqwest's own text repeats the URL.
            let why = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "could not connect"
            } else {
                "request failed"
            };
            after_failure(attempts, entry.created_at, now, None, why.to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Standard Webhooks reference vector.
    #[test]
    fn signs_like_the_standard_webhooks_reference() {
        let key = webhook_secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            sign(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                r#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }
}
