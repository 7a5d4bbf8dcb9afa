//! `discord-connector`: the self-hosted connector (`serve`), the offline demo (`demo`), and one-off
//! task runs (`task`).

mod demo;
mod demo_site;
mod rotate_key;
mod serve;
mod task;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use connector::store::retention;

#[derive(Parser)]
#[command(
    name = "discord-connector",
    version,
    about = "Link website users to Discord and keep their roles in sync"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Admin API, SSO callback and the default schedule in one process, embedded store in a file.
    Serve {
        #[arg(long, env = "CONNECTOR_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        #[arg(
            long,
            env = "CONNECTOR_DATABASE",
            default_value = "./discord-connector.db"
        )]
        database: PathBuf,
        /// Let clients use Discord URLs other than Discord's (`discord_api_base`,
        /// `discord_authorize_url`): an emulator or a test server. Off by default, since the
        /// bot token and the client secret are sent there.
        #[arg(long, env = "CONNECTOR_ALLOW_CUSTOM_DISCORD_URLS")]
        allow_custom_discord_urls: bool,
        /// Days a run report is kept after it started (pruned daily).
        #[arg(
            long,
            env = "CONNECTOR_RETAIN_RUNS_DAYS",
            default_value_t = retention::DEFAULT_RETAIN_RUNS_DAYS,
            value_parser = |v: &str| retention::parse_days(retention::RETAIN_RUNS_DAYS_VAR, v),
        )]
        retain_runs_days: u32,
        /// Days an audit entry is kept (pruned daily).
        #[arg(
            long,
            env = "CONNECTOR_RETAIN_AUDIT_DAYS",
            default_value_t = retention::DEFAULT_RETAIN_AUDIT_DAYS,
            value_parser = |v: &str| retention::parse_days(retention::RETAIN_AUDIT_DAYS_VAR, v),
        )]
        retain_audit_days: u32,
    },
    /// `serve` plus a seeded Discord emulator and a demo website: try everything offline.
    Demo {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        #[arg(long, default_value = "127.0.0.1:8081")]
        emulator_listen: SocketAddr,
        /// Keep the demo's data in this file (default: a fresh temporary database per start,
        /// matching the emulator, which starts fresh too).
        #[arg(long)]
        database: Option<PathBuf>,
    },
    /// Run one task once for one client and print its report (or, with --dry-run, its plan).
    Task {
        #[arg(value_parser = ["verify-groups", "sync-accounts", "remote-sync-groups"])]
        name: String,
        #[arg(long)]
        client: String,
        #[arg(long)]
        dry_run: bool,
        /// Stop after this many members; the next run resumes where this one stopped.
        #[arg(long)]
        max_members: Option<u64>,
        #[arg(
            long,
            env = "CONNECTOR_DATABASE",
            default_value = "./discord-connector.db"
        )]
        database: PathBuf,
    },
    /// Re-seal every secret in the database under a new key (client secrets and users' OAuth
    /// tokens, in one transaction), then replace the key file, keeping the old key as
    /// `<database>.key.<kid>.bak`. Safe to run again after an interruption. Stop `serve` first.
    RotateKey {
        #[arg(
            long,
            env = "CONNECTOR_DATABASE",
            default_value = "./discord-connector.db"
        )]
        database: PathBuf,
    },
    /// Print the admin API's OpenAPI document.
    Openapi,
}

fn init_tracing() {
    connector::telemetry::init_cli("info,tower_http=warn");
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    init_tracing();
    let result = match Cli::parse().command {
        Command::Serve {
            listen,
            database,
            allow_custom_discord_urls,
            retain_runs_days,
            retain_audit_days,
        } => {
            let urls = if allow_custom_discord_urls {
                connector::domain::client::DiscordUrlPolicy::AllowCustom
            } else {
                connector::domain::client::DiscordUrlPolicy::DiscordOnly
            };
            let retention = connector::store::RetentionPolicy {
                runs_days: retain_runs_days,
                audit_days: retain_audit_days,
            };
            serve::run(listen, database, urls, retention).await
        }
        Command::Demo {
            listen,
            emulator_listen,
            database,
        } => demo::run(listen, emulator_listen, database).await,
        Command::Task {
            name,
            client,
            dry_run,
            max_members,
            database,
        } => task::run(&name, &client, dry_run, max_members, database).await,
        Command::RotateKey { database } => rotate_key::run(database),
        Command::Openapi => {
            println!(
                "{}",
                serde_json::to_string_pretty(&connector::http::openapi()).unwrap_or_default()
            );
            Ok(())
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Reads the secret-bearing environment variables of the self-hosted binary.
pub(crate) fn env_secret(name: &str) -> Option<connector::secrecy::SecretString> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .map(connector::secrecy::SecretString::from)
}
