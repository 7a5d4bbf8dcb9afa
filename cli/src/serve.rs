use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use connector::domain::client::DiscordUrlPolicy;
use connector::selfhost::{self, SelfHostConfig};
use connector::store::RetentionPolicy;

use crate::env_secret;

pub type CliResult = Result<(), Box<dyn std::error::Error>>;

pub async fn run(
    listen: SocketAddr,
    database: PathBuf,
    discord_urls: DiscordUrlPolicy,
    retention: RetentionPolicy,
) -> CliResult {
    let hosted = selfhost::open(
        SelfHostConfig {
            database: database.clone(),
            secret_key: env_secret("CONNECTOR_SECRET_KEY"),
            admin_token: env_secret("CONNECTOR_ADMIN_TOKEN"),
            discord_urls,
            retention,
        },
        selfhost::system_clock(),
    )
    .await?;
    announce(&hosted, &database, listen);
    serve_with_schedule(hosted, listen, axum::Router::new()).await
}

pub fn announce(hosted: &selfhost::SelfHosted, database: &std::path::Path, listen: SocketAddr) {
    println!(
        "discord-connector {} listening on http://{listen}",
        env!("CARGO_PKG_VERSION")
    );
    println!("  database:  {}", database.display());
    if let Some(key) = &hosted.key_file {
        println!(
            "  secret key file: {} (back it up: secrets in the database need it)",
            key.display()
        );
    }
    match &hosted.generated_admin_token {
        Some(token) => {
            println!("  admin token (shown once, only its hash is stored): {token}");
        }
        None => {
            println!("  admin token: from CONNECTOR_ADMIN_TOKEN or generated on an earlier start")
        }
    }
    println!("  SSO callback to register in the Discord developer portal: http://{listen}/discord/sso/callback");
    println!("  operator console: http://{listen}/admin (sign in with the admin token)");
}

/// Serves the router (plus `extra` routes), runs the guild writers' worker pool and the default
/// schedule until Ctrl-C.
pub async fn serve_with_schedule(
    mut hosted: selfhost::SelfHosted,
    listen: SocketAddr,
    extra: axum::Router,
) -> CliResult {
    hosted.start_workers(selfhost::DEFAULT_WORKERS);
    let state = hosted.state.clone();
    let schedule = connector::schedule::default_schedule()?;
    let scheduler = tokio::spawn(connector::schedule::run_scheduler(
        state.clone(),
        schedule,
        Duration::from_secs(10),
    ));
    let app = connector::http::router(state).merge(extra);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    scheduler.abort();
    Ok(())
}
