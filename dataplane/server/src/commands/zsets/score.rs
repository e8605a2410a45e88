//! Parsing scores and range bounds as Redis does, which is C's `strtod` with Redis's checks
//! around it: ZADD's scores (`string2d`) refuse white space, overflow and underflow; score range
//! bounds (`zslParseRange`) take whatever `strtod` takes, leading white space and an empty string
//! included; lexicographic bounds are `-`, `+`, `[member` or `(member`.

use ember_store::zset::{LexBound, ScoreBound};

use crate::commands::{errors, CommandError};

/// ZRANGE BYSCORE and ZCOUNT's error for a bound that does not parse.
pub const NOT_FLOAT_RANGE: &str = "ERR min or max is not a float";
/// ZRANGE BYLEX's error for a bound that does not parse.
pub const NOT_LEX_RANGE: &str = "ERR min or max not valid string range item";

/// What C's `strtod` makes of a whole argument.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Parsed {
    /// A number that used every byte; `range_error` when it overflowed to infinity or underflowed
    /// to zero (`errno == ERANGE` with those results).
    Number { value: f64, range_error: bool },
    /// Nothing parsed, or bytes left over.
    Invalid,
}

/// C's `isspace` in the C locale.
fn is_c_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// `strtod` over all of `text` (leading white space skipped, as `strtod` does).
fn strtod_whole(text: &[u8]) -> Parsed {
    let start = text
        .iter()
        .position(|&b| !is_c_space(b))
        .unwrap_or(text.len());
    let text = &text[start..];
    let (negative, unsigned) = match text.first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let magnitude = if unsigned.len() > 2 && unsigned[0] == b'0' && unsigned[1] | 0x20 == b'x' {
        parse_hex(&unsigned[2..])
    } else {
        parse_decimal(unsigned)
    };
    match magnitude {
        Parsed::Number { value, range_error } => Parsed::Number {
            value: if negative { -value } else { value },
            range_error,
        },
        Parsed::Invalid => Parsed::Invalid,
    }
}

/// Digits, an optional fraction and exponent, or `inf`, `infinity`, `nan`, any case.
fn parse_decimal(text: &[u8]) -> Parsed {
    let lower = text.to_ascii_lowercase();
    if matches!(lower.as_slice(), b"inf" | b"infinity") {
        return Parsed::Number {
            value: f64::INFINITY,
            range_error: false,
        };
    }
    if lower == b"nan" {
        return Parsed::Number {
            value: f64::NAN,
            range_error: false,
        };
    }
    // The grammar strtod accepts, checked here because Rust's parser also takes forms C's does
    // not ("infinity" aside, which is handled above) and the two must agree on what is whole.
    let mut at = 0;
    let digits = |at: &mut usize| {
        let begin = *at;
        while text.get(*at).is_some_and(u8::is_ascii_digit) {
            *at += 1;
        }
        *at - begin
    };
    let mut mantissa_digits = digits(&mut at);
    if text.get(at) == Some(&b'.') {
        at += 1;
        mantissa_digits += digits(&mut at);
    }
    if mantissa_digits == 0 {
        return Parsed::Invalid;
    }
    let mantissa_end = at;
    if matches!(text.get(at), Some(b'e' | b'E')) {
        let mut exponent_at = at + 1;
        if matches!(text.get(exponent_at), Some(b'+' | b'-')) {
            exponent_at += 1;
        }
        if digits(&mut exponent_at) > 0 {
            at = exponent_at;
        }
    }
    if at != text.len() {
        return Parsed::Invalid;
    }
    let Some(value) = std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse::<f64>().ok())
    else {
        return Parsed::Invalid;
    };
    let nonzero_mantissa = text[..mantissa_end]
        .iter()
        .any(|b| (b'1'..=b'9').contains(b));
    Parsed::Number {
        value,
        range_error: value.is_infinite() || value == 0.0 && nonzero_mantissa,
    }
}

/// A hexadecimal float after its `0x`: hex digits, an optional fraction, an optional binary
/// exponent (`p`). The mantissa is summed in f64, exact up to 13 hex digits.
fn parse_hex(text: &[u8]) -> Parsed {
    let mut value = 0.0f64;
    let mut scale = 0i64;
    let mut digit_count = 0;
    let mut at = 0;
    let mut in_fraction = false;
    while let Some(&byte) = text.get(at) {
        if byte == b'.' && !in_fraction {
            in_fraction = true;
        } else if let Some(digit) = (byte as char).to_digit(16) {
            value = value * 16.0 + f64::from(digit);
            digit_count += 1;
            if in_fraction {
                scale -= 4;
            }
        } else {
            break;
        }
        at += 1;
    }
    if digit_count == 0 {
        return Parsed::Invalid;
    }
    if matches!(text.get(at), Some(b'p' | b'P')) {
        let exponent_text = &text[at + 1..];
        let exponent = std::str::from_utf8(exponent_text)
            .ok()
            .and_then(|t| t.parse::<i64>().ok());
        match exponent {
            Some(exponent) => {
                scale = scale.saturating_add(exponent);
                at = text.len();
            }
            None => return Parsed::Invalid,
        }
    }
    if at != text.len() {
        return Parsed::Invalid;
    }
    let scaled = value * 2f64.powi(scale.clamp(-2000, 2000) as i32);
    Parsed::Number {
        value: scaled,
        range_error: scaled.is_infinite() || scaled == 0.0 && value != 0.0,
    }
}

/// A score argument (ZADD, ZINCRBY), as Redis's `string2d`: the whole argument one number, no
/// white space before it, no NaN, no overflow or underflow.
///
/// # Errors
/// [`errors::NOT_FLOAT`].
pub fn parse_score(arg: &[u8]) -> Result<f64, CommandError> {
    if arg.first().is_none_or(|&b| is_c_space(b)) {
        return Err(errors::NOT_FLOAT.into());
    }
    match strtod_whole(arg) {
        Parsed::Number {
            value,
            range_error: false,
        } if !value.is_nan() => Ok(value),
        _ => Err(errors::NOT_FLOAT.into()),
    }
}

/// One end of a score range: `(` makes it exclusive; the rest is what `strtod` reads up to the
/// first NUL byte, where an empty rest reads as 0, as in Redis.
pub fn parse_score_bound(arg: &[u8]) -> Option<ScoreBound> {
    let (text, exclusive) = match arg.first() {
        Some(b'(') => (&arg[1..], true),
        _ => (arg, false),
    };
    // Redis checks that strtod stopped at a NUL byte: the end of the argument, or one inside it.
    let text = &text[..text.iter().position(|&b| b == 0).unwrap_or(text.len())];
    let value = if text.is_empty() {
        0.0
    } else {
        match strtod_whole(text) {
            Parsed::Number { value, .. } if !value.is_nan() => value,
            _ => return None,
        }
    };
    Some(ScoreBound { value, exclusive })
}

/// One end of a lexicographic range: `-`, `+`, `[member` or `(member`.
pub fn parse_lex_bound(arg: &[u8]) -> Option<LexBound> {
    match arg {
        [b'-'] => Some(LexBound::Min),
        [b'+'] => Some(LexBound::Max),
        [b'[', member @ ..] => Some(LexBound::Inclusive(member.to_vec())),
        [b'(', member @ ..] => Some(LexBound::Exclusive(member.to_vec())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores() {
        let cases: &[(&str, Option<f64>)] = &[
            ("1", Some(1.0)),
            ("-1.5", Some(-1.5)),
            ("+2", Some(2.0)),
            (".5", Some(0.5)),
            ("5.", Some(5.0)),
            ("1e3", Some(1000.0)),
            ("1E-2", Some(0.01)),
            ("inf", Some(f64::INFINITY)),
            ("-Infinity", Some(f64::NEG_INFINITY)),
            ("+inf", Some(f64::INFINITY)),
            ("0x10", Some(16.0)),
            ("0x1p-2", Some(0.25)),
            ("-0X1.8", Some(-1.5)),
            ("1e-310", Some(1e-310)),
            ("0e500", Some(0.0)),
            ("nan", None),
            ("-nan", None),
            ("", None),
            (" 1", None),
            ("1 ", None),
            ("1e400", None),
            ("1e-400", None),
            ("abc", None),
            ("1e", None),
            (".", None),
            ("-", None),
            ("0x", None),
            ("1.2.3", None),
            ("infinit", None),
            ("1\0", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_score(text.as_bytes()).ok(), *expected, "{text:?}");
        }
    }

    #[test]
    fn score_bounds() {
        let bound = |value, exclusive| Some(ScoreBound { value, exclusive });
        let cases: &[(&str, Option<ScoreBound>)] = &[
            ("1", bound(1.0, false)),
            ("(1", bound(1.0, true)),
            ("-inf", bound(f64::NEG_INFINITY, false)),
            ("(+inf", bound(f64::INFINITY, true)),
            ("", bound(0.0, false)),
            ("(", bound(0.0, true)),
            (" 1", bound(1.0, false)),
            ("1e400", bound(f64::INFINITY, false)),
            ("2\0junk", bound(2.0, false)),
            ("1 ", None),
            (" ", None),
            ("((1", None),
            ("[1", None),
            ("nan", None),
            ("x", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_score_bound(text.as_bytes()), *expected, "{text:?}");
        }
    }

    #[test]
    fn lex_bounds() {
        assert_eq!(parse_lex_bound(b"-"), Some(LexBound::Min));
        assert_eq!(parse_lex_bound(b"+"), Some(LexBound::Max));
        assert_eq!(
            parse_lex_bound(b"[a"),
            Some(LexBound::Inclusive(b"a".to_vec()))
        );
        assert_eq!(parse_lex_bound(b"("), Some(LexBound::Exclusive(Vec::new())));
        for invalid in [&b""[..], b"a", b"-a", b"++"] {
            assert_eq!(parse_lex_bound(invalid), None, "{invalid:?}");
        }
    }
}
