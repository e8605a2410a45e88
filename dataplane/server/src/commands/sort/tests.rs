use super::*;

fn words(line: &str) -> Vec<&[u8]> {
    line.split(' ').map(str::as_bytes).collect()
}

#[test]
fn keys_of_sort() {
    let cases: &[(&str, &[usize])] = &[
        ("sort abc", &[1]),
        ("sort abc store def", &[1, 3]),
        ("sort abc store invalid store stillbad store def", &[1, 7]),
        ("sort abc by store get store limit store 1", &[1]),
        ("sort abc limit 0 1 store d", &[1, 6]),
        ("sort abc store", &[1]),
    ];
    for (line, expected) in cases {
        assert_eq!(sort_keys(&words(line)), *expected, "{line}");
    }
    assert_eq!(sort_ro_keys(&words("sort_ro abc get x")), [1]);
}

#[test]
fn parses_options() {
    let request = parse(
        &words("sort k BY w_* LIMIT 1 2 GET # GET o_*->f DESC ALPHA STORE d"),
        Mode::ReadWrite,
    )
    .unwrap();
    assert_eq!(
        request,
        Request {
            descending: true,
            alpha: true,
            limit: Some((1, 2)),
            by: Some(b"w_*".as_slice()),
            no_sort: false,
            gets: vec![b"#".as_slice(), b"o_*->f".as_slice()],
            store: Some(b"d".as_slice()),
        }
    );
    // A BY without `*` means no sort, and stays so after a later BY with one.
    let request = parse(&words("sort k by nosort by w_*"), Mode::ReadWrite).unwrap();
    assert!(request.no_sort);
    let errors: &[(&str, Mode, &str)] = &[
        ("sort k store d", Mode::ReadOnly, errors::SYNTAX),
        ("sort k limit 1", Mode::ReadWrite, errors::SYNTAX),
        ("sort k limit x 1", Mode::ReadWrite, errors::NOT_INTEGER),
        ("sort k by", Mode::ReadWrite, errors::SYNTAX),
        ("sort k get", Mode::ReadWrite, errors::SYNTAX),
        ("sort k sideways", Mode::ReadWrite, errors::SYNTAX),
    ];
    for (line, mode, message) in errors {
        assert_eq!(
            parse(&words(line), *mode).unwrap_err().0,
            *message,
            "{line}"
        );
    }
}

#[test]
fn patterns() {
    let cases: &[(&str, Option<(&str, &str, Option<&str>)>)] = &[
        ("w_*", Some(("w_", "", None))),
        ("o_*->weight", Some(("o_", "", Some("weight")))),
        ("x:*->", Some(("x:", "->", None))),
        ("a*b->c->d", Some(("a", "b", Some("c->d")))),
        ("a->b*", Some(("a->b", "", None))),
        ("nosort", None),
        ("#", None),
    ];
    for (text, expected) in cases {
        let parsed = Pattern::parse(text.as_bytes());
        let expected = expected.map(|(prefix, suffix, field)| Pattern {
            prefix: prefix.as_bytes(),
            suffix: suffix.as_bytes(),
            field: field.map(str::as_bytes),
        });
        assert_eq!(parsed, expected, "{text}");
    }
    assert_eq!(Pattern::parse(b"o_*_x->f").unwrap().key_for(b"7"), b"o_7_x");
}

#[test]
fn which_requests_read_other_keys() {
    let cases: &[(&str, bool)] = &[
        ("sort k", false),
        ("sort k by nosort", false),
        ("sort k get #", false),
        ("sort k get foo", false),
        ("sort k by w_*", true),
        ("sort k by nosort get o_*->f", true),
        ("sort k by nosort by w_*", false),
        ("sort k by w_* sideways", false),
    ];
    for (line, expected) in cases {
        assert_eq!(uses_patterns(&words(line)), *expected, "{line}");
    }
    let mut list = ListValue::new();
    list.push(End::Back, &[b"1", b"2"], &Default::default());
    let value = Value::List(list);
    assert_eq!(
        pattern_keys(&words("sort k by w_* get # get o_*->f"), &value),
        [
            b"o_1".to_vec(),
            b"o_2".to_vec(),
            b"w_1".to_vec(),
            b"w_2".to_vec()
        ]
    );
    assert!(pattern_keys(&words("sort k"), &value).is_empty());
}

#[test]
fn limits_clamp_as_redis() {
    let cases: &[(Option<(i64, i64)>, usize, (i64, i64))] = &[
        (None, 5, (0, 4)),
        (Some((0, 1)), 5, (0, 0)),
        (Some((5, 10)), 5, (4, 3)),
        (Some((-10, 100)), 5, (0, 4)),
        (Some((2, -5)), 5, (2, 4)),
        (Some((2, i64::MAX)), 3, (2, 2)),
        (Some((i64::MAX, i64::MAX)), 3, (2, 1)),
        (None, 0, (-1, -2)),
    ];
    for (limit, len, expected) in cases {
        assert_eq!(output_range(*limit, *len), *expected, "{limit:?} of {len}");
    }
}

#[test]
fn scores_read_as_strtod() {
    let cases: &[(&str, Option<f64>)] = &[
        ("1.5", Some(1.5)),
        ("", Some(0.0)),
        ("  7", Some(7.0)),
        ("-3", Some(-3.0)),
        ("1e3", Some(1000.0)),
        ("inf", Some(f64::INFINITY)),
        ("-Infinity", Some(f64::NEG_INFINITY)),
        ("0x10", Some(16.0)),
        (".5", Some(0.5)),
        ("0", Some(0.0)),
        ("0e5", Some(0.0)),
        ("nan", None),
        ("1e400", None),
        ("1e-400", None),
        ("7 ", None),
        (" ", None),
        ("not-a-double", None),
        ("1_0", None),
        ("0x", None),
        ("\0\0\0", Some(0.0)),
        ("12\0abc", Some(12.0)),
        (" \0", None),
    ];
    for (text, expected) in cases {
        assert_eq!(parse_score(text.as_bytes()), *expected, "{text:?}");
    }
}
