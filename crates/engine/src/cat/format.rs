//! Output formats for `cat`: COPY text as stored; CSV exactly as `COPY ... TO STDOUT (FORMAT
//! csv)` prints it; JSON lines with values typed by column type.

use pgark_archive::{ColumnEntry, copy_text};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatFormat {
    Copy,
    Csv,
    Jsonl,
}

/// How a column's values are written in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JsonKind {
    Number,
    Boolean,
    Json,
    Text,
}

impl JsonKind {
    fn of(type_name: &str) -> JsonKind {
        match type_name {
            "smallint" | "integer" | "bigint" | "real" | "double precision" | "oid" => {
                JsonKind::Number
            }
            t if t == "numeric" || t.starts_with("numeric(") => JsonKind::Number,
            "boolean" => JsonKind::Boolean,
            "json" | "jsonb" => JsonKind::Json,
            _ => JsonKind::Text,
        }
    }
}

pub(super) struct Formatter {
    format: CatFormat,
    /// JSON object keys, already encoded (`"name":`).
    keys: Vec<String>,
    kinds: Vec<JsonKind>,
}

impl Formatter {
    pub(super) fn new(format: CatFormat, columns: &[ColumnEntry]) -> Formatter {
        Formatter {
            format,
            keys: columns
                .iter()
                .map(|c| format!("{}:", serde_json::to_string(&c.name).unwrap_or_default()))
                .collect(),
            kinds: columns.iter().map(|c| JsonKind::of(&c.type_name)).collect(),
        }
    }

    pub(super) fn header(&self) -> Option<Vec<u8>> {
        None
    }

    /// Appends one row (COPY text without its `\n`) to `out` in the chosen format.
    pub(super) fn write_row(&mut self, row: &[u8], out: &mut Vec<u8>) {
        match self.format {
            CatFormat::Copy => {
                out.extend_from_slice(row);
                out.push(b'\n');
            }
            CatFormat::Csv => {
                let single = self.keys.len() == 1;
                for (i, raw) in copy_text::raw_fields(row).enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    if let Some(value) = copy_text::decode_field(raw) {
                        write_csv_value(&value, single, out);
                    }
                }
                out.push(b'\n');
            }
            CatFormat::Jsonl => {
                out.push(b'{');
                for (i, raw) in copy_text::raw_fields(row).enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(
                        self.keys
                            .get(i)
                            .map_or(b"\"?\":".as_slice(), |k| k.as_bytes()),
                    );
                    let kind = self.kinds.get(i).copied().unwrap_or(JsonKind::Text);
                    write_json_value(copy_text::decode_field(raw).as_deref(), kind, out);
                }
                out.extend_from_slice(b"}\n");
            }
        }
    }
}

/// PostgreSQL's CSV rules: NULL is nothing; a value is quoted when it is empty (to tell it from
/// NULL), contains the delimiter, a quote, CR or LF, or is `\.` alone in a one-column row.
fn write_csv_value(value: &[u8], single_column: bool, out: &mut Vec<u8>) {
    let quote = value.is_empty()
        || (single_column && value == b"\\.")
        || value
            .iter()
            .any(|&b| matches!(b, b',' | b'"' | b'\n' | b'\r'));
    if !quote {
        out.extend_from_slice(value);
        return;
    }
    out.push(b'"');
    for &b in value {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out.push(b'"');
}

fn write_json_value(value: Option<&[u8]>, kind: JsonKind, out: &mut Vec<u8>) {
    let Some(value) = value else {
        out.extend_from_slice(b"null");
        return;
    };
    let text = String::from_utf8_lossy(value);
    match kind {
        JsonKind::Number if is_json_number(&text) => out.extend_from_slice(text.as_bytes()),
        JsonKind::Boolean if text == "t" => out.extend_from_slice(b"true"),
        JsonKind::Boolean if text == "f" => out.extend_from_slice(b"false"),
        JsonKind::Json => out.extend_from_slice(text.as_bytes()),
        // NaN and ±Infinity have no JSON number form; they stay strings, like everything else.
        _ => out.extend_from_slice(serde_json::to_string(&text).unwrap_or_default().as_bytes()),
    }
}

/// JSON's number grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
fn is_json_number(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    let int_start = i;
    let int_len = digits(&mut i);
    if int_len == 0 || (int_len > 1 && b[int_start] == b'0') {
        return false;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(types: &[(&str, &str)]) -> Vec<ColumnEntry> {
        types
            .iter()
            .map(|(n, t)| ColumnEntry {
                name: (*n).into(),
                type_name: (*t).into(),
            })
            .collect()
    }

    fn render(format: CatFormat, cols: &[(&str, &str)], row: &[u8]) -> String {
        let mut out = Vec::new();
        Formatter::new(format, &columns(cols)).write_row(row, &mut out);
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn csv_quotes_like_postgres() {
        let cols = [
            ("a", "text"),
            ("b", "text"),
            ("c", "text"),
            ("d", "text"),
            ("e", "integer"),
        ];
        assert_eq!(
            render(CatFormat::Csv, &cols, b"plain\t\t\\N\tq\"u,o\\nte\t5"),
            "plain,\"\",,\"q\"\"u,o\nte\",5\n"
        );
        assert_eq!(
            render(CatFormat::Csv, &[("a", "text")], b"\\\\."),
            "\"\\.\"\n"
        );
        assert_eq!(
            render(CatFormat::Csv, &[("a", "text"), ("b", "text")], b"\\\\.\tx"),
            "\\.,x\n"
        );
    }

    #[test]
    fn json_values_are_typed_by_column() {
        let cols = [
            ("i", "integer"),
            ("n", "numeric(5,2)"),
            ("f", "double precision"),
            ("b", "boolean"),
            ("j", "jsonb"),
            ("t", "text"),
            ("z", "date"),
        ];
        assert_eq!(
            render(
                CatFormat::Jsonl,
                &cols,
                b"1\t2.50\tNaN\tt\t{\"k\": [1]}\ttab\\there\t\\N"
            ),
            "{\"i\":1,\"n\":2.50,\"f\":\"NaN\",\"b\":true,\"j\":{\"k\": [1]},\"t\":\"tab\\there\",\"z\":null}\n"
        );
        assert_eq!(
            render(CatFormat::Jsonl, &[("f", "real")], b"-1.5e+30"),
            "{\"f\":-1.5e+30}\n"
        );
        assert_eq!(
            render(CatFormat::Jsonl, &[("f", "real")], b"-Infinity"),
            "{\"f\":\"-Infinity\"}\n"
        );
    }

    #[test]
    fn json_number_grammar() {
        for ok in ["0", "-0", "12", "1.5", "1e10", "-2.5E-3"] {
            assert!(is_json_number(ok), "{ok}");
        }
        for bad in ["", "-", "01", "1.", ".5", "1e", "NaN", "Infinity", "0x1"] {
            assert!(!is_json_number(bad), "{bad}");
        }
    }
}
