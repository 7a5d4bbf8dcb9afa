//! Mirroring the guild's roles and mapping site groups to them.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::domain::plan::{plan, Current, Desired};
use crate::domain::AuditAction;
use crate::domain::Role;
use crate::work::dispatch::recheck_all_linked;

use super::audit::AuditBatch;
use super::{ClientContext, ServiceError};

#[derive(Debug, Serialize, ToSchema)]
pub struct RoleView {
    #[serde(flatten)]
    pub role: Role,
    /// Whether the bot can grant and remove this role.
    pub assignable: bool,
    /// Why not, when it can't.
    pub blocked_by: Option<String>,
}

/// Each role with whether the bot can grant and remove it, decided by the planner itself so the
/// API and the console say exactly what the tasks will do.
pub fn role_views(roles: &[Role], guild_id: &str, bot_top: Option<i64>) -> Vec<RoleView> {
    roles
        .iter()
        .map(|r| {
            let probe = [Role {
                groups: BTreeSet::from(["probe".to_owned()]),
                ..r.clone()
            }];
            let p = plan(
                &Desired {
                    roles: BTreeSet::from([r.id.clone()]),
                    nickname: None,
                },
                &Current::default(),
                &crate::domain::GuildView {
                    guild_id,
                    roles: &probe,
                    bot_top_position: bot_top,
                    owner_id: None,
                },
            );
            RoleView {
                role: r.clone(),
                assignable: p.issues.is_empty(),
                blocked_by: p.issues.first().map(|i| i.code().to_owned()),
            }
        })
        .collect()
}

/// What `roles/sync` found.
#[derive(Debug, Serialize, ToSchema)]
pub struct RolesSyncReport {
    pub roles: usize,
    pub bot_user_id: String,
    pub bot_top_position: i64,
    /// Mapped roles that no longer exist in the guild: their mapping was removed.
    pub unmapped: Vec<String>,
}

/// Mirrors the guild's roles, keeps the group mapping of roles that still exist, and learns the
/// bot's highest role and the guild owner so the planner can avoid calls Discord would refuse.
pub async fn sync_roles(
    app: &AppState,
    client_id: &str,
    actor: &str,
) -> Result<RolesSyncReport, ServiceError> {
    let ctx = ClientContext::load(app, client_id).await?;
    let guild_id = ctx.client.guild_id.clone();
    let live = ctx.discord.guild_roles(&guild_id).await?;
    let bot = ctx.discord.bot_user().await?;
    let guild = ctx.discord.guild(&guild_id).await?;
    let bot_member = ctx.discord.get_member(&guild_id, &bot.id).await?;
    let bot_top = live
        .iter()
        .filter(|r| bot_member.roles.contains(&r.id))
        .map(|r| r.position)
        .max()
        .unwrap_or(0);

    let mut roles: Vec<Role> = live
        .iter()
        .map(|r| Role {
            id: r.id.clone(),
            name: r.name.clone(),
            position: r.position,
            managed: r.managed,
            color: r.color,
            groups: ctx
                .roles
                .iter()
                .find(|old| old.id == r.id)
                .map(|old| old.groups.clone())
                .unwrap_or_default(),
        })
        .collect();
    roles.sort_by(|a, b| b.position.cmp(&a.position).then(a.id.cmp(&b.id)));
    let unmapped: Vec<String> = ctx
        .roles
        .iter()
        .filter(|old| old.is_mapped() && !live.iter().any(|r| r.id == old.id))
        .map(|old| old.id.clone())
        .collect();
    app.store.replace_roles(client_id, &roles).await?;

    let mut client = ctx.client.clone();
    client.guild.bot_user_id = Some(bot.id.clone());
    client.guild.bot_top_position = Some(bot_top);
    client.guild.owner_id = Some(guild.owner_id);
    client.guild.synced_at = Some(app.clock.now());
    // The calls above prove the token (a refused one stops them with a 401).
    client.guild.bot_token_ok = Some(true);
    client.updated_at = app.clock.now();
    app.store.update_client(&client).await?;
    // A sync usually follows a fix in Discord (the bot's role moved up, a role moved down): every
    // linked member is re-checked by the next verify, including those refused before.
    recheck_all_linked(app, client_id).await?;

    let mut audit = AuditBatch::new(client_id, actor, app.clock.now());
    audit.push(
        AuditAction::RolesSync,
        None,
        None,
        json!({"roles": roles.len(), "bot_top_position": bot_top, "unmapped": unmapped}),
    );
    audit.save(app.store.as_ref()).await?;
    Ok(RolesSyncReport {
        roles: roles.len(),
        bot_user_id: bot.id,
        bot_top_position: bot_top,
        unmapped,
    })
}

/// Maps site groups to a role (an empty list unmaps it) and marks linked members for a re-check.
pub async fn map_role(
    app: &AppState,
    client_id: &str,
    role_id: &str,
    groups: BTreeSet<String>,
    actor: &str,
) -> Result<Role, ServiceError> {
    let client = app
        .store
        .get_client(client_id)
        .await?
        .ok_or(ServiceError::NotFound("client"))?;
    let roles = app.store.list_roles(client_id).await?;
    let role = roles
        .into_iter()
        .find(|r| r.id == role_id)
        .ok_or(ServiceError::NotFound(
            "role (run roles/sync first if it is new)",
        ))?;
    if !groups.is_empty() {
        if role.id == client.guild_id {
            return Err(ServiceError::invalid(
                "role_id",
                "@everyone cannot be managed",
            ));
        }
        if role.managed {
            return Err(ServiceError::invalid(
                "role_id",
                "this role is managed by Discord (bot, booster or integration) and cannot be assigned",
            ));
        }
    }
    app.store
        .set_role_groups(client_id, role_id, &groups)
        .await?;
    recheck_all_linked(app, client_id).await?;
    let mut audit = AuditBatch::new(client_id, actor, app.clock.now());
    audit.push(
        AuditAction::RoleMap,
        None,
        None,
        json!({"role_id": role_id, "groups": groups}),
    );
    audit.save(app.store.as_ref()).await?;
    Ok(Role { groups, ..role })
}
