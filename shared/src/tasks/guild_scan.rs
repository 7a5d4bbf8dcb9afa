//! Walks Discord's member list (1,000 per request, ascending user id) and our linked members
//! (same order, from the store) side by side: every linked member is matched to their live
//! state, found missing, or every unlinked guild member counted — with memory flat in guild size.
//! Without the GUILD_MEMBERS intent (403 50001) it falls back to one GET per linked member.

use std::collections::VecDeque;

use crate::discord::{DiscordClient, DiscordError, GuildMember};
use crate::domain::Member;
use crate::service::{ClientContext, ServiceError};

/// Discord's largest member-list page.
pub const PAGE: u16 = 1000;
/// Linked members read from the store per fallback batch.
const FALLBACK_BATCH: usize = 100;

/// One thing the scan saw, in ascending Discord user id.
#[derive(Debug)]
pub enum Seen {
    /// A linked member and their live state.
    Linked(Member, GuildMember),
    /// A linked member who is not in the guild.
    Missing(Member),
    /// A guild member no site user links (bots excluded).
    Unlinked(GuildMember),
    /// Fallback mode: reading this member failed.
    Failed(Member, DiscordError),
}

impl Seen {
    /// The Discord user id: the scan position after this item.
    pub fn discord_id(&self) -> Option<u64> {
        let id = match self {
            Seen::Linked(m, _) | Seen::Missing(m) | Seen::Failed(m, _) => {
                m.link.as_ref().map(|l| l.discord_user_id.as_str())
            }
            Seen::Unlinked(g) => g.user.as_ref().map(|u| u.id.as_str()),
        };
        id.and_then(|s| s.parse().ok())
    }
}

type PageFetch = tokio::task::JoinHandle<Result<Vec<GuildMember>, DiscordError>>;

pub struct GuildScan {
    /// The next member-list page, already requested: it waits for its rate-limit slot while the
    /// caller works on the current page, so list and write buckets drain side by side.
    prefetch: Option<PageFetch>,
    live_after: Option<u64>,
    live_done: bool,
    ours: VecDeque<(u64, Member)>,
    ours_after: Option<u64>,
    ours_done: bool,
    /// Set once Discord refused the member list (no GUILD_MEMBERS intent).
    pub fallback: bool,
}

impl GuildScan {
    /// A scan from the start, or resuming after a Discord user id.
    pub fn new(after: Option<u64>) -> Self {
        Self {
            prefetch: None,
            live_after: after,
            live_done: false,
            ours: VecDeque::new(),
            ours_after: after,
            ours_done: false,
            fallback: false,
        }
    }

    /// The next batch, or `None` when both lists are exhausted.
    pub async fn next_batch(
        &mut self,
        ctx: &ClientContext,
    ) -> Result<Option<Vec<Seen>>, ServiceError> {
        if self.fallback {
            return self.next_fallback_batch(ctx).await;
        }
        if self.live_done {
            self.fill_ours(ctx).await?;
            if self.ours.is_empty() {
                return Ok(None);
            }
            return Ok(Some(
                self.ours.drain(..).map(|(_, m)| Seen::Missing(m)).collect(),
            ));
        }
        let fetched = match self.prefetch.take() {
            Some(handle) => handle
                .await
                .map_err(|e| ServiceError::Discord(DiscordError::Transport(e.to_string())))?,
            None => {
                fetch_page(
                    ctx.discord.clone(),
                    ctx.client.guild_id.clone(),
                    self.live_after,
                )
                .await
            }
        };
        let page = match fetched {
            Ok(page) => page,
            Err(DiscordError::MissingAccess) => {
                self.fallback = true;
                return self.next_fallback_batch(ctx).await;
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(last) = page
            .last()
            .and_then(|m| m.user.as_ref())
            .and_then(|u| u.id.parse::<u64>().ok())
        {
            if page.len() == usize::from(PAGE) {
                let (discord, guild) = (ctx.discord.clone(), ctx.client.guild_id.clone());
                self.prefetch = Some(tokio::spawn(fetch_page(discord, guild, Some(last))));
            }
        }
        self.live_done = page.len() < usize::from(PAGE);
        let mut out = Vec::with_capacity(page.len());
        for live in page {
            let Some(id) = live.user.as_ref().and_then(|u| u.id.parse::<u64>().ok()) else {
                continue;
            };
            self.live_after = Some(id);
            let mut matched = None;
            loop {
                if self.ours.is_empty() {
                    self.fill_ours(ctx).await?;
                }
                match self.ours.front() {
                    Some((ours_id, _)) if *ours_id < id => {
                        let (_, m) = self.ours.pop_front().expect("front exists");
                        out.push(Seen::Missing(m));
                    }
                    Some((ours_id, _)) if *ours_id == id => {
                        matched = self.ours.pop_front().map(|(_, m)| m);
                        break;
                    }
                    _ => break,
                }
            }
            match matched {
                Some(m) => out.push(Seen::Linked(m, live)),
                None if live.user.as_ref().is_some_and(|u| u.bot == Some(true)) => {}
                None => out.push(Seen::Unlinked(live)),
            }
        }
        Ok(Some(out))
    }

    /// Where the scan started (the resume point), before any batch.
    pub fn position(&self) -> Option<u64> {
        self.live_after
    }

    /// Stops a prefetch the caller will not use (the run ran out of time).
    pub fn abandon(&mut self) {
        if let Some(handle) = self.prefetch.take() {
            handle.abort();
        }
    }

    async fn fill_ours(&mut self, ctx: &ClientContext) -> Result<(), ServiceError> {
        if self.ours_done || !self.ours.is_empty() {
            return Ok(());
        }
        let page = ctx
            .app
            .store
            .list_linked_by_discord(&ctx.client.id, self.ours_after, usize::from(PAGE))
            .await?;
        self.ours_done = page.next.is_none();
        for m in page.items {
            if let Some(id) = m
                .link
                .as_ref()
                .and_then(|l| l.discord_user_id.parse::<u64>().ok())
            {
                self.ours_after = Some(id);
                self.ours.push_back((id, m));
            }
        }
        Ok(())
    }

    async fn next_fallback_batch(
        &mut self,
        ctx: &ClientContext,
    ) -> Result<Option<Vec<Seen>>, ServiceError> {
        if self.ours_done && self.ours.is_empty() {
            return Ok(None);
        }
        if self.ours.is_empty() {
            let page = ctx
                .app
                .store
                .list_linked_by_discord(&ctx.client.id, self.ours_after, FALLBACK_BATCH)
                .await?;
            self.ours_done = page.next.is_none();
            for m in page.items {
                if let Some(id) = m
                    .link
                    .as_ref()
                    .and_then(|l| l.discord_user_id.parse::<u64>().ok())
                {
                    self.ours_after = Some(id);
                    self.ours.push_back((id, m));
                }
            }
        }
        let mut out = Vec::with_capacity(self.ours.len());
        for (_, m) in self.ours.drain(..) {
            let Some(link) = m.link.as_ref() else {
                continue;
            };
            match ctx
                .discord
                .get_member(&ctx.client.guild_id, &link.discord_user_id)
                .await
            {
                Ok(live) => out.push(Seen::Linked(m, live)),
                Err(DiscordError::UnknownMember) => out.push(Seen::Missing(m)),
                Err(e @ DiscordError::BotTokenRejected) => return Err(e.into()),
                Err(e) => out.push(Seen::Failed(m, e)),
            }
        }
        Ok(Some(out))
    }
}

async fn fetch_page(
    discord: DiscordClient,
    guild: String,
    after: Option<u64>,
) -> Result<Vec<GuildMember>, DiscordError> {
    let after = after.map(|a| a.to_string());
    discord.list_members(&guild, after.as_deref(), PAGE).await
}

impl Drop for GuildScan {
    fn drop(&mut self) {
        self.abandon();
    }
}
