//! Which of a backup's items a restore runs (`--section`, `--schema-only`, `--data-only`,
//! `--no-owner`, `--no-acl`), and the roles those items need in the target.

use std::collections::BTreeSet;

use pgark_archive::{DdlItem, Manifest, ObjectKind, Section};

/// The parts of a backup a restore puts into the target. The default is everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreParts {
    pub pre_data: bool,
    pub data: bool,
    pub post_data: bool,
    /// Leave out `ALTER ... OWNER TO`: the restoring role owns everything.
    pub no_owner: bool,
    /// Leave out `GRANT`/`REVOKE` and default privileges.
    pub no_acl: bool,
    /// Create the roles the target lacks (attributes and memberships as recorded, no password)
    /// instead of stopping.
    pub create_roles: bool,
    /// Items left out by id: those the restoring role may not run (see `preflight`).
    pub skipped: BTreeSet<u32>,
}

impl Default for RestoreParts {
    fn default() -> Self {
        RestoreParts {
            pre_data: true,
            data: true,
            post_data: true,
            no_owner: false,
            no_acl: false,
            create_roles: false,
            skipped: BTreeSet::new(),
        }
    }
}

impl RestoreParts {
    /// Whether `item` runs. Refreshing a materialized view is data (as for `pg_restore`), though
    /// it runs with the post-data items.
    pub fn includes(&self, item: &DdlItem) -> bool {
        let section = match item.kind {
            ObjectKind::MaterializedViewData => self.data,
            _ => match item.section {
                Section::PreData => self.pre_data,
                Section::Data => self.data,
                Section::PostData => self.post_data,
            },
        };
        let left_out =
            self.skipped.contains(&item.id) || (self.no_owner && item.kind == ObjectKind::Owner);
        section
            && !left_out
            && !(self.no_acl && matches!(item.kind, ObjectKind::Acl | ObjectKind::DefaultAcl))
    }

    /// The roles the included items name, sorted.
    pub fn roles_needed(&self, manifest: &Manifest) -> Vec<String> {
        let roles: BTreeSet<&String> = manifest
            .schema
            .iter()
            .filter(|item| self.includes(item))
            .flat_map(|item| &item.roles)
            .collect();
        roles.into_iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(kind: ObjectKind, section: Section, roles: &[&str]) -> DdlItem {
        DdlItem {
            id: 1,
            kind,
            section,
            schema: None,
            name: "x".into(),
            table: None,
            sql: String::new(),
            deps: vec![],
            roles: roles.iter().map(|r| r.to_string()).collect(),
            via_index: None,
        }
    }

    #[test]
    fn flags_leave_out_owners_privileges_and_sections() {
        let owner = item(ObjectKind::Owner, Section::PreData, &["alice"]);
        let acl = item(ObjectKind::Acl, Section::PreData, &["bob"]);
        let index = item(ObjectKind::Index, Section::PostData, &[]);
        let refresh = item(ObjectKind::MaterializedViewData, Section::PostData, &[]);
        let all = RestoreParts::default();
        assert!(all.includes(&owner) && all.includes(&acl) && all.includes(&refresh));
        let bare = RestoreParts {
            no_owner: true,
            no_acl: true,
            ..RestoreParts::default()
        };
        assert!(!bare.includes(&owner) && !bare.includes(&acl) && bare.includes(&index));
        let schema_only = RestoreParts {
            data: false,
            ..RestoreParts::default()
        };
        assert!(schema_only.includes(&index) && !schema_only.includes(&refresh));
    }
}
