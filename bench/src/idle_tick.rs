//! `--scenario idle-tick`: the 5-minute verify-groups dispatch over many clients of which only a
//! few have work. Its cost should follow the clients with work (the store's work index), not
//! the clients. A weekly tick (which by design gives every client a job) is shown beside it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use connector::app::AppState;
use connector::domain::TaskName;
use connector::work::dispatch::dispatch_tick;
use connector::work::{Job, JobQueue, QueueError};
use discord_emulator::{Emulator, Scenario};

use crate::counting_store::{CountingStore, StoreCounts};
use crate::harness::{bench_client, goal, millis, open_instance, BenchResult};

#[derive(clap::Args)]
pub struct Opts {
    /// idle-tick: clients in the store.
    #[arg(long, default_value_t = 10_000)]
    clients: u64,
    /// idle-tick: clients with a verify-groups work mark.
    #[arg(long, default_value_t = 3)]
    with_work: u64,
    /// idle-tick: ticks measured (the median is shown).
    #[arg(long, default_value_t = 5)]
    ticks: usize,
}

/// A queue that only keeps what it is given.
#[derive(Default)]
struct CollectingQueue {
    jobs: Mutex<Vec<Job>>,
}

impl CollectingQueue {
    fn take(&self) -> Vec<Job> {
        std::mem::take(&mut *self.jobs.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[async_trait]
impl JobQueue for CollectingQueue {
    async fn enqueue(&self, jobs: &[Job]) -> Result<(), QueueError> {
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(jobs);
        Ok(())
    }
}

struct Tick {
    task: TaskName,
    wall: Duration,
    store: StoreCounts,
    jobs: usize,
}

pub async fn run(opts: &Opts) -> BenchResult<()> {
    eprintln!(
        "== idle-tick: {} clients, {} with work",
        opts.clients, opts.with_work
    );
    // The emulator is only the clients' Discord base URL: nothing calls it.
    let emu = Emulator::start(Scenario::demo()).await?;
    let dir = tempfile::tempdir()?;
    let hosted = open_instance(&dir.path().join("bench.db")).await?;
    let counting = Arc::new(CountingStore::new(hosted.state.store.clone()));
    let queue = Arc::new(CollectingQueue::default());
    let app = AppState::new(
        counting.clone(),
        hosted.state.secrets.clone(),
        hosted.state.clock.clone(),
        None,
        queue.clone(),
    );
    let t0 = Instant::now();
    let now = app.clock.now();
    for i in 0..opts.clients {
        let id = format!("client-{i:06}");
        let guild = (400_000_000_000_000_000 + i).to_string();
        app.store
            .create_client(&bench_client(&id, &guild, &emu, now))
            .await?;
    }
    // Spread over the id range, so the index cannot be helped by their order.
    let step = (opts.clients / opts.with_work.max(1)).max(1);
    for i in (0..opts.clients)
        .step_by(step as usize)
        .take(opts.with_work as usize)
    {
        app.store
            .mark_work(&format!("client-{i:06}"), TaskName::VerifyGroups, now)
            .await?;
    }
    eprintln!(
        "   created {} clients in {:.1?}",
        opts.clients,
        t0.elapsed()
    );

    let mut ticks = Vec::new();
    for n in 0..opts.ticks.max(1) {
        ticks.push(tick(&app, &counting, &queue, TaskName::VerifyGroups, n).await?);
    }
    ticks.sort_by_key(|t| t.wall);
    let median = ticks.swap_remove(ticks.len() / 2);
    let weekly = tick(&app, &counting, &queue, TaskName::SyncAccounts, 0).await?;
    emu.shutdown().await;
    print_table(opts, &[median, weekly]);
    Ok(())
}

async fn tick(
    app: &AppState,
    counting: &CountingStore,
    queue: &CollectingQueue,
    task: TaskName,
    n: usize,
) -> BenchResult<Tick> {
    counting.reset();
    let t0 = Instant::now();
    let summary = dispatch_tick(&app.dispatch(), task, &format!("bench-tick-{n}")).await?;
    let wall = t0.elapsed();
    let jobs = queue.take().len();
    debug_assert_eq!(jobs, summary.jobs);
    Ok(Tick {
        task,
        wall,
        store: counting.counts(),
        jobs,
    })
}

fn print_table(opts: &Opts, ticks: &[Tick]) {
    println!(
        "### Idle tick over {} clients\n\nSQLite store (file, WAL) with {} clients, {} of them with a verify-groups work mark; `dispatch_tick` with a queue that only collects jobs. verify-groups: median of {} ticks; the weekly tick (sync-accounts, every client gets a job by design) once, for scale.\n",
        opts.clients, opts.clients, opts.with_work, opts.ticks
    );
    println!("| tick | clients | with work | store reads / writes (of which work index) | jobs enqueued | wall | goal: O(clients with work) |");
    println!("|---|---:|---:|---:|---:|---:|---|");
    for t in ticks {
        let verdict = if t.task != TaskName::VerifyGroups {
            "– (weekly: one job per client)"
        } else {
            // One page of the work index per 500 marks, nothing else.
            let store_ops = t.store.reads + t.store.writes;
            goal(t.jobs as u64 == opts.with_work && store_ops <= 1 + opts.with_work / 500)
        };
        println!(
            "| {} | {} | {} | {} / {} ({}) | {} | {} | {} |",
            t.task,
            opts.clients,
            opts.with_work,
            t.store.reads,
            t.store.writes,
            t.store.coordination,
            t.jobs,
            millis(t.wall),
            verdict,
        );
    }
    println!();
}
