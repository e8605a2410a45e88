//! A small flag parser: `--name value`, `--name=value` and bare switches, with typed getters
//! whose errors name the flag. Unknown flags are refused, so a typo never silently runs the
//! default workload.

use std::collections::BTreeMap;
use std::str::FromStr;

/// Parsed flags of one subcommand.
#[derive(Debug, Default)]
pub struct Flags {
    values: BTreeMap<String, String>,
    switches: Vec<String>,
}

impl Flags {
    /// Parses `args` (the words after the subcommand). `valued` names the flags that take a
    /// value and `switches` the ones that do not, both without the leading `--`.
    ///
    /// # Errors
    /// Returns a message for an unknown flag, a missing value, a flag given twice or a word
    /// that is not a flag.
    pub fn parse(args: &[String], valued: &[&str], switches: &[&str]) -> Result<Self, String> {
        let mut flags = Flags::default();
        let mut words = args.iter();
        while let Some(word) = words.next() {
            let Some(body) = word.strip_prefix("--") else {
                return Err(format!("unexpected argument '{word}': flags start with --"));
            };
            let (name, inline_value) = match body.split_once('=') {
                Some((name, value)) => (name, Some(value.to_string())),
                None => (body, None),
            };
            if switches.contains(&name) {
                if inline_value.is_some() {
                    return Err(format!("--{name} takes no value"));
                }
                if flags.switches.iter().any(|seen| seen == name) {
                    return Err(format!("--{name} given twice"));
                }
                flags.switches.push(name.to_string());
            } else if valued.contains(&name) {
                let value = match inline_value {
                    Some(value) => value,
                    None => words
                        .next()
                        .cloned()
                        .ok_or_else(|| format!("--{name} needs a value"))?,
                };
                if flags.values.insert(name.to_string(), value).is_some() {
                    return Err(format!("--{name} given twice"));
                }
            } else {
                return Err(format!("unknown flag --{name}"));
            }
        }
        Ok(flags)
    }

    /// Whether the switch `--name` was given.
    pub fn switch(&self, name: &str) -> bool {
        self.switches.iter().any(|seen| seen == name)
    }

    /// The raw value of `--name`, if given.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// The value of `--name` parsed as `T`, or `default` when it was not given.
    ///
    /// # Errors
    /// Returns a message naming the flag when its value does not parse.
    pub fn get_or<T: FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        Ok(self.get(name)?.unwrap_or(default))
    }

    /// The value of `--name` parsed as `T`, if given.
    ///
    /// # Errors
    /// Returns a message naming the flag when its value does not parse.
    pub fn get<T: FromStr>(&self, name: &str) -> Result<Option<T>, String> {
        match self.values.get(name) {
            None => Ok(None),
            Some(text) => text
                .parse::<T>()
                .map(Some)
                .map_err(|_| format!("--{name}: cannot read '{text}'")),
        }
    }
}

/// Parses a comma-separated CPU list such as `1` or `2,3`.
///
/// # Errors
/// Returns a message when an entry is not a CPU number or the list is empty.
pub fn parse_cpu_list(text: &str) -> Result<Vec<usize>, String> {
    let cpus = text
        .split(',')
        .map(|part| {
            part.trim()
                .parse::<usize>()
                .map_err(|_| format!("'{part}' is not a CPU number"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if cpus.is_empty() {
        return Err("empty CPU list".to_string());
    }
    Ok(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn reads_values_and_switches() {
        let flags = Flags::parse(
            &words("--port 7000 --quick --keys=10"),
            &["port", "keys"],
            &["quick"],
        )
        .unwrap();
        assert_eq!(flags.get_or("port", 0u16).unwrap(), 7000);
        assert_eq!(flags.get_or("keys", 0u64).unwrap(), 10);
        assert_eq!(flags.get_or("absent", 3u64), Ok(3));
        assert!(flags.switch("quick"));
        assert!(!flags.switch("other"));
    }

    #[test]
    fn refuses_bad_command_lines() {
        let cases = [
            ("--nope 1", "unknown flag --nope"),
            ("--port", "--port needs a value"),
            ("--port 1 --port 2", "--port given twice"),
            ("stray", "unexpected argument 'stray': flags start with --"),
            ("--quick=1", "--quick takes no value"),
        ];
        for (line, message) in cases {
            assert_eq!(
                Flags::parse(&words(line), &["port"], &["quick"]).unwrap_err(),
                message,
                "{line}"
            );
        }
        let flags = Flags::parse(&words("--port x"), &["port"], &[]).unwrap();
        assert_eq!(
            flags.get_or("port", 0u16).unwrap_err(),
            "--port: cannot read 'x'"
        );
    }

    #[test]
    fn reads_cpu_lists() {
        assert_eq!(parse_cpu_list("1"), Ok(vec![1]));
        assert_eq!(parse_cpu_list("2, 3"), Ok(vec![2, 3]));
        assert!(parse_cpu_list("a").is_err());
        assert!(parse_cpu_list("").is_err());
    }
}
