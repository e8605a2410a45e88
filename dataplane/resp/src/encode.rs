//! Reply encoding into a connection's output buffer, for RESP2 and RESP3.
//!
//! Each function appends one frame (or a header) to `out`; types RESP2 lacks are written as
//! RESP2 writes them (maps as flat arrays, doubles as bulk strings, booleans as integers).

/// The protocol a connection speaks, chosen by `HELLO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// RESP2, every connection's protocol until `HELLO 3`.
    #[default]
    Resp2,
    /// RESP3.
    Resp3,
}

impl Protocol {
    /// The protocol's number as HELLO reports it.
    pub fn version(self) -> i64 {
        match self {
            Self::Resp2 => 2,
            Self::Resp3 => 3,
        }
    }
}

/// `+text\r\n`. `text` must not contain `\r` or `\n`.
pub fn simple(out: &mut Vec<u8>, text: &[u8]) {
    out.push(b'+');
    out.extend_from_slice(text);
    out.extend_from_slice(b"\r\n");
}

/// `+OK\r\n`.
pub fn ok(out: &mut Vec<u8>) {
    out.extend_from_slice(b"+OK\r\n");
}

/// `-message\r\n`; line ends inside `message` become spaces, as Redis does.
pub fn error(out: &mut Vec<u8>, message: &str) {
    out.push(b'-');
    out.extend(
        message
            .bytes()
            .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
    out.extend_from_slice(b"\r\n");
}

/// `:n\r\n`.
pub fn integer(out: &mut Vec<u8>, value: i64) {
    out.push(b':');
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn header(out: &mut Vec<u8>, type_byte: u8, len: usize) {
    out.push(type_byte);
    out.extend_from_slice(itoa::Buffer::new().format(len).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// `$len\r\nbytes\r\n`.
pub fn bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    header(out, b'$', bytes.len());
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

/// An integer as a bulk string (a string value stored as an integer).
pub fn bulk_integer(out: &mut Vec<u8>, value: i64) {
    let mut buffer = itoa::Buffer::new();
    bulk(out, buffer.format(value).as_bytes());
}

/// The null bulk string: `$-1` in RESP2, `_` in RESP3.
pub fn null(out: &mut Vec<u8>, protocol: Protocol) {
    match protocol {
        Protocol::Resp2 => out.extend_from_slice(b"$-1\r\n"),
        Protocol::Resp3 => out.extend_from_slice(b"_\r\n"),
    }
}

/// The null array: `*-1` in RESP2, `_` in RESP3.
pub fn null_array(out: &mut Vec<u8>, protocol: Protocol) {
    match protocol {
        Protocol::Resp2 => out.extend_from_slice(b"*-1\r\n"),
        Protocol::Resp3 => out.extend_from_slice(b"_\r\n"),
    }
}

/// An array header for `len` elements that follow.
pub fn array_len(out: &mut Vec<u8>, len: usize) {
    header(out, b'*', len);
}

/// A map header for `len` key-value pairs that follow (RESP2: an array of `2 * len`).
pub fn map_len(out: &mut Vec<u8>, len: usize, protocol: Protocol) {
    match protocol {
        Protocol::Resp2 => header(out, b'*', len * 2),
        Protocol::Resp3 => header(out, b'%', len),
    }
}

/// A set header for `len` elements that follow (RESP2: an array).
pub fn set_len(out: &mut Vec<u8>, len: usize, protocol: Protocol) {
    match protocol {
        Protocol::Resp2 => header(out, b'*', len),
        Protocol::Resp3 => header(out, b'~', len),
    }
}

/// A push header (RESP3 out-of-band data; RESP2: an array).
pub fn push_len(out: &mut Vec<u8>, len: usize, protocol: Protocol) {
    match protocol {
        Protocol::Resp2 => header(out, b'*', len),
        Protocol::Resp3 => header(out, b'>', len),
    }
}

/// A double: `,value` in RESP3, a bulk string in RESP2, formatted as Redis formats doubles
/// (`%.17g` shortest round trip, `inf`, `-inf`).
pub fn double(out: &mut Vec<u8>, value: f64, protocol: Protocol) {
    let text = format_double(value);
    match protocol {
        Protocol::Resp2 => bulk(out, text.as_bytes()),
        Protocol::Resp3 => {
            out.push(b',');
            out.extend_from_slice(text.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// A boolean: `#t`/`#f` in RESP3, `:1`/`:0` in RESP2.
pub fn boolean(out: &mut Vec<u8>, value: bool, protocol: Protocol) {
    match protocol {
        Protocol::Resp2 => integer(out, i64::from(value)),
        Protocol::Resp3 => out.extend_from_slice(if value { b"#t\r\n" } else { b"#f\r\n" }),
    }
}

/// Verbatim text (`=len\r\ntxt:...`) in RESP3, a bulk string in RESP2.
pub fn verbatim(out: &mut Vec<u8>, text: &[u8], protocol: Protocol) {
    match protocol {
        Protocol::Resp2 => bulk(out, text),
        Protocol::Resp3 => {
            header(out, b'=', text.len() + 4);
            out.extend_from_slice(b"txt:");
            out.extend_from_slice(text);
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// A request as clients send it: an array of bulk strings.
pub fn command<'a>(out: &mut Vec<u8>, args: impl ExactSizeIterator<Item = &'a [u8]>) {
    array_len(out, args.len());
    for arg in args {
        bulk(out, arg);
    }
}

/// Formats a double the way Redis replies with one: integers without a fraction when exact
/// and small, otherwise the shortest text that reads back to the same value.
pub fn format_double(value: f64) -> String {
    if value.is_infinite() {
        return if value > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    if value.is_nan() {
        return "nan".into();
    }
    let text = format!("{value}");
    // Rust prints 1e21 as "1000000000000000000000"; Redis (%.17g) switches to exponent form.
    if value.abs() >= 1e17 && !text.contains('e') {
        return format!("{value:e}").replace("e", "e+");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames() {
        let cases: &[(&str, fn(&mut Vec<u8>), &[u8])] = &[
            ("simple", |o| simple(o, b"PONG"), b"+PONG\r\n"),
            ("error", |o| error(o, "ERR x\ny"), b"-ERR x y\r\n"),
            ("integer", |o| integer(o, -42), b":-42\r\n"),
            ("bulk", |o| bulk(o, b"hi"), b"$2\r\nhi\r\n"),
            ("null2", |o| null(o, Protocol::Resp2), b"$-1\r\n"),
            ("null3", |o| null(o, Protocol::Resp3), b"_\r\n"),
            ("map2", |o| map_len(o, 2, Protocol::Resp2), b"*4\r\n"),
            ("map3", |o| map_len(o, 2, Protocol::Resp3), b"%2\r\n"),
            (
                "double2",
                |o| double(o, 1.5, Protocol::Resp2),
                b"$3\r\n1.5\r\n",
            ),
            ("double3", |o| double(o, 1.5, Protocol::Resp3), b",1.5\r\n"),
            ("bool2", |o| boolean(o, true, Protocol::Resp2), b":1\r\n"),
            (
                "verbatim3",
                |o| verbatim(o, b"ab", Protocol::Resp3),
                b"=6\r\ntxt:ab\r\n",
            ),
        ];
        for (name, write, expected) in cases {
            let mut out = Vec::new();
            write(&mut out);
            assert_eq!(out, *expected, "case {name}");
        }
    }

    #[test]
    fn doubles() {
        assert_eq!(format_double(3.0), "3");
        assert_eq!(format_double(10.5), "10.5");
        assert_eq!(format_double(f64::INFINITY), "inf");
        assert_eq!(format_double(5.0e3), "5000");
    }
}
