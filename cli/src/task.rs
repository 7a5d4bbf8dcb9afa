use std::path::PathBuf;

use connector::domain::TaskName;
use connector::selfhost::{self, SelfHostConfig};
use connector::tasks::{self, TaskOptions};

use crate::env_secret;
use crate::serve::CliResult;

pub async fn run(
    name: &str,
    client: &str,
    dry_run: bool,
    max_members: Option<u64>,
    database: PathBuf,
) -> CliResult {
    let task = TaskName::parse(name).ok_or_else(|| format!("unknown task {name}"))?;
    let hosted = selfhost::open(
        SelfHostConfig {
            database,
            secret_key: env_secret("CONNECTOR_SECRET_KEY"),
            // A one-off run serves no API: keep the stored admin token as it is (this random one
            // is never stored nor shown, so nobody can use it).
            admin_token: Some(connector::secrecy::SecretString::from(
                connector::app::random_token(32),
            )),
            // A task run configures no client.
            discord_urls: Default::default(),
            retention: Default::default(),
        },
        selfhost::system_clock(),
    )
    .await?;
    let options = TaskOptions {
        dry_run,
        deadline: None,
        trigger: "cli".into(),
        max_members,
    };
    let report = tasks::run_task(&hosted.state, task, client, &options).await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
