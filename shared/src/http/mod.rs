//! One axum Router: admin API (`/api/v1/…`), the operator console (`/admin`) and what Discord
//! calls (`/discord/sso/callback`, `/discord/events`). [`router`] serves them all (the
//! self-hosted binary); on AWS the `admin-api` function serves [`api_router`] and `sso-callback`
//! [`sso_router`].

pub mod auth;
pub mod clients;
pub mod console;
pub mod error;
pub mod events;
pub mod extract;
pub mod link;
pub mod linked_roles;
pub mod roles;
pub mod runs;
pub mod tokens;
pub mod users;
pub mod validate;
pub mod webhooks;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "discord-connector admin API", version = "1"),
    servers((url = "/api/v1")),
    security(("admin_token" = [])),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The admin API's routes, written once: [`admin_router`] serves them with plain axum routing,
/// and [`ADMIN_ROUTES`] lists them for the test that holds the OpenAPI document to them.
macro_rules! admin_api {
    ($($path:literal => $($method:ident $handler:path),+;)*) => {
        /// Every admin API route as (method, path relative to `/api/v1`).
        pub const ADMIN_ROUTES: &[(&str, &str)] = &[$($((stringify!($method), $path)),+),*];

        fn admin_router() -> Router<AppState> {
            Router::new()$(.route($path, axum::routing::MethodRouter::new()$(.$method($handler))+))*
        }
    };
}

admin_api! {
    "/clients" => post clients::create_client, get clients::list_clients;
    "/clients/{client}" => get clients::get_client, patch clients::patch_client, delete clients::delete_client;
    "/clients/{client}/roles/sync" => post roles::sync_roles;
    "/clients/{client}/roles" => get roles::list_roles;
    "/clients/{client}/roles/{role_id}" => put roles::map_role;
    "/clients/{client}/users/{user_id}" => put users::put_user, get users::get_user;
    "/clients/{client}/users" => get users::list_users;
    "/clients/{client}/users/import" => post users::import_users;
    "/clients/{client}/users/{user_id}/link" => delete users::unlink;
    "/clients/{client}/link-sessions" => post link::create_link_session;
    "/clients/{client}/linked-roles" => put linked_roles::put_linked_roles, get linked_roles::get_linked_roles;
    "/clients/{client}/tasks/{task}" => post runs::run_task;
    "/clients/{client}/runs" => get runs::list_runs;
    "/clients/{client}/audit" => get runs::list_audit;
    "/clients/{client}/webhook-deliveries" => get webhooks::list_deliveries;
    "/clients/{client}/webhook-deliveries/{id}/retry" => post webhooks::retry_delivery;
    "/tokens" => post tokens::create_token, get tokens::list_tokens;
    "/tokens/{id}" => delete tokens::delete_token;
}

/// The OpenAPI document generated from the handlers' annotations. The router serves the
/// committed copy ([`OPENAPI_JSON`]; a test keeps the two equal): generating it at run time
/// would put utoipa's schema builders in every Lambda bootstrap that serves the API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    OpenApiRouter::<AppState>::with_openapi(ApiDoc::openapi())
        .routes(routes!(clients::create_client, clients::list_clients))
        .routes(routes!(
            clients::get_client,
            clients::patch_client,
            clients::delete_client
        ))
        .routes(routes!(roles::sync_roles))
        .routes(routes!(roles::list_roles))
        .routes(routes!(roles::map_role))
        .routes(routes!(users::put_user, users::get_user))
        .routes(routes!(users::list_users))
        .routes(routes!(users::import_users))
        .routes(routes!(users::unlink))
        .routes(routes!(link::create_link_session))
        .routes(routes!(
            linked_roles::put_linked_roles,
            linked_roles::get_linked_roles
        ))
        .routes(routes!(runs::run_task))
        .routes(routes!(runs::list_runs))
        .routes(routes!(runs::list_audit))
        .routes(routes!(webhooks::list_deliveries))
        .routes(routes!(webhooks::retry_delivery))
        .routes(routes!(tokens::create_token, tokens::list_tokens))
        .routes(routes!(tokens::delete_token))
        .into_openapi()
}

/// The committed OpenAPI document (`openapi.json` beside this file), as served at
/// `/api/v1/openapi.json`. Regenerate with `UPDATE_OPENAPI=1 cargo test -p connector --lib openapi`.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

/// Everything in one router: the admin API, the console, the SSO callback and Discord's Webhook
/// Events — what `serve` and `demo` serve.
pub fn router(app: AppState) -> Router {
    finish(operator_routes(&app).merge(member_routes()), app)
}

/// The admin API and the console: what the `admin-api` function serves (on AWS the callback and
/// the events endpoint are the `sso-callback` function's, so this one links neither the OAuth
/// code exchange nor the Ed25519 verification).
pub fn api_router(app: AppState) -> Router {
    finish(operator_routes(&app), app)
}

/// The SSO callback and Discord's Webhook Events: what the `sso-callback` function serves.
pub fn sso_router(app: AppState) -> Router {
    finish(member_routes(), app)
}

fn operator_routes(app: &AppState) -> Router<AppState> {
    let admin = admin_router().layer(axum::middleware::from_fn_with_state(
        app.clone(),
        auth::authenticate,
    ));
    Router::new()
        .nest("/api/v1", admin)
        .route(
            "/api/v1/openapi.json",
            get(|| async {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    OPENAPI_JSON,
                )
            }),
        )
        .merge(console::routes(app.clone()))
}

/// Where Discord sends members and events.
fn member_routes() -> Router<AppState> {
    Router::new()
        .route("/discord/sso/callback", get(link::sso_callback))
        .route(
            "/discord/events",
            post(events::discord_events).layer(DefaultBodyLimit::max(events::MAX_EVENT_BYTES)),
        )
}

/// What every entry point adds: `/healthz`, the problem+json safety net and the request span.
fn finish(routes: Router<AppState>, app: AppState) -> Router {
    routes
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .fallback(|| async { error::ApiError::not_found("route") })
        .layer(axum::middleware::from_fn(error::problem_for_bare_errors))
        .layer(
            tower_http::trace::TraceLayer::new_for_http().make_span_with(
                // Method and path only: query strings carry OAuth codes, states and start tokens.
                |req: &axum::http::Request<_>| {
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path())
                },
            ),
        )
        .with_state(app)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn the_served_openapi_document_is_the_generated_one() {
        let generated = serde_json::to_string_pretty(&openapi()).expect("serialises") + "\n";
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/http/openapi.json");
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(path, &generated).expect("writes openapi.json");
            return;
        }
        assert!(
            OPENAPI_JSON == generated,
            "shared/src/http/openapi.json is stale: run UPDATE_OPENAPI=1 cargo test -p connector --lib openapi"
        );
    }

    #[test]
    fn every_routed_admin_api_call_is_documented_and_every_documented_one_routed() {
        let doc = openapi();
        let documented: BTreeSet<(String, String)> = doc
            .paths
            .paths
            .iter()
            .flat_map(|(path, item)| {
                [
                    ("get", item.get.is_some()),
                    ("put", item.put.is_some()),
                    ("post", item.post.is_some()),
                    ("patch", item.patch.is_some()),
                    ("delete", item.delete.is_some()),
                ]
                .into_iter()
                .filter(|(_, present)| *present)
                .map(move |(m, _)| (m.to_owned(), path.clone()))
            })
            .collect();
        let routed: BTreeSet<(String, String)> = ADMIN_ROUTES
            .iter()
            .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
            .collect();
        assert_eq!(documented, routed);
    }
}
