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
    /// busy timeout and foreign keys on. The file is private: see [`prepare_private_file`].
    pub(crate) fn open(path: &Path) -> Result<Self, String> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create directory {}: {e}", dir.display()))?;
        }
        prepare_private_file(path)?;
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

/// The files SQLite keeps beside a database (write-ahead log, its index, a rollback journal).
const SIDE_FILES: [&str; 3] = ["-wal", "-shm", "-journal"];

/// Creates the database file with mode 0600 before SQLite opens it, and refuses a database (or a
/// side file) that others may read or write.
///
/// SQLite would create a new database with 0644 (`SQLITE_DEFAULT_FILE_PERMISSIONS`, less the
/// umask). It creates the `-wal`, `-shm` and `-journal` files with the mode of the database file
/// itself (and `fchmod`s them to it, whatever the umask), so a database that exists with 0600
/// before the first open gives 0600 side files. Setting a umask around the open would do the same,
/// but the umask is process-wide: it would race with every other thread creating files.
#[cfg(unix)]
pub(crate) fn prepare_private_file(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(file) => file
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("cannot set the mode of {}: {e}", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("cannot create {}: {e}", path.display())),
    }
    let side_files = SIDE_FILES.iter().map(|suffix| {
        let mut name = path.as_os_str().to_os_string();
        name.push(suffix);
        std::path::PathBuf::from(name)
    });
    for file in std::iter::once(path.to_path_buf()).chain(side_files) {
        let mode = match std::fs::metadata(&file) {
            Ok(meta) => meta.permissions().mode(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("cannot read {}: {e}", file.display())),
        };
        // Others may not read or write; the group may not write. (A group that may read, for a
        // backup user, is the operator's choice.)
        if mode & 0o026 != 0 {
            return Err(format!(
                "database file {} is readable by others or writable by group or others \
                 (mode {:o}): it holds sealed secrets and users' data; run `chmod 600 {}`",
                file.display(),
                mode & 0o777,
                file.display()
            ));
        }
    }
    Ok(())
}

#[cfg(not(unix))]
pub(crate) fn prepare_private_file(_path: &Path) -> Result<(), String> {
    Ok(())
}
