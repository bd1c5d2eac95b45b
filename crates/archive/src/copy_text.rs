//! PostgreSQL COPY text format, as far as readers of an archive need it: rows are lines ending in
//! `\n`, fields are separated by tabs, `\N` is NULL, and backslash escapes (`\t`, `\n`, `\\`,
//! octal `\123`, hex `\x7f`, ...) stand for the bytes that would otherwise break the framing.

/// The rows of COPY text, without their terminating `\n`.
pub fn rows(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    // memchr finds the newlines many bytes at a time: this runs over every byte a dump reads.
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (row, after) = match memchr::memchr(b'\n', rest) {
            Some(end) => (&rest[..end], &rest[end + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = after;
        Some(row)
    })
}

/// The raw (still escaped) fields of one row. A row of a zero-column table is one empty line and
/// has no fields.
pub fn raw_fields(row: &[u8]) -> impl Iterator<Item = &[u8]> {
    (!row.is_empty())
        .then_some(row)
        .into_iter()
        .flat_map(|row| row.split(|&b| b == b'\t'))
}

/// Decodes one raw field: `None` for NULL (`\N`), else the value's bytes.
pub fn decode_field(raw: &[u8]) -> Option<Vec<u8>> {
    if raw == b"\\N" {
        return None;
    }
    let mut out = Vec::with_capacity(raw.len());
    decode_field_into(raw, &mut out);
    Some(out)
}

/// Appends the bytes of one raw field that is not NULL to `out`.
pub fn decode_field_into(raw: &[u8], out: &mut Vec<u8>) {
    // Most fields have no escapes: copied whole.
    let Some(first) = memchr::memchr(b'\\', raw) else {
        out.extend_from_slice(raw);
        return;
    };
    out.extend_from_slice(&raw[..first]);
    let mut i = first;
    while i < raw.len() {
        let b = raw[i];
        i += 1;
        if b != b'\\' || i >= raw.len() {
            out.push(b);
            continue;
        }
        let c = raw[i];
        i += 1;
        match c {
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(0x0b),
            b'0'..=b'7' => {
                let mut value = u32::from(c - b'0');
                for _ in 0..2 {
                    match raw.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push((value & 0xff) as u8);
            }
            b'x' => {
                let mut value = 0u32;
                let mut digits = 0;
                while digits < 2 {
                    match raw.get(i).and_then(|&d| (d as char).to_digit(16)) {
                        Some(d) => {
                            value = value * 16 + d;
                            i += 1;
                            digits += 1;
                        }
                        None => break,
                    }
                }
                if digits == 0 {
                    out.push(b'x');
                } else {
                    out.push(value as u8);
                }
            }
            other => out.push(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_split_on_newlines_only() {
        let text = b"1\ta\n2\tb\\nc\n\n";
        let all: Vec<&[u8]> = rows(text).collect();
        assert_eq!(all, vec![&b"1\ta"[..], b"2\tb\\nc", b""]);
        assert_eq!(rows(b"").count(), 0);
        assert_eq!(rows(b"\n").collect::<Vec<_>>(), vec![&b""[..]]);
        // A last row without its newline is still a row.
        assert_eq!(rows(b"a\nb").collect::<Vec<_>>(), vec![&b"a"[..], b"b"]);
    }

    #[test]
    fn fields_split_on_tabs_and_zero_columns_have_none() {
        assert_eq!(
            raw_fields(b"a\t\t\\N").collect::<Vec<_>>(),
            vec![&b"a"[..], b"", b"\\N"]
        );
        assert_eq!(raw_fields(b"").count(), 0);
    }

    #[test]
    fn escapes_decode_like_copy_from() {
        let cases: [(&[u8], Option<&[u8]>); 9] = [
            (b"\\N", None),
            (b"", Some(b"")),
            (b"plain", Some(b"plain")),
            (b"a\\tb\\nc\\\\d", Some(b"a\tb\nc\\d")),
            (b"\\b\\f\\r\\v", Some(b"\x08\x0c\r\x0b")),
            (b"\\101\\7", Some(b"A\x07")),
            (b"\\x41\\x4", Some(b"A\x04")),
            (b"\\.", Some(b".")),
            (b"\\N\\N", Some(b"NN")),
        ];
        for (raw, expected) in cases {
            assert_eq!(
                decode_field(raw).as_deref(),
                expected,
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }
}
