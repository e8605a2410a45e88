//! Glob-style pattern matching as Redis's `stringmatchlen`: `*`, `?`, `[abc]`, `[^a-z]`, `\x`.

/// Deepest `*` nesting followed; patterns with more stars than this fail to match, so a
/// hostile pattern cannot make matching exponential (Redis bounds its recursion the same way).
const NESTING_MAX: usize = 1000;

/// True when `text` matches the glob `pattern`.
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    // KEYS and SCAN treat a lone `*` as "everything", the empty key included.
    if pattern == b"*" {
        return true;
    }
    let mut skip_longer = false;
    match_from(pattern, text, 0, &mut skip_longer)
}

fn match_from(mut pattern: &[u8], mut text: &[u8], nesting: usize, skip_longer: &mut bool) -> bool {
    if nesting > NESTING_MAX {
        return false;
    }
    while !pattern.is_empty() && !text.is_empty() {
        match pattern[0] {
            b'*' => {
                while pattern.len() > 1 && pattern[1] == b'*' {
                    pattern = &pattern[1..];
                }
                if pattern.len() == 1 {
                    return true;
                }
                while !text.is_empty() {
                    if match_from(&pattern[1..], text, nesting + 1, skip_longer) {
                        return true;
                    }
                    if *skip_longer {
                        return false;
                    }
                    text = &text[1..];
                }
                *skip_longer = true;
                return false;
            }
            b'?' => text = &text[1..],
            b'[' => {
                pattern = &pattern[1..];
                let negate = pattern.first() == Some(&b'^');
                if negate {
                    pattern = &pattern[1..];
                }
                let mut matched = false;
                loop {
                    if pattern.is_empty() {
                        break;
                    }
                    if pattern[0] == b'\\' && pattern.len() >= 2 {
                        pattern = &pattern[1..];
                        matched |= pattern[0] == text[0];
                    } else if pattern[0] == b']' {
                        break;
                    } else if pattern.len() >= 3 && pattern[1] == b'-' {
                        let (mut low, mut high) = (pattern[0], pattern[2]);
                        if low > high {
                            std::mem::swap(&mut low, &mut high);
                        }
                        matched |= (low..=high).contains(&text[0]);
                        pattern = &pattern[2..];
                    } else {
                        matched |= pattern[0] == text[0];
                    }
                    pattern = &pattern[1..];
                }
                if pattern.is_empty() {
                    // Unterminated class: Redis treats the end of pattern as the end of class.
                    pattern = b"]";
                }
                if matched == negate {
                    return false;
                }
                text = &text[1..];
            }
            b'\\' if pattern.len() >= 2 => {
                pattern = &pattern[1..];
                if pattern[0] != text[0] {
                    return false;
                }
                text = &text[1..];
            }
            byte => {
                if byte != text[0] {
                    return false;
                }
                text = &text[1..];
            }
        }
        pattern = &pattern[1..];
        if text.is_empty() {
            while pattern.first() == Some(&b'*') {
                pattern = &pattern[1..];
            }
            break;
        }
    }
    pattern.is_empty() && text.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "anything", true),
            ("*", "", true),
            ("h?llo", "hello", true),
            ("h?llo", "hllo", false),
            ("h*llo", "heeeello", true),
            ("h[ae]llo", "hallo", true),
            ("h[ae]llo", "hillo", false),
            ("h[^e]llo", "hallo", true),
            ("h[^e]llo", "hello", false),
            ("h[a-b]llo", "hbllo", true),
            ("h\\*llo", "h*llo", true),
            ("h\\*llo", "hello", false),
            ("user:*", "user:1", true),
            ("user:*", "users", false),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXbY", false),
            ("", "", true),
            ("", "a", false),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(
                glob_match(pattern.as_bytes(), text.as_bytes()),
                *expected,
                "{pattern} ~ {text}"
            );
        }
    }

    #[test]
    fn hostile_pattern_is_fast() {
        let pattern = "a*".repeat(40) + "b";
        let text = "a".repeat(60);
        let started = std::time::Instant::now();
        assert!(!glob_match(pattern.as_bytes(), text.as_bytes()));
        assert!(started.elapsed().as_secs() < 5);
    }
}
