//! The single-table layout: every key the adapter reads or writes is spelled here.
//!
//! | item            | PK                        | SK                           | GSI1PK / GSI1SK                 |
//! |-----------------|---------------------------|------------------------------|---------------------------------|
//! | client config   | `CLIENTS`                 | `CLIENT#<client>`            |                                 |
//! | mirrored roles  | `CLIENT#<client>`         | `ROLES` (one item, all roles)|                                 |
//! | member          | `CLIENT#<client>`         | `USER#<user_id>`             | `PENDING#<client>` / `USER#<user_id>`, only while pending |
//! | Discord account | `CLIENT#<client>`         | `DISCORD#N#<20-digit id>`    |                                 |
//! | run report      | `CLIENT#<client>`         | `RUN#<started_at>#<run id>`  |                                 |
//! | audit entry     | `CLIENT#<client>`         | `AUDIT#<at>#<tiebreak>`      |                                 |
//! | link session    | `SESSION#<hash>`          | `SESSION`                    | `SESSIONS#<client>` / `<hash>`  |
//! | setting         | `SETTING#<key>`           | `SETTING`                    |                                 |
//! | lease           | `LEASE#<name>`            | `LEASE`                      |                                 |
//! | work mark       | `WORK`                    | `<client>#<task>`            |                                 |
//! | API token       | `APITOKEN#<sha256>`       | `APITOKEN`                   | `APITOKENS` / `<created>#<id>`  |
//! | console session | `CONSOLESESSION#<sha256>` | `CONSOLESESSION`             |                                 |
//!
//! Everything a client owns except its link sessions and work marks shares the client's partition,
//! so deleting a client is one query plus batched deletes; sessions are found through
//! `SESSIONS#<client>`, work marks by key (one per task). All work marks share the `WORK`
//! partition, so listing them is one query, ordered by (client, task): client ids are slugs
//! (`[a-z0-9-]`), all of whose characters sort after `#`.
//! Timestamps in sort keys are [`sortable`], so byte order is time order.

use crate::clock::Timestamp;
use crate::domain::TaskName;

pub const PK: &str = "PK";
pub const SK: &str = "SK";
pub const GSI1: &str = "GSI1";
pub const GSI1PK: &str = "GSI1PK";
pub const GSI1SK: &str = "GSI1SK";
/// The table's TTL attribute (epoch seconds).
pub const TTL: &str = "ttl";

pub const CLIENTS: &str = "CLIENTS";
pub const ROLES: &str = "ROLES";
pub const USER_PREFIX: &str = "USER#";
pub const RUN_PREFIX: &str = "RUN#";
pub const AUDIT_PREFIX: &str = "AUDIT#";
pub const SESSION: &str = "SESSION";
pub const SETTING: &str = "SETTING";
pub const LEASE: &str = "LEASE";
pub const WORK: &str = "WORK";

pub fn client_registry_sk(client: &str) -> String {
    format!("CLIENT#{client}")
}

/// The partition holding everything of one client.
pub fn client_pk(client: &str) -> String {
    format!("CLIENT#{client}")
}

pub fn member_sk(user_id: &str) -> String {
    format!("{USER_PREFIX}{user_id}")
}

/// Discord ids are numbers (snowflakes): stored zero-padded under `DISCORD#N#`, so the client's
/// accounts read in Discord's numeric order. Anything else (only tests use other ids) goes under
/// `DISCORD#S#` as it is.
pub fn discord_sk(discord_user_id: &str) -> String {
    match discord_user_id.parse::<u64>() {
        Ok(id) if id.to_string() == discord_user_id => numeric_discord_sk(id),
        _ => format!("DISCORD#S#{discord_user_id}"),
    }
}

pub fn numeric_discord_sk(discord_user_id: u64) -> String {
    format!("{DISCORD_NUMERIC_PREFIX}{discord_user_id:020}")
}

pub const DISCORD_NUMERIC_PREFIX: &str = "DISCORD#N#";

/// GSI1 partition of a client's pending members (the sparse "needs work" index).
pub fn pending_gsi_pk(client: &str) -> String {
    format!("PENDING#{client}")
}

/// GSI1 partition of a client's link sessions (found by `delete_client`).
pub fn sessions_gsi_pk(client: &str) -> String {
    format!("SESSIONS#{client}")
}

pub fn run_sk(started_at: Timestamp, id: &str) -> String {
    format!("{RUN_PREFIX}{}#{id}", sortable(started_at))
}

pub fn audit_sk(at: Timestamp, tiebreak: &str) -> String {
    format!("{AUDIT_PREFIX}{}#{tiebreak}", sortable(at))
}

/// The sort key, in the client's partition, of the pointer to a user's live link session.
pub fn user_session_sk(user_id: &str) -> String {
    format!("LINKSESSION#{user_id}")
}

pub fn session_pk(state_hash: &str) -> String {
    format!("SESSION#{state_hash}")
}

pub const API_TOKEN: &str = "APITOKEN";
pub const API_TOKENS: &str = "APITOKENS";

pub fn api_token_pk(token_sha256: &str) -> String {
    format!("APITOKEN#{token_sha256}")
}

pub const CONSOLE_SESSION: &str = "CONSOLESESSION";

/// A console session, by the SHA-256 of its id (sessions belong to no client).
pub fn console_session_pk(id_sha256: &str) -> String {
    format!("{CONSOLE_SESSION}#{id_sha256}")
}

pub fn setting_pk(key: &str) -> String {
    format!("SETTING#{key}")
}

pub fn lease_pk(name: &str) -> String {
    format!("LEASE#{name}")
}

pub fn work_sk(client: &str, task: TaskName) -> String {
    format!("{client}#{}", task.as_str())
}

/// A timestamp as 20 digits whose byte order is numeric order, negative values included.
pub fn sortable(t: Timestamp) -> String {
    // Flipping the sign bit maps i64 order onto u64 order.
    format!("{:020}", (t as u64) ^ (1 << 63))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sortable_timestamps_sort_like_numbers() {
        let times = [i64::MIN, -5, -1, 0, 1, 9, 10, 1_700_000_000, i64::MAX];
        let keys: Vec<String> = times.iter().map(|t| sortable(*t)).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert!(keys.iter().all(|k| k.len() == 20));
    }

    #[test]
    fn work_keys_sort_by_client_then_task_name() {
        let clients = ["a", "a-b", "a0", "ab", "b", "z9"];
        let mut pairs: Vec<(&str, TaskName)> = clients
            .iter()
            .flat_map(|c| TaskName::ALL.map(|t| (*c, t)))
            .collect();
        pairs.sort_by_key(|(c, t)| (*c, t.as_str()));
        let keys: Vec<String> = pairs.iter().map(|(c, t)| work_sk(c, *t)).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
    }

    #[test]
    fn numeric_discord_ids_sort_like_numbers_and_others_stay_apart() {
        let ids = [
            "5",
            "99999999999999999",
            "100000000000000002",
            "18446744073709551615",
        ];
        let keys: Vec<String> = ids.iter().map(|id| discord_sk(id)).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert!(keys.iter().all(|k| k.starts_with(DISCORD_NUMERIC_PREFIX)));
        for other in ["d1", "007", "", "-1", "18446744073709551616"] {
            assert!(discord_sk(other).starts_with("DISCORD#S#"), "{other}");
        }
    }
}
