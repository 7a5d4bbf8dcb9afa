//! `cargo run --release -p bench`: the connector against the Discord emulator with Discord-like
//! rate limits and latency, scenario by scenario (`--scenario`, default all):
//!
//! - `remote-sync` — the weekly remote-sync-groups on guilds of several sizes with 1 % drift,
//!   next to the original package's strategy;
//! - `instances` — K `serve` instances on one store taking a website's pushes;
//! - `guilds` — one bot in 1 big + many small guilds: do the small ones wait for the big one?
//! - `idle-tick` — the 5-minute dispatch over many clients of which few have work;
//! - `lambda` — bootstrap size and cold start of each Lambda function (with `--lambda-dir`).
//!
//! Each prints a markdown table on stdout; progress goes to stderr.

mod alloc;
mod counting_store;
mod floor;
mod guilds;
mod harness;
mod idle_tick;
mod instances;
mod lambda;
mod original;
mod remote_sync;

use std::time::Duration;

use clap::{Parser, ValueEnum};

use harness::BenchResult;

#[global_allocator]
static ALLOC: alloc::Tracking = alloc::Tracking;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Which {
    RemoteSync,
    Instances,
    Guilds,
    IdleTick,
    Lambda,
    All,
}

#[derive(Parser)]
#[command(about = "Benchmark the connector against the Discord emulator")]
struct Args {
    /// Scenarios to run (`lambda` also needs `--lambda-dir`).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Which::All])]
    scenario: Vec<Which>,
    /// Emulated latency of every Discord request.
    #[arg(long, default_value_t = 30)]
    latency_ms: u64,
    /// Worker pool size of each instance (instances, guilds).
    #[arg(long, default_value_t = connector::selfhost::DEFAULT_WORKERS)]
    workers: usize,
    #[command(flatten)]
    remote_sync: remote_sync::Opts,
    #[command(flatten)]
    instances: instances::Opts,
    #[command(flatten)]
    guilds: guilds::Opts,
    #[command(flatten)]
    idle_tick: idle_tick::Opts,
    #[command(flatten)]
    lambda: lambda::Opts,
}

impl Args {
    fn runs(&self, which: Which) -> bool {
        self.scenario.contains(&which) || self.scenario.contains(&Which::All)
    }
}

#[tokio::main]
async fn main() -> BenchResult<()> {
    let args = Args::parse();
    let latency = Duration::from_millis(args.latency_ms);
    let command: Vec<String> = std::env::args().skip(1).collect();
    println!(
        "Command: `cargo run --release -p bench -- {}` ({})\n",
        command.join(" "),
        harness::today()
    );
    if args.runs(Which::RemoteSync) {
        remote_sync::run(&args.remote_sync, latency).await?;
    }
    if args.runs(Which::Instances) {
        instances::run(&args.instances, latency, args.workers).await?;
    }
    if args.runs(Which::Guilds) {
        guilds::run(&args.guilds, latency, args.workers).await?;
    }
    if args.runs(Which::IdleTick) {
        idle_tick::run(&args.idle_tick).await?;
    }
    if args.runs(Which::Lambda) {
        if lambda::wanted(&args.lambda) {
            lambda::run(&args.lambda).await?;
        } else if args.scenario.contains(&Which::Lambda) {
            return Err(
                "--scenario lambda needs --lambda-dir <dir of <function>/bootstrap>".into(),
            );
        }
    }
    Ok(())
}
