use crate::app::AppState;
use crate::discord::DiscordClient;
use crate::domain::{Client, GuildView, Role};

use super::ServiceError;

/// One client with what every operation on it needs: its roles and a Discord client.
pub struct ClientContext {
    pub app: AppState,
    pub client: Client,
    pub roles: Vec<Role>,
    pub discord: DiscordClient,
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
        let discord = app.discord_for(&client).await?;
        Ok(Self {
            app: app.clone(),
            client,
            roles,
            discord,
        })
    }

    pub fn guild_view(&self) -> GuildView<'_> {
        GuildView {
            guild_id: &self.client.guild_id,
            roles: &self.roles,
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
