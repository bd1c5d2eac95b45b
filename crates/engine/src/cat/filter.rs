//! `--where-key`: a small predicate language over a table's integer key, e.g.
//! `id BETWEEN 1000 AND 2000`, `id IN (1, 2, 3)`, `id >= 10 AND id < 20`. It becomes a set of
//! inclusive intervals, used both to skip chunks by their recorded key range and to filter rows.

use pgark_archive::{KeyRange, TableEntry, copy_text};

use crate::EngineError;

/// Inclusive `(low, high)` integer intervals.
type Intervals = Vec<(i64, i64)>;

/// A union of inclusive integer intervals over one key column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFilter {
    column: String,
    intervals: Intervals,
}

impl KeyFilter {
    /// Parses `expression`: terms on one column joined by AND; each term is
    /// `col BETWEEN a AND b`, `col IN (a, b, ...)` or `col <op> a` with `=`, `<`, `<=`, `>`, `>=`.
    pub fn parse(expression: &str) -> Result<KeyFilter, EngineError> {
        let invalid = |reason: &str| EngineError::InvalidKeyFilter {
            expression: expression.to_owned(),
            reason: reason.to_owned(),
        };
        let tokens = tokenize(expression).ok_or_else(|| invalid("unexpected character"))?;
        let mut parser = Parser {
            tokens: &tokens,
            position: 0,
        };
        let mut column: Option<String> = None;
        let mut intervals = vec![(i64::MIN, i64::MAX)];
        loop {
            let (term_column, term) = parser.term().map_err(&invalid)?;
            match &column {
                Some(c) if *c != term_column => {
                    return Err(invalid("all terms must use the same key column"));
                }
                _ => column = Some(term_column),
            }
            intervals = intersect(&intervals, &term);
            if parser.at_end() {
                break;
            }
            if !parser.keyword("and") {
                return Err(invalid(
                    "expected AND between terms (OR is not supported; use IN)",
                ));
            }
        }
        let column = column.ok_or_else(|| invalid("empty"))?;
        Ok(KeyFilter { column, intervals })
    }

    /// The key intervals a `--where` predicate limits `key_column` to, when the whole predicate
    /// is key terms joined by AND in the language [`KeyFilter::parse`] reads (`id = 5`,
    /// `id IN (1, 2)`, `id BETWEEN 1 AND 9`, `id >= 10 AND id < 20`); `None` for anything else,
    /// which must then be read whole. The server still evaluates the predicate itself: this
    /// only decides which chunks can hold matching rows, so it must never be narrower than SQL.
    pub fn from_predicate(predicate: &str, key_column: &str) -> Option<KeyFilter> {
        KeyFilter::parse(predicate)
            .ok()
            .filter(|filter| filter.column == key_column)
    }

    pub fn column(&self) -> &str {
        &self.column
    }

    /// Whether a chunk with this recorded range may hold matching rows (a chunk without a range
    /// always may).
    pub fn may_match(&self, range: Option<&KeyRange>) -> bool {
        let Some(range) = range else { return true };
        match (range.min.parse::<i64>(), range.max.parse::<i64>()) {
            (Ok(min), Ok(max)) => self
                .intervals
                .iter()
                .any(|&(lo, hi)| lo <= max && min <= hi),
            _ => true,
        }
    }

    /// Whether the row's key field (0-based `field`) lies in the filter. NULL keys never match.
    pub fn matches_row(&self, row: &[u8], field: usize) -> bool {
        copy_text::raw_fields(row)
            .nth(field)
            .and_then(|raw| std::str::from_utf8(raw).ok()?.parse::<i64>().ok())
            .is_some_and(|key| {
                self.intervals
                    .iter()
                    .any(|&(lo, hi)| lo <= key && key <= hi)
            })
    }
}

/// The position of the filter's key column in the table's COPY columns; the table must have a
/// recorded integer key and the filter must name it.
pub(super) fn key_field(table: &TableEntry) -> Result<usize, EngineError> {
    let key = table
        .key_column
        .as_deref()
        .ok_or_else(|| EngineError::NoKey {
            table: table.display_name(),
        })?;
    table
        .columns
        .iter()
        .position(|c| c.name == key)
        .ok_or_else(|| EngineError::NoKey {
            table: table.display_name(),
        })
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Number(i64),
    Symbol(&'static str),
}

fn tokenize(input: &str) -> Option<Vec<Token>> {
    let mut tokens = Vec::new();
    let chars: Vec<char> = input.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit()
            || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            i += 1;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            tokens.push(Token::Number(
                chars[start..i].iter().collect::<String>().parse().ok()?,
            ));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(Token::Word(
                chars[start..i].iter().collect::<String>().to_lowercase(),
            ));
        } else if c == '"' {
            let (word, next) = quoted_identifier(&chars, i)?;
            i = next;
            tokens.push(Token::Word(word));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let symbol = match (two.as_str(), c) {
                ("<=", _) => "<=",
                (">=", _) => ">=",
                (_, '<') => "<",
                (_, '>') => ">",
                (_, '=') => "=",
                (_, '(') => "(",
                (_, ')') => ")",
                (_, ',') => ",",
                _ => return None,
            };
            i += symbol.len();
            tokens.push(Token::Symbol(symbol));
        }
    }
    Some(tokens)
}

/// The identifier in double quotes starting at `chars[start]` (a `"`), with `""` read as one
/// quote, and the position after its closing quote; `None` if it is not closed.
pub(crate) fn quoted_identifier(chars: &[char], start: usize) -> Option<(String, usize)> {
    let mut word = String::new();
    let mut i = start + 1;
    loop {
        match chars.get(i)? {
            '"' if chars.get(i + 1) == Some(&'"') => {
                word.push('"');
                i += 2;
            }
            '"' => return Some((word, i + 1)),
            &other => {
                word.push(other);
                i += 1;
            }
        }
    }
}

struct Parser<'t> {
    tokens: &'t [Token],
    position: usize,
}

impl Parser<'_> {
    fn at_end(&self) -> bool {
        self.position >= self.tokens.len()
    }

    fn next(&mut self) -> Option<&Token> {
        let token = self.tokens.get(self.position);
        self.position += 1;
        token
    }

    fn keyword(&mut self, word: &str) -> bool {
        if matches!(self.tokens.get(self.position), Some(Token::Word(w)) if w == word) {
            self.position += 1;
            true
        } else {
            false
        }
    }

    fn number(&mut self) -> Result<i64, &'static str> {
        match self.next() {
            Some(Token::Number(n)) => Ok(*n),
            _ => Err("expected an integer"),
        }
    }

    fn symbol(&mut self, symbol: &str) -> Result<(), &'static str> {
        match self.next() {
            Some(Token::Symbol(s)) if *s == symbol => Ok(()),
            _ => Err("unexpected token"),
        }
    }

    /// One term: its column and the intervals it allows.
    fn term(&mut self) -> Result<(String, Intervals), &'static str> {
        let column = match self.next() {
            Some(Token::Word(w)) if w != "and" => w.clone(),
            _ => return Err("expected a key column name"),
        };
        if self.keyword("between") {
            let lo = self.number()?;
            if !self.keyword("and") {
                return Err("expected AND in BETWEEN");
            }
            let hi = self.number()?;
            return Ok((column, if lo <= hi { vec![(lo, hi)] } else { vec![] }));
        }
        if self.keyword("in") {
            self.symbol("(")?;
            let mut values = vec![self.number()?];
            loop {
                match self.next() {
                    Some(Token::Symbol(",")) => values.push(self.number()?),
                    Some(Token::Symbol(")")) => break,
                    _ => return Err("expected , or ) in the IN list"),
                }
            }
            values.sort_unstable();
            values.dedup();
            return Ok((column, values.into_iter().map(|v| (v, v)).collect()));
        }
        let op = match self.next() {
            Some(Token::Symbol(op)) => *op,
            _ => return Err("expected BETWEEN, IN or a comparison"),
        };
        let value = self.number()?;
        let interval = match op {
            "=" => Some((value, value)),
            "<" => value.checked_sub(1).map(|v| (i64::MIN, v)),
            "<=" => Some((i64::MIN, value)),
            ">" => value.checked_add(1).map(|v| (v, i64::MAX)),
            ">=" => Some((value, i64::MAX)),
            _ => return Err("expected a comparison operator"),
        };
        Ok((column, interval.into_iter().collect()))
    }
}

fn intersect(a: &[(i64, i64)], b: &[(i64, i64)]) -> Intervals {
    let mut out = Vec::new();
    for &(a_lo, a_hi) in a {
        for &(b_lo, b_hi) in b {
            let (lo, hi) = (a_lo.max(b_lo), a_hi.min(b_hi));
            if lo <= hi {
                out.push((lo, hi));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intervals(expression: &str) -> Vec<(i64, i64)> {
        KeyFilter::parse(expression).expect("parses").intervals
    }

    #[test]
    fn expressions_become_intervals() {
        assert_eq!(intervals("id BETWEEN 1000 AND 2000"), vec![(1000, 2000)]);
        assert_eq!(
            intervals("id IN (3, 1, 2, 2)"),
            vec![(1, 1), (2, 2), (3, 3)]
        );
        assert_eq!(intervals("id >= 10 AND id < 20"), vec![(10, 19)]);
        assert_eq!(intervals("id = -5"), vec![(-5, -5)]);
        assert_eq!(intervals("ID > 5 and id <= 5"), Vec::<(i64, i64)>::new());
        assert_eq!(
            intervals("id IN (1, 5, 9) AND id BETWEEN 2 AND 9"),
            vec![(5, 5), (9, 9)]
        );
        assert_eq!(
            KeyFilter::parse("\"Id\" = 1").expect("parses").column(),
            "Id"
        );
    }

    #[test]
    fn malformed_expressions_are_refused_with_a_reason() {
        for bad in [
            "",
            "id",
            "id = 'x'",
            "id = 1 OR id = 2",
            "id = 1 AND other = 2",
            "id BETWEEN 1",
            "id IN (1,",
            "id ~ 3",
            "id = 99999999999999999999",
        ] {
            let err = KeyFilter::parse(bad).expect_err(bad).to_string();
            assert!(err.contains("--where-key"), "{bad}: {err}");
        }
    }

    #[test]
    fn only_plain_key_predicates_prune_chunks() {
        let pruning = |p: &str| KeyFilter::from_predicate(p, "id").map(|f| f.intervals);
        assert_eq!(pruning("id IN (4, 2)"), Some(vec![(2, 2), (4, 4)]));
        assert_eq!(pruning("ID between 1 and 3"), Some(vec![(1, 3)]));
        assert_eq!(pruning("id > 1 AND id < 3"), Some(vec![(2, 2)]));
        for whole in [
            "id = 1 OR id = 2",
            "id = 1 AND name = 'x'",
            "other = 1",
            "id = 1.5",
            "\"Id\" = 1",
            "(id = 1)",
            "id = 1 -- comment",
            "true",
        ] {
            assert_eq!(pruning(whole), None, "{whole}");
        }
    }

    #[test]
    fn chunks_and_rows_are_matched_against_the_intervals() {
        let filter = KeyFilter::parse("id BETWEEN 10 AND 20").expect("parses");
        let range = |min: i64, max: i64| KeyRange {
            column: "id".into(),
            min: min.to_string(),
            max: max.to_string(),
        };
        assert!(filter.may_match(Some(&range(0, 10))));
        assert!(filter.may_match(Some(&range(15, 16))));
        assert!(!filter.may_match(Some(&range(21, 30))));
        assert!(filter.may_match(None));
        assert!(filter.matches_row(b"x\t15", 1));
        assert!(!filter.matches_row(b"x\t25", 1));
        assert!(!filter.matches_row(b"x\t\\N", 1));
    }
}
