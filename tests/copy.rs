//! `pgark copy`: a backup to another store and back — directory to S3, S3 to another bucket, S3
//! to a directory — each copy restoring to the source's contents; damage in the source stops
//! the copy naming the chunk, with no manifest at the destination; a copy killed before its
//! manifest finishes on a rerun without sending again what it had stored.

mod common;

use common::*;
use pgark_testkit::s3::{Operation, S3Server};
use pgark_testkit::{TestDb, server, unique_name};

/// Restores `backup` (with `env`) into a new database and compares it with `source`.
async fn restores_like(source: &TestDb, backup: &str, env: Vec<(&'static str, String)>) {
    restore_into_new_and_compare_with(backup, source, "copied", env).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn copies_between_directories_and_buckets_restore_like_the_source() {
    let source = server().create_database("copy_source").await;
    load_fixture(&source).await;
    let (local, backup) = dump_to_temp(&source, &["--chunk-size", "64KiB"]).await;
    let id = backup
        .file_name()
        .expect("id")
        .to_string_lossy()
        .into_owned();
    let s3 = S3Server::start();
    std::fs::create_dir(s3.root().join("second")).expect("a second bucket");

    let copies = |args: &[&str], restore_from: String| {
        let mut all = vec!["copy"];
        all.extend_from_slice(args);
        let all: Vec<String> = all.into_iter().map(str::to_owned).collect();
        let (source, id, env) = (&source, &id, s3.env());
        async move {
            let all: Vec<&str> = all.iter().map(String::as_str).collect();
            let run = pgark_with_env(&all, env.clone()).await.success();
            assert!(
                run.stdout.contains(&format!("copied {id}")),
                "{}",
                run.stdout
            );
            restores_like(source, &restore_from, env).await;
        }
    };
    // A directory to S3.
    let first = s3.location("copies");
    copies(&[path_str(&backup), &first], format!("{first}/{id}")).await;
    // S3 to another bucket, with --since.
    copies(
        &[&first, "s3://second/dr", "--since", "1d"],
        "s3://second/dr/latest".to_owned(),
    )
    .await;

    // S3 to a directory.
    let back = tempfile::tempdir().expect("dir");
    pgark_with_env(
        &["copy", "s3://second/dr/latest", path_str(back.path())],
        s3.env(),
    )
    .await
    .success();
    restores_like(
        &source,
        path_str(&back.path().join(&id)),
        Vec::<(&str, String)>::new(),
    )
    .await;
    let verified = pgark(&["verify", path_str(&back.path().join(&id))]).await;
    verified.success();

    // Again: nothing to do.
    let again = pgark(&["copy", path_str(&backup), path_str(local.path())])
        .await
        .success();
    assert!(
        again.stdout.contains("already complete"),
        "{}",
        again.stdout
    );

    // A folder without --since, and --since with one backup, are refused.
    let error = pgark(&["copy", path_str(local.path()), path_str(back.path())])
        .await
        .failure();
    assert!(error.contains("--since"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_encrypted_backup_copies_without_its_key() {
    let source = server().create_database("copy_encrypted").await;
    load_fixture(&source).await;
    let keys = tempfile::tempdir().expect("dir");
    let identity = keys.path().join("key.txt");
    let public = pgark(&["keygen", "--output", path_str(&identity)])
        .await
        .success()
        .stdout
        .trim()
        .to_owned();
    let (_dir, backup) = dump_to_temp(&source, &["--encrypt-to", &public]).await;
    let dest = tempfile::tempdir().expect("dir");
    pgark(&["copy", path_str(&backup), path_str(dest.path())])
        .await
        .success();
    let copy = only_backup(dest.path());
    pgark(&["verify", path_str(&copy)]).await.success();
    let target = server().database(&unique_name("copied_encrypted"));
    let target_url = target.url();
    restore(
        &copy,
        &target_url,
        &["--create", "--identity", path_str(&identity)],
    )
    .await
    .success();
    assert_same_contents(&source, &target).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_chunk_stops_the_copy_and_leaves_no_manifest() {
    let source = server().create_database("copy_damaged").await;
    load_fixture(&source).await;
    let (_dir, backup) = dump_to_temp(&source, &["--chunk-size", "64KiB"]).await;
    // Flip one byte in the middle of the largest data object.
    let object = files_under(&backup.join("data"))
        .into_iter()
        .max_by_key(|path| std::fs::metadata(path).expect("size").len())
        .expect("a data object");
    let mut bytes = std::fs::read(&object).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&object, bytes).expect("write");

    let dest = tempfile::tempdir().expect("dir");
    let error = pgark(&["copy", path_str(&backup), path_str(dest.path())])
        .await
        .failure();
    let name = object.file_name().expect("name").to_string_lossy();
    assert!(
        error.contains("SHA-256") && error.contains("chunk") && error.contains(&*name),
        "{error}"
    );
    assert!(
        !files_under(dest.path())
            .iter()
            .any(|f| f.ends_with("manifest.json")),
        "no manifest at the destination"
    );
    assert!(
        !files_under(dest.path()).iter().any(|f| f.ends_with(&*name)),
        "the damaged object is not stored"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_copy_finishes_on_a_rerun_without_sending_its_objects_again() {
    let source = server().create_database("copy_killed").await;
    load_fixture(&source).await;
    let (_dir, backup) = dump_to_temp(&source, &["--chunk-size", "64KiB"]).await;
    let s3 = S3Server::start();
    let dest = s3.location("killed");

    // Everything is stored but the manifest, whose write never answers; then the copy is killed.
    s3.hold_puts_ending_with("manifest.json");
    let mut copy = pgark_command(&["copy", path_str(&backup), &dest]);
    copy.envs(s3.env());
    let mut child = copy.spawn().expect("start copy");
    s3.put_held().await;
    child.kill().await.expect("kill copy");
    s3.stop_holding_puts();
    let stored = s3.list_keys("killed/").await;
    assert!(
        !stored.iter().any(|k| k.ends_with("manifest.json")),
        "{stored:?}"
    );
    let writes = |s3: &S3Server| {
        s3.requests(Operation::PutObject) + s3.requests(Operation::CreateMultipartUpload)
    };
    let before = writes(&s3);

    let run = pgark_with_env(&["copy", path_str(&backup), &dest], s3.env())
        .await
        .success();
    assert_eq!(
        writes(&s3) - before,
        1,
        "only the manifest is written again: {}",
        run.stdout
    );
    assert!(
        run.stdout.contains("1 objects sent")
            && run
                .stdout
                .contains(&format!("{} already there", stored.len())),
        "{}",
        run.stdout
    );
    restores_like(&source, &format!("{dest}/latest"), s3.env()).await;
}
