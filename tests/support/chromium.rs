//! Debian's Chromium and chromedriver for the browser tests.
//!
//! [`chromedriver()`] makes sure `chromium` and `chromium-driver` are installed (with apt-get on
//! first use, as root — CI runs as root; concurrent test processes wait on a file lock under the
//! target directory), then starts ONE chromedriver per test process on a free port of 127.0.0.1.
//! Each [`crate::browser::Browser`] is a WebDriver session on it: its own headless Chromium with
//! its own temporary profile.
//!
//! chromedriver runs under a small python3 launcher (as moto does, see [`crate::moto`]): it picks
//! the port, waits until chromedriver answers, prints the port, and when its standard input
//! closes — the test process ended, however it ended — kills chromedriver's whole process group,
//! the Chromiums it started included. No stray browsers.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Where Debian's packages put the browser and the driver.
pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const PACKAGES: [&str; 2] = ["chromium", "chromium-driver"];

/// Starts `chromedriver --port=N` on a free port in its own process group, prints N once
/// `/status` says ready, and kills the group when stdin reaches EOF.
const LAUNCHER: &str = r#"
import json, os, signal, socket, subprocess, sys, threading, time, urllib.request

driver, log_path = sys.argv[1], sys.argv[2]

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

def ready(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=1) as r:
            return json.load(r)["value"]["ready"]
    except Exception:
        return False

proc = None
for attempt in range(3):
    port = free_port()
    proc = subprocess.Popen(
        [driver, f"--port={port}", f"--log-path={log_path}", "--log-level=WARNING"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 20
    while proc.poll() is None and time.time() < deadline and not ready(port):
        time.sleep(0.05)
    if proc.poll() is None and ready(port):
        break
    proc.kill()
    proc = None
if proc is None:
    sys.exit("chromedriver did not start (see its log)")

def stop():
    for sig, wait in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        end = time.time() + wait
        while time.time() < end and proc.poll() is None:
            time.sleep(0.05)

print(port, flush=True)
sys.stdin.read()
stop()
"#;

/// The process's chromedriver.
pub struct ChromeDriver {
    url: String,
    port: u16,
    /// Kept open for the life of the process: chromedriver is killed when it closes.
    _stdin: Mutex<ChildStdin>,
    _child: Mutex<Child>,
}

impl ChromeDriver {
    /// `http://127.0.0.1:N/`, for a WebDriver client.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

static DRIVER: OnceLock<ChromeDriver> = OnceLock::new();

/// The process's chromedriver, started on first use (installing Chromium first if needed).
pub async fn chromedriver() -> &'static ChromeDriver {
    if let Some(driver) = DRIVER.get() {
        return driver;
    }
    tokio::task::spawn_blocking(chromedriver_blocking)
        .await
        .expect("starting chromedriver")
}

/// [`chromedriver`] for synchronous callers.
pub fn chromedriver_blocking() -> &'static ChromeDriver {
    DRIVER.get_or_init(|| {
        let started = Instant::now();
        ensure_installed().unwrap_or_else(|e| panic!("cannot install Chromium: {e}"));
        let driver = start().unwrap_or_else(|e| panic!("cannot start chromedriver: {e}"));
        eprintln!(
            "chromedriver ready at {} after {:.1}s",
            driver.url,
            started.elapsed().as_secs_f64()
        );
        driver
    })
}

/// Installs `chromium` and `chromium-driver` with apt-get unless both binaries are there, under
/// an exclusive file lock (the second process to come finds them installed).
pub fn ensure_installed() -> Result<(), String> {
    if installed() {
        return Ok(());
    }
    let dir = target_dir();
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let lock_path = dir.join("chromium-install.lock");
    let lock = File::create(&lock_path).map_err(|e| format!("{}: {e}", lock_path.display()))?;
    // Released when `lock` is dropped, or by the OS if this process dies.
    lock.lock()
        .map_err(|e| format!("locking {}: {e}", lock_path.display()))?;
    if installed() {
        return Ok(());
    }
    if !is_root() {
        return Err(format!(
            "{CHROMEDRIVER} or {CHROMIUM} is missing and this process is not root, so it cannot \
             apt-get them. Install them once with:\n    sudo apt-get update && sudo apt-get \
             install -y --no-install-recommends {}",
            PACKAGES.join(" ")
        ));
    }
    let started = Instant::now();
    // Waits for another apt/dpkg (another worktree's tests, say) instead of failing on its lock.
    let wait_for_locks = ["-o", "DPkg::Lock::Timeout=600"];
    run(Command::new("apt-get")
        .args(wait_for_locks)
        .args(["-q", "update"]))?;
    run(Command::new("apt-get")
        .args(wait_for_locks)
        .args(["-q", "install", "-y", "--no-install-recommends"])
        .args(PACKAGES)
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    if !installed() {
        return Err(format!(
            "apt-get installed {} but {CHROMEDRIVER} or {CHROMIUM} is still missing",
            PACKAGES.join(" ")
        ));
    }
    eprintln!(
        "installed {} with apt-get in {:.1}s",
        PACKAGES.join(" "),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn installed() -> bool {
    Path::new(CHROMIUM).is_file() && Path::new(CHROMEDRIVER).is_file()
}

fn is_root() -> bool {
    // `Uid:` real, effective, saved, filesystem; the effective one decides.
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|id| id == "0"))
        })
        .unwrap_or(false)
}

fn run(command: &mut Command) -> Result<(), String> {
    let output = command.output().map_err(|e| format!("{command:?}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

fn start() -> Result<ChromeDriver, String> {
    let log_dir = target_dir().join("tmp");
    fs::create_dir_all(&log_dir).map_err(|e| format!("{}: {e}", log_dir.display()))?;
    let pid = std::process::id();
    let log_path = log_dir.join(format!("chromedriver-{pid}.log"));
    let launcher_log_path = log_dir.join(format!("chromedriver-launcher-{pid}.log"));
    let launcher_log = File::create(&launcher_log_path)
        .map_err(|e| format!("{}: {e}", launcher_log_path.display()))?;
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(LAUNCHER)
        .arg(CHROMEDRIVER)
        .arg(&log_path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(launcher_log)
        .spawn()
        .map_err(|e| format!("python3: {e}"))?;
    let stdin = child.stdin.take().ok_or("no stdin pipe")?;
    let stdout = child.stdout.take().ok_or("no stdout pipe")?;
    let mut first_line = String::new();
    BufReader::new(stdout)
        .read_line(&mut first_line)
        .map_err(|e| format!("reading the port: {e}"))?;
    let Ok(port) = first_line.trim().parse::<u16>() else {
        let _ = child.kill();
        let _ = child.wait();
        let mut logs = String::new();
        for path in [&launcher_log_path, &log_path] {
            let _ = File::open(path).and_then(|mut f| f.read_to_string(&mut logs));
        }
        return Err(format!(
            "chromedriver did not report a port; its logs:\n{logs}"
        ));
    };
    Ok(ChromeDriver {
        url: format!("http://127.0.0.1:{port}/"),
        port,
        _stdin: Mutex::new(stdin),
        _child: Mutex::new(child),
    })
}

impl ChromeDriver {
    /// Ends a WebDriver session (`DELETE /session/{id}`) over a plain blocking socket, so that
    /// `Drop` can call it with no runtime at hand; returns once chromedriver answered, i.e. the
    /// browser quit and its profile is gone.
    pub fn end_session(&self, session: &str) -> std::io::Result<()> {
        let port = self.port;
        let mut stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        write!(
            stream,
            "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n"
        )?;
        // chromedriver keeps the connection open despite `Connection: close`: read the head and
        // `Content-Length` bytes of body, not to EOF.
        let mut answer = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let read = stream.read(&mut chunk)?;
            if read == 0 {
                return Ok(());
            }
            answer.extend_from_slice(&chunk[..read]);
            let text = String::from_utf8_lossy(&answer);
            if let Some(head_end) = text.find("\r\n\r\n") {
                let length = text[..head_end]
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if answer.len() >= head_end + 4 + length {
                    return Ok(());
                }
            }
        }
    }
}

/// Chromium's command line for a test session with a `window` of (width, height): headless, as
/// root in a container, and kept off the network (no background requests; anything but
/// loopback goes to a closed proxy port, so a page that loads something from elsewhere shows it
/// broken instead of reaching out).
pub fn chromium_args(window: (u32, u32)) -> Vec<String> {
    let mut args: Vec<String> = [
        "--headless=new",
        // Chromium refuses to run as root with its sandbox (and containers rarely allow the
        // namespaces it needs).
        "--no-sandbox",
        // Docker's /dev/shm is 64 MB; Chromium's tabs crash when it fills.
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--no-pings",
        "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
        "--proxy-server=http://127.0.0.1:9",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        "--lang=en-US",
    ]
    .map(str::to_owned)
    .to_vec();
    args.push(format!("--window-size={},{}", window.0, window.1));
    args
}

/// Cargo's target directory: `CARGO_TARGET_DIR`, else the one holding this test executable
/// (marked by Cargo's `CACHEDIR.TAG`), else `<workspace>/target`. moto's venv lives there too.
pub fn target_dir() -> PathBuf {
    let workspace = workspace_dir();
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return workspace.join(dir);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.ancestors()
                .find(|dir| dir.join("CACHEDIR.TAG").is_file())
                .map(Path::to_path_buf)
        })
        .unwrap_or_else(|| workspace.join("target"))
}

/// The repository root.
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."))
        .to_path_buf()
}
