//! A backup taken from one server version restores into another: dump from PostgreSQL 13,
//! restore into 17. Needs both versions' server binaries, which `scripts/test-versions.sh`
//! fetches and passes as `PGARK_PG_BIN_13` and `PGARK_PG_BIN_17`; hence ignored in a plain
//! `cargo test`.

mod common;

use std::path::PathBuf;

use common::*;
use pgark_testkit::{PgServer, ServerOptions, unique_name};

fn server_of(version: u32) -> PgServer {
    let variable = format!("PGARK_PG_BIN_{version}");
    let dir = std::env::var_os(&variable).map(PathBuf::from).unwrap_or_else(|| {
        panic!("{variable} is not set: run scripts/test-versions.sh 13 17, which fetches the servers")
    });
    PgServer::start(ServerOptions {
        bin_dir: Some(dir),
        ..ServerOptions::default()
    })
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs PostgreSQL 13 and 17 binaries; run by scripts/test-versions.sh"]
async fn dump_from_13_restores_into_17() {
    let old = server_of(13);
    let new = server_of(17);
    assert_eq!(old.version_num() / 10_000, 13);
    assert_eq!(new.version_num() / 10_000, 17);
    let source = old.load_corpus("pagila", &unique_name("pagila")).await;
    let (_dest, backup) = dump_to_temp(&source, &[]).await;
    let target = new.database(&unique_name("from13"));
    let url = target.url();
    restore(&backup, &url, &["--create"]).await.success();
    let expected = contents(&source).await;
    let actual = contents(&target).await;
    assert_eq!(actual.rows, expected.rows, "rows differ");
    assert_eq!(actual.sequences, expected.sequences, "sequences differ");
    assert_eq!(actual.columns, expected.columns, "columns differ");
}
