//! The target database: making sure it may be restored into, and putting it back as it was when
//! a restore fails.

use pgark_archive::{DdlItem, Manifest};
use pgark_pg::{Canceller, ConnConfig, Connection, PgError, drop_statement, quote, user_objects};
use tokio::sync::Mutex;

use super::RestoreOptions;
use crate::{EngineError, session};

/// How many of a non-empty target's objects the error message lists.
const OBJECTS_NAMED: usize = 5;

#[derive(Debug)]
pub(super) struct Target {
    config: ConnConfig,
    database: String,
    /// Set when this restore created the database (and so may drop it again).
    maintenance: Option<ConnConfig>,
    pre_data_committed: std::sync::atomic::AtomicBool,
}

impl Target {
    /// Creates the database (`--create`) or checks that the existing one is empty. Changes
    /// nothing when it fails.
    pub(super) async fn prepare(options: &RestoreOptions) -> Result<Target, EngineError> {
        let config = options.target.clone();
        let database = config.dbname().to_owned();
        let maintenance = if options.create {
            let maintenance = maintenance_config(&config).await?;
            create_database(&maintenance, &database, &options.manifest.source.encoding).await?;
            Some(maintenance)
        } else {
            let connection = session::open(&config).await?;
            let found = user_objects(connection.client(), OBJECTS_NAMED).await?;
            if !found.is_empty() {
                return Err(EngineError::TargetNotEmpty {
                    database,
                    objects: found.join(", "),
                });
            }
            None
        };
        Ok(Target {
            config,
            database,
            maintenance,
            pre_data_committed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub(super) fn config(&self) -> &ConnConfig {
        &self.config
    }

    pub(super) fn database(&self) -> &str {
        &self.database
    }

    /// Runs the pre-data items in one transaction, so a failure among them leaves nothing.
    pub(super) async fn run_pre_data(
        &self,
        connection: &Connection,
        items: &[&DdlItem],
    ) -> Result<(), EngineError> {
        session::execute(connection, "BEGIN", || {
            "starting the schema transaction".into()
        })
        .await?;
        for item in items {
            session::execute(connection, &item.sql, || {
                format!("creating {}", super::describe(item))
            })
            .await?;
        }
        session::execute(connection, "COMMIT", || "committing the schema".into()).await?;
        self.pre_data_committed
            .store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// Puts the target back as it was and says what was done, for the error message.
    pub(super) async fn undo(&self, manifest: &Manifest) -> String {
        let outcome = match &self.maintenance {
            Some(maintenance) => drop_database(maintenance, &self.database).await.map(|()| {
                format!(
                    "database {:?}, which the restore created, was dropped",
                    self.database
                )
            }),
            None if !self
                .pre_data_committed
                .load(std::sync::atomic::Ordering::SeqCst) =>
            {
                return "the target was not changed".to_owned();
            }
            None => self.drop_created_objects(manifest).await.map(|()| {
                format!(
                    "everything the restore created in {:?} was removed",
                    self.database
                )
            }),
        };
        match outcome {
            Ok(done) => format!("the target was left as it was ({done})"),
            Err(e) => format!("putting the target back failed as well: {e}"),
        }
    }

    async fn drop_created_objects(&self, manifest: &Manifest) -> Result<(), EngineError> {
        let connection = session::open(&self.config).await?;
        let mut sql = String::from("BEGIN;\n");
        for statement in manifest.schema.iter().rev().filter_map(drop_statement) {
            sql.push_str(&statement);
            sql.push_str(";\n");
        }
        sql.push_str("COMMIT;");
        session::execute(&connection, &sql, || {
            "removing what the failed restore created".into()
        })
        .await
    }
}

/// The database to connect to for CREATE/DROP DATABASE: `postgres`, else `template1`, as
/// `createdb` does.
async fn maintenance_config(target: &ConnConfig) -> Result<ConnConfig, EngineError> {
    let postgres = target.with_dbname("postgres");
    match session::open(&postgres).await {
        Ok(_) => Ok(postgres),
        Err(EngineError::Pg(PgError::DatabaseNotFound { .. })) => {
            Ok(target.with_dbname("template1"))
        }
        Err(e) => Err(e),
    }
}

async fn create_database(
    maintenance: &ConnConfig,
    database: &str,
    encoding: &str,
) -> Result<(), EngineError> {
    let connection = session::open(maintenance).await?;
    let exists = connection
        .client()
        .query_opt(
            "SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1",
            &[&database],
        )
        .await
        .map_err(|e| PgError::query("checking whether the target database exists", e))?;
    if exists.is_some() {
        return Err(EngineError::DatabaseExists {
            database: database.to_owned(),
        });
    }
    let sql = format!(
        "CREATE DATABASE {} TEMPLATE template0 ENCODING {}",
        quote::ident(database),
        quote::literal(encoding)
    );
    session::execute(&connection, &sql, || {
        format!("creating database {database:?}")
    })
    .await
}

async fn drop_database(maintenance: &ConnConfig, database: &str) -> Result<(), EngineError> {
    let connection = session::open(maintenance).await?;
    let sql = format!(
        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
        quote::ident(database)
    );
    session::execute(&connection, &sql, || {
        format!("dropping database {database:?}")
    })
    .await
}

/// Every session a restore opens, so that a failing restore can cancel what they are running
/// before it removes what they created (their locks would block the removal otherwise).
#[derive(Debug, Default)]
pub(super) struct SessionRegistry {
    cancellers: Mutex<Vec<Canceller>>,
}

impl SessionRegistry {
    pub(super) async fn open(&self, config: &ConnConfig) -> Result<Connection, EngineError> {
        let connection = session::open(config).await?;
        self.cancellers.lock().await.push(connection.canceller());
        Ok(connection)
    }

    pub(super) async fn cancel_all(&self) {
        for canceller in self.cancellers.lock().await.iter() {
            // A session that is idle or already gone has nothing to cancel.
            let _ = canceller.cancel().await;
        }
    }
}
