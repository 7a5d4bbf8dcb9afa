//! `--scenario lambda --lambda-dir <dir>`: each Lambda bootstrap's size and cold start. The
//! bootstrap runs as Lambda runs it, with `AWS_LAMBDA_RUNTIME_API` pointing at a fake Runtime API
//! served here; init time is process start → its first `GET …/invocation/next` (which is then
//! held, as Lambda holds it between invocations). The AWS endpoint is the same fake server: it
//! answers Secrets Manager's `GetSecretValue` (the admin API reads its token at init) and
//! counts every other AWS call made during init (none is expected).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::mpsc;

use crate::harness::{goal, millis, percentile, BenchResult};

const ADMIN_SECRET_ID: &str = "discord-connector/admin-token";
const TOKEN_KEY_SECRET_ID: &str = "discord-connector/token-key";
/// How long a bootstrap may take to ask for its first event.
const INIT_LIMIT: Duration = Duration::from_secs(10);

#[derive(clap::Args)]
pub struct Opts {
    /// lambda: a directory of `<function>/bootstrap` (what `cargo lambda build --release` leaves in
    /// target/lambda); the lambda scenario runs only when it is given.
    #[arg(long)]
    lambda_dir: Option<PathBuf>,
    /// lambda: cold starts measured per function.
    #[arg(long, default_value_t = 5)]
    lambda_runs: usize,
}

/// What the fake endpoints saw.
#[derive(Clone)]
struct Fake {
    next: mpsc::UnboundedSender<Instant>,
    init_errors: mpsc::UnboundedSender<String>,
    aws_calls: Arc<Mutex<BTreeMap<String, u64>>>,
}

struct Function {
    name: String,
    size: u64,
    inits: Vec<Duration>,
    failures: Vec<String>,
    aws_calls: BTreeMap<String, u64>,
}

pub fn wanted(opts: &Opts) -> bool {
    opts.lambda_dir.is_some()
}

pub async fn run(opts: &Opts) -> BenchResult<()> {
    let Some(dir) = &opts.lambda_dir else {
        return Ok(());
    };
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter(|e| e.path().join("bootstrap").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(format!("no <function>/bootstrap under {}", dir.display()).into());
    }
    let (next_tx, mut next_rx) = mpsc::unbounded_channel();
    let (err_tx, mut err_rx) = mpsc::unbounded_channel();
    let fake = Fake {
        next: next_tx,
        init_errors: err_tx,
        aws_calls: Arc::default(),
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let router = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .route("/", post(aws))
        .with_state(fake.clone());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });

    let mut functions = Vec::new();
    for name in names {
        eprintln!("== lambda: {name}");
        let bootstrap = dir.join(&name).join("bootstrap");
        let size = std::fs::metadata(&bootstrap)?.len();
        let mut f = Function {
            name: name.clone(),
            size,
            inits: Vec::new(),
            failures: Vec::new(),
            aws_calls: BTreeMap::new(),
        };
        fake.aws_calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        for _ in 0..opts.lambda_runs.max(1) {
            while next_rx.try_recv().is_ok() {}
            while err_rx.try_recv().is_ok() {}
            match cold_start(&bootstrap, &name, addr, &mut next_rx, &mut err_rx).await {
                Ok(d) => f.inits.push(d),
                Err(e) => f.failures.push(e),
            }
        }
        f.aws_calls = fake
            .aws_calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        f.inits.sort();
        functions.push(f);
    }
    server.abort();
    print_table(dir, opts.lambda_runs, &functions);
    Ok(())
}

/// Starts the bootstrap, waits for its first `next`, stops it. The init time, or why it failed.
async fn cold_start(
    bootstrap: &Path,
    name: &str,
    addr: std::net::SocketAddr,
    next_rx: &mut mpsc::UnboundedReceiver<Instant>,
    err_rx: &mut mpsc::UnboundedReceiver<String>,
) -> Result<Duration, String> {
    let endpoint = format!("http://{addr}");
    let t0 = Instant::now();
    let mut child = Command::new(bootstrap)
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "bench")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("CONNECTOR_TABLE", "discord-connector")
        .env(
            "CONNECTOR_QUEUE_URL",
            format!("{endpoint}/123456789012/discord-connector-work.fifo"),
        )
        .env("CONNECTOR_TOKEN_KEY_SECRET", TOKEN_KEY_SECRET_ID)
        .env("CONNECTOR_ADMIN_TOKEN_SECRET", ADMIN_SECRET_ID)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start: {e}"))?;
    let outcome = tokio::select! {
        at = next_rx.recv() => at.map(|at| at - t0).ok_or("runtime API stopped".to_owned()),
        e = err_rx.recv() => Err(format!("init error: {}", e.unwrap_or_default())),
        () = tokio::time::sleep(INIT_LIMIT) => Err(format!("no event asked for in {INIT_LIMIT:?}")),
    };
    let _ = child.kill();
    let _ = child.wait();
    outcome
}

/// `GET /2018-06-01/runtime/invocation/next`: noted, then held (no event comes).
async fn next(State(fake): State<Fake>) -> impl IntoResponse {
    let _ = fake.next.send(Instant::now());
    tokio::time::sleep(INIT_LIMIT * 2).await;
    StatusCode::GONE
}

async fn init_error(State(fake): State<Fake>, body: String) -> StatusCode {
    let _ = fake.init_errors.send(body);
    StatusCode::ACCEPTED
}

/// The AWS JSON protocol endpoint: `GetSecretValue` answers for any secret id; every call is
/// counted by its `X-Amz-Target`.
async fn aws(State(fake): State<Fake>, headers: HeaderMap, body: String) -> impl IntoResponse {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("(no target)")
        .to_owned();
    *fake
        .aws_calls
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(target.clone())
        .or_insert(0) += 1;
    if target != "secretsmanager.GetSecretValue" {
        return (
            StatusCode::BAD_REQUEST,
            [("content-type", "application/x-amz-json-1.1")],
            r#"{"__type":"UnknownOperationException","message":"not faked by the bench"}"#
                .to_owned(),
        );
    }
    let id = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["SecretId"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let answer = serde_json::json!({
        "ARN": format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:{id}"),
        "Name": id,
        "SecretString": "bench-admin-token-0123456789abcdef",
        "VersionId": "00000000-0000-0000-0000-000000000000",
        "VersionStages": ["AWSCURRENT"],
        "CreatedDate": 1_700_000_000.0,
    });
    (
        StatusCode::OK,
        [("content-type", "application/x-amz-json-1.1")],
        answer.to_string(),
    )
}

fn print_table(dir: &Path, runs: usize, functions: &[Function]) {
    println!(
        "### Lambda bootstraps\n\nBootstraps from `{}`; init = process start → first `GET /2018-06-01/runtime/invocation/next` on a fake Runtime API, {runs} cold starts each (page cache warm); AWS endpoint = a fake answering Secrets Manager `GetSecretValue` on loopback.\n",
        dir.display()
    );
    println!("| function | bootstrap | init min / p50 / max | AWS calls during init | failed starts | goals: bootstrap < 8 MB, init < 50 ms |");
    println!("|---|---:|---|---|---:|---|");
    for f in functions {
        let mb = f.size as f64 / 1_000_000.0;
        let aws = if f.aws_calls.is_empty() {
            "none".to_owned()
        } else {
            f.aws_calls
                .iter()
                .map(|(t, n)| format!("{t} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let p50 = percentile(&f.inits, 50);
        println!(
            "| {} | {:.1} MB ({:.1} MiB) | {} | {} | {}{} | {} {} |",
            f.name,
            mb,
            f.size as f64 / (1024.0 * 1024.0),
            if f.inits.is_empty() {
                "–".to_owned()
            } else {
                format!(
                    "{} / {} / {}",
                    millis(f.inits[0]),
                    millis(p50),
                    millis(*f.inits.last().unwrap_or(&p50))
                )
            },
            aws,
            f.failures.len(),
            f.failures
                .first()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default(),
            goal(mb < 8.0),
            goal(!f.inits.is_empty() && p50 < Duration::from_millis(50)),
        );
    }
    println!();
}
