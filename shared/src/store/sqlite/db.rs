//! One SQLite connection shared by an adapter, used off the async runtime.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::Connection;

/// How long a writer waits for another connection (the secrets adapter, a second process) to
/// finish its transaction before giving up with `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection behind a mutex; every call runs on tokio's blocking pool.
#[derive(Clone)]
pub(crate) struct Db(Arc<Mutex<Connection>>);

impl Db {
    /// Opens the database file, creating it (and its directory) when absent, in WAL mode with a
    /// busy timeout and foreign keys on.
    pub(crate) fn open(path: &Path) -> Result<Self, String> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create directory {}: {e}", dir.display()))?;
        }
        let conn =
            Connection::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        Self::configure(conn)
    }

    /// A private in-memory database (tests, dry runs).
    pub(crate) fn open_in_memory() -> Result<Self, String> {
        let conn = Connection::open_in_memory().map_err(|e| e.to_string())?;
        Self::configure(conn)
    }

    fn configure(conn: Connection) -> Result<Self, String> {
        conn.busy_timeout(BUSY_TIMEOUT)
            .and_then(|()| {
                // Returns the resulting mode ("memory" for an in-memory database).
                conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
            })
            .and_then(|_| conn.pragma_update(None, "synchronous", "NORMAL"))
            .and_then(|()| conn.pragma_update(None, "foreign_keys", true))
            .map_err(|e| format!("cannot configure database: {e}"))?;
        Ok(Self(Arc::new(Mutex::new(conn))))
    }

    /// Runs `f` with the connection on the blocking pool. `Err` only when `f` panicked.
    pub(crate) async fn call<R, F>(&self, f: F) -> Result<R, tokio::task::JoinError>
    where
        F: FnOnce(&mut Connection) -> R + Send + 'static,
        R: Send + 'static,
    {
        let conn = Arc::clone(&self.0);
        tokio::task::spawn_blocking(move || {
            // A panic inside an earlier call rolled its transaction back when it unwound, so the
            // connection itself is still usable.
            let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut conn)
        })
        .await
    }

    /// Runs `f` with the connection on the calling thread (start-up only: migrations).
    pub(crate) fn with_blocking<R>(&self, f: impl FnOnce(&mut Connection) -> R) -> R {
        let mut conn = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut conn)
    }
}
