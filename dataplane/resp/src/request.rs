//! Request parsing: multibulk (`*N\r\n$L\r\n...`) and inline commands, incremental and bounded.
//!
//! The parser keeps no copy of the input. It records where each argument lies and resumes where it
//! stopped when a request arrives in pieces, so a request split anywhere costs no re-parse of the
//! arguments already seen. Every length a peer sends is checked against [`Limits`] before anything
//! is sized from it.

use crate::error::{ProtocolError, ProtocolErrorKind};

/// Bounds on what a peer may send; each is checked where the length enters.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest bulk argument, Redis's `proto-max-bulk-len` (default 512 MB).
    pub bulk_len_max: usize,
    /// Largest argument count of one multibulk request. Redis allows up to `INT_MAX`; the count
    /// sizes nothing by itself here (argument slots grow as arguments arrive).
    pub multibulk_len_max: usize,
    /// Longest inline request line, and longest `*`/`$` header line (Redis's
    /// `PROTO_INLINE_MAX_SIZE`, 64 KB).
    pub inline_len_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            bulk_len_max: 512 * 1024 * 1024,
            multibulk_len_max: i32::MAX as usize,
            inline_len_max: 64 * 1024,
        }
    }
}

/// Argument spans a parser keeps room for between requests (16 bytes each).
const ARGS_KEEP: usize = 1024;
/// Inline scratch bytes a parser keeps between requests.
const INLINE_SCRATCH_KEEP: usize = 16 * 1024;

/// Where one argument lies: `start..start + len` in the input (multibulk) or the inline scratch.
#[derive(Debug, Clone, Copy)]
struct ArgSpan {
    start: usize,
    len: usize,
}

/// Progress through a multibulk request that has not fully arrived.
#[derive(Debug, Clone, Copy)]
struct MultibulkProgress {
    /// Argument count announced by the `*` header.
    arg_count: usize,
    /// Offset, from the request start, of the next argument's `$` header.
    cursor: usize,
}

/// An incremental parser for client requests. One per connection; reused for every request.
#[derive(Debug)]
pub struct RequestParser {
    limits: Limits,
    args: Vec<ArgSpan>,
    progress: Option<MultibulkProgress>,
    /// Inline arguments after unquoting; empty for multibulk requests.
    inline_scratch: Vec<u8>,
    inline: bool,
    /// Total bytes the pending request needs, once known (a bulk header was read).
    needed_len: usize,
}

/// The arguments of the last parsed request, borrowed from the input (or the inline scratch).
#[derive(Debug, Clone, Copy)]
pub struct Args<'a> {
    source: &'a [u8],
    spans: &'a [ArgSpan],
    /// The arguments are in the parser's inline buffer, not the input.
    inline: bool,
}

impl<'a> Args<'a> {
    /// Number of arguments, the command name included.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True for an empty request (a blank inline line, `*0`), which is skipped.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Argument `index`.
    ///
    /// # Panics
    /// When `index >= self.len()` (a caller bug: arity is checked before arguments are read).
    pub fn get(&self, index: usize) -> &'a [u8] {
        let span = self.spans[index];
        &self.source[span.start..span.start + span.len]
    }

    /// Every argument, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &'a [u8]> + '_ {
        let source = self.source;
        self.spans
            .iter()
            .map(move |span| &source[span.start..span.start + span.len])
    }

    /// Where argument `index` lies in the input passed to [`RequestParser::parse`], so that a
    /// caller can keep it past the parser's next request; `None` for an inline request (its
    /// arguments are unquoted into the parser's own buffer) or an index past the last.
    pub fn input_range(&self, index: usize) -> Option<std::ops::Range<usize>> {
        let span = self.spans.get(index)?;
        (!self.inline).then(|| span.start..span.start + span.len)
    }
}

impl RequestParser {
    /// A parser enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            args: Vec::with_capacity(8),
            progress: None,
            inline_scratch: Vec::new(),
            inline: false,
            needed_len: 0,
        }
    }

    /// The limits this parser enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Parses one request from the start of `input`.
    ///
    /// Returns `Ok(Some(consumed))` when a whole request was read (its arguments are then in
    /// [`RequestParser::args`]; zero arguments means an empty request to skip), `Ok(None)` when more
    /// bytes are needed. After `Ok(None)` the next call must pass the same request start again,
    /// with more bytes appended.
    ///
    /// # Errors
    /// A [`ProtocolError`] with Redis's message and the byte offset where it was found; the
    /// connection should send the message and close.
    pub fn parse(&mut self, input: &[u8]) -> Result<Option<usize>, ProtocolError> {
        if self.progress.is_none() {
            self.args.clear();
            self.inline = false;
            self.needed_len = 0;
            match input.first() {
                None => return Ok(None),
                Some(b'*') => {}
                Some(_) => return self.parse_inline(input),
            }
            let Some((line_end, count)) = self.header(input, 0, HeaderKind::Multibulk)? else {
                return Ok(None);
            };
            if count <= 0 {
                return Ok(Some(line_end)); // `*0` and `*-1` are ignored, as Redis does.
            }
            let arg_count = count as usize;
            self.progress = Some(MultibulkProgress {
                arg_count,
                cursor: line_end,
            });
        }
        self.parse_multibulk_args(input)
    }

    /// The arguments of the request last returned by [`RequestParser::parse`]; `input` is the
    /// same slice that was passed to it.
    pub fn args<'a>(&'a self, input: &'a [u8]) -> Args<'a> {
        let source = if self.inline {
            &self.inline_scratch[..]
        } else {
            input
        };
        Args {
            source,
            spans: &self.args,
            inline: self.inline,
        }
    }

    /// Forgets a request that has not fully arrived, so that the next [`RequestParser::parse`]
    /// may start anywhere (a parser that reads ahead of the one that runs the requests).
    pub fn reset(&mut self) {
        self.progress = None;
    }

    /// Frees the argument table and inline scratch that a request of many arguments grew, when
    /// no request is in progress: kept, a single SADD of 100,000 members held 1.6 MB per parser
    /// for as long as its connection lived (Redis frees a command's argument vector after it).
    pub fn release_large(&mut self) {
        if self.progress.is_some() {
            return;
        }
        if self.args.capacity() > ARGS_KEEP {
            self.args = Vec::with_capacity(8);
        }
        if self.inline_scratch.capacity() > INLINE_SCRATCH_KEEP {
            self.inline_scratch = Vec::new();
        }
    }

    /// Bytes the pending request needs in all, when a bulk header has announced them; lets the
    /// connection grow its buffer once for a large value instead of many times.
    pub fn needed_len(&self) -> usize {
        self.needed_len
    }

    fn parse_multibulk_args(&mut self, input: &[u8]) -> Result<Option<usize>, ProtocolError> {
        let mut progress = self.progress.expect("multibulk in progress");
        while self.args.len() < progress.arg_count {
            let header_at = progress.cursor;
            match input.get(header_at) {
                None => break,
                Some(b'$') => {}
                Some(&found) => {
                    self.progress = None;
                    return Err(ProtocolError::new(
                        ProtocolErrorKind::ExpectedBulk { found },
                        header_at,
                    ));
                }
            }
            let header = match self.header(input, header_at, HeaderKind::Bulk) {
                Ok(header) => header,
                Err(error) => {
                    self.progress = None;
                    return Err(error);
                }
            };
            let Some((data_start, len)) = header else {
                break;
            };
            let len = len as usize; // header() refused negative lengths.
            let arg_end = data_start + len + 2;
            self.needed_len = arg_end;
            if input.len() < arg_end {
                break;
            }
            // Redis skips the two bytes after the data without checking them; so does Ember.
            self.args.push(ArgSpan {
                start: data_start,
                len,
            });
            progress.cursor = arg_end;
        }
        if self.args.len() == progress.arg_count {
            self.progress = None;
            Ok(Some(progress.cursor))
        } else {
            self.progress = Some(progress);
            Ok(None)
        }
    }

    /// Reads a `*N` or `$N` header line at `at`; returns the offset after its line end and N.
    fn header(
        &self,
        input: &[u8],
        at: usize,
        kind: HeaderKind,
    ) -> Result<Option<(usize, i64)>, ProtocolError> {
        // The common header, a few digits and a whole line end, is read in one pass; anything
        // else (a sign, a leading zero, a line not all here, a bad byte) takes the general
        // path below, which gives the same answer for these.
        if let Some((line_end, number)) = short_header(input, at) {
            let valid = match kind {
                HeaderKind::Multibulk => number <= self.limits.multibulk_len_max as u64,
                HeaderKind::Bulk => number <= self.limits.bulk_len_max as u64,
            };
            if valid {
                return Ok(Some((line_end, number as i64)));
            }
        }
        let search_end = input.len().min(at + 1 + self.limits.inline_len_max + 2);
        let Some(cr) = find_byte(&input[at + 1..search_end], b'\r').map(|i| at + 1 + i) else {
            if input.len() - at > self.limits.inline_len_max {
                return Err(ProtocolError::new(kind.too_big(), at));
            }
            return Ok(None);
        };
        if cr + 1 >= input.len() {
            return Ok(None); // The `\n` has not arrived yet.
        }
        let number = parse_i64(&input[at + 1..cr]);
        let valid = match (kind, number) {
            (HeaderKind::Multibulk, Some(n)) => n <= self.limits.multibulk_len_max as i64,
            (HeaderKind::Bulk, Some(n)) => n >= 0 && n as u64 <= self.limits.bulk_len_max as u64,
            (_, None) => false,
        };
        if !valid {
            return Err(ProtocolError::new(kind.invalid(), at));
        }
        Ok(Some((cr + 2, number.expect("validated"))))
    }

    fn parse_inline(&mut self, input: &[u8]) -> Result<Option<usize>, ProtocolError> {
        let search_end = input.len().min(self.limits.inline_len_max + 1);
        let Some(newline) = find_byte(&input[..search_end], b'\n') else {
            if input.len() > self.limits.inline_len_max {
                return Err(ProtocolError::new(ProtocolErrorKind::InlineTooBig, 0));
            }
            return Ok(None);
        };
        let mut line = &input[..newline];
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        self.inline = true;
        self.inline_scratch.clear();
        split_inline_args(line, &mut self.inline_scratch, &mut self.args)
            .map_err(|offset| ProtocolError::new(ProtocolErrorKind::UnbalancedQuotes, offset))?;
        Ok(Some(newline + 1))
    }
}

#[derive(Debug, Clone, Copy)]
enum HeaderKind {
    Multibulk,
    Bulk,
}

impl HeaderKind {
    fn too_big(self) -> ProtocolErrorKind {
        match self {
            Self::Multibulk => ProtocolErrorKind::MultibulkCountTooBig,
            Self::Bulk => ProtocolErrorKind::BulkCountTooBig,
        }
    }

    fn invalid(self) -> ProtocolErrorKind {
        match self {
            Self::Multibulk => ProtocolErrorKind::InvalidMultibulkLength,
            Self::Bulk => ProtocolErrorKind::InvalidBulkLength,
        }
    }
}

/// Digits a header [`short_header`] reads at most: any such number fits in a u64.
const SHORT_HEADER_DIGITS_MAX: usize = 18;

/// The number of the header line at `at` (its type byte) when the line is 1 to
/// [`SHORT_HEADER_DIGITS_MAX`] decimal digits without a leading zero (or `0` alone) followed
/// by `\r\n`, with the offset after the line; `None` for every other line.
fn short_header(input: &[u8], at: usize) -> Option<(usize, u64)> {
    let digits_start = at + 1;
    let mut number = 0u64;
    let mut index = digits_start;
    loop {
        let byte = *input.get(index)?;
        if !byte.is_ascii_digit() {
            break;
        }
        if index - digits_start == SHORT_HEADER_DIGITS_MAX {
            return None;
        }
        number = number * 10 + u64::from(byte - b'0');
        index += 1;
    }
    let digits_len = index - digits_start;
    if digits_len == 0 || (digits_len > 1 && input[digits_start] == b'0') {
        return None;
    }
    if input.get(index..index + 2)? != b"\r\n" {
        return None;
    }
    Some((index + 2, number))
}

fn find_byte(haystack: &[u8], needle: u8) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

/// Parses a decimal i64 exactly as Redis's `string2ll`: optional `-`, no `+`, no leading zeros,
/// no spaces, at most 20 characters.
pub fn parse_i64(bytes: &[u8]) -> Option<i64> {
    if bytes.is_empty() || bytes.len() > 20 {
        return None;
    }
    if bytes == b"0" {
        return Some(0);
    }
    let (negative, digits) = match bytes[0] {
        b'-' => (true, &bytes[1..]),
        _ => (false, bytes),
    };
    if digits.is_empty() || !(b'1'..=b'9').contains(&digits[0]) {
        return None;
    }
    let mut value: u64 = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        value = value
            .checked_mul(10)?
            .checked_add(u64::from(digit - b'0'))?;
    }
    if negative {
        if value > i64::MAX as u64 + 1 {
            None
        } else {
            Some((value as i64).wrapping_neg())
        }
    } else {
        i64::try_from(value).ok()
    }
}

/// Splits `line` into arguments as Redis's `sdssplitargs` does (quotes and escapes as in an
/// inline request: see [`split_inline_args`]); `None` when its quotes do not balance.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut scratch = Vec::new();
    let mut spans = Vec::new();
    split_inline_args(line, &mut scratch, &mut spans).ok()?;
    Some(
        spans
            .iter()
            .map(|span| scratch[span.start..span.start + span.len].to_vec())
            .collect(),
    )
}

/// Splits an inline line into arguments as Redis's `sdssplitargs` does: spaces separate,
/// double quotes take `\n \r \t \b \a \\ \" \xHH` escapes, single quotes take `\'`, and a
/// closing quote must be followed by a space or the line end. Arguments are unquoted into
/// `scratch`. Returns the offset of the offending quote when quotes do not balance.
fn split_inline_args(
    line: &[u8],
    scratch: &mut Vec<u8>,
    spans: &mut Vec<ArgSpan>,
) -> Result<(), usize> {
    let mut at = 0;
    loop {
        while at < line.len() && is_c_space(line[at]) {
            at += 1;
        }
        // A NUL ends the line, as it ends the C string that Redis splits.
        if at == line.len() || line[at] == 0 {
            return Ok(());
        }
        let start = scratch.len();
        let mut in_double = false;
        let mut in_single = false;
        let quote_at = at;
        loop {
            if in_double {
                if at >= line.len() {
                    return Err(quote_at);
                }
                let byte = line[at];
                if byte == b'\\'
                    && at + 3 < line.len()
                    && line[at + 1] == b'x'
                    && line[at + 2].is_ascii_hexdigit()
                    && line[at + 3].is_ascii_hexdigit()
                {
                    scratch.push(hex_value(line[at + 2]) * 16 + hex_value(line[at + 3]));
                    at += 4;
                } else if byte == b'\\' && at + 1 < line.len() {
                    scratch.push(match line[at + 1] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                    at += 2;
                } else if byte == b'"' {
                    if at + 1 < line.len() && !is_c_space(line[at + 1]) {
                        return Err(at);
                    }
                    at += 1;
                    break;
                } else {
                    scratch.push(byte);
                    at += 1;
                }
            } else if in_single {
                if at >= line.len() {
                    return Err(quote_at);
                }
                let byte = line[at];
                if byte == b'\\' && at + 1 < line.len() && line[at + 1] == b'\'' {
                    scratch.push(b'\'');
                    at += 2;
                } else if byte == b'\'' {
                    if at + 1 < line.len() && !is_c_space(line[at + 1]) {
                        return Err(at);
                    }
                    at += 1;
                    break;
                } else {
                    scratch.push(byte);
                    at += 1;
                }
            } else {
                if at >= line.len() {
                    break;
                }
                match line[at] {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => break,
                    b'"' => in_double = true,
                    b'\'' => in_single = true,
                    other => scratch.push(other),
                }
                at += 1;
            }
        }
        spans.push(ArgSpan {
            start,
            len: scratch.len() - start,
        });
    }
}

/// C's `isspace`: space, `\t`, `\n`, `\v`, `\f`, `\r`.
fn is_c_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parser_gives_back_the_room_of_a_large_request() {
        let mut parser = RequestParser::new(Limits::default());
        let mut request = b"*5001\r\n$4\r\nSADD\r\n".to_vec();
        for i in 0..5000 {
            let member = i.to_string();
            request.extend_from_slice(format!("${}\r\n{member}\r\n", member.len()).as_bytes());
        }
        assert_eq!(parser.parse(&request).unwrap(), Some(request.len()));
        assert_eq!(parser.args(&request).len(), 5001);
        parser.release_large();
        assert!(parser.args.capacity() <= ARGS_KEEP);
        // Not while a request is half read: its spans are still needed.
        let half = &request[..request.len() / 2];
        assert_eq!(parser.parse(half).unwrap(), None);
        let spans = parser.args.len();
        parser.release_large();
        assert_eq!(parser.args.len(), spans);
        assert_eq!(parser.parse(&request).unwrap(), Some(request.len()));
        assert_eq!(parser.args(&request).get(5000), b"4999");
    }

    #[test]
    fn split_args_reads_quotes_as_sdssplitargs() {
        let split = |line: &[u8]| split_args(line).map(|args| strings(&[args]).remove(0));
        assert_eq!(
            split(b"#!lua  name=\"a b\" x='y'"),
            Some(vec!["#!lua".into(), "name=a b".into(), "x=y".into()])
        );
        assert_eq!(split(b"\"\\x41\\n\""), Some(vec!["A\n".into()]));
        assert_eq!(split(b""), Some(vec![]));
        assert_eq!(split(b"name=\"open"), None, "unbalanced quotes");
        assert_eq!(
            split(b"\"a\"b"),
            None,
            "a closing quote must end the argument"
        );
    }

    fn parse_all(input: &[u8]) -> Result<Vec<Vec<Vec<u8>>>, ProtocolError> {
        let mut parser = RequestParser::new(Limits::default());
        let mut requests = Vec::new();
        let mut at = 0;
        while let Some(consumed) = parser.parse(&input[at..])? {
            let args = parser.args(&input[at..]);
            requests.push(args.iter().map(<[u8]>::to_vec).collect());
            at += consumed;
        }
        Ok(requests)
    }

    #[test]
    fn input_ranges_point_into_the_input_and_reset_forgets_a_partial_request() {
        let input = b"*2\r\n$3\r\nGET\r\n$5\r\nkey:1\r\nGET other\r\n*2\r\n$3\r\nGET\r\n$2\r\nk";
        let mut parser = RequestParser::new(Limits::default());
        let first = parser.parse(input).unwrap().unwrap();
        let args = parser.args(input);
        assert_eq!(
            args.input_range(1).map(|range| &input[range]),
            Some(&b"key:1"[..])
        );
        assert_eq!(args.input_range(2), None, "past the last argument");
        // Inline: the arguments are not where they were in the input.
        let second = parser.parse(&input[first..]).unwrap().unwrap();
        let args = parser.args(&input[first..]);
        assert_eq!(args.get(1), b"other");
        assert_eq!(args.input_range(1), None);
        // The third has not fully arrived; after a reset the parser starts a request anywhere.
        let rest = &input[first + second..];
        assert_eq!(parser.parse(rest).unwrap(), None);
        parser.reset();
        assert_eq!(parser.parse(&input[..first]).unwrap(), Some(first));
        assert_eq!(parser.args(input).get(1), b"key:1");
    }

    fn strings(requests: &[Vec<Vec<u8>>]) -> Vec<Vec<String>> {
        requests
            .iter()
            .map(|args| {
                args.iter()
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn multibulk_and_inline_cases() {
        let cases: &[(&str, &[u8], &[&[&str]])] = &[
            ("one", b"*1\r\n$4\r\nPING\r\n", &[&["PING"]]),
            (
                "two",
                b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n",
                &[&["GET", "k"], &["PING"]],
            ),
            (
                "empty bulk",
                b"*2\r\n$4\r\nECHO\r\n$0\r\n\r\n",
                &[&["ECHO", ""]],
            ),
            (
                "zero count ignored",
                b"*0\r\n*1\r\n$4\r\nPING\r\n",
                &[&[], &["PING"]],
            ),
            ("inline", b"SET k v\r\n", &[&["SET", "k", "v"]]),
            ("inline lf only", b"PING\n", &[&["PING"]]),
            (
                "inline quotes",
                b"SET \"a b\" 'c d'\r\n",
                &[&["SET", "a b", "c d"]],
            ),
            (
                "inline escapes",
                b"ECHO \"\\x41\\n\"\r\n",
                &[&["ECHO", "A\n"]],
            ),
            ("blank line", b"\r\n", &[&[]]),
        ];
        for (name, input, expected) in cases {
            let got = parse_all(input).unwrap_or_else(|e| panic!("{name}: {e}"));
            let want: Vec<Vec<String>> = expected
                .iter()
                .map(|r| r.iter().map(|s| s.to_string()).collect())
                .collect();
            assert_eq!(strings(&got), want, "case {name}");
        }
    }

    #[test]
    fn error_cases() {
        let cases: &[(&str, &[u8], ProtocolErrorKind, usize)] = &[
            (
                "bad count",
                b"*x\r\n",
                ProtocolErrorKind::InvalidMultibulkLength,
                0,
            ),
            (
                "huge count",
                b"*99999999999\r\n",
                ProtocolErrorKind::InvalidMultibulkLength,
                0,
            ),
            (
                "negative bulk",
                b"*1\r\n$-1\r\n",
                ProtocolErrorKind::InvalidBulkLength,
                4,
            ),
            (
                "huge bulk",
                b"*1\r\n$999999999999\r\n",
                ProtocolErrorKind::InvalidBulkLength,
                4,
            ),
            (
                "not a bulk",
                b"*1\r\n+OK\r\n",
                ProtocolErrorKind::ExpectedBulk { found: b'+' },
                4,
            ),
            (
                "leading zero",
                b"*01\r\n",
                ProtocolErrorKind::InvalidMultibulkLength,
                0,
            ),
            (
                "unbalanced",
                b"SET \"a b\r\n",
                ProtocolErrorKind::UnbalancedQuotes,
                4,
            ),
            (
                "quote glued",
                b"SET \"a\"b\r\n",
                ProtocolErrorKind::UnbalancedQuotes,
                6,
            ),
        ];
        for (name, input, kind, offset) in cases {
            let error = parse_all(input).expect_err(name);
            assert_eq!(error.kind(), *kind, "case {name}");
            assert_eq!(error.offset(), *offset, "case {name}");
        }
    }

    #[test]
    fn redis_messages() {
        let error = ProtocolError::new(ProtocolErrorKind::ExpectedBulk { found: b'x' }, 0);
        assert_eq!(
            error.redis_message(),
            "ERR Protocol error: expected '$', got 'x'"
        );
    }

    #[test]
    fn limits_refuse_before_allocating() {
        let mut parser = RequestParser::new(Limits::default());
        let line = vec![b'a'; 1024 * 1024];
        let error = parser.parse(&line).unwrap_err();
        assert_eq!(error.kind(), ProtocolErrorKind::InlineTooBig);
        let mut header = b"*1\r\n$".to_vec();
        header.extend(std::iter::repeat_n(b'1', 70_000));
        let error = RequestParser::new(Limits::default())
            .parse(&header)
            .unwrap_err();
        assert_eq!(error.kind(), ProtocolErrorKind::BulkCountTooBig);
        // A huge announced count allocates nothing until arguments arrive.
        let mut parser = RequestParser::new(Limits::default());
        assert_eq!(parser.parse(b"*2147483647\r\n").unwrap(), None);
        assert!(parser.args.capacity() < 64);
    }

    #[test]
    fn split_anywhere() {
        let input = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n";
        for split in 0..input.len() {
            let mut parser = RequestParser::new(Limits::default());
            assert_eq!(
                parser.parse(&input[..split]).unwrap(),
                None,
                "split {split}"
            );
            assert_eq!(
                parser.parse(input).unwrap(),
                Some(input.len()),
                "split {split}"
            );
            let args: Vec<&[u8]> = parser.args(input).iter().collect();
            assert_eq!(args, vec![&b"SET"[..], b"key", b"value"]);
        }
    }

    #[test]
    fn parse_i64_matches_string2ll() {
        let cases: &[(&str, Option<i64>)] = &[
            ("0", Some(0)),
            ("-1", Some(-1)),
            ("9223372036854775807", Some(i64::MAX)),
            ("-9223372036854775808", Some(i64::MIN)),
            ("9223372036854775808", None),
            ("+1", None),
            ("01", None),
            ("-0", None),
            ("", None),
            (" 1", None),
            ("1a", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_i64(text.as_bytes()), *expected, "{text:?}");
        }
    }

    /// The general reading of a header line at 0: the offset after it and its number, when
    /// its `\r` has arrived with one byte after it.
    fn general_header(input: &[u8]) -> Option<(usize, Option<i64>)> {
        let cr = 1 + input[1..].iter().position(|&byte| byte == b'\r')?;
        (cr + 1 < input.len()).then(|| (cr + 2, parse_i64(&input[1..cr])))
    }

    #[test]
    fn short_headers_read_as_the_general_path_does() {
        for (line, expected) in [
            (&b"*1\r\n"[..], Some((4, 1))),
            (b"$16\r\nkey", Some((5, 16))),
            (b"$0\r\n", Some((4, 0))),
            (
                b"$999999999999999999\r\n",
                Some((21, 999_999_999_999_999_999)),
            ),
            (b"$1000000000000000000\r\n", None), // 19 digits: the general path
            (b"$01\r\n", None),
            (b"$-1\r\n", None),
            (b"$+1\r\n", None),
            (b"$1\r", None),
            (b"$1\rx", None),
            (b"$1 \r\n", None),
            (b"$\r\n", None),
            (b"$", None),
        ] {
            assert_eq!(
                short_header(line, 0),
                expected,
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
        // Random lines over the bytes that matter: whenever the short reading answers, the
        // general one gives the same line end and number.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |elapsed| elapsed.as_nanos() as u64 | 1);
        let mut state = seed;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet = b"0123456789-+\r\n x";
        for _ in 0..200_000 {
            let len = 1 + (next() % 24) as usize;
            let mut line = vec![b'$'];
            line.extend((0..len).map(|_| {
                let pick = next() % 4;
                if pick < 3 {
                    b'0' + (next() % 10) as u8
                } else {
                    alphabet[(next() % alphabet.len() as u64) as usize]
                }
            }));
            if let Some((end, number)) = short_header(&line, 0) {
                assert_eq!(
                    general_header(&line),
                    Some((end, Some(number as i64))),
                    "seed {seed}: {:?}",
                    String::from_utf8_lossy(&line)
                );
            }
        }
    }
}
