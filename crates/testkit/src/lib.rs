//! Real PostgreSQL servers — and a real S3 protocol server ([`S3Server`], module [`s3`]) — for
//! pgark's tests.
//!
//! [`server()`] starts one throw-away server per test process, lazily, and shares it between all the
//! tests (threads) of that process; [`PgServer::start`] starts a dedicated one with extra
//! `postgresql.conf` / `pg_hba.conf` lines (e.g. `ssl = on`; [`TestCerts`] makes a CA and certificates
//! with `openssl` and starts such a server). Each server is `initdb`-ed into a fresh
//! temporary directory from the installed server binaries (see [`PgServer::bin_dir`] for how they are
//! found), listens on a private Unix socket only (unless TCP is asked for), runs with durability
//! switched off, and trusts local connections as the superuser `postgres` — except for members of
//! the role `pgark_password_users`, which must authenticate with a SCRAM password, so tests can
//! exercise password authentication. Tests get a fresh database each with
//! [`PgServer::create_database`], and can load the shared real-world corpora with
//! [`PgServer::load_corpus`]. The tests connect as `postgres`, or with `PGARK_TEST_PROFILE=managed`
//! as the admin role of a managed service, which is no superuser ([`profile`]).
//!
//! A server never outlives its test process: a small watchdog process holds the read end of a pipe
//! whose write end only the test process holds; when the test process exits — normally, by panic or
//! by `kill -9` — the pipe closes and the watchdog stops the server and removes its directory.
//!
//! This is a test kit: every failure panics with a message that says what failed and how to fix it
//! (missing binaries, `initdb`/`pg_ctl` output, the tail of the server log). It never skips a test
//! because PostgreSQL is missing. When the tests run as root, the server runs as the `postgres`
//! system user (initdb refuses root) while the tests keep connecting over the socket as the database
//! user `postgres`.

mod bin;
mod config;
mod corpus;
mod db;
pub mod moto;
mod process;
pub mod profile;
pub mod s3;
mod server;
pub mod tls;
mod watchdog;

pub use corpus::corpora_dir;
pub use db::{TestDb, unique_name};
pub use moto::MotoServer;
pub use profile::{PROVIDER_ROLE, Profile, profile};
pub use s3::S3Server;
pub use server::{PgServer, ServerOptions, server};
pub use tls::TestCerts;
