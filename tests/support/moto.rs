//! moto — an HTTP emulator of DynamoDB, Secrets Manager and SQS — for the AWS adapters' tests.
//!
//! [`moto()`] makes sure a virtualenv with `moto[server]` exists at `<target>/moto-venv`
//! (created on first use with `python3 -m venv` + `pip install`; concurrent test processes wait
//! on a file lock; later runs reuse it), then starts ONE server per test process on a free port
//! of 127.0.0.1 and hands out SDK clients pointed at it (region us-east-1, test credentials).
//!
//! The server is moto's own WSGI app under werkzeug, like `moto_server`, with two differences:
//! - it serves one request at a time. DynamoDB makes each conditional write and transaction
//!   atomic; moto does not lock its backends, so under `moto_server`'s threaded server two racing
//!   conditional writes can both pass. Serial requests restore the atomicity the store's
//!   concurrency tests check.
//! - it exits when its standard input closes, i.e. when the test process ends however it ends
//!   (a panic, a timeout kill): no stray servers.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use connector::aws::aws_config::{BehaviorVersion, Region, SdkConfig};
use connector::aws::aws_sdk_dynamodb::config::{Credentials, SharedCredentialsProvider};
use connector::aws::aws_sdk_sqs::types::QueueAttributeName;
use connector::aws::{aws_sdk_dynamodb, aws_sdk_secretsmanager, aws_sdk_sqs};

/// What `pip` installs; the 5.x line is the one checked against the AWS SDK.
const MOTO_REQUIREMENT: &str = "moto[server]>=5.1,<6";
pub const REGION: &str = "us-east-1";

/// Runs moto's app single-threaded on an ephemeral port, prints the port, exits at stdin EOF.
const LAUNCHER: &str = r#"
import logging, os, sys, threading
from werkzeug.serving import make_server
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication, MotoRequestHandler, create_backend_app)

def watchdog():
    sys.stdin.read()
    os._exit(0)

threading.Thread(target=watchdog, daemon=True).start()
logging.getLogger("werkzeug").setLevel(logging.ERROR)
app = DomainDispatcherApplication(create_backend_app)
server = make_server("127.0.0.1", 0, app, threaded=False, request_handler=MotoRequestHandler)
os.environ["MOTO_PORT"] = str(server.port)
print(server.port, flush=True)
server.serve_forever()
"#;

pub struct MotoServer {
    endpoint: String,
    /// Kept open for the life of the process: the server exits when it closes.
    _stdin: Mutex<ChildStdin>,
    _child: Mutex<Child>,
}

static SERVER: OnceLock<MotoServer> = OnceLock::new();

/// The process's moto server, started on first use (installing moto first if needed).
pub async fn moto() -> &'static MotoServer {
    if let Some(server) = SERVER.get() {
        return server;
    }
    tokio::task::spawn_blocking(moto_blocking)
        .await
        .expect("starting moto")
}

/// [`moto`] for synchronous callers.
pub fn moto_blocking() -> &'static MotoServer {
    SERVER.get_or_init(|| {
        let started = Instant::now();
        let python = ensure_venv().unwrap_or_else(|e| panic!("cannot install moto: {e}"));
        let server = start(&python).unwrap_or_else(|e| panic!("cannot start moto: {e}"));
        eprintln!(
            "moto ready at {} after {:.1}s",
            server.endpoint,
            started.elapsed().as_secs_f64()
        );
        server
    })
}

impl MotoServer {
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// An SDK configuration for the server, as `aws_config` would load it from
    /// `AWS_ENDPOINT_URL`, `AWS_REGION` and test credentials.
    pub fn sdk_config(&self) -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(connector::aws::https_client())
            .region(Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "test", "test", None, None, "moto",
            )))
            .build()
    }

    /// A fresh client (clients are tied to the runtime of the test that uses them).
    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk_config())
    }

    pub fn secrets_manager(&self) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::new(&self.sdk_config())
    }

    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk_config())
    }

    /// A FIFO work queue shaped like template.yaml's (explicit deduplication ids, redrive to a
    /// FIFO dead-letter queue after `max_receives` deliveries), named `<name>.fifo`.
    pub async fn work_queues(
        &self,
        name: &str,
        max_receives: u32,
        visibility_secs: u32,
    ) -> WorkQueues {
        let sqs = self.sqs();
        let fifo = |sqs: &aws_sdk_sqs::Client, name: String| {
            sqs.create_queue()
                .queue_name(name)
                .attributes(QueueAttributeName::FifoQueue, "true")
                .attributes(QueueAttributeName::ContentBasedDeduplication, "false")
        };
        let dlq_url = fifo(&sqs, format!("{name}-dlq.fifo"))
            .send()
            .await
            .expect("dead-letter queue created")
            .queue_url
            .expect("queue url");
        let dlq_arn = sqs
            .get_queue_attributes()
            .queue_url(&dlq_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("dead-letter queue attributes")
            .attributes
            .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
            .expect("dead-letter queue arn");
        let redrive =
            format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"{max_receives}"}}"#);
        let url = fifo(&sqs, format!("{name}.fifo"))
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                visibility_secs.to_string(),
            )
            .attributes(QueueAttributeName::RedrivePolicy, redrive)
            .send()
            .await
            .expect("work queue created")
            .queue_url
            .expect("queue url");
        WorkQueues { url, dlq_url }
    }

    /// The variables that point `aws_config::defaults` at this server.
    pub fn env(&self) -> [(&'static str, String); 4] {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", REGION.to_owned()),
            ("AWS_ACCESS_KEY_ID", "test".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
        ]
    }
}

/// A work queue and its dead-letter queue (URLs).
#[derive(Debug, Clone)]
pub struct WorkQueues {
    pub url: String,
    pub dlq_url: String,
}

/// A name no other test (in this or another process) uses: for tables, secrets, prefixes.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn venv_dir() -> PathBuf {
    super::chromium::target_dir().join("moto-venv")
}

/// The venv's python, installing moto under an exclusive file lock unless already done.
fn ensure_venv() -> Result<PathBuf, String> {
    let dir = venv_dir();
    let python = dir.join("bin").join("python");
    let marker = dir.join(".moto-installed");
    if marker.exists() {
        return Ok(python);
    }
    let parent = dir.parent().ok_or("the venv has no parent directory")?;
    fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    let lock_path = dir.with_extension("lock");
    let lock = File::create(&lock_path).map_err(|e| format!("{}: {e}", lock_path.display()))?;
    // Released when `lock` is dropped, or by the OS if this process dies.
    lock.lock()
        .map_err(|e| format!("locking {}: {e}", lock_path.display()))?;
    if marker.exists() {
        return Ok(python);
    }
    let started = Instant::now();
    if dir.exists() {
        // A half-made venv from an interrupted install.
        fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    run(Command::new("python3").arg("-m").arg("venv").arg(&dir))?;
    run(Command::new(&python).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        MOTO_REQUIREMENT,
    ]))?;
    fs::write(&marker, MOTO_REQUIREMENT).map_err(|e| format!("{}: {e}", marker.display()))?;
    eprintln!(
        "installed {MOTO_REQUIREMENT} into {} in {:.1}s",
        dir.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(python)
}

fn run(command: &mut Command) -> Result<(), String> {
    let output = command.output().map_err(|e| format!("{command:?}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

fn start(python: &Path) -> Result<MotoServer, String> {
    let log_dir = super::chromium::target_dir().join("tmp");
    fs::create_dir_all(&log_dir).map_err(|e| format!("{}: {e}", log_dir.display()))?;
    let log_path = log_dir.join(format!("moto-{}.log", std::process::id()));
    let log = File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let mut child = Command::new(python)
        .arg("-c")
        .arg(LAUNCHER)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("{}: {e}", python.display()))?;
    let stdin = child.stdin.take().ok_or("no stdin pipe")?;
    let stdout = child.stdout.take().ok_or("no stdout pipe")?;
    let mut first_line = String::new();
    BufReader::new(stdout)
        .read_line(&mut first_line)
        .map_err(|e| format!("reading the port: {e}"))?;
    let port: u16 = match first_line.trim().parse() {
        Ok(port) => port,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            let mut log = String::new();
            let _ = File::open(&log_path).and_then(|mut f| f.read_to_string(&mut log));
            return Err(format!("moto did not report a port; its log:\n{log}"));
        }
    };
    let endpoint = format!("http://127.0.0.1:{port}");
    wait_until_answering(port)?;
    Ok(MotoServer {
        endpoint,
        _stdin: Mutex::new(stdin),
        _child: Mutex::new(child),
    })
}

/// The socket listens before the port is printed; this only guards against surprises.
fn wait_until_answering(port: u16) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => return Err(format!("moto not answering: {e}")),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}
