//! Restoring a globals backup (`dump --all`'s roles, memberships and tablespaces) into a
//! server, idempotently: a role that exists is altered to match, one that does not is created;
//! memberships are granted again with their options; a tablespace is created where missing.
//! What the restoring role may not do (alter a superuser, set an attribute only a superuser
//! sets) is left out with a warning each, or stops the restore with `strict`.

use pgark_archive::{GlobalsEntry, Membership};
use pgark_pg::quote::{ident, literal};
use pgark_pg::{ConnConfig, Connection, PgError};

use crate::restore::set_clause;
use crate::{EngineError, session};

/// What applying a globals backup did (or, for a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GlobalsReport {
    /// The role it ran as (`current_user`), which is never altered.
    pub role: String,
    /// Every statement, in order.
    pub statements: Vec<String>,
    /// The statements the server refused, each with its message (left out).
    pub refused: Vec<String>,
}

/// One statement and whether it may run inside a transaction.
struct Statement {
    sql: String,
    transactional: bool,
}

/// Applies `globals` to the server `config` reaches (or, with `dry_run`, only plans it). With
/// `strict`, the first refused statement rolls back the roles and memberships and fails.
pub async fn apply(
    config: &ConnConfig,
    globals: &GlobalsEntry,
    strict: bool,
    dry_run: bool,
) -> Result<GlobalsReport, EngineError> {
    let connection = session::open(config).await?;
    let rights = pgark_pg::restore_rights(connection.client()).await?;
    let statements = plan(&connection, globals, &rights).await?;
    let mut report = GlobalsReport {
        role: rights.role.clone(),
        statements: statements.iter().map(|s| s.sql.clone()).collect(),
        refused: Vec::new(),
    };
    if dry_run {
        return Ok(report);
    }
    let context = "restoring the instance's roles";
    session::execute(&connection, "BEGIN", || context.to_owned()).await?;
    let mut in_transaction = true;
    for statement in &statements {
        if !statement.transactional && in_transaction {
            session::execute(&connection, "COMMIT", || context.to_owned()).await?;
            in_transaction = false;
        }
        let outcome = if in_transaction {
            session::under_savepoint(
                &connection,
                context,
                connection.client().batch_execute(&statement.sql),
            )
            .await?
        } else {
            connection.client().batch_execute(&statement.sql).await
        };
        if let Err(e) = outcome {
            let refusal = format!(
                "`{}`: {}",
                statement.sql,
                crate::restore::server_message(&e)
            );
            if strict {
                if in_transaction {
                    let _ = connection.client().batch_execute("ROLLBACK").await;
                }
                return Err(EngineError::GlobalsRefused {
                    role: rights.role,
                    refusal,
                });
            }
            tracing::warn!("left out {refusal}");
            report.refused.push(refusal);
        }
    }
    if in_transaction {
        session::execute(&connection, "COMMIT", || context.to_owned()).await?;
    }
    Ok(report)
}

/// The statements that make the server's roles, memberships and tablespaces those of
/// `globals`, given which of them exist.
async fn plan(
    connection: &Connection,
    globals: &GlobalsEntry,
    rights: &pgark_pg::RestoreRights,
) -> Result<Vec<Statement>, EngineError> {
    let client = connection.client();
    let what = "reading the target's roles and tablespaces";
    let existing_roles: Vec<String> = client
        .query("SELECT rolname::text FROM pg_catalog.pg_roles", &[])
        .await
        .map_err(|e| PgError::query(what, e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let existing_tablespaces: Vec<String> = client
        .query("SELECT spcname::text FROM pg_catalog.pg_tablespace", &[])
        .await
        .map_err(|e| PgError::query(what, e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let version = pgark_pg::server_version_num(client).await?;

    let sql = |sql: String| Statement {
        sql,
        transactional: true,
    };
    let mut statements = Vec::new();
    // The restoring role itself is never altered: it is what the restore runs as.
    let roles: Vec<_> = globals
        .roles
        .iter()
        .filter(|r| r.name != rights.role)
        .collect();
    for role in &roles {
        // Only a superuser may even state SUPERUSER, REPLICATION or BYPASSRLS (their NO
        // forms are what a role gets anyway).
        let attributes: Vec<&str> = role
            .attributes
            .iter()
            .map(String::as_str)
            .filter(|a| {
                rights.superuser || !matches!(*a, "NOSUPERUSER" | "NOREPLICATION" | "NOBYPASSRLS")
            })
            .collect();
        let verb = if existing_roles.contains(&role.name) {
            "ALTER"
        } else {
            "CREATE"
        };
        statements.push(sql(format!(
            "{verb} ROLE {} WITH {}",
            ident(&role.name),
            attributes.join(" ")
        )));
    }
    for membership in &globals.memberships {
        statements.push(sql(grant_membership(membership, version)));
    }
    for role in &roles {
        if let Some(hash) = &role.password_hash {
            statements.push(sql(format!(
                "ALTER ROLE {} PASSWORD {}",
                ident(&role.name),
                literal(hash)
            )));
        }
        for setting in &role.settings {
            statements.push(sql(format!(
                "ALTER ROLE {} SET {}",
                ident(&role.name),
                set_clause(setting)
            )));
        }
        if let Some(comment) = &role.comment {
            statements.push(sql(format!(
                "COMMENT ON ROLE {} IS {}",
                ident(&role.name),
                literal(comment)
            )));
        }
    }
    for tablespace in &globals.tablespaces {
        let name = ident(&tablespace.name);
        if existing_tablespaces.contains(&tablespace.name) {
            statements.push(Statement {
                sql: format!(
                    "ALTER TABLESPACE {name} OWNER TO {}",
                    ident(&tablespace.owner)
                ),
                transactional: false,
            });
        } else {
            // CREATE TABLESPACE may not run in a transaction; its directory must exist on the
            // target's host.
            statements.push(Statement {
                sql: format!(
                    "CREATE TABLESPACE {name} OWNER {} LOCATION {}",
                    ident(&tablespace.owner),
                    literal(&tablespace.location)
                ),
                transactional: false,
            });
        }
        if !tablespace.options.is_empty() {
            statements.push(Statement {
                sql: format!(
                    "ALTER TABLESPACE {name} SET ({})",
                    tablespace.options.join(", ")
                ),
                transactional: false,
            });
        }
        if let Some(comment) = &tablespace.comment {
            statements.push(Statement {
                sql: format!("COMMENT ON TABLESPACE {name} IS {}", literal(comment)),
                transactional: false,
            });
        }
    }
    Ok(statements)
}

/// `GRANT role TO member` with the membership's options: ADMIN, INHERIT and SET on a target of
/// PostgreSQL 16 or later, ADMIN OPTION before.
fn grant_membership(membership: &Membership, target_version: i32) -> String {
    let grant = format!(
        "GRANT {} TO {}",
        ident(&membership.role),
        ident(&membership.member)
    );
    if target_version >= 160_000 {
        let mut options = vec![format!("ADMIN {}", membership.admin_option)];
        if let Some(inherit) = membership.inherit_option {
            options.push(format!("INHERIT {inherit}"));
        }
        if let Some(set) = membership.set_option {
            options.push(format!("SET {set}"));
        }
        format!("{grant} WITH {}", options.join(", ").to_uppercase())
    } else if membership.admin_option {
        format!("{grant} WITH ADMIN OPTION")
    } else {
        grant
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memberships_keep_the_options_the_target_knows() {
        let membership = Membership {
            role: "readers".into(),
            member: "Ann".into(),
            admin_option: true,
            inherit_option: Some(false),
            set_option: Some(true),
        };
        assert_eq!(
            grant_membership(&membership, 170_000),
            "GRANT readers TO \"Ann\" WITH ADMIN TRUE, INHERIT FALSE, SET TRUE"
        );
        assert_eq!(
            grant_membership(&membership, 150_000),
            "GRANT readers TO \"Ann\" WITH ADMIN OPTION"
        );
        let plain = Membership {
            admin_option: false,
            inherit_option: None,
            set_option: None,
            ..membership
        };
        assert_eq!(
            grant_membership(&plain, 130_000),
            "GRANT readers TO \"Ann\""
        );
        assert_eq!(
            grant_membership(&plain, 160_000),
            "GRANT readers TO \"Ann\" WITH ADMIN FALSE"
        );
    }
}
