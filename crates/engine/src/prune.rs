//! `prune`: which backups a retention policy deletes, decided by a pure function so that the
//! policy can be tested exhaustively, then carried out.

use std::time::Duration;

use pgark_archive::Timestamp;
use pgark_storage::{ObjectLock, ObjectStore};

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
    /// Keep the newest complete backup of each of the newest N days, weeks, months and years
    /// that have one.
    pub calendar: CalendarRules,
    /// Where calendar days begin: a backup taken at 23:30 in New York is Tuesday's there and
    /// Wednesday's in UTC.
    pub time_zone: jiff::tz::TimeZone,
    /// Delete incomplete backups older than this.
    pub incomplete_grace: Duration,
}

/// Grandfather-father-son rules: how many of the newest calendar periods (that have a complete
/// backup) keep their newest backup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CalendarRules {
    pub daily: Option<usize>,
    pub weekly: Option<usize>,
    pub monthly: Option<usize>,
    pub yearly: Option<usize>,
}

/// A calendar period kind, and how a backup's period is named (`2026-12-04`, `2026-W49`,
/// `2026-12`, `2026`); the name is what tells two backups' periods apart.
#[derive(Debug, Clone, Copy)]
enum Period {
    Day,
    Week,
    Month,
    Year,
}

impl Period {
    fn rule(self) -> &'static str {
        match self {
            Period::Day => "daily",
            Period::Week => "weekly",
            Period::Month => "monthly",
            Period::Year => "yearly",
        }
    }

    fn of(self, at: &jiff::Zoned) -> String {
        let date = at.date();
        match self {
            Period::Day => format!("{date}"),
            // ISO weeks: Monday to Sunday, numbered within their ISO year (30 Dec 2024 is in
            // 2025-W01).
            Period::Week => {
                let week = date.iso_week_date();
                format!("{:04}-W{:02}", week.year(), week.week())
            }
            Period::Month => format!("{:04}-{:02}", date.year(), date.month()),
            Period::Year => format!("{:04}", date.year()),
        }
    }
}

/// One decision, with the reason shown to the user.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub id: String,
    pub delete: bool,
    pub reason: String,
    pub stored_bytes: u64,
    /// The policy would delete it, but an Object Lock still holds its objects: it is kept.
    pub retained: Option<ObjectLock>,
}

/// Decides, for every backup, whether the policy deletes it. A complete backup is kept when any
/// rule keeps it, and its reason names every rule that does:
/// - the newest complete backup is always kept, as are the newest `keep_last`;
/// - complete backups younger than `keep_days`;
/// - for each calendar rule with count N, the newest backup of each of the newest N periods
///   (days, ISO weeks, months, years in the policy's time zone) that have a complete backup;
/// - incomplete backups are deleted once older than the grace period;
/// - damaged backups are never deleted automatically: they are evidence to look at.
pub fn plan(backups: &[BackupListing], policy: &RetentionPolicy, now: Timestamp) -> Vec<Decision> {
    let mut complete: Vec<&BackupListing> = backups
        .iter()
        .filter(|b| b.state == BackupState::Complete)
        .collect();
    // Newest first; ids break ties between backups started in the same second.
    complete.sort_by(|a, b| (b.started_at, &b.id).cmp(&(a.started_at, &a.id)));
    let age = |b: &BackupListing| {
        Duration::from_secs(u64::try_from(now.unix() - b.started_at.unix()).unwrap_or(0))
    };

    let mut kept_by: std::collections::HashMap<String, Vec<String>> = Default::default();
    let mut keep =
        |id: &str, reason: String| kept_by.entry(id.to_owned()).or_default().push(reason);
    for (rank, backup) in complete.iter().enumerate() {
        match policy.keep_last {
            Some(last) if rank < last => {
                keep(&backup.id, format!("one of the newest {last}"));
            }
            _ if rank == 0 => keep(&backup.id, "the newest complete backup".to_owned()),
            _ => {}
        }
        if let Some(days) = policy.keep_days
            && age(backup) < Duration::from_secs(days * 86_400)
        {
            keep(&backup.id, format!("younger than {days} days"));
        }
    }
    let rules = [
        (Period::Day, policy.calendar.daily),
        (Period::Week, policy.calendar.weekly),
        (Period::Month, policy.calendar.monthly),
        (Period::Year, policy.calendar.yearly),
    ];
    let local: Vec<jiff::Zoned> = complete
        .iter()
        .map(|b| civil_time(b.started_at, &policy.time_zone))
        .collect();
    for (period, count) in rules {
        let Some(count) = count else { continue };
        let mut periods_kept = 0;
        let mut last_period: Option<String> = None;
        for (backup, at) in complete.iter().zip(&local) {
            if periods_kept == count {
                break;
            }
            let name = period.of(at);
            // Newest first: the first backup seen of a period is its newest.
            if last_period.as_deref() != Some(name.as_str()) {
                keep(&backup.id, format!("{} {name}", period.rule()));
                periods_kept += 1;
                last_period = Some(name);
            }
        }
    }

    let mut decisions: Vec<Decision> = backups
        .iter()
        .map(|backup| {
            let (delete, reason) = match &backup.state {
                BackupState::Complete => match kept_by.get(backup.id.as_str()) {
                    Some(reasons) => (false, reasons.join(", ")),
                    None => (true, "kept by no rule".to_owned()),
                },
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
                retained: None,
            }
        })
        .collect();
    decisions.sort_by(|a, b| a.id.cmp(&b.id));
    decisions
}

/// `at` on the wall clock of `zone`.
fn civil_time(at: Timestamp, zone: &jiff::tz::TimeZone) -> jiff::Zoned {
    // Backup times come from `Timestamp`, whose range jiff's covers (years -9999..=9999);
    // anything outside it is clamped rather than failing a prune.
    let instant = jiff::Timestamp::from_second(at.unix()).unwrap_or(if at.unix() < 0 {
        jiff::Timestamp::MIN
    } else {
        jiff::Timestamp::MAX
    });
    instant.to_zoned(zone.clone())
}

/// Keeps the backups `decisions` delete whose objects an Object Lock still holds at `now`:
/// S3 refuses to delete a locked object's version, and deleting by key would only hide it
/// behind a delete marker, leaving a backup that looks gone but is still there (and billed).
/// What holds is read from the store (one object per backup), not from the manifest, so a
/// retention extended or a legal hold placed since the dump counts too.
pub async fn keep_locked(
    store: &dyn ObjectStore,
    decisions: &mut [Decision],
    now: Timestamp,
) -> Result<(), EngineError> {
    for decision in decisions.iter_mut().filter(|d| d.delete) {
        let prefix = pgark_storage::ObjectKey::new(decision.id.clone())?;
        let Some(first) = store.list(Some(&prefix)).await?.into_iter().next() else {
            continue;
        };
        let lock = store.lock_of(&first.key).await?;
        if lock.holds_at(now.system_time()) {
            decision.delete = false;
            decision.retained = Some(lock);
        }
    }
    Ok(())
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
            object_lock: None,
        }
    }

    /// No rule: only the newest complete backup is kept.
    fn policy() -> RetentionPolicy {
        RetentionPolicy {
            keep_days: None,
            keep_last: None,
            calendar: CalendarRules::default(),
            time_zone: jiff::tz::TimeZone::UTC,
            incomplete_grace: DEFAULT_INCOMPLETE_GRACE,
        }
    }

    fn at(rfc3339: &str) -> Timestamp {
        Timestamp::parse_rfc3339(rfc3339).expect("a test timestamp")
    }

    fn complete_at(started_at: Timestamp) -> BackupListing {
        backup(0, BackupState::Complete, started_at)
    }

    /// The start dates (UTC) of the backups `decisions` keep, oldest first.
    fn kept_days(decisions: &[Decision]) -> Vec<String> {
        decisions
            .iter()
            .filter(|d| !d.delete)
            .map(|d| d.id[..10].to_owned())
            .collect()
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
            ..policy()
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
            ..policy()
        };
        assert_eq!(deleted(&plan(&backups, &both, now), &backups), vec![0]);
        let last_only = RetentionPolicy {
            keep_last: Some(2),
            ..policy()
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
            ..policy()
        };
        let decisions = plan(&backups, &policy, now);
        assert_eq!(deleted(&decisions, &backups), vec![0]);
        assert!(decisions.iter().any(|d| d.reason.contains("damaged")));
    }

    #[test]
    fn calendar_rules_keep_the_newest_backup_of_each_recent_period() {
        // A backup at 03:00 UTC every day for two years, up to Saturday 2026-12-05.
        let now = at("2026-12-05T12:00:00Z");
        let first = at("2024-12-06T03:00:00Z");
        let backups: Vec<_> = (0..730)
            .map(|day| complete_at(Timestamp::from_unix(first.unix() + day * DAY)))
            .collect();
        assert_eq!(backups[729].id, "2026-12-05T030000Z");
        let gfs = RetentionPolicy {
            calendar: CalendarRules {
                daily: Some(7),
                weekly: Some(4),
                monthly: Some(12),
                yearly: Some(2),
            },
            ..policy()
        };
        let decisions = plan(&backups, &gfs, now);
        assert_eq!(
            kept_days(&decisions),
            [
                "2025-12-31", // yearly 2025
                "2026-01-31",
                "2026-02-28",
                "2026-03-31",
                "2026-04-30",
                "2026-05-31",
                "2026-06-30",
                "2026-07-31",
                "2026-08-31",
                "2026-09-30",
                "2026-10-31", // monthly, the eleventh and twelfth being 2026-11-30 and today
                "2026-11-15", // weekly 2026-W46 (ISO weeks end on Sunday)
                "2026-11-22", // weekly 2026-W47
                "2026-11-29", // weekly 2026-W48 and daily
                "2026-11-30",
                "2026-12-01",
                "2026-12-02",
                "2026-12-03",
                "2026-12-04",
                "2026-12-05",
            ]
        );
        let reason = |id: &str| {
            decisions
                .iter()
                .find(|d| d.id == id)
                .map(|d| d.reason.clone())
                .unwrap_or_default()
        };
        assert_eq!(
            reason("2026-12-05T030000Z"),
            "the newest complete backup, daily 2026-12-05, weekly 2026-W49, monthly 2026-12, \
             yearly 2026"
        );
        assert_eq!(reason("2025-12-31T030000Z"), "yearly 2025");
        assert_eq!(
            reason("2026-11-30T030000Z"),
            "daily 2026-11-30, monthly 2026-11"
        );
        assert_eq!(reason("2026-11-28T030000Z"), "kept by no rule");

        // Each rule alone.
        let only = |calendar: CalendarRules| {
            kept_days(&plan(
                &backups,
                &RetentionPolicy {
                    calendar,
                    ..policy()
                },
                now,
            ))
        };
        let daily = only(CalendarRules {
            daily: Some(3),
            ..Default::default()
        });
        assert_eq!(daily, ["2026-12-03", "2026-12-04", "2026-12-05"]);
        let weekly = only(CalendarRules {
            weekly: Some(2),
            ..Default::default()
        });
        assert_eq!(weekly, ["2026-11-29", "2026-12-05"]);
        let monthly = only(CalendarRules {
            monthly: Some(3),
            ..Default::default()
        });
        assert_eq!(monthly, ["2026-10-31", "2026-11-30", "2026-12-05"]);
        let yearly = only(CalendarRules {
            yearly: Some(5),
            ..Default::default()
        });
        assert_eq!(yearly, ["2024-12-31", "2025-12-31", "2026-12-05"]);

        // Calendar rules add to --keep-days and --keep-last.
        let combined = kept_days(&plan(
            &backups,
            &RetentionPolicy {
                keep_days: Some(2),
                keep_last: Some(3),
                calendar: CalendarRules {
                    monthly: Some(2),
                    ..Default::default()
                },
                ..policy()
            },
            now,
        ));
        assert_eq!(
            combined,
            ["2026-11-30", "2026-12-03", "2026-12-04", "2026-12-05"]
        );
    }

    #[test]
    fn calendar_periods_follow_the_time_zone() {
        let now = at("2026-12-05T12:00:00Z");
        let backups: Vec<_> = [
            "2026-12-03T12:00:00Z",
            "2026-12-04T20:00:00Z",
            "2026-12-05T03:00:00Z",
        ]
        .into_iter()
        .map(|t| complete_at(at(t)))
        .collect();
        let daily_two = |zone: jiff::tz::TimeZone| {
            kept_days(&plan(
                &backups,
                &RetentionPolicy {
                    calendar: CalendarRules {
                        daily: Some(2),
                        ..Default::default()
                    },
                    time_zone: zone,
                    ..policy()
                },
                now,
            ))
        };
        assert_eq!(
            daily_two(jiff::tz::TimeZone::UTC),
            ["2026-12-04", "2026-12-05"]
        );
        // In New York the two newest are both on 4 December (15:00 and 22:00).
        let new_york = jiff::tz::TimeZone::get("America/New_York").expect("the bundled tzdb");
        assert_eq!(daily_two(new_york), ["2026-12-03", "2026-12-05"]);
    }

    #[test]
    fn calendar_rules_count_periods_with_a_complete_backup_only() {
        // Damaged and incomplete backups neither count as a period nor are kept by one.
        let now = at("2026-12-05T12:00:00Z");
        let mut backups: Vec<_> = ["2026-12-01T03:00:00Z", "2026-12-02T03:00:00Z"]
            .into_iter()
            .map(|t| complete_at(at(t)))
            .collect();
        for (t, state) in [
            ("2026-12-03T03:00:00Z", BackupState::Damaged("bad".into())),
            ("2026-12-04T03:00:00Z", BackupState::Incomplete),
        ] {
            backups.push(BackupListing {
                state,
                ..complete_at(at(t))
            });
        }
        let decisions = plan(
            &backups,
            &RetentionPolicy {
                calendar: CalendarRules {
                    daily: Some(2),
                    ..Default::default()
                },
                ..policy()
            },
            now,
        );
        // The incomplete one is 32 hours old: past the grace period.
        assert_eq!(deleted(&decisions, &backups), vec![3]);
        assert!(decisions[0].reason.contains("daily 2026-12-01"));
    }
}
