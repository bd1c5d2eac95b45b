//! Text search parsers, templates, dictionaries and configurations (with their mappings).

use std::collections::HashMap;

use tokio_postgres::Client;

use super::address::{FIRST_NORMAL_OID, class};
use super::filter::{USER_NAMESPACE, not_extension_member};
use super::names::QualName;
use super::rows::{get, query};
use crate::PgError;

#[derive(Debug, Clone)]
pub(crate) struct TextSearchObject {
    pub class: u32,
    pub oid: u32,
    pub name: QualName,
    /// `CREATE TEXT SEARCH ...` options in SQL form.
    pub options: Vec<(String, String)>,
    /// A configuration's mappings: token type alias and dictionaries, in token type order.
    pub mappings: Vec<(String, Vec<String>)>,
}

/// One kind of text search object: catalog OID, catalog table, name and namespace columns, and
/// its `CREATE` options as (option, SQL expression over the row `o`).
type Kind = (
    u32,
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

pub(crate) async fn read_text_search(client: &Client) -> Result<Vec<TextSearchObject>, PgError> {
    let mut objects = Vec::new();
    let parts: [Kind; 4] = [
        (
            class::PG_TS_PARSER,
            "pg_ts_parser",
            "prsname",
            "prsnamespace",
            &[
                ("START", "o.prsstart::regproc::text"),
                ("GETTOKEN", "o.prstoken::regproc::text"),
                ("END", "o.prsend::regproc::text"),
                ("LEXTYPES", "o.prslextype::regproc::text"),
                ("HEADLINE", "NULLIF(o.prsheadline::oid, 0)::regproc::text"),
            ],
        ),
        (
            class::PG_TS_TEMPLATE,
            "pg_ts_template",
            "tmplname",
            "tmplnamespace",
            &[
                ("INIT", "NULLIF(o.tmplinit::oid, 0)::regproc::text"),
                ("LEXIZE", "o.tmpllexize::regproc::text"),
            ],
        ),
        (
            class::PG_TS_DICT,
            "pg_ts_dict",
            "dictname",
            "dictnamespace",
            &[(
                "TEMPLATE",
                "(SELECT pg_catalog.quote_ident(tn.nspname) || '.' || \
                 pg_catalog.quote_ident(t.tmplname) FROM pg_catalog.pg_ts_template t \
                 JOIN pg_catalog.pg_namespace tn ON tn.oid = t.tmplnamespace \
                 WHERE t.oid = o.dicttemplate)",
            )],
        ),
        (
            class::PG_TS_CONFIG,
            "pg_ts_config",
            "cfgname",
            "cfgnamespace",
            &[(
                "PARSER",
                "(SELECT pg_catalog.quote_ident(pn.nspname) || '.' || \
                 pg_catalog.quote_ident(p.prsname) FROM pg_catalog.pg_ts_parser p \
                 JOIN pg_catalog.pg_namespace pn ON pn.oid = p.prsnamespace \
                 WHERE p.oid = o.cfgparser)",
            )],
        ),
    ];
    let mut mappings = read_mappings(client).await?;
    for (class, table, name_col, ns_col, options) in parts {
        let columns: Vec<String> = options
            .iter()
            .enumerate()
            .map(|(i, (_, expr))| format!("{expr} AS o{i}"))
            .collect();
        let extra = if class == class::PG_TS_DICT {
            ", o.dictinitoption AS init"
        } else {
            ", NULL::text AS init"
        };
        let sql = format!(
            "SELECT o.oid, n.nspname::text AS schema, o.{name_col}::text AS name, {}{extra} \
             FROM pg_catalog.{table} o JOIN pg_catalog.pg_namespace n ON n.oid = o.{ns_col} \
             WHERE o.oid >= {FIRST_NORMAL_OID} AND {USER_NAMESPACE} AND {} ORDER BY 2, 3",
            columns.join(", "),
            not_extension_member(class, "o.oid")
        );
        let what = "text search objects";
        for row in query(client, what, &sql, &[]).await? {
            let mut values = Vec::new();
            for (i, (option, _)) in options.iter().enumerate() {
                let value: Option<String> = get(&row, format!("o{i}").as_str(), what)?;
                if let Some(value) = value {
                    values.push(((*option).to_owned(), value));
                }
            }
            let init: Option<String> = get(&row, "init", what)?;
            if let Some(init) = init.filter(|i| !i.is_empty()) {
                // `dictinitoption` is already `key = 'value', ...`.
                values.push((init, String::new()));
            }
            let oid: u32 = get(&row, "oid", what)?;
            objects.push(TextSearchObject {
                class,
                oid,
                name: QualName::new(get(&row, "schema", what)?, get(&row, "name", what)?),
                options: values,
                mappings: mappings.remove(&oid).unwrap_or_default(),
            });
        }
    }
    Ok(objects)
}

async fn read_mappings(
    client: &Client,
) -> Result<HashMap<u32, Vec<(String, Vec<String>)>>, PgError> {
    let sql = format!(
        "SELECT m.mapcfg, t.alias, \
         pg_catalog.array_agg(pg_catalog.quote_ident(dn.nspname) || '.' || \
                              pg_catalog.quote_ident(d.dictname) ORDER BY m.mapseqno) AS dicts \
         FROM pg_catalog.pg_ts_config_map m \
         JOIN pg_catalog.pg_ts_config c ON c.oid = m.mapcfg \
         CROSS JOIN LATERAL pg_catalog.ts_token_type(c.cfgparser) t \
         JOIN pg_catalog.pg_ts_dict d ON d.oid = m.mapdict \
         JOIN pg_catalog.pg_namespace dn ON dn.oid = d.dictnamespace \
         WHERE t.tokid = m.maptokentype AND m.mapcfg >= {FIRST_NORMAL_OID} \
         GROUP BY m.mapcfg, m.maptokentype, t.alias ORDER BY m.mapcfg, m.maptokentype"
    );
    let what = "text search configuration mappings";
    let mut mappings: HashMap<u32, Vec<(String, Vec<String>)>> = HashMap::new();
    for row in query(client, what, &sql, &[]).await? {
        mappings
            .entry(get(&row, "mapcfg", what)?)
            .or_default()
            .push((get(&row, "alias", what)?, get(&row, "dicts", what)?));
    }
    Ok(mappings)
}
