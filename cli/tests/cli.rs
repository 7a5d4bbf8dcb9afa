//! The binary's own surface: subcommands, exit codes, messages.

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_discord-connector"))
}

#[test]
fn openapi_prints_the_admin_api_document() {
    let out = bin().arg("openapi").output().expect("runs");
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(doc["paths"]["/clients"].is_object());
}

#[test]
fn task_for_an_unknown_client_fails_with_a_clear_message_and_creates_a_private_key_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("c.db");
    let out = bin()
        .args([
            "task",
            "verify-groups",
            "--client",
            "nope",
            "--dry-run",
            "--database",
        ])
        .arg(&db)
        .env_remove("CONNECTOR_SECRET_KEY")
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("client not found"), "{stderr}");
    let key = dir.path().join("c.db.key");
    assert!(key.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

#[test]
fn task_rejects_unknown_task_names() {
    let out = bin()
        .args(["task", "make-coffee", "--client", "x"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2), "clap usage error");
}

#[test]
fn serve_refuses_a_retention_that_is_not_a_positive_number_of_days_naming_the_variable() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (var, value) in [
        ("CONNECTOR_RETAIN_RUNS_DAYS", "0"),
        ("CONNECTOR_RETAIN_AUDIT_DAYS", "a year"),
        ("CONNECTOR_RETAIN_RUNS_DAYS", "-5"),
    ] {
        let out = bin()
            .args(["serve", "--listen", "127.0.0.1:0", "--database"])
            .arg(dir.path().join("c.db"))
            .env(var, value)
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2), "{var}={value}: usage error");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(var), "{var}={value}: {stderr}");
        assert!(stderr.contains("whole number of days"), "{stderr}");
        assert!(!dir.path().join("c.db").exists(), "nothing started");
    }
}
