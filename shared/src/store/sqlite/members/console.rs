//! The console's reads of the `members` table: counts by standing (one aggregate query) and the
//! member search (filter and text in SQL, on the listing's order and cursor).

use rusqlite::types::ToSql;
use rusqlite::{params, Connection, OptionalExtension};

use super::{member_from_row, status_key};
use crate::domain::{LinkStatus, Member, MemberCounts, MemberFilter, MemberSearch};
use crate::store::{Cursor, Page, StoreResult, SEARCH_BUDGET};

/// Every count in one pass over the client's rows; each condition reads a column, never the JSON.
pub(super) fn count(conn: &Connection, client: &str) -> StoreResult<MemberCounts> {
    let sql = "SELECT count(*),
                      count(*) FILTER (WHERE link_status = ?2),
                      count(*) FILTER (WHERE pending = 1),
                      count(*) FILTER (WHERE last_error IS NOT NULL),
                      count(*) FILTER (WHERE link_status = ?3),
                      count(*) FILTER (WHERE link_status = ?4),
                      count(*) FILTER (WHERE unlinking IS NOT NULL)
               FROM members WHERE client = ?1";
    let statuses = [LinkStatus::Active, LinkStatus::Left, LinkStatus::Revoked].map(status_key);
    let counts = conn.prepare_cached(sql)?.query_row(
        params![client, statuses[0], statuses[1], statuses[2]],
        |r| {
            let n = |i: usize| r.get::<_, i64>(i).map(|v| u64::try_from(v).unwrap_or(0));
            Ok(MemberCounts {
                total: n(0)?,
                linked: n(1)?,
                pending: n(2)?,
                errors: n(3)?,
                left: n(4)?,
                revoked: n(5)?,
                unlinking: n(6)?,
            })
        },
    )?;
    Ok(counts)
}

/// The search, by user id from the cursor on (a `list_members` cursor: the last user id).
///
/// A request examines at most [`SEARCH_BUDGET`] members — the next ones in user id order, the
/// next pending ones for the pending filter (read from its index) — and answers with at most
/// `limit` matches and a cursor when more may follow: after the last match when there are more
/// matches, after the last member examined when the budget ran out first.
///
/// The text is matched in SQL, but SQLite's `lower()` folds ASCII only: a field holding other
/// characters is always a candidate, and every candidate is checked with
/// [`MemberSearch::matches`], so the result is exactly the domain's.
pub(super) fn search(
    conn: &Connection,
    client: &str,
    search: &MemberSearch,
    after: Option<&Cursor>,
    limit: usize,
) -> StoreResult<Page<Member>> {
    let limit = limit.clamp(1, 500);
    let mut position = after.map(Cursor::decode).transpose()?;
    let last_examined = budget_end(conn, client, search.filter, position.as_deref())?;
    let mut matches: Vec<Member> = Vec::new();
    loop {
        let fetch = limit + 1 - matches.len();
        let candidates = Candidates {
            client,
            search,
            after: position.as_deref(),
            until: last_examined.as_deref(),
            fetch,
        }
        .read(conn)?;
        let exhausted = candidates.len() < fetch;
        if let Some(last) = candidates.last() {
            position = Some(last.user.user_id.clone());
        }
        matches.extend(candidates.into_iter().filter(|m| search.matches(m)));
        if matches.len() > limit {
            matches.truncate(limit);
            let next = matches.last().map(|m| Cursor::encode(&m.user.user_id));
            return Ok(Page {
                items: matches,
                next,
            });
        }
        if exhausted {
            return Ok(Page {
                items: matches,
                next: last_examined.map(|id| Cursor::encode(&id)),
            });
        }
    }
}

/// The user id of the last member this request may examine, when more than the budget follow
/// the cursor. Reads an index only (the primary key, or `members_pending`).
fn budget_end(
    conn: &Connection,
    client: &str,
    filter: MemberFilter,
    after: Option<&str>,
) -> StoreResult<Option<String>> {
    let pending = if filter == MemberFilter::Pending {
        " AND pending = 1"
    } else {
        ""
    };
    let from = if after.is_some() {
        " AND user_id > ?3"
    } else {
        ""
    };
    let sql = format!(
        "SELECT user_id FROM members WHERE client = ?1{pending}{from}
         ORDER BY user_id LIMIT 1 OFFSET ?2"
    );
    let offset = i64::try_from(SEARCH_BUDGET - 1).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(&sql)?;
    let found = match after {
        Some(after) => stmt.query_row(params![client, offset, after], |r| r.get(0)),
        None => stmt.query_row(params![client, offset], |r| r.get(0)),
    };
    Ok(found.optional()?)
}

/// One read of members the search may match, in user id order.
struct Candidates<'a> {
    client: &'a str,
    search: &'a MemberSearch,
    /// Exclusive.
    after: Option<&'a str>,
    /// Inclusive: the end of the request's budget.
    until: Option<&'a str>,
    fetch: usize,
}

/// A text field of the member that the search's text may be contained in.
const TEXT_FIELDS: [&str; 4] = [
    "user_id",
    "json_extract(link, '$.username')",
    "json_extract(link, '$.global_name')",
    "json_extract(link, '$.nickname')",
];

impl Candidates<'_> {
    fn read(&self, conn: &Connection) -> StoreResult<Vec<Member>> {
        let mut sql = concat!(
            "SELECT ",
            member_columns!(),
            " FROM members WHERE client = :client"
        )
        .to_owned();
        let mut args: Vec<(&str, &dyn ToSql)> = vec![(":client", &self.client)];
        if let Some(after) = &self.after {
            sql.push_str(" AND user_id > :after");
            args.push((":after", after));
        }
        if let Some(until) = &self.until {
            sql.push_str(" AND user_id <= :until");
            args.push((":until", until));
        }
        let status = match self.search.filter {
            MemberFilter::All => None,
            // Spelled out so the planner picks the partial index `members_pending`.
            MemberFilter::Pending => {
                sql.push_str(" AND pending = 1");
                None
            }
            MemberFilter::Errors => {
                sql.push_str(" AND last_error IS NOT NULL");
                None
            }
            MemberFilter::Unlinked => {
                sql.push_str(" AND link IS NULL");
                None
            }
            MemberFilter::Left => Some(status_key(LinkStatus::Left)),
            MemberFilter::Revoked => Some(status_key(LinkStatus::Revoked)),
        };
        if let Some(status) = &status {
            sql.push_str(" AND link_status = :status");
            args.push((":status", status));
        }
        let text = self
            .search
            .text
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let needle = text.map(str::to_lowercase);
        if let (Some(text), Some(needle)) = (&text, &needle) {
            // Contained, ignoring ASCII case, or not ASCII at all (then checked in Rust).
            let fields = TEXT_FIELDS.map(|f| {
                format!("instr(lower({f}), :needle) > 0 OR octet_length({f}) <> length({f})")
            });
            sql.push_str(&format!(
                " AND (discord_user_id = :text OR {})",
                fields.join(" OR ")
            ));
            args.push((":text", text));
            args.push((":needle", needle));
        }
        sql.push_str(" ORDER BY user_id LIMIT :fetch");
        let fetch = i64::try_from(self.fetch).unwrap_or(i64::MAX);
        args.push((":fetch", &fetch));
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt
            .query_map(args.as_slice(), |r| member_from_row(self.client, r))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }
}
