//! `ember_store::glob::glob_match` against a reference matcher written from Redis's rules.
//!
//! Input: byte 0 says where the pattern ends (a fraction of the rest), then pattern and text.
//! The reference compiles the pattern into tokens (as Redis's `stringmatchlen` reads it) and
//! matches by dynamic programming over (token, text position): quadratic, no recursion, nothing
//! shared with the matcher under test. Checked: no panic, and the same verdict.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// The matcher under test gives up (no match) past this many nested `*`; the reference has no
/// such bound, so patterns with more stars are checked for panics only.
const STARS_COMPARED_MAX: usize = 1000;

#[derive(Debug)]
enum Token {
    /// `*`: any run of bytes.
    Star,
    /// `?`: any one byte.
    Any,
    /// `[...]`: one byte in (or, negated, not in) the ranges.
    Class {
        negated: bool,
        ranges: Vec<(u8, u8)>,
    },
    /// Any other byte, or one escaped with `\`.
    Literal(u8),
}

/// Reads the pattern as Redis's `stringmatchlen` does: `\x` is a literal x (a `\` at the end is
/// itself); in a class `\x` is x, `a-z` a range in either order, and the pattern's end closes an
/// unterminated class.
fn compile(pattern: &[u8]) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut at = 0;
    while at < pattern.len() {
        let token = match pattern[at] {
            b'*' => Token::Star,
            b'?' => Token::Any,
            b'\\' if at + 1 < pattern.len() => {
                at += 1;
                Token::Literal(pattern[at])
            }
            b'[' => {
                at += 1;
                let negated = pattern.get(at) == Some(&b'^');
                if negated {
                    at += 1;
                }
                let mut ranges = Vec::new();
                while at < pattern.len() && pattern[at] != b']' {
                    if pattern[at] == b'\\' && at + 1 < pattern.len() {
                        ranges.push((pattern[at + 1], pattern[at + 1]));
                        at += 2;
                    } else if at + 2 < pattern.len() && pattern[at + 1] == b'-' {
                        let (a, b) = (pattern[at], pattern[at + 2]);
                        ranges.push((a.min(b), a.max(b)));
                        at += 3;
                    } else {
                        ranges.push((pattern[at], pattern[at]));
                        at += 1;
                    }
                }
                // `at` is on the `]` (skipped below) or past the end.
                Token::Class { negated, ranges }
            }
            byte => Token::Literal(byte),
        };
        tokens.push(token);
        at += 1;
    }
    tokens
}

fn token_matches(token: &Token, byte: u8) -> bool {
    match token {
        Token::Star => unreachable!("stars are handled by the caller"),
        Token::Any => true,
        Token::Literal(expected) => *expected == byte,
        Token::Class { negated, ranges } => {
            ranges
                .iter()
                .any(|&(low, high)| (low..=high).contains(&byte))
                != *negated
        }
    }
}

fn reference_match(pattern: &[u8], text: &[u8]) -> bool {
    // KEYS and SCAN read a lone `*` as everything, the empty key included. Otherwise an empty
    // text matches only the empty pattern: Redis's loop never looks at a pattern when the text
    // is empty from the start (so `**` does not match "").
    if pattern == b"*" {
        return true;
    }
    if text.is_empty() {
        return pattern.is_empty();
    }
    let tokens = compile(pattern);
    // matched[j]: tokens[..i] match text[..j]; rolled over i.
    let mut matched = vec![false; text.len() + 1];
    matched[0] = true;
    for token in &tokens {
        let mut next = vec![false; text.len() + 1];
        match token {
            Token::Star => {
                let mut any = false;
                for j in 0..=text.len() {
                    any |= matched[j];
                    next[j] = any;
                }
            }
            _ => {
                for j in 1..=text.len() {
                    next[j] = matched[j - 1] && token_matches(token, text[j - 1]);
                }
            }
        }
        matched = next;
    }
    matched[text.len()]
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let pattern_len = rest.len() * usize::from(split) / 255;
    let (pattern, text) = rest.split_at(pattern_len);
    let verdict = ember_store::glob::glob_match(pattern, text);
    let star_count = pattern.iter().filter(|&&b| b == b'*').count();
    if star_count <= STARS_COMPARED_MAX {
        assert_eq!(
            verdict,
            reference_match(pattern, text),
            "pattern {:?} text {:?}",
            String::from_utf8_lossy(pattern),
            String::from_utf8_lossy(text)
        );
    }
});
