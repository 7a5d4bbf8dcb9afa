//! Linked Roles metadata: saving a client's definitions registers them with Discord (one bot
//! call per operator action, like `roles/sync`, so outside the guild writer), and the view shows
//! ours beside what Discord holds.

use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::domain::linked_roles::DiscordMetadataRecord;
use crate::domain::{AuditAction, LinkedRoles};

use crate::work::dispatch::recheck_all_linked;

use super::audit::AuditBatch;
use super::{ClientContext, ServiceError};

/// A client's Linked Roles configuration and the metadata records Discord holds.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkedRolesView {
    /// Ours; `null` when never configured.
    pub config: Option<LinkedRoles>,
    /// What Discord holds for the application (`GET …/role-connections/metadata`).
    pub discord: Vec<DiscordMetadataRecord>,
    /// Discord holds exactly the records ours describe.
    pub in_sync: bool,
}

fn view(config: Option<LinkedRoles>, discord: Vec<DiscordMetadataRecord>) -> LinkedRolesView {
    let ours = config
        .as_ref()
        .map(LinkedRoles::discord_records)
        .unwrap_or_default();
    LinkedRolesView {
        in_sync: ours == discord,
        config,
        discord,
    }
}

/// Validates `config`, registers its records with Discord (replacing the application's set),
/// then stores it on the client. Discord first: a refused registration leaves ours unchanged,
/// so what we store is always what Discord accepted.
pub async fn save_linked_roles(
    app: &AppState,
    client_id: &str,
    config: LinkedRoles,
    actor: &str,
) -> Result<LinkedRolesView, ServiceError> {
    config
        .validate()
        .map_err(|e| ServiceError::invalid(e.field, e.message))?;
    let ctx = ClientContext::load(app, client_id).await?;
    let held = ctx
        .discord
        .put_role_connection_metadata(
            &config.discord_records(),
            "Linked Roles metadata saved by an operator",
        )
        .await?;
    let mut client = ctx.client.clone();
    let enabled = config.enabled;
    client.linked_roles = Some(config.clone());
    client.updated_at = app.clock.now();
    app.store.update_client(&client).await?;
    if enabled {
        // Every linked member's role connection is (re)computed by the writer; only those whose
        // metadata differs from the last push reach Discord.
        recheck_all_linked(app, client_id).await?;
    }

    let mut audit = AuditBatch::new(client_id, actor, app.clock.now());
    audit.push(
        AuditAction::ClientUpdate,
        None,
        None,
        json!({"linked_roles": {
            "enabled": config.enabled,
            "keys": config.metadata.iter().map(|m| m.key.as_str()).collect::<Vec<_>>(),
        }}),
    );
    audit.save(app.store.as_ref()).await?;
    Ok(view(Some(config), held))
}

/// Ours and, asked now, what Discord holds.
pub async fn linked_roles(
    app: &AppState,
    client_id: &str,
) -> Result<LinkedRolesView, ServiceError> {
    let ctx = ClientContext::load(app, client_id).await?;
    let held = ctx.discord.role_connection_metadata().await?;
    Ok(view(ctx.client.linked_roles.clone(), held))
}
