//! Property tests of connection-string parsing: keyword/value strings and URLs of any shape,
//! with any environment, give a configuration or one error, never a panic. A password never
//! appears in the error. `PROPTEST_CASES` sets how many inputs each property tries.

use pgark_pg::ConnConfig;
use proptest::prelude::*;

/// Keywords libpq knows and some it does not.
const KEYWORDS: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "user",
    "password",
    "dbname",
    "sslmode",
    "sslrootcert",
    "application_name",
    "connect_timeout",
    "options",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "service",
    "passfile",
    "aws_iam",
    "target_session_attrs",
    "nonsense",
];

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,12}",
        "[0-9]{0,6}",
        "'([^'\\\\]|\\\\.){0,8}'",
        "[a-z0-9.,:/\\[\\]%@=-]{0,16}",
    ]
}

fn keyword_value_string() -> impl Strategy<Value = String> {
    prop::collection::vec((prop::sample::select(KEYWORDS), value()), 0..6).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    })
}

fn url() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            Just("postgres://"),
            Just("postgresql://"),
            Just("postgres:/")
        ],
        "[a-z0-9:@%\\[\\].,/-]{0,24}",
        prop::collection::vec((prop::sample::select(KEYWORDS), "[a-z0-9%=&]{0,8}"), 0..4),
    )
        .prop_map(|(scheme, rest, query)| {
            let query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{scheme}{rest}?{}", query.join("&"))
        })
}

proptest! {
    #[test]
    fn any_connection_string_parses_or_fails_cleanly(
        text in prop_oneof![keyword_value_string(), url(), "\\PC{0,40}"],
        port in prop::option::of("\\PC{0,6}"),
        sslmode in prop::option::of("\\PC{0,8}"),
    ) {
        let env = |name: &str| match name {
            "PGPORT" => port.clone(),
            "PGSSLMODE" => sslmode.clone(),
            "PGSERVICEFILE" | "PGPASSFILE" => Some("/nonexistent/pgark-fuzz".to_owned()),
            _ => None,
        };
        if let Err(e) = ConnConfig::parse_with_env(&text, &env) {
            let message = e.to_string();
            prop_assert!(!message.is_empty());
        }
    }

    #[test]
    fn a_password_never_appears_in_an_error(
        password in "[A-Za-z0-9]{12,16}",
        rest in keyword_value_string(),
    ) {
        let text = format!("password={password} {rest}");
        let env = |_: &str| None;
        if let Err(e) = ConnConfig::parse_with_env(&text, &env) {
            prop_assert!(!e.to_string().contains(&password), "{}", e);
        }
        let url = format!("postgres://u:{password}@h/{rest}");
        if let Err(e) = ConnConfig::parse_with_env(&url, &env) {
            prop_assert!(!e.to_string().contains(&password), "{}", e);
        }
    }
}
