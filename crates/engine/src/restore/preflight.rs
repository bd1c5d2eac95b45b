//! What a restore as the target's role cannot do, found before anything is written: on a
//! managed service (RDS, Cloud SQL, Azure) the restoring role is no superuser, so extensions it
//! may not create, objects only a superuser creates and owners it may not set would otherwise
//! stop the restore half-way. What can be left out safely is, with a warning each; what cannot
//! stops the restore up front, every problem named at once.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use pgark_archive::{DdlItem, Manifest, ObjectKind};
use pgark_pg::{Connection, PgError, quote};

use super::{RestoreParts, describe};
use crate::{EngineError, session};

/// How a restore treats what its role cannot do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PreflightPolicy {
    /// Refuse objects only a superuser can create instead of leaving them out.
    pub strict: bool,
    /// Leave the restoring role owning what it may not give to the recorded owner, instead of
    /// refusing.
    pub skip_unsettable_owners: bool,
}

/// What the checks found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preflight {
    /// The restoring role (`current_user`).
    pub role: String,
    pub superuser: bool,
    /// The ids of the items the restore leaves out.
    pub left_out: BTreeSet<u32>,
    /// One sentence for each object left out or owner not set, saying which and why (what
    /// only decorates an object left out goes with it unsaid).
    pub warnings: Vec<String>,
    /// What stops the restore: extensions, objects that need a superuser and that others need,
    /// owners that cannot be set.
    pub problems: Vec<String>,
    /// Whether owners the role may not set are among the problems.
    pub unsettable_owners: bool,
    /// The created database's recorded owner is one the role may not set (and is skipped).
    pub database_owner_unsettable: bool,
    /// The backup's extensions the target has already: not created, and not dropped if the
    /// restore fails.
    pub installed_extensions: Vec<String>,
}

impl Preflight {
    /// The error that stops the restore, if anything does.
    pub fn refusal(&self) -> Option<EngineError> {
        (!self.problems.is_empty()).then(|| EngineError::RestoreNotPermitted {
            role: self.role.clone(),
            problems: self.problems.clone(),
            unsettable_owners: self.unsettable_owners,
        })
    }
}

/// The kinds of statement that only decorate an object the restore created: when the object
/// is left out, so are they.
fn decorates(kind: ObjectKind) -> bool {
    matches!(
        kind,
        ObjectKind::Comment | ObjectKind::SecurityLabel | ObjectKind::Owner | ObjectKind::Acl
    )
}

/// Checks, on `connection` (to the database the restore writes into, or one like it), what the
/// restore of `parts` of `manifest` needs of its role. `created_roles` are the roles the
/// restore creates (and grants to its role). Leaves nothing behind: trials run in a
/// transaction rolled back at the end.
pub(super) async fn inspect(
    connection: &Connection,
    manifest: &Manifest,
    parts: &RestoreParts,
    policy: PreflightPolicy,
    created_roles: &[String],
    database_owner: Option<&str>,
) -> Result<Preflight, EngineError> {
    let client = connection.client();
    let rights = pgark_pg::restore_rights(client).await?;
    let mut found = Preflight {
        role: rights.role.clone(),
        superuser: rights.superuser,
        ..Preflight::default()
    };
    let included: Vec<&DdlItem> = manifest
        .schema
        .iter()
        .filter(|item| parts.includes(item))
        .collect();
    let extensions: Vec<&DdlItem> = included
        .iter()
        .copied()
        .filter(|item| item.kind == ObjectKind::Extension)
        .collect();
    let names: Vec<String> = extensions.iter().map(|e| e.name.clone()).collect();
    found.installed_extensions = pgark_pg::installed_extensions(client, &names).await?;
    if parts.pre_data {
        check_extensions(connection, &included, &extensions, &mut found).await?;
    }
    if rights.superuser {
        return Ok(found);
    }

    // Objects only a superuser creates: left out with what only decorates them, unless
    // something the restore creates needs them.
    let mut left_out: HashMap<u32, String> = HashMap::new();
    for item in &included {
        if let Some(reason) = pgark_pg::superuser_only(item, &rights.untrusted_languages) {
            let what = describe(item);
            if policy.strict {
                found.problems.push(format!(
                    "{what} needs a superuser (only superusers create {reason})"
                ));
            } else {
                found.left_out.insert(item.id);
                found.warnings.push(format!(
                    "{what} left out: only a superuser can create {reason}"
                ));
            }
            left_out.insert(item.id, what);
            continue;
        }
        let Some(needed) = item.deps.iter().find_map(|d| left_out.get(d)).cloned() else {
            continue;
        };
        if decorates(item.kind) {
            found.left_out.insert(item.id);
            left_out.insert(item.id, needed);
        } else if !policy.strict {
            found.problems.push(format!(
                "{} needs {needed}, which only a superuser can create",
                describe(item)
            ));
        }
    }

    // Owners the role may not give objects to.
    let mut owners: BTreeMap<&str, Vec<&DdlItem>> = BTreeMap::new();
    for item in &included {
        if item.kind == ObjectKind::Owner
            && !left_out.contains_key(&item.id)
            && let Some(role) = item.roles.first()
        {
            owners.entry(role.as_str()).or_default().push(item);
        }
    }
    let database_owner = database_owner.filter(|_| !parts.no_owner);
    let named: Vec<String> = owners
        .keys()
        .copied()
        .chain(database_owner)
        .filter(|r| !created_roles.iter().any(|c| c == r))
        .map(str::to_owned)
        .collect::<BTreeSet<String>>()
        .into_iter()
        .collect();
    for role in pgark_pg::unsettable_owners(client, &named).await? {
        if database_owner == Some(role.as_str()) {
            let what = "the created database";
            if policy.skip_unsettable_owners {
                found.database_owner_unsettable = true;
                found.warnings.push(format!(
                    "owner {} of {what} not set: role {} may not give objects to it, and keeps it",
                    quote::ident(&role),
                    found.role
                ));
            } else {
                found.problems.push(format!(
                    "role {} may not make {} the owner of {what} (it is not a member of {})",
                    found.role,
                    quote::ident(&role),
                    quote::ident(&role),
                ));
                found.unsettable_owners = true;
            }
        }
        let Some(items) = owners.get(role.as_str()) else {
            continue;
        };
        if policy.skip_unsettable_owners {
            let objects: Vec<String> = items.iter().map(|i| owned_object(i)).collect();
            found.left_out.extend(items.iter().map(|i| i.id));
            found.warnings.push(format!(
                "owner {} of {} not set: role {} may not give objects to it, and keeps them",
                quote::ident(&role),
                objects.join(", "),
                found.role
            ));
        } else {
            let objects: Vec<String> = items.iter().map(|i| owned_object(i)).collect();
            found.problems.push(format!(
                "role {} may not make {} the owner of {} (it is not a member of {})",
                found.role,
                quote::ident(&role),
                objects.join(", "),
                quote::ident(&role),
            ));
            found.unsettable_owners = true;
        }
    }
    Ok(found)
}

/// Names what an `ALTER ... OWNER TO` item gives away: the object it decorates.
fn owned_object(item: &DdlItem) -> String {
    match &item.schema {
        Some(schema) => format!("{schema}.{}", item.name),
        None => item.name.clone(),
    }
}

/// Extensions the target server lacks, and those the role may not create: each tried in a
/// transaction that is rolled back, after the schemas they go into.
async fn check_extensions(
    connection: &Connection,
    included: &[&DdlItem],
    extensions: &[&DdlItem],
    found: &mut Preflight,
) -> Result<(), EngineError> {
    if extensions.is_empty() {
        return Ok(());
    }
    let client = connection.client();
    let names: Vec<String> = extensions.iter().map(|e| e.name.clone()).collect();
    let missing = pgark_pg::unavailable_extensions(client, &names).await?;
    for name in &missing {
        found.problems.push(format!(
            "extension {} is not installed on the target server (it is not in \
             pg_available_extensions)",
            quote::ident(name)
        ));
    }
    let schemas: BTreeSet<u32> = extensions.iter().flat_map(|e| e.deps.clone()).collect();
    let context = "trying the backup's extensions in a transaction rolled back";
    session::execute(connection, "BEGIN", || context.to_owned()).await?;
    let outcome = async {
        for item in included
            .iter()
            .filter(|i| i.kind == ObjectKind::Schema && schemas.contains(&i.id))
        {
            let exists = client
                .query_opt(
                    "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1",
                    &[&item.name],
                )
                .await
                .map_err(|e| PgError::query(context, e))?
                .is_some();
            if exists {
                continue;
            }
            if let Err(e) =
                session::under_savepoint(connection, context, client.batch_execute(&item.sql))
                    .await?
            {
                found.problems.push(format!(
                    "{} cannot be created: {}",
                    describe(item),
                    server_message(&e)
                ));
            }
        }
        for item in extensions {
            if missing.contains(&item.name) {
                continue;
            }
            if let Err(e) =
                session::under_savepoint(connection, context, client.batch_execute(&item.sql))
                    .await?
            {
                found.problems.push(format!(
                    "extension {} cannot be created by role {}: {}",
                    quote::ident(&item.name),
                    found.role,
                    server_message(&e)
                ));
            }
        }
        Ok::<(), EngineError>(())
    }
    .await;
    session::execute(connection, "ROLLBACK", || context.to_owned()).await?;
    outcome
}

/// The server's message for a refused statement, with its hint.
pub(crate) fn server_message(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => match db.hint() {
            Some(hint) => format!("{} ({hint})", db.message()),
            None => db.message().to_owned(),
        },
        None => error.to_string(),
    }
}
