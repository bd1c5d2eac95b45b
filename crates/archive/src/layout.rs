//! Where things live inside a store. A store root (a directory, an S3 prefix) holds backups, each
//! under its id: `<id>/manifest.json`, `<id>/data/<table>.<part>.copy.zst`, the objects small
//! tables share, `<id>/data/small.<batch>.copy.zst` and, when the database has large objects,
//! `<id>/data/lo.<part>.bin.zst`. Names here are plain `/`-separated strings; the storage layer
//! validates them as keys. Readers go by the objects the chunk lists name, never by these
//! patterns.

use crate::Timestamp;

/// The manifest's name inside a backup. Its presence is what makes a backup complete.
pub const MANIFEST_NAME: &str = "manifest.json";

/// Written first, before any data: marks a backup as begun, so that one whose dump never finished
/// is recognisable as incomplete (rather than absent), and so that two dumps cannot claim the same
/// id. Holds a small JSON description of the dump.
pub const STARTED_NAME: &str = "started.json";

/// The prefix of a backup's data objects.
pub const DATA_DIR: &str = "data";

/// The manifest's name relative to the store root.
pub fn manifest_name(backup_id: &str) -> String {
    format!("{backup_id}/{MANIFEST_NAME}")
}

/// The start marker's name relative to the store root.
pub fn started_name(backup_id: &str) -> String {
    format!("{backup_id}/{STARTED_NAME}")
}

/// The name, relative to the backup, of data object `part` of table number `table_id`.
pub fn data_object_name(table_id: u32, part: u32) -> String {
    format!("{DATA_DIR}/{table_id:05}.{part:04}.copy.zst")
}

/// The name, relative to the backup, of the data object batch `batch` of small tables shares:
/// each table's rows are chunks of their own in it, one table after the other.
pub fn shared_data_object_name(batch: u32) -> String {
    format!("{DATA_DIR}/small.{batch:04}.copy.zst")
}

/// The name, relative to the backup, of data object `part` of the large objects' contents: a
/// concatenation of zstd frames whose payloads are record streams (see `large_objects`).
pub fn large_object_data_name(part: u32) -> String {
    format!("{DATA_DIR}/lo.{part:04}.bin.zst")
}

/// The name, relative to the store root, of an object recorded in backup `backup_id`'s manifest.
pub fn object_name(backup_id: &str, object: &str) -> String {
    format!("{backup_id}/{object}")
}

/// A new backup's id: its start time in UTC, to the second, e.g. `2026-11-17T030000Z`. Ids sort in
/// time order as plain strings.
pub fn backup_id(started: Timestamp) -> String {
    started.compact()
}

/// The ids a backup started at `started` may take, in order: [`backup_id`], then, when other
/// backups took that second already, the same with `-01` to `-99` (two digits, so that they
/// still sort in the order they were taken).
pub fn backup_id_candidates(started: Timestamp) -> impl Iterator<Item = String> {
    let base = backup_id(started);
    std::iter::once(base.clone()).chain((1..=99).map(move |n| format!("{base}-{n:02}")))
}

/// The start time a backup id records (to the second), if `name` is one.
pub fn backup_started(name: &str) -> Option<Timestamp> {
    let base = match name.split_at_checked(18) {
        Some((base, "")) => base,
        Some((base, suffix)) => {
            let n = suffix.strip_prefix('-')?;
            (n.len() == 2 && n.bytes().all(|b| b.is_ascii_digit()) && n != "00").then_some(base)?
        }
        None => return None,
    };
    Timestamp::parse_compact(base).ok()
}

/// Whether `name` has the shape of a backup id.
pub fn is_backup_id(name: &str) -> bool {
    backup_started(name).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_layout() {
        assert_eq!(
            manifest_name("2026-11-17T030000Z"),
            "2026-11-17T030000Z/manifest.json"
        );
        assert_eq!(data_object_name(3, 0), "data/00003.0000.copy.zst");
        assert_eq!(shared_data_object_name(2), "data/small.0002.copy.zst");
        assert_eq!(large_object_data_name(0), "data/lo.0000.bin.zst");
        assert_eq!(object_name("b", "data/x"), "b/data/x");
        let started = Timestamp::from_unix(1_763_348_400);
        assert_eq!(backup_id(started), "2025-11-17T030000Z");
        assert!(is_backup_id("2025-11-17T030000Z"));
        assert!(!is_backup_id("latest"));
        let ids: Vec<String> = backup_id_candidates(started).take(3).collect();
        assert_eq!(
            ids,
            [
                "2025-11-17T030000Z",
                "2025-11-17T030000Z-01",
                "2025-11-17T030000Z-02"
            ]
        );
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "they sort in order");
        assert_eq!(backup_started("2025-11-17T030000Z-07"), Some(started));
        for not in [
            "2025-11-17T030000Z-00",
            "2025-11-17T030000Z-1",
            "2025-11-17T030000Z-ab",
            "2025-11-17T030000Zx01",
        ] {
            assert!(!is_backup_id(not), "{not}");
        }
    }
}
