//! How a client stands: the setup check against Discord (bot token, bot in the guild, the
//! members intent, roles, hierarchy), the bot's least-privilege invite link, and the summary
//! the console's dashboard shows (members, last runs, 429s).

use serde::Serialize;

use crate::app::AppState;
use crate::discord::DiscordError;
use crate::domain::{Client, MemberCounts, Role, RunReport, TaskName, UnlinkPolicy};
use crate::schedule::{default_schedule, parse_rate};

use super::roles::{role_views, sync_roles, RoleView};
use super::{ClientContext, ServiceError};

/// Discord permission bits the bot needs (and nothing else): Create Instant Invite (adding a
/// member with `guilds.join`), Manage Roles, Manage Nicknames; Kick Members only when the unlink
/// policy kicks.
const CREATE_INSTANT_INVITE: u64 = 1 << 0;
const KICK_MEMBERS: u64 = 1 << 1;
const MANAGE_NICKNAMES: u64 = 1 << 27;
const MANAGE_ROLES: u64 = 1 << 28;

pub fn bot_permissions(client: &Client) -> u64 {
    let kick = match client.unlink_policy {
        UnlinkPolicy::Kick => KICK_MEMBERS,
        UnlinkPolicy::RemoveRoles => 0,
    };
    CREATE_INSTANT_INVITE | MANAGE_ROLES | MANAGE_NICKNAMES | kick
}

/// The link that adds the bot to the client's guild (preselected, not changeable) with exactly
/// [`bot_permissions`].
pub fn bot_invite_url(client: &Client) -> String {
    let mut url = url::Url::parse(&client.discord_authorize_url).unwrap_or_else(|_| {
        url::Url::parse(crate::domain::client::DEFAULT_AUTHORIZE_URL).expect("a valid constant URL")
    });
    url.query_pairs_mut()
        .clear()
        .append_pair("client_id", &client.client_id)
        .append_pair("scope", "bot")
        .append_pair("permissions", &bot_permissions(client).to_string())
        .append_pair("guild_id", &client.guild_id)
        .append_pair("disable_guild_select", "true");
    url.into()
}

/// What the setup check found, step by step; a step after a failed one is not tried (`None`).
#[derive(Debug, Default, Serialize)]
pub struct SetupCheck {
    pub bot_token_ok: Option<bool>,
    pub bot_in_guild: Option<bool>,
    pub members_intent: Option<bool>,
    pub roles_synced: Option<usize>,
    /// The failure in words, when a step failed for another reason (Discord down, a secret
    /// missing).
    pub problem: Option<String>,
}

/// Runs the setup checks against Discord — a roles sync (which proves the bot token and that
/// the bot is in the guild) and a one-member read of the member list (which proves the members
/// intent) — and records the outcome on the client for the dashboard.
pub async fn check_setup(
    app: &AppState,
    client_id: &str,
    actor: &str,
) -> Result<SetupCheck, ServiceError> {
    let mut check = SetupCheck::default();
    match sync_roles(app, client_id, actor).await {
        Ok(report) => {
            check.bot_token_ok = Some(true);
            check.bot_in_guild = Some(true);
            check.roles_synced = Some(report.roles);
        }
        Err(ServiceError::Discord(DiscordError::BotTokenRejected)) => {
            check.bot_token_ok = Some(false);
        }
        Err(ServiceError::Discord(
            DiscordError::UnknownGuild | DiscordError::MissingAccess | DiscordError::UnknownMember,
        )) => {
            check.bot_token_ok = Some(true);
            check.bot_in_guild = Some(false);
        }
        Err(ServiceError::NotFound(what)) => return Err(ServiceError::NotFound(what)),
        Err(e) => check.problem = Some(e.to_string()),
    }
    if check.bot_in_guild == Some(true) {
        let ctx = ClientContext::load(app, client_id).await?;
        match ctx
            .discord
            .list_members(&ctx.client.guild_id, None, 1)
            .await
        {
            Ok(_) => check.members_intent = Some(true),
            Err(DiscordError::MissingAccess) => check.members_intent = Some(false),
            Err(e) => check.problem = Some(e.to_string()),
        }
    }
    let mut client = app
        .store
        .get_client(client_id)
        .await?
        .ok_or(ServiceError::NotFound("client"))?;
    if check.bot_token_ok.is_some() {
        client.guild.bot_token_ok = check.bot_token_ok;
    }
    if check.members_intent.is_some() {
        client.guild.members_intent = check.members_intent;
    }
    client.guild.checked_at = Some(app.clock.now());
    app.store.update_client(&client).await?;
    Ok(check)
}

/// The role hierarchy in words: mapped roles the bot cannot manage, and every role above the
/// bot's (which it could not manage if they were mapped).
#[derive(Debug, Default)]
pub struct Hierarchy {
    pub roles: Vec<RoleView>,
    /// Mapped roles the bot cannot grant or remove, by name.
    pub blocked_mapped: Vec<String>,
    /// Roles at or above the bot's highest role (not `@everyone`, not Discord-managed).
    pub above_bot: Vec<String>,
}

impl Hierarchy {
    pub fn of(client: &Client, roles: &[Role]) -> Self {
        let roles = role_views(roles, &client.guild_id, client.guild.bot_top_position);
        let blocked_mapped = roles
            .iter()
            .filter(|r| r.role.is_mapped() && !r.assignable)
            .map(|r| r.role.name.clone())
            .collect();
        let above_bot = roles
            .iter()
            .filter(|r| r.blocked_by.as_deref() == Some("role_above_bot"))
            .map(|r| r.role.name.clone())
            .collect();
        Self {
            roles,
            blocked_mapped,
            above_bot,
        }
    }

    /// Known and fine: synced, and every mapped role is manageable.
    pub fn ok(&self, client: &Client) -> Option<bool> {
        client
            .guild
            .synced_at
            .map(|_| self.blocked_mapped.is_empty())
    }
}

/// One task's place on the schedule: its last stored run and when it is next due.
#[derive(Debug)]
pub struct TaskStanding {
    pub task: TaskName,
    pub period_secs: i64,
    pub last: Option<RunReport>,
    /// For weekly tasks: the last start plus the period (or "at the next tick" when never run).
    /// The 5-minute verify runs whenever members are pending.
    pub next_due: Option<i64>,
}

/// Everything the dashboard shows for one client.
#[derive(Debug)]
pub struct ClientSummary {
    pub counts: MemberCounts,
    pub tasks: Vec<TaskStanding>,
    /// 429s Discord answered during runs started in the last 24 hours.
    pub rate_limited_24h: u64,
    pub hierarchy_ok: Option<bool>,
    pub blocked_mapped: Vec<String>,
}

/// How far back the summary looks in the run log, in runs: the newest run of each task (as
/// `tasks::run::latest_run` does) and the 429s of the last day (the 5-minute verify stores a run
/// only when it had work, so this is a day of a busy guild).
const LOOKBACK_RUNS: usize = 500;

const TASKS: [TaskName; 3] = [
    TaskName::VerifyGroups,
    TaskName::SyncAccounts,
    TaskName::RemoteSyncGroups,
];

pub async fn client_summary(
    app: &AppState,
    client: &Client,
) -> Result<ClientSummary, ServiceError> {
    let counts = app.store.count_members(&client.id).await?;
    let roles = app.store.list_roles(&client.id).await?;
    let hierarchy = Hierarchy::of(client, &roles);
    let periods: Vec<(TaskName, i64)> = default_schedule()
        .map(|entries| {
            entries
                .iter()
                .filter_map(|e| {
                    parse_rate(&e.schedule)
                        .ok()
                        .map(|d| (e.task, i64::try_from(d.as_secs()).unwrap_or(i64::MAX)))
                })
                .collect()
        })
        .unwrap_or_default();
    let recent = recent_runs(app, &client.id, app.clock.now() - 86_400).await?;
    let tasks = TASKS
        .into_iter()
        .zip(recent.latest)
        .map(|(task, last)| {
            let period_secs = periods
                .iter()
                .find(|(t, _)| *t == task)
                .map_or(0, |(_, p)| *p);
            let next_due = match task {
                TaskName::VerifyGroups => None,
                _ => last.as_ref().map(|r| r.started_at + period_secs),
            };
            TaskStanding {
                task,
                period_secs,
                last,
                next_due,
            }
        })
        .collect();
    Ok(ClientSummary {
        counts,
        tasks,
        rate_limited_24h: recent.rate_limited,
        hierarchy_ok: hierarchy.ok(client),
        blocked_mapped: hierarchy.blocked_mapped,
    })
}

/// What the summary needs from the run log, read in one newest-first walk.
struct RecentRuns {
    /// The newest stored (not dry) run of each of [`TASKS`], in that order.
    latest: [Option<RunReport>; 3],
    /// 429s of the runs started since the given time.
    rate_limited: u64,
}

async fn recent_runs(
    app: &AppState,
    client_id: &str,
    since: i64,
) -> Result<RecentRuns, ServiceError> {
    let mut recent = RecentRuns {
        latest: [None, None, None],
        rate_limited: 0,
    };
    let mut seen = 0;
    let mut after = None;
    loop {
        let page = app.store.list_runs(client_id, after.as_ref(), 100).await?;
        let mut past_since = false;
        for r in page.items {
            seen += 1;
            if r.started_at >= since {
                recent.rate_limited += r.rate_limited;
            } else {
                past_since = true;
            }
            let slot = TASKS.iter().position(|t| *t == r.task);
            if let Some(slot) = slot.filter(|i| recent.latest[*i].is_none() && !r.dry_run) {
                recent.latest[slot] = Some(r);
            }
        }
        let all_found = recent.latest.iter().all(Option::is_some);
        match page.next {
            Some(next) if seen < LOOKBACK_RUNS && !(all_found && past_since) => after = Some(next),
            _ => return Ok(recent),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(policy: UnlinkPolicy) -> Client {
        Client {
            id: "c".into(),
            name: "C".into(),
            guild_id: "111".into(),
            client_id: "222".into(),
            callback_url: "https://site.example/discord/sso/callback".into(),
            invite_link: None,
            nickname_template: None,
            unlink_policy: policy,
            source_of_truth: Default::default(),
            return_to_origins: vec![],
            discord_api_base: crate::domain::client::DEFAULT_API_BASE.into(),
            discord_authorize_url: crate::domain::client::DEFAULT_AUTHORIZE_URL.into(),
            public_key: None,
            webhook_url: None,
            linked_roles: None,
            guild: Default::default(),
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn the_invite_asks_for_the_least_the_policy_needs() {
        let keep = client(UnlinkPolicy::RemoveRoles);
        assert_eq!(bot_permissions(&keep), 1 | (1 << 27) | (1 << 28));
        let kick = client(UnlinkPolicy::Kick);
        assert_eq!(bot_permissions(&kick), bot_permissions(&keep) | 2);
        let url = url::Url::parse(&bot_invite_url(&keep)).unwrap();
        let q: std::collections::BTreeMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["client_id"], "222");
        assert_eq!(q["guild_id"], "111");
        assert_eq!(q["scope"], "bot");
        assert_eq!(q["permissions"], "402653185");
        assert_eq!(q["disable_guild_select"], "true");
        assert!(url
            .as_str()
            .starts_with("https://discord.com/oauth2/authorize?"));
    }
}
