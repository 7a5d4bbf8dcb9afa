//! The SQLite database and its side files are private to the service's user (issue #8,
//! finding 6): created 0600, and a database others may read is refused, like the key file.
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use connector::store::sqlite::SqliteStore;
use connector::store::Settings;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn side(db: &Path, suffix: &str) -> std::path::PathBuf {
    let mut name = db.as_os_str().to_os_string();
    name.push(suffix);
    name.into()
}

#[tokio::test]
async fn a_new_database_and_its_wal_and_shm_are_created_0600() {
    // Given no database yet (and the usual umask, 022, which leaves 0644 to SQLite's own files)
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("data").join("c.db");
    // When the store creates it and writes to it
    let store = SqliteStore::open(&db).unwrap();
    store.put_setting_if_absent("k", "v").await.unwrap();
    // Then the database, its write-ahead log and the log's index are 0600
    assert_eq!(mode(&db), 0o600);
    for suffix in ["-wal", "-shm"] {
        let file = side(&db, suffix);
        assert!(
            file.exists(),
            "WAL mode keeps {} while open",
            file.display()
        );
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}

#[test]
fn a_database_others_may_read_is_refused_with_the_chmod_to_run() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    drop(SqliteStore::open(&db).unwrap());
    for (file, bad) in [
        (db.clone(), 0o644),
        (db.clone(), 0o620),
        (side(&db, "-wal"), 0o604),
    ] {
        // Given a database (or its log) world-readable or group-writable
        std::fs::write(&file, b"").ok();
        if file != db {
            std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(bad)).unwrap();
        // When the store opens it
        let err = SqliteStore::open(&db).unwrap_err().to_string();
        // Then it refuses, naming the file and the fix
        assert!(err.contains(&file.display().to_string()), "{err}");
        assert!(
            err.contains(&format!("chmod 600 {}", file.display())),
            "{err}"
        );
        assert!(err.contains(&format!("{bad:o}")), "{err}");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    // A group that may only read (a backup user) is the operator's choice.
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o640)).unwrap();
    SqliteStore::open(&db).unwrap();
}
