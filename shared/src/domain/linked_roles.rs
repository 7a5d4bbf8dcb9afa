//! Linked Roles: the metadata records a client registers with Discord (application role
//! connections) and where each member's value comes from. Discord lets server admins require
//! e.g. "officer = true" on a role; members then claim it themselves, no bot hierarchy needed.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::member::{Link, LinkStatus, SiteUser};

/// The OAuth2 scope that lets us write a member's role connection with their token.
pub const ROLE_CONNECTIONS_WRITE: &str = "role_connections.write";

/// Discord keeps at most 5 metadata records per application.
pub const MAX_METADATA: usize = 5;
/// Discord's limits on a record's fields and on a connection's `platform_name`.
pub const MAX_KEY_CHARS: usize = 50;
pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_DESCRIPTION_CHARS: usize = 200;
pub const MAX_PLATFORM_NAME_CHARS: usize = 50;

/// A client's Linked Roles configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LinkedRoles {
    /// On: the link flow asks for `role_connections.write` and members' metadata is pushed.
    pub enabled: bool,
    /// Shown by Discord on the member's profile beside the connection (1–50 characters).
    pub platform_name: String,
    /// The site attribute whose value Discord shows as the member's name on the connection
    /// (`platform_username`, e.g. `username`); the site user id when absent or the member has
    /// no such attribute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_attribute: Option<String>,
    pub metadata: Vec<MetadataField>,
}

/// One metadata record and where a member's value comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MetadataField {
    /// `a-z0-9_`, 1–50 characters, unique within the client.
    pub key: String,
    pub name: String,
    pub description: String,
    #[serde(rename = "type")]
    pub kind: ValueKind,
    pub comparison: Comparison,
    pub source: MetadataSource,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ValueKind {
    Boolean,
    Integer,
    Datetime,
}

/// How a server's requirement compares with the member's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    LessThanOrEqual,
    GreaterThanOrEqual,
    Equal,
    NotEqual,
}

/// A boolean is "is the member in this site group"; an integer or datetime is read from one of
/// the member's site attributes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MetadataSource {
    Group(String),
    Attribute(String),
}

impl Comparison {
    pub const ALL: [Comparison; 4] = [
        Comparison::LessThanOrEqual,
        Comparison::GreaterThanOrEqual,
        Comparison::Equal,
        Comparison::NotEqual,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Comparison::LessThanOrEqual => "less_than_or_equal",
            Comparison::GreaterThanOrEqual => "greater_than_or_equal",
            Comparison::Equal => "equal",
            Comparison::NotEqual => "not_equal",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

impl ValueKind {
    /// The name the API and the console use (`boolean`, `integer`, `datetime`).
    pub const fn as_str(self) -> &'static str {
        match self {
            ValueKind::Boolean => "boolean",
            ValueKind::Integer => "integer",
            ValueKind::Datetime => "datetime",
        }
    }

    /// The comparison used when the operator names none: a boolean is "equals", an integer
    /// "at least", a datetime "on or before" (e.g. "member since").
    pub const fn default_comparison(self) -> Comparison {
        match self {
            ValueKind::Boolean => Comparison::Equal,
            ValueKind::Integer => Comparison::GreaterThanOrEqual,
            ValueKind::Datetime => Comparison::LessThanOrEqual,
        }
    }
}

/// Discord's `type` number for a kind and comparison; `None` for pairs Discord has no type for
/// (a boolean compared by order, a datetime by equality).
pub const fn discord_type(kind: ValueKind, comparison: Comparison) -> Option<u8> {
    use Comparison::*;
    match (kind, comparison) {
        (ValueKind::Integer, LessThanOrEqual) => Some(1),
        (ValueKind::Integer, GreaterThanOrEqual) => Some(2),
        (ValueKind::Integer, Equal) => Some(3),
        (ValueKind::Integer, NotEqual) => Some(4),
        (ValueKind::Datetime, LessThanOrEqual) => Some(5),
        (ValueKind::Datetime, GreaterThanOrEqual) => Some(6),
        (ValueKind::Boolean, Equal) => Some(7),
        (ValueKind::Boolean, NotEqual) => Some(8),
        _ => None,
    }
}

/// The kind and comparison of a Discord `type` number (1–8).
pub const fn from_discord_type(t: u64) -> Option<(ValueKind, Comparison)> {
    use Comparison::*;
    Some(match t {
        1 => (ValueKind::Integer, LessThanOrEqual),
        2 => (ValueKind::Integer, GreaterThanOrEqual),
        3 => (ValueKind::Integer, Equal),
        4 => (ValueKind::Integer, NotEqual),
        5 => (ValueKind::Datetime, LessThanOrEqual),
        6 => (ValueKind::Datetime, GreaterThanOrEqual),
        7 => (ValueKind::Boolean, Equal),
        8 => (ValueKind::Boolean, NotEqual),
        _ => return None,
    })
}

/// A record as Discord's `role-connections/metadata` takes and answers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DiscordMetadataRecord {
    #[serde(rename = "type")]
    pub kind: u8,
    pub key: String,
    pub name: String,
    pub description: String,
}

/// A configuration that breaks one of the rules: the field (`metadata[1].key`) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> Invalid {
    Invalid {
        field: field.into(),
        message: message.into(),
    }
}

fn check_text(field: &str, v: &str, max: usize) -> Result<(), Invalid> {
    let n = v.chars().count();
    if n == 0 || n > max || v.trim().is_empty() {
        return Err(invalid(field, format!("must be 1-{max} characters")));
    }
    Ok(())
}

impl LinkedRoles {
    /// Checks the rules Discord enforces (so a save is not refused half-way) and ours: keys
    /// unique, a boolean read from a group, an integer or datetime from an attribute.
    pub fn validate(&self) -> Result<(), Invalid> {
        check_text(
            "platform_name",
            &self.platform_name,
            MAX_PLATFORM_NAME_CHARS,
        )?;
        if let Some(attribute) = &self.username_attribute {
            check_text("username_attribute", attribute, 64)?;
        }
        if self.metadata.len() > MAX_METADATA {
            return Err(invalid(
                "metadata",
                format!("Discord keeps at most {MAX_METADATA} records"),
            ));
        }
        let mut keys = BTreeSet::new();
        for (i, m) in self.metadata.iter().enumerate() {
            let f = |name: &str| format!("metadata[{i}].{name}");
            if m.key.is_empty()
                || m.key.len() > MAX_KEY_CHARS
                || !m
                    .key
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(invalid(
                    f("key"),
                    format!("must be 1-{MAX_KEY_CHARS} characters of a-z, 0-9 and _"),
                ));
            }
            if !keys.insert(m.key.as_str()) {
                return Err(invalid(f("key"), format!("{:?} is used twice", m.key)));
            }
            check_text(&f("name"), &m.name, MAX_NAME_CHARS)?;
            check_text(&f("description"), &m.description, MAX_DESCRIPTION_CHARS)?;
            if discord_type(m.kind, m.comparison).is_none() {
                return Err(invalid(
                    f("comparison"),
                    format!(
                        "a {} cannot be compared by {}",
                        m.kind.as_str(),
                        m.comparison.as_str()
                    ),
                ));
            }
            match (&m.source, m.kind) {
                (MetadataSource::Group(g), ValueKind::Boolean) => {
                    check_text(&f("source.group"), g, 100)?
                }
                (MetadataSource::Attribute(a), ValueKind::Integer | ValueKind::Datetime) => {
                    check_text(&f("source.attribute"), a, 64)?
                }
                (_, ValueKind::Boolean) => {
                    return Err(invalid(f("source"), "a boolean needs a group source"))
                }
                (_, _) => {
                    return Err(invalid(
                        f("source"),
                        "an integer or datetime needs an attribute source",
                    ))
                }
            }
        }
        Ok(())
    }

    /// The records to register with Discord (validated configurations only).
    pub fn discord_records(&self) -> Vec<DiscordMetadataRecord> {
        self.metadata
            .iter()
            .filter_map(|m| {
                Some(DiscordMetadataRecord {
                    kind: discord_type(m.kind, m.comparison)?,
                    key: m.key.clone(),
                    name: m.name.clone(),
                    description: m.description.clone(),
                })
            })
            .collect()
    }
}

/// Whether a member must link again for Linked Roles: the client's Linked Roles are on and the
/// member's active link did not grant [`ROLE_CONNECTIONS_WRITE`] (linked before it was asked for,
/// or imported without a token).
pub fn needs_relink(linked_roles: Option<&LinkedRoles>, link: &Link) -> bool {
    linked_roles.is_some_and(|l| l.enabled)
        && link.status == LinkStatus::Active
        && !link.granted(ROLE_CONNECTIONS_WRITE)
}

/// What Discord keeps of a member for this application (`PUT /users/@me/applications/{app}/
/// role-connection`); the last one pushed is kept on the link so an unchanged one is not sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleConnection {
    pub platform_name: String,
    pub platform_username: String,
    /// Values as Discord takes them: booleans `"1"`/`"0"`, integers in decimal, datetimes ISO 8601.
    pub metadata: BTreeMap<String, String>,
}

/// Discord keeps at most 100 characters of `platform_username`.
const MAX_PLATFORM_USERNAME_CHARS: usize = 100;

/// The member's metadata values. A boolean is always present (in the group or not); an integer
/// or datetime only when the attribute holds one: a missing value makes Discord treat the
/// requirement as unmet, which is right for a member we know nothing about.
pub fn member_metadata(config: &LinkedRoles, user: &SiteUser) -> BTreeMap<String, String> {
    config
        .metadata
        .iter()
        .filter_map(|m| {
            let value = match (&m.source, m.kind) {
                (MetadataSource::Group(g), _) => {
                    if user.groups.contains(g) { "1" } else { "0" }.to_owned()
                }
                (MetadataSource::Attribute(a), ValueKind::Integer) => user
                    .attributes
                    .get(a)?
                    .trim()
                    .parse::<i64>()
                    .ok()?
                    .to_string(),
                (MetadataSource::Attribute(a), _) => {
                    let v = user.attributes.get(a)?.trim();
                    is_iso_date(v).then(|| v.to_owned())?
                }
            };
            Some((m.key.clone(), value))
        })
        .collect()
}

/// `YYYY-MM-DD`, optionally followed by a time (`T…`): what Discord accepts as ISO 8601.
fn is_iso_date(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() >= 10
        && b[..10].iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        })
        && (b.len() == 10 || b[10] == b'T')
}

/// The role connection `user` should have on Discord.
pub fn role_connection(config: &LinkedRoles, user: &SiteUser) -> RoleConnection {
    RoleConnection {
        platform_name: config.platform_name.clone(),
        platform_username: config
            .username_attribute
            .as_ref()
            .and_then(|a| user.attributes.get(a))
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .unwrap_or(&user.user_id)
            .chars()
            .take(MAX_PLATFORM_USERNAME_CHARS)
            .collect(),
        metadata: member_metadata(config, user),
    }
}

/// The role connection to push for this member, when one is due: Linked Roles on, the link
/// active with a token that granted [`ROLE_CONNECTIONS_WRITE`], and Discord not already holding
/// exactly this (as far as we pushed it).
pub fn role_connection_due(
    linked_roles: Option<&LinkedRoles>,
    user: &SiteUser,
    link: &Link,
) -> Option<RoleConnection> {
    let desired = role_connection_for(linked_roles, user, link)?;
    (link.role_connection.as_ref() != Some(&desired)).then_some(desired)
}

/// The role connection this member should have, when we may write one at all: Linked Roles on,
/// the link active with a token that granted [`ROLE_CONNECTIONS_WRITE`].
pub fn role_connection_for(
    linked_roles: Option<&LinkedRoles>,
    user: &SiteUser,
    link: &Link,
) -> Option<RoleConnection> {
    let config = linked_roles.filter(|l| l.enabled)?;
    if link.status != LinkStatus::Active
        || link.tokens.is_none()
        || !link.granted(ROLE_CONNECTIONS_WRITE)
    {
        return None;
    }
    Some(role_connection(config, user))
}

/// A role connection as Discord answers it (`GET …/role-connection`): empty fields are `null`
/// when the user has none.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct HeldRoleConnection {
    #[serde(default)]
    pub platform_name: Option<String>,
    #[serde(default)]
    pub platform_username: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

impl HeldRoleConnection {
    /// Whether Discord holds exactly `ours`.
    pub fn matches(&self, ours: &RoleConnection) -> bool {
        self.platform_name.as_deref() == Some(ours.platform_name.as_str())
            && self.platform_username.as_deref() == Some(ours.platform_username.as_str())
            && self.metadata == ours.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn user(groups: &[&str], attributes: &[(&str, &str)]) -> SiteUser {
        SiteUser {
            user_id: "u1".into(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            attributes: attributes
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    fn full_config() -> LinkedRoles {
        config(vec![
            field(
                "officer",
                ValueKind::Boolean,
                MetadataSource::Group("officers".into()),
            ),
            field(
                "missions",
                ValueKind::Integer,
                MetadataSource::Attribute("missions".into()),
            ),
            field(
                "since",
                ValueKind::Datetime,
                MetadataSource::Attribute("joined_at".into()),
            ),
        ])
    }

    #[test]
    fn metadata_reads_groups_and_attributes_as_discord_strings() {
        let c = full_config();
        let m = member_metadata(
            &c,
            &user(
                &["officers"],
                &[("missions", " 12 "), ("joined_at", "2024-05-01T10:00:00Z")],
            ),
        );
        assert_eq!(
            m,
            BTreeMap::from([
                ("officer".to_owned(), "1".to_owned()),
                ("missions".to_owned(), "12".to_owned()),
                ("since".to_owned(), "2024-05-01T10:00:00Z".to_owned()),
            ])
        );
        let m = member_metadata(
            &c,
            &user(&[], &[("missions", "many"), ("joined_at", "yesterday")]),
        );
        assert_eq!(
            m,
            BTreeMap::from([("officer".to_owned(), "0".to_owned())]),
            "unusable attributes are left out"
        );
    }

    proptest! {
        #[test]
        fn metadata_has_only_configured_keys_and_every_boolean(
            groups in proptest::collection::btree_set("[a-z]{1,8}", 0..6),
            missions in proptest::option::of(any::<i64>()),
            junk in "[ -~]{0,12}",
        ) {
            let c = full_config();
            let mut attributes = BTreeMap::new();
            if let Some(n) = missions {
                attributes.insert("missions".to_owned(), n.to_string());
            }
            attributes.insert("joined_at".to_owned(), junk.clone());
            let u = SiteUser { user_id: "u".into(), groups: groups.clone(), attributes };
            let m = member_metadata(&c, &u);
            let keys: BTreeSet<&str> = c.metadata.iter().map(|f| f.key.as_str()).collect();
            prop_assert!(m.keys().all(|k| keys.contains(k.as_str())));
            let officer = if groups.contains("officers") { "1" } else { "0" };
            prop_assert_eq!(m.get("officer").map(String::as_str), Some(officer));
            prop_assert_eq!(m.get("missions").cloned(), missions.map(|n| n.to_string()));
            prop_assert_eq!(m.contains_key("since"), is_iso_date(junk.trim()));
            // Deterministic: the same user gives the same values, so nothing is re-pushed.
            prop_assert_eq!(member_metadata(&c, &u), m);
        }
    }

    fn field(key: &str, kind: ValueKind, source: MetadataSource) -> MetadataField {
        MetadataField {
            key: key.into(),
            name: "Name".into(),
            description: "Description".into(),
            kind,
            comparison: kind.default_comparison(),
            source,
        }
    }

    fn config(metadata: Vec<MetadataField>) -> LinkedRoles {
        LinkedRoles {
            enabled: true,
            platform_name: "Example".into(),
            username_attribute: None,
            metadata,
        }
    }

    #[test]
    fn discord_type_numbers_round_trip() {
        for t in 1..=8 {
            let (kind, comparison) = from_discord_type(t).expect("1-8 are types");
            assert_eq!(discord_type(kind, comparison), Some(t as u8));
        }
        assert_eq!(from_discord_type(0), None);
        assert_eq!(from_discord_type(9), None);
        assert_eq!(
            discord_type(ValueKind::Boolean, Comparison::LessThanOrEqual),
            None
        );
    }

    #[test]
    fn a_valid_config_becomes_discord_records() {
        let c = config(vec![
            field(
                "officer",
                ValueKind::Boolean,
                MetadataSource::Group("officers".into()),
            ),
            field(
                "joined",
                ValueKind::Datetime,
                MetadataSource::Attribute("joined_at".into()),
            ),
        ]);
        assert_eq!(c.validate(), Ok(()));
        let kinds: Vec<u8> = c.discord_records().iter().map(|r| r.kind).collect();
        assert_eq!(kinds, vec![7, 5]);
    }

    #[test]
    fn each_rule_names_its_field() {
        let group = || MetadataSource::Group("g".into());
        let attr = || MetadataSource::Attribute("a".into());
        let cases = [
            (
                config(vec![field("Bad-Key", ValueKind::Boolean, group())]),
                "metadata[0].key",
            ),
            (
                config(vec![
                    field("a", ValueKind::Boolean, group()),
                    field("a", ValueKind::Boolean, group()),
                ]),
                "metadata[1].key",
            ),
            (
                config(vec![field("a", ValueKind::Boolean, attr())]),
                "metadata[0].source",
            ),
            (
                config(vec![field("a", ValueKind::Integer, group())]),
                "metadata[0].source",
            ),
            (
                config(
                    (0..6)
                        .map(|i| field(&format!("k{i}"), ValueKind::Boolean, group()))
                        .collect(),
                ),
                "metadata",
            ),
            (
                config(vec![MetadataField {
                    comparison: Comparison::Equal,
                    ..field("a", ValueKind::Datetime, attr())
                }]),
                "metadata[0].comparison",
            ),
            (
                LinkedRoles {
                    platform_name: String::new(),
                    ..config(vec![])
                },
                "platform_name",
            ),
            (
                LinkedRoles {
                    username_attribute: Some(" ".into()),
                    ..config(vec![])
                },
                "username_attribute",
            ),
        ];
        for (c, expected) in cases {
            assert_eq!(c.validate().expect_err("refused").field, expected, "{c:?}");
        }
    }

    #[test]
    fn the_members_name_comes_from_the_named_attribute_or_else_their_id() {
        let named = LinkedRoles {
            username_attribute: Some("username".into()),
            ..config(vec![])
        };
        let with_name = user(&[], &[("username", " Ace Pilot ")]);
        assert_eq!(
            role_connection(&named, &with_name).platform_username,
            "Ace Pilot"
        );
        let without = user(&[], &[("username", "  ")]);
        assert_eq!(role_connection(&named, &without).platform_username, "u1");
        assert_eq!(
            role_connection(&config(vec![]), &with_name).platform_username,
            "u1"
        );
        let long = user(&[], &[("username", &"x".repeat(150))]);
        assert_eq!(
            role_connection(&named, &long)
                .platform_username
                .chars()
                .count(),
            MAX_PLATFORM_USERNAME_CHARS
        );
    }
}
