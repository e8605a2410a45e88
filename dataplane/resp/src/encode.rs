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

/// The decimal digits of `value` (no RESP framing): an integer argument as text.
pub fn integer_text(out: &mut Vec<u8>, value: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
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

/// `$len\r\nheadtail\r\n`: a bulk string whose bytes are held in two pieces (a list element
/// stored against a shared prefix), written without joining them first.
pub fn bulk_parts(out: &mut Vec<u8>, head: &[u8], tail: &[u8]) {
    header(out, b'$', head.len() + tail.len());
    out.extend_from_slice(head);
    out.extend_from_slice(tail);
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

/// A big number (RESP3's `(`; a bulk string in RESP2), its digits as given.
pub fn big_number(out: &mut Vec<u8>, digits: &[u8], protocol: Protocol) {
    match protocol {
        Protocol::Resp2 => bulk(out, digits),
        Protocol::Resp3 => {
            out.push(b'(');
            out.extend_from_slice(digits);
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

/// Formats a double the way Redis 7.2 replies with one (its `fpconv_dtoa`): the shortest digits
/// that read back to the same value, written as an integer when at most 7 zeros follow them, as
/// a plain decimal when the point falls within or just around them, and otherwise in exponent
/// form without padding (`1e+20`, `1.5e-7`). Zero keeps its sign (`-0`).
pub fn format_double(value: f64) -> String {
    if value.is_nan() {
        return "nan".into();
    }
    let sign = if value.is_sign_negative() { "-" } else { "" };
    if value.is_infinite() {
        return format!("{sign}inf");
    }
    if value == 0.0 {
        return format!("{sign}0");
    }
    // Rust's `{:e}` gives the shortest round-tripping digits: "d.ddde<exponent>".
    let scientific = format!("{:e}", value.abs());
    let (mantissa, exponent) = scientific
        .split_once('e')
        .expect("LowerExp always writes an exponent");
    let exponent: i32 = exponent
        .parse()
        .expect("LowerExp writes a decimal exponent");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let digit_count = digits.len() as i32;
    // The value is digits * 10^shift.
    let shift = exponent - (digit_count - 1);
    let exponent_abs = exponent.abs();
    let body = if shift >= 0 && exponent_abs < digit_count + 7 {
        format!("{digits}{}", "0".repeat(shift as usize))
    } else if shift < 0 && (shift > -7 || exponent_abs < 4) {
        let point = digit_count + shift;
        if point <= 0 {
            format!("0.{}{digits}", "0".repeat((-point) as usize))
        } else {
            let (whole, fraction) = digits.split_at(point as usize);
            format!("{whole}.{fraction}")
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let exponent_sign = if exponent < 0 { '-' } else { '+' };
        if rest.is_empty() {
            format!("{first}e{exponent_sign}{exponent_abs}")
        } else {
            format!("{first}.{rest}e{exponent_sign}{exponent_abs}")
        }
    };
    format!("{sign}{body}")
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
            (
                "bulk in parts",
                |o| bulk_parts(o, b"member:", b"42"),
                b"$9\r\nmember:42\r\n",
            ),
            (
                "bulk in one part",
                |o| bulk_parts(o, b"", b"hi"),
                b"$2\r\nhi\r\n",
            ),
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
        // What Redis 7.2 replies for ZSCORE of each (fpconv_dtoa's layout rules).
        let cases: &[(f64, &str)] = &[
            (3.0, "3"),
            (10.5, "10.5"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (5.0e3, "5000"),
            (0.0, "0"),
            (-0.0, "-0"),
            (1.1, "1.1"),
            (-2.5, "-2.5"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e7, "10000000"),
            (1.5e7, "15000000"),
            (1e8, "1e+8"),
            (123456789.0, "123456789"),
            (1.5e10, "1.5e+10"),
            (12345678000.0, "12345678000"),
            (1e21, "1e+21"),
            (1e300, "1e+300"),
            (1e-6, "0.000001"),
            (1e-7, "1e-7"),
            (1.5e-7, "1.5e-7"),
            (0.00123, "0.00123"),
            (123.456, "123.456"),
            // 17 digits with the point 5 in: exponent form (fpconv_dtoa's rule, not %.17g's).
            (12345.678901234567, "1.2345678901234567e+4"),
            (123.45678901234568, "123.45678901234568"),
            (1.2345678e-5, "1.2345678e-5"),
            (f64::MAX, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
        ];
        for (value, expected) in cases {
            assert_eq!(format_double(*value), *expected, "{value:?}");
        }
    }
}
