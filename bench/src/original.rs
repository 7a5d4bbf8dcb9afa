//! The original package's weekly strategy, for comparison: one GET per linked member, then the
//! per-role writes its roles need.

use std::collections::BTreeMap;

use connector::app::AppState;
use connector::service::ClientContext;
use connector::store::Cursor;

pub async fn run(
    app: &AppState,
    client_id: &str,
) -> crate::harness::BenchResult<(BTreeMap<String, u64>, u64)> {
    let ctx = ClientContext::load(app, client_id).await?;
    let guild = ctx.client.guild_id.clone();
    let mut repaired = 0;
    let mut after: Option<Cursor> = None;
    loop {
        let page = app
            .store
            .list_members(client_id, after.as_ref(), 500)
            .await?;
        for member in &page.items {
            let Some(link) = member.active_link() else {
                continue;
            };
            let live = ctx
                .discord
                .get_member(&guild, &link.discord_user_id)
                .await?;
            let mut fixed = false;
            for role in ctx.roles.iter().filter(|r| r.is_mapped()) {
                let want = !role.groups.is_disjoint(&member.user.groups);
                let has = live.roles.contains(&role.id);
                if want && !has {
                    ctx.discord
                        .add_role(&guild, &link.discord_user_id, &role.id, "original strategy")
                        .await?;
                    fixed = true;
                } else if !want && has {
                    ctx.discord
                        .remove_role(&guild, &link.discord_user_id, &role.id, "original strategy")
                        .await?;
                    fixed = true;
                }
            }
            repaired += u64::from(fixed);
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    Ok((ctx.discord.stats().calls, repaired))
}
