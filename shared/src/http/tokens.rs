//! `/tokens`: scoped API tokens (operator only). A token is shown once, when it is made; the
//! store keeps its SHA-256.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::{random_token, state_hash, AppState};
use crate::domain::{ApiToken, TokenScope};

use super::error::{ApiError, ApiResult, Problem};
use super::extract::{ApiJson, ApiPath};
use super::validate;

/// What every token starts with, so a leaked one is recognisable (secret scanners, logs).
pub const TOKEN_PREFIX: &str = "dct_";

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenInput {
    /// What the token is for, e.g. `website backend`.
    pub name: String,
    pub scope: TokenScope,
    /// The clients a `site` token may act on (required for `site`, empty for `operator`).
    #[serde(default)]
    pub clients: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    pub scope: TokenScope,
    pub clients: Vec<String>,
    /// The token's first characters, to tell tokens apart.
    pub prefix: String,
    pub created_at: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub view: TokenView,
    /// The bearer token. Shown this once: only its SHA-256 is stored.
    pub token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenList {
    pub items: Vec<TokenView>,
}

impl From<ApiToken> for TokenView {
    fn from(t: ApiToken) -> Self {
        TokenView {
            id: t.id,
            name: t.name,
            scope: t.scope,
            clients: t.clients,
            prefix: t.prefix,
            created_at: t.created_at,
        }
    }
}

#[utoipa::path(post, path = "/tokens", tag = "tokens", request_body = TokenInput,
    responses((status = 201, body = CreatedToken), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create_token(
    State(app): State<AppState>,
    ApiJson(input): ApiJson<TokenInput>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    validate::text("name", &input.name, 100)?;
    match input.scope {
        TokenScope::Site if input.clients.is_empty() => {
            return Err(ApiError::invalid(
                "clients",
                "a site token needs the clients it may act on",
            ));
        }
        TokenScope::Operator if !input.clients.is_empty() => {
            return Err(ApiError::invalid(
                "clients",
                "an operator token acts on every client; leave clients empty",
            ));
        }
        _ => {}
    }
    for (i, client) in input.clients.iter().enumerate() {
        let field = format!("clients[{i}]");
        validate::key(&field, client)?;
        if app.store.get_client(client).await?.is_none() {
            return Err(ApiError::invalid(field, format!("no client {client:?}")));
        }
    }
    let token = format!("{TOKEN_PREFIX}{}", random_token(32));
    let stored = ApiToken {
        id: uuid::Uuid::new_v4().simple().to_string(),
        name: input.name,
        scope: input.scope,
        clients: input.clients,
        token_sha256: state_hash(&token),
        prefix: token.chars().take(TOKEN_PREFIX.len() + 4).collect(),
        created_at: app.clock.now(),
    };
    app.store.put_api_token(&stored).await?;
    tracing::info!(id = %stored.id, scope = ?stored.scope, "API token created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            view: stored.into(),
            token,
        }),
    ))
}

#[utoipa::path(get, path = "/tokens", tag = "tokens",
    responses((status = 200, body = TokenList), (status = 403, body = Problem)))]
pub async fn list_tokens(State(app): State<AppState>) -> ApiResult<Json<TokenList>> {
    let items = app.store.list_api_tokens().await?;
    Ok(Json(TokenList {
        items: items.into_iter().map(TokenView::from).collect(),
    }))
}

#[utoipa::path(delete, path = "/tokens/{id}", tag = "tokens",
    params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn delete_token(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    if app.store.delete_api_token(&id).await? {
        tracing::info!(id = %id, "API token revoked");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("token"))
    }
}
