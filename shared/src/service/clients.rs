//! Client (Discord application + guild) lifecycle: configuration in the store, secrets in the
//! Secrets port, roles mirrored as soon as a bot token is known.

use secrecy::SecretString;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::domain::AuditAction;
use crate::domain::Client;
use crate::secrets::ClientSecretKind;
use crate::store::StoreError;

use super::audit::AuditBatch;
use super::roles::{sync_roles, RolesSyncReport};
use super::ServiceError;

/// New secret values sent with a create or update; `None` leaves a secret unchanged.
#[derive(Default)]
pub struct ClientSecrets {
    pub bot_token: Option<SecretString>,
    pub client_secret: Option<SecretString>,
    /// Signs the website webhooks: sent by the operator, or generated when a `webhook_url` is
    /// set without one (then shown once in that answer).
    pub webhook_secret: Option<SecretString>,
}

/// The automatic `roles/sync` after a bot token was set: its report, or why it failed (the client
/// is saved either way, so the operator can fix the guild and sync again).
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum AutoRolesSync {
    Synced(RolesSyncReport),
    Failed { code: String, detail: String },
}

async fn store_secrets(
    app: &AppState,
    id: &str,
    secrets: &ClientSecrets,
) -> Result<(), ServiceError> {
    if let Some(v) = &secrets.bot_token {
        app.secrets
            .put_client_secret(id, ClientSecretKind::BotToken, v)
            .await?;
    }
    if let Some(v) = &secrets.client_secret {
        app.secrets
            .put_client_secret(id, ClientSecretKind::ClientSecret, v)
            .await?;
    }
    if let Some(v) = &secrets.webhook_secret {
        app.secrets
            .put_client_secret(id, ClientSecretKind::WebhookSecret, v)
            .await?;
    }
    Ok(())
}

async fn auto_sync(app: &AppState, id: &str) -> AutoRolesSync {
    match sync_roles(app, id, "admin").await {
        Ok(report) => AutoRolesSync::Synced(report),
        Err(e) => AutoRolesSync::Failed {
            code: match &e {
                ServiceError::Discord(d) => d.code().to_owned(),
                _ => "internal".to_owned(),
            },
            detail: e.to_string(),
        },
    }
}

pub async fn create_client(
    app: &AppState,
    client: Client,
    secrets: ClientSecrets,
) -> Result<(Client, Option<AutoRolesSync>), ServiceError> {
    match app.store.create_client(&client).await {
        Err(StoreError::ClientExists) => {
            return Err(ServiceError::Conflict {
                code: "client_exists",
                message: format!("a client with id {:?} already exists", client.id),
            })
        }
        other => other?,
    }
    // A client saved without its secrets would be unusable: undo on failure.
    if let Err(e) = store_secrets(app, &client.id, &secrets).await {
        let _ = app.store.delete_client(&client.id).await;
        let _ = app.secrets.delete_client_secrets(&client.id).await;
        return Err(e);
    }
    let mut audit = AuditBatch::new(&client.id, "admin", app.clock.now());
    audit.push(
        AuditAction::ClientCreate,
        None,
        None,
        json!({"guild_id": client.guild_id}),
    );
    audit.save(app.store.as_ref()).await?;
    let sync = match secrets.bot_token {
        Some(_) => Some(auto_sync(app, &client.id).await),
        None => None,
    };
    let client = app.store.get_client(&client.id).await?.unwrap_or(client);
    Ok((client, sync))
}

pub async fn update_client(
    app: &AppState,
    client: Client,
    secrets: ClientSecrets,
) -> Result<(Client, Option<AutoRolesSync>), ServiceError> {
    app.store
        .update_client(&client)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ServiceError::NotFound("client"),
            e => e.into(),
        })?;
    store_secrets(app, &client.id, &secrets).await?;
    let mut audit = AuditBatch::new(&client.id, "admin", app.clock.now());
    audit.push(
        AuditAction::ClientUpdate,
        None,
        None,
        json!({"bot_token_changed": secrets.bot_token.is_some(), "client_secret_changed": secrets.client_secret.is_some()}),
    );
    audit.save(app.store.as_ref()).await?;
    let sync = match secrets.bot_token {
        Some(_) => Some(auto_sync(app, &client.id).await),
        None => None,
    };
    let client = app.store.get_client(&client.id).await?.unwrap_or(client);
    Ok((client, sync))
}

pub async fn delete_client(app: &AppState, id: &str) -> Result<(), ServiceError> {
    app.store.delete_client(id).await.map_err(|e| match e {
        StoreError::NotFound => ServiceError::NotFound("client"),
        e => e.into(),
    })?;
    app.secrets.delete_client_secrets(id).await?;
    Ok(())
}
