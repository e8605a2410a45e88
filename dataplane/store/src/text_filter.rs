//! Text filter: an Aho-Corasick matcher compiled to a DFA over byte classes.
//!
//! The filter holds a set of byte patterns and reports, for a text, where the first pattern
//! occurrence ends and at how many positions some pattern ends. It is built as the classic
//! Aho-Corasick automaton (Aho and Corasick, "Efficient string matching", 1975) and then made
//! deterministic: every state has a next state for every byte class, so scanning is one table
//! lookup a byte. Bytes that occur in no pattern share class 0. That table is exactly what the
//! FPGA `ac_match` module holds in block RAM, and this file is the reference it is checked
//! against bit for bit.
//!
//! ```
//! use ember_store::text_filter::TextFilter;
//! let filter = TextFilter::new(&[b"he".as_slice(), b"she", b"his", b"hers"]).unwrap();
//! let scan = filter.scan(b"ushers");
//! assert_eq!(scan.first_match_end, Some(3)); // "she" ends at byte 3
//! assert_eq!(scan.match_end_count, 2);       // "she"/"he" at 3, "hers" at 5
//! ```

use std::collections::VecDeque;
use std::fmt;

/// Most patterns a filter holds: bounds build time and memory (a filter is built from
/// configuration, not from request data).
pub const PATTERN_COUNT_MAX: usize = 4096;

/// Longest pattern, in bytes.
pub const PATTERN_LEN_MAX: usize = 1024;

/// Most DFA states: keeps the table (states x classes x 4 bytes) under 64 MiB.
pub const STATE_COUNT_MAX: usize = 65_536;

/// The root state, where every scan starts.
pub const ROOT_STATE: u32 = 0;

/// Why a filter could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextFilterError {
    kind: TextFilterErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum TextFilterErrorKind {
    TooManyPatterns(usize),
    EmptyPattern(usize),
    PatternTooLong { index: usize, len: usize },
    TooManyStates,
}

impl fmt::Display for TextFilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            TextFilterErrorKind::TooManyPatterns(count) => {
                write!(f, "{count} patterns, more than {PATTERN_COUNT_MAX}")
            }
            TextFilterErrorKind::EmptyPattern(index) => write!(f, "pattern {index} is empty"),
            TextFilterErrorKind::PatternTooLong { index, len } => {
                write!(
                    f,
                    "pattern {index} has {len} bytes, more than {PATTERN_LEN_MAX}"
                )
            }
            TextFilterErrorKind::TooManyStates => {
                write!(f, "the patterns need more than {STATE_COUNT_MAX} states")
            }
        }
    }
}

impl std::error::Error for TextFilterError {}

/// What a scan found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScanResult {
    /// Index of the byte where the first pattern occurrence ends, if any.
    pub first_match_end: Option<u32>,
    /// Number of byte positions at which at least one pattern ends.
    pub match_end_count: u32,
}

/// A compiled set of patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextFilter {
    byte_classes: [u8; 256],
    class_count: usize,
    /// `transitions[state * class_count + class]` is the next state.
    transitions: Vec<u32>,
    /// Whether some pattern ends on entering the state.
    accepting: Vec<bool>,
}

impl TextFilter {
    /// Compiles `patterns`.
    ///
    /// # Errors
    /// When there are more than [`PATTERN_COUNT_MAX`] patterns, a pattern is empty or longer
    /// than [`PATTERN_LEN_MAX`], or the automaton needs more than [`STATE_COUNT_MAX`] states.
    pub fn new(patterns: &[&[u8]]) -> Result<Self, TextFilterError> {
        check_patterns(patterns)?;
        let (byte_classes, class_count) = byte_classes(patterns);
        let trie = Trie::build(patterns, &byte_classes, class_count)?;
        Ok(trie.into_dfa(byte_classes, class_count))
    }

    /// Scans `text` from the root state.
    pub fn scan(&self, text: &[u8]) -> ScanResult {
        let mut state = ROOT_STATE;
        let mut result = ScanResult::default();
        for (index, &byte) in text.iter().enumerate() {
            state = self.next_state(state, self.byte_class(byte));
            if self.accepting[state as usize] {
                result.first_match_end.get_or_insert(index as u32);
                result.match_end_count += 1;
            }
        }
        result
    }

    /// Whether some pattern occurs in `text`.
    pub fn is_match(&self, text: &[u8]) -> bool {
        self.scan(text).first_match_end.is_some()
    }

    /// The class of `byte`: 0 for bytes in no pattern, else `1..class_count`.
    pub fn byte_class(&self, byte: u8) -> u8 {
        self.byte_classes[usize::from(byte)]
    }

    /// Number of byte classes, class 0 included.
    pub fn class_count(&self) -> usize {
        self.class_count
    }

    /// Number of DFA states.
    pub fn state_count(&self) -> usize {
        self.accepting.len()
    }

    /// The state after `state` reads a byte of class `class`.
    ///
    /// # Panics
    /// When `state` or `class` is out of range (a caller bug).
    pub fn next_state(&self, state: u32, class: u8) -> u32 {
        assert!(
            (class as usize) < self.class_count,
            "class {class} out of range"
        );
        self.transitions[state as usize * self.class_count + usize::from(class)]
    }

    /// Whether some pattern ends on entering `state`.
    ///
    /// # Panics
    /// When `state` is out of range (a caller bug).
    pub fn is_accepting(&self, state: u32) -> bool {
        self.accepting[state as usize]
    }
}

fn check_patterns(patterns: &[&[u8]]) -> Result<(), TextFilterError> {
    if patterns.len() > PATTERN_COUNT_MAX {
        return Err(TextFilterError {
            kind: TextFilterErrorKind::TooManyPatterns(patterns.len()),
        });
    }
    for (index, pattern) in patterns.iter().enumerate() {
        if pattern.is_empty() {
            return Err(TextFilterError {
                kind: TextFilterErrorKind::EmptyPattern(index),
            });
        }
        if pattern.len() > PATTERN_LEN_MAX {
            return Err(TextFilterError {
                kind: TextFilterErrorKind::PatternTooLong {
                    index,
                    len: pattern.len(),
                },
            });
        }
    }
    Ok(())
}

/// Numbers the bytes that occur in patterns 1, 2, ... in byte order; all others are class 0.
fn byte_classes(patterns: &[&[u8]]) -> ([u8; 256], usize) {
    let mut used = [false; 256];
    for pattern in patterns {
        for &byte in *pattern {
            used[usize::from(byte)] = true;
        }
    }
    let mut classes = [0u8; 256];
    let mut class_count = 1usize;
    for byte in 0..256 {
        if used[byte] {
            // At most 256 distinct bytes; class 0 plus 256 would overflow u8 only if every byte
            // were used, and then class 0 is empty: reuse it for the first byte.
            if class_count == 256 {
                classes[byte] = 0;
            } else {
                classes[byte] = class_count as u8;
                class_count += 1;
            }
        }
    }
    (classes, class_count)
}

/// The keyword trie with failure links, before it is made deterministic.
struct Trie {
    /// `goto[state * class_count + class]`: child state, or `u32::MAX` for none.
    goto: Vec<u32>,
    ends: Vec<bool>,
    class_count: usize,
}

const NO_STATE: u32 = u32::MAX;

impl Trie {
    fn build(
        patterns: &[&[u8]],
        byte_classes: &[u8; 256],
        class_count: usize,
    ) -> Result<Self, TextFilterError> {
        let mut trie = Self {
            goto: vec![NO_STATE; class_count],
            ends: vec![false],
            class_count,
        };
        for pattern in patterns {
            let mut state = ROOT_STATE as usize;
            for &byte in *pattern {
                let slot = state * class_count + usize::from(byte_classes[usize::from(byte)]);
                if trie.goto[slot] == NO_STATE {
                    if trie.ends.len() >= STATE_COUNT_MAX {
                        return Err(TextFilterError {
                            kind: TextFilterErrorKind::TooManyStates,
                        });
                    }
                    trie.goto[slot] = trie.ends.len() as u32;
                    trie.ends.push(false);
                    trie.goto.extend(std::iter::repeat_n(NO_STATE, class_count));
                }
                state = trie.goto[slot] as usize;
            }
            trie.ends[state] = true;
        }
        Ok(trie)
    }

    /// Breadth-first over the trie: a state's failure transitions are its failure state's
    /// transitions, which are complete by the time the state is reached.
    fn into_dfa(self, byte_classes: [u8; 256], class_count: usize) -> TextFilter {
        let state_count = self.ends.len();
        let mut transitions = vec![ROOT_STATE; state_count * class_count];
        let mut accepting = self.ends.clone();
        let mut failure = vec![ROOT_STATE; state_count];
        let mut queue = VecDeque::new();
        for (root_transition, &child) in transitions.iter_mut().zip(&self.goto[..class_count]) {
            if child != NO_STATE {
                *root_transition = child;
                queue.push_back(child);
            }
        }
        while let Some(state) = queue.pop_front() {
            let state = state as usize;
            let fail = failure[state] as usize;
            accepting[state] |= accepting[fail];
            for class in 0..self.class_count {
                let child = self.goto[state * class_count + class];
                let via_failure = transitions[fail * class_count + class];
                if child == NO_STATE {
                    transitions[state * class_count + class] = via_failure;
                } else {
                    failure[child as usize] = via_failure;
                    transitions[state * class_count + class] = child;
                    queue.push_back(child);
                }
            }
        }
        TextFilter {
            byte_classes,
            class_count,
            transitions,
            accepting,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Naive reference: at each end position, does any pattern end there?
    fn naive(patterns: &[&[u8]], text: &[u8]) -> ScanResult {
        let mut result = ScanResult::default();
        for end in 0..text.len() {
            if patterns
                .iter()
                .any(|p| p.len() <= end + 1 && &text[end + 1 - p.len()..=end] == *p)
            {
                result.first_match_end.get_or_insert(end as u32);
                result.match_end_count += 1;
            }
        }
        result
    }

    #[test]
    fn named_cases() {
        /// (name, patterns, text, first match end, match end count)
        type Case<'a> = (&'a str, &'a [&'a [u8]], &'a [u8], Option<u32>, u32);
        let cases: &[Case] = &[
            (
                "textbook",
                &[b"he", b"she", b"his", b"hers"],
                b"ushers",
                Some(3),
                2,
            ),
            ("no match", &[b"abc"], b"ababab", None, 0),
            ("empty text", &[b"a"], b"", None, 0),
            ("overlap", &[b"aa"], b"aaaa", Some(1), 3),
            (
                "suffix via failure",
                &[b"abcd", b"bc"],
                b"xabcx",
                Some(3),
                1,
            ),
            (
                "binary bytes",
                &[&[0, 255, 0]],
                &[1, 0, 255, 0, 255, 0],
                Some(3),
                2,
            ),
            ("pattern is text", &[b"hello"], b"hello", Some(4), 1),
        ];
        for &(name, patterns, text, first, count) in cases {
            let filter = TextFilter::new(patterns).unwrap();
            let scan = filter.scan(text);
            assert_eq!(
                scan,
                ScanResult {
                    first_match_end: first,
                    match_end_count: count
                },
                "{name}"
            );
            assert_eq!(scan, naive(patterns, text), "{name} vs naive");
        }
    }

    #[test]
    fn errors() {
        assert_eq!(
            TextFilter::new(&[b"a", b""]).unwrap_err().to_string(),
            "pattern 1 is empty"
        );
        let long = vec![b'x'; PATTERN_LEN_MAX + 1];
        assert!(TextFilter::new(&[long.as_slice()]).is_err());
        let many: Vec<&[u8]> = vec![b"a"; PATTERN_COUNT_MAX + 1];
        assert!(TextFilter::new(&many).is_err());
        assert!(TextFilter::new(&[]).is_ok());
    }

    #[test]
    fn all_256_bytes_in_patterns() {
        let every: Vec<u8> = (0..=255).collect();
        let filter = TextFilter::new(&[every.as_slice(), b"\x00\x01"]).unwrap();
        assert_eq!(filter.class_count(), 256);
        let mut text = vec![7u8, 0, 1];
        text.extend(&every);
        assert_eq!(
            filter.scan(&text),
            naive(&[every.as_slice(), b"\x00\x01"], &text)
        );
    }

    #[test]
    fn random_against_naive() {
        use rand::{Rng, SeedableRng};
        let seed = 0x7e57_f11e;
        let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
        for round in 0..300 {
            let pattern_count = rng.gen_range(1..8);
            let patterns: Vec<Vec<u8>> = (0..pattern_count)
                .map(|_| {
                    (0..rng.gen_range(1..6))
                        .map(|_| rng.gen_range(b'a'..b'e'))
                        .collect()
                })
                .collect();
            let refs: Vec<&[u8]> = patterns.iter().map(Vec::as_slice).collect();
            let filter = TextFilter::new(&refs).unwrap();
            let text: Vec<u8> = (0..rng.gen_range(0..80))
                .map(|_| rng.gen_range(b'a'..b'f'))
                .collect();
            assert_eq!(
                filter.scan(&text),
                naive(&refs, &text),
                "seed {seed:#x} round {round}"
            );
        }
    }
}
