//! One axum Router: admin API (`/api/v1/…`), the operator console (`/admin`) and SSO
//! (`/discord/sso/…`), served the same way by the self-hosted binary and by the `admin-api`
//! Lambda; the `sso-callback` Lambda serves [`sso_router`], the callback alone.

pub mod auth;
pub mod clients;
pub mod console;
pub mod error;
pub mod extract;
pub mod link;
pub mod roles;
pub mod runs;
pub mod tokens;
pub mod users;
pub mod validate;

use axum::routing::get;
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

fn admin_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
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
        .routes(routes!(runs::run_task))
        .routes(routes!(runs::list_runs))
        .routes(routes!(runs::list_audit))
        .routes(routes!(tokens::create_token, tokens::list_tokens))
        .routes(routes!(tokens::delete_token))
}

/// The OpenAPI document, generated from the handlers so it cannot drift.
pub fn openapi() -> utoipa::openapi::OpenApi {
    admin_routes().split_for_parts().1
}

pub fn router(app: AppState) -> Router {
    let (admin, doc) = admin_routes().split_for_parts();
    let admin = admin.layer(axum::middleware::from_fn_with_state(
        app.clone(),
        auth::authenticate,
    ));
    let routes = Router::new()
        .nest("/api/v1", admin)
        .route(
            "/api/v1/openapi.json",
            get(move || async move { Json(doc) }),
        )
        .merge(console::routes(app.clone()));
    finish(routes, app)
}

/// The SSO callback and `/healthz` only: what the `sso-callback` function serves.
pub fn sso_router(app: AppState) -> Router {
    finish(Router::new(), app)
}

/// The routes every entry point serves, the problem+json safety net and the request span.
fn finish(routes: Router<AppState>, app: AppState) -> Router {
    routes
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/discord/sso/callback", get(link::sso_callback))
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
