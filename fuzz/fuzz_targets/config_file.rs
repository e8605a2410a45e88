//! The config-file parser (`Config::from_file_text`, what `ember FILE` reads a redis.conf with)
//! and CONFIG SET's parser (`Config::set`) on arbitrary text.
//!
//! Checked: no panic; a refused file names its line (`config file line N: ...`) and the line is
//! one of the text's; an accepted file's settings, written back as a file (`name value` per
//! parameter, as CONFIG GET shows them), read back to the same settings; each line of the text
//! as CONFIG SET (`name` and the rest) either succeeds or gives an `ERR` reply that encodes to one
//! error frame, and a
//! set that succeeded reads back through CONFIG GET as the value it validated to, which CONFIG SET
//! accepts again unchanged.
#![no_main]

use ember_server::config::Config;
use libfuzzer_sys::fuzz_target;

/// The error as the reply encoder writes it (CR and LF as spaces, as Redis's
/// addReplyErrorFormat does) is one whole error frame.
fn assert_one_line(message: &str) {
    let mut written = Vec::new();
    ember_resp::encode::error(&mut written, message);
    match ember_resp::parse_frame(&written) {
        Ok(Some((ember_resp::Frame::Error(_), consumed))) if consumed == written.len() => {}
        other => panic!("error {message:?} is not one frame: {other:?}"),
    }
}

fn check_file(text: &str) {
    match Config::from_file_text(text) {
        Err(error) => {
            let message = error.0;
            let rest = message
                .strip_prefix("config file line ")
                .unwrap_or_else(|| panic!("error without its line: {message:?}"));
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            let line: usize = digits.parse().expect("a line number");
            assert!(
                line >= 1 && line <= text.lines().count(),
                "line {line} of {}",
                text.lines().count()
            );
        }
        Ok(config) => {
            let settings = config.get_matching("*");
            // The file syntax as Ember reads it (the value trimmed, then its outer quotes
            // dropped; not Redis's quoted arguments) cannot write a value with whitespace or a
            // quote at either end, or a line break: such settings are not written back.
            let representable = |value: &str| {
                value.trim() == value
                    && !value.starts_with('"')
                    && !value.ends_with('"')
                    && !value.contains(['\r', '\n'])
            };
            if !settings.iter().all(|(_, value)| representable(value)) {
                return;
            }
            let mut written = String::new();
            for (name, value) in &settings {
                written.push_str(name);
                written.push(' ');
                written.push_str(value);
                written.push('\n');
            }
            let again = Config::from_file_text(&written)
                .unwrap_or_else(|error| panic!("settings written back refused: {}", error.0));
            assert_eq!(
                again.get_matching("*"),
                settings,
                "settings written back read differently"
            );
        }
    }
}

fn check_config_set(text: &str) {
    let mut config = Config::default();
    for line in text.lines().take(16) {
        let (name, value) = line.split_once(' ').unwrap_or((line, ""));
        match config.set(name, value) {
            Err(error) => {
                assert!(
                    error.0.starts_with("ERR "),
                    "CONFIG SET error {:?}",
                    error.0
                );
                assert_one_line(&error.0);
            }
            Ok(()) => {
                let shown = config.get_matching(&name.to_ascii_lowercase());
                let Some((_, canonical)) = shown
                    .iter()
                    .find(|(shown_name, _)| shown_name.eq_ignore_ascii_case(name))
                else {
                    panic!("CONFIG SET {name:?} succeeded but CONFIG GET has no such name");
                };
                let canonical = canonical.clone();
                config
                    .set(name, &canonical)
                    .unwrap_or_else(|error| panic!("CONFIG GET's value refused: {}", error.0));
                let shown_again = config.value(&name.to_ascii_lowercase()).to_string();
                assert_eq!(
                    shown_again, canonical,
                    "CONFIG GET's value is not a fixed point"
                );
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    check_file(&text);
    check_config_set(&text);
});
