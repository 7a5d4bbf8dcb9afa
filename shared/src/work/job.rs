//! A unit of work for one client, as it travels through a queue (SQS on AWS, the in-process
//! pool self-hosted).

use serde::{Deserialize, Serialize};

use crate::domain::TaskName;

/// Run `task` for `client`. `verify-groups` is the guild writer's drain of pending members; the
/// weekly tasks walk the guild (and resume from their stored cursor).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub client: String,
    pub task: TaskName,
    /// Who asked: `schedule`, `admin`, `continuation`, `wake`.
    pub trigger: String,
    /// Identifies this request for at-least-once queues: the same id is one delivery (SQS FIFO
    /// deduplication id). A tick uses its id, a continuation its cursor, a wake-up a time slot.
    pub dedupe: String,
}

impl Job {
    pub fn new(client: &str, task: TaskName, trigger: &str, dedupe: impl Into<String>) -> Self {
        Self {
            client: client.to_owned(),
            task,
            trigger: trigger.to_owned(),
            dedupe: dedupe.into(),
        }
    }

    /// The queue's ordering key: one client's jobs run one after another.
    pub fn group(&self) -> &str {
        &self.client
    }

    /// A deduplication id of at most 128 characters from `[A-Za-z0-9_-]` (SQS FIFO's rules),
    /// distinct per client, task and `dedupe`.
    pub fn dedupe_id(&self) -> String {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(
            format!("{}\u{0}{}\u{0}{}", self.client, self.task, self.dedupe).as_bytes(),
        );
        hex::encode(digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedupe_ids_differ_by_client_task_and_key_and_fit_sqs() {
        let a = Job::new("a", TaskName::VerifyGroups, "wake", "1");
        let ids = [
            a.dedupe_id(),
            Job::new("b", TaskName::VerifyGroups, "wake", "1").dedupe_id(),
            Job::new("a", TaskName::SyncAccounts, "wake", "1").dedupe_id(),
            Job::new("a", TaskName::VerifyGroups, "wake", "2").dedupe_id(),
        ];
        for (i, x) in ids.iter().enumerate() {
            assert!(x.len() <= 128 && x.chars().all(|c| c.is_ascii_alphanumeric()));
            for y in &ids[i + 1..] {
                assert_ne!(x, y);
            }
        }
        assert_eq!(
            a.dedupe_id(),
            Job::new("a", TaskName::VerifyGroups, "admin", "1").dedupe_id()
        );
    }

    #[test]
    fn a_job_round_trips_as_json() {
        let job = Job::new("demo", TaskName::RemoteSyncGroups, "continuation", "123");
        let text = serde_json::to_string(&job).unwrap();
        assert!(text.contains("\"remote-sync-groups\""), "{text}");
        assert_eq!(serde_json::from_str::<Job>(&text).unwrap(), job);
    }
}
