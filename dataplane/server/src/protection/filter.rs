//! Live text filters: named sets of words, matched with Aho-Corasick automata (the
//! `aho-corasick` crate), after folding case and full-width forms, so that `ＢＡＤ`, `Bad` and
//! `bad` all match the word `bad`. Matches are reported and masked at byte offsets of the
//! original text.
//!
//! [`FilterRules`] is the editable form (the words, the channels filters are attached to);
//! [`CompiledFilters`] the immutable form every shard shares after a change.

use std::collections::{BTreeMap, BTreeSet};

use std::borrow::Cow;

use aho_corasick::{AhoCorasick, AhoCorasickKind, Anchored, Input, MatchKind, StartKind};

/// Most filters: each is an automaton kept by every shard.
pub const FILTERS_MAX: usize = 1024;
/// Most words in one filter: bounds a rebuild (linear in the words' total length).
pub const WORDS_MAX: usize = 100_000;
/// Longest word, bytes.
pub const WORD_BYTES_MAX: usize = 256;
/// Longest filter name, bytes.
pub const NAME_BYTES_MAX: usize = 256;
/// Most channels with a filter attached.
pub const ATTACHMENTS_MAX: usize = 65_536;

/// What PUBLISH does with a message a channel's filter matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The message is not delivered (PUBLISH answers 0).
    Drop,
    /// Matching words are replaced by `*`, one per character.
    Mask,
}

/// The editable rules: each filter's folded words, and the channels' attachments.
#[derive(Debug, Default, Clone)]
pub struct FilterRules {
    /// Filter name -> its folded words.
    pub filters: BTreeMap<Vec<u8>, BTreeSet<Vec<u8>>>,
    /// Channel -> (filter name, action).
    pub attachments: BTreeMap<Vec<u8>, (Vec<u8>, Action)>,
}

/// Largest sum of word lengths a filter compiles to a DFA (10,000 words of 5 to 10 letters
/// are about 75,000 bytes: a DFA of a few MB); larger filters get the builder's NFA.
const DFA_PATTERN_BYTES_MAX: usize = 200_000;

/// One filter, compiled.
#[derive(Debug)]
pub struct CompiledFilter {
    /// The folded words, in the automaton's pattern order.
    pub words: Vec<Vec<u8>>,
    automaton: Option<AhoCorasick>,
    /// Where a match may start, when every word is at least two bytes long; then `automaton`
    /// is anchored and runs only at those places.
    starts: Option<StartGrams>,
}

/// Every filter compiled, and the attachments; shared read-only by every shard.
#[derive(Debug, Default)]
pub struct CompiledFilters {
    /// Filter name -> compiled filter.
    pub filters: BTreeMap<Vec<u8>, CompiledFilter>,
    /// Channel -> (filter name, action).
    pub attachments: BTreeMap<Vec<u8>, (Vec<u8>, Action)>,
}

/// One match: the word (folded) and where it is in the original text, bytes, end exclusive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// The word that matched, as the filter holds it.
    pub word: Vec<u8>,
    /// First byte of the match in the original text.
    pub start: usize,
    /// One past the last byte of the match in the original text.
    pub end: usize,
}

impl CompiledFilters {
    /// Compiles every filter of `rules`.
    pub fn compile(rules: &FilterRules) -> Self {
        let filters = rules
            .filters
            .iter()
            .map(|(name, words)| {
                let words: Vec<Vec<u8>> = words.iter().cloned().collect();
                // A DFA (one table lookup per byte) while the words are few enough for its
                // tables to stay small; past that the builder's own choice (an NFA).
                let pattern_bytes: usize = words.iter().map(Vec::len).sum();
                let kind = (pattern_bytes <= DFA_PATTERN_BYTES_MAX).then_some(AhoCorasickKind::DFA);
                // With the words' first bytes in a bitmap, most places of a text are ruled out
                // by one bit; the automaton runs anchored at the others only (its tables, a
                // few MB for 10,000 words, are then mostly out of the scan's way).
                let starts = StartGrams::build(&words);
                let start_kind = match starts {
                    Some(_) => StartKind::Anchored,
                    None => StartKind::Unanchored,
                };
                let automaton = AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .start_kind(start_kind)
                    .kind(kind)
                    .build(&words)
                    .ok();
                let compiled = CompiledFilter {
                    words,
                    automaton,
                    starts,
                };
                (name.clone(), compiled)
            })
            .collect();
        Self {
            filters,
            attachments: rules.attachments.clone(),
        }
    }
}

impl CompiledFilter {
    /// The matches in `text`, leftmost-longest, not overlapping, in order.
    pub fn scan(&self, text: &[u8]) -> Vec<Match> {
        let Some(automaton) = &self.automaton else {
            return Vec::new();
        };
        let folded = Folded::new(text);
        let record = |found: aho_corasick::Match| Match {
            word: self.words[found.pattern().as_usize()].clone(),
            start: folded.start_of(found.start()),
            end: folded.end_of(found.end() - 1),
        };
        let Some(starts) = &self.starts else {
            return automaton.find_iter(&folded.bytes).map(record).collect();
        };
        // Leftmost-longest without overlaps, as `find_iter` gives it: the first place where a
        // word starts wins, the longest word there, and the next search begins after it.
        let bytes = &folded.bytes[..];
        let mut matches = Vec::new();
        let mut at = 0;
        while at + starts.width <= bytes.len() {
            if starts.may_start(bytes, at) {
                let input = Input::new(bytes).range(at..).anchored(Anchored::Yes);
                if let Some(found) = automaton.find(input) {
                    at = found.end();
                    matches.push(record(found));
                    continue;
                }
            }
            at += 1;
        }
        matches
    }

    /// `text` with every match replaced by one `*` per character, and the match count.
    pub fn mask(&self, text: &[u8]) -> (Vec<u8>, usize) {
        let matches = self.scan(text);
        let mut masked = Vec::with_capacity(text.len());
        let mut at = 0;
        for found in &matches {
            masked.extend_from_slice(&text[at..found.start]);
            let characters = chars_with_offsets(&text[found.start..found.end]).count();
            masked.extend(std::iter::repeat_n(b'*', characters));
            at = found.end;
        }
        masked.extend_from_slice(&text[at..]);
        (masked, matches.len())
    }
}

/// The first bytes of every word of a filter, hashed into a bitmap: a place in a text where
/// no word's first bytes are found cannot start a match. `width` is the shortest word's length,
/// at most 4 (one load); the bitmap has 64 bits a word or more, so that about one place in 64
/// passes by chance, and stays within 128 KB (10,000 words fill it; with more, more places
/// pass and the anchored automaton rules them out).
#[derive(Debug)]
struct StartGrams {
    width: usize,
    /// log2 of the bitmap's size in bits.
    bits_log2: u32,
    bitmap: Vec<u64>,
}

impl StartGrams {
    /// None when a word is shorter than two bytes: one byte rules out too little.
    fn build(words: &[Vec<u8>]) -> Option<Self> {
        let shortest = words.iter().map(Vec::len).min()?;
        if shortest < 2 {
            return None;
        }
        let bits_log2 = (words.len() * 64)
            .next_power_of_two()
            .trailing_zeros()
            .clamp(12, 20);
        let mut grams = Self {
            width: shortest.min(4),
            bits_log2,
            bitmap: vec![0; 1 << (bits_log2 - 6)],
        };
        for word in words {
            let bit = grams.bit(word, 0);
            grams.bitmap[bit >> 6] |= 1 << (bit & 63);
        }
        Some(grams)
    }

    /// The bitmap's bit for the `width` bytes at `at` (the caller keeps them in `text`).
    #[inline]
    fn bit(&self, text: &[u8], at: usize) -> usize {
        let gram = match text[at..].first_chunk::<4>() {
            Some(four) if self.width == 4 => u64::from(u32::from_le_bytes(*four)),
            _ => text[at..at + self.width]
                .iter()
                .rev()
                .fold(0u64, |gram, &byte| gram << 8 | u64::from(byte)),
        };
        (gram.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - self.bits_log2)) as usize
    }

    #[inline]
    fn may_start(&self, text: &[u8], at: usize) -> bool {
        let bit = self.bit(text, at);
        self.bitmap[bit >> 6] & (1 << (bit & 63)) != 0
    }
}

/// Folds a word for storage and matching: lower case, full-width ASCII forms to ASCII, the
/// ideographic space to a space.
pub fn fold(text: &[u8]) -> Vec<u8> {
    Folded::new(text).bytes.into_owned()
}

/// A folded text and, for each of its bytes, where the character it came from starts and
/// ends in the original (both maps empty for ASCII text, whose offsets do not move).
struct Folded<'a> {
    /// The text itself when folding changes nothing (ASCII without capitals).
    bytes: Cow<'a, [u8]>,
    origin: Vec<usize>,
    origin_end: Vec<usize>,
}

impl<'a> Folded<'a> {
    fn new(text: &'a [u8]) -> Self {
        // ASCII folds byte for byte (only case changes), so offsets need no map, and text
        // without capitals is scanned as it is.
        if text.is_ascii() {
            let bytes = if text.iter().any(u8::is_ascii_uppercase) {
                Cow::Owned(text.to_ascii_lowercase())
            } else {
                Cow::Borrowed(text)
            };
            return Self {
                bytes,
                origin: Vec::new(),
                origin_end: Vec::new(),
            };
        }
        let mut folded = Self {
            bytes: Cow::Owned(Vec::with_capacity(text.len())),
            origin: Vec::with_capacity(text.len()),
            origin_end: Vec::with_capacity(text.len()),
        };
        for (start, end, character) in chars_with_offsets(text) {
            match character {
                Some(character) => {
                    for lower in fold_char(character).to_lowercase() {
                        let mut buffer = [0u8; 4];
                        folded.push(lower.encode_utf8(&mut buffer).as_bytes(), start, end);
                    }
                }
                // A byte that is not UTF-8 matches only itself.
                None => folded.push(&text[start..end], start, end),
            }
        }
        folded
    }

    /// Where the character of folded byte `at` starts in the original.
    fn start_of(&self, at: usize) -> usize {
        self.origin.get(at).copied().unwrap_or(at)
    }

    /// Where the character of folded byte `at` ends in the original.
    fn end_of(&self, at: usize) -> usize {
        self.origin_end.get(at).copied().unwrap_or(at + 1)
    }

    fn push(&mut self, bytes: &[u8], start: usize, end: usize) {
        self.bytes.to_mut().extend_from_slice(bytes);
        self.origin.extend(std::iter::repeat_n(start, bytes.len()));
        self.origin_end
            .extend(std::iter::repeat_n(end, bytes.len()));
    }
}

/// Full-width ASCII forms (U+FF01..U+FF5E) to ASCII, the ideographic space to a space, and
/// half-width katakana left as they are.
fn fold_char(character: char) -> char {
    match character {
        '\u{FF01}'..='\u{FF5E}' => {
            char::from_u32(character as u32 - 0xFF01 + 0x21).unwrap_or(character)
        }
        '\u{3000}' => ' ',
        other => other,
    }
}

/// The characters of `text` with their byte ranges; a byte that does not start valid UTF-8
/// comes as `None`, one byte long.
fn chars_with_offsets(text: &[u8]) -> impl Iterator<Item = (usize, usize, Option<char>)> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        if at >= text.len() {
            return None;
        }
        let width = utf8_width(text[at]);
        let end = (at + width).min(text.len());
        let decoded = std::str::from_utf8(&text[at..end])
            .ok()
            .and_then(|s| s.chars().next());
        let item = match decoded {
            Some(character) if width > 0 => (at, end, Some(character)),
            _ => (at, at + 1, None),
        };
        at = item.1;
        Some(item)
    })
}

/// The length of the UTF-8 sequence a lead byte starts; 0 for a byte that cannot lead.
fn utf8_width(lead: u8) -> usize {
    match lead {
        0x00..=0x7F => 1,
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(words: &[&str]) -> CompiledFilter {
        let mut rules = FilterRules::default();
        rules.filters.insert(
            b"f".to_vec(),
            words.iter().map(|word| fold(word.as_bytes())).collect(),
        );
        CompiledFilters::compile(&rules)
            .filters
            .remove(b"f".as_slice())
            .expect("compiled")
    }

    #[test]
    fn matches_at_original_offsets() {
        let cases: &[(&[&str], &str, &[(&str, usize, usize)])] = &[
            (&["bad"], "a bad day", &[("bad", 2, 5)]),
            (&["bad"], "a BaD day", &[("bad", 2, 5)]),
            (&["bad"], "ＢＡＤ!", &[("bad", 0, 9)]),
            (&["坏人"], "他是坏人吗", &[("坏人", 6, 12)]),
            (&["abc", "bc"], "xabcx", &[("abc", 1, 4)]),
            (&["ab"], "ab\u{3000}ab", &[("ab", 0, 2), ("ab", 5, 7)]),
            (&["spam"], "no match", &[]),
        ];
        for (words, text, expected) in cases {
            let found = filter(words).scan(text.as_bytes());
            let found: Vec<(String, usize, usize)> = found
                .into_iter()
                .map(|m| (String::from_utf8(m.word).unwrap(), m.start, m.end))
                .collect();
            let expected: Vec<(String, usize, usize)> = expected
                .iter()
                .map(|(w, s, e)| (w.to_string(), *s, *e))
                .collect();
            assert_eq!(found, expected, "{words:?} in {text:?}");
        }
    }

    #[test]
    fn masks_one_star_per_character() {
        let cases: &[(&[&str], &[u8], &[u8])] = &[
            (&["bad"], b"a bad day", b"a *** day"),
            (&["坏人"], "他是坏人".as_bytes(), "他是**".as_bytes()),
            (&["bad"], "ＢＡＤ".as_bytes(), b"***"),
            (&["x"], b"\xff x \xfe", b"\xff * \xfe"),
        ];
        for (words, text, expected) in cases {
            assert_eq!(filter(words).mask(text).0, expected.to_vec(), "{words:?}");
        }
    }

    /// The scan that skips places by the words' first bytes finds exactly what the plain
    /// unanchored leftmost-longest search finds: random word sets over a small alphabet (so
    /// that words share prefixes, contain each other and overlap in texts), with and without
    /// multi-byte characters.
    #[test]
    fn skipping_by_first_bytes_finds_what_the_plain_search_finds() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |below: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % below as u64) as usize
        };
        let alphabet = ["a", "b", "c", "d", "坏", "Ａ", " "];
        for round in 0..400 {
            let letters = if round % 2 == 0 { 3 } else { alphabet.len() };
            let random_text = |len: usize, next: &mut dyn FnMut(usize) -> usize| {
                (0..len)
                    .map(|_| alphabet[next(letters)])
                    .collect::<String>()
            };
            let shortest = 1 + round % 5;
            let words: Vec<String> = (0..1 + next(40))
                .map(|_| random_text(shortest + next(4), &mut next))
                .collect();
            let word_refs: Vec<&str> = words.iter().map(String::as_str).collect();
            let compiled = filter(&word_refs);
            assert_eq!(
                compiled.starts.is_some(),
                compiled.words.iter().all(|w| w.len() >= 2)
            );
            let plain = AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&compiled.words)
                .unwrap();
            for _ in 0..20 {
                let text = random_text(next(60), &mut next);
                let folded = fold(text.as_bytes());
                let expected: Vec<(usize, usize)> = plain
                    .find_iter(&folded)
                    .map(|found| (found.start(), found.end()))
                    .collect();
                let found: Vec<(usize, usize)> = compiled
                    .scan(folded.as_slice())
                    .iter()
                    .map(|found| (found.start, found.end))
                    .collect();
                assert_eq!(found, expected, "words {words:?} text {text:?}");
            }
        }
    }

    /// FILTER.CHECK's scan in-process: 10,000 rules, 100-byte messages (about one in ten
    /// holding a rule word), for two seconds on this thread; prints messages per second.
    /// `cargo test -p ember-server --bins scan_throughput -- --ignored --nocapture`
    /// (bench/scripts/protection.sh runs it).
    #[test]
    #[ignore = "a measurement, run by bench/scripts/protection.sh"]
    fn scan_throughput_with_10000_rules() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        fn word(next: &mut impl FnMut() -> u64, len: usize) -> String {
            (0..len)
                .map(|_| char::from(b'a' + (next() % 26) as u8))
                .collect()
        }
        let rules: Vec<String> = (0..10_000)
            .map(|_| {
                let len = 5 + (next() % 6) as usize;
                word(&mut next, len)
            })
            .collect();
        let rule_refs: Vec<&str> = rules.iter().map(String::as_str).collect();
        let compiled = filter(&rule_refs);
        let messages: Vec<Vec<u8>> = (0..1000)
            .map(|index| {
                let mut text = String::new();
                if index % 10 == 0 {
                    text.push_str(&rules[index % rules.len()]);
                    text.push(' ');
                }
                while text.len() < 100 {
                    let len = 2 + (next() % 7) as usize;
                    text.push_str(&word(&mut next, len));
                    text.push(' ');
                }
                text.truncate(100);
                text.into_bytes()
            })
            .collect();
        // Per core: messages per second of this thread's CPU time, so that other processes
        // on a shared machine do not count; the wall-clock rate is printed beside it.
        fn thread_cpu_s() -> f64 {
            let mut now = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: clock_gettime writes one timespec through a valid pointer.
            unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
            now.tv_sec as f64 + now.tv_nsec as f64 / 1e9
        }
        let (mut scanned, mut hits) = (0u64, 0usize);
        let (started, cpu_started) = (std::time::Instant::now(), thread_cpu_s());
        while started.elapsed() < std::time::Duration::from_secs(2) {
            for message in &messages {
                hits += compiled.scan(message).len();
            }
            scanned += messages.len() as u64;
        }
        let per_cpu_s = scanned as f64 / (thread_cpu_s() - cpu_started);
        let per_wall_s = scanned as f64 / started.elapsed().as_secs_f64();
        println!(
            "FILTER.CHECK in-process: 10000 rules, 100-byte messages: {per_cpu_s:.0} messages per CPU second ({per_wall_s:.0}/s wall clock, {hits} matches)"
        );
        // The automaton kinds side by side (the same scan without folding or match records).
        let folded: Vec<Vec<u8>> = messages.iter().map(|m| fold(m)).collect();
        for kind in [
            AhoCorasickKind::DFA,
            AhoCorasickKind::ContiguousNFA,
            AhoCorasickKind::NoncontiguousNFA,
        ] {
            let automaton = AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .kind(Some(kind))
                .build(&compiled.words)
                .unwrap();
            let (mut scanned, mut found) = (0u64, 0usize);
            let (started, cpu_started) = (std::time::Instant::now(), thread_cpu_s());
            while started.elapsed() < std::time::Duration::from_secs(1) {
                for message in &folded {
                    found += automaton.find_iter(message).count();
                }
                scanned += folded.len() as u64;
            }
            let per_cpu_s = scanned as f64 / (thread_cpu_s() - cpu_started);
            println!(
                "  automaton alone, {kind:?}: {per_cpu_s:.0} messages per CPU second ({} bytes of tables, {found} matches)",
                automaton.memory_usage()
            );
        }
        assert!(hits > 0);
    }
}
