//! `prune`: which backups a retention policy deletes, decided by a pure function so that the
//! policy can be tested exhaustively, then carried out.

use std::time::Duration;

use pgark_archive::Timestamp;
use pgark_storage::ObjectStore;

use crate::EngineError;
use crate::inventory::{
    BackupListing, BackupState, BeforeImageListing, delete_backup, list_before_images,
};

/// Default time an incomplete backup is left alone, since its dump may still be running.
pub const DEFAULT_INCOMPLETE_GRACE: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone)]
pub struct RetentionPolicy {
    /// Keep complete backups younger than this many days.
    pub keep_days: Option<u64>,
    /// Keep the newest this many complete backups, whatever their age.
    pub keep_last: Option<usize>,
    /// Delete incomplete backups older than this.
    pub incomplete_grace: Duration,
}

/// One decision, with the reason shown to the user.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub id: String,
    pub delete: bool,
    pub reason: String,
    pub stored_bytes: u64,
}

/// Decides, for every backup, whether the policy deletes it. Rules:
/// - the newest complete backup is always kept, as are the newest `keep_last`;
/// - other complete backups are kept while younger than `keep_days` (deleted otherwise, or when
///   only `keep_last` is given);
/// - incomplete backups are deleted once older than the grace period;
/// - damaged backups are never deleted automatically: they are evidence to look at.
pub fn plan(backups: &[BackupListing], policy: &RetentionPolicy, now: Timestamp) -> Vec<Decision> {
    let keep_last = policy.keep_last.unwrap_or(0).max(1);
    let mut complete: Vec<&BackupListing> = backups
        .iter()
        .filter(|b| b.state == BackupState::Complete)
        .collect();
    complete.sort_by(|a, b| b.id.cmp(&a.id));
    let age = |b: &BackupListing| {
        Duration::from_secs(u64::try_from(now.unix() - b.started_at.unix()).unwrap_or(0))
    };

    let mut decisions: Vec<Decision> = backups
        .iter()
        .map(|backup| {
            let (delete, reason) = match &backup.state {
                BackupState::Complete => {
                    let rank = complete
                        .iter()
                        .position(|c| c.id == backup.id)
                        .unwrap_or(usize::MAX);
                    if rank < keep_last {
                        (
                            false,
                            format!("one of the newest {keep_last} complete backups"),
                        )
                    } else {
                        match policy.keep_days {
                            Some(days) if age(backup) < Duration::from_secs(days * 86_400) => {
                                (false, format!("younger than {days} days"))
                            }
                            Some(days) => (true, format!("older than {days} days")),
                            None => (true, format!("not among the newest {keep_last}")),
                        }
                    }
                }
                BackupState::Incomplete if age(backup) > policy.incomplete_grace => (
                    true,
                    format!(
                        "incomplete and older than {}h",
                        policy.incomplete_grace.as_secs() / 3600
                    ),
                ),
                BackupState::Incomplete => (
                    false,
                    "incomplete, but recent: its dump may still be running".to_owned(),
                ),
                BackupState::Damaged(_) => (
                    false,
                    "damaged manifest: never pruned automatically, inspect it with `pgark verify`"
                        .to_owned(),
                ),
            };
            Decision {
                id: backup.id.clone(),
                delete,
                reason,
                stored_bytes: backup.stored_bytes,
            }
        })
        .collect();
    decisions.sort_by(|a, b| a.id.cmp(&b.id));
    decisions
}

/// Carries out the deletions of `decisions`.
/// The before-images that go with the backups `decisions` delete: those of surgical restores
/// from them.
pub async fn before_images_to_delete(
    store: &dyn ObjectStore,
    decisions: &[Decision],
) -> Result<Vec<BeforeImageListing>, EngineError> {
    let deleted: Vec<&str> = decisions
        .iter()
        .filter(|d| d.delete)
        .map(|d| d.id.as_str())
        .collect();
    if deleted.is_empty() {
        return Ok(Vec::new());
    }
    Ok(list_before_images(store)
        .await?
        .into_iter()
        .filter(|image| {
            image
                .of_backup
                .as_deref()
                .is_some_and(|of| deleted.contains(&of))
        })
        .collect())
}

/// Deletes the backups `decisions` delete, each after the before-images that go with it.
pub async fn execute(
    store: &dyn ObjectStore,
    decisions: &[Decision],
    before_images: &[BeforeImageListing],
) -> Result<(), EngineError> {
    for decision in decisions.iter().filter(|d| d.delete) {
        for image in before_images
            .iter()
            .filter(|i| i.of_backup.as_deref() == Some(decision.id.as_str()))
        {
            delete_backup(store, &image.path).await?;
            tracing::info!(before_image = %image.path, backup = %decision.id, "before-image deleted with its backup");
        }
        delete_backup(store, &decision.id).await?;
        tracing::info!(backup = %decision.id, reason = %decision.reason, "backup deleted");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn backup(days_ago: i64, state: BackupState, now: Timestamp) -> BackupListing {
        let started_at = Timestamp::from_unix(now.unix() - days_ago * DAY);
        BackupListing {
            id: started_at.compact(),
            state,
            started_at,
            finished_at: None,
            database: None,
            server_version: None,
            stored_bytes: 10,
            raw_bytes: None,
            tables: None,
            rows: None,
            recipients: Vec::new(),
        }
    }

    fn deleted(decisions: &[Decision], backups: &[BackupListing]) -> Vec<usize> {
        backups
            .iter()
            .enumerate()
            .filter(|(_, b)| decisions.iter().any(|d| d.id == b.id && d.delete))
            .map(|(i, _)| i)
            .collect()
    }

    #[test]
    fn keep_days_deletes_older_complete_backups_but_never_the_newest() {
        let now = Timestamp::from_unix(1_800_000_000);
        let backups: Vec<_> = [100, 91, 89, 30, 1]
            .iter()
            .map(|&d| backup(d, BackupState::Complete, now))
            .collect();
        let policy = RetentionPolicy {
            keep_days: Some(90),
            keep_last: None,
            incomplete_grace: DEFAULT_INCOMPLETE_GRACE,
        };
        assert_eq!(deleted(&plan(&backups, &policy, now), &backups), vec![0, 1]);

        let all_old: Vec<_> = [300, 200]
            .iter()
            .map(|&d| backup(d, BackupState::Complete, now))
            .collect();
        assert_eq!(
            deleted(&plan(&all_old, &policy, now), &all_old),
            vec![0],
            "the newest stays"
        );
    }

    #[test]
    fn keep_last_protects_the_newest_k_whatever_their_age() {
        let now = Timestamp::from_unix(1_800_000_000);
        let backups: Vec<_> = [400, 300, 200, 100]
            .iter()
            .map(|&d| backup(d, BackupState::Complete, now))
            .collect();
        let both = RetentionPolicy {
            keep_days: Some(90),
            keep_last: Some(3),
            incomplete_grace: DEFAULT_INCOMPLETE_GRACE,
        };
        assert_eq!(deleted(&plan(&backups, &both, now), &backups), vec![0]);
        let last_only = RetentionPolicy {
            keep_days: None,
            keep_last: Some(2),
            incomplete_grace: DEFAULT_INCOMPLETE_GRACE,
        };
        assert_eq!(
            deleted(&plan(&backups, &last_only, now), &backups),
            vec![0, 1]
        );
    }

    #[test]
    fn incomplete_backups_go_after_the_grace_period_and_damaged_ones_stay() {
        let now = Timestamp::from_unix(1_800_000_000);
        let backups = vec![
            backup(3, BackupState::Incomplete, now),
            backup(0, BackupState::Incomplete, now),
            backup(500, BackupState::Damaged("bad checksum".into()), now),
            backup(1, BackupState::Complete, now),
        ];
        let policy = RetentionPolicy {
            keep_days: Some(7),
            keep_last: None,
            incomplete_grace: DEFAULT_INCOMPLETE_GRACE,
        };
        let decisions = plan(&backups, &policy, now);
        assert_eq!(deleted(&decisions, &backups), vec![0]);
        assert!(decisions.iter().any(|d| d.reason.contains("damaged")));
    }
}
