//! `MemberStore`: site users and their links, the `members` table; the console's counts and
//! search are in `console`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use super::webhooks;
use super::{from_json, from_json_opt, is_unique_violation, page, to_json, SqliteStore};
use crate::clock::Timestamp;
use crate::domain::linked_roles::RoleConnection;
use crate::domain::{
    LastError, Link, LinkStatus, Member, MemberCounts, MemberSearch, SiteUser, StoredTokens,
    UnlinkCleanup, Unlinking, WebhookEvent,
};
use crate::store::{Cursor, MemberStore, Outcome, Page, StoreError, StoreResult};

#[async_trait]
impl MemberStore for SqliteStore {
    async fn get_member(&self, client: &str, user_id: &str) -> StoreResult<Option<Member>> {
        let (client, user_id) = (client.to_owned(), user_id.to_owned());
        self.run(move |c| get(c, &client, &user_id)).await
    }

    async fn find_member_by_discord(
        &self,
        client: &str,
        discord_user_id: &str,
    ) -> StoreResult<Option<Member>> {
        let (client, discord_user_id) = (client.to_owned(), discord_user_id.to_owned());
        self.run(move |c| find_by_discord(c, &client, &discord_user_id))
            .await
    }

    async fn save_site_user(
        &self,
        client: &str,
        user: &SiteUser,
        pending: bool,
        now: Timestamp,
    ) -> StoreResult<Member> {
        let (client, user) = (client.to_owned(), user.clone());
        self.run(move |c| save_site_user(c, &client, &user, pending, now))
            .await
    }

    async fn create_link(
        &self,
        client: &str,
        user_id: &str,
        link: &Link,
        replaced: Option<&UnlinkCleanup>,
        pending: bool,
        now: Timestamp,
    ) -> StoreResult<Member> {
        let (client, user_id, link) = (client.to_owned(), user_id.to_owned(), link.clone());
        let replaced = replaced.cloned();
        self.run(move |c| create_link(c, &client, &user_id, &link, replaced.as_ref(), pending, now))
            .await
    }

    async fn delete_link(
        &self,
        client: &str,
        user_id: &str,
        cleanup: Option<&UnlinkCleanup>,
        now: Timestamp,
    ) -> StoreResult<Option<Link>> {
        let (client, user_id, cleanup) = (client.to_owned(), user_id.to_owned(), cleanup.cloned());
        self.run(move |c| delete_link(c, &client, &user_id, cleanup.as_ref(), now))
            .await
    }

    async fn record_unlinking(
        &self,
        client: &str,
        user_id: &str,
        discord_user_id: &str,
        progress: Option<&Unlinking>,
    ) -> StoreResult<()> {
        let (client, user_id, discord_user_id) = (
            client.to_owned(),
            user_id.to_owned(),
            discord_user_id.to_owned(),
        );
        let progress = progress.cloned();
        self.run(move |c| {
            record_unlinking(c, &client, &user_id, &discord_user_id, progress.as_ref())
        })
        .await
    }

    async fn clear_pending(
        &self,
        client: &str,
        user_id: &str,
        expected_version: i64,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let (client, user_id) = (client.to_owned(), user_id.to_owned());
        self.run(move |c| clear_pending(c, &client, &user_id, expected_version, now))
            .await
    }

    async fn record_outcome(
        &self,
        client: &str,
        user_id: &str,
        expected_version: i64,
        outcome: &Outcome,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let (client, user_id, outcome) = (client.to_owned(), user_id.to_owned(), outcome.clone());
        self.run(move |c| record_outcome(c, &client, &user_id, expected_version, &outcome, now))
            .await
    }

    async fn set_tokens(
        &self,
        client: &str,
        user_id: &str,
        tokens: Option<&StoredTokens>,
    ) -> StoreResult<()> {
        let (client, user_id, tokens) = (client.to_owned(), user_id.to_owned(), tokens.cloned());
        self.run(move |c| set_tokens(c, &client, &user_id, tokens.as_ref()))
            .await
    }

    async fn set_role_connection(
        &self,
        client: &str,
        user_id: &str,
        discord_user_id: &str,
        pushed: Option<&RoleConnection>,
    ) -> StoreResult<()> {
        let (client, user_id, discord_user_id, pushed) = (
            client.to_owned(),
            user_id.to_owned(),
            discord_user_id.to_owned(),
            pushed.cloned(),
        );
        self.run(move |c| {
            set_role_connection(c, &client, &user_id, &discord_user_id, pushed.as_ref())
        })
        .await
    }

    async fn request_relink(
        &self,
        client: &str,
        user_id: &str,
        discord_user_id: &str,
        missing_scope: &str,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let (client, user_id, discord_user_id, missing_scope) = (
            client.to_owned(),
            user_id.to_owned(),
            discord_user_id.to_owned(),
            missing_scope.to_owned(),
        );
        self.run(move |c| {
            request_relink(c, &client, &user_id, &discord_user_id, &missing_scope, now)
        })
        .await
    }

    async fn mark_all_linked_pending(&self, client: &str, now: Timestamp) -> StoreResult<u64> {
        let client = client.to_owned();
        self.run(move |c| mark_all_linked_pending(c, &client, now))
            .await
    }

    async fn mark_member_pending(
        &self,
        client: &str,
        user_id: &str,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let (client, user_id) = (client.to_owned(), user_id.to_owned());
        self.run(move |c| {
            Ok(c.execute(
                "UPDATE members SET pending = 1, version = version + 1, updated_at = ?3
                 WHERE client = ?1 AND user_id = ?2",
                params![client, user_id, now],
            )? == 1)
        })
        .await
    }

    async fn list_pending(
        &self,
        client: &str,
        after: Option<&Cursor>,
        limit: usize,
    ) -> StoreResult<Page<Member>> {
        let (client, after) = (client.to_owned(), after.cloned());
        self.run(move |c| list(c, &client, true, after.as_ref(), limit))
            .await
    }

    async fn list_members(
        &self,
        client: &str,
        after: Option<&Cursor>,
        limit: usize,
    ) -> StoreResult<Page<Member>> {
        let (client, after) = (client.to_owned(), after.cloned());
        self.run(move |c| list(c, &client, false, after.as_ref(), limit))
            .await
    }

    async fn list_linked_by_discord(
        &self,
        client: &str,
        after_discord_id: Option<u64>,
        limit: usize,
    ) -> StoreResult<Page<Member>> {
        let client = client.to_owned();
        self.run(move |c| list_linked_by_discord(c, &client, after_discord_id, limit))
            .await
    }

    async fn search_members(
        &self,
        client: &str,
        search: &MemberSearch,
        after: Option<&Cursor>,
        limit: usize,
    ) -> StoreResult<Page<Member>> {
        let (client, search, after) = (client.to_owned(), search.clone(), after.cloned());
        self.run(move |c| console::search(c, &client, &search, after.as_ref(), limit))
            .await
    }

    async fn count_members(&self, client: &str) -> StoreResult<MemberCounts> {
        let client = client.to_owned();
        self.run(move |c| console::count(c, &client)).await
    }
}

/// The columns `member_from_row` reads, in order.
macro_rules! member_columns {
    () => {
        "user_id, groups, attributes, pending, version, last_error, updated_at, link, unlinking"
    };
}

// After `member_columns!`, which it uses.
mod console;

fn member_from_row(client: &str, row: &Row<'_>) -> rusqlite::Result<Member> {
    Ok(Member {
        client: client.to_owned(),
        user: SiteUser {
            user_id: row.get(0)?,
            groups: from_json(row, 1)?,
            attributes: from_json(row, 2)?,
        },
        pending: row.get(3)?,
        version: row.get(4)?,
        last_error: from_json_opt(row, 5)?,
        updated_at: row.get(6)?,
        link: from_json_opt(row, 7)?,
        unlinking: from_json_opt(row, 8)?.unwrap_or_default(),
    })
}

/// The `unlinking` column: NULL when there is none, so `unlinking IS NOT NULL` finds them.
fn unlinking_json(map: &Unlinkings) -> StoreResult<Option<String>> {
    if map.is_empty() {
        Ok(None)
    } else {
        to_json(map).map(Some)
    }
}

type Unlinkings = BTreeMap<String, Unlinking>;

/// The member's link and unlinkings, read inside the transaction that changes them.
fn link_state(
    tx: &rusqlite::Transaction<'_>,
    client: &str,
    user_id: &str,
) -> StoreResult<(Option<Link>, Unlinkings)> {
    Ok(tx
        .query_row(
            "SELECT link, unlinking FROM members WHERE client = ?1 AND user_id = ?2",
            params![client, user_id],
            |r| {
                Ok((
                    from_json_opt::<Link>(r, 0)?,
                    from_json_opt::<Unlinkings>(r, 1)?.unwrap_or_default(),
                ))
            },
        )
        .optional()?
        .unwrap_or_default())
}

/// The value of the `link_status` column.
fn status_key(status: LinkStatus) -> &'static str {
    match status {
        LinkStatus::Active => "active",
        LinkStatus::Left => "left",
        LinkStatus::Revoked => "revoked",
    }
}

fn get(conn: &Connection, client: &str, user_id: &str) -> StoreResult<Option<Member>> {
    let sql = concat!(
        "SELECT ",
        member_columns!(),
        " FROM members WHERE client = ?1 AND user_id = ?2"
    );
    Ok(conn
        .prepare_cached(sql)?
        .query_row(params![client, user_id], |r| member_from_row(client, r))
        .optional()?)
}

fn find_by_discord(
    conn: &Connection,
    client: &str,
    discord_user_id: &str,
) -> StoreResult<Option<Member>> {
    let sql = concat!(
        "SELECT ",
        member_columns!(),
        " FROM members WHERE client = ?1 AND discord_user_id = ?2"
    );
    Ok(conn
        .prepare_cached(sql)?
        .query_row(params![client, discord_user_id], |r| {
            member_from_row(client, r)
        })
        .optional()?)
}

fn save_site_user(
    conn: &Connection,
    client: &str,
    user: &SiteUser,
    pending: bool,
    now: Timestamp,
) -> StoreResult<Member> {
    let sql = concat!(
        "INSERT INTO members (client, user_id, groups, attributes, pending, version, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6)
         ON CONFLICT (client, user_id) DO UPDATE SET
             groups = excluded.groups, attributes = excluded.attributes,
             pending = excluded.pending, version = members.version + 1,
             updated_at = excluded.updated_at
         RETURNING ",
        member_columns!()
    );
    let (groups, attributes) = (to_json(&user.groups)?, to_json(&user.attributes)?);
    Ok(conn.prepare_cached(sql)?.query_row(
        params![client, user.user_id, groups, attributes, pending, now],
        |r| member_from_row(client, r),
    )?)
}

fn create_link(
    conn: &mut Connection,
    client: &str,
    user_id: &str,
    link: &Link,
    replaced: Option<&UnlinkCleanup>,
    pending: bool,
    now: Timestamp,
) -> StoreResult<Member> {
    let sql = concat!(
        "INSERT INTO members (client, user_id, groups, attributes, pending, version, updated_at,
                              discord_user_id, link_status, link, unlinking)
         VALUES (?1, ?2, '[]', '{}', ?3, 1, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (client, user_id) DO UPDATE SET
             pending = excluded.pending, version = members.version + 1,
             updated_at = excluded.updated_at, discord_user_id = excluded.discord_user_id,
             link_status = excluded.link_status, link = excluded.link,
             unlinking = excluded.unlinking
         RETURNING ",
        member_columns!()
    );
    let link_json = to_json(link)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let (old, mut unlinking) = link_state(&tx, client, user_id)?;
    let events = WebhookEvent::for_new_link(user_id, old.as_ref(), link, replaced);
    // The account is back: whatever clean-up it was waiting for is the new link's business.
    unlinking.remove(&link.discord_user_id);
    let retired = old
        .filter(|old| old.discord_user_id != link.discord_user_id)
        .zip(replaced)
        .and_then(|(old, cleanup)| cleanup.for_link(&old, now));
    let pending = pending || retired.is_some();
    if let Some(retired) = retired {
        unlinking.insert(retired.discord_user_id.clone(), retired);
    }
    let inserted = tx.prepare_cached(sql)?.query_row(
        params![
            client,
            user_id,
            pending,
            now,
            link.discord_user_id,
            status_key(link.status),
            link_json,
            unlinking_json(&unlinking)?
        ],
        |r| member_from_row(client, r),
    );
    match inserted {
        Ok(member) => {
            webhooks::enqueue(&tx, client, &events, now)?;
            tx.commit()?;
            Ok(member)
        }
        // The unique index on (client, discord_user_id) refused it: someone else holds the
        // account. The failed statement wrote nothing; dropping `tx` rolls back the rest.
        Err(e) if is_unique_violation(&e) => {
            let holder: Option<String> = tx
                .query_row(
                    "SELECT user_id FROM members WHERE client = ?1 AND discord_user_id = ?2",
                    params![client, link.discord_user_id],
                    |r| r.get(0),
                )
                .optional()?;
            match holder {
                Some(user_id) => Err(StoreError::DiscordAccountTaken { user_id }),
                None => Err(e.into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

fn delete_link(
    conn: &mut Connection,
    client: &str,
    user_id: &str,
    cleanup: Option<&UnlinkCleanup>,
    now: Timestamp,
) -> StoreResult<Option<Link>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let (old, mut unlinking) = link_state(&tx, client, user_id)?;
    let Some(old) = old else {
        return Ok(None);
    };
    let removed = WebhookEvent::link_removed(user_id, &old, cleanup.map(|c| c.reason));
    webhooks::enqueue(&tx, client, &[removed], now)?;
    match cleanup.and_then(|c| c.for_link(&old, now)) {
        Some(retired) => {
            unlinking.insert(retired.discord_user_id.clone(), retired);
            tx.execute(
                "UPDATE members SET link = NULL, discord_user_id = NULL, link_status = NULL,
                     unlinking = ?3, pending = 1, version = version + 1, updated_at = ?4
                 WHERE client = ?1 AND user_id = ?2",
                params![client, user_id, unlinking_json(&unlinking)?, now],
            )?;
        }
        None => {
            // Nothing left for the writer, unless earlier unlinkings still wait.
            tx.execute(
                "UPDATE members SET link = NULL, discord_user_id = NULL, link_status = NULL,
                     pending = CASE WHEN unlinking IS NULL THEN 0 ELSE pending END
                 WHERE client = ?1 AND user_id = ?2",
                params![client, user_id],
            )?;
        }
    }
    tx.commit()?;
    Ok(Some(old))
}

fn record_unlinking(
    conn: &mut Connection,
    client: &str,
    user_id: &str,
    discord_user_id: &str,
    progress: Option<&Unlinking>,
) -> StoreResult<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let (_, mut unlinking) = link_state(&tx, client, user_id)?;
    if !unlinking.contains_key(discord_user_id) {
        // Gone meanwhile (finished, or the account linked again): nothing to record.
        return Ok(());
    }
    match progress {
        Some(p) => unlinking.insert(discord_user_id.to_owned(), p.clone()),
        None => unlinking.remove(discord_user_id),
    };
    tx.execute(
        "UPDATE members SET unlinking = ?3 WHERE client = ?1 AND user_id = ?2",
        params![client, user_id, unlinking_json(&unlinking)?],
    )?;
    tx.commit()?;
    Ok(())
}

fn clear_pending(
    conn: &Connection,
    client: &str,
    user_id: &str,
    expected_version: i64,
    now: Timestamp,
) -> StoreResult<bool> {
    let changed = conn.execute(
        "UPDATE members SET pending = 0, updated_at = ?4
         WHERE client = ?1 AND user_id = ?2 AND version = ?3",
        params![client, user_id, expected_version, now],
    )?;
    Ok(changed == 1)
}

/// Reads the member's link for an update; `NotFound` without member or link.
fn link_for_update(
    tx: &rusqlite::Transaction<'_>,
    client: &str,
    user_id: &str,
) -> StoreResult<Link> {
    tx.query_row(
        "SELECT link FROM members WHERE client = ?1 AND user_id = ?2",
        params![client, user_id],
        |r| from_json_opt::<Link>(r, 0),
    )
    .optional()?
    .flatten()
    .ok_or(StoreError::NotFound)
}

fn record_outcome(
    conn: &mut Connection,
    client: &str,
    user_id: &str,
    expected_version: i64,
    outcome: &Outcome,
    now: Timestamp,
) -> StoreResult<bool> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut link = link_for_update(&tx, client, user_id)?;
    let before_error: Option<LastError> = tx.query_row(
        "SELECT last_error FROM members WHERE client = ?1 AND user_id = ?2",
        params![client, user_id],
        |r| from_json_opt(r, 0),
    )?;
    let events = WebhookEvent::for_outcome(
        user_id,
        &link,
        outcome.status,
        before_error.as_ref(),
        outcome.last_error.as_ref(),
    );
    webhooks::enqueue(&tx, client, &events, now)?;
    link.applied_roles = outcome.applied_roles.clone();
    link.nickname = outcome.nickname.clone();
    if let Some(username) = &outcome.username {
        link.username = username.clone();
    }
    if let Some(global_name) = &outcome.global_name {
        link.global_name = global_name.clone();
    }
    link.status = outcome.status;
    if let Some(refused) = &outcome.refused {
        link.refused = refused.clone();
    }
    if outcome.roles_observed {
        link.roles_known = true;
    }
    let pending: bool = tx.query_row(
        "UPDATE members SET link = ?3, link_status = ?4, last_error = ?5, updated_at = ?6,
             pending = CASE WHEN version = ?7 THEN ?8 ELSE pending END
         WHERE client = ?1 AND user_id = ?2
         RETURNING pending",
        params![
            client,
            user_id,
            to_json(&link)?,
            status_key(link.status),
            outcome.last_error.as_ref().map(to_json).transpose()?,
            now,
            expected_version,
            outcome.still_pending
        ],
        |r| r.get(0),
    )?;
    tx.commit()?;
    Ok(!pending)
}

fn set_tokens(
    conn: &mut Connection,
    client: &str,
    user_id: &str,
    tokens: Option<&StoredTokens>,
) -> StoreResult<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut link = link_for_update(&tx, client, user_id)?;
    link.tokens = tokens.cloned();
    tx.execute(
        "UPDATE members SET link = ?3 WHERE client = ?1 AND user_id = ?2",
        params![client, user_id, to_json(&link)?],
    )?;
    tx.commit()?;
    Ok(())
}

fn set_role_connection(
    conn: &mut Connection,
    client: &str,
    user_id: &str,
    discord_user_id: &str,
    pushed: Option<&RoleConnection>,
) -> StoreResult<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut link = link_for_update(&tx, client, user_id)?;
    if link.discord_user_id != discord_user_id {
        return Err(StoreError::NotFound);
    }
    link.role_connection = pushed.cloned();
    tx.execute(
        "UPDATE members SET link = ?3 WHERE client = ?1 AND user_id = ?2",
        params![client, user_id, to_json(&link)?],
    )?;
    tx.commit()?;
    Ok(())
}

fn request_relink(
    conn: &mut Connection,
    client: &str,
    user_id: &str,
    discord_user_id: &str,
    missing_scope: &str,
    now: Timestamp,
) -> StoreResult<bool> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut link = match link_for_update(&tx, client, user_id) {
        Ok(link) => link,
        Err(StoreError::NotFound) => return Ok(false),
        Err(e) => return Err(e),
    };
    if link.discord_user_id != discord_user_id
        || link.status != LinkStatus::Active
        || link.relink_requested_at.is_some()
    {
        return Ok(false);
    }
    link.relink_requested_at = Some(now);
    tx.execute(
        "UPDATE members SET link = ?3 WHERE client = ?1 AND user_id = ?2",
        params![client, user_id, to_json(&link)?],
    )?;
    let event = WebhookEvent::needs_relink(user_id, &link, missing_scope);
    webhooks::enqueue(&tx, client, &[event], now)?;
    tx.commit()?;
    Ok(true)
}

/// Also bumps `version`: a mapping change is a change of the desired state, so a task that read
/// the member before it must not clear `pending` afterwards.
fn mark_all_linked_pending(
    conn: &mut Connection,
    client: &str,
    now: Timestamp,
) -> StoreResult<u64> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let changed = tx.execute(
        "UPDATE members SET pending = 1, version = version + 1, updated_at = ?2,
             link = json_remove(link, '$.refused')
         WHERE client = ?1 AND (link_status = ?3 OR unlinking IS NOT NULL)",
        params![client, now, status_key(LinkStatus::Active)],
    )?;
    // Refused clean-ups may succeed now too.
    let refused: Vec<(String, Unlinkings)> = tx
        .prepare_cached(
            "SELECT user_id, unlinking FROM members WHERE client = ?1 AND unlinking IS NOT NULL",
        )?
        .query_map(params![client], |r| Ok((r.get(0)?, from_json(r, 1)?)))?
        .collect::<Result<_, _>>()?;
    for (user_id, mut unlinking) in refused {
        if unlinking.values().any(|u| u.refused) {
            unlinking.values_mut().for_each(|u| u.refused = false);
            tx.execute(
                "UPDATE members SET unlinking = ?3 WHERE client = ?1 AND user_id = ?2",
                params![client, user_id, unlinking_json(&unlinking)?],
            )?;
        }
    }
    tx.commit()?;
    Ok(changed as u64)
}

fn list(
    conn: &Connection,
    client: &str,
    pending_only: bool,
    after: Option<&Cursor>,
    limit: usize,
) -> StoreResult<Page<Member>> {
    // `pending = 1` is spelled out so the planner picks the partial index `members_pending`.
    let sql = match (pending_only, after.is_some()) {
        (true, true) => concat!(
            "SELECT ",
            member_columns!(),
            " FROM members
             WHERE client = ?1 AND pending = 1 AND user_id > ?3 ORDER BY user_id LIMIT ?2"
        ),
        (true, false) => concat!(
            "SELECT ",
            member_columns!(),
            " FROM members
             WHERE client = ?1 AND pending = 1 ORDER BY user_id LIMIT ?2"
        ),
        (false, true) => concat!(
            "SELECT ",
            member_columns!(),
            " FROM members
             WHERE client = ?1 AND user_id > ?3 ORDER BY user_id LIMIT ?2"
        ),
        (false, false) => concat!(
            "SELECT ",
            member_columns!(),
            " FROM members
             WHERE client = ?1 ORDER BY user_id LIMIT ?2"
        ),
    };
    let limit = limit.max(1);
    let fetch = i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1;
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = match after {
        Some(cursor) => {
            let last = cursor.decode()?;
            stmt.query_map(params![client, fetch, last], |r| member_from_row(client, r))?
                .collect::<rusqlite::Result<Vec<_>>>()?
        }
        None => stmt
            .query_map(params![client, fetch], |r| member_from_row(client, r))?
            .collect::<rusqlite::Result<Vec<_>>>()?,
    };
    Ok(page(rows, limit, |m| m.user.user_id.clone()))
}

fn list_linked_by_discord(
    conn: &Connection,
    client: &str,
    after_discord_id: Option<u64>,
    limit: usize,
) -> StoreResult<Page<Member>> {
    // The expression and the partial-index condition are spelled exactly as in
    // `members_by_discord_number`, so SQLite walks that index.
    let sql = concat!(
        "SELECT ",
        member_columns!(),
        ", CAST(discord_user_id AS INTEGER) FROM members
         WHERE client = ?1 AND discord_user_id IS NOT NULL AND CAST(discord_user_id AS INTEGER) > ?3
         ORDER BY CAST(discord_user_id AS INTEGER) LIMIT ?2"
    );
    let after: i64 = match after_discord_id {
        Some(id) => i64::try_from(id).map_err(|_| StoreError::InvalidCursor)?,
        None => -1,
    };
    let limit = limit.max(1);
    let fetch = i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1;
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt
        .query_map(params![client, fetch, after], |r| {
            Ok((member_from_row(client, r)?, r.get::<_, i64>(9)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let page = super::page(rows, limit, |(_, id)| id.to_string());
    Ok(Page {
        items: page.items.into_iter().map(|(m, _)| m).collect(),
        next: page.next,
    })
}
