//! Client-side encryption through the real binary: age recipients and a real KMS-compatible
//! server (moto), what is and is not in the stored objects, damage and tampering rejected before
//! anything reaches a target, verify without a key, and rekey (also interrupted).

mod common;

use std::path::{Path, PathBuf};

use common::*;
use pgark_testkit::s3::S3Server;
use pgark_testkit::{MotoServer, TestDb, server, unique_name};

/// Strings that must never appear in a stored object of an encrypted backup.
const SECRET_VALUE: &str = "PLAINTEXT-MARKER-7731";
const SECRET_TABLE: &str = "tbl_marker_4217";

/// A new age identity file in `dir`; its public key.
async fn identity(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let run = pgark(&["keygen", "--output", path_str(&path)])
        .await
        .success();
    let public = run.stdout.trim().to_owned();
    assert!(public.starts_with("age1"), "{public}");
    (path, public)
}

async fn secret_source(prefix: &str) -> TestDb {
    let source = server().create_database(prefix).await;
    load_fixture(&source).await;
    source
        .execute(&format!(
            "CREATE TABLE {SECRET_TABLE} (id int PRIMARY KEY, note text);
             INSERT INTO {SECRET_TABLE} SELECT g, '{SECRET_VALUE}-' || g
               FROM generate_series(1, 20000) g;"
        ))
        .await;
    source
}

/// Fails unless no file under `backup` holds `needle`, nor decodes as zstd when it is a data
/// object.
fn assert_nothing_in_clear(backup: &Path) {
    for file in files_under(backup) {
        let bytes = std::fs::read(&file).expect("read object");
        for needle in [SECRET_VALUE, SECRET_TABLE] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{} holds {needle:?} in the clear",
                file.display()
            );
        }
        let name = file.to_string_lossy();
        if name.contains("/data/") || name.ends_with("catalog.json.zst") {
            assert!(
                zstd::decode_all(&bytes[..]).is_err(),
                "{} still decodes as zstd",
                file.display()
            );
        }
    }
}

/// Restores `backup` into a new database with `extra` arguments; the database and the run.
async fn restore_new(backup: &Path, extra: &[&str], env: &[(&str, String)]) -> (TestDb, Run) {
    let target = server().database(&unique_name("decrypted"));
    let url = target.url();
    let mut args = vec!["restore", path_str(backup), "--target", &url, "--create"];
    args.extend_from_slice(extra);
    let run = pgark_with_env(&args, env.iter().cloned()).await;
    (target, run)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_age_encrypted_backup_round_trips_and_no_stored_object_holds_its_data_or_names() {
    let keys = tempfile::tempdir().expect("dir");
    let (alice, alice_public) = identity(keys.path(), "alice.txt").await;
    let (bob, _) = identity(keys.path(), "bob.txt").await;
    let source = secret_source("encrypted_age").await;
    let (_dest, backup) = dump_to_temp(
        &source,
        &["--encrypt-to", &alice_public, "--chunk-size", "64KiB"],
    )
    .await;
    assert_nothing_in_clear(&backup);
    let head: serde_json::Value =
        serde_json::from_slice(&std::fs::read(backup.join("manifest.json")).expect("head"))
            .expect("json");
    assert_eq!(head["format_version"], 3);
    assert_eq!(head["encryption"]["recipients"][0], alice_public.as_str());
    assert_eq!(head["source"]["database"], "");

    // ls needs no key; show, cat and restore do, and name the key the backup accepts.
    let dest = backup.parent().expect("dest");
    let listed = pgark(&["ls", path_str(dest)]).await.success();
    assert!(listed.stdout.contains("(encrypted)"), "{}", listed.stdout);
    let refused = pgark(&["show", path_str(&backup)]).await.failure();
    assert!(
        refused.contains(&alice_public) && refused.contains("no age identity was given"),
        "{refused}"
    );
    let (wrong, run) = restore_new(&backup, &["--identity", path_str(&bob)], &[]).await;
    let refused = run.failure();
    assert!(
        refused.contains(&alice_public) && refused.contains("bob.txt"),
        "{refused}"
    );
    assert!(!database_exists(wrong.name()).await, "nothing was created");

    let (restored, run) = restore_new(&backup, &["--identity", path_str(&alice)], &[]).await;
    run.success();
    assert_same_contents(&source, &restored).await;
    // PGARK_IDENTITY is the same as --identity.
    let shown = pgark_with_env(
        &["cat", path_str(&backup), SECRET_TABLE],
        [("PGARK_IDENTITY", path_str(&alice))],
    )
    .await
    .success();
    assert_eq!(shown.stdout.lines().count(), 20000);
    assert!(shown.stdout.contains(SECRET_VALUE));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kms_encrypted_backup_round_trips_through_a_kms_server() {
    let kms = MotoServer::start();
    let key_id = kms.create_key();
    let source = secret_source("encrypted_kms").await;
    let dest = tempfile::tempdir().expect("dir");
    let recipient = format!("kms:{key_id}");
    let url = source.url();
    pgark_with_env(
        &[
            "dump",
            &url,
            path_str(dest.path()),
            "--encrypt-to",
            &recipient,
        ],
        kms.env(),
    )
    .await
    .success();
    let backup = only_backup(dest.path());
    assert_nothing_in_clear(&backup);
    let envelope = std::fs::read_to_string(backup.join("keys.0001.json")).expect("envelope");
    assert!(
        envelope.contains("\"type\": \"kms\"") && envelope.contains(&key_id),
        "{envelope}"
    );

    // KMS access alone opens it.
    let (restored, run) = restore_new(&backup, &[], &kms.env()).await;
    run.success();
    assert_same_contents(&source, &restored).await;
    pgark_with_env(&["verify", path_str(&backup), "--decrypt"], kms.env())
        .await
        .success();

    // A KMS that does not hold the key opens nothing, and the error says which key.
    let other_kms = MotoServer::start();
    let (_, run) = restore_new(&backup, &[], &other_kms.env()).await;
    let refused = run.failure();
    assert!(refused.contains(&key_id), "{refused}");
}

#[tokio::test(flavor = "multi_thread")]
async fn encrypted_corpora_round_trip() {
    let keys = tempfile::tempdir().expect("dir");
    let (identity_file, public) = identity(keys.path(), "key.txt").await;
    for corpus in ["chinook", "pagila"] {
        let source = server().load_corpus(corpus, &unique_name(corpus)).await;
        let (_dest, backup) =
            dump_to_temp(&source, &["--encrypt-to", &public, "--jobs", "2"]).await;
        let (restored, run) =
            restore_new(&backup, &["--identity", path_str(&identity_file)], &[]).await;
        run.success();
        assert_same_contents(&source, &restored).await;
    }
}

/// The stored pieces of an encrypted backup, from its clear checksum list: (object, offset,
/// length).
fn pieces(backup: &Path) -> Vec<(String, u64, u64)> {
    let list = std::fs::read(backup.join("checksums.jsonl.zst")).expect("checksums");
    let text = zstd::decode_all(&list[..]).expect("clear list");
    String::from_utf8(text)
        .expect("utf-8")
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("json line");
            (
                v["object"].as_str().expect("object").to_owned(),
                v["offset"].as_u64().expect("offset"),
                v["length"].as_u64().expect("length"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn tampered_encrypted_chunks_are_rejected_naming_the_chunk_and_nothing_reaches_the_target() {
    let keys = tempfile::tempdir().expect("dir");
    let (identity_file, public) = identity(keys.path(), "key.txt").await;
    let source = server().create_database("encrypted_tampered").await;
    source
        .execute(&format!(
            "CREATE TABLE t (id int PRIMARY KEY, note text);
             INSERT INTO t SELECT g, '{SECRET_VALUE}' || g FROM generate_series(1, 30000) g;"
        ))
        .await;
    let dump_args = [
        "--encrypt-to",
        public.as_str(),
        "--chunk-size",
        "64KiB",
        "--split",
        "off",
    ];
    let (_dest, original) = dump_to_temp(&source, &dump_args).await;
    let (_other_dest, other) = dump_to_temp(&source, &dump_args).await;
    let object = "data/00001.0000.copy.zst";
    let chunks: Vec<(u64, u64)> = pieces(&original)
        .into_iter()
        .filter(|(o, _, _)| o == object)
        .map(|(_, offset, length)| (offset, length))
        .collect();
    assert!(chunks.len() >= 4, "several chunks: {chunks:?}");
    let bytes = std::fs::read(original.join(object)).expect("object");
    let other_bytes = std::fs::read(other.join(object)).expect("object");
    let (offset, length) = (chunks[1].0 as usize, chunks[1].1 as usize);

    let mut flipped = bytes.clone();
    flipped[offset + length / 2] ^= 0x01;
    // The same table's chunk from another backup of the same rows, at the same place.
    let mut swapped = bytes.clone();
    swapped[offset..offset + length].copy_from_slice(&other_bytes[offset..offset + length]);
    // Chunk 2 moved over chunk 1 (as much of it as fits).
    let mut moved = bytes.clone();
    let (from, _) = chunks[2];
    moved.copy_within(from as usize..from as usize + length, offset);
    let truncated = bytes[..offset + length / 2].to_vec();

    for (what, damaged) in [
        ("a flipped byte", flipped),
        ("a chunk swapped from another backup", swapped),
        ("a chunk moved within the object", moved),
        ("a truncated object", truncated),
    ] {
        let copy = tempfile::tempdir().expect("dir");
        let backup = copy.path().join(original.file_name().expect("id"));
        copy_tree(&original, &backup);
        std::fs::write(backup.join(object), &damaged).expect("damage");
        let (target, run) =
            restore_new(&backup, &["--identity", path_str(&identity_file)], &[]).await;
        let error = run.failure();
        // Chunk 1 is the damaged one; a truncation damages every chunk after the cut too.
        let named = error.contains("chunk 1 ")
            || (what.contains("truncated") && error.contains("truncated"));
        assert!(named && error.contains(object), "{what}: {error}");
        assert!(
            !database_exists(target.name()).await,
            "{what}: nothing reaches the target"
        );
        // Without a key, verify finds the damage too (exit 3).
        let run = pgark(&["verify", path_str(&backup)]).await;
        assert_eq!(run.status.code(), Some(3), "{what}: {}", run.stderr);
    }
    // The intact backup verifies with and without its key.
    let run = pgark(&["verify", path_str(&original)]).await.success();
    assert!(run.stdout.contains("without a key"), "{}", run.stdout);
    pgark(&[
        "verify",
        path_str(&original),
        "--identity",
        path_str(&identity_file),
    ])
    .await
    .success();
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Every data object of `backup` (a directory), by name.
fn data_objects(backup: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(backup.join("data"))
        .expect("data directory")
        .map(|entry| {
            let entry = entry.expect("entry");
            let name = entry.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(entry.path()).expect("data object"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn rekey_moves_a_backup_to_new_recipients_without_rewriting_its_data() {
    let keys = tempfile::tempdir().expect("dir");
    let (old, old_public) = identity(keys.path(), "old.txt").await;
    let (new, new_public) = identity(keys.path(), "new.txt").await;
    let source = secret_source("encrypted_rekey").await;
    let (dest, backup) = dump_to_temp(&source, &["--encrypt-to", &old_public]).await;
    let data_before = data_objects(&backup);
    assert!(!data_before.is_empty(), "the backup has data objects");

    // rekey DEST rekeys every backup under it.
    let run = pgark(&[
        "rekey",
        path_str(dest.path()),
        "--add-recipient",
        &new_public,
        "--remove-recipient",
        &old_public,
        "--identity",
        path_str(&old),
    ])
    .await
    .success();
    assert!(run.stdout.contains("keys.0002.json"), "{}", run.stdout);
    assert!(
        !backup.join("keys.0001.json").exists(),
        "old envelope removed"
    );
    assert!(
        data_objects(&backup) == data_before,
        "the data is not rewritten"
    );
    let (_, run) = restore_new(&backup, &["--identity", path_str(&old)], &[]).await;
    let refused = run.failure();
    assert!(refused.contains(&new_public), "{refused}");
    let (restored, run) = restore_new(&backup, &["--identity", path_str(&new)], &[]).await;
    run.success();
    assert_same_contents(&source, &restored).await;

    // Removing the last recipient is refused, and so is a key that does not open the backup.
    let last = pgark(&[
        "rekey",
        path_str(&backup),
        "--remove-recipient",
        &new_public,
        "--identity",
        path_str(&new),
    ])
    .await
    .failure();
    assert!(last.contains("none"), "{last}");
    let wrong = pgark(&[
        "rekey",
        path_str(&backup),
        "--add-recipient",
        &old_public,
        "--identity",
        path_str(&old),
    ])
    .await
    .failure();
    assert!(wrong.contains("no age identity"), "{wrong}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rekey_killed_between_its_steps_leaves_a_backup_the_old_key_opens() {
    let keys = tempfile::tempdir().expect("dir");
    let (old, old_public) = identity(keys.path(), "old.txt").await;
    let (new, new_public) = identity(keys.path(), "new.txt").await;
    let s3 = S3Server::start();
    let source = secret_source("encrypted_rekey_killed").await;
    let url = source.url();
    let location = s3.location("rekeyed");
    pgark_with_env(
        &["dump", &url, &location, "--encrypt-to", &old_public],
        s3.env(),
    )
    .await
    .success();
    let id = pgark_with_env(&["ls", &location, "--json"], s3.env())
        .await
        .success()
        .stdout;
    let listed: serde_json::Value = serde_json::from_str(&id).expect("json");
    let backup = format!("{location}/{}", listed[0]["id"].as_str().expect("id"));

    // The new envelope is stored; the head's rewrite never answers; the rekey is killed there.
    s3.hold_puts_ending_with("manifest.json");
    let mut rekey = pgark_command(&[
        "rekey",
        &backup,
        "--add-recipient",
        &new_public,
        "--remove-recipient",
        &old_public,
        "--identity",
        path_str(&old),
    ]);
    rekey.envs(s3.env());
    let mut child = rekey.spawn().expect("start rekey");
    s3.put_held().await;
    child.kill().await.expect("kill rekey");
    let keys_stored: Vec<String> = s3
        .list_keys("rekeyed/")
        .await
        .into_iter()
        .filter(|k| k.contains("/keys."))
        .collect();
    assert_eq!(keys_stored.len(), 2, "both envelopes: {keys_stored:?}");

    let target = server().database(&unique_name("after_killed_rekey"));
    let target_url = target.url();
    let restore = |identity: PathBuf| {
        let (backup, target_url) = (backup.clone(), target_url.clone());
        let env = s3.env();
        async move {
            pgark_with_env(
                &[
                    "restore",
                    &backup,
                    "--target",
                    &target_url,
                    "--create",
                    "--identity",
                    path_str(&identity),
                ],
                env,
            )
            .await
        }
    };
    restore(new.clone()).await.failure();
    restore(old.clone()).await.success();
    assert_same_contents(&source, &target).await;

    // Run again to the end, the rekey completes past the envelope the killed one left.
    s3.stop_holding_puts();
    let run = pgark_with_env(
        &[
            "rekey",
            &backup,
            "--add-recipient",
            &new_public,
            "--remove-recipient",
            &old_public,
            "--identity",
            path_str(&old),
        ],
        s3.env(),
    )
    .await
    .success();
    assert!(run.stdout.contains("keys.0003.json"), "{}", run.stdout);
    let keys_stored: Vec<String> = s3
        .list_keys("rekeyed/")
        .await
        .into_iter()
        .filter(|k| k.contains("/keys."))
        .collect();
    assert_eq!(
        keys_stored.len(),
        1,
        "only the new envelope: {keys_stored:?}"
    );
    let again = server().database(&unique_name("after_rekey"));
    let again_url = again.url();
    pgark_with_env(
        &[
            "restore",
            &backup,
            "--target",
            &again_url,
            "--create",
            "--identity",
            path_str(&new),
        ],
        s3.env(),
    )
    .await
    .success();
}
