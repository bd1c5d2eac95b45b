//! S3 Object Lock, against moto's S3 (which enforces it; the s3s server does not): every object
//! of a backup carries the retention and legal hold asked for, the server refuses to delete a
//! locked version, `prune` keeps what a lock still holds and says so, and a bucket without Object
//! Lock is refused before anything is written. (Every object here is a single PUT: moto answers
//! `CompleteMultipartUpload` with an XML root the Rust SDK refuses.)

mod common;

use std::time::{Duration, SystemTime};

use aws_sdk_s3::types::{ObjectLockLegalHoldStatus, ObjectLockMode};
use common::*;
use pgark_testkit::{MotoServer, server};

/// Every object under `prefix` in `bucket`: (key, mode, retain until, legal hold).
async fn locks(
    moto: &MotoServer,
    bucket: &str,
    prefix: &str,
) -> Vec<(String, Option<ObjectLockMode>, Option<SystemTime>, bool)> {
    let client = moto.s3_client();
    let listed = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .expect("list");
    let mut locks = Vec::new();
    for object in listed.contents() {
        let key = object.key().expect("key").to_owned();
        let head = client
            .head_object()
            .bucket(bucket)
            .key(&key)
            .send()
            .await
            .expect("head");
        locks.push((
            key,
            head.object_lock_mode().cloned(),
            head.object_lock_retain_until_date()
                .map(|d| SystemTime::try_from(*d).expect("a date")),
            head.object_lock_legal_hold_status() == Some(&ObjectLockLegalHoldStatus::On),
        ));
    }
    locks
}

#[tokio::test(flavor = "multi_thread")]
async fn locked_backups_resist_deletion_and_prune_reports_them_retained() {
    let moto = MotoServer::start();
    moto.create_bucket("locked", true).await;
    moto.create_bucket("plain", false).await;
    let env = moto.s3_env();
    let source = server().create_database("object_lock").await;
    load_fixture(&source).await;
    let url = source.url();
    let dump = |dest: &'static str, lock: &'static [&'static str]| {
        let mut args = vec!["dump".to_owned(), url.clone(), dest.to_owned()];
        args.extend(lock.iter().map(|a| (*a).to_owned()));
        let env = env.clone();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            pgark_with_env(&args, env).await
        }
    };

    let before = SystemTime::now();
    dump(
        "s3://locked/prod",
        &["--object-lock", "compliance", "--retain-for", "1d"],
    )
    .await
    .success();
    let after = SystemTime::now();
    let first = locks(&moto, "locked", "prod/").await;
    assert!(first.len() > 5, "{first:?}");
    let day = Duration::from_secs(86_400);
    for (key, mode, until, hold) in &first {
        assert_eq!(mode.as_ref(), Some(&ObjectLockMode::Compliance), "{key}");
        let until = until.unwrap_or_else(|| panic!("{key} has no retain-until date"));
        assert!(
            until + Duration::from_secs(1) >= before + day && until <= after + day,
            "{key} is retained until {until:?}"
        );
        assert!(!hold, "{key} has no legal hold");
    }

    // The second, newer backup: governance mode with a legal hold.
    dump(
        "s3://locked/prod",
        &[
            "--object-lock",
            "governance",
            "--retain-for",
            "1d",
            "--legal-hold",
        ],
    )
    .await
    .success();
    let all = locks(&moto, "locked", "prod/").await;
    let second: Vec<_> = all.iter().filter(|lock| !first.contains(lock)).collect();
    assert!(!second.is_empty());
    for (key, mode, _, hold) in &second {
        assert_eq!(mode.as_ref(), Some(&ObjectLockMode::Governance), "{key}");
        assert!(hold, "{key} has a legal hold");
    }

    // The server refuses to delete a locked version.
    let client = moto.s3_client();
    let versions = client
        .list_object_versions()
        .bucket("locked")
        .prefix("prod/")
        .send()
        .await
        .expect("versions");
    let version = &versions.versions()[0];
    let refused = client
        .delete_object()
        .bucket("locked")
        .key(version.key().expect("key"))
        .version_id(version.version_id().expect("version id"))
        .send()
        .await;
    assert!(refused.is_err(), "a locked version was deleted");

    // ls and show tell the retention.
    let listed = pgark_with_env(&["ls", "s3://locked/prod"], env.clone())
        .await
        .success();
    assert!(
        listed.stdout.contains("object lock (compliance) until")
            && listed.stdout.contains("object lock (governance) until")
            && listed.stdout.contains("legal hold"),
        "{}",
        listed.stdout
    );
    let shown = pgark_with_env(&["show", "s3://locked/prod/latest"], env.clone())
        .await
        .success();
    assert!(
        shown
            .stdout
            .contains("retention   object lock (governance) until")
            && shown.stdout.contains(", legal hold"),
        "{}",
        shown.stdout
    );

    // prune keeps what a lock holds, says so, and exits 0.
    let first_id = first[0].0.split('/').nth(1).expect("id").to_owned();
    let pruned = pgark_with_env(
        &["prune", "s3://locked/prod", "--keep-last", "1"],
        env.clone(),
    )
    .await
    .success();
    assert!(
        pruned
            .stdout
            .lines()
            .any(|line| line.starts_with("retained")
                && line.contains(&first_id)
                && line.contains("kept by no rule; object lock (compliance) until")),
        "{}",
        pruned.stdout
    );
    assert!(
        pruned.stdout.contains("deleted 0 backup(s)")
            && pruned.stdout.contains("retained 1 backup(s)"),
        "{}",
        pruned.stdout
    );
    assert_eq!(
        locks(&moto, "locked", "prod/").await,
        all,
        "nothing deleted"
    );
    let markers = client
        .list_object_versions()
        .bucket("locked")
        .prefix("prod/")
        .send()
        .await
        .expect("versions");
    assert!(
        markers.delete_markers().is_empty(),
        "no delete marker hides a locked object"
    );

    // A locked backup restores like any other.
    restore_into_new_and_compare_with(
        &format!("s3://locked/prod/{first_id}"),
        &source,
        "object_lock_restored",
        env.clone(),
    )
    .await;

    // A copy takes the destination's lock.
    let (_dir, local) = dump_to_temp(&source, &[]).await;
    pgark_with_env(
        &[
            "copy",
            path_str(&local),
            "s3://locked/dr",
            "--object-lock",
            "compliance",
            "--retain-for",
            "2d",
        ],
        env.clone(),
    )
    .await
    .success();
    let copied = locks(&moto, "locked", "dr/").await;
    assert!(copied.len() > 5, "{copied:?}");
    for (key, mode, until, _) in &copied {
        assert_eq!(mode.as_ref(), Some(&ObjectLockMode::Compliance), "{key}");
        assert!(
            until.is_some_and(|until| until > after + day),
            "{key}: {until:?}"
        );
    }

    // A bucket without Object Lock is refused before anything is written.
    let error = dump(
        "s3://plain/prod",
        &["--object-lock", "governance", "--retain-for", "1d"],
    )
    .await
    .failure();
    assert!(
        error.contains("\"plain\"")
            && error.contains("does not have Object Lock enabled")
            && error.contains("Nothing was written"),
        "{error}"
    );
    assert!(locks(&moto, "plain", "").await.is_empty());
    // And so is a directory.
    let dir = tempfile::tempdir().expect("temp dir");
    let error = pgark(&[
        "dump",
        &url,
        path_str(dir.path()),
        "--object-lock",
        "compliance",
        "--retain-for",
        "1d",
    ])
    .await
    .failure();
    assert!(error.contains("need an S3 destination"), "{error}");
    assert!(files_under(dir.path()).is_empty());
}

/// The other write checksums, against the second S3 implementation: a backup written with
/// CRC32C checksums, and one with none (signed payloads), each restore whole.
#[tokio::test(flavor = "multi_thread")]
async fn backups_written_with_crc32c_or_no_checksum_restore_whole() {
    let moto = MotoServer::start();
    moto.create_bucket("sums", false).await;
    let env = moto.s3_env();
    let source = server().create_database("s3_checksums").await;
    load_fixture(&source).await;
    let url = source.url();
    for checksum in ["crc32c", "none"] {
        let dest = format!("s3://sums/{checksum}");
        pgark_with_env(
            &[
                "dump",
                &url,
                &dest,
                "--s3-checksum",
                checksum,
                "--s3-addressing",
                "path",
            ],
            env.clone(),
        )
        .await
        .success();
        restore_into_new_and_compare_with(
            &format!("{dest}/latest"),
            &source,
            &format!("s3_checksum_{checksum}"),
            env.clone(),
        )
        .await;
    }
    let error = pgark_with_env(
        &[
            "dump",
            &url,
            "s3://sums/x",
            "--s3-checksum",
            "none",
            "--object-lock",
            "compliance",
            "--retain-for",
            "1d",
        ],
        env,
    )
    .await
    .failure();
    assert!(error.contains("without a checksum"), "{error}");
}
