//! Signing in to the console and staying signed in: an operator token buys a session cookie
//! (HttpOnly, SameSite=Strict, `__Host-` and Secure over https) whose SHA-256 keys a stored
//! session, so it works on every instance and ends at once on sign-out. Every request checks
//! the session and what it was made with; every POST carries the session's CSRF token.

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::app::{random_token, state_hash, AppState};
use crate::domain::{ConsoleSession, ConsoleSignIn, TokenScope, CONSOLE_SESSION_TTL_SECS};
use crate::service::linking::cookie_value;

use super::page::{error_page, shell, Notice};

/// Largest console form accepted (the biggest is a role mapping or client settings).
const MAX_FORM_BYTES: usize = 64 * 1024;

/// The signed-in operator, put in the request's extensions by [`require_session`].
#[derive(Clone, Debug)]
pub struct ConsoleUser {
    /// Goes into every form; checked on every POST.
    pub csrf: String,
    session_hash: String,
    /// Who it is, for pages and the audit trail: `console` or `console:<token name>`.
    pub actor: String,
}

/// Whether the browser reached us over https (directly or through API Gateway / a proxy).
pub fn is_https(headers: &HeaderMap, req_scheme: Option<&str>) -> bool {
    req_scheme == Some("https")
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

fn session_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-dc_console"
    } else {
        "dc_console"
    }
}

fn login_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-dc_console_login"
    } else {
        "dc_console_login"
    }
}

fn cookie(name: &str, value: &str, max_age: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Max-Age={max_age}; Path=/; HttpOnly; SameSite=Strict{secure}")
}

/// The CSRF token of a session: derived from its id, which only the browser's cookie holds.
fn csrf_of(session_id: &str) -> String {
    hex::encode(&Sha256::digest(format!("console-csrf:{session_id}").as_bytes())[..16])
}

fn same(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Every console route except sign-in and the static files: no session, no page.
pub async fn require_session(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let secure = is_https(req.headers(), req.uri().scheme_str());
    let cookies = req
        .headers()
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok());
    let session_id = cookie_value(cookies, session_cookie_name(secure)).map(str::to_owned);
    let back_to_login = |req: &Request| {
        let next = if req.method() == Method::GET {
            format!("?next={}", super::page::enc(req.uri().path()))
        } else {
            String::new()
        };
        Redirect::to(&format!("/admin/login{next}")).into_response()
    };
    let Some(session_id) = session_id else {
        return back_to_login(&req);
    };
    let hash = state_hash(&session_id);
    let session = match app.store.get_console_session(&hash, app.clock.now()).await {
        Ok(Some(s)) => s,
        Ok(None) => return back_to_login(&req),
        Err(e) => return unavailable(&e.to_string()),
    };
    let actor = match still_valid(&app, &session.signed_in_with).await {
        Ok(Some(actor)) => actor,
        Ok(None) => {
            // The token it was made with was rotated or revoked: the session goes with it.
            let _ = app.store.delete_console_session(&hash).await;
            return back_to_login(&req);
        }
        Err(e) => return unavailable(&e),
    };
    let user = ConsoleUser {
        csrf: csrf_of(&session_id),
        session_hash: hash,
        actor,
    };
    let req = if req.method() == Method::POST {
        match checked_form(req, &user).await {
            Ok(req) => req,
            Err(response) => return response,
        }
    } else {
        req
    };
    let mut req = req;
    req.extensions_mut().insert(user);
    next.run(req).await
}

/// Reads a POST's form, refuses it without the session's CSRF token, and puts it back.
async fn checked_form(req: Request, user: &ConsoleUser) -> Result<Request, Response> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| {
            error_page(
                Some(user),
                StatusCode::PAYLOAD_TOO_LARGE,
                "Form too large",
                "The form sent more than 64 KiB.",
            )
            .into_response()
        })?;
    let token = form_urlencoded_value(&bytes, "csrf");
    if !token.as_deref().is_some_and(|t| same(t, &user.csrf)) {
        return Err(error_page(
            Some(user),
            StatusCode::FORBIDDEN,
            "This form has expired",
            "The form did not carry this session's security token (it may come from another \
             tab, an earlier sign-in, or another site). Go back, reload the page and try again.",
        )
        .into_response());
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

fn form_urlencoded_value(bytes: &[u8], name: &str) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(bytes)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// The actor name when the sign-in's token still holds, `None` when it was rotated or revoked.
async fn still_valid(app: &AppState, with: &ConsoleSignIn) -> Result<Option<String>, String> {
    match with {
        ConsoleSignIn::Bootstrap { token_sha256 } => Ok(app
            .admin
            .as_ref()
            .filter(|a| a.has_hash(token_sha256))
            .map(|_| "console".to_owned())),
        ConsoleSignIn::ApiToken {
            token_id,
            token_sha256,
        } => {
            let token = match token_sha256 {
                Some(hash) => app.store.find_api_token(hash).await,
                None => app
                    .store
                    .list_api_tokens()
                    .await
                    .map(|all| all.into_iter().find(|t| &t.id == token_id)),
            }
            .map_err(|e| e.to_string())?;
            Ok(token
                .filter(|t| &t.id == token_id && t.scope == TokenScope::Operator)
                .map(|t| format!("console:{}", t.name)))
        }
    }
}

fn unavailable(detail: &str) -> Response {
    tracing::error!(error = %detail, "console: store unavailable");
    error_page(
        None,
        StatusCode::SERVICE_UNAVAILABLE,
        "The store is unavailable",
        "The console could not read its store. Try again in a moment.",
    )
    .into_response()
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    signed_out: Option<String>,
}

/// Only a console path is a place to go after sign-in (no open redirect).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with("/admin")
                && !n.starts_with("/admin/login")
                && !n.contains("//")
                && !n.contains('\\') =>
        {
            n.to_owned()
        }
        _ => "/admin".to_owned(),
    }
}

fn login_page(login_nonce: &str, next: &str, notice: Option<Notice>) -> super::page::Page {
    let failed = notice
        .as_ref()
        .is_some_and(|n| n.kind == super::page::NoticeKind::Error);
    let mut page = shell(
        "Sign in",
        None,
        None,
        notice,
        html! {
            section.narrow {
                h1 { "Sign in to the console" }
                p {
                    "Paste an operator token: the deployment's admin token, or an API token of "
                    "scope " code { "operator" } ". Site tokens cannot sign in."
                }
                form method="post" action="/admin/login" {
                    input type="hidden" name="csrf" value=(login_nonce);
                    input type="hidden" name="next" value=(next);
                    label for="token" { "Operator token" }
                    input #token type="password" name="token" autocomplete="off" required
                        spellcheck="false";
                    button type="submit" { "Sign in" }
                }
            }
        },
    );
    if failed {
        page.status = StatusCode::UNAUTHORIZED;
    }
    page
}

/// `GET /admin/login`: the sign-in form, with a fresh login nonce (a double-submit cookie, so a
/// foreign site cannot sign a browser in with its own token).
pub async fn login_form(
    headers: HeaderMap,
    req_uri: axum::http::Uri,
    Query(q): Query<LoginQuery>,
) -> Response {
    let secure = is_https(&headers, req_uri.scheme_str());
    let nonce = random_token(18);
    let notice = q.signed_out.map(|_| Notice::ok("Signed out."));
    let mut response = login_page(&nonce, &safe_next(q.next.as_deref()), notice).into_response();
    set_cookie(
        &mut response,
        &cookie(login_cookie_name(secure), &nonce, 600, secure),
    );
    response
}

#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
    csrf: String,
    next: Option<String>,
}

/// `POST /admin/login`.
pub async fn login(
    State(app): State<AppState>,
    headers: HeaderMap,
    req_uri: axum::http::Uri,
    axum::Form(form): axum::Form<LoginForm>,
) -> Response {
    let secure = is_https(&headers, req_uri.scheme_str());
    let cookies = headers.get(header::COOKIE).and_then(|v| v.to_str().ok());
    let nonce_ok =
        cookie_value(cookies, login_cookie_name(secure)).is_some_and(|n| same(n, form.csrf.trim()));
    let next = safe_next(form.next.as_deref());
    let retry = |message: &str| {
        let nonce = random_token(18);
        let mut response = login_page(&nonce, &next, Some(Notice::error(message))).into_response();
        set_cookie(
            &mut response,
            &cookie(login_cookie_name(secure), &nonce, 600, secure),
        );
        response
    };
    if !nonce_ok {
        return retry("The sign-in form expired. Paste the token again.");
    }
    let token = form.token.trim();
    let signed_in_with =
        if token.is_empty() {
            None
        } else if app.admin.as_ref().is_some_and(|a| a.verify(token)) {
            Some(ConsoleSignIn::Bootstrap {
                token_sha256: state_hash(token),
            })
        } else if app.admin.is_none() {
            None
        } else {
            match app.store.find_api_token(&state_hash(token)).await {
                Ok(Some(t)) if t.scope == TokenScope::Operator => Some(ConsoleSignIn::ApiToken {
                    token_id: t.id,
                    token_sha256: Some(t.token_sha256),
                }),
                Ok(Some(_)) => return retry(
                    "This is a site token: it may push users and create link sessions, but not \
                     sign in to the console. Use an operator token.",
                ),
                Ok(None) => None,
                Err(e) => return unavailable(&e.to_string()),
            }
        };
    let Some(signed_in_with) = signed_in_with else {
        tracing::info!("console: sign-in refused");
        return retry("That token was not accepted.");
    };
    let session_id = random_token(32);
    let now = app.clock.now();
    let session = ConsoleSession {
        id_sha256: state_hash(&session_id),
        signed_in_with,
        created_at: now,
        expires_at: now + CONSOLE_SESSION_TTL_SECS,
    };
    if let Err(e) = app.store.put_console_session(&session).await {
        return unavailable(&e.to_string());
    }
    tracing::info!("console: signed in");
    let mut response = Redirect::to(&next).into_response();
    set_cookie(
        &mut response,
        &cookie(
            session_cookie_name(secure),
            &session_id,
            CONSOLE_SESSION_TTL_SECS,
            secure,
        ),
    );
    set_cookie(
        &mut response,
        &cookie(login_cookie_name(secure), "", 0, secure),
    );
    response
}

/// `POST /admin/logout` (behind [`require_session`], so CSRF-checked).
pub async fn logout(
    State(app): State<AppState>,
    headers: HeaderMap,
    req_uri: axum::http::Uri,
    axum::Extension(user): axum::Extension<ConsoleUser>,
) -> Response {
    let secure = is_https(&headers, req_uri.scheme_str());
    if let Err(e) = app.store.delete_console_session(&user.session_hash).await {
        return unavailable(&e.to_string());
    }
    tracing::info!("console: signed out");
    let mut response = Redirect::to("/admin/login?signed_out=1").into_response();
    set_cookie(
        &mut response,
        &cookie(session_cookie_name(secure), "", 0, secure),
    );
    response
}

fn set_cookie(response: &mut Response, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_console_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/admin/clients/x")), "/admin/clients/x");
        for bad in [
            "https://evil.example/",
            "//evil.example/admin",
            "/admin//evil.example",
            "/admin/login",
            "/api/v1/clients",
            "/admin\\@evil",
        ] {
            assert_eq!(safe_next(Some(bad)), "/admin", "{bad}");
        }
        assert_eq!(safe_next(None), "/admin");
    }

    #[test]
    fn csrf_tokens_differ_per_session_and_compare_exactly() {
        let a = csrf_of("session-a");
        assert_eq!(a.len(), 32);
        assert_ne!(a, csrf_of("session-b"));
        assert!(same(&a, &csrf_of("session-a")));
        assert!(!same(&a, &a[..31]));
    }

    #[test]
    fn cookies_are_host_only_strict_and_secure_over_https() {
        let c = cookie(session_cookie_name(true), "v", 60, true);
        assert!(c.starts_with("__Host-dc_console=v;"));
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Secure"));
        assert!(!cookie(session_cookie_name(false), "v", 60, false).contains("Secure"));
    }
}
