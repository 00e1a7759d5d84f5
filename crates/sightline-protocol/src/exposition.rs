//! Prometheus text exposition (0.0.4) and OpenMetrics 1.0 text parsing: a streaming parser that turns a scrape body into HELP/TYPE/UNIT metadata and samples borrowed from the body.
//!
//! The rules follow what Prometheus 2.42 accepts when it scrapes, format by
//! format:
//!
//! * **Text 0.0.4** — `\n`-terminated lines, the last one may lack its `\n`.
//!   Blank lines are skipped; `#` lines other than `# HELP` / `# TYPE` are
//!   comments. Spaces and tabs are tolerated between every token and at the
//!   start of a line. Label lists may end with a comma (and, like Prometheus,
//!   the comma between two labels may be left out). Label values are quoted
//!   with `\\`, `\"` and `\n` escapes (other `\x` pairs are kept as written);
//!   as in Prometheus a raw newline inside a quoted label value is part of the
//!   value. HELP text understands `\\` and `\n`. Types: `counter`, `gauge`,
//!   `histogram`, `summary`, `untyped` (→ [`MetricType::Unknown`]).
//!   Timestamps are integer milliseconds.
//! * **OpenMetrics 1.0** — every line ends with `\n` and the body must end
//!   with a `# EOF` line (its `\n` is optional) followed by nothing. No blank
//!   lines, no free comments, exactly one space between tokens, no trailing
//!   comma in label lists, no raw newline in label values. `# UNIT` is
//!   recognised (the unit must be a `_`-separated suffix of the name). HELP
//!   text uses the label-value escapes. Timestamps are float seconds (turned
//!   into milliseconds, truncated toward zero; NaN and infinities refused).
//!   A sample may carry an exemplar (` # {labels} value [timestamp]`), only
//!   on `_total` and `_bucket` samples. An exemplar whose label names and
//!   values exceed 128 characters together is dropped, the sample kept, as
//!   Prometheus does (the spec forbids it; Prometheus does not fail the
//!   scrape for it).
//!
//! In both formats metric names are `[a-zA-Z_:][a-zA-Z0-9_:]*`, label names
//! `[a-zA-Z_][a-zA-Z0-9_]*`, label values and HELP text must be UTF-8, a label
//! name may appear once per sample, and values are decimal floats as Go's
//! `strconv.ParseFloat` reads them (`NaN`, `Inf`, `+Inf`, `-Inf`, `infinity`
//! in any case; no hexadecimal, no `_`, no out-of-range literal such as
//! `1e400`). Samples are yielded with their full names (`foo_bucket`,
//! `foo_created`, …); grouping them into families is the caller's business.
//!
//! The parser never splits the body up front: it walks it with `memchr`, so
//! memory stays bounded by the entry being yielded, and every scan is linear.
//! After the first error the iterator ends.

use std::borrow::Cow;
use std::iter::FusedIterator;

use memchr::{memchr, memchr3};

/// Which text format a body is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Prometheus text exposition format 0.0.4 (`text/plain; version=0.0.4`).
    Text,
    /// OpenMetrics 1.0 text (`application/openmetrics-text; version=1.0.0`).
    OpenMetrics,
}

impl Format {
    /// The format a scrape response's `Content-Type` announces: OpenMetrics for
    /// `application/openmetrics-text` (any parameters, any case), the
    /// Prometheus text format for anything else, as Prometheus falls back.
    pub fn from_content_type(ct: &str) -> Format {
        let media = ct.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case("application/openmetrics-text") {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }
}

/// A metric family's type, from its `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    /// `unknown` in OpenMetrics, `untyped` in the text format.
    Unknown,
}

impl MetricType {
    /// The name the Prometheus metadata API uses for this type.
    pub fn as_str(&self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Unknown => "unknown",
        }
    }

    /// The type a `# TYPE` line names, with the vocabulary of `format`.
    fn parse(word: &[u8], format: Format) -> Option<MetricType> {
        Some(match (word, format) {
            (b"counter", _) => MetricType::Counter,
            (b"gauge", _) => MetricType::Gauge,
            (b"histogram", _) => MetricType::Histogram,
            (b"summary", _) => MetricType::Summary,
            (b"untyped", Format::Text) => MetricType::Unknown,
            (b"gaugehistogram", Format::OpenMetrics) => MetricType::GaugeHistogram,
            (b"info", Format::OpenMetrics) => MetricType::Info,
            (b"stateset", Format::OpenMetrics) => MetricType::StateSet,
            (b"unknown", Format::OpenMetrics) => MetricType::Unknown,
            _ => return None,
        })
    }
}

/// An OpenMetrics exemplar attached to a sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar {
    /// In the order written, values unescaped.
    pub labels: Vec<(String, String)>,
    pub value: f64,
    /// Float seconds in the exposition, milliseconds here.
    pub timestamp_ms: Option<i64>,
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    /// The full sample name (`foo_total`, `foo_bucket`, `foo_created`, …).
    pub name: Cow<'a, str>,
    /// In the order written; values unescaped (owned only when an escape was
    /// replaced).
    pub labels: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    pub value: f64,
    /// Milliseconds since the epoch, when the line has a timestamp.
    pub timestamp_ms: Option<i64>,
    /// OpenMetrics only. An exemplar whose label names and values are longer
    /// than 128 characters together is dropped (the sample is kept), as
    /// Prometheus does.
    pub exemplar: Option<Exemplar>,
}

/// One meaningful line of an exposition.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry<'a> {
    /// `# HELP family text`, the text unescaped.
    Help {
        family: &'a str,
        help: Cow<'a, str>,
    },
    /// `# TYPE family type`.
    Type {
        family: &'a str,
        kind: MetricType,
    },
    /// `# UNIT family unit` (OpenMetrics only; the unit may be empty).
    Unit {
        family: &'a str,
        unit: &'a str,
    },
    Sample(Sample<'a>),
}

/// Why a body was refused, with the 1-based line it happened on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based; for a missing `# EOF`, the line after the last one.
    pub line: usize,
    pub message: String,
}

/// Streams the entries of an exposition body, one line (or sample) at a
/// time. Yields `Err` at most once, then ends.
#[derive(Debug, Clone)]
pub struct Parser<'a> {
    body: &'a [u8],
    /// Start of the next line to read.
    pos: usize,
    /// 1-based number of the line starting at `pos`.
    line: usize,
    format: Format,
    done: bool,
}

impl<'a> Parser<'a> {
    /// A parser over a whole scrape body in `format`. Nothing is read before
    /// the first call to `next`.
    pub fn new(body: &'a [u8], format: Format) -> Self {
        Parser {
            body,
            pos: 0,
            line: 1,
            format,
            done: false,
        }
    }

    fn fail(&self, message: impl Into<String>) -> ParseError {
        ParseError {
            line: self.line,
            message: message.into(),
        }
    }

    /// Moves past the line ending at `end` (the index of its `\n`, or the end
    /// of the body).
    fn finish_line(&mut self, end: usize, extra_newlines: usize) {
        self.pos = (end + 1).min(self.body.len());
        self.line += 1 + extra_newlines;
    }

    fn line_end(&self) -> (usize, bool) {
        match memchr(b'\n', &self.body[self.pos..]) {
            Some(k) => (self.pos + k, true),
            None => (self.body.len(), false),
        }
    }

    // ---- Prometheus text format 0.0.4 ----

    fn next_text(&mut self) -> Result<Option<Entry<'a>>, ParseError> {
        let b = self.body;
        loop {
            if self.pos >= b.len() {
                return Ok(None);
            }
            let i = skip_blank(b, self.pos);
            match b.get(i) {
                None => {
                    self.finish_line(b.len(), 0);
                    return Ok(None);
                }
                Some(b'\n') => self.finish_line(i, 0),
                Some(b'#') => {
                    let (end, _) = self.line_end();
                    if let Some(entry) = self.text_hash_line(i, end)? {
                        self.finish_line(end, 0);
                        return Ok(Some(entry));
                    }
                    self.finish_line(end, 0);
                }
                Some(&c) if is_metric_start(c) => return self.text_sample(i).map(Some),
                Some(&c) => {
                    return Err(self.fail(format!(
                        "unexpected {} at the start of a line",
                        describe_byte(c)
                    )))
                }
            }
        }
    }

    /// A line starting with `#` (at `start`, ending at `end`): HELP, TYPE or a
    /// comment (`None`).
    fn text_hash_line(&self, start: usize, end: usize) -> Result<Option<Entry<'a>>, ParseError> {
        let line = &self.body[start..end];
        // `#` must be followed by blanks for the line to be metadata.
        if !line.get(1).is_some_and(|&c| is_blank(c)) {
            return Ok(None);
        }
        let j = skip_blank(line, 1);
        let word = &line[j..];
        let is_help = word.starts_with(b"HELP");
        if !(is_help || word.starts_with(b"TYPE")) || !word.get(4).is_some_and(|&c| is_blank(c)) {
            return Ok(None);
        }
        let keyword = if is_help { "HELP" } else { "TYPE" };
        let k = skip_blank(line, j + 4);
        if !line.get(k).is_some_and(|&c| is_metric_start(c)) {
            return Err(self.fail(format!(
                "expected a metric name after {keyword}, found {}",
                describe(line.get(k).or(Some(&b'\n')))
            )));
        }
        let name_end = scan_metric_name(line, k);
        let family = ascii(&line[k..name_end]);
        // Prometheus drops the one character that separates the name from the
        // text; when only blanks follow the name the text is empty.
        let rest = &line[name_end..];
        let text = if rest.iter().all(|&c| is_blank(c)) {
            &rest[rest.len()..]
        } else {
            &rest[1..]
        };
        if is_help {
            let text = std::str::from_utf8(text)
                .map_err(|_| self.fail(format!("HELP text of {family} is not valid UTF-8")))?;
            Ok(Some(Entry::Help {
                family,
                help: unescape(text, false),
            }))
        } else {
            let kind = MetricType::parse(text, Format::Text).ok_or_else(|| {
                self.fail(format!(
                    "invalid metric type {} for {family} (expected counter, gauge, histogram, summary or untyped)",
                    show(text)
                ))
            })?;
            Ok(Some(Entry::Type { family, kind }))
        }
    }

    /// A sample whose name starts at `i`.
    fn text_sample(&mut self, mut i: usize) -> Result<Entry<'a>, ParseError> {
        let b = self.body;
        let v = View::new(b, i);
        let name_end = scan_metric_name(b, i);
        let name = v.ascii(i, name_end);
        i = skip_blank(b, name_end);
        let mut labels = Vec::new();
        let mut newlines = 0;
        if b.get(i) == Some(&b'{') {
            i += 1;
            loop {
                i = skip_blank(b, i);
                match b.get(i) {
                    Some(b'}') => {
                        i += 1;
                        break;
                    }
                    Some(&c) if is_label_start(c) => {}
                    other => {
                        return Err(self.fail(format!(
                            "expected a label name or '}}' in {name}, found {}",
                            describe(other)
                        )))
                    }
                }
                let name_end = scan_label_name(b, i);
                let lname = v.ascii(i, name_end);
                i = skip_blank(b, name_end);
                if b.get(i) != Some(&b'=') {
                    return Err(self.fail(format!(
                        "expected '=' after label name {lname} in {name}, found {}",
                        describe(b.get(i))
                    )));
                }
                i = skip_blank(b, i + 1);
                if b.get(i) != Some(&b'"') {
                    return Err(self.fail(format!(
                        "expected a quoted value for label {lname} in {name}, found {}",
                        describe(b.get(i))
                    )));
                }
                let q = scan_quoted(b, i + 1, true)
                    .map_err(|why| self.fail(format!("label {lname} of {name}: {why}")))?;
                newlines += q.newlines;
                let value = v.label_value(i + 1, q.end).ok_or_else(|| {
                    self.fail(format!(
                        "value of label {lname} in {name} is not valid UTF-8"
                    ))
                })?;
                labels.push((Cow::Borrowed(lname), value));
                i = skip_blank(b, q.end + 1);
                if b.get(i) == Some(&b',') {
                    i += 1;
                }
            }
            check_duplicates(&labels)
                .map_err(|l| self.fail(format!("label {l} appears more than once in {name}")))?;
            i = skip_blank(b, i);
        }
        let v_end = scan_while(b, i, |c| !matches!(c, b' ' | b'\t' | b'\n' | b'{' | 0));
        if v_end == i {
            return Err(self.fail(format!(
                "expected a value after {name}, found {}",
                describe(b.get(i))
            )));
        }
        let value = parse_float_str(v.str(i, v_end))
            .map_err(|e| self.fail(e.message("value", &b[i..v_end])))?;
        i = skip_blank(b, v_end);
        let mut timestamp_ms = None;
        if b.get(i).is_some_and(u8::is_ascii_digit) {
            let t_end = scan_while(b, i, |c| c.is_ascii_digit());
            let ts = v.ascii(i, t_end).parse::<i64>().map_err(|_| {
                self.fail(format!("timestamp {} is out of range", show(&b[i..t_end])))
            })?;
            timestamp_ms = Some(ts);
            i = skip_blank(b, t_end);
            if !matches!(b.get(i), None | Some(b'\n')) {
                return Err(self.fail(format!(
                    "expected the end of the line after the timestamp, found {}",
                    describe(b.get(i))
                )));
            }
        } else if !matches!(b.get(i), None | Some(b'\n')) {
            return Err(self.fail(format!(
                "expected a timestamp (integer milliseconds) or the end of the line after the value, found {}",
                describe(b.get(i))
            )));
        }
        self.finish_line(i, newlines);
        Ok(Entry::Sample(Sample {
            name: Cow::Borrowed(name),
            labels,
            value,
            timestamp_ms,
            exemplar: None,
        }))
    }

    // ---- OpenMetrics 1.0 ----

    fn next_om(&mut self) -> Result<Option<Entry<'a>>, ParseError> {
        let b = self.body;
        if self.pos >= b.len() {
            return Err(self.fail("missing # EOF"));
        }
        let start = self.pos;
        match b[start] {
            b'#' => {
                let (end, terminated) = self.line_end();
                let line = &b[start..end];
                if line == b"# EOF" {
                    if terminated && end + 1 < b.len() {
                        self.line += 1;
                        return Err(self.fail("unexpected data after # EOF"));
                    }
                    self.pos = b.len();
                    return Ok(None);
                }
                if line.starts_with(b"# EOF") {
                    return Err(self.fail("unexpected data after # EOF"));
                }
                let entry = self.om_meta(line)?;
                if !terminated {
                    return Err(self.fail(UNTERMINATED));
                }
                self.finish_line(end, 0);
                Ok(Some(entry))
            }
            c if is_metric_start(c) => self.om_sample(start).map(Some),
            b'\n' => Err(self.fail("blank lines are not allowed in OpenMetrics")),
            c => Err(self.fail(format!(
                "unexpected {} at the start of a line",
                describe_byte(c)
            ))),
        }
    }

    fn om_meta(&self, line: &'a [u8]) -> Result<Entry<'a>, ParseError> {
        let rest = line.strip_prefix(b"# ").ok_or_else(|| {
            self.fail("'#' must be followed by one space and HELP, TYPE, UNIT or EOF")
        })?;
        let (keyword, rest) = [
            ("HELP", &b"HELP "[..]),
            ("TYPE", b"TYPE "),
            ("UNIT", b"UNIT "),
        ]
        .into_iter()
        .find_map(|(k, p)| rest.strip_prefix(p).map(|r| (k, r)))
        .ok_or_else(|| {
            self.fail(format!(
                "OpenMetrics allows only # HELP, # TYPE, # UNIT and # EOF lines, found {}",
                show(line)
            ))
        })?;
        if !rest.first().is_some_and(|&c| is_metric_start(c)) {
            return Err(self.fail(format!(
                "expected a metric name after {keyword}, found {}",
                describe(rest.first().or(Some(&b'\n')))
            )));
        }
        let name_end = scan_metric_name(rest, 0);
        let family = ascii(&rest[..name_end]);
        let text = match rest.get(name_end) {
            Some(b' ') => &rest[name_end + 1..],
            other => {
                return Err(self.fail(format!(
                    "expected one space and text after {keyword} {family}, found {}",
                    describe(other.or(Some(&b'\n')))
                )))
            }
        };
        match keyword {
            "HELP" => {
                let text = std::str::from_utf8(text)
                    .map_err(|_| self.fail(format!("HELP text of {family} is not valid UTF-8")))?;
                Ok(Entry::Help {
                    family,
                    help: unescape(text, true),
                })
            }
            "TYPE" => {
                let kind = MetricType::parse(text, Format::OpenMetrics).ok_or_else(|| {
                    self.fail(format!(
                        "invalid metric type {} for {family} (expected counter, gauge, histogram, gaugehistogram, summary, info, stateset or unknown)",
                        show(text)
                    ))
                })?;
                Ok(Entry::Type { family, kind })
            }
            _ => {
                // The unit must end the name, after an underscore.
                let ok = text.is_empty()
                    || (family.len() > text.len()
                        && family.as_bytes().ends_with(text)
                        && family.as_bytes()[family.len() - text.len() - 1] == b'_');
                if !ok {
                    return Err(self.fail(format!(
                        "unit {} is not a suffix of metric {family}",
                        show(text)
                    )));
                }
                Ok(Entry::Unit {
                    family,
                    unit: &family[family.len() - text.len()..],
                })
            }
        }
    }

    fn om_sample(&mut self, start: usize) -> Result<Entry<'a>, ParseError> {
        let b = self.body;
        let v = View::new(b, start);
        let mut i = scan_metric_name(b, start);
        let name = v.ascii(start, i);
        let mut labels = Vec::new();
        if b.get(i) == Some(&b'{') {
            i = om_labels(&v, i + 1, &mut labels).map_err(|m| self.fail(format!("{name}: {m}")))?;
            check_duplicates(&labels)
                .map_err(|l| self.fail(format!("label {l} appears more than once in {name}")))?;
        }
        if b.get(i) != Some(&b' ') {
            return Err(self.fail(format!(
                "expected one space and a value after {name}, found {}",
                describe(b.get(i))
            )));
        }
        let v_end = om_token_end(b, i + 1);
        if v_end == i + 1 {
            return Err(self.fail(format!(
                "expected a value after {name}, found {}",
                describe(b.get(i + 1))
            )));
        }
        let value = parse_float_str(v.str(i + 1, v_end))
            .map_err(|e| self.fail(e.message("value", &b[i + 1..v_end])))?;
        i = v_end;
        let mut timestamp_ms = None;
        let mut exemplar = None;
        let mut had_exemplar = false;
        if !b[i..].starts_with(EXEMPLAR_START) && b.get(i) == Some(&b' ') {
            let t_end = om_token_end(b, i + 1);
            if t_end == i + 1 {
                return Err(self.fail(format!(
                    "expected a timestamp or an exemplar after the value, found {}",
                    describe(b.get(i + 1))
                )));
            }
            timestamp_ms = Some(om_timestamp(&v, i + 1, t_end).map_err(|m| self.fail(m))?);
            i = t_end;
        }
        if b[i..].starts_with(EXEMPLAR_START) {
            if !(name.ends_with("_total") || name.ends_with("_bucket")) {
                return Err(self.fail(format!(
                    "{name} cannot have an exemplar (only _total and _bucket samples can)"
                )));
            }
            let (e, end) = om_exemplar(&v, i + EXEMPLAR_START.len())
                .map_err(|m| self.fail(format!("exemplar of {name}: {m}")))?;
            exemplar = e;
            had_exemplar = true;
            i = end;
        }
        match b.get(i) {
            Some(b'\n') => {}
            None => return Err(self.fail(UNTERMINATED)),
            other => {
                return Err(self.fail(format!(
                    "expected the end of the line after {}, found {}",
                    if had_exemplar {
                        "the exemplar"
                    } else if timestamp_ms.is_some() {
                        "the timestamp"
                    } else {
                        "the value"
                    },
                    describe(other)
                )))
            }
        }
        self.finish_line(i, 0);
        Ok(Entry::Sample(Sample {
            name: Cow::Borrowed(name),
            labels,
            value,
            timestamp_ms,
            exemplar,
        }))
    }
}

impl<'a> Iterator for Parser<'a> {
    type Item = Result<Entry<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let step = match self.format {
            Format::Text => self.next_text(),
            Format::OpenMetrics => self.next_om(),
        };
        match step {
            Ok(Some(entry)) => Some(Ok(entry)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl FusedIterator for Parser<'_> {}

/// Convenience: parse everything, stop at the first error.
pub fn parse_all(body: &[u8], format: Format) -> Result<Vec<Entry<'_>>, ParseError> {
    Parser::new(body, format).collect()
}

// ---- helpers shared by both formats ----

/// Longest combined length, in characters, of an exemplar's label names and
/// values (OpenMetrics 1.0).
const EXEMPLAR_MAX_LABEL_CHARS: usize = 128;

const EXEMPLAR_START: &[u8] = b" # {";

const UNTERMINATED: &str = "missing # EOF: the body ends inside a line (no newline)";

fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

fn is_metric_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':'
}

fn is_label_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn skip_blank(b: &[u8], i: usize) -> usize {
    scan_while(b, i, is_blank)
}

fn scan_while(b: &[u8], mut i: usize, keep: impl Fn(u8) -> bool) -> usize {
    while i < b.len() && keep(b[i]) {
        i += 1;
    }
    i
}

fn scan_metric_name(b: &[u8], i: usize) -> usize {
    scan_while(b, i, |c| {
        c.is_ascii_alphanumeric() || c == b'_' || c == b':'
    })
}

fn scan_label_name(b: &[u8], i: usize) -> usize {
    scan_while(b, i, |c| c.is_ascii_alphanumeric() || c == b'_')
}

/// End of an OpenMetrics token (value, timestamp): the next space, newline or
/// NUL.
fn om_token_end(b: &[u8], i: usize) -> usize {
    scan_while(b, i, |c| !matches!(c, b' ' | b'\n' | 0))
}

/// A slice the grammar has already restricted to ASCII.
fn ascii(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or_default()
}

/// The body around one sample line, with that line checked for UTF-8 once so
/// that its tokens are then cut from a `&str` without checking each again.
/// Tokens outside the line (a text-format label value running over a raw
/// newline) or on a line that is not UTF-8 are checked one by one.
struct View<'a> {
    b: &'a [u8],
    start: usize,
    line: Option<&'a str>,
}

impl<'a> View<'a> {
    fn new(b: &'a [u8], start: usize) -> Self {
        let end = memchr(b'\n', &b[start..]).map_or(b.len(), |k| start + k);
        View {
            b,
            start,
            line: std::str::from_utf8(&b[start..end]).ok(),
        }
    }

    /// `b[from..to]` as UTF-8, if it is.
    fn str(&self, from: usize, to: usize) -> Option<&'a str> {
        self.line
            .and_then(|l| l.get(from.checked_sub(self.start)?..to - self.start))
            .or_else(|| std::str::from_utf8(&self.b[from..to]).ok())
    }

    /// A token the grammar has restricted to ASCII.
    fn ascii(&self, from: usize, to: usize) -> &'a str {
        self.str(from, to).unwrap_or_default()
    }

    /// A label value's content (between its quotes), unescaped; `None` when it
    /// is not UTF-8.
    fn label_value(&self, from: usize, to: usize) -> Option<Cow<'a, str>> {
        self.str(from, to).map(|s| unescape(s, true))
    }
}

struct Quoted {
    /// Index of the closing quote.
    end: usize,
    /// Raw newlines inside the value (text format only).
    newlines: usize,
}

/// Finds the closing quote of a label value whose first byte is at `i`.
/// A backslash takes the next byte with it, whatever it is except a newline.
fn scan_quoted(b: &[u8], mut i: usize, newline_ok: bool) -> Result<Quoted, &'static str> {
    let mut newlines = 0;
    loop {
        let Some(k) = memchr3(b'"', b'\\', b'\n', &b[i..]) else {
            return Err("unterminated label value");
        };
        let p = i + k;
        match b[p] {
            b'"' => return Ok(Quoted { end: p, newlines }),
            b'\\' => match b.get(p + 1) {
                None => return Err("unterminated label value"),
                Some(b'\n') => return Err("backslash before a newline in a label value"),
                Some(_) => i = p + 2,
            },
            _ if newline_ok => {
                newlines += 1;
                i = p + 1;
            }
            _ => return Err("unterminated label value (newline before the closing quote)"),
        }
    }
}

/// Replaces `\\` and `\n` (and `\"` when `quote`) from left to right; any
/// other backslash stays as written. Borrows when nothing is replaced.
fn unescape(s: &str, quote: bool) -> Cow<'_, str> {
    let bytes = s.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut from = 0;
    while let Some(k) = memchr(b'\\', &bytes[from..]) {
        let p = from + k;
        let replacement = match bytes.get(p + 1) {
            Some(b'\\') => '\\',
            Some(b'n') => '\n',
            Some(b'"') if quote => '"',
            _ => {
                from = p + 1;
                continue;
            }
        };
        let o = out.get_or_insert_with(|| String::with_capacity(s.len()));
        o.push_str(&s[copied..p]);
        o.push(replacement);
        copied = p + 2;
        from = p + 2;
    }
    match out {
        None => Cow::Borrowed(s),
        Some(mut o) => {
            o.push_str(&s[copied..]);
            Cow::Owned(o)
        }
    }
}

/// The first label name that appears twice, if any. Linear for the usual
/// handful of labels, `n log n` for hostile lists.
fn check_duplicates<K: AsRef<str>, V>(labels: &[(K, V)]) -> Result<(), String> {
    if labels.len() <= 16 {
        for (i, (a, _)) in labels.iter().enumerate() {
            if labels[..i].iter().any(|(b, _)| b.as_ref() == a.as_ref()) {
                return Err(a.as_ref().to_string());
            }
        }
        return Ok(());
    }
    let mut names: Vec<&str> = labels.iter().map(|(k, _)| k.as_ref()).collect();
    names.sort_unstable();
    match names.windows(2).find(|w| w[0] == w[1]) {
        Some(w) => Err(w[0].to_string()),
        None => Ok(()),
    }
}

/// An OpenMetrics label list whose `{` is just before `i`; returns the index
/// after its `}`.
fn om_labels<'a>(
    v: &View<'a>,
    mut i: usize,
    out: &mut Vec<(Cow<'a, str>, Cow<'a, str>)>,
) -> Result<usize, String> {
    let b = v.b;
    if b.get(i) == Some(&b'}') {
        return Ok(i + 1);
    }
    loop {
        if !b.get(i).is_some_and(|&c| is_label_start(c)) {
            return Err(format!(
                "expected a label name, found {}",
                describe(b.get(i))
            ));
        }
        let name_end = scan_label_name(b, i);
        let lname = v.ascii(i, name_end);
        if b.get(name_end) != Some(&b'=') {
            return Err(format!(
                "expected '=' after label name {lname}, found {}",
                describe(b.get(name_end))
            ));
        }
        if b.get(name_end + 1) != Some(&b'"') {
            return Err(format!(
                "expected a quoted value for label {lname}, found {}",
                describe(b.get(name_end + 1))
            ));
        }
        let q =
            scan_quoted(b, name_end + 2, false).map_err(|why| format!("label {lname}: {why}"))?;
        let value = v
            .label_value(name_end + 2, q.end)
            .ok_or_else(|| format!("value of label {lname} is not valid UTF-8"))?;
        out.push((Cow::Borrowed(lname), value));
        i = q.end + 1;
        match b.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => return Ok(i + 1),
            other => {
                return Err(format!(
                    "expected ',' or '}}' after the value of label {lname}, found {}",
                    describe(other)
                ))
            }
        }
    }
}

/// ` # {` has been read up to `i`: labels, ` value`, optional ` timestamp`.
/// Returns the exemplar (`None` when its labels are longer than OpenMetrics
/// allows: like Prometheus, the sample is kept and the exemplar dropped) and
/// the index after it.
fn om_exemplar(v: &View<'_>, i: usize) -> Result<(Option<Exemplar>, usize), String> {
    let b = v.b;
    let mut labels = Vec::new();
    let mut i = om_labels(v, i, &mut labels)?;
    check_duplicates(&labels).map_err(|l| format!("label {l} appears more than once"))?;
    let chars: usize = labels
        .iter()
        .map(|(k, v)| k.chars().count() + v.chars().count())
        .sum();
    if b.get(i) != Some(&b' ') {
        return Err(format!(
            "expected one space and a value after the labels, found {}",
            describe(b.get(i))
        ));
    }
    let v_end = om_token_end(b, i + 1);
    if v_end == i + 1 {
        return Err(format!(
            "expected a value, found {}",
            describe(b.get(i + 1))
        ));
    }
    let value =
        parse_float_str(v.str(i + 1, v_end)).map_err(|e| e.message("value", &b[i + 1..v_end]))?;
    i = v_end;
    let mut timestamp_ms = None;
    if b.get(i) == Some(&b' ') {
        let t_end = om_token_end(b, i + 1);
        if t_end == i + 1 {
            return Err(format!(
                "expected a timestamp, found {}",
                describe(b.get(i + 1))
            ));
        }
        timestamp_ms = Some(om_timestamp(v, i + 1, t_end)?);
        i = t_end;
    }
    if chars > EXEMPLAR_MAX_LABEL_CHARS {
        return Ok((None, i));
    }
    let labels = labels
        .into_iter()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    Ok((
        Some(Exemplar {
            labels,
            value,
            timestamp_ms,
        }),
        i,
    ))
}

/// OpenMetrics timestamp: float seconds, finite, to milliseconds truncated
/// toward zero (saturating at the `i64` range).
fn om_timestamp(v: &View<'_>, from: usize, to: usize) -> Result<i64, String> {
    let tok = &v.b[from..to];
    let secs = parse_float_str(v.str(from, to)).map_err(|e| e.message("timestamp", tok))?;
    if !secs.is_finite() {
        return Err(format!("invalid timestamp {}", show(tok)));
    }
    Ok((secs * 1000.0) as i64)
}

enum FloatError {
    /// Hexadecimal or digit-separator syntax Prometheus refuses.
    Unsupported,
    Syntax,
    OutOfRange,
}

impl FloatError {
    fn message(&self, what: &str, tok: &[u8]) -> String {
        let why = match self {
            FloatError::Unsupported => " (hexadecimal floats and '_' are not accepted)",
            FloatError::Syntax => "",
            FloatError::OutOfRange => " (out of range)",
        };
        format!("invalid {what} {}{why}", show(tok))
    }
}

/// A float as Go's `strconv.ParseFloat(s, 64)` reads it, without the
/// hexadecimal and underscore forms (which Prometheus refuses): optional sign,
/// decimal mantissa with at least one digit, optional exponent; or `inf` /
/// `infinity` with an optional sign, or an unsigned `nan`, in any case. A
/// finite literal too large for `f64` is an error, a too small one is 0.
#[cfg(test)]
fn parse_float(tok: &[u8]) -> Result<f64, FloatError> {
    parse_float_str(std::str::from_utf8(tok).ok())
}

/// [`parse_float`] on a token already checked for UTF-8 (`None`: it is not).
fn parse_float_str(tok: Option<&str>) -> Result<f64, FloatError> {
    let s = tok.ok_or(FloatError::Syntax)?;
    if s.bytes().any(|c| matches!(c, b'p' | b'P' | b'_')) {
        return Err(FloatError::Unsupported);
    }
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    if unsigned.eq_ignore_ascii_case("nan") {
        return if unsigned.len() == s.len() {
            Ok(f64::NAN)
        } else {
            Err(FloatError::Syntax)
        };
    }
    // For everything else Rust's grammar is Go's decimal grammar.
    let v: f64 = s.parse().map_err(|_| FloatError::Syntax)?;
    if v.is_infinite() && !unsigned.starts_with(['i', 'I']) {
        return Err(FloatError::OutOfRange);
    }
    Ok(v)
}

/// A token for an error message: quoted, cut to a readable length.
fn show(tok: &[u8]) -> String {
    const MAX: usize = 48;
    if tok.len() <= MAX {
        format!("{:?}", String::from_utf8_lossy(tok))
    } else {
        format!(
            "{:?}… ({} bytes)",
            String::from_utf8_lossy(&tok[..MAX]),
            tok.len()
        )
    }
}

fn describe(c: Option<&u8>) -> String {
    match c {
        None => "the end of the body".to_string(),
        Some(&c) => describe_byte(c),
    }
}

fn describe_byte(c: u8) -> String {
    match c {
        b'\n' => "the end of the line".to_string(),
        0x21..=0x7e => format!("'{}'", c as char),
        b' ' => "a space".to_string(),
        b'\t' => "a tab".to_string(),
        _ => format!("byte 0x{c:02x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(body: &str, format: Format) -> Vec<Sample<'_>> {
        parse_all(body.as_bytes(), format)
            .unwrap()
            .into_iter()
            .filter_map(|e| match e {
                Entry::Sample(s) => Some(s),
                _ => None,
            })
            .collect()
    }

    fn err(body: &str, format: Format) -> ParseError {
        match parse_all(body.as_bytes(), format) {
            Ok(v) => panic!("{body:?} parsed as {v:?}"),
            Err(e) => e,
        }
    }

    fn labels<'a>(s: &'a Sample<'_>) -> Vec<(&'a str, &'a str)> {
        s.labels
            .iter()
            .map(|(k, v)| (k.as_ref(), v.as_ref()))
            .collect()
    }

    #[test]
    fn content_type_picks_the_format() {
        use Format::*;
        for (ct, f) in [
            (
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                OpenMetrics,
            ),
            ("application/openmetrics-text", OpenMetrics),
            (" Application/OpenMetrics-Text ;version=0.0.1", OpenMetrics),
            ("text/plain; version=0.0.4; charset=utf-8", Text),
            ("", Text),
            ("application/json", Text),
            ("application/openmetrics-textual", Text),
        ] {
            assert_eq!(Format::from_content_type(ct), f, "{ct}");
        }
    }

    #[test]
    fn metric_type_names() {
        let all = [
            (MetricType::Counter, "counter"),
            (MetricType::Gauge, "gauge"),
            (MetricType::Histogram, "histogram"),
            (MetricType::GaugeHistogram, "gaugehistogram"),
            (MetricType::Summary, "summary"),
            (MetricType::Info, "info"),
            (MetricType::StateSet, "stateset"),
            (MetricType::Unknown, "unknown"),
        ];
        for (t, s) in all {
            assert_eq!(t.as_str(), s);
        }
        let e = parse_all(b"# TYPE a untyped\n", Format::Text).unwrap();
        assert_eq!(
            e,
            vec![Entry::Type {
                family: "a",
                kind: MetricType::Unknown
            }]
        );
        assert!(parse_all(b"# TYPE a unknown\n", Format::Text).is_err());
        assert!(parse_all(b"# TYPE a info\n", Format::Text).is_err());
        assert!(parse_all(b"# TYPE a untyped\n# EOF\n", Format::OpenMetrics).is_err());
        let e = parse_all(b"# TYPE a stateset\n# EOF\n", Format::OpenMetrics).unwrap();
        assert_eq!(
            e,
            vec![Entry::Type {
                family: "a",
                kind: MetricType::StateSet
            }]
        );
    }

    #[test]
    fn text_whitespace_commas_and_comments() {
        let body = "# HELP go_gc A summary.\n\
                    #\tTYPE go_gc summary\n\
                    go_gc{quantile=\"0\"} 4.9351e-05\n\
                    go_gc{quantile=\"0.25\",} 7.4e-05\n\
                    \x20 go_gc { quantile = \"1\" , a= \"b\" , } 8 \t 123\n\
                    # Hrandom comment\n\
                    #\n\
                    #not a help\n\
                    # HELPX nope\n\
                    \n\
                    \t \n\
                    some:rate5m{a_b=\"c\"}\t1\n\
                    _under{_l=\"x\"} 1\n\
                    missing_comma{a=\"1\" b=\"2\"} 3\n\
                    nospace{a=\"1\"}2\n\
                    last 5";
        let e = parse_all(body.as_bytes(), Format::Text).unwrap();
        assert_eq!(
            e[0],
            Entry::Help {
                family: "go_gc",
                help: Cow::Borrowed("A summary.")
            }
        );
        assert_eq!(
            e[1],
            Entry::Type {
                family: "go_gc",
                kind: MetricType::Summary
            }
        );
        let s: Vec<_> = e[2..]
            .iter()
            .map(|e| match e {
                Entry::Sample(s) => s,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(s.len(), 8);
        assert_eq!(labels(s[1]), vec![("quantile", "0.25")]);
        assert_eq!(labels(s[2]), vec![("quantile", "1"), ("a", "b")]);
        assert_eq!((s[2].value, s[2].timestamp_ms), (8.0, Some(123)));
        assert_eq!(s[3].name, "some:rate5m");
        assert_eq!(labels(s[5]), vec![("a", "1"), ("b", "2")]);
        assert_eq!(s[6].value, 2.0);
        assert_eq!((s[7].name.as_ref(), s[7].value), ("last", 5.0));
    }

    #[test]
    fn text_help_and_label_escapes() {
        let body = "# HELP m a \\\\ b \\n c \\\" d \\x\n\
                    # HELP empty1\n\
                    # HELP empty2 \t \n\
                    # HELP two  spaces\n\
                    m{a=\"q\\\"b\\\\s\\nn\\tt\",plain=\"x\"} 1\n";
        let e = parse_all(body.as_bytes(), Format::Text).unwrap();
        assert_eq!(
            e[0],
            Entry::Help {
                family: "m",
                help: Cow::Owned("a \\ b \n c \\\" d \\x".into())
            }
        );
        assert_eq!(
            e[1],
            Entry::Help {
                family: "empty1",
                help: Cow::Borrowed("")
            }
        );
        assert_eq!(
            e[2],
            Entry::Help {
                family: "empty2",
                help: Cow::Borrowed("")
            }
        );
        assert_eq!(
            e[3],
            Entry::Help {
                family: "two",
                help: Cow::Borrowed(" spaces")
            }
        );
        let Entry::Sample(s) = &e[4] else { panic!() };
        assert_eq!(labels(s), vec![("a", "q\"b\\s\nn\\tt"), ("plain", "x")]);
        assert!(matches!(s.labels[0].1, Cow::Owned(_)));
        assert!(matches!(s.labels[1].1, Cow::Borrowed(_)));
        assert!(matches!(s.name, Cow::Borrowed(_)));
        // An escape that is not replaced keeps the value borrowed.
        let s = samples("m{a=\"\\t\"} 1\n", Format::Text);
        assert!(matches!(s[0].labels[0].1, Cow::Borrowed("\\t")));
    }

    #[test]
    fn text_raw_newline_in_label_value_counts_lines() {
        let body = "a{v=\"x\ny\"} 1\nb 2\nc{\n";
        let mut p = Parser::new(body.as_bytes(), Format::Text);
        let Some(Ok(Entry::Sample(a))) = p.next() else {
            panic!()
        };
        assert_eq!(labels(&a), vec![("v", "x\ny")]);
        assert!(matches!(p.next(), Some(Ok(Entry::Sample(_)))));
        let e = p.next().unwrap().unwrap_err();
        assert_eq!(e.line, 4, "{e}");
        assert!(p.next().is_none());
    }

    #[test]
    fn text_rejections() {
        use Format::Text;
        for (body, line, needle) in [
            ("a", 1, "expected a value"),
            ("a{b='c'} 1\n", 1, "quoted value"),
            ("a{b=\n", 1, "quoted value"),
            ("a{\u{ff}=\"foo\"} 1\n", 1, "label name"),
            ("ok 1\na true\n", 2, "invalid value \"true\""),
            ("something_weird{problem=\"", 1, "unterminated"),
            ("empty_label_name{=\"\"} 0", 1, "label name"),
            ("foo 1_2\n", 1, "'_' are not accepted"),
            ("foo 0x1p-3\n", 1, "hexadecimal"),
            ("foo 0x10\n", 1, "invalid value"),
            ("foo 0 1_2\n", 1, "end of the line after the timestamp"),
            ("foo 1 -5\n", 1, "timestamp"),
            ("foo 1 99999999999999999999\n", 1, "out of range"),
            ("foo 1e400\n", 1, "out of range"),
            ("foo +NaN\n", 1, "invalid value"),
            ("foo 1 2 3\n", 1, "after the timestamp"),
            ("foo{a=\"b\",,} 1\n", 1, "label name"),
            ("foo{,} 1\n", 1, "label name"),
            ("foo{a=\"b\"} {\n", 1, "expected a value"),
            ("{a=\"ok\"} 1", 1, "start of a line"),
            ("\n\n# TYPE #\n", 3, "metric name after TYPE"),
            ("# HELP #\n", 1, "metric name after HELP"),
            ("# HELP \n", 1, "metric name after HELP"),
            ("# TYPE a counter \n", 1, "invalid metric type"),
            ("# TYPE a  counter\n", 1, "invalid metric type"),
            ("# TYPE a counter\r\n", 1, "invalid metric type"),
            ("a 1\r\n", 1, "invalid value"),
            (
                "a{b=\"c\",b=\"d\"} 1\n",
                1,
                "label b appears more than once",
            ),
            ("\0a 1\n", 1, "byte 0x00"),
            ("a{b=\"\\\nx\"} 1\n", 1, "backslash"),
            ("a{b=\"c\"} 1 # {x=\"y\"} 1\n", 1, "after the value"),
        ] {
            let e = err(body, Text);
            assert_eq!(e.line, line, "{body:?}: {e}");
            assert!(e.message.contains(needle), "{body:?}: {e}");
        }
        // Invalid UTF-8 needs raw bytes.
        let e = parse_all(b"ok 1\na{b=\"\xff\"} 1\n", Text).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("not valid UTF-8"), "{e}");
        let e = parse_all(b"# HELP a b\xffc\n", Text).unwrap_err();
        assert!(e.message.contains("UTF-8"), "{e}");
        // Comments are not checked for UTF-8, NUL is fine inside label values.
        assert!(parse_all(b"# c\xff\xfe\nnull{a=\"abc\x00\"} 1", Text).is_ok());
    }

    #[test]
    fn floats_as_prometheus_reads_them() {
        for (tok, want) in [
            ("1", 1.0),
            ("-1.5e3", -1500.0),
            ("+.5", 0.5),
            ("5.", 5.0),
            ("1E-2", 0.01),
            ("1e-400", 0.0),
            ("Inf", f64::INFINITY),
            ("+Inf", f64::INFINITY),
            ("-Inf", f64::NEG_INFINITY),
            ("inf", f64::INFINITY),
            ("-infinity", f64::NEG_INFINITY),
            ("INFINITY", f64::INFINITY),
        ] {
            assert_eq!(parse_float(tok.as_bytes()).ok(), Some(want), "{tok}");
        }
        for tok in ["NaN", "nan", "NAN"] {
            assert!(
                parse_float(tok.as_bytes()).ok().is_some_and(f64::is_nan),
                "{tok}"
            );
        }
        for tok in [
            "", "+", ".", "e5", "1e", "1e+", "0x1p3", "0x10", "1_000", "-nan", "+NaN", "infin",
            "1.2.3", " 1", "1 ", "1e400", "-1e400", "true", "\u{661}",
        ] {
            assert!(parse_float(tok.as_bytes()).is_err(), "{tok:?}");
        }
    }

    #[test]
    fn openmetrics_full_grammar() {
        let body = "# TYPE foo counter\n\
                    # HELP foo help \\\\ \\n \\\" \\x\n\
                    # UNIT foo_seconds seconds\n\
                    # UNIT nounit \n\
                    # HELP nohelp \n\
                    foo_total 17.0 1520879607.789 # {xx=\"yy\"} 5\n\
                    foo_created{a=\"b\"} 1520430000.123\n\
                    hh_bucket{le=\"+Inf\"} 1 # {aa=\"bb\"} 4\n\
                    ggh_bucket{le=\"+Inf\"} 1 # {cc=\"dd\",xx=\"yy\"} 4 123.123\n\
                    empty{} NaN\n\
                    neg 1 -1.5\n\
                    # EOF";
        let e = parse_all(body.as_bytes(), Format::OpenMetrics).unwrap();
        assert_eq!(
            e[0],
            Entry::Type {
                family: "foo",
                kind: MetricType::Counter
            }
        );
        assert_eq!(
            e[1],
            Entry::Help {
                family: "foo",
                help: Cow::Owned("help \\ \n \" \\x".into())
            }
        );
        assert_eq!(
            e[2],
            Entry::Unit {
                family: "foo_seconds",
                unit: "seconds"
            }
        );
        assert_eq!(
            e[3],
            Entry::Unit {
                family: "nounit",
                unit: ""
            }
        );
        assert_eq!(
            e[4],
            Entry::Help {
                family: "nohelp",
                help: Cow::Borrowed("")
            }
        );
        let s: Vec<_> = e[5..]
            .iter()
            .map(|e| match e {
                Entry::Sample(s) => s,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(s[0].name, "foo_total");
        assert_eq!((s[0].value, s[0].timestamp_ms), (17.0, Some(1520879607789)));
        assert_eq!(
            s[0].exemplar,
            Some(Exemplar {
                labels: vec![("xx".into(), "yy".into())],
                value: 5.0,
                timestamp_ms: None
            })
        );
        assert_eq!((s[1].value, s[1].timestamp_ms), (1520430000.123, None));
        assert_eq!(s[2].exemplar.as_ref().map(|e| e.value), Some(4.0));
        let ex = s[3].exemplar.as_ref().unwrap();
        assert_eq!(ex.labels.len(), 2);
        assert_eq!(ex.timestamp_ms, Some(123123));
        assert!(s[4].labels.is_empty() && s[4].value.is_nan());
        assert_eq!(s[5].timestamp_ms, Some(-1500));
    }

    #[test]
    fn openmetrics_rejections() {
        use Format::OpenMetrics as Om;
        for (body, line, needle) in [
            ("", 1, "missing # EOF"),
            ("\n", 1, "blank lines"),
            ("metric", 1, "value after metric"),
            ("metric 1", 1, "missing # EOF"),
            ("metric 1\n", 2, "missing # EOF"),
            ("a 1\n\n# EOF\n", 2, "blank lines"),
            (" a 1\n# EOF\n", 1, "start of a line"),
            ("9\n# EOF\n", 1, "start of a line"),
            ("# TYPE c counter \n# EOF\n", 1, "invalid metric type"),
            ("# TYPE c  counter\n# EOF\n", 1, "invalid metric type"),
            ("#  TYPE c counter\n# EOF\n", 1, "only # HELP"),
            ("#\tTYPE c counter\n# EOF\n", 1, "one space"),
            ("# comment\n# EOF\n", 1, "only # HELP"),
            ("# TYPE \n# EOF\n", 1, "metric name after TYPE"),
            ("# TYPE m\n# EOF\n", 1, "text after TYPE"),
            ("# HELP m\n# EOF\n", 1, "text after HELP"),
            ("# UNIT metric suffix\n# EOF\n", 1, "not a suffix"),
            ("# UNIT metricsuffix suffix\n# EOF\n", 1, "not a suffix"),
            ("# UNIT m suffix\n# EOF\n", 1, "not a suffix"),
            ("a\t1\n# EOF\n", 1, "one space"),
            ("a  1\n# EOF\n", 1, "expected a value"),
            ("a 1\t2\n# EOF\n", 1, "invalid value"),
            ("a 1 2 \n# EOF\n", 1, "after the timestamp"),
            ("a 1 2 #\n# EOF\n", 1, "after the timestamp"),
            ("a 1 1z\n# EOF\n", 1, "invalid timestamp"),
            ("a 1 1 1\n# EOF\n", 1, "after the timestamp"),
            ("a 1 NaN\n# EOF\n", 1, "invalid timestamp"),
            ("a 1 -Inf\n# EOF\n", 1, "invalid timestamp"),
            ("a 1 \n# EOF\n", 1, "timestamp or an exemplar"),
            ("# EOF\na 1", 2, "after # EOF"),
            ("# EOF\n\n", 2, "after # EOF"),
            ("# EOFa 1", 1, "after # EOF"),
            ("# EOF ", 1, "after # EOF"),
            ("a{b=\"c\",} 1\n# EOF\n", 1, "label name"),
            ("a{,b=\"c\"} 1\n# EOF\n", 1, "label name"),
            ("a{b=\"c\"d=\"e\"} 1\n# EOF\n", 1, "','"),
            ("a{b=\"c\" } 1\n# EOF\n", 1, "','"),
            ("a{b = \"c\"} 1\n# EOF\n", 1, "'='"),
            ("a{b=\"c\",b=\"d\"} 1\n# EOF\n", 1, "more than once"),
            ("a{b=\"c\nd\"} 1\n# EOF\n", 1, "unterminated"),
            (
                "ok 1\nsomething_weird{problem=\"\n# EOF\n",
                2,
                "unterminated",
            ),
            ("c_total 1 # {aa=bb}\n# EOF\n", 1, "quoted value"),
            (
                "c_total 1 # {aa=\"bb\"}\n# EOF\n",
                1,
                "value after the labels",
            ),
            ("c_total 1 # {aa=\"bb\"}", 1, "value after the labels"),
            ("c 1 # {aa=\"bb\"} 1\n# EOF\n", 1, "cannot have an exemplar"),
            (
                "c_total 1 # {aa=\"bb\",,cc=\"dd\"} 1\n# EOF\n",
                1,
                "label name",
            ),
            ("c_total 1 # {aa=\"bb\"} 1_2\n# EOF\n", 1, "not accepted"),
            ("c_total 1 # {aa=\"bb\"} true\n# EOF\n", 1, "invalid value"),
            (
                "c_total 1 # {aa=\"bb\"} 1 NaN\n# EOF\n",
                1,
                "invalid timestamp",
            ),
            (
                "c_total 1 # {aa=\"bb\"} 1 2 3\n# EOF\n",
                1,
                "end of the line after the exemplar",
            ),
            (
                "c_total 1 # {a=\"1\",a=\"2\"} 1\n# EOF\n",
                1,
                "more than once",
            ),
            ("a 1 # {x=\"y\"} 1\n# EOF\n", 1, "cannot have an exemplar"),
            ("{b=\"c\"} 1\n# EOF\n", 1, "start of a line"),
        ] {
            let e = err(body, Om);
            assert_eq!(e.line, line, "{body:?}: {e}");
            assert!(e.message.contains(needle), "{body:?}: {e}");
        }
        let e = parse_all(b"a{b=\"\xff\"} 1\n# EOF\n", Om).unwrap_err();
        assert!(e.message.contains("UTF-8"), "{e}");
        let e = parse_all(b"# HELP a \xff\n# EOF\n", Om).unwrap_err();
        assert!(e.message.contains("UTF-8"), "{e}");
        // NUL is a plain character inside label values; `# EOF` may lack `\n`.
        assert!(parse_all(b"a{b=\"\x00\"} 1\n# EOF", Om).is_ok());
    }

    #[test]
    fn exemplar_label_length_limit() {
        let ok = format!("c_total 1 # {{a=\"{}\"}} 1\n# EOF\n", "é".repeat(127));
        assert!(parse_all(ok.as_bytes(), Format::OpenMetrics).is_ok());
        let long = format!("c_total 7 # {{ab=\"{}\"}} 1 2\n# EOF\n", "é".repeat(127));
        let e = parse_all(long.as_bytes(), Format::OpenMetrics).unwrap();
        // Prometheus keeps the sample and drops the exemplar.
        let Entry::Sample(s) = &e[0] else { panic!() };
        assert_eq!((s.value, &s.exemplar), (7.0, &None));
        // The rest of an over-long exemplar must still be well-formed.
        let bad = format!("c_total 7 # {{ab=\"{}\"}} x\n# EOF\n", "é".repeat(127));
        assert!(parse_all(bad.as_bytes(), Format::OpenMetrics).is_err());
    }

    #[test]
    fn many_labels_duplicate_check_is_not_quadratic() {
        let mut body = String::from("m{");
        for i in 0..200_000 {
            body.push_str(&format!("l{i}=\"v\","));
        }
        body.push_str("l7=\"dup\"} 1\n");
        let e = parse_all(body.as_bytes(), Format::Text).unwrap_err();
        assert!(e.message.contains("label l7 appears more than once"), "{e}");
    }
}
