//! Reading connection strings into [`Settings`], in both of libpq's forms: `postgres://` URLs and
//! `key=value` strings. The grammar follows libpq's `conninfo_uri_parse_options` and
//! `conninfo_parse`, so strings that work with psql work here.
//!
//! Error messages never echo the input wholesale: a malformed string often has a password in it.
//! They name the part at fault, and echo only text that cannot be a misplaced password.

use super::settings::{Key, Settings};
use crate::PgError;

const URL_PREFIXES: [&str; 2] = ["postgresql://", "postgres://"];

/// Parses either form; an empty (or all-blank) string gives no settings, i.e. all defaults.
pub(crate) fn parse(s: &str) -> Result<Settings, PgError> {
    let mut settings = Settings::default();
    match URL_PREFIXES
        .iter()
        .find_map(|prefix| s.strip_prefix(prefix))
    {
        Some(rest) => parse_url(rest, &mut settings)?,
        None => parse_keyword_value(s, &mut settings)?,
    }
    Ok(settings)
}

fn invalid(reason: impl Into<String>) -> PgError {
    PgError::InvalidConfig {
        reason: reason.into(),
    }
}

/// libpq's `isspace` in the C locale.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

/// `key = value` pairs separated by whitespace; values may be single-quoted, and a backslash
/// escapes the next character in both quoted and bare values.
fn parse_keyword_value(s: &str, settings: &mut Settings) -> Result<(), PgError> {
    let mut chars = s.chars().peekable();
    // Set after a bare password value: if what follows is malformed, it is probably the rest of a
    // password with a space in it, so it must not be echoed.
    let mut after_bare_password = false;
    let leaked_password = || {
        invalid(
            "unexpected text after the password — a password containing spaces must be quoted: \
             password='...'",
        )
    };

    loop {
        while chars.next_if(|&c| is_space(c)).is_some() {}
        if chars.peek().is_none() {
            return Ok(());
        }

        let mut name = String::new();
        while let Some(c) = chars.next_if(|&c| c != '=' && !is_space(c)) {
            name.push(c);
        }
        while chars.next_if(|&c| is_space(c)).is_some() {}
        if chars.next_if_eq(&'=').is_none() {
            if after_bare_password {
                return Err(leaked_password());
            }
            return Err(missing_equals(&name));
        }
        while chars.next_if(|&c| is_space(c)).is_some() {}

        let mut value = String::new();
        let quoted = chars.next_if_eq(&'\'').is_some();
        if quoted {
            loop {
                match chars.next() {
                    None => {
                        return Err(invalid(
                            "unterminated quoted string in connection info string",
                        ));
                    }
                    Some('\\') => value.extend(chars.next()),
                    Some('\'') => break,
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|&c| !is_space(c)) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }

        let key = match Key::lookup(&name) {
            Ok(key) => key,
            Err(_) if after_bare_password => return Err(leaked_password()),
            Err(e) => return Err(e),
        };
        after_bare_password = key == Key::Password && !quoted;
        settings.set(key, value);
    }
}

fn missing_equals(name: &str) -> PgError {
    if let Some((scheme, _)) = name.split_once("://") {
        return invalid(format!(
            "unsupported connection URL scheme \"{scheme}\" — use postgres:// or postgresql://"
        ));
    }
    invalid(format!(
        "missing \"=\" after \"{name}\" in connection info string — write key=value pairs \
         (for example dbname={name}) or a postgres:// URL"
    ))
}

/// `[user[:password]@][host[:port][,...]][/dbname][?key=value[&...]]`, everything after the
/// scheme percent-decoded.
fn parse_url(rest: &str, settings: &mut Settings) -> Result<(), PgError> {
    // libpq looks for the credentials' '@' only up to the first '/'.
    let mut rest = rest;
    let credentials_end = rest.find(['@', '/']);
    if let Some(at) = credentials_end.filter(|&i| rest.as_bytes()[i] == b'@') {
        let credentials = &rest[..at];
        let (user, password) = match credentials.split_once(':') {
            Some((user, password)) => (user, Some(password)),
            None => (credentials, None),
        };
        if !user.is_empty() {
            settings.set(Key::User, decode(user, "user name")?);
        }
        if let Some(password) = password.filter(|p| !p.is_empty()) {
            settings.set(Key::Password, decode(password, "password")?);
        }
        rest = &rest[at + 1..];
    }

    let (hosts, ports, terminator, rest) = parse_netlocs(rest)?;
    if !hosts.is_empty() {
        settings.set(Key::Host, hosts);
    }
    // libpq would store "," for "h1,h2", which hides PGPORT; a URL without any port should not.
    if ports.chars().any(|c| c != ',') {
        settings.set(Key::Port, ports);
    }

    let params = match terminator {
        None => return Ok(()),
        Some('?') => rest,
        Some(_) => {
            let (dbname, params) = match rest.split_once('?') {
                Some((dbname, params)) => (dbname, Some(params)),
                None => (rest, None),
            };
            // An empty path must not set dbname: that would hide PGDATABASE.
            if !dbname.is_empty() {
                settings.set(Key::Dbname, decode(dbname, "database name")?);
            }
            match params {
                Some(params) => params,
                None => return Ok(()),
            }
        }
    };
    parse_query(params, settings)
}

/// Reads the comma-separated `host[:port]` list. Returns the decoded hosts and ports joined by
/// commas (the same shape as `host=`/`port=` in a key=value string), the character that ended the
/// list (`/` or `?`, `None` at the end), and the text after it.
fn parse_netlocs(mut rest: &str) -> Result<(String, String, Option<char>, &str), PgError> {
    let mut hosts = String::new();
    let mut ports = String::new();
    let mut index = 0;
    loop {
        index += 1;
        let host;
        if let Some(after_bracket) = rest.strip_prefix('[') {
            let close = after_bracket.find(']').ok_or_else(|| {
                invalid("missing \"]\" after an IPv6 host address in connection URL")
            })?;
            if close == 0 {
                return Err(invalid("empty IPv6 host address \"[]\" in connection URL"));
            }
            host = &after_bracket[..close];
            rest = &after_bracket[close + 1..];
            if let Some(c) = rest
                .chars()
                .next()
                .filter(|c| !matches!(c, ':' | '/' | '?' | ','))
            {
                return Err(invalid(format!(
                    "unexpected character \"{c}\" after an IPv6 host address in connection URL \
                     (expected \":\", \"/\", \"?\" or \",\")"
                )));
            }
        } else {
            let end = rest.find([':', '/', '?', ',']).unwrap_or(rest.len());
            host = &rest[..end];
            rest = &rest[end..];
        }
        hosts.push_str(&decode(host, "host")?);

        let mut terminator = rest.chars().next();
        if terminator == Some(':') {
            let end = rest[1..]
                .find(['/', '?', ','])
                .map_or(rest.len(), |i| i + 1);
            let port = decode(&rest[1..end], "port")?;
            if !port.trim().is_empty() && super::parse_port(&port).is_none() {
                // Not echoed: in "postgres://user:secret/db" (a missing '@') the "port" is the
                // password.
                return Err(invalid(format!(
                    "invalid port number for host {index} in connection URL — a port is a number \
                     from 1 to 65535; in a user name or password, \"@\", \":\" and \"/\" must be \
                     percent-encoded"
                )));
            }
            ports.push_str(&port);
            rest = &rest[end..];
            terminator = rest.chars().next();
        }

        match terminator {
            Some(',') => {
                hosts.push(',');
                ports.push(',');
                rest = &rest[1..];
            }
            Some(c) => return Ok((hosts, ports, Some(c), &rest[1..])),
            None => return Ok((hosts, ports, None, rest)),
        }
    }
}

/// `key=value&...`; each key and value percent-decoded. `ssl=true` means `sslmode=require`, as
/// libpq accepts for JDBC compatibility.
fn parse_query(params: &str, settings: &mut Settings) -> Result<(), PgError> {
    // libpq stops at the end of the string, so a trailing '&' is harmless but "&&" is not.
    let params = params.strip_suffix('&').unwrap_or(params);
    if params.is_empty() {
        return Ok(());
    }
    for (i, param) in params.split('&').enumerate() {
        let number = i + 1;
        let Some((name, value)) = param.split_once('=') else {
            return Err(invalid(format!(
                "missing \"=\" in query parameter {number} of connection URL"
            )));
        };
        let name = decode(name, "name of a query parameter")?;
        if value.contains('=') {
            return Err(invalid(format!(
                "extra \"=\" in the value of query parameter \"{name}\" of connection URL — \
                 percent-encode it as %3D"
            )));
        }
        let value = decode(value, &format!("value of query parameter \"{name}\""))?;
        if name == "ssl" && value == "true" {
            settings.set(Key::SslMode, "require");
            continue;
        }
        settings.set(Key::lookup(&name)?, value);
    }
    Ok(())
}

/// Percent-decodes one URL component. `what` names the component in errors, which never echo it.
fn decode(s: &str, what: &str) -> Result<String, PgError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let hex = |b: Option<&u8>| b.and_then(|b| char::from(*b).to_digit(16));
        let (Some(hi), Some(lo)) = (hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) else {
            return Err(invalid(format!(
                "invalid percent-encoding in the {what} in connection URL (\"%\" must be \
                 followed by two hex digits; write a literal \"%\" as %25)"
            )));
        };
        let byte = (hi * 16 + lo) as u8;
        if byte == 0 {
            return Err(invalid(format!(
                "forbidden value %00 in the {what} in connection URL"
            )));
        }
        out.push(byte);
        i += 3;
    }
    String::from_utf8(out).map_err(|_| {
        invalid(format!(
            "the {what} in connection URL is not valid UTF-8 once percent-decoded"
        ))
    })
}
