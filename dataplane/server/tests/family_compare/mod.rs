//! Named command scripts run against ember (two shards) and a real redis-server, every reply
//! compared: the way the family tests (sets and sorted sets, streams, geo) check Redis's exact
//! replies and errors without copying them by hand.

#![allow(dead_code)]

use crate::common::{run, show, show_value, Ember, RedisOracle};

/// One named script: commands, each a line split on spaces.
pub struct Case {
    /// What the script checks.
    pub name: &'static str,
    /// The commands, one per line, arguments split on single spaces.
    pub commands: &'static [&'static str],
}

/// How a reply is compared.
fn shown(con: &mut redis::Connection, args: &[&[u8]], unordered: &[&str]) -> String {
    let mut reply = run(con, args);
    let name = std::str::from_utf8(args[0]).unwrap_or("");
    let sorted = unordered.iter().any(|u| u.eq_ignore_ascii_case(name));
    if let (true, Ok(redis::Value::Array(items) | redis::Value::Set(items))) = (sorted, &mut reply)
    {
        items.sort_by_key(show_value);
    }
    show(&reply)
}

/// Whether two shown replies to `command` agree. A remaining time (TTL, PTTL) counts down
/// between the two servers' runs of a case, by seconds on a loaded machine: equal within 2 s.
pub fn agree(command: &[impl AsRef<[u8]>], ours: &str, theirs: &str) -> bool {
    if ours == theirs {
        return true;
    }
    let slack = match command
        .first()
        .map(|name| name.as_ref().to_ascii_uppercase())
    {
        Some(name) if name == b"TTL" => 2,
        Some(name) if name == b"PTTL" => 2000,
        _ => return false,
    };
    let remaining = |shown: &str| {
        shown
            .strip_prefix("(integer) ")
            .and_then(|n| n.parse::<i64>().ok())
            .filter(|&n| n >= 0)
    };
    matches!((remaining(ours), remaining(theirs)), (Some(a), Some(b)) if (a - b).abs() <= slack)
}

/// Splits a script line into arguments; `""` stands for an empty argument.
fn arguments(line: &str) -> Vec<Vec<u8>> {
    line.split(' ')
        .map(|arg| {
            if arg == "\"\"" {
                Vec::new()
            } else {
                arg.as_bytes().to_vec()
            }
        })
        .collect()
}

/// Runs every case on both servers in both protocols; replies of the `unordered` commands are
/// compared sorted. Panics at the first difference, naming the case and the command.
pub fn compare(cases: &[Case], unordered: &[&str]) {
    let Some(oracle) = RedisOracle::start() else {
        return;
    };
    let ember = Ember::start(2);
    for resp3 in [false, true] {
        let mut ours = ember.connect(resp3);
        let mut theirs = oracle.connect(resp3);
        for case in cases {
            for con in [&mut ours, &mut theirs] {
                let _: () = redis::cmd("FLUSHALL").query(con).unwrap();
            }
            for line in case.commands {
                let owned = arguments(line);
                let args: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
                let expected = shown(&mut theirs, &args, unordered);
                let actual = shown(&mut ours, &args, unordered);
                assert_eq!(
                    actual, expected,
                    "case '{}' (resp3={resp3}), command `{line}`",
                    case.name
                );
            }
        }
    }
}

/// A named script whose arguments are spelled out one by one (they may hold spaces); a command
/// written `~NAME` has its array reply compared sorted.
pub struct ArgCase {
    /// What the script checks.
    pub name: &'static str,
    /// The commands, each its arguments.
    pub commands: &'static [&'static [&'static str]],
}

/// `arg_cases! { "name" => [["SET", "k", "v"], ["GET", "k"]], ... }`: a table of [`ArgCase`].
#[macro_export]
macro_rules! arg_cases {
    ($($name:literal => [$([$($arg:expr),+ $(,)?]),+ $(,)?]),+ $(,)?) => {
        &[$($crate::family_compare::ArgCase { name: $name, commands: &[$(&[$($arg),+]),+] }),+]
    };
}

/// Sends one case's commands to one server on a fresh connection; the replies as text.
fn replay(port: u16, resp3: bool, case: &ArgCase) -> Vec<String> {
    let mut con = crate::common::connect(port, resp3);
    let _: () = redis::cmd("FLUSHALL").query(&mut con).expect("FLUSHALL");
    case.commands
        .iter()
        .map(|command| {
            let sorted = command[0].starts_with('~');
            let mut args: Vec<&[u8]> = command.iter().map(|arg| arg.as_bytes()).collect();
            args[0] = command[0].trim_start_matches('~').as_bytes();
            let mut reply = run(&mut con, &args);
            if let (true, Ok(redis::Value::Array(items))) = (sorted, &mut reply) {
                items.sort_by_key(show_value);
            }
            show(&reply)
        })
        .collect()
}

/// Runs every case on ember (two shards) and redis-server in both protocols and fails with
/// every reply that differs, naming the case and the command.
pub fn compare_args(cases: &[ArgCase]) {
    let Some(oracle) = RedisOracle::start() else {
        return;
    };
    let ember = Ember::start(2);
    let mut mismatches = Vec::new();
    for resp3 in [false, true] {
        for case in cases {
            let ours = replay(ember.port, resp3, case);
            let theirs = replay(oracle.port, resp3, case);
            for ((command, ours), theirs) in case.commands.iter().zip(&ours).zip(&theirs) {
                if !agree(command, ours, theirs) {
                    mismatches.push(format!(
                        "[{}] {:?} resp3={resp3}:\n    ember: {ours}\n    redis: {theirs}",
                        case.name,
                        command.join(" ")
                    ));
                }
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
