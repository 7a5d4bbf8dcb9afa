//! Items as serde types, mapped to and from DynamoDB by `serde_dynamo`.
//!
//! Every item is a [`Keyed`]: the table and GSI keys, the `entity` name and the optional TTL next
//! to the entity's own fields (flattened, so each field is a top-level attribute a condition can
//! name). Absent optional keys are skipped, not written as NULL: the pending GSI stays sparse.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::keys;
use crate::clock::Timestamp;
use crate::domain::{LastError, Link, LinkStatus, Member, Role, SiteUser, Unlinking};
use crate::store::{StoreError, StoreResult};

pub type Item = HashMap<String, AttributeValue>;

pub const CLIENT: &str = "client";
pub const ROLES: &str = "roles";
pub const MEMBER: &str = "member";
pub const DISCORD_ACCOUNT: &str = "discord_account";
pub const RUN: &str = "run";
pub const AUDIT: &str = "audit";
pub const LINK_SESSION: &str = "link_session";
pub const API_TOKEN: &str = "api_token";
pub const CONSOLE_SESSION: &str = "console_session";
/// The pointer to a user's live link session.
pub const USER_SESSION: &str = "user_link_session";
pub const SETTING: &str = "setting";
pub const LEASE: &str = "lease";
pub const WORK: &str = "work";

#[derive(Serialize, Deserialize)]
pub struct Keyed<T> {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    pub entity: String,
    #[serde(rename = "GSI1PK", default, skip_serializing_if = "Option::is_none")]
    pub gsi1pk: Option<String>,
    #[serde(rename = "GSI1SK", default, skip_serializing_if = "Option::is_none")]
    pub gsi1sk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Timestamp>,
    #[serde(flatten)]
    pub data: T,
}

impl<T> Keyed<T> {
    pub fn new(pk: String, sk: String, entity: &str, data: T) -> Self {
        Self {
            pk,
            sk,
            entity: entity.to_owned(),
            gsi1pk: None,
            gsi1sk: None,
            ttl: None,
            data,
        }
    }

    pub fn gsi1(mut self, pk: String, sk: String) -> Self {
        self.gsi1pk = Some(pk);
        self.gsi1sk = Some(sk);
        self
    }

    pub fn ttl(mut self, at: Timestamp) -> Self {
        self.ttl = Some(at);
        self
    }
}

impl<T: Serialize> Keyed<T> {
    pub fn to_item(&self) -> StoreResult<Item> {
        serde_dynamo::to_item(self).map_err(|_| encode_error(&self.entity))
    }
}

/// Decodes an item; the error names the entity, never a value (serde messages may quote one).
pub fn decode<T: DeserializeOwned>(item: Item, entity: &str) -> StoreResult<T> {
    serde_dynamo::from_item::<_, Keyed<T>>(item)
        .map(|keyed| keyed.data)
        .map_err(|_| StoreError::Backend(format!("cannot decode a stored {entity} item")))
}

/// One attribute value (for update expressions and conditions).
pub fn value<T: Serialize + ?Sized>(v: &T, what: &str) -> StoreResult<AttributeValue> {
    serde_dynamo::to_attribute_value(v).map_err(|_| encode_error(what))
}

fn encode_error(what: &str) -> StoreError {
    StoreError::Backend(format!("cannot encode {what}"))
}

/// The key of an item.
pub fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([
        (keys::PK.to_owned(), AttributeValue::S(pk.into())),
        (keys::SK.to_owned(), AttributeValue::S(sk.into())),
    ])
}

/// The string value of a key attribute of `item`.
pub fn key_string<'a>(item: &'a Item, name: &str) -> StoreResult<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Ok(s),
        _ => Err(StoreError::Backend(format!("an item lacks its {name}"))),
    }
}

// --- entity payloads -----------------------------------------------------------------------------

/// A site user and their optional link. `discord_user_id` and `link_status` mirror the link for
/// conditions and filters.
#[derive(Serialize, Deserialize)]
pub struct MemberData {
    pub client: String,
    pub user_id: String,
    pub groups: BTreeSet<String>,
    pub attributes: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<Link>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discord_user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_status: Option<LinkStatus>,
    pub pending: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<LastError>,
    pub version: i64,
    pub updated_at: Timestamp,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unlinking: BTreeMap<String, Unlinking>,
    /// Bumped by every write of `unlinking`, so its read-modify-writes are conditional on it.
    #[serde(default)]
    pub unlinking_rev: i64,
}

impl From<MemberData> for Member {
    fn from(d: MemberData) -> Self {
        Member {
            client: d.client,
            user: SiteUser {
                user_id: d.user_id,
                groups: d.groups,
                attributes: d.attributes,
            },
            link: d.link,
            unlinking: d.unlinking,
            pending: d.pending,
            last_error: d.last_error,
            version: d.version,
            updated_at: d.updated_at,
        }
    }
}

/// Who holds a Discord account within a client: the uniqueness item of a link.
#[derive(Serialize, Deserialize)]
pub struct AccountData {
    pub client: String,
    pub discord_user_id: String,
    pub user_id: String,
}

/// All mirrored roles of a client in one item, so a replacement is one write. `rev` is bumped by
/// every write and guards read-modify-writes.
#[derive(Serialize, Deserialize)]
pub struct RolesData {
    pub client: String,
    pub roles: Vec<Role>,
    pub rev: i64,
}

#[derive(Serialize, Deserialize)]
pub struct SettingData {
    pub key: String,
    pub value: String,
}

/// A lease: taken while `expires_at > now`. `handover` is what the last holder left for the next
/// one (opaque here); it survives takeovers and releases.
#[derive(Serialize, Deserialize)]
pub struct LeaseData {
    pub name: String,
    pub holder: String,
    pub expires_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handover: Option<String>,
}

/// A mark of the work index. `task` is [`TaskName::as_str`](crate::domain::TaskName::as_str).
#[derive(Serialize, Deserialize)]
pub struct WorkData {
    pub client: String,
    pub task: String,
    pub seq: u64,
    pub since: Timestamp,
}
