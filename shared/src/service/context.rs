use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::app::AppState;
use crate::discord::{DiscordClient, RateLimiter};
use crate::domain::{Client, GuildView, Role};

use super::ServiceError;

/// One client with what every operation on it needs: its roles and a Discord client.
pub struct ClientContext {
    pub app: AppState,
    pub client: Client,
    pub roles: Vec<Role>,
    pub discord: DiscordClient,
    /// Mapped roles Discord said no longer exist during this run: unmapped, skipped from now on.
    deleted_roles: Mutex<BTreeSet<String>>,
    /// Set when the guild writer's lease is lost: no further write may be sent.
    lost: Vec<Arc<AtomicBool>>,
}

impl ClientContext {
    pub async fn load(app: &AppState, client_id: &str) -> Result<Self, ServiceError> {
        let client = app
            .store
            .get_client(client_id)
            .await?
            .ok_or(ServiceError::NotFound("client"))?;
        Self::for_client(app, client).await
    }

    pub async fn for_client(app: &AppState, client: Client) -> Result<Self, ServiceError> {
        let roles = app.store.list_roles(&client.id).await?;
        Self::with_roles(app, client, roles).await
    }

    /// For a caller that already read the client's roles.
    pub async fn with_roles(
        app: &AppState,
        client: Client,
        roles: Vec<Role>,
    ) -> Result<Self, ServiceError> {
        let discord = app.discord_for(&client).await?;
        Ok(Self {
            app: app.clone(),
            client,
            roles,
            discord,
            deleted_roles: Mutex::default(),
            lost: Vec::new(),
        })
    }

    /// For the guild's writer: Discord calls wait on the writer's own limiter, and writes stop
    /// once any of `lost` is set.
    pub async fn for_writer(
        app: &AppState,
        client: Client,
        limiter: Arc<RateLimiter>,
        lost: Vec<Arc<AtomicBool>>,
    ) -> Result<Self, ServiceError> {
        let roles = app.store.list_roles(&client.id).await?;
        let discord = app.discord_with_limiter(&client, limiter).await?;
        Ok(Self {
            app: app.clone(),
            client,
            roles,
            discord,
            deleted_roles: Mutex::default(),
            lost,
        })
    }

    /// True once the writer lost its lease: another writer may be working on this guild now.
    pub fn writer_lost(&self) -> bool {
        self.lost.iter().any(|l| l.load(Ordering::SeqCst))
    }

    /// The roles the planner should see: the mirrored ones minus those deleted during this run.
    pub fn live_roles(&self) -> std::borrow::Cow<'_, [Role]> {
        let deleted = self.deleted_roles.lock().unwrap_or_else(|e| e.into_inner());
        if deleted.is_empty() {
            std::borrow::Cow::Borrowed(&self.roles)
        } else {
            std::borrow::Cow::Owned(
                self.roles
                    .iter()
                    .filter(|r| !deleted.contains(&r.id))
                    .cloned()
                    .collect(),
            )
        }
    }

    /// Remembers that Discord no longer has this role; returns whether this is news.
    pub fn forget_role(&self, role_id: &str) -> bool {
        self.deleted_roles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(role_id.to_owned())
    }

    pub fn guild_view<'a>(&'a self, roles: &'a [Role]) -> GuildView<'a> {
        GuildView {
            guild_id: &self.client.guild_id,
            roles,
            bot_top_position: self.client.guild.bot_top_position,
            owner_id: self.client.guild.owner_id.as_deref(),
        }
    }

    pub fn now(&self) -> i64 {
        self.app.clock.now()
    }

    /// Managed (mapped) role ids among `roles`.
    pub fn mapped_subset<'a>(
        &self,
        roles: impl IntoIterator<Item = &'a String>,
    ) -> std::collections::BTreeSet<String> {
        roles
            .into_iter()
            .filter(|id| self.roles.iter().any(|r| &r.id == *id && r.is_mapped()))
            .cloned()
            .collect()
    }
}
