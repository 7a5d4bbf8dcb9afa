//! `discord-emulator`: serve the emulator for demos and manual testing.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use discord_emulator::{Emulator, Scenario};

#[derive(Parser)]
#[command(about = "Stateful stand-in for Discord's REST API and OAuth2 endpoints")]
struct Args {
    /// Address to listen on.
    #[arg(
        long,
        env = "DISCORD_EMULATOR_LISTEN",
        default_value = "127.0.0.1:7000"
    )]
    listen: SocketAddr,
    /// Scenario JSON; the built-in demo when omitted.
    #[arg(long, env = "DISCORD_EMULATOR_SCENARIO")]
    scenario: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args = Args::parse();
    let scenario = match &args.scenario {
        Some(path) => Scenario::from_json(&std::fs::read_to_string(path)?)?,
        None => Scenario::demo(),
    };
    let emulator = Emulator::start_on(scenario, args.listen).await?;
    // The credentials are the scenario's fake ones: printing them is what lets a person point
    // the connector at this emulator.
    println!("Discord emulator listening on {}", emulator.base_url());
    println!("  dashboard:       {}/", emulator.base_url());
    println!("  api base:        {}", emulator.api_base());
    println!("  authorize url:   {}", emulator.authorize_url());
    println!("  application id:  {}", emulator.application_id());
    println!("  client secret:   {}", emulator.client_secret());
    println!("  bot token:       {}", emulator.bot_token());
    println!("  guild id:        {}", emulator.guild_id());
    tokio::signal::ctrl_c().await?;
    emulator.shutdown().await;
    Ok(())
}
