//! Cross-cutting behaviour: latency, fault injection and the request log around every Discord
//! route; rate limiting around `/api/v10`.

use std::sync::atomic::Ordering;

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, USER_AGENT};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::fault::{take_matching, Fault};
use crate::ratelimit::{BucketState, Decision, Route};
use crate::requests::{AuthorizationKind, RecordedRequest};
use crate::shared::lock;

use super::{audit_reason, AppState, API_PREFIX};

/// Query parameters whose values are secrets (OAuth state, codes, tokens) and never logged.
const REDACTED_PARAMS: [&str; 7] = [
    "state",
    "code",
    "code_challenge",
    "code_verifier",
    "access_token",
    "refresh_token",
    "client_secret",
];

pub(crate) async fn record(State(s): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    let headers = request.headers();
    let mut entry = RecordedRequest {
        method: method.clone(),
        path: path.clone(),
        query: request.uri().query().map(redact_query),
        status: 0,
        user_agent: header(headers, USER_AGENT),
        audit_reason: audit_reason(headers),
        authorization_kind: AuthorizationKind::of(header(headers, AUTHORIZATION).as_deref()),
        at: s.clock.now(),
    };
    let latency = s.settings().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let fault = take_matching(&mut lock(&s.faults), &method, &path);
    let response = match fault {
        Some(fault) => fault_response(fault),
        None => next.run(request).await,
    };
    if response.status() == StatusCode::TOO_MANY_REQUESTS {
        s.rate_limited.fetch_add(1, Ordering::Relaxed);
    }
    entry.status = response.status().as_u16();
    lock(&s.requests).push(entry);
    response
}

pub(crate) async fn rate_limit(
    State(s): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let api_path = path.strip_prefix(API_PREFIX).unwrap_or(path);
    let Some(route) = Route::classify(request.method().as_str(), api_path) else {
        return next.run(request).await;
    };
    // The global limit is per token, bot or user; a user's own routes are limited per token.
    let authorization = header(request.headers(), AUTHORIZATION);
    let (route, token) = match authorization.as_deref() {
        Some(h) if h.starts_with("Bot ") => (route, Some(h.to_owned())),
        Some(h) if h.starts_with("Bearer ") => (route.for_user(h), Some(h.to_owned())),
        _ => (route, None),
    };
    let limits = s.settings().rate_limits;
    let decision = lock(&s.limiter).check(&limits, &route, token.as_deref(), s.clock.now());
    match decision {
        Decision::Allowed(bucket) => {
            let mut response = next.run(request).await;
            if let Some(bucket) = bucket {
                bucket_headers(response.headers_mut(), &bucket);
            }
            response
        }
        Decision::Limited {
            retry_after,
            global,
            bucket,
        } => limited_response(retry_after, global, bucket),
    }
}

fn limited_response(retry_after: f64, global: bool, bucket: Option<BucketState>) -> Response {
    let body = json!({
        "message": "You are being rate limited.",
        "retry_after": (retry_after * 1000.0).ceil() / 1000.0,
        "global": global,
    });
    let mut response = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    let headers = response.headers_mut();
    if let Some(bucket) = &bucket {
        bucket_headers(headers, bucket);
    }
    set(
        headers,
        "retry-after",
        &format!("{}", retry_after.ceil() as u64),
    );
    set(
        headers,
        "x-ratelimit-scope",
        if global { "global" } else { "user" },
    );
    if global {
        set(headers, "x-ratelimit-global", "true");
    }
    response
}

fn bucket_headers(headers: &mut HeaderMap, bucket: &BucketState) {
    set(headers, "x-ratelimit-limit", &bucket.limit.to_string());
    set(
        headers,
        "x-ratelimit-remaining",
        &bucket.remaining.to_string(),
    );
    set(
        headers,
        "x-ratelimit-reset",
        &format!("{:.3}", bucket.reset_at),
    );
    set(
        headers,
        "x-ratelimit-reset-after",
        &format!("{:.3}", bucket.reset_after),
    );
    set(headers, "x-ratelimit-bucket", &bucket.bucket);
}

fn fault_response(fault: Fault) -> Response {
    let status = StatusCode::from_u16(fault.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let message = if fault.message.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("Injected fault")
            .to_owned()
    } else {
        fault.message
    };
    let mut body = match fault.code {
        Some(code) => json!({ "code": code, "message": message }),
        None => json!({ "message": message }),
    };
    let mut extra = HeaderMap::new();
    if status == StatusCode::TOO_MANY_REQUESTS {
        body["retry_after"] = json!(1.0);
        body["global"] = json!(false);
        set(&mut extra, "retry-after", "1");
        set(&mut extra, "x-ratelimit-scope", "shared");
    }
    (status, extra, Json(body)).into_response()
}

fn set(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), value);
    }
}

fn header(headers: &HeaderMap, name: HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn redact_query(query: &str) -> String {
    let pairs = url::form_urlencoded::parse(query.as_bytes()).map(|(k, v)| {
        let value = if REDACTED_PARAMS.contains(&k.as_ref()) {
            "[redacted]".into()
        } else {
            v
        };
        (k, value)
    });
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}
