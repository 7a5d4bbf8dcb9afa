use std::path::PathBuf;

use connector::secrets::rotation::{self, RotateKey};

use crate::env_secret;
use crate::serve::CliResult;

/// `discord-connector rotate-key`: the current key from `CONNECTOR_SECRET_KEY` or the key file,
/// the new one from `CONNECTOR_NEW_SECRET_KEY` or generated.
pub fn run(database: PathBuf) -> CliResult {
    let rotated = rotation::rotate_key(RotateKey {
        database: database.clone(),
        current_key: env_secret("CONNECTOR_SECRET_KEY"),
        new_key: env_secret("CONNECTOR_NEW_SECRET_KEY"),
    })?;
    let report = &rotated.report;
    println!(
        "re-sealed {} client secrets and {} users' tokens of {} under key {} (was {}); {} were \
         already under it",
        report.client_secrets,
        report.user_tokens,
        database.display(),
        rotated.new_kid,
        rotated.old_kid,
        report.already_current
    );
    match &rotated.key_file {
        Some((key_file, backup)) => println!(
            "  new key in {}; the old key is kept in {} (delete it once backups made with it \
             have expired)",
            key_file.display(),
            backup.display()
        ),
        None => println!(
            "  now set CONNECTOR_SECRET_KEY to the value of CONNECTOR_NEW_SECRET_KEY before the \
             next start"
        ),
    }
    Ok(())
}
