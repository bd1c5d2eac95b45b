//! Who the tests connect as: the superuser `postgres` (the default), or — with
//! `PGARK_TEST_PROFILE=managed` — the admin role of a managed service (RDS, Cloud SQL, Azure),
//! which is no superuser ([`Profile`] names the roles of each).
//!
//! Every server the kit starts has the managed roles, whatever the profile: a member of a
//! provider-like group role with `CREATEDB` and `CREATEROLE`, and (from PostgreSQL 14) of
//! `pg_read_all_data` and `pg_write_all_data`. In the managed profile [`TestDb::url`],
//! [`TestDb::client`], [`PgServer::create_database`] and the corpora loaded by
//! [`PgServer::load_corpus`] are all that role's: the databases it creates and the objects the
//! tests create are owned by it, as on a managed service, and pgark runs as it. What needs a
//! superuser on such a service (an event trigger, an untrusted extension) a test creates through
//! [`TestDb::as_superuser`], as the provider would; a corpus script that needs one fails to load,
//! as it would there.
//!
//! [`TestDb::url`]: crate::TestDb::url
//! [`TestDb::client`]: crate::TestDb::client
//! [`TestDb::as_superuser`]: crate::TestDb::as_superuser
//! [`PgServer::create_database`]: crate::PgServer::create_database
//! [`PgServer::load_corpus`]: crate::PgServer::load_corpus

use std::sync::OnceLock;

/// Which role the tests connect as, and what the server's roles are called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// As the superuser `postgres`; the managed admin is `pgark_managed_admin`.
    Superuser,
    /// As the managed admin, called `postgres` as RDS's default master user is; the superuser
    /// (the provider's, as RDS's `rdsadmin`) is `pgark_rdsadmin`. Scripts written for a
    /// `postgres` owner (pagila's `ALTER ... OWNER TO postgres`) then load as on such a service.
    Managed,
}

impl Profile {
    /// The bootstrap superuser (`initdb -U`).
    pub fn superuser(self) -> &'static str {
        match self {
            Profile::Superuser => "postgres",
            Profile::Managed => "pgark_rdsadmin",
        }
    }

    /// The managed service's admin role: LOGIN, CREATEDB, CREATEROLE, a member of
    /// [`PROVIDER_ROLE`] (and of `pg_read_all_data`/`pg_write_all_data` where the server has
    /// them), never a superuser.
    pub fn managed_admin(self) -> &'static str {
        match self {
            Profile::Superuser => "pgark_managed_admin",
            Profile::Managed => "postgres",
        }
    }

    /// The role tests and pgark connect as.
    pub fn user(self) -> &'static str {
        match self {
            Profile::Superuser => self.superuser(),
            Profile::Managed => self.managed_admin(),
        }
    }
}

/// The provider's group role the managed admin belongs to (as `rds_superuser` or
/// `cloudsqlsuperuser`).
pub const PROVIDER_ROLE: &str = "pgark_provider_admins";

/// The profile chosen by `PGARK_TEST_PROFILE` (`superuser`, the default, or `managed`). Panics on
/// any other value, saying which are accepted.
pub fn profile() -> Profile {
    static PROFILE: OnceLock<Profile> = OnceLock::new();
    *PROFILE.get_or_init(|| match std::env::var("PGARK_TEST_PROFILE").as_deref() {
        Err(_) | Ok("" | "superuser") => Profile::Superuser,
        Ok("managed") => Profile::Managed,
        Ok(other) => panic!(
            "PGARK_TEST_PROFILE={other:?} is not a test profile: use `superuser` (the default) or \
             `managed` (connect as a non-superuser admin role, as on RDS or Cloud SQL)"
        ),
    })
}

/// The statements that create the managed roles on a server of `version_num`, run once as the
/// superuser when the server starts.
pub(crate) fn managed_roles_sql(version_num: i32) -> String {
    let admin = profile().managed_admin();
    let mut sql = format!(
        "CREATE ROLE {PROVIDER_ROLE} NOLOGIN;
         GRANT pg_monitor, pg_signal_backend TO {PROVIDER_ROLE};
         CREATE ROLE {admin} LOGIN CREATEDB CREATEROLE IN ROLE {PROVIDER_ROLE};"
    );
    if version_num >= 140_000 {
        sql.push_str(&format!(
            "GRANT pg_read_all_data, pg_write_all_data TO {admin};"
        ));
    }
    sql
}
