//! The guild writer: whoever writes to a guild's members holds the guild's lease, renewed while
//! it works — whatever the number of processes or Lambda instances.
//!
//! - **One writer per guild and bot.** `writer:guild:<bot>:<guild id>` is a [`HeldLease`]: a
//!   second run, API instance or process with the same bot finds it taken and waits for it. Its
//!   limiter is the only one spending the bot's route buckets on that guild (Discord limits per
//!   account: another bot's writes on the same guild count against that bot's own buckets, so two
//!   clients with their own bots on one server never wait for each other), and what it learned
//!   (remaining, reset) is handed over with the lease, so the next holder does not burst into a
//!   used-up window.
//! - **The bot's global budget (50/s) is split, not shared at run time.** A writer also holds
//!   one of [`BOT_WRITER_SLOTS`] slot leases of its bot token and limits itself to
//!   50 / [`BOT_WRITER_SLOTS`] requests per second (rounded down), so all writers of one bot
//!   token together stay under Discord's global limit however many processes run them — no store
//!   round trip per request. A slot hands its last second of sends to its next holder, so a slot
//!   that changes hands within a second does not send its share twice. A guild's member-role bucket allows about 1 write per second, well below a
//!   writer's share; a bot with more guilds with work than slots drains them in turns.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use rand::Rng;

use crate::app::{bot_key, AppState, DISCORD_GLOBAL_PER_SECOND};
use crate::discord::RateLimiter;
use crate::domain::Client;
use crate::secrets::ClientSecretKind;
use crate::service::ServiceError;

use super::lease::{HandoverSource, HeldLease};

/// Writers one bot token may run at once, across every process.
pub const BOT_WRITER_SLOTS: u32 = 12;

/// Requests per second one writer may send: its share of the bot's global limit, rounded down
/// (12 × 4 = 48/s keeps a margin below 50/s for network jitter between our clock and Discord's).
pub const fn writer_share_per_second() -> u32 {
    DISCORD_GLOBAL_PER_SECOND / BOT_WRITER_SLOTS
}

/// The lease of a bot's writer on a guild; `bot` is [`bot_key`] of its token.
pub fn guild_lease_name(bot: &str, guild_id: &str) -> String {
    format!("writer:guild:{}:{guild_id}", short(bot))
}

fn slot_lease_name(bot: &str, slot: u32) -> String {
    format!("writer:bot:{}:{slot}", short(bot))
}

/// 16 hex characters of the token's SHA-256 tell bots apart without naming the token.
fn short(bot: &str) -> &str {
    &bot[..bot.len().min(16)]
}

/// The right to write to one guild's members, held until [`GuildWriter::release`] (or, if the
/// process dies, for at most the lease TTL).
pub struct GuildWriter {
    guild: HeldLease,
    slot: HeldLease,
    guild_id: String,
    limiter: Arc<RateLimiter>,
}

impl std::fmt::Debug for GuildWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuildWriter")
            .field("guild", &self.guild_id)
            .field("slot", &self.slot.name())
            .finish_non_exhaustive()
    }
}

impl GuildWriter {
    /// Claims the client's guild (for its bot) and a slot of its bot token; `None` when another
    /// writer of the same bot has the guild (the job waits for it, see `worker::run_job`). Every slot of the
    /// bot taken is [`ServiceError::BotBusy`]: slots free up within seconds, so callers retry.
    pub async fn claim(app: &AppState, client: &Client) -> Result<Option<Self>, ServiceError> {
        let bot_token = app
            .secrets
            .get_client_secret(&client.id, ClientSecretKind::BotToken)
            .await?;
        let bot = bot_key(bot_token.as_ref());
        let guild_id = client.guild_id.clone();
        let limiter = Arc::new(RateLimiter::new(writer_share_per_second()));
        let source: HandoverSource = {
            let (limiter, guild_id) = (limiter.clone(), guild_id.clone());
            Arc::new(move || Some(limiter.export_major(&guild_id)))
        };
        let Some(guild) = HeldLease::acquire(
            app.store.clone(),
            app.clock.clone(),
            &guild_lease_name(&bot, &guild_id),
            Some(source),
        )
        .await?
        else {
            return Ok(None);
        };
        if let Some(handover) = guild.handover() {
            limiter.import_major(&guild_id, handover);
        }
        // Start at a random slot so writers do not all contend for slot 0.
        let first = rand::thread_rng().gen_range(0..BOT_WRITER_SLOTS);
        for i in 0..BOT_WRITER_SLOTS {
            let name = slot_lease_name(&bot, (first + i) % BOT_WRITER_SLOTS);
            if let Some(slot) =
                HeldLease::acquire(app.store.clone(), app.clock.clone(), &name, None).await?
            {
                // The slot's previous holder may have used its share a moment ago.
                if let Some(sent) = slot.handover() {
                    limiter.import_global(sent);
                }
                return Ok(Some(Self {
                    guild,
                    slot,
                    guild_id,
                    limiter,
                }));
            }
        }
        tracing::info!(client = %client.id, "every writer slot of this bot is taken; the work waits");
        let handover = limiter.export_major(&guild_id);
        guild.release(Some(&handover)).await?;
        Err(ServiceError::BotBusy)
    }

    /// The limiter this writer's Discord calls wait on.
    pub fn limiter(&self) -> Arc<RateLimiter> {
        self.limiter.clone()
    }

    /// Flags set when either lease is lost: the writer must stop before its next write.
    pub fn lost_flags(&self) -> Vec<Arc<AtomicBool>> {
        vec![self.guild.lost_flag(), self.slot.lost_flag()]
    }

    /// Frees both leases at once, handing the guild's rate-limit knowledge to the next writer.
    pub async fn release(self) -> Result<(), ServiceError> {
        let handover = self.limiter.export_major(&self.guild_id);
        self.guild.release(Some(&handover)).await?;
        let sent = self.limiter.export_global();
        self.slot.release(Some(&sent)).await?;
        Ok(())
    }
}
