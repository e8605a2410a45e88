use super::{keys_after_numkeys, parse_end, parse_mpop};

fn words(args: &[&'static str]) -> Vec<&'static [u8]> {
    args.iter().map(|arg| arg.as_bytes()).collect()
}

#[test]
fn mpop_keys_follow_numkeys() {
    let cases: &[(&str, &[&str], &[usize])] = &[
        ("one key", &["LMPOP", "1", "a", "LEFT"], &[2]),
        (
            "two keys",
            &["LMPOP", "2", "a", "b", "LEFT", "COUNT", "3"],
            &[2, 3],
        ),
        ("numkeys past the end", &["LMPOP", "3", "a", "LEFT"], &[]),
        ("numkeys zero", &["LMPOP", "0", "a", "LEFT"], &[]),
        ("numkeys not a number", &["LMPOP", "x", "a", "LEFT"], &[]),
    ];
    for (name, args, expected) in cases {
        let args = words(args);
        assert_eq!(keys_after_numkeys::<1>(&args), *expected, "{name}");
    }
    let args = words(&["BLMPOP", "0", "2", "a", "b", "RIGHT"]);
    assert_eq!(keys_after_numkeys::<2>(&args), [3, 4]);
}

#[test]
fn mpop_options() {
    let check_end = |word: &[u8]| parse_end(word).map(|_| ());
    let cases: &[(&str, &[&str], Result<(usize, &str, usize), &str>)] = &[
        (
            "default count",
            &["LMPOP", "1", "a", "LEFT"],
            Ok((1, "LEFT", 1)),
        ),
        (
            "count",
            &["LMPOP", "2", "a", "b", "right", "COUNT", "5"],
            Ok((2, "right", 5)),
        ),
        (
            "count zero",
            &["LMPOP", "1", "a", "LEFT", "COUNT", "0"],
            Err("ERR count should be greater than 0"),
        ),
        (
            "count twice",
            &["LMPOP", "1", "a", "LEFT", "COUNT", "1", "COUNT", "2"],
            Err("ERR syntax error"),
        ),
        (
            "count without value",
            &["LMPOP", "1", "a", "LEFT", "COUNT"],
            Err("ERR syntax error"),
        ),
        (
            "bad end before count",
            &["LMPOP", "1", "a", "UP", "COUNT", "0"],
            Err("ERR syntax error"),
        ),
        ("no end", &["LMPOP", "1", "a"], Err("ERR syntax error")),
        (
            "numkeys",
            &["LMPOP", "-1", "a", "LEFT"],
            Err("ERR numkeys should be greater than 0"),
        ),
    ];
    for (name, args, expected) in cases {
        let args = words(args);
        let parsed = parse_mpop(&args, 1, check_end)
            .map(|(keys, word, count)| (keys.len(), std::str::from_utf8(word).unwrap(), count))
            .map_err(|error| error.0.into_owned());
        assert_eq!(parsed, expected.map_err(str::to_owned), "{name}");
    }
}
