//! The seed an emulator starts from: one application, its guilds and the users who may sign in.
//!
//! Snowflakes stay strings, as on Discord's wire, so a scenario file reads like real payloads.

use serde::{Deserialize, Serialize};

use crate::linked::LinkedRequirement;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scenario {
    pub application: ScenarioApplication,
    #[serde(default)]
    pub guilds: Vec<ScenarioGuild>,
    #[serde(default)]
    pub users: Vec<ScenarioUser>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScenarioApplication {
    pub id: String,
    pub client_secret: String,
    pub bot_token: String,
    pub bot_user: ScenarioBotUser,
    /// Empty accepts any `redirect_uri`, which keeps ad-hoc test set-ups short.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// The Events Endpoint URL (developer portal → General Information): where signed Webhook
    /// Events go, e.g. `APPLICATION_DEAUTHORIZED` when a user removes the application. Unset:
    /// none are sent (until `PUT /_emulator/events-url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_url: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScenarioBotUser {
    pub id: String,
    pub username: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScenarioGuild {
    pub id: String,
    pub name: String,
    pub owner_id: String,
    /// The GUILD_MEMBERS privileged intent; without it the member list answers 403 50001.
    #[serde(default = "yes")]
    pub members_intent: bool,
    #[serde(default)]
    pub roles: Vec<ScenarioRole>,
    #[serde(default)]
    pub members: Vec<ScenarioMember>,
    #[serde(default)]
    pub banned: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScenarioRole {
    pub id: String,
    pub name: String,
    pub position: i64,
    #[serde(default)]
    pub managed: bool,
    #[serde(default = "zero_permissions")]
    pub permissions: String,
    /// RGB, 0 for none (Discord's `color`).
    #[serde(default)]
    pub color: u32,
    /// Linked Roles requirements, as a server admin sets them in the role's Links (server
    /// settings → Roles); members who meet them claim the role themselves. Empty: not a linked
    /// role.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub linked_requirements: Vec<LinkedRequirement>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScenarioMember {
    pub user_id: String,
    #[serde(default)]
    pub nick: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScenarioUser {
    pub id: String,
    pub username: String,
    #[serde(default)]
    pub global_name: Option<String>,
    #[serde(default = "migrated_discriminator")]
    pub discriminator: String,
    /// Returned by `/users/@me` when the token carries the `email` scope.
    #[serde(default)]
    pub email: Option<String>,
    /// Joining any guild fails with 400 30001.
    #[serde(default)]
    pub too_many_guilds: bool,
    /// Joining any guild fails with 403 340015.
    #[serde(default)]
    pub limited: bool,
}

impl ScenarioUser {
    /// A plain migrated user (discriminator "0") with nothing special about them.
    pub fn new(id: impl Into<String>, username: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            username: username.into(),
            global_name: None,
            discriminator: migrated_discriminator(),
            email: None,
            too_many_guilds: false,
            limited: false,
        }
    }
}

impl ScenarioRole {
    pub fn new(id: impl Into<String>, name: impl Into<String>, position: i64) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            position,
            managed: false,
            permissions: zero_permissions(),
            color: 0,
            linked_requirements: Vec::new(),
        }
    }
}

/// Parse failure of a scenario file.
pub type ScenarioError = serde_json::Error;

impl Scenario {
    /// The committed demo (`fixtures/emulator/demo.json`): ids and names are listed in that file.
    pub fn demo() -> Self {
        Self::from_json(DEMO_JSON).expect("the committed demo scenario is valid JSON")
    }

    pub fn from_json(json: &str) -> Result<Self, ScenarioError> {
        serde_json::from_str(json)
    }

    /// The guild most tests care about.
    pub fn first_guild(&self) -> Option<&ScenarioGuild> {
        self.guilds.first()
    }

    pub fn user_by_name(&self, username: &str) -> Option<&ScenarioUser> {
        self.users.iter().find(|u| u.username == username)
    }
}

impl ScenarioGuild {
    pub fn role_by_name(&self, name: &str) -> Option<&ScenarioRole> {
        self.roles.iter().find(|r| r.name == name)
    }
}

const DEMO_JSON: &str = include_str!("../../fixtures/emulator/demo.json");

fn yes() -> bool {
    true
}

fn zero_permissions() -> String {
    "0".to_owned()
}

fn migrated_discriminator() -> String {
    "0".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_has_the_cast_the_docs_promise() {
        let demo = Scenario::demo();
        let guild = demo.first_guild().expect("demo has a guild");
        for name in ["alice", "bob", "carol", "dave", "erin"] {
            assert!(demo.user_by_name(name).is_some(), "{name} missing");
        }
        let bot_role = guild.role_by_name("Connector Bot").expect("bot role");
        assert!(bot_role.managed);
        assert!(guild.role_by_name("Admin").expect("admin").position > bot_role.position);
        assert_eq!(
            guild.roles[0].id, guild.id,
            "@everyone carries the guild id"
        );
        let linked = guild.role_by_name("Verified Officer").expect("linked role");
        assert!(!linked.managed && linked.position < bot_role.position);
        assert_eq!(
            linked.linked_requirements,
            vec![LinkedRequirement {
                key: "officer".into(),
                value: "1".into()
            }]
        );
    }

    #[test]
    fn a_role_without_requirements_serializes_as_before() {
        let role = ScenarioRole::new("1", "Plain", 1);
        let json = serde_json::to_value(&role).expect("serializes");
        assert!(json.get("linked_requirements").is_none(), "{json}");
    }
}
