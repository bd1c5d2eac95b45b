//! Parse tests, one case per input shape. Every case runs with fixed defaults and a fake
//! environment, so none depends on the machine or the process environment.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::defaults::Defaults;
use super::{ConnConfig, Host, RootCert, SslMode};

const SOCKET_DIR: &str = "/run/test-socket";
const HOME: &str = "/home/osuser";

fn defaults() -> Defaults {
    Defaults {
        socket_dir: PathBuf::from(SOCKET_DIR),
        os_user: Some("osuser".to_owned()),
        home_dir: Some(PathBuf::from(HOME)),
        sysconf_dir: None,
    }
}

fn parse(input: &str, env: &[(&str, &str)]) -> Result<ConnConfig, crate::PgError> {
    let lookup = |name: &str| {
        env.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    };
    ConnConfig::parse_with(input, &lookup, &defaults())
}

/// What a parse should produce; hosts starting with '/' are socket directories.
#[derive(Clone, Copy)]
struct Want {
    hosts: &'static [&'static str],
    ports: &'static [u16],
    user: &'static str,
    password: Option<&'static str>,
    dbname: &'static str,
    application_name: &'static str,
    connect_timeout: Option<u64>,
    sslmode: SslMode,
    options: Option<&'static str>,
}

const DEFAULTS: Want = Want {
    hosts: &[SOCKET_DIR],
    ports: &[5432],
    user: "osuser",
    password: None,
    dbname: "osuser",
    application_name: "pgark",
    connect_timeout: Some(30),
    sslmode: SslMode::Prefer,
    options: None,
};

impl Want {
    fn config(self) -> ConnConfig {
        ConnConfig {
            hosts: self
                .hosts
                .iter()
                .map(|h| {
                    if h.starts_with('/') {
                        Host::Socket(PathBuf::from(h))
                    } else {
                        Host::Tcp((*h).to_owned())
                    }
                })
                .collect(),
            ports: self.ports.to_vec(),
            user: self.user.to_owned(),
            password: self.password.map(str::to_owned),
            dbname: self.dbname.to_owned(),
            application_name: self.application_name.to_owned(),
            connect_timeout: self.connect_timeout.map(Duration::from_secs),
            sslmode: self.sslmode,
            options: self.options.map(str::to_owned),
            hostaddrs: Vec::new(),
            sslrootcert: Some(RootCert::File(
                PathBuf::from(HOME).join(".postgresql/root.crt"),
            )),
            sslcert: Some(PathBuf::from(HOME).join(".postgresql/postgresql.crt")),
            sslkey: Some(PathBuf::from(HOME).join(".postgresql/postgresql.key")),
            passfile: Some(PathBuf::from(HOME).join(".pgpass")),
            default_socket_dir: PathBuf::from(SOCKET_DIR),
            aws_iam: false,
            role: None,
            tcp: super::TcpSettings::default(),
            stall_timeout: Some(super::DEFAULT_STALL_TIMEOUT),
        }
    }
}

struct Case {
    name: &'static str,
    input: &'static str,
    env: &'static [(&'static str, &'static str)],
    want: Want,
}

const NO_ENV: &[(&str, &str)] = &[];

const FULL_ENV: &[(&str, &str)] = &[
    ("PGHOST", "envhost"),
    ("PGPORT", "6000"),
    ("PGUSER", "envuser"),
    ("PGPASSWORD", "envpass"),
    ("PGDATABASE", "envdb"),
    ("PGSSLMODE", "disable"),
    ("PGAPPNAME", "envapp"),
    ("PGCONNECT_TIMEOUT", "7"),
    ("PGOPTIONS", "-c work_mem=64MB"),
];

#[rustfmt::skip]
const CASES: &[Case] = &[
    // Defaults.
    Case { name: "empty string means all defaults", input: "", env: NO_ENV, want: DEFAULTS },
    Case { name: "blank string means all defaults", input: "  \t ", env: NO_ENV, want: DEFAULTS },
    Case { name: "bare postgres:// means all defaults", input: "postgres://", env: NO_ENV, want: DEFAULTS },
    Case { name: "bare postgresql:// means all defaults", input: "postgresql://", env: NO_ENV, want: DEFAULTS },
    Case { name: "dbname defaults to the given user", input: "user=bob", env: NO_ENV,
        want: Want { user: "bob", dbname: "bob", ..DEFAULTS } },
    Case { name: "dbname defaults to PGUSER", input: "", env: &[("PGUSER", "envuser")],
        want: Want { user: "envuser", dbname: "envuser", ..DEFAULTS } },

    // URLs.
    Case { name: "URL with every part", input: "postgresql://alice:s3cret@db.example.com:6543/app",
        env: NO_ENV,
        want: Want { hosts: &["db.example.com"], ports: &[6543], user: "alice",
            password: Some("s3cret"), dbname: "app", ..DEFAULTS } },
    Case { name: "URL with user and no password", input: "postgres://alice@db/app", env: NO_ENV,
        want: Want { hosts: &["db"], user: "alice", dbname: "app", ..DEFAULTS } },
    Case { name: "URL with host only", input: "postgres://db", env: NO_ENV,
        want: Want { hosts: &["db"], ..DEFAULTS } },
    Case { name: "URL with an empty port", input: "postgres://db:/app", env: NO_ENV,
        want: Want { hosts: &["db"], dbname: "app", ..DEFAULTS } },
    Case { name: "URL credentials are percent-decoded",
        input: "postgres://al%20ice:p%40ss%3Aw%2Fo%25rd@db/app", env: NO_ENV,
        want: Want { hosts: &["db"], user: "al ice", password: Some("p@ss:w/o%rd"), dbname: "app",
            ..DEFAULTS } },
    Case { name: "URL password runs to the '@', raw ':' and '?' included",
        input: "postgres://u:pa:s?s@db/app", env: NO_ENV,
        want: Want { hosts: &["db"], user: "u", password: Some("pa:s?s"), dbname: "app", ..DEFAULTS } },
    Case { name: "URL with an empty password", input: "postgres://u:@db/app", env: &[("PGPASSWORD", "envpass")],
        want: Want { hosts: &["db"], user: "u", password: Some("envpass"), dbname: "app", ..DEFAULTS } },
    Case { name: "URL database name is percent-decoded", input: "postgres://db/my%20db%2Fx", env: NO_ENV,
        want: Want { hosts: &["db"], dbname: "my db/x", ..DEFAULTS } },
    Case { name: "URL with several hosts and ports", input: "postgres://u@h1:5432,h2:5433/app", env: NO_ENV,
        want: Want { hosts: &["h1", "h2"], ports: &[5432, 5433], user: "u", dbname: "app", ..DEFAULTS } },
    Case { name: "URL with a port on the last host only", input: "postgres://h1,h2:5433/app", env: NO_ENV,
        want: Want { hosts: &["h1", "h2"], ports: &[5432, 5433], dbname: "app", ..DEFAULTS } },
    Case { name: "URL with several hosts and no ports", input: "postgres://h1,h2,h3", env: NO_ENV,
        want: Want { hosts: &["h1", "h2", "h3"], ..DEFAULTS } },
    Case { name: "URL with several hosts and no ports still uses PGPORT", input: "postgres://h1,h2",
        env: &[("PGPORT", "6000")], want: Want { hosts: &["h1", "h2"], ports: &[6000], ..DEFAULTS } },
    Case { name: "URL with an IPv6 host", input: "postgres://[::1]:5433/app", env: NO_ENV,
        want: Want { hosts: &["::1"], ports: &[5433], dbname: "app", ..DEFAULTS } },
    Case { name: "URL with an IPv6 host and no port", input: "postgres://[2001:db8::1]/app", env: NO_ENV,
        want: Want { hosts: &["2001:db8::1"], dbname: "app", ..DEFAULTS } },
    Case { name: "URL with IPv6 and named hosts", input: "postgres://[::1]:5433,db?sslmode=disable",
        env: NO_ENV,
        want: Want { hosts: &["::1", "db"], ports: &[5433, 5432], sslmode: SslMode::Disable, ..DEFAULTS } },
    Case { name: "URL with a percent-encoded socket directory",
        input: "postgresql://u@%2Fvar%2Frun%2Fpostgresql/app", env: NO_ENV,
        want: Want { hosts: &["/var/run/postgresql"], user: "u", dbname: "app", ..DEFAULTS } },
    Case { name: "URL with a percent-encoded socket directory and port",
        input: "postgresql://%2Ftmp:5433", env: NO_ENV,
        want: Want { hosts: &["/tmp"], ports: &[5433], ..DEFAULTS } },
    Case { name: "URL with the socket directory in the query",
        input: "postgresql:///app?host=/var/lib/postgresql", env: NO_ENV,
        want: Want { hosts: &["/var/lib/postgresql"], dbname: "app", ..DEFAULTS } },
    Case { name: "URL with no host uses the default socket", input: "postgres:///app", env: NO_ENV,
        want: Want { dbname: "app", ..DEFAULTS } },
    Case { name: "URL query parameters",
        input: "postgres://db/app?application_name=nightly&connect_timeout=10&sslmode=verify-full\
                &options=-c%20search_path%3Dfoo&port=6000&password=pw",
        env: NO_ENV,
        want: Want { hosts: &["db"], ports: &[6000], password: Some("pw"), dbname: "app",
            application_name: "nightly", connect_timeout: Some(10), sslmode: SslMode::VerifyFull,
            options: Some("-c search_path=foo"), ..DEFAULTS } },
    Case { name: "URL query without a database", input: "postgres://db?dbname=app", env: NO_ENV,
        want: Want { hosts: &["db"], dbname: "app", ..DEFAULTS } },
    Case { name: "URL query parameter beats the same part of the URL",
        input: "postgres://a@db/one?user=b&dbname=two", env: NO_ENV,
        want: Want { hosts: &["db"], user: "b", dbname: "two", ..DEFAULTS } },
    Case { name: "URL ssl=true means sslmode=require", input: "postgres://db?ssl=true", env: NO_ENV,
        want: Want { hosts: &["db"], sslmode: SslMode::Require, ..DEFAULTS } },
    Case { name: "URL with a trailing '&'", input: "postgres://db?sslmode=allow&", env: NO_ENV,
        want: Want { hosts: &["db"], sslmode: SslMode::Allow, ..DEFAULTS } },
    Case { name: "URL with an empty query", input: "postgres://db/app?", env: NO_ENV,
        want: Want { hosts: &["db"], dbname: "app", ..DEFAULTS } },

    // key=value strings.
    Case { name: "key=value with every part",
        input: "host=db port=5433 user=u password=pw dbname=app", env: NO_ENV,
        want: Want { hosts: &["db"], ports: &[5433], user: "u", password: Some("pw"), dbname: "app",
            ..DEFAULTS } },
    Case { name: "key=value with blanks around '='", input: "  host = db\tport=\n5433  dbname =app ",
        env: NO_ENV,
        want: Want { hosts: &["db"], ports: &[5433], dbname: "app", ..DEFAULTS } },
    Case { name: "key=value with quoted values and escapes",
        input: r"password='it\'s a \\ secret' dbname='my db' options='-c geqo=off'", env: NO_ENV,
        want: Want { password: Some(r"it's a \ secret"), dbname: "my db",
            options: Some("-c geqo=off"), ..DEFAULTS } },
    Case { name: "key=value with an escaped blank in a bare value", input: r"dbname=my\ db", env: NO_ENV,
        want: Want { dbname: "my db", ..DEFAULTS } },
    Case { name: "key=value with an empty quoted password", input: "password='' user=u",
        env: NO_ENV, want: Want { user: "u", dbname: "u", ..DEFAULTS } },
    Case { name: "key=value: the last of a repeated key wins", input: "dbname=one dbname=two",
        env: NO_ENV, want: Want { dbname: "two", ..DEFAULTS } },
    Case { name: "key=value with several hosts and ports", input: "host=h1,h2 port=5432,5433",
        env: NO_ENV, want: Want { hosts: &["h1", "h2"], ports: &[5432, 5433], ..DEFAULTS } },
    Case { name: "key=value with one port for several hosts", input: "host=h1,h2 port=6000",
        env: NO_ENV, want: Want { hosts: &["h1", "h2"], ports: &[6000], ..DEFAULTS } },
    Case { name: "key=value mixing sockets and TCP hosts", input: "host=/tmp,,db", env: NO_ENV,
        want: Want { hosts: &["/tmp", SOCKET_DIR, "db"], ..DEFAULTS } },
    Case { name: "key=value with an IPv6 host", input: "host=::1 port=5433", env: NO_ENV,
        want: Want { hosts: &["::1"], ports: &[5433], ..DEFAULTS } },
    Case { name: "key=value with a socket directory", input: "host=/var/run/postgresql", env: NO_ENV,
        want: Want { hosts: &["/var/run/postgresql"], ..DEFAULTS } },
    Case { name: "key=value port with blanks inside quotes", input: "port=' 5433 '", env: NO_ENV,
        want: Want { ports: &[5433], ..DEFAULTS } },
    Case { name: "key=value with every sslmode spelling", input: "sslmode=verify-ca", env: NO_ENV,
        want: Want { sslmode: SslMode::VerifyCa, ..DEFAULTS } },
    Case { name: "key=value sslmode=require", input: "sslmode=require", env: NO_ENV,
        want: Want { sslmode: SslMode::Require, ..DEFAULTS } },

    // Application name and timeouts.
    Case { name: "fallback_application_name replaces pgark's default",
        input: "fallback_application_name=tool", env: NO_ENV,
        want: Want { application_name: "tool", ..DEFAULTS } },
    Case { name: "PGAPPNAME beats fallback_application_name",
        input: "fallback_application_name=tool", env: &[("PGAPPNAME", "envapp")],
        want: Want { application_name: "envapp", ..DEFAULTS } },
    Case { name: "application_name beats PGAPPNAME", input: "application_name=mine",
        env: &[("PGAPPNAME", "envapp")], want: Want { application_name: "mine", ..DEFAULTS } },
    Case { name: "connect_timeout=0 waits forever", input: "connect_timeout=0", env: NO_ENV,
        want: Want { connect_timeout: None, ..DEFAULTS } },
    Case { name: "negative connect_timeout waits forever", input: "connect_timeout=-5", env: NO_ENV,
        want: Want { connect_timeout: None, ..DEFAULTS } },
    Case { name: "connect_timeout=1 is raised to the 2 s minimum", input: "connect_timeout=1",
        env: NO_ENV, want: Want { connect_timeout: Some(2), ..DEFAULTS } },
    Case { name: "connect_timeout in seconds", input: "connect_timeout=30", env: NO_ENV,
        want: Want { connect_timeout: Some(30), ..DEFAULTS } },

    // Environment fallbacks and precedence.
    Case { name: "every PG variable fills an empty string", input: "", env: FULL_ENV,
        want: Want { hosts: &["envhost"], ports: &[6000], user: "envuser", password: Some("envpass"),
            dbname: "envdb", application_name: "envapp", connect_timeout: Some(7),
            sslmode: SslMode::Disable, options: Some("-c work_mem=64MB") } },
    Case { name: "key=value settings beat the environment",
        input: "host=h port=1 user=u password=p dbname=d sslmode=require application_name=a \
                connect_timeout=3 options=-cx=y",
        env: FULL_ENV,
        want: Want { hosts: &["h"], ports: &[1], user: "u", password: Some("p"), dbname: "d",
            application_name: "a", connect_timeout: Some(3), sslmode: SslMode::Require,
            options: Some("-cx=y") } },
    Case { name: "URL parts beat the environment, the rest comes from it",
        input: "postgres://u@h:1/d", env: FULL_ENV,
        want: Want { hosts: &["h"], ports: &[1], user: "u", password: Some("envpass"), dbname: "d",
            application_name: "envapp", connect_timeout: Some(7), sslmode: SslMode::Disable,
            options: Some("-c work_mem=64MB") } },
    Case { name: "an explicit empty value hides the environment, as in libpq",
        input: "host='' dbname=''", env: &[("PGHOST", "envhost"), ("PGDATABASE", "envdb")],
        want: DEFAULTS },
    Case { name: "an empty URL path does not hide PGDATABASE", input: "postgres://db/",
        env: &[("PGDATABASE", "envdb")], want: Want { hosts: &["db"], dbname: "envdb", ..DEFAULTS } },
    Case { name: "PGHOST may list sockets and hosts", input: "", env: &[("PGHOST", "/tmp,db"), ("PGPORT", "5433")],
        want: Want { hosts: &["/tmp", "db"], ports: &[5433], ..DEFAULTS } },
    Case { name: "an empty variable means the default", input: "", env: &[("PGPORT", ""), ("PGHOST", "")],
        want: DEFAULTS },
];

#[test]
fn parses_every_input_shape() {
    let mut failures = Vec::new();
    for case in CASES {
        match parse(case.input, case.env) {
            Ok(got) if got == case.want.config() => {}
            Ok(got) => failures.push(format!(
                "{}: {:?}\n   got {got:?}\n  want {:?}",
                case.name,
                case.input,
                case.want.config()
            )),
            Err(e) => failures.push(format!("{}: {:?}\n   error: {e}", case.name, case.input)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

struct Invalid {
    input: &'static str,
    env: &'static [(&'static str, &'static str)],
    message: &'static str,
}

#[rustfmt::skip]
const INVALID: &[Invalid] = &[
    Invalid { input: "foo=bar", env: NO_ENV, message: "invalid connection option \"foo\"" },
    Invalid { input: "host=db foo = bar", env: NO_ENV, message: "invalid connection option \"foo\"" },
    Invalid { input: "postgres://db/app?foo=bar", env: NO_ENV, message: "invalid connection option \"foo\"" },
    Invalid { input: "sslpassword=secret", env: NO_ENV,
        message: "connection option \"sslpassword\" is not supported by pgark yet" },
    Invalid { input: "hostaddr=db.example.com", env: NO_ENV,
        message: "invalid hostaddr \"db.example.com\" in connection option \"hostaddr\" (expected a numeric" },
    Invalid { input: "host=a,b hostaddr=10.0.0.1", env: NO_ENV,
        message: "could not match 2 host names to 1 hostaddr values" },
    Invalid { input: "sslrootcert=system sslmode=require", env: NO_ENV,
        message: "weak sslmode \"require\" may not be used with sslrootcert=system (use \"verify-full\")" },
    Invalid { input: "", env: &[("PGSSLROOTCERT", "system"), ("PGSSLMODE", "verify-ca")],
        message: "weak sslmode \"verify-ca\" may not be used with sslrootcert=system" },
    Invalid { input: "aws_iam=maybe", env: NO_ENV,
        message: "invalid value \"maybe\" for connection option \"aws_iam\" (expected 1 or 0)" },
    Invalid { input: "postgres://u:secret@db/app?aws_iam=1", env: NO_ENV,
        message: "aws_iam=1 (--aws-iam-auth) generates the password; remove the password" },
    Invalid { input: "host=db aws_iam=1 sslmode=prefer", env: NO_ENV,
        message: "sslmode=prefer could send the IAM authentication token unencrypted" },
    Invalid { input: "host=db aws_iam=1", env: &[("PGSSLMODE", "disable")],
        message: "sslmode=disable could send the IAM authentication token unencrypted" },
    Invalid { input: "service=nowhere", env: NO_ENV,
        message: "definition of service \"nowhere\" not found" },
    Invalid { input: "service=x servicefile=/nonexistent/pg_service.conf", env: NO_ENV,
        message: "service file \"/nonexistent/pg_service.conf\" not found (servicefile=, PGSERVICEFILE)" },
    Invalid { input: "host", env: NO_ENV, message: "missing \"=\" after \"host\" in connection info string" },
    Invalid { input: "mydb", env: NO_ENV, message: "for example dbname=mydb" },
    Invalid { input: "password='secret", env: NO_ENV,
        message: "unterminated quoted string in connection info string" },
    Invalid { input: "password=my secret dbname=x", env: NO_ENV,
        message: "a password containing spaces must be quoted: password='...'" },
    Invalid { input: "password=my secret=x", env: NO_ENV,
        message: "a password containing spaces must be quoted: password='...'" },
    Invalid { input: "mysql://u:secret@db/app", env: NO_ENV,
        message: "unsupported connection URL scheme \"mysql\" — use postgres:// or postgresql://" },
    Invalid { input: "postgres://u:secret@db:abc/app", env: NO_ENV,
        message: "invalid port number for host 1 in connection URL" },
    Invalid { input: "postgres://u:secret/app", env: NO_ENV,
        message: "\"@\", \":\" and \"/\" must be percent-encoded" },
    Invalid { input: "postgres://h1,h2:99999/app", env: NO_ENV,
        message: "invalid port number for host 2 in connection URL" },
    Invalid { input: "postgres://db:0", env: NO_ENV, message: "invalid port number for host 1" },
    Invalid { input: "port=abc", env: NO_ENV,
        message: "invalid port \"abc\" in connection option \"port\" (expected a number from 1 to 65535)" },
    Invalid { input: "postgres://db?port=65536", env: NO_ENV,
        message: "invalid port \"65536\" in connection option \"port\"" },
    Invalid { input: "", env: &[("PGPORT", "abc")], message: "invalid port \"abc\" in environment variable PGPORT" },
    Invalid { input: "host=a,b,c port=1,2", env: NO_ENV, message: "could not match 2 port numbers to 3 hosts" },
    Invalid { input: "postgres://[::1/app", env: NO_ENV,
        message: "missing \"]\" after an IPv6 host address in connection URL" },
    Invalid { input: "postgres://[]/app", env: NO_ENV, message: "empty IPv6 host address" },
    Invalid { input: "postgres://[::1]x/app", env: NO_ENV,
        message: "unexpected character \"x\" after an IPv6 host address" },
    Invalid { input: "postgres://u:sec%zzret@db/app", env: NO_ENV,
        message: "invalid percent-encoding in the password in connection URL" },
    Invalid { input: "postgres://u:secret%@db/app", env: NO_ENV,
        message: "invalid percent-encoding in the password" },
    Invalid { input: "postgres://u:secret%00@db/app", env: NO_ENV,
        message: "forbidden value %00 in the password in connection URL" },
    Invalid { input: "postgres://u:secret%FF@db/app", env: NO_ENV,
        message: "the password in connection URL is not valid UTF-8" },
    Invalid { input: "postgres://db/app?password=secret%zz", env: NO_ENV,
        message: "invalid percent-encoding in the value of query parameter \"password\"" },
    Invalid { input: "postgres://db/app?sslmode", env: NO_ENV,
        message: "missing \"=\" in query parameter 1 of connection URL" },
    Invalid { input: "postgres://db/app?sslmode=disable&&x=y", env: NO_ENV,
        message: "missing \"=\" in query parameter 2 of connection URL" },
    Invalid { input: "postgres://db/app?password=a=secret", env: NO_ENV,
        message: "extra \"=\" in the value of query parameter \"password\"" },
    Invalid { input: "sslmode=bogus", env: NO_ENV,
        message: "invalid sslmode \"bogus\" in connection option \"sslmode\" (expected disable, allow, \
                  prefer, require, verify-ca or verify-full)" },
    Invalid { input: "", env: &[("PGSSLMODE", "on")], message: "invalid sslmode \"on\" in environment variable PGSSLMODE" },
    Invalid { input: "connect_timeout=soon", env: NO_ENV,
        message: "invalid connect_timeout \"soon\" in connection option \"connect_timeout\"" },
];

#[test]
fn invalid_inputs_name_the_problem_and_never_echo_a_password() {
    let mut failures = Vec::new();
    for case in INVALID {
        match parse(case.input, case.env) {
            Ok(got) => failures.push(format!("{:?}: parsed as {got:?}", case.input)),
            Err(e) => {
                let message = e.to_string();
                if !message.starts_with("invalid connection string: ")
                    || !message.contains(case.message)
                {
                    failures.push(format!(
                        "{:?}:\n   got {message}\n  want {}",
                        case.input, case.message
                    ));
                }
                if message.contains("secret") {
                    failures.push(format!("{:?}: password leaked: {message}", case.input));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn without_any_user_name_the_error_says_how_to_give_one() {
    let no_user = Defaults {
        os_user: None,
        ..defaults()
    };
    let err = ConnConfig::parse_with("host=db", &|_| None, &no_user).expect_err("no user");
    assert!(
        err.to_string()
            .contains("set user= in the connection string or PGUSER"),
        "{err}"
    );
    // Any given user is enough.
    let cfg = ConnConfig::parse_with("postgres://bob@db", &|_| None, &no_user).expect("user given");
    assert_eq!((cfg.user(), cfg.dbname()), ("bob", "bob"));
}

#[test]
fn system_defaults_take_the_user_from_user_then_logname() {
    let env = |name: &str| match name {
        "USER" => Some("from-user".to_owned()),
        "LOGNAME" => Some("from-logname".to_owned()),
        _ => None,
    };
    assert_eq!(Defaults::system(&env).os_user.as_deref(), Some("from-user"));
    let env = |name: &str| (name == "LOGNAME").then(|| "from-logname".to_owned());
    assert_eq!(
        Defaults::system(&env).os_user.as_deref(),
        Some("from-logname")
    );
    let dir = Defaults::system(&|_| None).socket_dir;
    assert!(
        dir == Path::new("/var/run/postgresql") || dir == Path::new("/tmp"),
        "{dir:?}"
    );
}

#[test]
fn debug_redacts_the_password() {
    let cfg = parse("postgres://alice:s3cret@db/app", NO_ENV).expect("valid");
    let debug = format!("{cfg:?}");
    assert!(!debug.contains("s3cret"), "{debug}");
    assert!(debug.contains(r#"password: Some("********")"#), "{debug}");
    let pretty = format!("{cfg:#?}");
    assert!(!pretty.contains("s3cret"), "{pretty}");

    let settings = super::conninfo::parse("password=s3cret dbname=app").expect("valid");
    assert!(!format!("{settings:?}").contains("s3cret"), "{settings:?}");

    let without = parse("postgres://alice@db/app", NO_ENV).expect("valid");
    assert!(format!("{without:?}").contains("password: None"));
}

#[test]
fn display_is_a_password_free_url() {
    #[rustfmt::skip]
    let cases: &[(&str, &str)] = &[
        ("postgres://alice:s3cret@db.example.com:6543/app", "postgres://alice@db.example.com:6543/app"),
        ("host=db password=s3cret", "postgres://osuser@db:5432/osuser"),
        ("", "postgres://osuser@%2Frun%2Ftest-socket:5432/osuser"),
        ("host=h1,h2 port=5432,5433 user=u dbname=d", "postgres://u@h1:5432,h2:5433/d"),
        ("host=h1,h2 port=6000 user=u dbname=d", "postgres://u@h1:6000,h2:6000/d"),
        ("host=::1 user=u dbname=d", "postgres://u@[::1]:5432/d"),
        ("host=fe80::1%eth0 user=u dbname=d", "postgres://u@[fe80::1%25eth0]:5432/d"),
        ("user='a@b:c' dbname='my db/x?' host=db", "postgres://a%40b%3Ac@db:5432/my%20db%2Fx%3F"),
    ];
    for (input, want) in cases {
        let cfg = parse(input, NO_ENV).expect("valid");
        assert_eq!(cfg.to_string(), *want, "{input}");
        assert_eq!(cfg.redacted(), *want, "{input}");
    }
}

#[test]
fn display_parses_back_to_the_same_server_user_and_database() {
    let inputs = [
        "postgres://alice:s3cret@db.example.com:6543/app",
        "host=/tmp,::1,db port=1,2,3 user='we@ird:name' dbname='my db/x?&=' password=pw",
        "",
    ];
    for input in inputs {
        let cfg = parse(input, NO_ENV).expect("valid");
        let back = parse(&cfg.to_string(), NO_ENV).expect("Display output parses");
        let endpoints = |c: &ConnConfig| {
            c.endpoints()
                .map(|(h, p)| (h.clone(), p))
                .collect::<Vec<_>>()
        };
        assert_eq!(endpoints(&back), endpoints(&cfg), "{input}");
        assert_eq!(
            (back.user(), back.dbname()),
            (cfg.user(), cfg.dbname()),
            "{input}"
        );
        assert!(!back.has_password(), "{input}");
    }
}

#[test]
fn with_dbname_keeps_everything_but_the_database() {
    let cfg = parse(
        "postgres://alice:s3cret@db:6543/app?sslmode=disable&application_name=x",
        NO_ENV,
    )
    .expect("valid");
    let maintenance = cfg.with_dbname("postgres");
    assert_eq!(maintenance.dbname(), "postgres");
    assert_eq!(maintenance.user(), "alice");
    assert_eq!(maintenance.password(), Some("s3cret"));
    assert_eq!(maintenance.sslmode(), SslMode::Disable);
    assert_eq!(maintenance.application_name(), "x");
    assert_eq!(maintenance.to_string(), "postgres://alice@db:6543/postgres");
    assert_eq!(cfg.dbname(), "app");
}

#[test]
fn endpoints_pair_each_host_with_its_port() {
    let cfg = parse("host=a,b port=7000", NO_ENV).expect("valid");
    let got: Vec<_> = cfg.endpoints().collect();
    assert_eq!(
        got,
        [
            (&Host::Tcp("a".into()), 7000),
            (&Host::Tcp("b".into()), 7000)
        ]
    );
    let cfg = parse("host=a,/tmp port=7000,7001", NO_ENV).expect("valid");
    let got: Vec<_> = cfg.endpoints().collect();
    assert_eq!(
        got,
        [
            (&Host::Tcp("a".into()), 7000),
            (&Host::Socket("/tmp".into()), 7001)
        ]
    );
}

#[test]
fn from_str_and_parse_with_env_read_the_given_environment() {
    let env = |name: &str| match name {
        "PGHOST" => Some("envhost".to_owned()),
        "PGUSER" => Some("envuser".to_owned()),
        _ => None,
    };
    let cfg = ConnConfig::parse_with_env("dbname=app", &env).expect("valid");
    assert_eq!(cfg.to_string(), "postgres://envuser@envhost:5432/app");
    let cfg: ConnConfig = "postgres://u@h/d".parse().expect("valid");
    assert_eq!((cfg.user(), cfg.dbname()), ("u", "d"));
}

#[test]
fn hostaddr_gives_each_host_its_address_and_may_stand_alone() {
    let cfg = parse("host=db1,db2 hostaddr=10.0.0.1,", NO_ENV).expect("valid");
    assert_eq!(cfg.hostaddr_at(0), Some("10.0.0.1".parse().expect("ip")));
    assert_eq!(cfg.hostaddr_at(1), None);
    assert_eq!(
        cfg.hosts(),
        [Host::Tcp("db1".into()), Host::Tcp("db2".into())]
    );

    let cfg = parse("", &[("PGHOSTADDR", "192.0.2.7")]).expect("valid");
    assert_eq!(cfg.hosts(), [Host::Tcp("192.0.2.7".into())]);
    assert_eq!(cfg.hostaddr_at(0), Some("192.0.2.7".parse().expect("ip")));
}

#[test]
fn tls_files_default_to_the_home_directory_like_libpq() {
    let home = Path::new(HOME);
    let cfg = parse("host=db", NO_ENV).expect("valid");
    assert_eq!(
        cfg.sslrootcert(),
        Some(&RootCert::File(home.join(".postgresql/root.crt")))
    );
    assert_eq!(
        cfg.sslcert(),
        Some(&*home.join(".postgresql/postgresql.crt"))
    );
    assert_eq!(
        cfg.sslkey(),
        Some(&*home.join(".postgresql/postgresql.key"))
    );
    assert_eq!(cfg.passfile(), Some(&*home.join(".pgpass")));

    let env = [
        ("PGSSLROOTCERT", "/env/ca.pem"),
        ("PGSSLCERT", "/env/client.crt"),
        ("PGSSLKEY", "/env/client.key"),
        ("PGPASSFILE", "/env/pgpass"),
    ];
    let cfg = parse("host=db", &env).expect("valid");
    assert_eq!(
        cfg.sslrootcert(),
        Some(&RootCert::File("/env/ca.pem".into()))
    );
    assert_eq!(cfg.sslcert(), Some(Path::new("/env/client.crt")));
    assert_eq!(cfg.sslkey(), Some(Path::new("/env/client.key")));
    assert_eq!(cfg.passfile(), Some(Path::new("/env/pgpass")));

    let cfg = parse(
        "postgres://db/app?sslrootcert=/etc/rds-ca.pem&sslcert=/c.crt&sslkey=/c.key&passfile=/pp",
        &env,
    )
    .expect("valid");
    assert_eq!(
        cfg.sslrootcert(),
        Some(&RootCert::File("/etc/rds-ca.pem".into()))
    );
    assert_eq!(cfg.sslcert(), Some(Path::new("/c.crt")));
    assert_eq!(cfg.sslkey(), Some(Path::new("/c.key")));
    assert_eq!(cfg.passfile(), Some(Path::new("/pp")));

    let homeless = Defaults {
        home_dir: None,
        ..defaults()
    };
    let cfg = ConnConfig::parse_with("host=db", &|_| None, &homeless).expect("valid");
    assert_eq!((cfg.sslrootcert(), cfg.passfile()), (None, None));
}

#[test]
fn sslrootcert_system_means_verify_full() {
    let cfg = parse("host=db sslrootcert=system", NO_ENV).expect("valid");
    assert_eq!(cfg.sslrootcert(), Some(&RootCert::System));
    assert_eq!(cfg.sslmode(), SslMode::VerifyFull);
    let cfg = parse("host=db sslrootcert=system sslmode=verify-full", NO_ENV).expect("valid");
    assert_eq!(cfg.sslmode(), SslMode::VerifyFull);
}

#[test]
fn aws_iam_needs_tls_and_no_password() {
    let cfg = parse("host=db aws_iam=1", NO_ENV).expect("valid");
    assert!(cfg.aws_iam());
    assert_eq!(
        cfg.sslmode(),
        SslMode::Require,
        "the default prefer becomes require"
    );
    let cfg = parse("host=db aws_iam=1 sslmode=verify-full", NO_ENV).expect("valid");
    assert_eq!(cfg.sslmode(), SslMode::VerifyFull);
    let cfg = parse("host=db aws_iam=0", NO_ENV).expect("valid");
    assert!(!cfg.aws_iam());

    let cfg = parse("host=db", NO_ENV)
        .expect("valid")
        .with_aws_iam()
        .expect("IAM allowed");
    assert!(cfg.aws_iam());
    assert_eq!(cfg.sslmode(), SslMode::Require);
    let err = parse("postgres://u:secret@db/app", NO_ENV)
        .expect("valid")
        .with_aws_iam()
        .expect_err("password and IAM");
    assert!(
        err.to_string()
            .contains("--aws-iam-auth generates the password"),
        "{err}"
    );
    assert!(!err.to_string().contains("secret"), "{err}");
    let err = parse("host=db sslmode=disable", NO_ENV)
        .expect("valid")
        .with_aws_iam()
        .expect_err("plaintext IAM");
    assert!(
        err.to_string().contains("sslmode=disable could send"),
        "{err}"
    );
}

#[test]
fn with_role_and_with_dbname_keep_each_other() {
    let cfg = parse("host=db", NO_ENV)
        .expect("valid")
        .with_role(Some("backup".into()));
    assert_eq!(cfg.role(), Some("backup"));
    assert_eq!(cfg.with_dbname("postgres").role(), Some("backup"));
}

#[test]
fn pgpass_host_is_localhost_for_the_default_socket_directory() {
    let cfg = parse("host=db", NO_ENV).expect("valid");
    assert_eq!(cfg.pgpass_host(&Host::Tcp("db".into())), "db");
    assert_eq!(
        cfg.pgpass_host(&Host::Socket(SOCKET_DIR.into())),
        "localhost"
    );
    assert_eq!(cfg.pgpass_host(&Host::Socket("/other".into())), "/other");
}

/// A service file in a temporary directory, named by `PGSERVICEFILE` in the returned env.
fn service_env(contents: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("pg_service.conf");
    std::fs::write(&file, contents).expect("write service file");
    let path = file.to_string_lossy().into_owned();
    (dir, path)
}

const SERVICE_FILE: &str = "\
# comment
[other]
host=elsewhere

[nightly]
host = svc-host
port=6432
dbname=svcdb
user=svcuser
sslmode=verify-full
";

#[test]
fn a_service_supplies_what_the_string_leaves_out_and_beats_the_environment() {
    let (_dir, file) = service_env(SERVICE_FILE);
    let env = [
        ("PGSERVICEFILE", file.as_str()),
        ("PGHOST", "envhost"),
        ("PGUSER", "envuser"),
        ("PGPASSWORD", "envpass"),
    ];
    let cfg = parse("service=nightly dbname=mine", &env).expect("valid");
    assert_eq!(cfg.hosts(), [Host::Tcp("svc-host".into())]);
    assert_eq!(cfg.ports(), [6432]);
    assert_eq!(cfg.user(), "svcuser", "service beats PGUSER");
    assert_eq!(cfg.dbname(), "mine", "the string beats the service");
    assert_eq!(
        cfg.password(),
        Some("envpass"),
        "unset by both: from the environment"
    );
    assert_eq!(cfg.sslmode(), SslMode::VerifyFull);

    // PGSERVICE selects the service too, and a URL works the same way.
    let mut with_pgservice = env.to_vec();
    with_pgservice.push(("PGSERVICE", "nightly"));
    let cfg = parse("postgres:///app", &with_pgservice).expect("valid");
    assert_eq!(cfg.to_string(), "postgres://svcuser@svc-host:6432/app");
}

#[test]
fn the_system_service_file_is_searched_after_the_users() {
    let (dir, user_file) = service_env("[mine]\nhost=user-file\n");
    std::fs::write(dir.path().join("pg_service.conf.sys"), "").expect("write");
    let sys = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        sys.path().join("pg_service.conf"),
        "[shared]\nhost=sys-file\n[mine]\nhost=not-this-one\n",
    )
    .expect("write");
    let sysconf = sys.path().to_string_lossy().into_owned();
    let env = [
        ("PGSERVICEFILE", user_file.as_str()),
        ("PGSYSCONFDIR", sysconf.as_str()),
    ];
    let host = |service: &str| {
        parse(&format!("service={service}"), &env)
            .expect("valid")
            .hosts()
            .to_vec()
    };
    assert_eq!(host("mine"), [Host::Tcp("user-file".into())]);
    assert_eq!(host("shared"), [Host::Tcp("sys-file".into())]);
}

#[test]
fn bad_service_files_name_the_file_and_line_but_not_the_value() {
    let cases = [
        (
            "[s]\nhost=db\npassword secret\n",
            "line 3 (expected key=value)",
        ),
        (
            "[s]\nbogus=secret\n",
            "line 2: invalid connection option \"bogus\"",
        ),
        (
            "[s]\nservice=other\n",
            "nested service specifications are not supported",
        ),
    ];
    for (contents, want) in cases {
        let (_dir, file) = service_env(contents);
        let err = parse("service=s", &[("PGSERVICEFILE", file.as_str())]).expect_err(contents);
        let message = err.to_string();
        assert!(message.contains(want), "{message}");
        assert!(message.contains(&file), "{message}");
        assert!(!message.contains("secret"), "{message}");
    }
}

#[test]
fn keepalives_and_tcp_user_timeout_follow_libpq_with_bounded_defaults() {
    let cfg = parse("host=db", &[]).expect("parses");
    assert_eq!(cfg.tcp(), super::TcpSettings::default());
    assert!(cfg.tcp().keepalives);

    let cfg = parse(
        "postgresql://db/app?keepalives_idle=30&keepalives_interval=5&keepalives_count=3&tcp_user_timeout=15000",
        &[],
    )
    .expect("parses");
    let tcp = cfg.tcp();
    assert_eq!(tcp.idle, Duration::from_secs(30));
    assert_eq!(tcp.interval, Duration::from_secs(5));
    assert_eq!(tcp.count, 3);
    assert_eq!(tcp.user_timeout, Duration::from_millis(15000));

    assert!(
        !parse("host=db keepalives=0", &[])
            .expect("parses")
            .tcp()
            .keepalives
    );
    // Zero keeps the default (libpq: the system's).
    assert_eq!(
        parse("host=db keepalives_idle=0", &[])
            .expect("parses")
            .tcp()
            .idle,
        super::TcpSettings::default().idle
    );
    for bad in [
        "keepalives=2",
        "keepalives_idle=soon",
        "tcp_user_timeout=-1",
    ] {
        let err = parse(&format!("host=db {bad}"), &[])
            .expect_err(bad)
            .to_string();
        assert!(
            err.contains(bad.split('=').next().expect("name")),
            "{bad}: {err}"
        );
    }
}
