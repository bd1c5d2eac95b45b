//! The target database: making sure it may be restored into, and putting it back as it was when
//! a restore fails.

use pgark_archive::{DdlItem, Manifest, ObjectKind, RoleEntry, TableEntry, Timestamp};
use pgark_pg::{Canceller, ConnConfig, Connection, PgError, drop_statement, quote, user_objects};
use tokio::sync::Mutex;

use super::RestoreOptions;
use super::leftover::{self, Marker};
use super::preflight::{self, Preflight, PreflightPolicy};
use crate::{EngineError, session};

/// How many of a non-empty target's objects the error message lists.
const OBJECTS_NAMED: usize = 5;

#[derive(Debug)]
pub(super) struct Target {
    /// Where the restore's sessions connect: the temporary database with `--create`.
    config: ConnConfig,
    /// The database asked for.
    database: String,
    /// With `--create`, the temporary database the restore builds and renames last.
    temporary: Option<String>,
    /// The session holding the restore's advisory lock (`leftover::lock_target`), on the
    /// maintenance database with `--create`, else on the target; it also marks and renames.
    guard: Connection,
    /// Into an existing database: its comment before the restore marked it, put back last;
    /// `None` when the mark could not be set (only the owner may comment on a database).
    previous_comment: Option<Option<String>>,
    pre_data_committed: std::sync::atomic::AtomicBool,
    /// What the restore runs (sections, owners, privileges).
    parts: super::RestoreParts,
    /// Roles the target lacks that `--create-roles` creates with the schema.
    roles_to_create: Vec<RoleEntry>,
    /// What the restoring role may do (see `preflight`).
    preflight: Preflight,
    /// With `--create`, the source database's properties, given to the new one.
    source_database: Option<pgark_archive::DatabaseEntry>,
    /// Refused decorations (comments, owners, privileges) are left out with a warning rather
    /// than failing the restore: a role that is no superuser, not asked to be strict.
    lenient: bool,
}

impl Target {
    /// Creates the temporary database (`--create`) or checks that the existing one is empty,
    /// clearing what an interrupted restore left where allowed (see `leftover`), then marks what
    /// is restored into as incomplete. Changes nothing else when it fails.
    pub(super) async fn prepare(options: &RestoreOptions) -> Result<Target, EngineError> {
        let roles_to_create = check_roles(options).await?;
        let database = options.target.dbname().to_owned();
        // Marks what is restored into as incomplete, started now.
        let marker = |previous: Option<String>| Marker {
            target: database.clone(),
            backup: options.backup.id.clone(),
            started: Timestamp::now().rfc3339(),
            previous,
        };
        if options.create {
            let guard = session::open(&maintenance_config(&options.target).await?).await?;
            leftover::lock_target(&guard, &database).await?;
            if let Some(comment) = leftover::database_comment(&guard, &database).await? {
                match comment.as_deref().and_then(Marker::parse) {
                    Some(found) if options.force => {
                        drop_database(&guard, &database).await?;
                        tracing::warn!(
                            "dropped database {database:?}: an interrupted restore ({}) left it \
                             incomplete",
                            found.describe()
                        );
                    }
                    Some(found) => {
                        return Err(EngineError::DatabaseIncomplete {
                            database,
                            restore: found.describe(),
                        });
                    }
                    None => return Err(EngineError::DatabaseExists { database }),
                }
            }
            for (name, found) in leftover::find(&guard, &database).await? {
                drop_database(&guard, &name).await?;
                tracing::warn!(
                    "dropped database {name:?}, left by an interrupted restore into {database:?} \
                     ({})",
                    found.describe()
                );
            }
            let temporary = leftover::temporary_name(&database, &options.backup.id);
            let comment = marker(None).comment();
            create_database_like(&guard, &temporary, &options.manifest).await?;
            if let Err(e) = leftover::set_comment(&guard, &temporary, Some(&comment)).await {
                let _ = drop_database(&guard, &temporary).await;
                return Err(e);
            }
            let config = options.target.with_dbname(&temporary);
            let checked = async {
                let connection = session::open(&config).await?;
                let found = preflight::inspect(
                    &connection,
                    &options.manifest,
                    &options.parts,
                    options.policy,
                    &names(&roles_to_create),
                    options.manifest.database.as_ref().map(|d| d.owner.as_str()),
                )
                .await?;
                connection.close().await?;
                Ok::<_, EngineError>(found)
            }
            .await;
            let found = match checked.and_then(|found| match found.refusal() {
                Some(refusal) => Err(refusal),
                None => Ok(found),
            }) {
                Ok(found) => found,
                Err(e) => {
                    let _ = drop_database(&guard, &temporary).await;
                    return Err(e);
                }
            };
            let mut target = Target {
                config,
                database,
                temporary: Some(temporary),
                guard,
                previous_comment: None,
                pre_data_committed: std::sync::atomic::AtomicBool::new(false),
                parts: options.parts.clone(),
                roles_to_create,
                preflight: Preflight::default(),
                source_database: options.manifest.database.clone(),
                lenient: false,
            };
            target.accept(found, options.policy);
            return Ok(target);
        }

        let guard = session::open(&options.target).await?;
        leftover::lock_target(&guard, &database).await?;
        let mut comment = leftover::database_comment(&guard, &database)
            .await?
            .flatten();
        let mut target = Target {
            config: options.target.clone(),
            database: database.clone(),
            temporary: None,
            guard,
            previous_comment: None,
            pre_data_committed: std::sync::atomic::AtomicBool::new(false),
            parts: options.parts.clone(),
            roles_to_create,
            preflight: Preflight::default(),
            source_database: None,
            lenient: false,
        };
        if let Some(found) = comment.as_deref().and_then(Marker::parse) {
            if !options.force {
                return Err(EngineError::TargetIncomplete {
                    database,
                    restore: found.describe(),
                });
            }
            // Of the same backup, what the interrupted restore may have created is known: it
            // goes, as if that restore had failed cleanly. Otherwise the checks below decide.
            if found.backup == options.backup.id {
                target.remove_restored(&options.manifest, true).await?;
            }
            tracing::warn!(
                "restoring into {database:?} although an interrupted restore ({}) marked it \
                 incomplete",
                found.describe()
            );
            comment = found.previous;
        }
        let found = preflight::inspect(
            &target.guard,
            &options.manifest,
            &options.parts,
            options.policy,
            &names(&target.roles_to_create),
            None,
        )
        .await?;
        if let Some(refusal) = found.refusal() {
            return Err(refusal);
        }
        check_empty(
            &target.guard,
            &target.config,
            &options.manifest,
            &options.parts,
            &found.installed_extensions,
        )
        .await?;
        target.accept(found, options.policy);
        let mark = marker(comment.clone()).comment();
        match leftover::set_comment(&target.guard, &database, Some(&mark)).await {
            Ok(()) => target.previous_comment = Some(comment),
            Err(e) => tracing::warn!(
                "database {database:?} cannot be marked as being restored ({e}): if this \
                 restore is killed, nothing will show that the database is incomplete"
            ),
        }
        Ok(target)
    }

    /// Takes the preflight's findings: what it leaves out is left out, each with a warning.
    fn accept(&mut self, found: Preflight, policy: PreflightPolicy) {
        for warning in &found.warnings {
            tracing::warn!("{warning}");
        }
        self.parts.skipped.extend(&found.left_out);
        self.lenient = !found.superuser && !policy.strict;
        self.preflight = found;
    }

    /// The parts the restore runs: those asked for, less what the preflight left out.
    pub(super) fn parts(&self) -> &super::RestoreParts {
        &self.parts
    }

    pub(super) fn config(&self) -> &ConnConfig {
        &self.config
    }

    pub(super) fn database(&self) -> &str {
        &self.database
    }

    /// The restore's last step, once every row, index and constraint is in and checked: the
    /// temporary database takes the target's name, or the target's mark is removed. The
    /// restore's sessions on the temporary database must be closed.
    pub(super) async fn finish(&self) -> Result<(), EngineError> {
        let Some(temporary) = &self.temporary else {
            return match &self.previous_comment {
                Some(previous) => {
                    leftover::set_comment(&self.guard, &self.database, previous.as_deref()).await
                }
                None => Ok(()),
            };
        };
        if database_exists(&self.guard, &self.database).await? {
            return Err(EngineError::DatabaseExists {
                database: self.database.clone(),
            });
        }
        // One transaction: the database never has the target's name and the mark at once, and
        // has its properties as it gets the name.
        let sql = format!(
            "BEGIN; ALTER DATABASE {temporary} RENAME TO {database}; \
             COMMENT ON DATABASE {database} IS NULL",
            temporary = quote::ident(temporary),
            database = quote::ident(&self.database),
        );
        let renamed = async {
            session::execute(&self.guard, &sql, || {
                format!("renaming database {temporary:?} to {:?}", self.database)
            })
            .await?;
            self.set_properties().await?;
            session::execute(&self.guard, "COMMIT", || {
                format!("renaming database {temporary:?} to {:?}", self.database)
            })
            .await
        }
        .await;
        if renamed.is_err() {
            let _ = self.guard.client().batch_execute("ROLLBACK").await;
        }
        renamed
    }

    /// Gives the created database the source's owner, privileges, settings and comment, each
    /// statement on its own: one the role may not run (a setting only a superuser may make,
    /// say) is left out with a warning.
    async fn set_properties(&self) -> Result<(), EngineError> {
        let Some(source) = &self.source_database else {
            return Ok(());
        };
        let set_owner = !self.preflight.database_owner_unsettable;
        for statement in
            super::database::property_statements(source, &self.database, &self.parts, set_owner)
        {
            let outcome = session::under_savepoint(
                &self.guard,
                "setting the database's properties",
                self.guard.client().batch_execute(&statement),
            )
            .await?;
            if let Err(e) = outcome {
                tracing::warn!(
                    "database {:?}: `{statement}` was left out: {}",
                    self.database,
                    preflight::server_message(&e)
                );
            }
        }
        Ok(())
    }

    /// Runs the pre-data items in transactions of as many items as the target's lock table has
    /// room for (each holds the locks of what it created until it commits: one transaction for
    /// 20,000 tables would run a server with default settings out of lock slots). With
    /// `commits`, loads wait for parts of the schema: a transaction also ends once it has run
    /// [`PIPELINED_STATEMENTS`] or more and opened a load, and every commit is reported. A
    /// failure leaves what earlier transactions committed, which [`Target::undo`] removes.
    pub(super) async fn run_pre_data(
        &self,
        connection: &Connection,
        items: &[&DdlItem],
        commits: Option<&SchemaCommits>,
    ) -> Result<(), EngineError> {
        // Function bodies refer to objects created later, as with pg_restore.
        session::execute(connection, "SET check_function_bodies = false", || {
            "preparing the schema session".into()
        })
        .await?;
        let per_transaction = statements_per_transaction(connection).await?;
        session::execute(connection, "BEGIN", || {
            "starting the schema transaction".into()
        })
        .await?;
        let mut role_statements = create_roles_sql(&self.roles_to_create);
        if !self.preflight.superuser {
            // A role that is no superuser may make a role it created an owner only as a member
            // of it (from PostgreSQL 16 the creator holds only ADMIN on it).
            role_statements.extend(
                self.roles_to_create
                    .iter()
                    .map(|role| format!("GRANT {} TO CURRENT_USER", quote::ident(&role.name))),
            );
        }
        for statement in role_statements {
            session::execute(connection, &statement, || {
                "creating the missing roles".into()
            })
            .await?;
        }
        let mut pipeline: Vec<&DdlItem> = Vec::with_capacity(PIPELINED_STATEMENTS);
        for (n, item) in items.iter().enumerate() {
            if self.may_leave_out(item) {
                run_pipelined(connection, &mut pipeline).await?;
                self.run_leniently(connection, item).await?;
            } else {
                pipeline.push(item);
                if pipeline.len() == PIPELINED_STATEMENTS {
                    run_pipelined(connection, &mut pipeline).await?;
                }
            }
            let done = n + 1;
            let opens_loads = commits.is_some_and(|c| c.worth_committing(done));
            if done < items.len() && (done % per_transaction == 0 || opens_loads) {
                run_pipelined(connection, &mut pipeline).await?;
                self.pre_data_committed
                    .store(true, std::sync::atomic::Ordering::SeqCst);
                session::execute(connection, "COMMIT; BEGIN", || {
                    "committing part of the schema".into()
                })
                .await?;
                if let Some(commits) = commits {
                    commits.committed.send_replace(done);
                }
            }
        }
        run_pipelined(connection, &mut pipeline).await?;
        self.pre_data_committed
            .store(true, std::sync::atomic::Ordering::SeqCst);
        session::execute(connection, "COMMIT", || "committing the schema".into()).await?;
        if let Some(commits) = commits {
            commits.committed.send_replace(items.len());
        }
        Ok(())
    }

    /// Whether `item` is left out with a warning if the role is refused it: a comment, owner or
    /// privilege, when lenient (the role does not own an extension the provider installed, say:
    /// the object itself is there).
    fn may_leave_out(&self, item: &DdlItem) -> bool {
        self.lenient
            && matches!(
                item.kind,
                ObjectKind::Comment
                    | ObjectKind::SecurityLabel
                    | ObjectKind::Owner
                    | ObjectKind::Acl
            )
    }

    /// Runs a pre-data item that [may be left out](Self::may_leave_out), under a savepoint.
    async fn run_leniently(
        &self,
        connection: &Connection,
        item: &DdlItem,
    ) -> Result<(), EngineError> {
        let outcome = session::under_savepoint(
            connection,
            &creating(item),
            connection.client().batch_execute(&item.sql),
        )
        .await?;
        match outcome {
            Ok(()) => Ok(()),
            Err(e)
                if e.code() == Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE) =>
            {
                tracing::warn!(
                    "{} left out: role {} may not run it ({})",
                    super::describe(item),
                    self.preflight.role,
                    preflight::server_message(&e)
                );
                Ok(())
            }
            Err(e) => Err(PgError::query(creating(item), e).into()),
        }
    }

    /// Puts the target back as it was and says what was done, for the error message.
    pub(super) async fn undo(&self, manifest: &Manifest) -> String {
        let outcome = match &self.temporary {
            Some(temporary) => drop_database(&self.guard, temporary).await.map(|()| {
                format!(
                    "database {:?} was not created (the restore's temporary database {temporary:?} was dropped)",
                    self.database
                )
            }),
            None => {
                let schema_created = self
                    .pre_data_committed
                    .load(std::sync::atomic::Ordering::SeqCst);
                let removed = self.remove_restored(manifest, schema_created).await;
                let unmarked = self.finish().await;
                match (removed, unmarked) {
                    (Ok(None), Ok(())) => return "the target was not changed".to_owned(),
                    (Ok(Some(done)), Ok(())) => Ok(done),
                    (Err(e), _) | (_, Err(e)) => Err(e),
                }
            }
        };
        match outcome {
            Ok(done) => format!("the target was left as it was ({done})"),
            Err(e) => format!("putting the target back failed as well: {e}"),
        }
    }

    /// Removes from an existing target what a restore of `manifest` may have put there — its
    /// schema too when `schema_created` — saying what was done (`None`: nothing had been).
    async fn remove_restored(
        &self,
        manifest: &Manifest,
        schema_created: bool,
    ) -> Result<Option<String>, EngineError> {
        if !self.parts.pre_data && self.parts.data {
            self.truncate_tables(manifest).await?;
            return Ok(Some(format!(
                "the restored tables and large objects in {:?} were emptied again",
                self.database
            )));
        }
        if !self.parts.pre_data || !schema_created {
            return Ok(None);
        }
        self.drop_created_objects(manifest).await?;
        Ok(Some(format!(
            "everything the restore created in {:?} was removed",
            self.database
        )))
    }

    /// Drops what the restore created, in transactions sized like the schema's (see
    /// [`Target::run_pre_data`]).
    async fn drop_created_objects(&self, manifest: &Manifest) -> Result<(), EngineError> {
        let connection = session::open(&self.config).await?;
        let per_transaction = statements_per_transaction(&connection).await?;
        let mut statements: Vec<String> = manifest
            .schema
            .iter()
            .rev()
            .filter(|i| self.parts.includes(i))
            .filter(|i| {
                !(i.kind == ObjectKind::Extension
                    && self.preflight.installed_extensions.contains(&i.name))
            })
            .filter_map(drop_statement)
            .collect();
        statements.extend(
            self.roles_to_create
                .iter()
                .map(|role| format!("DROP ROLE IF EXISTS {}", quote::ident(&role.name))),
        );
        for batch in statements.chunks(per_transaction) {
            let sql = format!("BEGIN;\n{};\nCOMMIT;", batch.join(";\n"));
            session::execute(&connection, &sql, || {
                "removing what the failed restore created".into()
            })
            .await?;
        }
        Ok(())
    }
}

/// How a schema run tells loads waiting for parts of it how far it has committed.
pub(super) struct SchemaCommits {
    /// Where committing opens some table's load (see [`super::gates::LoadGates::positions`]).
    opens_at: Vec<usize>,
    /// How many of the pre-data statements have committed.
    committed: tokio::sync::watch::Sender<usize>,
}

impl SchemaCommits {
    pub(super) fn new(opens_at: Vec<usize>) -> (Self, tokio::sync::watch::Receiver<usize>) {
        let (committed, receiver) = tokio::sync::watch::channel(0);
        (
            SchemaCommits {
                opens_at,
                committed,
            },
            receiver,
        )
    }

    /// Whether to commit once the first `done` statements have run: when that opens a load and
    /// [`PIPELINED_STATEMENTS`] or more have run since the last commit.
    fn worth_committing(&self, done: usize) -> bool {
        let committed = *self.committed.borrow();
        let first_after = self.opens_at.partition_point(|&p| p <= committed);
        done - committed >= PIPELINED_STATEMENTS
            && self.opens_at.get(first_after).is_some_and(|&p| p <= done)
    }
}

/// Pre-data statements sent together, each as a query of its own, without waiting for the one
/// before to be answered: the server runs them in order all the same, and a schema of thousands
/// of objects costs a round trip per few dozen of them instead of one each (what a server
/// across a network, a managed one, makes a restore wait for). A statement that fails aborts
/// the transaction, so the ones after it fail too: the first failure is the one reported.
const PIPELINED_STATEMENTS: usize = 64;

/// Runs the `pipeline`d items, in order, and empties it.
async fn run_pipelined(
    connection: &Connection,
    pipeline: &mut Vec<&DdlItem>,
) -> Result<(), EngineError> {
    let client = connection.client();
    let outcomes =
        futures::future::join_all(pipeline.iter().map(|item| client.batch_execute(&item.sql)))
            .await;
    for (item, outcome) in pipeline.drain(..).zip(outcomes) {
        outcome.map_err(|e| PgError::query(creating(item), e))?;
    }
    Ok(())
}

/// What running a pre-data item does, for its errors.
fn creating(item: &DdlItem) -> String {
    format!("creating {}", super::describe(item))
}

/// Statements (each creating, dropping or emptying one object) per transaction when there are
/// many: a transaction holds each object's lock until it ends, so one transaction for them all
/// would run a target with tens of thousands of tables out of lock slots ("out of shared
/// memory"), as `pg_restore --transaction-size` avoids. An eighth of the free slots, allowing
/// for a few locks each (a table, its sequence, its TOAST table and index).
async fn statements_per_transaction(connection: &Connection) -> Result<usize, EngineError> {
    let lock_table = pgark_pg::lock_table(connection.client()).await?;
    let free = lock_table.capacity().saturating_sub(lock_table.in_use);
    Ok(usize::try_from(free / 8)
        .unwrap_or(usize::MAX)
        .clamp(16, 10_000))
}

impl Target {
    /// Undoes a `--data-only` restore, whose tables and large objects were empty before it.
    async fn truncate_tables(&self, manifest: &Manifest) -> Result<(), EngineError> {
        let connection = session::open(&self.config).await?;
        let large_objects = large_objects_with_contents(manifest);
        if !large_objects.is_empty() {
            // lo_open's descriptors last until the end of the transaction; 131072 is INV_WRITE.
            connection
                .client()
                .batch_execute("BEGIN")
                .await
                .map_err(|e| PgError::query("emptying the restored large objects", e))?;
            connection
                .client()
                .execute(
                    "SELECT pg_catalog.lo_truncate(pg_catalog.lo_open(o, 131072), 0) \
                     FROM pg_catalog.unnest($1::pg_catalog.oid[]) o \
                     WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_largeobject_metadata m \
                                   WHERE m.oid = o)",
                    &[&large_objects],
                )
                .await
                .map_err(|e| PgError::query("emptying the restored large objects", e))?;
            session::execute(&connection, "COMMIT", || {
                "emptying the restored large objects".into()
            })
            .await?;
        }
        let what = || "emptying the tables the failed restore loaded".to_owned();
        let (filtered, whole): (Vec<&TableEntry>, Vec<&TableEntry>) =
            manifest.tables.iter().partition(|t| t.row_filter.is_some());
        if !whole.is_empty() {
            let tables: Vec<String> = whole
                .iter()
                .map(|t| quote::qualified(&t.schema, &t.name))
                .collect();
            let per_transaction = statements_per_transaction(&connection).await?;
            for batch in tables.chunks(per_transaction) {
                let sql = format!("TRUNCATE ONLY {}", batch.join(", "));
                session::execute(&connection, &sql, what).await?;
            }
        }
        // An extension's configuration table keeps the extension's own rows: only the rows of
        // its filter go, the tables whose rows loaded last (referencing the others) first.
        let mut filtered = filtered;
        filtered.sort_by_key(|t| std::cmp::Reverse(t.item));
        for table in filtered {
            let sql = format!(
                "DELETE FROM ONLY {} {}",
                quote::qualified(&table.schema, &table.name),
                table.row_filter.as_deref().unwrap_or_default()
            );
            session::execute(&connection, &sql, what).await?;
        }
        Ok(())
    }
}

/// Checks up front that every role the restored items name exists in the target; returns those
/// `--create-roles` is to create, or fails listing them.
pub(super) async fn check_roles(options: &RestoreOptions) -> Result<Vec<RoleEntry>, EngineError> {
    let needed = options.parts.roles_needed(&options.manifest);
    if needed.is_empty() {
        return Ok(Vec::new());
    }
    let config = if options.create {
        maintenance_config(&options.target).await?
    } else {
        options.target.clone()
    };
    let connection = session::open(&config).await?;
    let rows = connection
        .client()
        .query(
            "SELECT n FROM pg_catalog.unnest($1::text[]) n \
             WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = n) \
             ORDER BY 1",
            &[&needed],
        )
        .await
        .map_err(|e| PgError::query("checking that the backup's roles exist in the target", e))?;
    let missing: Vec<String> = rows.iter().map(|r| r.get::<_, String>(0)).collect();
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    if !options.parts.create_roles {
        return Err(EngineError::MissingRoles {
            roles: missing.join(", "),
        });
    }
    Ok(missing
        .iter()
        .map(|name| {
            options
                .manifest
                .roles
                .iter()
                .find(|r| &r.name == name)
                .cloned()
                .unwrap_or_else(|| RoleEntry {
                    name: name.clone(),
                    attributes: Vec::new(),
                    member_of: Vec::new(),
                })
        })
        .collect())
}

/// `CREATE ROLE` for each role (without a password, and without LOGIN unless the source had it),
/// then the memberships among them.
fn create_roles_sql(roles: &[RoleEntry]) -> Vec<String> {
    let mut statements: Vec<String> = roles
        .iter()
        .map(|r| {
            let attributes = if r.attributes.is_empty() {
                String::new()
            } else {
                format!(" {}", r.attributes.join(" "))
            };
            format!("CREATE ROLE {}{attributes}", quote::ident(&r.name))
        })
        .collect();
    for r in roles {
        for group in &r.member_of {
            statements.push(format!(
                "GRANT {} TO {}",
                quote::ident(group),
                quote::ident(&r.name)
            ));
        }
    }
    statements
}

/// The names of `roles`.
fn names(roles: &[RoleEntry]) -> Vec<String> {
    roles.iter().map(|r| r.name.clone()).collect()
}

/// The target must be empty for what the restore puts there: without the schema, the tables
/// it loads; with it, the whole database (the backup's extensions aside: a provider may have
/// installed them in every new database).
pub(super) async fn check_empty(
    connection: &Connection,
    config: &ConnConfig,
    manifest: &Manifest,
    parts: &super::RestoreParts,
    installed_extensions: &[String],
) -> Result<(), EngineError> {
    if !parts.pre_data {
        return check_tables_empty(config, manifest, parts.data).await;
    }
    let found = user_objects(connection.client(), OBJECTS_NAMED, installed_extensions).await?;
    if found.is_empty() {
        return Ok(());
    }
    Err(EngineError::TargetNotEmpty {
        database: config.dbname().to_owned(),
        objects: found.join(", "),
    })
}

/// The large objects a restore writes contents into: those the backup created, when it holds
/// contents at all.
fn large_objects_with_contents(manifest: &Manifest) -> Vec<u32> {
    if manifest
        .large_objects
        .as_ref()
        .is_none_or(|lo| lo.chunks.is_empty())
    {
        return Vec::new();
    }
    manifest
        .schema
        .iter()
        .filter(|item| item.kind == ObjectKind::LargeObject)
        .filter_map(|item| item.name.parse().ok())
        .collect()
}

/// `--data-only` loads into existing tables and large objects, which must be empty so that a
/// failure can empty them again.
async fn check_tables_empty(
    config: &ConnConfig,
    manifest: &Manifest,
    loading: bool,
) -> Result<(), EngineError> {
    let large_objects = large_objects_with_contents(manifest);
    if !loading || (manifest.tables.is_empty() && large_objects.is_empty()) {
        return Ok(());
    }
    let connection = session::open(config).await?;
    let mut with_rows = Vec::new();
    if !large_objects.is_empty() {
        let rows = connection
            .client()
            .query(
                "SELECT o FROM pg_catalog.unnest($1::pg_catalog.oid[]) o \
                 WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_largeobject_metadata m \
                               WHERE m.oid = o) \
                   AND pg_catalog.length(pg_catalog.lo_get(o, 0, 1)) > 0 \
                 ORDER BY 1 LIMIT $2",
                &[&large_objects, &(OBJECTS_NAMED as i64)],
            )
            .await
            .map_err(|e| PgError::query("checking that the large objects are empty", e))?;
        for row in rows {
            let oid: u32 = row
                .try_get(0)
                .map_err(|e| PgError::query("checking that the large objects are empty", e))?;
            with_rows.push(format!("large object {oid} has contents"));
        }
    }
    for table in &manifest.tables {
        let name = quote::qualified(&table.schema, &table.name);
        // Of an extension's configuration table, only the rows its filter selects count: the
        // others are the extension's own.
        let filter = table.row_filter.as_deref().unwrap_or_default();
        let sql = format!("SELECT EXISTS (SELECT 1 FROM ONLY {name} {filter})");
        let row = connection
            .client()
            .query_one(&sql, &[])
            .await
            .map_err(|e| PgError::query(format!("checking that table {name} is empty"), e))?;
        if row.get::<_, bool>(0) {
            with_rows.push(format!("table {name} has rows"));
        }
    }
    if with_rows.is_empty() {
        Ok(())
    } else {
        Err(EngineError::TargetNotEmpty {
            database: config.dbname().to_owned(),
            objects: with_rows.join(", "),
        })
    }
}

/// The database to connect to for CREATE/DROP DATABASE: `postgres`, else `template1`, as
/// `createdb` does.
pub(crate) async fn maintenance_config(target: &ConnConfig) -> Result<ConnConfig, EngineError> {
    let postgres = target.with_dbname("postgres");
    match session::open(&postgres).await {
        Ok(_) => Ok(postgres),
        Err(EngineError::Pg(PgError::DatabaseNotFound { .. })) => {
            Ok(target.with_dbname("template1"))
        }
        Err(e) => Err(e),
    }
}

pub(super) async fn database_exists(
    connection: &Connection,
    database: &str,
) -> Result<bool, EngineError> {
    let row = connection
        .client()
        .query_opt(
            "SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1",
            &[&database],
        )
        .await
        .map_err(|e| PgError::query("checking whether the target database exists", e))?;
    Ok(row.is_some())
}

/// Creates `database` with the encoding and locale of the backup's source database.
pub(super) async fn create_database_like(
    connection: &Connection,
    database: &str,
    manifest: &Manifest,
) -> Result<(), EngineError> {
    let locale = match &manifest.database {
        Some(source) => {
            let (options, warning) = super::database::locale_options(
                source,
                pgark_pg::server_version_num(connection.client()).await?,
            );
            if let Some(warning) = warning {
                tracing::warn!("{warning}");
            }
            options
        }
        None => String::new(),
    };
    let sql = format!(
        "CREATE DATABASE {} TEMPLATE template0 ENCODING {}{locale}",
        quote::ident(database),
        quote::literal(&manifest.source.encoding)
    );
    session::execute(connection, &sql, || {
        format!("creating database {database:?}")
    })
    .await
}

/// Drops `database` (its sessions terminated), from `connection`'s session on another one.
pub(crate) async fn drop_database(
    connection: &Connection,
    database: &str,
) -> Result<(), EngineError> {
    let sql = format!(
        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
        quote::ident(database)
    );
    session::execute(connection, &sql, || {
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
