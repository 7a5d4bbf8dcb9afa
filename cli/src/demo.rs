//! `discord-connector demo`: the connector, a seeded Discord emulator and a demo website in one
//! process, so every feature can be tried offline.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;

use connector::domain::linked_roles::{MetadataField, MetadataSource, ValueKind};
use connector::domain::{LinkedRoles, SiteUser};
use connector::secrecy::SecretString;
use connector::selfhost::{self, SelfHostConfig};
use connector::service::clients::{create_client, update_client, ClientSecrets};
use connector::service::linked_roles::save_linked_roles;
use connector::service::{members, roles};
use discord_emulator::{Emulator, Scenario};

use crate::demo_site;
use crate::env_secret;
use crate::serve::{announce, serve_with_schedule, CliResult};

pub const DEMO_CLIENT: &str = "demo";

/// Site groups → the demo guild's role names.
const MAPPING: [(&str, &str); 4] = [
    ("Member", "members"),
    ("Pilot", "pilots"),
    ("Officer", "officers"),
    ("Director", "directors"),
];

/// The demo website's users: (user id, groups, corp ticker, joined the site on).
const SITE_USERS: [(&str, &[&str], &str, &str); 3] = [
    ("alice", &["members", "pilots"], "TEST", "2021-03-14"),
    ("bob", &["members", "officers"], "TEST", "2019-07-01"),
    ("carol", &["members"], "ALT", "2024-11-30"),
];

/// Linked Roles on the demo client: linking asks for `role_connections.write`, and each linked
/// member's role connection says whether they are an officer and since when they are a member.
/// The demo guild's "Verified Officer" requires officer = 1: an officer claims it in the
/// emulator's Linked Roles section.
fn demo_linked_roles() -> LinkedRoles {
    let field = |key: &str, name: &str, description: &str, kind: ValueKind, source| MetadataField {
        key: key.into(),
        name: name.into(),
        description: description.into(),
        kind,
        comparison: kind.default_comparison(),
        source,
    };
    LinkedRoles {
        enabled: true,
        platform_name: "Demo community".into(),
        // The demo's site user ids are names already.
        username_attribute: None,
        metadata: vec![
            field(
                "officer",
                "Officer",
                "Officer on the website",
                ValueKind::Boolean,
                MetadataSource::Group("officers".into()),
            ),
            field(
                "member_since",
                "Member since",
                "Member of the website since",
                ValueKind::Datetime,
                MetadataSource::Attribute("joined".into()),
            ),
        ],
    }
}

pub async fn run(
    listen: SocketAddr,
    emulator_listen: SocketAddr,
    database: Option<PathBuf>,
) -> CliResult {
    let emulator = Emulator::start_on(Scenario::demo(), emulator_listen).await?;
    let scenario = emulator.scenario();
    let guild = scenario
        .first_guild()
        .ok_or("demo scenario has no guild")?
        .clone();

    let temp = tempdir_for_demo()?;
    let database = database.unwrap_or_else(|| temp.join("discord-connector-demo.db"));
    let hosted = selfhost::open(
        SelfHostConfig {
            database: database.clone(),
            secret_key: env_secret("CONNECTOR_SECRET_KEY"),
            admin_token: env_secret("CONNECTOR_ADMIN_TOKEN"),
            // The demo's clients talk to its emulator.
            discord_urls: connector::domain::client::DiscordUrlPolicy::AllowCustom,
            retention: Default::default(),
        },
        selfhost::system_clock(),
    )
    .await?;
    let app = hosted.state.clone();
    let origin = format!("http://{listen}");

    if app.store.get_client(DEMO_CLIENT).await?.is_none() {
        let now = app.clock.now();
        let client = connector::domain::Client {
            id: DEMO_CLIENT.into(),
            name: "Demo community".into(),
            guild_id: guild.id.clone(),
            client_id: scenario.application.id.clone(),
            callback_url: format!("{origin}/discord/sso/callback"),
            invite_link: None,
            nickname_template: Some("[{corp_ticker}] {username}".into()),
            unlink_policy: Default::default(),
            source_of_truth: Default::default(),
            return_to_origins: vec![origin.clone()],
            discord_api_base: emulator.api_base(),
            discord_authorize_url: emulator.authorize_url(),
            public_key: Some(emulator.public_key()),
            // The demo website below receives and shows the signed webhooks.
            webhook_url: Some(format!("{origin}/demo/webhooks")),
            linked_roles: None,
            guild: Default::default(),
            created_at: now,
            updated_at: now,
        };
        let secrets = ClientSecrets {
            bot_token: Some(SecretString::from(scenario.application.bot_token.clone())),
            client_secret: Some(SecretString::from(
                scenario.application.client_secret.clone(),
            )),
            webhook_secret: Some(SecretString::from(
                connector::domain::webhook::new_webhook_secret(),
            )),
        };
        create_client(&app, client, secrets).await?;
        roles::sync_roles(&app, DEMO_CLIENT, "demo").await?;
        for (role_name, group) in MAPPING {
            if let Some(role_id) = emulator.role_id(role_name) {
                roles::map_role(
                    &app,
                    DEMO_CLIENT,
                    &role_id,
                    BTreeSet::from([group.to_owned()]),
                    "demo",
                )
                .await?;
            }
        }
        for (user_id, groups, ticker, joined) in SITE_USERS {
            let user = SiteUser {
                user_id: user_id.into(),
                groups: groups.iter().map(|g| g.to_string()).collect(),
                attributes: BTreeMap::from([
                    ("corp_ticker".to_owned(), ticker.to_owned()),
                    ("joined".to_owned(), joined.to_owned()),
                ]),
            };
            members::save_user(&app, DEMO_CLIENT, user).await?;
        }
    }

    // Webhook Events: the emulator signs them with its application's key and POSTs them to the
    // connector, so deauthorizing the app in the emulator unlinks the member end to end. (A demo
    // database from before Webhook Events gets the key here.)
    if let Some(mut client) = app.store.get_client(DEMO_CLIENT).await? {
        if client.public_key.as_deref() != Some(emulator.public_key().as_str()) {
            client.public_key = Some(emulator.public_key());
            update_client(&app, client, ClientSecrets::default()).await?;
        }
    }
    emulator.set_events_url(&format!("{origin}/discord/events"));

    // Linked Roles: a demo database from before them gets the demo's configuration; one that has
    // a configuration keeps it. The emulator starts empty at every run, so the client's metadata
    // records are registered with it again (through the same save an operator makes) whenever
    // it does not hold them.
    if let Some(client) = app.store.get_client(DEMO_CLIENT).await? {
        let config = client
            .linked_roles
            .clone()
            .unwrap_or_else(demo_linked_roles);
        let held = serde_json::Value::Array(emulator.role_connection_metadata());
        if client.linked_roles.is_none() || held != serde_json::to_value(config.discord_records())?
        {
            save_linked_roles(&app, DEMO_CLIENT, config, "demo").await?;
        }
    }

    announce(&hosted, &database, listen);
    println!();
    println!("Demo ready:");
    println!("  1. Open {origin}/demo  — the demo website: link a site user to Discord, change their groups.");
    println!("  2. The Discord emulator's consent page lets you pick which Discord user you are.");
    println!(
        "  3. Watch the guild at {} (roles appear within seconds).",
        emulator.base_url()
    );
    println!(
        "  4. Deauthorize a linked user there (Authorized apps): Discord's signed event unlinks them."
    );
    println!(
        "  5. In the emulator's Linked Roles section, bob (an officer) can claim Verified Officer."
    );
    println!("  Operator console: {origin}/admin (sign in with the admin token; client `{DEMO_CLIENT}`).");
    println!("  Admin API: {origin}/api/v1 (OpenAPI: {origin}/api/v1/openapi.json), client id `{DEMO_CLIENT}`.");
    if let Some(token) = &hosted.generated_admin_token {
        println!("  Try: curl -H 'Authorization: Bearer {token}' {origin}/api/v1/clients/{DEMO_CLIENT}/users");
    }
    let site = demo_site::router(app, DEMO_CLIENT, &origin);
    serve_with_schedule(hosted, listen, site).await?;
    emulator.shutdown().await;
    Ok(())
}

/// A fresh directory per demo start, removed by the OS's temp cleaning.
fn tempdir_for_demo() -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("discord-connector-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
