//! `/clients`: client configuration. Secrets are write-only: views only say whether one is set.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::domain::client::{DiscordUrlPolicy, DEFAULT_API_BASE, DEFAULT_AUTHORIZE_URL};
use crate::domain::{Client, GuildFacts, SourceOfTruth, UnlinkPolicy};
use crate::secrets::ClientSecretKind;
use crate::service::clients::{self as svc, AutoRolesSync, ClientSecrets};

use super::error::{ApiError, ApiResult, Problem};
use super::extract::{ApiJson, ApiPath};
use super::validate::{self, double_option};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientInput {
    /// URL-safe id used in paths; derived from `name` when absent.
    pub id: Option<String>,
    pub name: String,
    pub guild_id: String,
    /// The Discord application's id.
    pub client_id: String,
    /// Write-only.
    #[schema(value_type = Option<String>)]
    pub client_secret: Option<SecretString>,
    /// Write-only.
    #[schema(value_type = Option<String>)]
    pub bot_token: Option<SecretString>,
    pub callback_url: String,
    pub invite_link: Option<String>,
    pub nickname_template: Option<String>,
    #[serde(default)]
    pub unlink_policy: UnlinkPolicy,
    #[serde(default)]
    pub source_of_truth: SourceOfTruth,
    #[serde(default)]
    pub return_to_origins: Vec<String>,
    pub discord_api_base: Option<String>,
    pub discord_authorize_url: Option<String>,
    /// The application's public key (General Information in the developer portal, 64 hex
    /// digits): verifies Discord's Webhook Events. Without it, events are refused.
    pub public_key: Option<String>,
    /// Where the website receives signed webhooks: `https://`, or `http://` to localhost.
    pub webhook_url: Option<String>,
    /// Write-only, `whsec_` + base64 of 24-64 bytes; generated (and answered once) when a
    /// `webhook_url` comes without one.
    #[schema(value_type = Option<String>)]
    pub webhook_secret: Option<SecretString>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientPatch {
    pub name: Option<String>,
    pub guild_id: Option<String>,
    pub client_id: Option<String>,
    #[schema(value_type = Option<String>)]
    pub client_secret: Option<SecretString>,
    #[schema(value_type = Option<String>)]
    pub bot_token: Option<SecretString>,
    pub callback_url: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub invite_link: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub nickname_template: Option<Option<String>>,
    pub unlink_policy: Option<UnlinkPolicy>,
    pub source_of_truth: Option<SourceOfTruth>,
    pub return_to_origins: Option<Vec<String>>,
    pub discord_api_base: Option<String>,
    pub discord_authorize_url: Option<String>,
    /// `null` removes it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub public_key: Option<Option<String>>,
    /// `null` removes it (no more webhooks; pending ones fail).
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub webhook_url: Option<Option<String>>,
    /// Write-only; replaces the signing secret.
    #[schema(value_type = Option<String>)]
    pub webhook_secret: Option<SecretString>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClientView {
    pub id: String,
    pub name: String,
    pub guild_id: String,
    pub client_id: String,
    pub callback_url: String,
    pub invite_link: Option<String>,
    pub nickname_template: Option<String>,
    pub unlink_policy: UnlinkPolicy,
    pub source_of_truth: SourceOfTruth,
    pub return_to_origins: Vec<String>,
    pub discord_api_base: String,
    pub discord_authorize_url: String,
    /// Public, not a secret: shown as it is.
    pub public_key: Option<String>,
    pub has_bot_token: bool,
    pub has_client_secret: bool,
    pub webhook_url: Option<String>,
    pub has_webhook_secret: bool,
    /// Only in the answer of the create/update that generated it: store it now, it is never
    /// shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
    pub guild: GuildFacts,
    pub created_at: i64,
    pub updated_at: i64,
    /// Present after a create/update that set a bot token: the automatic roles/sync.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles_sync: Option<AutoRolesSync>,
}

pub(crate) async fn view(
    app: &AppState,
    c: Client,
    roles_sync: Option<AutoRolesSync>,
) -> ApiResult<ClientView> {
    let has = |kind| {
        let secrets = app.secrets.clone();
        let id = c.id.clone();
        async move {
            secrets
                .get_client_secret(&id, kind)
                .await
                .map(|s| s.is_some())
                .map_err(|e| ApiError::from(crate::service::ServiceError::from(e)))
        }
    };
    let has_bot_token = has(ClientSecretKind::BotToken).await?;
    let has_client_secret = has(ClientSecretKind::ClientSecret).await?;
    let has_webhook_secret = has(ClientSecretKind::WebhookSecret).await?;
    Ok(ClientView {
        id: c.id,
        name: c.name,
        guild_id: c.guild_id,
        client_id: c.client_id,
        callback_url: c.callback_url,
        invite_link: c.invite_link,
        nickname_template: c.nickname_template,
        unlink_policy: c.unlink_policy,
        source_of_truth: c.source_of_truth,
        return_to_origins: c.return_to_origins,
        discord_api_base: c.discord_api_base,
        discord_authorize_url: c.discord_authorize_url,
        public_key: c.public_key,
        has_bot_token,
        has_client_secret,
        webhook_url: c.webhook_url,
        has_webhook_secret,
        webhook_secret: None,
        guild: c.guild,
        created_at: c.created_at,
        updated_at: c.updated_at,
        roles_sync,
    })
}

fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out: String = out.trim_end_matches('-').chars().take(64).collect();
    if out.is_empty() {
        uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
    } else {
        out
    }
}

/// Checks every field of a client as it will be stored; the Discord URLs must be Discord's unless
/// the deployment allows others (`policy`).
fn check(c: &mut Client, policy: DiscordUrlPolicy) -> Result<(), ApiError> {
    validate::client_id_slug("id", &c.id)?;
    validate::text("name", &c.name, 100)?;
    validate::snowflake("guild_id", &c.guild_id)?;
    validate::snowflake("client_id", &c.client_id)?;
    validate::http_url("callback_url", &c.callback_url)?;
    if let Some(l) = &c.invite_link {
        validate::http_url("invite_link", l)?;
    }
    if let Some(t) = &c.nickname_template {
        validate::text("nickname_template", t, 200)?;
    }
    c.discord_api_base = validate::discord_url(
        "discord_api_base",
        &c.discord_api_base,
        DEFAULT_API_BASE,
        policy,
    )?;
    c.discord_authorize_url = validate::discord_url(
        "discord_authorize_url",
        &c.discord_authorize_url,
        DEFAULT_AUTHORIZE_URL,
        policy,
    )?;
    if let Some(k) = &c.public_key {
        c.public_key = Some(validate::public_key("public_key", k)?);
    }
    if let Some(u) = &c.webhook_url {
        c.webhook_url = Some(validate::webhook_url("webhook_url", u)?);
    }
    Ok(())
}

/// A change of where the secrets go (a Discord URL) or of whose they are (`client_id`) must come
/// with the secrets again: otherwise a caller who may only edit the configuration could send the
/// stored bot token and client secret somewhere else.
fn check_secrets_resent(
    before: &Client,
    after: &Client,
    bot_token_sent: bool,
    client_secret_sent: bool,
) -> Result<(), ApiError> {
    let changed = [
        (
            "discord_api_base",
            before.discord_api_base != after.discord_api_base,
        ),
        (
            "discord_authorize_url",
            before.discord_authorize_url != after.discord_authorize_url,
        ),
        ("client_id", before.client_id != after.client_id),
    ];
    let Some((why, _)) = changed.iter().find(|(_, changed)| *changed) else {
        return Ok(());
    };
    for (field, sent) in [
        ("bot_token", bot_token_sent),
        ("client_secret", client_secret_sent),
    ] {
        if !sent {
            return Err(ApiError::invalid(
                field,
                format!("required when {why} changes: send bot_token and client_secret again"),
            ));
        }
    }
    Ok(())
}

fn check_secrets(secrets: &ClientSecrets) -> Result<(), ApiError> {
    use secrecy::ExposeSecret;
    if let Some(t) = &secrets.bot_token {
        validate::secret("bot_token", t.expose_secret())?;
    }
    if let Some(s) = &secrets.client_secret {
        validate::secret("client_secret", s.expose_secret())?;
    }
    if let Some(s) = &secrets.webhook_secret {
        validate::webhook_secret("webhook_secret", s.expose_secret())?;
    }
    Ok(())
}

/// A webhook URL needs a signing secret: when none is stored or sent, one is made here and put
/// in `secrets`; the answer is it, to show once.
fn generate_webhook_secret(
    client: &Client,
    secrets: &mut ClientSecrets,
    exists: bool,
) -> Option<String> {
    if client.webhook_url.is_none() || secrets.webhook_secret.is_some() || exists {
        return None;
    }
    let secret = crate::domain::webhook::new_webhook_secret();
    secrets.webhook_secret = Some(SecretString::from(secret.clone()));
    Some(secret)
}

async fn has_webhook_secret(app: &AppState, client: &str) -> ApiResult<bool> {
    app.secrets
        .get_client_secret(client, ClientSecretKind::WebhookSecret)
        .await
        .map(|s| s.is_some())
        .map_err(|e| ApiError::from(crate::service::ServiceError::from(e)))
}

/// Each origin validated and normalised to `scheme://host[:port]`.
fn normalise_origins(origins: Vec<String>) -> Result<Vec<String>, ApiError> {
    origins
        .iter()
        .enumerate()
        .map(|(i, o)| validate::origin(&format!("return_to_origins[{i}]"), o))
        .collect()
}

#[utoipa::path(post, path = "/clients", tag = "clients", request_body = ClientInput,
    responses((status = 201, body = ClientView), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_client(
    State(app): State<AppState>,
    ApiJson(input): ApiJson<ClientInput>,
) -> ApiResult<(StatusCode, Json<ClientView>)> {
    let (client, mut secrets) = new_client(&app, input)?;
    let generated = generate_webhook_secret(&client, &mut secrets, false);
    let (client, sync) = svc::create_client(&app, client, secrets).await?;
    let mut view = view(&app, client, sync).await?;
    view.webhook_secret = generated;
    Ok((StatusCode::CREATED, Json(view)))
}

/// A new client from its input, every field checked as the API checks it (the console's
/// guided setup uses this too).
pub fn new_client(app: &AppState, input: ClientInput) -> Result<(Client, ClientSecrets), ApiError> {
    let now = app.clock.now();
    let mut client = Client {
        id: input.id.clone().unwrap_or_else(|| slug(&input.name)),
        name: input.name,
        guild_id: input.guild_id,
        client_id: input.client_id,
        callback_url: input.callback_url,
        invite_link: input.invite_link,
        nickname_template: input.nickname_template,
        unlink_policy: input.unlink_policy,
        source_of_truth: input.source_of_truth,
        return_to_origins: normalise_origins(input.return_to_origins)?,
        discord_api_base: input
            .discord_api_base
            .unwrap_or_else(|| DEFAULT_API_BASE.to_owned()),
        discord_authorize_url: input
            .discord_authorize_url
            .unwrap_or_else(|| DEFAULT_AUTHORIZE_URL.to_owned()),
        public_key: input.public_key,
        webhook_url: input.webhook_url,
        linked_roles: None,
        guild: GuildFacts::default(),
        created_at: now,
        updated_at: now,
    };
    check(&mut client, app.discord_urls)?;
    let secrets = ClientSecrets {
        bot_token: input.bot_token,
        client_secret: input.client_secret,
        webhook_secret: input.webhook_secret,
    };
    check_secrets(&secrets)?;
    Ok((client, secrets))
}

#[utoipa::path(get, path = "/clients", tag = "clients", responses((status = 200, body = [ClientView])))]
pub async fn list_clients(State(app): State<AppState>) -> ApiResult<Json<Vec<ClientView>>> {
    let mut out = Vec::new();
    for c in app.store.list_clients().await? {
        out.push(view(&app, c, None).await?);
    }
    Ok(Json(out))
}

#[utoipa::path(get, path = "/clients/{client}", tag = "clients",
    params(("client" = String, Path)), responses((status = 200, body = ClientView), (status = 404, body = Problem)))]
pub async fn get_client(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ClientView>> {
    let c = app
        .store
        .get_client(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("client"))?;
    Ok(Json(view(&app, c, None).await?))
}

#[utoipa::path(patch, path = "/clients/{client}", tag = "clients", request_body = ClientPatch,
    params(("client" = String, Path)),
    responses((status = 200, body = ClientView), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn patch_client(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(p): ApiJson<ClientPatch>,
) -> ApiResult<Json<ClientView>> {
    let before = app
        .store
        .get_client(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("client"))?;
    Ok(Json(update_client(&app, &before, p).await?))
}

/// Applies a patch as `PATCH /clients/{client}` does (the console's webhook form too): checked,
/// stored, and a webhook secret generated when a URL needs one — in the answer this once.
pub async fn update_client(
    app: &AppState,
    before: &Client,
    p: ClientPatch,
) -> ApiResult<ClientView> {
    let (c, mut secrets) = patched_client(app, before, p)?;
    let exists = has_webhook_secret(app, &c.id).await?;
    let generated = generate_webhook_secret(&c, &mut secrets, exists);
    let (c, sync) = svc::update_client(app, c, secrets).await?;
    let mut view = view(app, c, sync).await?;
    view.webhook_secret = generated;
    Ok(view)
}

/// `before` with a patch applied, checked as a new client is; a change of where or whose the
/// secrets are must come with the secrets again.
pub fn patched_client(
    app: &AppState,
    before: &Client,
    p: ClientPatch,
) -> Result<(Client, ClientSecrets), ApiError> {
    let mut c = before.clone();
    macro_rules! set {
        ($($f:ident),*) => { $( if let Some(v) = p.$f { c.$f = v; } )* };
    }
    set!(
        name,
        guild_id,
        client_id,
        callback_url,
        invite_link,
        nickname_template,
        unlink_policy,
        source_of_truth,
        discord_api_base,
        discord_authorize_url,
        public_key,
        webhook_url
    );
    if let Some(o) = p.return_to_origins {
        c.return_to_origins = normalise_origins(o)?;
    }
    c.updated_at = app.clock.now();
    check(&mut c, app.discord_urls)?;
    check_secrets_resent(before, &c, p.bot_token.is_some(), p.client_secret.is_some())?;
    let secrets = ClientSecrets {
        bot_token: p.bot_token,
        client_secret: p.client_secret,
        webhook_secret: p.webhook_secret,
    };
    check_secrets(&secrets)?;
    Ok((c, secrets))
}

#[utoipa::path(delete, path = "/clients/{client}", tag = "clients",
    params(("client" = String, Path)), responses((status = 204), (status = 404, body = Problem)))]
pub async fn delete_client(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    svc::delete_client(&app, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
