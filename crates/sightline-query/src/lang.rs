//! The log query language: its syntax tree and a hand-written parser whose
//! errors name the column and what was expected.
//!
//! ```text
//! query   := [expr] ('|' pipe)*
//! expr    := and ('OR' and)*
//! and     := unary (['AND'] unary)*          -- AND is implicit
//! unary   := 'NOT' unary | '-' primary | primary
//! primary := '(' expr ')' | '*' | term
//! term    := word | "phrase" | field ':' value
//! value   := '*' | prefix'*' | word | "quoted" | ('>='|'<='|'>'|'<'|'=') word
//! pipe    := 'count' ['by' '(' key (',' key)* ')']
//!          | 'top' [N] 'by' '(' key (',' key)* ')'
//!          | 'fields' name (',' name)*
//! key     := '_time' ':' duration | field
//! ```
//!
//! Text fields (`message`/`event`, `exception`) match a word or phrase anywhere,
//! ignoring ASCII case, like an analyzed Lucene field; every other field matches
//! its whole value. Bare words and phrases search message and exception text.

use std::fmt;

/// Deepest nesting of parentheses and `NOT`s accepted.
pub const MAX_DEPTH: usize = 64;
/// Most terms in one query.
pub const MAX_TERMS: usize = 256;
/// Largest `top N`.
pub const MAX_TOP: usize = 10_000;

/// A typed column of a log part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Column {
    Service,
    Environment,
    Level,
    Message,
    Logger,
    RequestId,
    FlowId,
    TraceId,
    SpanId,
    UserId,
    Exception,
    Host,
}

impl Column {
    pub const ALL: [Column; 12] = [
        Column::Service,
        Column::Environment,
        Column::Level,
        Column::Message,
        Column::Logger,
        Column::RequestId,
        Column::FlowId,
        Column::TraceId,
        Column::SpanId,
        Column::UserId,
        Column::Exception,
        Column::Host,
    ];

    /// The column's name in parts (and in query output).
    pub fn name(self) -> &'static str {
        match self {
            Column::Service => "service",
            Column::Environment => "environment",
            Column::Level => "level",
            Column::Message => "message",
            Column::Logger => "logger",
            Column::RequestId => "request_id",
            Column::FlowId => "flow_id",
            Column::TraceId => "trace_id",
            Column::SpanId => "span_id",
            Column::UserId => "user_id",
            Column::Exception => "exception",
            Column::Host => "host",
        }
    }

    /// The column a query field name refers to, with the usual aliases.
    pub fn from_name(s: &str) -> Option<Column> {
        Some(match s {
            "service" | "service.name" | "_service" => Column::Service,
            "environment" | "env" | "deployment.environment" => Column::Environment,
            "level" | "severity" | "_level" => Column::Level,
            "message" | "event" | "msg" | "_msg" => Column::Message,
            "logger" | "logger_name" => Column::Logger,
            "request_id" => Column::RequestId,
            "flow_id" => Column::FlowId,
            "trace_id" => Column::TraceId,
            "span_id" => Column::SpanId,
            "user_id" => Column::UserId,
            "exception" | "exc_info" => Column::Exception,
            "host" | "hostname" => Column::Host,
            _ => return None,
        })
    }

    /// Text columns are searched for words; the others match whole values.
    pub fn is_text(self) -> bool {
        matches!(self, Column::Message | Column::Exception)
    }

    /// Columns with bloom filters in parts.
    pub fn has_bloom(self) -> bool {
        matches!(
            self,
            Column::RequestId | Column::FlowId | Column::TraceId | Column::UserId
        )
    }
}

/// What a term looks at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Field {
    /// Bare words and phrases: message and exception text.
    Text,
    Column(Column),
    /// A key of the record's other fields; `a.b` is a nested key (or the
    /// literal key `a.b` when the record has one).
    Attr(String),
}

impl Field {
    pub fn parse(name: &str) -> Field {
        match Column::from_name(name) {
            Some(c) => Field::Column(c),
            None => Field::Attr(name.to_string()),
        }
    }

    /// The name used in output (group labels, facets).
    pub fn name(&self) -> &str {
        match self {
            Field::Text => "_text",
            Field::Column(c) => c.name(),
            Field::Attr(a) => a,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Gt,
    Ge,
    Lt,
    Le,
}

impl CmpOp {
    pub fn test(self, o: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            CmpOp::Gt => o == Greater,
            CmpOp::Ge => o != Less,
            CmpOp::Lt => o == Less,
            CmpOp::Le => o != Greater,
        }
    }
}

/// What a term asks of its field.
#[derive(Debug, Clone, PartialEq)]
pub enum Match {
    /// Whole value equal (text fields: contains the word or phrase, ignoring ASCII case).
    Eq(String),
    /// The value starts with this.
    Prefix(String),
    /// The field is present.
    Exists,
    /// Ordered comparison: numeric when both sides are numbers, else by text
    /// (for `level`, by severity).
    Cmp(CmpOp, String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Term {
    pub field: Field,
    pub op: Match,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Matches every record (`*` or an empty query).
    All,
    Term(Term),
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

/// A group-by key.
#[derive(Debug, Clone, PartialEq)]
pub enum Key {
    /// Time buckets of this many nanoseconds.
    Time(i64),
    /// A field, and the name the query gave it (the label in results).
    Field(Field, String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Pipe {
    Count { by: Vec<Key> },
    Top { n: usize, by: Vec<Key> },
    Fields(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub expr: Expr,
    pub pipes: Vec<Pipe>,
}

impl Query {
    /// The aggregation this query ends in, if any.
    pub fn aggregation(&self) -> Option<&Pipe> {
        self.pipes
            .iter()
            .find(|p| matches!(p, Pipe::Count { .. } | Pipe::Top { .. }))
    }

    /// The `| fields` projection, if any.
    pub fn fields(&self) -> Option<&[String]> {
        self.pipes.iter().find_map(|p| match p {
            Pipe::Fields(f) => Some(f.as_slice()),
            _ => None,
        })
    }
}

/// A parse error: 1-based column (in characters) and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.column, self.message)
    }
}

impl std::error::Error for ParseError {}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// An unquoted run of characters (may contain `:` and `*`).
    Word(String),
    /// A `"quoted"` string, unescaped.
    Quoted(String),
    LParen,
    RParen,
    Pipe,
    Comma,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    /// 0-based char index of the token's first character.
    at: usize,
    /// The word continues straight into a quoted string (`field:"x"`).
    glued: bool,
}

fn is_word_char(c: char) -> bool {
    !c.is_whitespace() && !matches!(c, '(' | ')' | '|' | '"' | ',')
}

fn lex(src: &str) -> Result<Vec<Token>, ParseError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let at = i;
        let glued = i > 0 && !chars[i - 1].is_whitespace() && chars[i - 1] != '(';
        let tok = match c {
            '(' => {
                i += 1;
                Tok::LParen
            }
            ')' => {
                i += 1;
                Tok::RParen
            }
            '|' => {
                i += 1;
                Tok::Pipe
            }
            ',' => {
                i += 1;
                Tok::Comma
            }
            '"' => {
                i += 1;
                let mut s = String::new();
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(ParseError {
                                column: at + 1,
                                message: "unterminated quoted string: expected a closing '\"'"
                                    .into(),
                            })
                        }
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some('\\') => {
                            match chars.get(i + 1) {
                                Some(&e @ ('"' | '\\')) => s.push(e),
                                Some('n') => s.push('\n'),
                                Some('t') => s.push('\t'),
                                Some(&o) => {
                                    s.push('\\');
                                    s.push(o);
                                }
                                None => {
                                    return Err(ParseError {
                                        column: i + 1,
                                        message: "dangling '\\' at the end of a quoted string"
                                            .into(),
                                    })
                                }
                            }
                            i += 2;
                        }
                        Some(&o) => {
                            s.push(o);
                            i += 1;
                        }
                    }
                }
                Tok::Quoted(s)
            }
            _ => {
                let start = i;
                while i < chars.len() && is_word_char(chars[i]) {
                    i += 1;
                }
                Tok::Word(chars[start..i].iter().collect())
            }
        };
        out.push(Token { tok, at, glued });
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    end: usize,
    depth: usize,
    terms: usize,
}

fn err<T>(column: usize, message: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError {
        column,
        message: message.into(),
    })
}

/// Parses a query. An empty query (or `*`) matches everything.
pub fn parse(src: &str) -> Result<Query, ParseError> {
    let toks = lex(src)?;
    let mut p = Parser {
        toks,
        pos: 0,
        end: src.chars().count(),
        depth: 0,
        terms: 0,
    };
    let expr = if p.peek().is_none() || p.peek() == Some(&Tok::Pipe) {
        Expr::All
    } else {
        p.or()?
    };
    let mut pipes = Vec::new();
    while let Some(t) = p.next() {
        if t.tok != Tok::Pipe {
            return err(
                t.at + 1,
                format!(
                    "unexpected {}: expected AND, OR, a term or '|'",
                    describe(&t.tok)
                ),
            );
        }
        let pipe = p.pipe()?;
        if let Some(last) = pipes.last() {
            if matches!(last, Pipe::Count { .. } | Pipe::Top { .. }) {
                return err(
                    t.at + 1,
                    "nothing can follow an aggregation ('count' or 'top') yet",
                );
            }
        }
        pipes.push(pipe);
    }
    Ok(Query { expr, pipes })
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Word(w) => format!("'{w}'"),
        Tok::Quoted(q) => format!("\"{q}\""),
        Tok::LParen => "'('".into(),
        Tok::RParen => "')'".into(),
        Tok::Pipe => "'|'".into(),
        Tok::Comma => "','".into(),
    }
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.toks.get(self.pos).cloned();
        if t.is_some() {
            self.pos += 1;
        }
        t
    }

    fn col(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end + 1, |t| t.at + 1)
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w == kw)
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return err(
                self.col(),
                format!("query nested too deeply (at most {MAX_DEPTH} levels)"),
            );
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut alts = vec![self.and()?];
        while self.is_kw("OR") {
            self.pos += 1;
            alts.push(self.and()?);
        }
        Ok(if alts.len() == 1 {
            alts.pop().unwrap()
        } else {
            Expr::Or(alts)
        })
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut all = vec![self.unary()?];
        loop {
            if self.is_kw("AND") {
                self.pos += 1;
                all.push(self.unary()?);
                continue;
            }
            match self.peek() {
                None | Some(Tok::RParen) | Some(Tok::Pipe) => break,
                Some(Tok::Word(w)) if w == "OR" => break,
                Some(Tok::Comma) => {
                    return err(
                        self.col(),
                        "unexpected ',': expected a term, AND, OR or '|'",
                    )
                }
                _ => all.push(self.unary()?),
            }
        }
        Ok(if all.len() == 1 {
            all.pop().unwrap()
        } else {
            Expr::And(all)
        })
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        if self.is_kw("NOT") {
            self.pos += 1;
            self.enter()?;
            let e = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(e)));
        }
        if let Some(Tok::Word(w)) = self.peek() {
            // `-(…)` and `-"phrase"`: a lone '-' glued to a group or a phrase.
            if w == "-"
                && matches!(
                    self.toks.get(self.pos + 1),
                    Some(Token {
                        tok: Tok::LParen | Tok::Quoted(_),
                        glued: true,
                        ..
                    })
                )
            {
                self.pos += 1;
                self.enter()?;
                let e = self.primary()?;
                self.depth -= 1;
                return Ok(Expr::Not(Box::new(e)));
            }
            if let Some(rest) = w.strip_prefix('-').filter(|r| !r.is_empty()) {
                // `-field:value` / `-word`: negation (a lone '-' is a word).
                let at = self.toks[self.pos].at + 1;
                let rest = rest.to_string();
                self.pos += 1;
                let t = self.term_from_word(&rest, at)?;
                return Ok(Expr::Not(Box::new(t)));
            }
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let col = self.col();
        let Some(t) = self.next() else {
            return err(col, "unexpected end of query: expected a term or '('");
        };
        match t.tok {
            Tok::LParen => {
                self.enter()?;
                if self.peek() == Some(&Tok::RParen) {
                    return err(self.col(), "empty parentheses: expected a term");
                }
                let e = self.or()?;
                self.depth -= 1;
                match self.next() {
                    Some(Token {
                        tok: Tok::RParen, ..
                    }) => Ok(e),
                    Some(o) => err(
                        o.at + 1,
                        format!("unexpected {}: expected ')'", describe(&o.tok)),
                    ),
                    None => err(
                        self.end + 1,
                        format!("unexpected end of query: expected ')' to close the '(' at column {col}"),
                    ),
                }
            }
            Tok::Quoted(q) => {
                self.count_term(col)?;
                Ok(Expr::Term(Term {
                    field: Field::Text,
                    op: Match::Eq(q),
                }))
            }
            Tok::Word(w) => {
                if matches!(w.as_str(), "AND" | "OR") {
                    return err(col, format!("unexpected {w}: expected a term before it"));
                }
                self.term_from_word(&w, col)
            }
            other => err(
                col,
                format!("unexpected {}: expected a term or '('", describe(&other)),
            ),
        }
    }

    fn count_term(&mut self, col: usize) -> Result<(), ParseError> {
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return err(col, format!("too many terms (at most {MAX_TERMS})"));
        }
        Ok(())
    }

    /// A word already taken from the stream: `*`, a bare word, or `field:value`
    /// (the value may be the following quoted token).
    fn term_from_word(&mut self, w: &str, col: usize) -> Result<Expr, ParseError> {
        self.count_term(col)?;
        if w == "*" {
            return Ok(Expr::All);
        }
        let Some((name, value)) = w.split_once(':') else {
            // A bare `word*` is a word prefix: text search already matches
            // anywhere in the text, so the star adds nothing.
            let word = w.trim_end_matches('*');
            return Ok(Expr::Term(Term {
                field: Field::Text,
                op: Match::Eq(word.to_string()),
            }));
        };
        if name.is_empty() {
            return err(col, "expected a field name before ':'");
        }
        if !name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '@' | '$'))
        {
            return err(
                col,
                format!("invalid field name {name:?}: expected letters, digits, '_', '.' or '-'"),
            );
        }
        let field = Field::parse(name);
        let vcol = col + name.chars().count() + 1;
        let (op_str, rest) = split_cmp(value);
        let quoted = if rest.is_empty() {
            match self.toks.get(self.pos) {
                Some(Token {
                    tok: Tok::Quoted(q),
                    glued: true,
                    ..
                }) => {
                    let q = q.clone();
                    self.pos += 1;
                    Some(q)
                }
                _ => None,
            }
        } else {
            None
        };
        let op = match (op_str, quoted) {
            (None, Some(q)) => Match::Eq(q),
            (Some(op), Some(q)) => Match::Cmp(op, q),
            (None, None) if rest.is_empty() => {
                return err(vcol, format!("expected a value after '{name}:'"))
            }
            (Some(_), None) if rest.is_empty() => {
                return err(
                    vcol + value.chars().count(),
                    "expected a value after the comparison",
                )
            }
            (None, None) if rest == "*" => Match::Exists,
            (None, None) if rest.ends_with('*') && !rest[..rest.len() - 1].contains('*') => {
                Match::Prefix(rest[..rest.len() - 1].to_string())
            }
            (None, None) => {
                if let Some(i) = rest.find('*') {
                    return err(
                        vcol + rest[..i].chars().count(),
                        "'*' is only allowed at the end of a value (prefix match)",
                    );
                }
                Match::Eq(rest.to_string())
            }
            (Some(op), None) => Match::Cmp(op, rest.to_string()),
        };
        if let (Field::Column(Column::Level), Match::Eq(v) | Match::Cmp(_, v)) = (&field, &op) {
            if sightline_pipeline::Level::parse(v).is_none() {
                return err(
                    vcol,
                    format!(
                        "unknown level {v:?}: expected debug, info, warning, error or critical"
                    ),
                );
            }
        }
        Ok(Expr::Term(Term { field, op }))
    }

    fn pipe(&mut self) -> Result<Pipe, ParseError> {
        let col = self.col();
        match self.next().map(|t| t.tok) {
            Some(Tok::Word(w)) if w == "count" => {
                let by = if self.is_kw("by") {
                    self.pos += 1;
                    self.keys()?
                } else {
                    vec![]
                };
                Ok(Pipe::Count { by })
            }
            Some(Tok::Word(w)) if w == "top" => {
                let mut n = 10;
                if let Some(Tok::Word(num)) = self.peek() {
                    if num != "by" {
                        let c = self.col();
                        n = match num.parse::<usize>() {
                            Ok(n) if (1..=MAX_TOP).contains(&n) => n,
                            _ => {
                                return err(
                                    c,
                                    format!("expected a count from 1 to {MAX_TOP} after 'top'"),
                                )
                            }
                        };
                        self.pos += 1;
                    }
                }
                if !self.is_kw("by") {
                    return err(self.col(), "expected 'by (field, …)' after 'top N'");
                }
                self.pos += 1;
                let by = self.keys()?;
                Ok(Pipe::Top { n, by })
            }
            Some(Tok::Word(w)) if w == "fields" => {
                let mut names = Vec::new();
                loop {
                    let c = self.col();
                    match self.next().map(|t| t.tok) {
                        Some(Tok::Word(n)) => names.push(n),
                        _ => return err(c, "expected a field name"),
                    }
                    if self.peek() == Some(&Tok::Comma) {
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
                Ok(Pipe::Fields(names))
            }
            Some(other) => err(
                col,
                format!(
                    "unknown pipe {}: expected count, top or fields",
                    describe(&other)
                ),
            ),
            None => err(
                col,
                "unexpected end of query: expected count, top or fields after '|'",
            ),
        }
    }

    fn keys(&mut self) -> Result<Vec<Key>, ParseError> {
        let col = self.col();
        if self.next().map(|t| t.tok) != Some(Tok::LParen) {
            return err(col, "expected '(' after 'by'");
        }
        let mut keys = Vec::new();
        loop {
            let c = self.col();
            match self.next().map(|t| t.tok) {
                Some(Tok::Word(w)) => {
                    if let Some(d) = w.strip_prefix("_time:") {
                        let ns = crate::time::parse_duration(d).map_err(|m| ParseError {
                            column: c + 6,
                            message: m,
                        })?;
                        if ns <= 0 {
                            return err(c + 6, "the time bucket must be longer than zero");
                        }
                        keys.push(Key::Time(ns));
                    } else if w == "_time" {
                        return err(c + 5, "expected a bucket size after _time, e.g. _time:1m");
                    } else {
                        keys.push(Key::Field(Field::parse(&w), w.clone()));
                    }
                }
                _ => return err(c, "expected a field name or _time:<duration>"),
            }
            let c = self.col();
            match self.next().map(|t| t.tok) {
                Some(Tok::Comma) => continue,
                Some(Tok::RParen) => break,
                _ => return err(c, "expected ',' or ')'"),
            }
        }
        if keys.len() > 8 {
            return err(col, "at most 8 group-by keys");
        }
        Ok(keys)
    }
}

/// Splits a leading comparison operator off a value.
fn split_cmp(v: &str) -> (Option<CmpOp>, &str) {
    for (p, op) in [
        (">=", Some(CmpOp::Ge)),
        ("<=", Some(CmpOp::Le)),
        (">", Some(CmpOp::Gt)),
        ("<", Some(CmpOp::Lt)),
        ("=", None),
    ] {
        if let Some(rest) = v.strip_prefix(p) {
            return (op, rest);
        }
    }
    (None, v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(field: Field, op: Match) -> Expr {
        Expr::Term(Term { field, op })
    }
    fn col(c: Column, v: &str) -> Expr {
        t(Field::Column(c), Match::Eq(v.into()))
    }

    #[test]
    fn terms_and_implicit_and() {
        let q = parse(r#"service:api level:>=warning status:>=500 -user_id:u-1 "time out" boom"#)
            .unwrap();
        assert_eq!(
            q.expr,
            Expr::And(vec![
                col(Column::Service, "api"),
                t(
                    Field::Column(Column::Level),
                    Match::Cmp(CmpOp::Ge, "warning".into())
                ),
                t(
                    Field::Attr("status".into()),
                    Match::Cmp(CmpOp::Ge, "500".into())
                ),
                Expr::Not(Box::new(col(Column::UserId, "u-1"))),
                t(Field::Text, Match::Eq("time out".into())),
                t(Field::Text, Match::Eq("boom".into())),
            ])
        );
    }

    #[test]
    fn quoted_values_prefix_exists_nested() {
        let q = parse(r#"path:"/a b" request_id:req-* flow_id:* http.status:200"#).unwrap();
        assert_eq!(
            q.expr,
            Expr::And(vec![
                t(Field::Attr("path".into()), Match::Eq("/a b".into())),
                t(
                    Field::Column(Column::RequestId),
                    Match::Prefix("req-".into())
                ),
                t(Field::Column(Column::FlowId), Match::Exists),
                t(Field::Attr("http.status".into()), Match::Eq("200".into())),
            ])
        );
    }

    #[test]
    fn boolean_precedence() {
        let q = parse("a OR b c AND NOT (d OR e)").unwrap();
        let w = |s: &str| t(Field::Text, Match::Eq(s.into()));
        assert_eq!(
            q.expr,
            Expr::Or(vec![
                w("a"),
                Expr::And(vec![
                    w("b"),
                    w("c"),
                    Expr::Not(Box::new(Expr::Or(vec![w("d"), w("e")])))
                ])
            ])
        );
    }

    #[test]
    fn minus_negates_groups_and_phrases() {
        let w = |s: &str| t(Field::Text, Match::Eq(s.into()));
        assert_eq!(
            parse("-(a OR b)").unwrap().expr,
            Expr::Not(Box::new(Expr::Or(vec![w("a"), w("b")])))
        );
        assert_eq!(
            parse("x -\"time out\"").unwrap().expr,
            Expr::And(vec![w("x"), Expr::Not(Box::new(w("time out")))])
        );
        // A lone '-' apart from what follows is a word.
        assert_eq!(parse("- a").unwrap().expr, Expr::And(vec![w("-"), w("a")]));
    }

    #[test]
    fn pipes() {
        let q = parse("* | count by (_time:1m, level)").unwrap();
        assert_eq!(q.expr, Expr::All);
        assert_eq!(
            q.pipes,
            vec![Pipe::Count {
                by: vec![
                    Key::Time(60_000_000_000),
                    Key::Field(Field::Column(Column::Level), "level".into())
                ]
            }]
        );
        let q = parse("service:api | top 5 by (event)").unwrap();
        assert_eq!(
            q.pipes,
            vec![Pipe::Top {
                n: 5,
                by: vec![Key::Field(Field::Column(Column::Message), "event".into())]
            }]
        );
        let q = parse("| fields request_id, status").unwrap();
        assert_eq!(
            q.pipes,
            vec![Pipe::Fields(vec!["request_id".into(), "status".into()])]
        );
        assert_eq!(parse("").unwrap().expr, Expr::All);
        assert_eq!(
            parse("| count").unwrap().pipes,
            vec![Pipe::Count { by: vec![] }]
        );
    }

    fn fails(q: &str, column: usize, needle: &str) {
        let e = parse(q).expect_err(q);
        assert_eq!(e.column, column, "{q}: {e}");
        assert!(e.message.contains(needle), "{q}: {e}");
    }

    #[test]
    fn errors_point_at_the_column() {
        fails("service:", 9, "expected a value after 'service:'");
        fails("(a OR b", 8, "expected ')'");
        fails("a OR", 5, "expected a term");
        fails("a | cuont", 5, "unknown pipe 'cuont'");
        fails("a | count by level", 14, "expected '('");
        fails("a | count by (level", 20, "expected ',' or ')'");
        fails("\"abc", 1, "unterminated quoted string");
        fails("level:loud", 7, "unknown level");
        fails("a )", 3, "unexpected ')'");
        fails("a | top 0 by (x)", 9, "expected a count");
        fails("x:a*b", 4, "'*' is only allowed at the end");
        fails("a | count by (_time:1q)", 21, "unit");
        fails("status:>=", 10, "expected a value after the comparison");
        fails("()", 2, "empty parentheses");
        fails("AND a", 1, "unexpected AND");
        fails("a | count | fields x", 11, "nothing can follow");
        fails("bad(name:x", 11, "expected ')'");
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("{}a{}", "(".repeat(100_000), ")".repeat(100_000));
        let e = parse(&deep).unwrap_err();
        assert!(e.message.contains("nested too deeply"), "{e}");
        let nots = format!("{}a", "NOT ".repeat(10_000));
        assert!(parse(&nots).is_err());
        let many = "a ".repeat(1000);
        assert!(parse(&many).unwrap_err().message.contains("too many terms"));
    }

    /// The fuzz target's property on 50,000 random queries from the query
    /// alphabet: no panic, and errors point inside (or just past) the text.
    #[test]
    fn random_text_never_panics() {
        let alphabet: Vec<char> = "ab:*\"()|,-><= _.ANDORNOTcounbyfieldstp0159é\\"
            .chars()
            .collect();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..50_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 40) as usize;
            let mut q = String::new();
            let mut x = seed;
            for _ in 0..len {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                q.push(alphabet[(x >> 33) as usize % alphabet.len()]);
            }
            if let Err(e) = parse(&q) {
                assert!(
                    e.column >= 1 && e.column <= q.chars().count() + 1,
                    "{q:?}: {e}"
                );
            }
        }
    }
}
