//! Which chunks of a table can hold rows matching `--where`, from what each chunk records about
//! the table's primary key (see `pgark_archive::key_summary`): the range of the key's leading
//! column, and a membership filter over the whole key.
//!
//! Only the predicate's top-level AND terms of plain forms are used: `col = literal`,
//! `col IN (literals)`, `(a, b) = (literals)`, `(a, b) IN ((...), ...)`, `col BETWEEN x AND y`
//! and `col < literal` (and `<=`, `>`, `>=`); literals are integers or plain string constants.
//! Ignoring any other AND term only widens the set of chunks read, so every other form is
//! ignored; a top-level OR, a comment or any token this reader does not know makes it read every
//! chunk. The server still evaluates the whole predicate on the rows read: this only decides
//! which chunks to read, and must never be narrower than SQL.
//!
//! Literals are compared as COPY prints them: the target server casts each to the column's type
//! and prints it with `COPY ... TO STDOUT` in this session (whose settings are the dump's), so
//! `'550E8400-E29B-...'` meets the chunk's `550e8400-e29b-...` and `'2024-01-01'` a timestamp's
//! `2024-01-01 00:00:00`. A string constant is cast exactly as SQL coerces it to the column's
//! type; an integer is used only against integer columns.

use std::collections::{BTreeSet, HashMap};

use futures::StreamExt;
use pgark_archive::key_summary::{KeyFilter, KeyOrder};
use pgark_archive::{TableEntry, copy_text};
use pgark_pg::Connection;

use crate::{BackupRef, EngineError, session};

/// Filters fetched at once.
const FILTERS_IN_FLIGHT: usize = 16;
/// The most key tuples looked up in filters; more read every chunk the ranges leave.
const MAX_TUPLES: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// An identifier, case-folded unless quoted.
    Word(String),
    /// A keyword-looking word, lower-cased, as written without quotes.
    Keyword(String),
    Integer(String),
    /// A plain string constant, as SQL source (quotes doubled).
    Text(String),
    Symbol(&'static str),
    /// Something else harmless inside a term (a decimal number, an operator).
    Other,
}

/// A literal, as SQL source, and whether it is an integer constant.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Literal {
    sql: String,
    integer: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Condition {
    /// The column equals one of these.
    AnyOf(Vec<Literal>),
    /// The column is at least (`inclusive`) or more than this.
    Above(Literal, bool),
    /// The column is at most (`inclusive`) or less than this.
    Below(Literal, bool),
}

/// The conditions a `--where` predicate's top-level AND terms put on single columns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KeyConditions {
    terms: Vec<(String, Condition)>,
}

impl Condition {
    fn literals(&self) -> Vec<&Literal> {
        match self {
            Condition::AnyOf(values) => values.iter().collect(),
            Condition::Above(v, _) | Condition::Below(v, _) => vec![v],
        }
    }
}

impl KeyConditions {
    /// `None` when the predicate cannot be split into AND terms safely (a top-level OR, a
    /// comment, dollar quoting, escapes).
    pub(crate) fn parse(predicate: &str) -> Option<KeyConditions> {
        let tokens = tokenize(predicate)?;
        let mut terms = Vec::new();
        for term in split_and(&tokens)? {
            terms.extend(read_term(term));
        }
        Some(KeyConditions { terms })
    }

    /// For `cat --where-key`, where every term must say something about a column: the same
    /// forms as [`parse`](Self::parse), with a reason for anything else.
    pub(crate) fn parse_strict(expression: &str) -> Result<KeyConditions, &'static str> {
        let tokens = tokenize(expression)
            .ok_or("comments, dollar quotes, escape strings and backslashes are not read")?;
        let terms =
            split_and(&tokens).ok_or("OR (use IN) and unbalanced parentheses are not supported")?;
        let mut conditions = Vec::new();
        for term in terms {
            let read = read_term(term);
            if read.is_empty() {
                return Err("each term must be key = value, key IN (values), \
                            key BETWEEN value AND value or key <, <=, >, >= value, \
                            with integer or quoted constants, joined by AND");
            }
            conditions.extend(read);
        }
        Ok(KeyConditions { terms: conditions })
    }

    /// The columns the conditions name, each once.
    pub(crate) fn columns(&self) -> BTreeSet<&str> {
        self.terms.iter().map(|(c, _)| c.as_str()).collect()
    }

    fn on(&self, column: &str) -> impl Iterator<Item = &Condition> {
        self.terms
            .iter()
            .filter(move |(c, _)| c == column)
            .map(|(_, condition)| condition)
    }

    /// The smallest set of values the column must equal, if any term says.
    fn any_of(&self, column: &str) -> Option<&[Literal]> {
        self.on(column)
            .filter_map(|c| match c {
                Condition::AnyOf(values) => Some(values.as_slice()),
                _ => None,
            })
            .min_by_key(|values| values.len())
    }
}

/// The identifier in double quotes starting at `chars[start]` (a `"`), with `""` read as one
/// quote, and the position after its closing quote; `None` if it is not closed.
fn quoted_identifier(chars: &[char], start: usize) -> Option<(String, usize)> {
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

fn tokenize(input: &str) -> Option<Vec<Token>> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c.is_whitespace() {
            i += 1;
        } else if (c == '-' && next == Some('-')) || (c == '/' && next == Some('*')) {
            return None;
        } else if c.is_ascii_digit()
            || (c == '-'
                && next.is_some_and(|n| n.is_ascii_digit())
                && !matches!(
                    tokens.last(),
                    Some(Token::Word(_) | Token::Integer(_) | Token::Text(_) | Token::Other)
                        | Some(Token::Symbol(")"))
                ))
        {
            let start = i;
            i += 1;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            if i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '.' || chars[i] == '_')
            {
                // A decimal, an exponent, `0x1F`, `1_000`: not an integer constant we read.
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || matches!(chars[i], '.' | '_' | '+' | '-'))
                {
                    i += 1;
                }
                tokens.push(Token::Other);
            } else {
                tokens.push(Token::Integer(chars[start..i].iter().collect()));
            }
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '$')) {
                i += 1;
            }
            if matches!(chars.get(i), Some('\'' | '&')) {
                // E'...', U&'...', B'...', X'...': escapes and bit strings are not read.
                return None;
            }
            let word: String = chars[start..i].iter().collect::<String>().to_lowercase();
            let keyword = matches!(
                word.as_str(),
                "and" | "or" | "not" | "in" | "between" | "symmetric" | "is" | "null"
            );
            tokens.push(if keyword {
                Token::Keyword(word)
            } else {
                Token::Word(word)
            });
        } else if c == '"' {
            let (word, next) = quoted_identifier(&chars, i)?;
            i = next;
            tokens.push(Token::Word(word));
        } else if c == '\'' {
            let start = i;
            i += 1;
            loop {
                match chars.get(i)? {
                    '\'' if chars.get(i + 1) == Some(&'\'') => i += 2,
                    '\'' => {
                        i += 1;
                        break;
                    }
                    _ => i += 1,
                }
            }
            let constant: String = chars[start..i].iter().collect();
            // Constants separated by a newline are one in SQL, and a backslash is an escape
            // where standard_conforming_strings is off: neither is read.
            let after = chars[i..].iter().find(|c| !c.is_whitespace());
            if after == Some(&'\'') || constant.contains('\\') {
                return None;
            }
            tokens.push(Token::Text(constant));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let symbol = match (two.as_str(), c) {
                ("<=", _) => "<=",
                (">=", _) => ">=",
                ("<>", _) | ("!=", _) => "<>",
                ("::", _) => "::",
                (_, '<') => "<",
                (_, '>') => ">",
                (_, '=') => "=",
                (_, '(') => "(",
                (_, ')') => ")",
                (_, ',') => ",",
                (_, '.') => ".",
                (_, '[') => "[",
                (_, ']') => "]",
                (_, '$' | ';' | '\\' | '`') => return None,
                _ => {
                    tokens.push(Token::Other);
                    i += 1;
                    continue;
                }
            };
            i += symbol.len();
            tokens.push(Token::Symbol(symbol));
        }
    }
    Some(tokens)
}

/// The top-level AND terms; `None` with a top-level OR or unbalanced parentheses.
fn split_and(tokens: &[Token]) -> Option<Vec<&[Token]>> {
    let mut terms = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    let mut between = false;
    for (i, token) in tokens.iter().enumerate() {
        match token {
            Token::Symbol("(") => depth += 1,
            Token::Symbol(")") => depth = depth.checked_sub(1)?,
            Token::Keyword(k) if depth == 0 && k == "or" => return None,
            Token::Keyword(k) if depth == 0 && k == "between" => between = true,
            Token::Keyword(k) if depth == 0 && k == "and" => {
                if between {
                    between = false;
                } else {
                    terms.push(&tokens[start..i]);
                    start = i + 1;
                }
            }
            _ => {}
        }
    }
    if depth != 0 {
        return None;
    }
    terms.push(&tokens[start..]);
    Some(terms)
}

fn literal(token: &Token) -> Option<Literal> {
    match token {
        Token::Integer(n) => Some(Literal {
            sql: n.clone(),
            integer: true,
        }),
        Token::Text(s) => Some(Literal {
            sql: s.clone(),
            integer: false,
        }),
        _ => None,
    }
}

/// A parenthesised, comma-separated list of items `item` reads, `(1, 'a')` or `(a, b)`; returns
/// them and the tokens after the list.
fn parenthesised<T>(
    tokens: &[Token],
    item: impl Fn(&Token) -> Option<T>,
) -> Option<(Vec<T>, &[Token])> {
    let mut rest = match tokens.first()? {
        Token::Symbol("(") => &tokens[1..],
        _ => return None,
    };
    let mut items = Vec::new();
    loop {
        items.push(item(rest.first()?)?);
        match rest.get(1)? {
            Token::Symbol(",") => rest = &rest[2..],
            Token::Symbol(")") => return Some((items, &rest[2..])),
            _ => return None,
        }
    }
}

/// A parenthesised list of literals: `(1, 'a')`.
fn literal_list(tokens: &[Token]) -> Option<(Vec<Literal>, &[Token])> {
    parenthesised(tokens, literal)
}

/// A parenthesised list of column names: `(a, b)`.
fn column_list(tokens: &[Token]) -> Option<(Vec<String>, &[Token])> {
    parenthesised(tokens, |token| match token {
        Token::Word(w) => Some(w.clone()),
        _ => None,
    })
}

/// What one AND term says about single columns (nothing, for any other form).
fn read_term(term: &[Token]) -> Vec<(String, Condition)> {
    if let Some((columns, rest)) = column_list(term)
        && columns.len() > 1
    {
        return read_row_term(&columns, rest).unwrap_or_default();
    }
    let (column, rest) = match term {
        [Token::Word(column), rest @ ..] => (column.clone(), rest),
        _ => return Vec::new(),
    };
    let condition = match rest {
        [Token::Symbol(op), value] => {
            let Some(value) = literal(value) else {
                return Vec::new();
            };
            match *op {
                "=" => Condition::AnyOf(vec![value]),
                ">" => Condition::Above(value, false),
                ">=" => Condition::Above(value, true),
                "<" => Condition::Below(value, false),
                "<=" => Condition::Below(value, true),
                _ => return Vec::new(),
            }
        }
        [Token::Keyword(k), list @ ..] if k == "in" => match literal_list(list) {
            Some((values, [])) => Condition::AnyOf(values),
            _ => return Vec::new(),
        },
        [Token::Keyword(b), low, Token::Keyword(a), high] if b == "between" && a == "and" => {
            match (literal(low), literal(high)) {
                (Some(low), Some(high)) => {
                    return vec![
                        (column.clone(), Condition::Above(low, true)),
                        (column, Condition::Below(high, true)),
                    ];
                }
                _ => return Vec::new(),
            }
        }
        _ => return Vec::new(),
    };
    vec![(column, condition)]
}

/// `(a, b) = (1, 2)` and `(a, b) IN ((1, 2), (3, 4))`: each column equals one of the values it
/// has in some tuple (a superset of the tuples, which is all pruning needs).
fn read_row_term(columns: &[String], rest: &[Token]) -> Option<Vec<(String, Condition)>> {
    let tuples = match rest {
        [Token::Symbol("="), tuple @ ..] => match literal_list(tuple)? {
            (values, []) => vec![values],
            _ => return None,
        },
        [Token::Keyword(k), Token::Symbol("("), list @ ..] if k == "in" => {
            let mut tuples = Vec::new();
            let mut rest = list;
            loop {
                let (values, after) = literal_list(rest)?;
                tuples.push(values);
                match after {
                    [Token::Symbol(","), more @ ..] => rest = more,
                    [Token::Symbol(")")] => break,
                    _ => return None,
                }
            }
            tuples
        }
        _ => return None,
    };
    if tuples.iter().any(|t| t.len() != columns.len()) {
        return None;
    }
    Some(
        columns
            .iter()
            .enumerate()
            .map(|(n, column)| {
                let values: BTreeSet<Literal> = tuples.iter().map(|t| t[n].clone()).collect();
                (
                    column.clone(),
                    Condition::AnyOf(values.into_iter().collect()),
                )
            })
            .collect(),
    )
}

/// The chunks of one table to read, and what pruned the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChunkChoice {
    pub(crate) chunks: Vec<usize>,
    pub(crate) by_range: bool,
    pub(crate) by_filter: bool,
}

impl ChunkChoice {
    fn all(table: &TableEntry) -> ChunkChoice {
        ChunkChoice {
            chunks: (0..table.chunks.len()).collect(),
            by_range: false,
            by_filter: false,
        }
    }
}

/// Literals already printed by the server, per `(literal, type)`; `None` for one that does not
/// cast.
pub(crate) type Printed = HashMap<(String, String), Option<String>>;

/// The `(literal, column type)` pairs the conditions on `table`'s key use, to be printed
/// before [`choose_chunks`].
pub(crate) fn literals_wanted(
    table: &TableEntry,
    conditions: &KeyConditions,
) -> BTreeSet<(String, String)> {
    let mut wanted = BTreeSet::new();
    let Some(key) = table
        .lookup_key()
        .filter(|k| k.order.is_some() || k.filtered)
    else {
        return wanted;
    };
    for column in &key.columns {
        let Some(type_name) = type_of(table, column) else {
            return BTreeSet::new();
        };
        for condition in conditions.on(column) {
            for literal in condition.literals() {
                if !literal.integer || is_integer_type(&type_name) {
                    wanted.insert((literal.sql.clone(), type_name.clone()));
                }
            }
        }
    }
    wanted
}

fn type_of(table: &TableEntry, column: &str) -> Option<String> {
    table
        .columns
        .iter()
        .find(|c| c.name == column)
        .map(|c| c.type_name.clone())
}

fn is_integer_type(type_name: &str) -> bool {
    matches!(type_name, "smallint" | "integer" | "bigint")
}

/// Whether `value` lies on the allowed side of `bound` (above it for a lower bound, below it for
/// an upper one), equality counting when the bound is inclusive.
fn within(order: KeyOrder, value: &str, bound: &str, lower: bool, inclusive: bool) -> bool {
    match (order.compare(value, bound), lower) {
        (std::cmp::Ordering::Equal, _) => inclusive,
        (std::cmp::Ordering::Greater, lower) => lower,
        (std::cmp::Ordering::Less, lower) => !lower,
    }
}

/// The printed value of `literal` as a value of `type_name`, if it was printed; an integer
/// constant only ever stands for an integer column's value.
fn printed_value(printed: &Printed, literal: &Literal, type_name: &str) -> Option<String> {
    if literal.integer && !is_integer_type(type_name) {
        return None;
    }
    printed
        .get(&(literal.sql.clone(), type_name.to_owned()))
        .cloned()
        .flatten()
}

/// The chunks of `table` that may hold rows matching `conditions`, with the literals of
/// [`literals_wanted`] printed in `printed`.
pub(crate) async fn choose_chunks(
    backup: &BackupRef,
    table: &TableEntry,
    conditions: &KeyConditions,
    printed: &Printed,
) -> Result<ChunkChoice, EngineError> {
    let all = ChunkChoice::all(table);
    let Some(key) = table
        .lookup_key()
        .filter(|k| k.order.is_some() || k.filtered)
    else {
        return Ok(all);
    };
    // Without a printed value for the key's columns, nothing below prunes: every chunk is read.
    let type_of = |column: &str| type_of(table, column);
    let value = |literal: &Literal, type_name: &str| printed_value(printed, literal, type_name);

    // The leading column: its possible values, or the interval it must lie in.
    let leading = &key.columns[0];
    let leading_type = type_of(leading).unwrap_or_default();
    let order = key.order;
    let mut points: Option<Vec<String>> = None;
    let mut low: Option<(String, bool)> = None;
    let mut high: Option<(String, bool)> = None;
    if let Some(order) = order {
        if let Some(values) = conditions.any_of(leading) {
            points = values
                .iter()
                .map(|v| value(v, &leading_type).filter(|p| order.accepts(p)))
                .collect();
        }
        if points.is_none() && order.orders_like_sql() {
            for condition in conditions.on(leading) {
                match condition {
                    Condition::Above(v, inclusive) => {
                        if let Some(p) = value(v, &leading_type).filter(|p| order.accepts(p))
                            && low
                                .as_ref()
                                .is_none_or(|(l, _)| order.compare(&p, l).is_gt())
                        {
                            low = Some((p, *inclusive));
                        }
                    }
                    Condition::Below(v, inclusive) => {
                        if let Some(p) = value(v, &leading_type).filter(|p| order.accepts(p))
                            && high
                                .as_ref()
                                .is_none_or(|(h, _)| order.compare(&p, h).is_lt())
                        {
                            high = Some((p, *inclusive));
                        }
                    }
                    Condition::AnyOf(_) => {}
                }
            }
        }
    }
    let ranged = points.is_some() || low.is_some() || high.is_some();
    let in_range = |min: &str, max: &str, order: KeyOrder| -> bool {
        if let Some(points) = &points {
            return points
                .iter()
                .any(|p| order.compare(p, min).is_ge() && order.compare(p, max).is_le());
        }
        // The chunk overlaps the interval: its largest value is above the lower bound, its
        // smallest below the upper one.
        let above_low = low
            .as_ref()
            .is_none_or(|(l, inclusive)| within(order, max, l, true, *inclusive));
        let below_high = high
            .as_ref()
            .is_none_or(|(h, inclusive)| within(order, min, h, false, *inclusive));
        above_low && below_high
    };
    let mut chunks: Vec<usize> = (0..table.chunks.len())
        .filter(|&i| match (&table.chunks[i].key_range, order) {
            (Some(range), Some(order)) if ranged && range.column == *leading => {
                in_range(&range.min, &range.max, order)
            }
            _ => true,
        })
        .collect();
    let by_range = chunks.len() < table.chunks.len();

    // The whole key: every tuple of its columns' possible values, looked up in the filters.
    let mut tuples: Vec<Vec<u8>> = vec![Vec::new()];
    let mut complete = key.filtered;
    for (n, column) in key.columns.iter().enumerate() {
        let type_name = type_of(column).unwrap_or_default();
        let values: Option<Vec<String>> = conditions
            .any_of(column)
            .and_then(|values| values.iter().map(|v| value(v, &type_name)).collect());
        match values {
            Some(values) if complete && tuples.len() * values.len() <= MAX_TUPLES => {
                tuples = tuples
                    .iter()
                    .flat_map(|prefix| {
                        values.iter().map(move |v| {
                            let mut tuple = prefix.clone();
                            if n > 0 {
                                tuple.push(b'\t');
                            }
                            tuple.extend_from_slice(v.as_bytes());
                            tuple
                        })
                    })
                    .collect();
            }
            _ => complete = false,
        }
    }
    let mut by_filter = false;
    if complete && chunks.iter().any(|&i| table.chunks[i].key_filter.is_some()) {
        let name = table.display_name();
        let verdicts = futures::stream::iter(chunks.iter().map(|&i| {
            let (backup, name, tuples) = (backup.clone(), name.clone(), &tuples);
            async move {
                let filter = backup.read_key_filter(&table.chunks[i], (table.id, &name), i);
                let Some(frame) = filter.await? else {
                    return Ok::<_, EngineError>((i, true));
                };
                let filter = KeyFilter::parse(&frame)?;
                Ok((i, tuples.iter().any(|t| filter.may_contain(t))))
            }
        }))
        .buffered(FILTERS_IN_FLIGHT)
        .collect::<Vec<_>>()
        .await;
        let mut kept = Vec::with_capacity(chunks.len());
        for verdict in verdicts {
            let (i, may) = verdict?;
            if may {
                kept.push(i);
            }
        }
        by_filter = kept.len() < chunks.len();
        chunks = kept;
    }
    Ok(ChunkChoice {
        chunks,
        by_range,
        by_filter,
    })
}

/// Prints each literal the conditions compare with a column of `table` as COPY prints a value
/// of the column's type, without a server (for `cat`): integers, uuids and text. An error names
/// the literal and the type.
pub(crate) fn print_locally(
    table: &TableEntry,
    conditions: &KeyConditions,
    printed: &mut Printed,
) -> Result<(), String> {
    for (column, condition) in &conditions.terms {
        let type_name =
            type_of(table, column).ok_or_else(|| format!("the table has no column {column}"))?;
        for literal in condition.literals() {
            let value = print_value(literal, &type_name)?;
            printed.insert((literal.sql.clone(), type_name.clone()), Some(value));
        }
    }
    Ok(())
}

fn print_value(literal: &Literal, type_name: &str) -> Result<String, String> {
    let not_a = || format!("{} is not a value of type {type_name}", literal.sql);
    let text = if literal.integer {
        literal.sql.clone()
    } else {
        let inner = literal
            .sql
            .strip_prefix('\'')
            .and_then(|s| s.strip_suffix('\''))
            .ok_or_else(not_a)?;
        inner.replace("''", "'")
    };
    match type_name {
        "smallint" | "integer" | "bigint" => {
            let value: i64 = text.trim().parse().map_err(|_| not_a())?;
            let fits = match type_name {
                "smallint" => i16::try_from(value).is_ok(),
                "integer" => i32::try_from(value).is_ok(),
                _ => true,
            };
            if fits {
                Ok(value.to_string())
            } else {
                Err(not_a())
            }
        }
        "uuid" if !literal.integer => {
            let hex: String = text
                .trim()
                .trim_start_matches('{')
                .trim_end_matches('}')
                .chars()
                .filter(|&c| c != '-')
                .collect::<String>()
                .to_ascii_lowercase();
            if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(not_a());
            }
            Ok(format!(
                "{}-{}-{}-{}-{}",
                &hex[0..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..32]
            ))
        }
        "text" | "name" if !literal.integer => Ok(copy_escape(&text)),
        t if t.starts_with("character varying") && !literal.integer => Ok(copy_escape(&text)),
        _ => Err(format!(
            "values of type {type_name} cannot be read without a server (integer, uuid and text \
             keys can)"
        )),
    }
}

/// A value as COPY text prints it.
fn copy_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c => out.push(c),
        }
    }
    out
}

/// Checks rows against the conditions, on the fields as COPY prints them (for `cat`).
#[derive(Debug)]
pub(crate) struct RowMatcher {
    tests: Vec<(usize, Test)>,
}

#[derive(Debug)]
enum Test {
    AnyOf(BTreeSet<String>),
    Above(String, bool, KeyOrder),
    Below(String, bool, KeyOrder),
}

impl RowMatcher {
    /// With the literals printed by [`print_locally`]; ranges only on integer and uuid columns
    /// (text compares by the collation, which a client does not have).
    pub(crate) fn new(
        table: &TableEntry,
        conditions: &KeyConditions,
        printed: &Printed,
    ) -> Result<RowMatcher, String> {
        let mut tests = Vec::new();
        for (column, condition) in &conditions.terms {
            let field = table
                .columns
                .iter()
                .position(|c| &c.name == column)
                .ok_or_else(|| format!("the table has no column {column}"))?;
            let type_name = &table.columns[field].type_name;
            let value = |literal: &Literal| {
                printed_value(printed, literal, type_name)
                    .ok_or_else(|| format!("{} is not a value of type {type_name}", literal.sql))
            };
            let order = || match type_name.as_str() {
                t if is_integer_type(t) => Ok(KeyOrder::Integer),
                "uuid" => Ok(KeyOrder::Uuid),
                _ => Err(format!(
                    "ranges on column {column} of type {type_name} follow the database's \
                     collation; use = or IN"
                )),
            };
            tests.push((
                field,
                match condition {
                    Condition::AnyOf(values) => {
                        Test::AnyOf(values.iter().map(value).collect::<Result<_, _>>()?)
                    }
                    Condition::Above(v, inclusive) => Test::Above(value(v)?, *inclusive, order()?),
                    Condition::Below(v, inclusive) => Test::Below(value(v)?, *inclusive, order()?),
                },
            ));
        }
        Ok(RowMatcher { tests })
    }

    pub(crate) fn matches(&self, row: &[u8]) -> bool {
        self.tests.iter().all(|(field, test)| {
            let Some(raw) = copy_text::raw_fields(row)
                .nth(*field)
                .and_then(|raw| std::str::from_utf8(raw).ok())
                .filter(|raw| *raw != "\\N")
            else {
                return false;
            };
            match test {
                Test::AnyOf(values) => values.contains(raw),
                Test::Above(v, inclusive, order) => within(*order, raw, v, true, *inclusive),
                Test::Below(v, inclusive, order) => within(*order, raw, v, false, *inclusive),
            }
        })
    }
}

/// Has the server cast and print each `(literal, type)` not printed yet, as COPY would print
/// it; one that does not cast (or any failure) is recorded as `None`, and prunes nothing.
pub(crate) async fn print_literals(
    connection: &Connection,
    wanted: BTreeSet<(String, String)>,
    printed: &mut Printed,
) -> Result<(), EngineError> {
    let new: Vec<(String, String)> = wanted
        .into_iter()
        .filter(|w| !printed.contains_key(w))
        .collect();
    if new.is_empty() {
        return Ok(());
    }
    let context = "printing the key values of the row condition";
    // All at once (a row of up to 1,000 columns); a batch with one that does not cast is
    // printed one by one, so that the others stay usable.
    for batch in new.chunks(1000) {
        let columns: Vec<String> = batch
            .iter()
            .map(|(literal, type_name)| format!("({literal})::{type_name}"))
            .collect();
        let query = format!("SELECT {}", columns.join(", "));
        if let Ok(Some(fields)) =
            session::under_savepoint(connection, context, copy_one_row(connection, &query)).await?
            && fields.len() == batch.len()
        {
            for (wanted, value) in batch.iter().zip(fields) {
                printed.insert(wanted.clone(), value);
            }
            continue;
        }
        for (literal, type_name) in batch {
            let query = format!("SELECT ({literal})::{type_name}");
            let value = match session::under_savepoint(
                connection,
                context,
                copy_one_row(connection, &query),
            )
            .await?
            {
                Ok(fields) => fields.and_then(|f| f.into_iter().next()).flatten(),
                Err(e) => {
                    tracing::info!(
                        literal,
                        type_name,
                        reason = %pgark_pg::ServerMessage(&e),
                        "a value of the row condition does not cast to the key's type; it prunes no chunks"
                    );
                    None
                }
            };
            printed.insert((literal.clone(), type_name.clone()), value);
        }
    }
    Ok(())
}

/// The fields of the one row `query` returns, as COPY prints them (`None` for a field that is
/// not UTF-8); `None` without a row.
async fn copy_one_row(
    connection: &Connection,
    query: &str,
) -> Result<Option<Vec<Option<String>>>, tokio_postgres::Error> {
    let stream = connection
        .client()
        .copy_out(&format!("COPY ({query}) TO STDOUT"))
        .await?;
    let parts: Vec<bytes::Bytes> = stream
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let text = parts.concat();
    Ok(copy_text::rows(&text).next().map(|row| {
        copy_text::raw_fields(row)
            .map(|raw| std::str::from_utf8(raw).ok().map(str::to_owned))
            .collect()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(predicate: &str) -> Option<Vec<(String, String)>> {
        KeyConditions::parse(predicate).map(|c| {
            c.terms
                .into_iter()
                .map(|(column, condition)| (column, format!("{condition:?}")))
                .collect()
        })
    }

    fn text(sql: &str) -> Literal {
        Literal {
            sql: sql.into(),
            integer: false,
        }
    }

    fn int(sql: &str) -> Literal {
        Literal {
            sql: sql.into(),
            integer: true,
        }
    }

    #[test]
    fn plain_terms_become_conditions_and_the_rest_is_ignored() {
        let c = KeyConditions::parse(
            "tenant = 42 AND seq IN (7, -8) AND note LIKE 'x%' AND \"Id\" = 'a''b' \
             AND ts BETWEEN '2024-01-01' AND '2024-02-01' AND n > 1.5",
        )
        .expect("reads");
        assert_eq!(
            c.terms,
            vec![
                ("tenant".into(), Condition::AnyOf(vec![int("42")])),
                ("seq".into(), Condition::AnyOf(vec![int("7"), int("-8")])),
                ("Id".into(), Condition::AnyOf(vec![text("'a''b'")])),
                ("ts".into(), Condition::Above(text("'2024-01-01'"), true)),
                ("ts".into(), Condition::Below(text("'2024-02-01'"), true)),
            ]
        );
        let rows = KeyConditions::parse("(a, b) IN ((1, 'x'), (1, 'y')) AND c = 3").expect("reads");
        assert_eq!(
            rows.terms,
            vec![
                ("a".into(), Condition::AnyOf(vec![int("1")])),
                ("b".into(), Condition::AnyOf(vec![text("'x'"), text("'y'")])),
                ("c".into(), Condition::AnyOf(vec![int("3")])),
            ]
        );
    }

    #[test]
    fn anything_that_could_widen_sql_reads_every_chunk() {
        for whole in [
            "id = 1 OR id = 2",
            "id = 1 -- AND id = 2",
            "id = 1 /* c */",
            "id = E'\\x41'",
            "id = $$1$$",
            "(id = 1",
            "id = 'a'\n'b'",
            "id = 'a\\' OR id = 2 OR ''=''",
        ] {
            assert_eq!(terms(whole), None, "{whole}");
        }
        // Terms that are not of a plain form add nothing (an empty set of conditions).
        for nothing in [
            "(id = 1 OR id = 2)",
            "NOT id = 1",
            "id = 1.5",
            "id::text = '1'",
            "id = 0x1F",
            "t.id = 1",
            "id <> 1",
            "id BETWEEN SYMMETRIC 1 AND 9",
            "id = other",
            "id = 1 + 1",
            "id IN (SELECT 1)",
        ] {
            assert_eq!(terms(nothing), Some(vec![]), "{nothing}");
        }
        // A minus after a value is an operator, not a sign.
        assert_eq!(terms("id = 5 -1"), Some(vec![]));
    }
}

/// Any `--where-key` text, made of the grammar's own pieces or of anything: conditions or a
/// reason, never a panic or a loop.
#[cfg(test)]
mod fuzzed {
    use proptest::prelude::*;

    use super::*;

    fn tokens() -> impl Strategy<Value = String> {
        let token = prop::sample::select(vec![
            "id",
            "\"Id\"",
            "tenant",
            "=",
            "IN",
            "in",
            "(",
            ")",
            ",",
            "BETWEEN",
            "AND",
            "and",
            "OR",
            "'a''b'",
            "'",
            "''",
            "-",
            "1",
            "-9223372036854775808",
            "99999999999999999999",
            "1e5",
            "NULL",
            " ",
            "\t",
            "\\",
            "\"",
            "::int",
            ">=",
            "<",
        ]);
        prop::collection::vec(token, 0..16).prop_map(|tokens| tokens.join(" "))
    }

    proptest! {
        #[test]
        fn any_where_key_text_parses_or_fails(text in prop_oneof![tokens(), "\\PC{0,60}"]) {
            if let Ok(conditions) = KeyConditions::parse_strict(&text) {
                prop_assert!(!conditions.columns().is_empty());
            }
            let _ = KeyConditions::parse(&text);
        }
    }
}
