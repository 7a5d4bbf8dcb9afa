//! The operator console at `/admin`: server-rendered pages over the same service layer as the
//! admin API. Every page but sign-in needs a session ([`session::require_session`]); every
//! form carries the session's CSRF token; pages are `no-store` and framed by nobody.

mod audit;
mod clients;
mod dashboard;
mod explain;
mod linked_roles;
mod members;
pub mod page;
mod roles;
pub mod session;
mod tasks;
mod webhooks;

use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::app::AppState;

const STYLESHEET: &str = include_str!("static/console.css");
const SCRIPT: &str = include_str!("static/console.js");

/// Scripts and styles from our own origin only, no inline code, no framing, no form posting
/// elsewhere.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn routes(app: AppState) -> Router<AppState> {
    let signed_in = Router::new()
        .route("/admin", get(dashboard::dashboard))
        .route("/admin/", get(dashboard::dashboard))
        .route("/admin/logout", post(session::logout))
        .route("/admin/clients/new", get(clients::new_form))
        .route("/admin/clients", post(clients::create))
        .route("/admin/clients/{client}", get(clients::overview))
        .route("/admin/clients/{client}/setup", get(clients::setup))
        .route("/admin/clients/{client}/check", post(clients::check))
        .route(
            "/admin/clients/{client}/settings",
            post(clients::save_settings),
        )
        .route(
            "/admin/clients/{client}/secrets",
            post(clients::replace_secrets),
        )
        .route("/admin/clients/{client}/delete", post(clients::delete))
        .route(
            "/admin/clients/{client}/webhooks",
            get(webhooks::page).post(webhooks::save),
        )
        .route(
            "/admin/clients/{client}/webhooks/{delivery}/retry",
            post(webhooks::retry),
        )
        .route("/admin/clients/{client}/roles", get(roles::list))
        .route(
            "/admin/clients/{client}/linked-roles",
            get(linked_roles::page).post(linked_roles::save),
        )
        .route("/admin/clients/{client}/roles/sync", post(roles::sync))
        .route("/admin/clients/{client}/roles/{role}", post(roles::map))
        .route("/admin/clients/{client}/members", get(members::list))
        .route("/admin/clients/{client}/members/{user}", get(members::show))
        .route(
            "/admin/clients/{client}/members/{user}/apply",
            post(members::apply),
        )
        .route(
            "/admin/clients/{client}/members/{user}/unlink",
            get(members::confirm_unlink).post(members::unlink),
        )
        .route("/admin/clients/{client}/tasks", get(tasks::list))
        .route("/admin/clients/{client}/tasks/{task}", post(tasks::run))
        .route("/admin/clients/{client}/runs/{run}", get(tasks::show_run))
        .route("/admin/clients/{client}/audit", get(audit::list))
        .route(
            "/admin/{*rest}",
            get(dashboard::not_found).post(dashboard::not_found),
        )
        .layer(axum::middleware::from_fn_with_state(
            app,
            session::require_session,
        ));
    Router::new()
        .route(
            "/admin/login",
            get(session::login_form).post(session::login),
        )
        .route(
            "/admin/static/console.css",
            get(|| async { asset("text/css; charset=utf-8", STYLESHEET) }),
        )
        .route(
            "/admin/static/console.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .merge(signed_in)
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
}
