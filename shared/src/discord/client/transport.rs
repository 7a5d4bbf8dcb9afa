//! One request to Discord: rate limiter, headers, retries, stats and error mapping.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use std::sync::{Arc, Mutex};

use super::CallStats;
use crate::discord::ratelimit::{Observed, RateLimitHit, RateLimiter, MEMBER_MAJOR_PREFIX};
use crate::discord::{DiscordError, DiscordResult};

/// Retries after a 5xx or a transport error, with these waits.
const BACKOFF: [Duration; 3] = [
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
];
/// Retries after a 429.
const MAX_RATE_LIMIT_RETRIES: u32 = 3;
/// A 429 asking for a longer wait is returned to the caller as `RateLimited`.
const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);
/// Most bytes of one answer we read. Discord's largest answer is a page of 1,000 members: the
/// emulator's members measure ≈ 340 bytes each (≈ 330 KiB a page); real ones with avatar,
/// banner, decorations and dozens of roles stay under ≈ 1.5 KiB (≈ 1.5 MiB a page). 8 MiB is a
/// wide margin, yet a broken or hostile server cannot exhaust a 128 MB Lambda's memory.
pub const MAX_RESPONSE_BYTES: usize = 8 << 20;

/// Who a request acts as.
#[derive(Clone, Copy)]
pub(super) enum Auth<'a> {
    /// The bot token, through the shared rate limiter.
    Bot,
    /// A member's OAuth2 access token. Through the same limiter as the bot's calls, its buckets
    /// keyed by the token (Discord limits these per user), so one member's bucket never holds
    /// back another's, while every request still counts toward the one global pace.
    Bearer(&'a SecretString),
    /// The OAuth2 token endpoints: client authentication is already in the request. Not through
    /// the bot's limiter either.
    Client,
}

/// A request, kept whole so it can be sent again on retry.
pub(super) struct Call<'a> {
    pub(super) method: Method,
    /// Route template for stats and rate-limit buckets, e.g. `/guilds/{guild}/members/{user}`.
    pub(super) route: &'static str,
    pub(super) url: String,
    /// The guild id for guild routes (Discord's "major parameter").
    pub(super) major: Option<&'a str>,
    pub(super) auth: Auth<'a>,
    pub(super) headers: HeaderMap,
    pub(super) body: Option<Vec<u8>>,
}

/// The final response of a call (after retries), success or not.
pub(super) struct Raw {
    pub(super) status: StatusCode,
    pub(super) headers: HeaderMap,
    pub(super) body: Vec<u8>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: Option<u64>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    errors: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct RateLimitBody {
    #[serde(default)]
    retry_after: Option<f64>,
    #[serde(default)]
    global: Option<bool>,
}

enum Attempt {
    Done(Raw),
    Retry(Duration, DiscordError),
}

/// What sending needs, cheap to clone (the `oauth2` crate's HTTP client owns one).
#[derive(Clone)]
pub(super) struct Transport {
    pub(super) http: reqwest::Client,
    pub(super) limiter: Arc<RateLimiter>,
    pub(super) bot_token: Option<SecretString>,
    pub(super) stats: Arc<Mutex<CallStats>>,
}

impl Transport {
    pub(super) fn record(&self, update: impl FnOnce(&mut CallStats)) {
        update(
            &mut self
                .stats
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
    }

    /// Sends `call`, retrying 5xx/transport errors (with backoff) and 429s (after `retry_after`).
    /// Any other response is returned as is; 2xx or not.
    pub(super) async fn execute(&self, call: &Call<'_>) -> DiscordResult<Raw> {
        let route_key = format!("{} {}", call.method, call.route);
        let bot_token = match call.auth {
            Auth::Bot => Some(self.bot_token()?),
            _ => None,
        };
        let authorization = match call.auth {
            Auth::Bot => Some(secret_header("Bot", bot_token, "valid bot token")?),
            Auth::Bearer(token) => Some(
                secret_header("Bearer", Some(token), "")
                    .map_err(|_| DiscordError::InvalidOAuthToken)?,
            ),
            Auth::Client => None,
        };
        let limited_as = match call.auth {
            Auth::Bot => Some(call.major.unwrap_or("").to_owned()),
            Auth::Bearer(token) => Some(member_major(token)),
            Auth::Client => None,
        };
        let mut failures = 0usize;
        let mut rate_limits = 0u32;
        loop {
            let attempt = self
                .attempt(
                    call,
                    &route_key,
                    limited_as.as_deref(),
                    bot_token,
                    authorization.as_ref(),
                )
                .await?;
            let (wait, error) = match attempt {
                Attempt::Done(raw) => return Ok(raw),
                Attempt::Retry(wait, error @ DiscordError::RateLimited { .. }) => {
                    if rate_limits >= MAX_RATE_LIMIT_RETRIES || wait > MAX_RATE_LIMIT_WAIT {
                        return Err(error);
                    }
                    rate_limits += 1;
                    (wait, error)
                }
                Attempt::Retry(_, error) => match BACKOFF.get(failures) {
                    Some(wait) => {
                        failures += 1;
                        (*wait, error)
                    }
                    None => return Err(error),
                },
            };
            tracing::debug!(route = %route_key, ?wait, error = %error, "retrying Discord call");
            tokio::time::sleep(wait).await;
        }
    }

    /// One try. `limited_as`: the major the limiter keys this call's bucket by (`None`: the
    /// OAuth2 token endpoints, which carry no bucket headers).
    async fn attempt(
        &self,
        call: &Call<'_>,
        route_key: &str,
        limited_as: Option<&str>,
        bot_token: Option<&SecretString>,
        authorization: Option<&HeaderValue>,
    ) -> DiscordResult<Attempt> {
        if let Some(token) = bot_token {
            self.refuse_rejected(token)?;
        }
        let permit = match limited_as {
            Some(major) => Some(self.limiter.acquire(route_key, major).await),
            None => None,
        };
        if let Some(token) = bot_token {
            // The token may have been rejected while we waited.
            self.refuse_rejected(token)?;
        }
        let mut request = self
            .http
            .request(call.method.clone(), &call.url)
            .headers(call.headers.clone());
        if let Some(value) = authorization {
            request = request.header(AUTHORIZATION, value.clone());
        }
        if let Some(body) = &call.body {
            request = request.body(body.clone());
        }
        self.record(|stats| *stats.calls.entry(route_key.to_owned()).or_default() += 1);
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) if e.is_builder() => return Err(DiscordError::Transport(e.to_string())),
            Err(e) => return Ok(Attempt::Retry(Duration::ZERO, transport(e))),
        };
        let status = response.status();
        let headers = response.headers().clone();
        let mut observed = Observed::from_headers(&headers);
        // A 429's body says how long to wait: read it before reporting to the limiter. Any other
        // body is read after the slot is released.
        let mut early_body = None;
        let mut pending = Some(response);
        if status == StatusCode::TOO_MANY_REQUESTS {
            if let Some(response) = pending.take() {
                // Only `retry_after` is wanted: an unreadable or oversized body counts as none.
                let body = read_capped(response, MAX_RESPONSE_BYTES)
                    .await
                    .unwrap_or_default();
                let parsed: Option<RateLimitBody> = serde_json::from_slice(&body).ok();
                observed = observed.rate_limited(
                    &headers,
                    parsed.as_ref().and_then(|b| b.retry_after),
                    parsed.as_ref().and_then(|b| b.global),
                );
                early_body = Some(body);
            }
        }
        if let Some(permit) = permit {
            permit.complete(&observed);
        }
        let body = match (pending, early_body) {
            (Some(response), _) => match read_capped(response, MAX_RESPONSE_BYTES).await {
                Ok(body) => body,
                Err(BodyError::TooLarge) => {
                    tracing::warn!(route = %route_key, limit = MAX_RESPONSE_BYTES, "Discord answer too large: not read");
                    return Err(DiscordError::ResponseTooLarge {
                        limit: MAX_RESPONSE_BYTES,
                    });
                }
                Err(BodyError::Transport(e)) => {
                    return Ok(Attempt::Retry(Duration::ZERO, transport(e)))
                }
            },
            (None, body) => body.unwrap_or_default(),
        };
        if let Some(hit) = &observed.hit {
            return Ok(self.rate_limited(route_key, hit));
        }
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            self.record(|stats| stats.invalid_requests += 1);
        }
        if status == StatusCode::UNAUTHORIZED {
            if let Some(token) = bot_token {
                tracing::error!(route = %route_key, "Discord rejected the bot token (401): no further bot calls");
                self.limiter.reject_token(token);
            }
        }
        if status.is_server_error() {
            return Ok(Attempt::Retry(
                Duration::ZERO,
                DiscordError::Server {
                    status: status.as_u16(),
                },
            ));
        }
        Ok(Attempt::Done(Raw {
            status,
            headers,
            body,
        }))
    }

    fn rate_limited(&self, route_key: &str, hit: &RateLimitHit) -> Attempt {
        self.record(|stats| {
            stats.rate_limited += 1;
            if !hit.shared {
                stats.invalid_requests += 1;
            }
        });
        tracing::warn!(route = %route_key, retry_after = ?hit.retry_after, global = hit.global, "Discord rate limit hit (429)");
        Attempt::Retry(
            hit.retry_after,
            DiscordError::RateLimited {
                retry_after: hit.retry_after,
                global: hit.global,
            },
        )
    }

    fn refuse_rejected(&self, token: &SecretString) -> DiscordResult<()> {
        if self.limiter.is_token_rejected(token) {
            return Err(DiscordError::BotTokenRejected);
        }
        Ok(())
    }

    pub(super) fn bot_token(&self) -> DiscordResult<&SecretString> {
        self.bot_token
            .as_ref()
            .ok_or(DiscordError::NotConfigured("bot token"))
    }

    /// Sends `call` and maps a non-2xx answer to a typed error.
    pub(super) async fn send(&self, call: &Call<'_>) -> DiscordResult<Raw> {
        let raw = self.execute(call).await?;
        if raw.status.is_success() {
            Ok(raw)
        } else {
            Err(api_error(call.auth, &raw))
        }
    }

    /// Sends `call` and decodes the JSON answer.
    pub(super) async fn send_json<T: DeserializeOwned>(&self, call: &Call<'_>) -> DiscordResult<T> {
        let raw = self.send(call).await?;
        decode(call.route, &raw.body)
    }

    /// Sends `call`, expecting no content (204).
    pub(super) async fn send_empty(&self, call: &Call<'_>) -> DiscordResult<()> {
        self.send(call).await.map(drop)
    }
}

enum BodyError {
    TooLarge,
    Transport(reqwest::Error),
}

/// The body, chunk by chunk, refusing it as soon as it passes `limit` bytes (announced by
/// `Content-Length` or not).
async fn read_capped(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

pub(super) fn decode<T: DeserializeOwned>(route: &str, body: &[u8]) -> DiscordResult<T> {
    serde_json::from_slice(body).map_err(|e| DiscordError::Decode(format!("{route}: {e}")))
}

fn transport(e: reqwest::Error) -> DiscordError {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    DiscordError::Transport(format!("{kind}: {}", e.without_url()))
}

/// The limiter's major for a member's own token: a digest, so the token itself is never kept
/// (it is a secret) and two members never share a bucket.
fn member_major(token: &SecretString) -> String {
    let digest = Sha256::digest(token.expose_secret().as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("{MEMBER_MAJOR_PREFIX}{hex}")
}

fn secret_header(
    scheme: &str,
    token: Option<&SecretString>,
    what: &'static str,
) -> DiscordResult<HeaderValue> {
    let token = token.ok_or(DiscordError::NotConfigured(what))?;
    let mut value = HeaderValue::from_str(&format!("{scheme} {}", token.expose_secret()))
        .map_err(|_| DiscordError::NotConfigured(what))?;
    value.set_sensitive(true);
    Ok(value)
}

/// Maps a non-2xx answer: Discord's JSON `{code, message}` to its typed variant.
fn api_error(auth: Auth<'_>, raw: &Raw) -> DiscordError {
    let status = raw.status.as_u16();
    if raw.status == StatusCode::UNAUTHORIZED {
        match auth {
            Auth::Bot => return DiscordError::BotTokenRejected,
            Auth::Bearer(_) => return DiscordError::InvalidOAuthToken,
            Auth::Client => {}
        }
    }
    let body: Option<ErrorBody> = serde_json::from_slice(&raw.body).ok();
    let reason = || raw.status.canonical_reason().unwrap_or("error").to_owned();
    match body {
        Some(ErrorBody {
            code: Some(code),
            message,
            errors,
        }) => {
            let mut message = message.unwrap_or_else(reason);
            if let Some(errors) = errors {
                let mut fields = Vec::new();
                collect_form_errors(&errors, String::new(), &mut fields);
                if !fields.is_empty() {
                    message = format!("{message}: {}", fields.join("; "));
                }
            }
            DiscordError::from_code(status, code, message)
        }
        Some(ErrorBody { message, .. }) => DiscordError::Api {
            status,
            code: 0,
            message: message.unwrap_or_else(reason),
        },
        None if raw.status.is_success() || raw.status.is_redirection() => {
            DiscordError::Decode(format!("unexpected status {status}"))
        }
        None => DiscordError::Api {
            status,
            code: 0,
            message: reason(),
        },
    }
}

/// Flattens `errors: {field: {_errors: [{code, message}]}}` into `field: message`.
fn collect_form_errors(value: &serde_json::Value, path: String, out: &mut Vec<String>) {
    let Some(object) = value.as_object() else {
        return;
    };
    for (key, child) in object {
        if key == "_errors" {
            for error in child.as_array().into_iter().flatten() {
                let message = error
                    .get("message")
                    .and_then(|m| m.as_str())
                    .unwrap_or("invalid");
                out.push(format!("{path}: {message}"));
            }
        } else {
            let path = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            collect_form_errors(child, path, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(status: u16, body: &str) -> Raw {
        Raw {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn form_errors_name_the_field() {
        let body = r#"{"code":50035,"message":"Invalid Form Body","errors":{"nick":{"_errors":[{"code":"BASE_TYPE_MAX_LENGTH","message":"Must be 32 or fewer in length."}]}}}"#;
        match api_error(Auth::Bot, &raw(400, body)) {
            DiscordError::InvalidFormBody(message) => {
                assert_eq!(
                    message,
                    "Invalid Form Body: nick: Must be 32 or fewer in length."
                )
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_body_without_code_keeps_the_status() {
        match api_error(Auth::Bot, &raw(404, "<html>")) {
            DiscordError::Api { status, code, .. } => assert_eq!((status, code), (404, 0)),
            other => panic!("unexpected {other:?}"),
        }
    }
}
