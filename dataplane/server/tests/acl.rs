//! ACL users against a real redis-server, side by side (Redis 7.0's rules, replies and NOPERM
//! errors): SETUSER with every rule and its errors, GETUSER, LIST's canonical rule strings,
//! CAT, DRYRUN, GENPASS's errors, LOG (its entries without the client-info and age, which name
//! the connection), `requirepass` as the default user's password; then what Ember checks alone:
//! the ACL file (SAVE, LOAD, start-up), a deleted user's connection, and the message transport.

mod common;
mod family_compare;

use common::{run, show, Ember, RedisOracle};
use family_compare::{compare_args, ArgCase};

/// Each case deletes its users first (users outlive a case) and leaves the default user as it
/// found it.
const SIDE_BY_SIDE: &[ArgCase] = arg_cases! {
    "setuser and getuser" => [
        ["ACL", "DELUSER", "alice", "bob"],
        ["ACL", "SETUSER", "alice"],
        ["ACL", "GETUSER", "alice"],
        ["ACL", "SETUSER", "alice", "on", ">p1", ">p2", "<p1", "~foo:*", "%R~r*", "%W~w*", "%RW~rw*", "&ch", "&ch:*", "+@all", "-@string", "-@dangerous"],
        ["ACL", "GETUSER", "alice"],
        ["ACL", "SETUSER", "alice", "%R~foo:*", "%W~r*"],
        ["ACL", "GETUSER", "alice"],
        ["ACL", "SETUSER", "alice", "#34344e4d60c2b6d639b7bd22e18f2b0b91bc34bf0ac5f9952744435093cfb4e6", "nopass"],
        ["ACL", "GETUSER", "alice"],
        ["ACL", "SETUSER", "alice", "resetpass", "resetkeys", "resetchannels", "allkeys", "allchannels"],
        ["ACL", "GETUSER", "alice"],
        ["ACL", "SETUSER", "alice", "reset"],
        ["ACL", "GETUSER", "alice"],
        ["ACL", "SETUSER", "alice", "skip-sanitize-payload", "on", "nocommands", "+select|0", "+select|1"],
        ["ACL", "GETUSER", "alice"],
        ["ACL", "SETUSER", "bob", "+@all", "-client|kill"],
        ["ACL", "GETUSER", "bob"],
        ["ACL", "SETUSER", "bob", "-@all", "+memory|doctor"],
        ["ACL", "GETUSER", "bob"],
        ["ACL", "SETUSER", "bob", "+memory"],
        ["ACL", "GETUSER", "bob"],
        ["ACL", "GETUSER", "nobody"],
        ["ACL", "GETUSER", "default"],
        ["ACL", "DELUSER", "alice", "bob", "nobody"],
    ],
    "selectors" => [
        ["ACL", "DELUSER", "sel"],
        ["ACL", "SETUSER", "sel", "on", "nopass", "-@all", "(+get ~read*)", "(", "+set", "~write*", ")"],
        ["ACL", "GETUSER", "sel"],
        ["ACL", "DRYRUN", "sel", "GET", "read1"],
        ["ACL", "DRYRUN", "sel", "GET", "write1"],
        ["ACL", "DRYRUN", "sel", "SET", "write1", "v"],
        ["ACL", "DRYRUN", "sel", "SET", "read1", "v"],
        ["ACL", "DRYRUN", "sel", "DEL", "read1"],
        ["ACL", "SETUSER", "sel", "(%R~a* +@all)", "(%W~b* +@all)"],
        ["ACL", "DRYRUN", "sel", "LMOVE", "a1", "b1", "LEFT", "RIGHT"],
        ["ACL", "DRYRUN", "sel", "COPY", "a1", "b1"],
        ["ACL", "SETUSER", "sel", "clearselectors"],
        ["ACL", "GETUSER", "sel"],
        ["ACL", "SETUSER", "sel", "(+get", "~x"],
        ["ACL", "SETUSER", "sel", "(+nosuch)"],
        ["ACL", "DELUSER", "sel"],
    ],
    "setuser errors" => [
        ["ACL", "DELUSER", "e"],
        ["ACL", "SETUSER", "a b"],
        ["ACL", "SETUSER", "e", "bogus"],
        ["ACL", "SETUSER", "e", "+nosuch"],
        ["ACL", "SETUSER", "e", "+@nosuch"],
        ["ACL", "SETUSER", "e", "#abc"],
        ["ACL", "SETUSER", "e", "#34344E4D60C2B6D639B7BD22E18F2B0B91BC34BF0AC5F9952744435093CFB4E6"],
        ["ACL", "SETUSER", "e", "<never-set"],
        ["ACL", "SETUSER", "e", "!34344e4d60c2b6d639b7bd22e18f2b0b91bc34bf0ac5f9952744435093cfb4e6"],
        ["ACL", "SETUSER", "e", "allkeys", "~foo"],
        ["ACL", "SETUSER", "e", "allchannels", "&foo"],
        ["ACL", "SETUSER", "e", "%X~foo"],
        ["ACL", "SETUSER", "e", "+config|get|appendonly"],
        ["ACL", "SETUSER", "e", "+config|asdf"],
        ["ACL", "SETUSER", "e", "-config|asdf"],
        ["ACL", "SETUSER", "e", "+get|key1|key2"],
        ["ACL", "SETUSER", "e", "-select|0"],
        ["ACL", "SETUSER", "e", "+debug|"],
        ["ACL", "GETUSER", "e"],
        ["ACL", "DELUSER", "default"],
        ["ACL", "DELUSER", "e"],
    ],
    "list" => [
        ["ACL", "DELUSER", "l1", "l2", "l3", "l4"],
        ["ACL", "SETUSER", "l1", "on", "nopass", "resetchannels", "&foo", "+@all"],
        ["ACL", "SETUSER", "l2", "off", "-@all", "+get", "resetchannels", "&channel1", "%R~foo1", "%W~bar1", "~baz1", "(-@all +set resetchannels &channel2 %R~foo2 %W~bar2 ~baz2)"],
        ["ACL", "SETUSER", "l3", ">secret", "+@all", "-@string", "-@geo", "~*"],
        ["ACL", "SETUSER", "l4", "-@all", "+@set", "+@sortedset", "+acl"],
        ["ACL", "LIST"],
        ["ACL", "USERS"],
        ["ACL", "DELUSER", "l1", "l2", "l3", "l4"],
        ["ACL", "LIST"],
    ],
    "cat" => [
        ["ACL", "CAT"],
        ["~ACL", "CAT", "set"],
        ["~ACL", "CAT", "sortedset"],
        ["~ACL", "CAT", "list"],
        ["~ACL", "CAT", "bitmap"],
        ["~ACL", "CAT", "geo"],
        ["~ACL", "CAT", "pubsub"],
        ["~ACL", "CAT", "blocking"],
        ["~ACL", "CAT", "transaction"],
        ["~ACL", "CAT", "scripting"],
        ["~ACL", "CAT", "SCRIPTING"],
        ["ACL", "CAT", "nosuch"],
        ["ACL", "CAT", "set", "extra"],
    ],
    "dryrun" => [
        ["ACL", "DELUSER", "d"],
        ["ACL", "SETUSER", "d", "+@all", "%R~read*", "%W~write*", "%RW~rw*", "resetchannels", "&news.*"],
        ["ACL", "DRYRUN", "d", "GET", "read"],
        ["ACL", "DRYRUN", "d", "GET", "write"],
        ["ACL", "DRYRUN", "d", "SET", "write", "v"],
        ["ACL", "DRYRUN", "d", "SET", "read", "v"],
        ["ACL", "DRYRUN", "d", "SET", "write", "v", "GET"],
        ["ACL", "DRYRUN", "d", "SET", "rw", "v", "GET"],
        ["ACL", "DRYRUN", "d", "HEXISTS", "read", "f"],
        ["ACL", "DRYRUN", "d", "HEXISTS", "nothing", "f"],
        ["ACL", "DRYRUN", "d", "SINTERCARD", "2", "read", "read"],
        ["ACL", "DRYRUN", "d", "SINTERCARD", "2", "write", "read"],
        ["ACL", "DRYRUN", "d", "ZUNIONSTORE", "write", "2", "read", "rw"],
        ["ACL", "DRYRUN", "d", "ZUNIONSTORE", "read", "2", "read", "rw"],
        ["ACL", "DRYRUN", "d", "SORT", "read", "STORE", "write"],
        ["ACL", "DRYRUN", "d", "SORT", "read", "STORE", "read"],
        ["ACL", "DRYRUN", "d", "LMOVE", "rw", "write", "LEFT", "RIGHT"],
        ["ACL", "DRYRUN", "d", "LMOVE", "read", "write", "LEFT", "RIGHT"],
        ["ACL", "DRYRUN", "d", "EVAL", "", "1", "rw1"],
        ["ACL", "DRYRUN", "d", "EVAL", "", "1", "read"],
        ["ACL", "DRYRUN", "d", "EVAL_RO", "", "1", "read"],
        ["ACL", "DRYRUN", "d", "PUBLISH", "news.1", "m"],
        ["ACL", "DRYRUN", "d", "PUBLISH", "sports", "m"],
        ["ACL", "DRYRUN", "d", "SUBSCRIBE", "news.1", "sports"],
        ["ACL", "DRYRUN", "d", "PSUBSCRIBE", "news.*"],
        ["ACL", "DRYRUN", "d", "PSUBSCRIBE", "news.1"],
        ["ACL", "DRYRUN", "d", "SPUBLISH", "other", "m"],
        ["ACL", "DRYRUN", "d", "UNSUBSCRIBE", "other"],
        ["ACL", "SETUSER", "d", "-@all", "+client|id", "+select|0"],
        ["ACL", "DRYRUN", "d", "CLIENT", "ID"],
        ["ACL", "DRYRUN", "d", "CLIENT", "KILL", "ID", "1"],
        ["ACL", "DRYRUN", "d", "SELECT", "0"],
        ["ACL", "DRYRUN", "d", "SELECT", "1"],
        ["ACL", "DRYRUN", "d", "AUTH", "x"],
        ["ACL", "DRYRUN", "nobody", "GET", "x"],
        ["ACL", "DRYRUN", "d", "NOSUCH", "x"],
        ["ACL", "DRYRUN", "d", "GET"],
        ["ACL", "DRYRUN", "d", "CLIENT", "NOSUCH"],
        ["ACL", "DELUSER", "d"],
    ],
    "noperm errors" => [
        ["ACL", "DELUSER", "u"],
        ["ACL", "SETUSER", "u", "on", ">pw", "~k:*", "resetchannels", "&news.*", "+@read", "+@write", "-del", "+multi", "+exec", "+discard", "+publish", "+subscribe", "+eval", "+client|setname", "+acl|whoami"],
        ["AUTH", "u", "wrong"],
        ["AUTH", "u", "pw"],
        ["ACL", "WHOAMI"],
        ["GET", "k:1"],
        ["GET", "other"],
        ["SET", "k:1", "v"],
        ["MSET", "k:1", "v", "other", "v"],
        ["DEL", "k:1"],
        ["CLIENT", "SETNAME", "n"],
        ["CLIENT", "KILL", "ID", "1"],
        ["ACL", "LIST"],
        ["PUBLISH", "news.a", "hi"],
        ["PUBLISH", "sports", "hi"],
        ["MULTI"],
        ["GET", "k:1"],
        ["GET", "other"],
        ["INCR", "other"],
        ["EXEC"],
        ["MULTI"],
        ["PUBLISH", "sports", "m"],
        ["DISCARD"],
        ["EVAL", "return redis.call('get','other')", "0"],
        ["EVAL", "return redis.call('del','k:1')", "0"],
        ["EVAL", "return redis.pcall('get','k:2')", "0"],
        ["AUTH", "default", "anything"],
        ["ACL", "WHOAMI"],
        ["ACL", "DELUSER", "u"],
    ],
    "requirepass is the default user's password" => [
        ["CONFIG", "SET", "requirepass", "secret"],
        ["ACL", "GETUSER", "default"],
        ["AUTH", "wrong"],
        ["AUTH", "secret"],
        ["AUTH", "default", "secret"],
        ["ACL", "SETUSER", "default", ">second"],
        ["AUTH", "second"],
        ["CONFIG", "GET", "requirepass"],
        ["CONFIG", "SET", "requirepass", ""],
        ["ACL", "GETUSER", "default"],
        ["AUTH", "anything"],
        ["ACL", "LIST"],
    ],
    "the default user can change" => [
        ["ACL", "SETUSER", "default", "-@hash", "+hget"],
        ["HSET", "h", "f", "v"],
        ["HGET", "h", "f"],
        ["ACL", "GETUSER", "default"],
        ["ACL", "SETUSER", "default", "+@all", "-flushdb"],
        ["FLUSHDB"],
        ["ACL", "SETUSER", "default", "resetkeys", "~app:*"],
        ["GET", "other"],
        ["GET", "app:1"],
        ["ACL", "SETUSER", "default", "reset", "on", "nopass", "~*", "&*", "+@all"],
        ["ACL", "LIST"],
    ],
    "genpass and help" => [
        ["ACL", "GENPASS", "-236"],
        ["ACL", "GENPASS", "5000"],
        ["ACL", "GENPASS", "0"],
        ["ACL", "GENPASS", "x"],
        ["ACL", "HELP", "x"],
        ["ACL", "WHOAMI", "x"],
        ["ACL", "NOSUCH"],
        ["ACL", "LOAD"],
        ["ACL", "SAVE"],
    ],
};

#[test]
fn acl_replies_match_redis_server() {
    compare_args(SIDE_BY_SIDE);
}

/// The same refusals on both servers, then ACL LOG compared entry by entry without the fields
/// that name the connection (client-info) or the moment (age-seconds).
#[test]
fn acl_log_matches_redis_server() {
    let Some(oracle) = RedisOracle::start() else {
        return;
    };
    let ember = Ember::start(2);
    let steps: &[&[&[u8]]] = &[
        &[b"ACL", b"LOG", b"RESET"],
        &[
            b"ACL",
            b"SETUSER",
            b"antirez",
            b">foo",
            b"on",
            b"+set",
            b"~object:1234",
        ],
        &[
            b"ACL", b"SETUSER", b"antirez", b"+eval", b"+multi", b"+exec",
        ],
        &[
            b"ACL",
            b"SETUSER",
            b"antirez",
            b"resetchannels",
            b"+publish",
        ],
        &[b"AUTH", b"antirez", b"wrong"],
        &[b"AUTH", b"antirez", b"foo"],
        &[b"GET", b"foo"],
        &[b"GET", b"foo"],
        &[b"GET", b"foo"],
        &[b"SET", b"somekeynotallowed", b"1234"],
        &[b"PUBLISH", b"somechannelnotallowed", b"nullmsg"],
        &[b"MULTI"],
        &[b"INCR", b"foo"],
        &[b"EXEC"],
        &[b"EVAL", b"redis.call('incr','foo')", b"0"],
        &[b"SCRIPT", b"HELP"],
        &[b"AUTH", b"default", b""],
    ];
    let mut logs = Vec::new();
    for port in [ember.port, oracle.port] {
        let mut con = common::connect(port, false);
        for step in steps {
            let _ = run(&mut con, step);
        }
        let log = run(&mut con, &[b"ACL", b"LOG"]);
        let Ok(redis::Value::Array(entries)) = log else {
            panic!("ACL LOG: {}", show(&log));
        };
        let shown: Vec<String> = entries
            .into_iter()
            .map(|entry| {
                let redis::Value::Array(fields) = entry else {
                    panic!("an entry is a map");
                };
                let kept: Vec<redis::Value> = fields
                    .chunks(2)
                    .filter(|pair| {
                        !matches!(&pair[0], redis::Value::BulkString(name)
                            if name == b"client-info" || name == b"age-seconds")
                    })
                    .flatten()
                    .cloned()
                    .collect();
                show(&Ok(redis::Value::Array(kept)))
            })
            .collect();
        assert_eq!(
            show(&run(&mut con, &[b"ACL", b"LOG", b"2"]))
                .matches("count")
                .count(),
            2
        );
        logs.push(shown);
    }
    assert_eq!(logs[0], logs[1]);
    assert!(logs[0].len() >= 7, "{:?}", logs[0]);
}

/// The rules GETUSER and LIST describe rebuild the same permissions: a user set from another
/// user's described rules is described alike (Redis orders single commands by its hash table, so
/// several single-command rules are compared here rather than side by side).
#[test]
fn described_rules_rebuild_the_same_user() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    let rule_sets: &[&[&str]] = &[
        &[
            "+@all",
            "-client|kill",
            "-config|set",
            "-get",
            "+@hash",
            "-hget",
        ],
        &[
            "-@all",
            "+get",
            "+client|id",
            "+select|0",
            "+select|1",
            "+@string",
            "-append",
        ],
        &[
            "-@all",
            "+@read",
            "-@fast",
            "+set",
            "+client|id",
            "+debug|object",
        ],
        &[
            "+@all",
            "-@dangerous",
            "+flushdb",
            "-@write",
            "+set",
            "+acl",
        ],
    ];
    for rules in rule_sets {
        let mut set: Vec<&[u8]> = vec![b"ACL", b"SETUSER", b"original", b"reset"];
        set.extend(rules.iter().map(|rule| rule.as_bytes()));
        assert_eq!(show(&run(&mut con, &set)), "+OK", "{rules:?}");
        let described = commands_of(&mut con, "original");
        let mut copy: Vec<&[u8]> = vec![b"ACL", b"SETUSER", b"copy", b"reset"];
        copy.extend(described.split(' ').map(str::as_bytes));
        assert_eq!(show(&run(&mut con, &copy)), "+OK", "{described}");
        assert_eq!(commands_of(&mut con, "copy"), described, "{rules:?}");
        for probe in [
            &[b"GET".as_slice(), b"k"][..],
            &[b"SET", b"k", b"v"],
            &[b"CLIENT", b"ID"],
            &[b"CLIENT", b"KILL", b"ID", b"1"],
            &[b"SELECT", b"1"],
            &[b"HSET", b"k", b"f", b"v"],
            &[b"FLUSHDB"],
        ] {
            let dry = |user: &[u8], con: &mut redis::Connection| {
                let mut args: Vec<&[u8]> = vec![b"ACL", b"DRYRUN", user];
                args.extend_from_slice(probe);
                show(&run(con, &args))
            };
            assert_eq!(
                dry(b"original", &mut con),
                dry(b"copy", &mut con),
                "{rules:?}"
            );
        }
    }
}

fn commands_of(con: &mut redis::Connection, user: &str) -> String {
    let reply = run(con, &[b"ACL", b"GETUSER", user.as_bytes()]);
    let Ok(redis::Value::Array(fields)) = reply else {
        panic!("GETUSER {user}: {}", show(&reply));
    };
    let position = fields
        .iter()
        .position(|field| matches!(field, redis::Value::BulkString(name) if name == b"commands"))
        .expect("a commands field");
    match &fields[position + 1] {
        redis::Value::BulkString(rules) => String::from_utf8(rules.clone()).unwrap(),
        other => panic!("commands: {other:?}"),
    }
}

/// A temporary directory for one test's files.
fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ember-acl-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// ACL SAVE writes what ACL LIST shows, ACL LOAD reads it back (and closes the connections of
/// the users it replaced), a server started with the file has the same users, and a file with
/// an error changes nothing.
#[test]
fn acl_file_saves_loads_and_starts_up() {
    let dir = scratch_dir("file");
    let path = dir.join("users.acl");
    std::fs::write(
        &path,
        "user alice on allcommands allkeys &* >alice\nuser bob on -@all +@set +acl ~set* &* >bob\n",
    )
    .unwrap();
    let path_text = path.to_str().unwrap();
    let ember = Ember::start_with(&["--threads", "2", "--aclfile", path_text]);
    let mut con = ember.connect(false);
    let users = show(&run(&mut con, &[b"ACL", b"USERS"]));
    assert_eq!(users, r#"["alice", "bob", "default"]"#);
    assert_eq!(show(&run(&mut con, &[b"AUTH", b"bob", b"bob"])), "+OK");
    assert_eq!(
        show(&run(&mut con, &[b"SET", b"k", b"v"])),
        "(error) NOPERM this user has no permissions to run the 'set' command"
    );
    assert_eq!(
        show(&run(&mut con, &[b"SADD", b"set1", b"a"])),
        "(integer) 1"
    );
    let mut admin = ember.connect(false);
    let created = run(
        &mut admin,
        &[
            b"ACL", b"SETUSER", b"eve", b"+get", b"allkeys", b">eve", b"on",
        ],
    );
    assert_eq!(show(&created), "+OK");
    let listed = show(&run(&mut admin, &[b"ACL", b"LIST"]));
    assert_eq!(show(&run(&mut admin, &[b"ACL", b"SAVE"])), "+OK");
    let saved = std::fs::read_to_string(&path).unwrap();
    assert_eq!(saved.lines().count(), 4, "{saved}");
    assert!(saved.contains("user eve on #"), "{saved}");
    // LOAD replaces bob: his connection closes at its next command.
    assert_eq!(show(&run(&mut admin, &[b"ACL", b"LOAD"])), "+OK");
    assert!(
        run(&mut con, &[b"PING"]).is_err(),
        "bob's connection stays open"
    );
    assert_eq!(show(&run(&mut admin, &[b"ACL", b"LIST"])), listed);
    // A duplicate user: the error names it and the users stay as they were.
    std::fs::write(&path, format!("{saved}user alice on nopass ~* -@all\n")).unwrap();
    let refused = show(&run(&mut admin, &[b"ACL", b"LOAD"]));
    assert!(
        refused.contains("Duplicate user 'alice' found"),
        "{refused}"
    );
    assert_eq!(show(&run(&mut admin, &[b"ACL", b"LIST"])), listed);
    // A server started with the saved file has the same users.
    std::fs::write(&path, &saved).unwrap();
    let restarted = Ember::start_with(&["--threads", "2", "--aclfile", path_text]);
    let mut fresh = restarted.connect(false);
    assert_eq!(show(&run(&mut fresh, &[b"ACL", b"LIST"])), listed);
    assert_eq!(show(&run(&mut fresh, &[b"AUTH", b"eve", b"eve"])), "+OK");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A connection whose user is deleted gets its DELUSER reply and is closed at its next command;
/// a new connection starts unauthenticated while the default user needs a password or is off.
#[test]
fn deleted_users_lose_their_connections_and_default_user_gates_new_ones() {
    let ember = Ember::start(2);
    let mut admin = ember.connect(false);
    let mut con = ember.connect(false);
    let created = run(
        &mut admin,
        &[b"ACL", b"SETUSER", b"using", b"on", b"+acl", b">passwd"],
    );
    assert_eq!(show(&created), "+OK");
    assert_eq!(show(&run(&mut con, &[b"AUTH", b"using", b"passwd"])), "+OK");
    assert_eq!(
        show(&run(&mut con, &[b"ACL", b"DELUSER", b"using"])),
        "(integer) 1"
    );
    assert!(run(&mut con, &[b"ACL", b"WHOAMI"]).is_err());
    let off = run(&mut admin, &[b"ACL", b"SETUSER", b"default", b"off"]);
    assert_eq!(show(&off), "+OK");
    let mut late = ember.connect(false);
    assert_eq!(
        show(&run(&mut late, &[b"PING"])),
        "(error) NOAUTH Authentication required."
    );
    let on = run(&mut admin, &[b"ACL", b"SETUSER", b"default", b"on"]);
    assert_eq!(show(&on), "+OK");
    let mut later = ember.connect(false);
    assert_eq!(show(&run(&mut later, &[b"PING"])), "+PONG");
}

/// CLIENT INFO's `user` and ACL LOG's client-info name the user a connection authenticated as
/// (then `default` again after RESET), as in Redis.
/// CLIENT's subcommands of Redis 7.2 (SETINFO, which redis-py 5 sends as it connects, and
/// NO-TOUCH) have their own bits in a user's rules, as the others have.
#[test]
fn client_subcommands_of_redis_7_2_in_rules() {
    let ember = Ember::start(1);
    let mut admin = ember.connect(false);
    let setuser: &[&[u8]] = &[
        b"ACL",
        b"SETUSER",
        b"lib",
        b"on",
        b">pw",
        b"-@all",
        b"+client|setinfo",
        b"+client|no-touch",
        b"+auth",
    ];
    assert_eq!(show(&run(&mut admin, setuser)), "+OK");
    let user = show(&run(&mut admin, &[b"ACL", b"GETUSER", b"lib"]));
    assert!(user.contains("+client|setinfo"), "{user}");
    let mut con = ember.connect(false);
    for (args, expected) in [
        (&[&b"AUTH"[..], b"lib", b"pw"][..], "+OK"),
        (&[b"CLIENT", b"SETINFO", b"LIB-NAME", b"redis-py"], "+OK"),
        (&[b"CLIENT", b"NO-TOUCH", b"ON"], "+OK"),
        (
            &[b"CLIENT", b"ID"],
            "(error) NOPERM this user has no permissions to run the 'client|id' command",
        ),
    ] {
        assert_eq!(show(&run(&mut con, args)), expected);
    }
}

#[test]
fn client_info_names_the_connections_user() {
    let Some(oracle) = RedisOracle::start() else {
        return;
    };
    let ember = Ember::start(2);
    let field = |line: &str, name: &str| -> String {
        line.split_whitespace()
            .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
            .unwrap_or("?")
            .to_string()
    };
    let mut seen = Vec::new();
    for port in [oracle.port, ember.port] {
        let mut con = common::connect(port, false);
        let mut steps = Vec::new();
        let info = |con: &mut redis::Connection| -> String {
            redis::cmd("CLIENT")
                .arg("INFO")
                .query(con)
                .expect("CLIENT INFO")
        };
        redis::cmd("ACL")
            .arg(&["SETUSER", "who", "on", ">pw", "+@all", "-debug", "~*"])
            .query::<()>(&mut con)
            .expect("SETUSER");
        redis::cmd("ACL")
            .arg("LOG")
            .arg("RESET")
            .query::<()>(&mut con)
            .expect("LOG RESET");
        steps.push(field(&info(&mut con), "user"));
        redis::cmd("AUTH")
            .arg("who")
            .arg("pw")
            .query::<()>(&mut con)
            .expect("AUTH");
        steps.push(field(&info(&mut con), "user"));
        let list: String = redis::cmd("CLIENT")
            .arg("LIST")
            .query(&mut con)
            .expect("CLIENT LIST");
        steps.push(field(&list, "user"));
        let refused = redis::cmd("DEBUG")
            .arg("SLEEP")
            .arg("0")
            .query::<()>(&mut con);
        steps.push(show(&refused.map(|()| redis::Value::Okay)));
        let log: Vec<redis::Value> = redis::cmd("ACL")
            .arg("LOG")
            .query(&mut con)
            .expect("ACL LOG");
        let text = common::show_value(&redis::Value::Array(log));
        let client_info = text
            .split("\"client-info\", \"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or("")
            .to_string();
        steps.push(field(&client_info, "user"));
        redis::cmd("RESET").query::<()>(&mut con).expect("RESET");
        steps.push(field(&info(&mut con), "user"));
        seen.push(steps);
    }
    assert_eq!(seen[0], seen[1], "redis, then ember");
    assert_eq!(seen[1][1], "who");
}

/// Passwords and user rules never reach the slow log: with every command logged, the arguments
/// Redis shows as `(redacted)` (AUTH, HELLO's AUTH, ACL SETUSER, CONFIG SET of a password,
/// MIGRATE's AUTH and AUTH2) are redacted on both servers alike, and no secret appears anywhere
/// in Ember's SLOWLOG GET.
#[test]
fn slow_log_redacts_secrets_as_redis_server() {
    let Some(oracle) = RedisOracle::start() else {
        return;
    };
    let ember = Ember::start(2);
    let steps: &[&[&[u8]]] = &[
        &[b"AUTH", b"sekrit-auth-1"],
        &[b"AUTH", b"someone", b"sekrit-auth-2"],
        &[b"HELLO", b"2", b"AUTH", b"default", b"sekrit-hello"],
        &[
            b"ACL",
            b"SETUSER",
            b"redactme",
            b"on",
            b">sekrit-acl",
            b"~*",
        ],
        &[b"ACL", b"DELUSER", b"redactme"],
        &[b"CONFIG", b"SET", b"masterauth", b"sekrit-config"],
        &[
            b"MIGRATE",
            b"127.0.0.1",
            b"1",
            b"nokey",
            b"0",
            b"100",
            b"AUTH",
            b"sekrit-migrate-1",
        ],
        &[
            b"MIGRATE",
            b"127.0.0.1",
            b"1",
            b"",
            b"0",
            b"100",
            b"AUTH2",
            b"u",
            b"sekrit-migrate-2",
            b"KEYS",
            b"nokey",
        ],
        &[b"GET", b"sekrit-is-a-key-here"],
    ];
    let mut logs = Vec::new();
    for port in [ember.port, oracle.port] {
        let mut con = common::connect(port, false);
        run(&mut con, &[b"SLOWLOG", b"RESET"]).expect("SLOWLOG RESET");
        run(
            &mut con,
            &[b"CONFIG", b"SET", b"slowlog-log-slower-than", b"0"],
        )
        .expect("CONFIG SET");
        for step in steps {
            let _ = run(&mut con, step);
        }
        run(
            &mut con,
            &[b"CONFIG", b"SET", b"slowlog-log-slower-than", b"-1"],
        )
        .expect("CONFIG SET");
        let log = run(&mut con, &[b"SLOWLOG", b"GET", b"100"]);
        let Ok(redis::Value::Array(entries)) = log else {
            panic!("SLOWLOG GET: {}", show(&log));
        };
        // Each entry: id, timestamp, duration, arguments, client address, client name. Oldest
        // first, without the commands that reset the log and turned it on.
        let mut shown: Vec<String> = entries
            .into_iter()
            .map(|entry| {
                let redis::Value::Array(fields) = entry else {
                    panic!("an entry is an array");
                };
                show(&Ok(fields[3].clone()))
            })
            // SLOWLOG RESET itself is logged when it takes long (a loaded machine).
            .filter(|args| {
                !args.contains("slowlog-log-slower-than") && !args.starts_with("[\"SLOWLOG\"")
            })
            .collect();
        shown.reverse();
        logs.push(shown);
    }
    let joined = logs[0].join("\n");
    assert!(
        joined.contains("sekrit-is-a-key-here"),
        "the slow log records commands:\n{joined}"
    );
    assert_eq!(
        joined.matches("sekrit-").count(),
        1,
        "a secret reached Ember's slow log (only the GET's key may show):\n{joined}"
    );
    assert_eq!(
        logs[0], logs[1],
        "Ember's slow log (left) against Redis's (right)"
    );
}

/// ACL CAT stream: Redis 7's stream commands, and the ones of Redis 8.2 and 8.6 Ember has too
/// (XDELEX, XACKDEL, XCFGSET), which the redis-server these tests start does not know.
#[test]
fn stream_category_is_redis_7s_and_the_newer_commands() {
    let Some(oracle) = RedisOracle::start() else {
        return;
    };
    let ember = Ember::start(2);
    let category = |con: &mut redis::Connection| -> Vec<String> {
        let mut names: Vec<String> = redis::cmd("ACL")
            .arg("CAT")
            .arg("stream")
            .query(con)
            .unwrap();
        names.sort();
        names
    };
    let mut expected = category(&mut oracle.connect(false));
    expected.extend(["xackdel", "xcfgset", "xdelex"].map(String::from));
    expected.sort();
    assert_eq!(category(&mut ember.connect(false)), expected);
}
