use std::time::Duration;

use super::{parse_client_unblock, parse_timeout, UnblockKind};

#[test]
fn timeouts_parse_as_redis() {
    let cases: &[(&str, &str, Result<Option<Duration>, &str>)] = &[
        ("zero waits for ever", "0", Ok(None)),
        ("whole seconds", "2", Ok(Some(Duration::from_secs(2)))),
        ("fractions", "0.1", Ok(Some(Duration::from_millis(100)))),
        ("under a millisecond is zero", "0.0001", Ok(None)),
        ("exponent", "1e-1", Ok(Some(Duration::from_millis(100)))),
        ("negative", "-1", Err("ERR timeout is negative")),
        ("past the clock", "1e20", Err("ERR timeout is negative")),
        ("infinity", "inf", Err("ERR timeout is negative")),
        (
            "not a number",
            "x",
            Err("ERR timeout is not a float or out of range"),
        ),
        (
            "nan",
            "nan",
            Err("ERR timeout is not a float or out of range"),
        ),
        (
            "empty",
            "",
            Err("ERR timeout is not a float or out of range"),
        ),
    ];
    for (name, text, expected) in cases {
        let parsed = parse_timeout(text.as_bytes()).map_err(|error| error.0.into_owned());
        assert_eq!(parsed, expected.map_err(str::to_owned), "{name}");
    }
}

#[test]
fn client_unblock_arguments() {
    let cases: &[(&str, &[&str], Result<(u64, UnblockKind), &str>)] = &[
        ("default", &["CLIENT", "UNBLOCK", "7"], Ok((7, UnblockKind::Timeout))),
        ("timeout", &["CLIENT", "UNBLOCK", "7", "timeout"], Ok((7, UnblockKind::Timeout))),
        ("error", &["CLIENT", "UNBLOCK", "7", "ERROR"], Ok((7, UnblockKind::Error))),
        ("negative id names no client", &["CLIENT", "UNBLOCK", "-1"], Ok((0, UnblockKind::Timeout))),
        ("bad id", &["CLIENT", "UNBLOCK", "x"], Err("ERR value is not an integer or out of range")),
        ("bad reason", &["CLIENT", "UNBLOCK", "7", "NOW"], Err("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")),
        ("missing id", &["CLIENT", "UNBLOCK"], Err("")),
        ("too many", &["CLIENT", "UNBLOCK", "7", "ERROR", "x"], Err("ERR unknown subcommand or wrong number of arguments for 'unblock'. Try CLIENT HELP.")),
    ];
    for (name, args, expected) in cases {
        let args: Vec<&[u8]> = args.iter().map(|arg| arg.as_bytes()).collect();
        let parsed = parse_client_unblock(&args).map_err(|error| error.0.into_owned());
        assert_eq!(parsed, expected.map_err(str::to_owned), "{name}");
    }
}
