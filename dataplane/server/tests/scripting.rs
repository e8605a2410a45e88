//! Lua scripting and functions through the redis crate, against `--threads 2` (keys on both
//! shards): replies and errors compared with a real redis-server 7 for a table of scripts,
//! EVALSHA and SCRIPT, the sandbox, atomicity across shards, undeclared keys, a job-queue
//! script with cjson, SCRIPT KILL past the threshold, and FUNCTION / FCALL.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

mod family_compare;

use common::{run, show, Ember, RedisOracle};
use ember_store::slot::key_slot;
use family_compare::compare_args;

/// Shard that owns `key` in a server of `shard_count` shards: slots split in equal ranges.
fn owner(key: &str, shard_count: usize) -> usize {
    usize::from(key_slot(key.as_bytes())) * shard_count / 16384
}

/// Two keys named `prefix:i`, the first on shard 0 and the second on shard 1.
fn keys_on_both_shards(prefix: &str) -> (String, String) {
    let keys: Vec<String> = (0..64).map(|i| format!("{prefix}:{i}")).collect();
    let low = keys
        .iter()
        .find(|k| owner(k, 2) == 0)
        .expect("a key on shard 0");
    let high = keys
        .iter()
        .find(|k| owner(k, 2) == 1)
        .expect("a key on shard 1");
    (low.clone(), high.clone())
}

fn eval(con: &mut redis::Connection, script: &str, keys: &[&str], args: &[&str]) -> String {
    let mut request: Vec<&[u8]> = vec![b"EVAL", script.as_bytes()];
    let count = keys.len().to_string();
    request.push(count.as_bytes());
    request.extend(keys.iter().map(|k| k.as_bytes()));
    request.extend(args.iter().map(|a| a.as_bytes()));
    show(&run(con, &request))
}

/// Scripts whose replies (values and errors) must be Redis's, byte for byte.
const SCRIPTS: &[(&str, &str)] = &[
    ("integer", "return 42"),
    ("float truncated", "return 3.99"),
    ("negative float truncated", "return -3.7"),
    ("string", "return 'abc'"),
    ("true", "return true"),
    ("false", "return false"),
    ("nil", "return nil"),
    ("array stops at nil", "return {1, 2, nil, 4}"),
    ("status", "return {ok='fine'}"),
    ("error table", "return {err='x y'}"),
    ("nested", "return {1, {2, 'x'}, {ok='o'}, {err='e'}}"),
    ("mixed", "return {1.5, true, false, 'z'}"),
    ("empty table", "return {}"),
    ("status_reply", "return redis.status_reply('S')"),
    ("error_reply", "return redis.error_reply('ERR x')"),
    ("error_reply without code", "return redis.error_reply('e1')"),
    ("sha1hex", "return redis.sha1hex('')"),
    ("constants", "return tostring(redis.REPL_ALL) .. redis.LOG_WARNING"),
    ("replicate_commands", "return redis.replicate_commands()"),
    ("set_repl", "return redis.set_repl(redis.REPL_NONE)"),
    ("cjson encode", "return cjson.encode({1, 2, 3, 'a/b'})"),
    ("cjson decode", "return cjson.decode('[1,2,{\"x\":3}]')[3].x"),
    ("cjson empty", "return cjson.encode({})"),
    ("cjson float", "return cjson.encode(1.5)"),
    ("cjson null", "return type(cjson.null)"),
    ("bit", "return {bit.band(7, 3), bit.bor(1, 2), bit.bxor(5, 1), bit.lshift(1, 4), bit.tohex(255)}"),
    ("cmsgpack pack", "return cmsgpack.pack({1, -1, 300, -300, 70000, 'abc', 1.5, 0.1, true, false, {a = 1}})"),
    ("cmsgpack round trip", "local t = cmsgpack.unpack(cmsgpack.pack({1, 'two', {3}})) return {t[1], t[2], t[3][1]}"),
    ("cmsgpack several", "return {cmsgpack.unpack(cmsgpack.pack(1, 2, 3))}"),
    ("cmsgpack long string", "return cmsgpack.pack(string.rep('x', 40))"),
    ("setresp 3 nil", "redis.setresp(3) return redis.call('get', 'no-such-key') == nil"),
    ("setresp 3 double", "redis.setresp(3) redis.call('zadd', 'conversion-zset3', 2.5, 'm') return tostring(redis.call('zscore', 'conversion-zset3', 'm').double)"),
    ("struct pack", "return struct.pack('>I2', 258) .. struct.pack('<i', -2) .. struct.pack('B', 255)"),
    ("struct unpack", "return {struct.unpack('>I2<hb', struct.pack('>I2<hb', 258, -3, -1))}"),
    ("struct size", "return struct.size('>I2ihd')"),
    ("huge number", "return 1e20"),
    ("not a number", "return 0/0"),
    ("huge in a table", "return {1e20, -1e20}"),
    ("cjson sparse", "local t = {} t[1] = 1 t[2] = 2 t[4] = 4 return cjson.encode(t)"),
    ("cjson nested empty", "return cjson.encode({a = {b = {}}})"),
    ("cjson decode null", "return cjson.decode('{\"a\":null}').a == cjson.null"),
    ("pcall of a failing call", "return {pcall(redis.call, 'nosuch')}"),
    ("KEYS and ARGV", "return {#KEYS, #ARGV}"),
    ("call ok", "return redis.call('set', 'conversion-key', 'v')"),
    ("call get", "return redis.call('get', 'conversion-key')"),
    ("call nil", "return redis.call('get', 'no-such-key')"),
    ("call integer", "return redis.call('incr', 'conversion-counter')"),
    ("call array", "redis.call('sadd', 'conversion-set', 'a') return redis.call('smembers', 'conversion-set')"),
    ("call zset", "redis.call('zadd', 'conversion-zset', 1.5, 'm') return redis.call('zrange', 'conversion-zset', 0, -1, 'withscores')"),
    ("pcall error", "return redis.pcall('incr', 'conversion-key')"),
    ("number argument", "return redis.call('set', 'conversion-number', 1.5)"),
    ("_VERSION", "return _VERSION"),
    // Errors.
    ("unknown command", "return redis.call('nosuch')"),
    ("wrong arity", "return redis.call('set', 'a')"),
    ("command error", "return redis.call('incr', 'conversion-key')"),
    ("no arguments", "return redis.call()"),
    ("bad argument", "return redis.call({})"),
    ("noscript command", "return redis.call('eval', 'return 1', 0)"),
    ("runtime error", "error('boom')"),
    ("error table raised", "error({err='My Error'})"),
    ("global write", "x = 1"),
    ("global read", "return undefined_global"),
    ("setresp", "return redis.setresp(4)"),
    ("compile error", "syntax error here"),
    ("error on line 2", "local a = 1\nreturn redis.call('incr', 'conversion-key')"),
    // Where an error was raised: the innermost Lua frame, not the line its message names.
    ("error level 2 in a function", "local function f() error('x', 2) end\nf()"),
    ("error level 0 in a function", "local function f()\n error('x', 0)\nend\n\nf()"),
    ("runtime error in a function", "local function f()\n return nil + 1\nend\nf()"),
    ("failed call in a function", "local function f()\n redis.call('nosuch')\nend\nf()"),
    ("error table in a function", "local function f()\n error({err='X y'})\nend\nf()"),
    ("error in a loadstring chunk", "return loadstring('error(\"x\")')()"),
    ("pcall of error at level 2", "local ok, e = pcall(error, 'x', 2) return e"),
];

#[test]
fn replies_and_errors_match_redis() {
    let Some(oracle) = RedisOracle::start() else {
        return;
    };
    let ember = Ember::start(2);
    for resp3 in [false, true] {
        let mut ours = ember.connect(resp3);
        let mut theirs = oracle.connect(resp3);
        for (name, script) in SCRIPTS {
            let expected = eval(&mut theirs, script, &[], &[]);
            let actual = eval(&mut ours, script, &[], &[]);
            assert_eq!(actual, expected, "{name} (resp3: {resp3}): {script}");
        }
    }
}

/// Calls on a key of the other shard wait for it (the script's coroutine yields, and the run
/// resumes it with the reply or raises the error): values, errors and their lines, `pcall` and
/// `redis.pcall` must be Redis's as for a key of the script's own shard. Each script runs from
/// connections on both shards, with its keys on both, against redis-server.
#[test]
fn calls_that_wait_for_the_other_shard_match_redis() {
    let Some(oracle) = RedisOracle::start() else {
        return;
    };
    let ember = Ember::start(2);
    let (low, high) = keys_on_both_shards("waited");
    let scripts: &[&str] = &[
        "redis.call('set', KEYS[1], 'abc') return redis.call('get', KEYS[1])",
        // An error raised after the wait names the call's line, not the next instruction's.
        "redis.call('set', KEYS[1], 'abc')\nlocal x = redis.call('incr', KEYS[1])\n\n\nreturn x",
        "redis.call('set', KEYS[1], 'abc')\nreturn redis.call('incr', KEYS[1])",
        "redis.call('set', KEYS[1], 'abc')\nlocal ok, e = pcall(redis.call, 'incr', KEYS[1])\n\
         return {tostring(ok), e.err}",
        "redis.call('set', KEYS[1], 'abc')\nlocal ok, e = pcall(function()\n\
         return redis.call('incr', KEYS[1]) end)\nreturn {tostring(ok), tostring(e)}",
        "redis.call('set', KEYS[1], 'abc')\nlocal e = redis.pcall('incr', KEYS[1])\n\
         return {e.err, 7}",
        "redis.call('set', KEYS[1], 'abc')\nreturn redis.pcall('incr', KEYS[1])",
        "redis.call('del', KEYS[1]) redis.call('rpush', KEYS[1], 'a', 'b')\n\
         local ok, v = pcall(redis.call, 'lrange', KEYS[1], 0, -1)\nreturn {tostring(ok), v}",
        "redis.call('del', KEYS[1])\nreturn redis.call('lrange', KEYS[1], 0, -1, 'x')",
        "local t = {}\nfor i = 1, 6 do t[i] = redis.pcall('incrby', KEYS[1 + i % 2], i) end\n\
         return t",
        // Inside the script's own coroutines a call answers as anywhere else, and their own
        // yields, values and errors stay theirs.
        "redis.call('set', KEYS[1], 'a') redis.call('set', KEYS[2], 'b')\n\
         local f = coroutine.wrap(function() local v = redis.call('get', KEYS[1])\n\
         coroutine.yield(v) return redis.call('get', KEYS[2]) end)\nreturn {f(), f()}",
        "redis.call('set', KEYS[1], 'a')\nlocal co = coroutine.create(function(x)\n\
         local y = coroutine.yield(redis.call('get', KEYS[1]) .. x)\n\
         return redis.call('incrby', KEYS[2], y) end)\nlocal a, b = coroutine.resume(co, '!')\n\
         local c, d = coroutine.resume(co, 5)\n\
         return {tostring(a), b, tostring(c), d, coroutine.status(co)}",
        "local x = coroutine.wrap(function() redis.call('get', KEYS[1]) error('x') end)()\n\
         return x",
        "local f = coroutine.wrap(function() return redis.call('get', KEYS[2]) end)\nf()\n\
         local y = f()\nreturn y",
        "redis.call('set', KEYS[1], 'a')\nlocal co = coroutine.create(function()\n\
         return redis.call('incr', KEYS[1]) end)\nlocal ok, e = coroutine.resume(co)\n\
         return {tostring(ok), coroutine.status(co)}",
    ];
    for _ in 0..4 {
        // New connections land on either shard.
        let mut ours = ember.connect(false);
        let mut theirs = oracle.connect(false);
        for script in scripts {
            for keys in [[low.as_str(), high.as_str()], [high.as_str(), low.as_str()]] {
                for con in [&mut ours, &mut theirs] {
                    run(con, &[b"DEL", low.as_bytes(), high.as_bytes()]).unwrap();
                }
                let expected = eval(&mut theirs, script, &keys, &[]);
                let actual = eval(&mut ours, script, &keys, &[]);
                assert_eq!(actual, expected, "{script} with keys {keys:?}");
            }
        }
    }
}

/// A call that waits for the other shard leaves no garbage behind when its reply is a number
/// or a string Lua holds already: 3,000 scripts on a key of each shard keep the interpreter's memory where it
/// was (Redis's unit/scripting asks for `used_memory_lua` under 100 KB after 10,000 EVALs of
/// INCR, and an interpreter doubles its memory before it collects).
#[test]
fn calls_that_wait_leave_no_garbage() {
    let ember = Ember::start(2);
    let (low, high) = keys_on_both_shards("garbage");
    let mut con = ember.connect(false);
    let lua_memory = |con: &mut redis::Connection| -> i64 {
        let info: String = redis::cmd("INFO").arg("memory").query(con).unwrap();
        info.lines()
            .find_map(|line| line.strip_prefix("used_memory_lua:"))
            .expect("used_memory_lua in INFO memory")
            .trim()
            .parse()
            .unwrap()
    };
    // An integer reply, then a string one whose few values Lua interns once.
    let script = "redis.call('incr', KEYS[1]) return redis.call('getrange', KEYS[1], 0, 0)";
    eval(&mut con, script, &[&low], &[]);
    eval(&mut con, script, &[&high], &[]);
    let rest = lua_memory(&mut con);
    for key in [&low, &high] {
        let mut pipe = redis::pipe();
        for _ in 0..3000 {
            pipe.cmd("EVAL").arg(script).arg(1).arg(key);
        }
        let _: Vec<String> = pipe.query(&mut con).unwrap();
        let now = lua_memory(&mut con);
        assert!(
            now <= rest + 4096,
            "used_memory_lua {now} after 3,000 scripts on {key}, {rest} before"
        );
    }
}

#[test]
fn numkeys_errors_and_evalsha() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "too many keys",
            &["EVAL", "return 1", "2", "a"],
            "(error) ERR Number of keys can't be greater than number of args",
        ),
        (
            "negative keys",
            &["EVAL", "return 1", "-1"],
            "(error) ERR Number of keys can't be negative",
        ),
        (
            "keys not a number",
            &["EVAL", "return 1", "x"],
            "(error) ERR value is not an integer or out of range",
        ),
        (
            "unknown sha",
            &["EVALSHA", "ffffffffffffffffffffffffffffffffffffffff", "0"],
            "(error) NOSCRIPT No matching script. Please use EVAL.",
        ),
        (
            "short sha",
            &["EVALSHA", "abc", "0"],
            "(error) NOSCRIPT No matching script. Please use EVAL.",
        ),
    ];
    for (name, request, expected) in cases {
        let request: Vec<&[u8]> = request.iter().map(|a| a.as_bytes()).collect();
        assert_eq!(show(&run(&mut con, &request)), *expected, "{name}");
    }
    let sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg("return ARGV[1]")
        .query(&mut con)
        .unwrap();
    assert_eq!(sha.len(), 40);
    let value: String = redis::cmd("EVALSHA")
        .arg(&sha)
        .arg(0)
        .arg("hello")
        .query(&mut con)
        .unwrap();
    assert_eq!(value, "hello");
    let upper: String = redis::cmd("EVALSHA")
        .arg(sha.to_uppercase())
        .arg(0)
        .arg("x")
        .query(&mut con)
        .unwrap();
    assert_eq!(upper, "x", "a SHA1 in capitals names the same script");
    // EVAL caches its script: EVALSHA finds it, on any connection (any shard).
    let _: i64 = redis::cmd("EVAL")
        .arg("return 7")
        .arg(0)
        .query(&mut con)
        .unwrap();
    let seven_sha = "0e1c4a5a7e1d7f6f0d1b4f5b3c2e3c8b7b3c8d4e"; // Not its SHA1: stays unknown.
    let exists: Vec<i64> = redis::cmd("SCRIPT")
        .arg("EXISTS")
        .arg(&sha)
        .arg(seven_sha)
        .query(&mut con)
        .unwrap();
    assert_eq!(exists, vec![1, 0]);
    for _ in 0..4 {
        let mut other = ember.connect(false);
        let value: String = redis::cmd("EVALSHA")
            .arg(&sha)
            .arg(0)
            .arg("everywhere")
            .query(&mut other)
            .unwrap();
        assert_eq!(value, "everywhere");
    }
    let _: () = redis::cmd("SCRIPT").arg("FLUSH").query(&mut con).unwrap();
    let exists: Vec<i64> = redis::cmd("SCRIPT")
        .arg("EXISTS")
        .arg(&sha)
        .query(&mut con)
        .unwrap();
    assert_eq!(exists, vec![0]);
    let error = redis::cmd("EVALSHA")
        .arg(&sha)
        .arg(0)
        .query::<String>(&mut con)
        .unwrap_err();
    assert_eq!(error.code(), Some("NOSCRIPT"));
    let read_only = show(&run(
        &mut con,
        &[
            b"EVAL_RO",
            b"return redis.call('set', KEYS[1], 1)",
            b"1",
            b"k",
        ],
    ));
    assert!(
        read_only.starts_with("(error) ERR Write commands are not allowed from read-only scripts."),
        "{read_only}"
    );
    let shebang = show(&run(
        &mut con,
        &[
            b"EVAL",
            b"#!lua flags=no-writes\nreturn redis.call('set', KEYS[1], 1)",
            b"1",
            b"k",
        ],
    ));
    assert!(shebang.ends_with("on @user_script:2."), "{shebang}");
    let bad_flag = show(&run(
        &mut con,
        &[b"EVAL", b"#!lua flags=bogus\nreturn 1", b"0"],
    ));
    assert_eq!(
        bad_flag,
        "(error) ERR Unexpected flag in script shebang: bogus"
    );
}

#[test]
fn the_sandbox_holds() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    let cases: &[(&str, &str, &str)] = &[
        ("os.execute", "return os.execute", "(nil)"),
        ("io", "return io", "(error) ERR user_script:1: Script attempted to access nonexistent global variable 'io'"),
        ("loadfile", "return loadfile", "(error) ERR user_script:1: Script attempted to access nonexistent global variable 'loadfile'"),
        ("dofile", "return dofile", "(error) ERR user_script:1: Script attempted to access nonexistent global variable 'dofile'"),
        ("require", "return require", "(error) ERR user_script:1: Script attempted to access nonexistent global variable 'require'"),
        ("global write", "leak = 1", "(error) ERR user_script:1: Attempt to modify a readonly table"),
        ("library write", "string.leak = 1", "(error) ERR user_script:1: Attempt to modify a readonly table"),
        ("redis write", "redis.call = nil", "(error) ERR user_script:1: Attempt to modify a readonly table"),
        ("rawset on _G", "rawset(_G, 'leak', 1)", "(error) ERR user_script:1: Attempt to modify a readonly table"),
        ("loadstring writes", "loadstring('leak = 1')()", "(error) ERR"),
        ("metatable", "setmetatable(_G, {})", "(error) ERR Attempt to modify a readonly table"),
    ];
    for (name, script, expected) in cases {
        let reply = eval(&mut con, script, &[], &[]);
        assert!(reply.starts_with(expected), "{name}: {reply}");
    }
    assert_eq!(
        eval(&mut con, "return type(os.clock())", &[], &[]),
        "\"number\""
    );
    assert_eq!(
        eval(
            &mut con,
            "local leak = 1 return rawget(_G, 'leak')",
            &[],
            &[]
        ),
        "(nil)",
        "nothing leaks from one script into the next"
    );
}

/// `error`, `rawget`, `next` and `pairs` as Redis 7.0.15's scripts see them (each reply checked
/// against redis-server): `return error(...)` keeps the script's line, and the read-only `_G`
/// and libraries are tables for the raw functions.
#[test]
fn base_functions_answer_as_redis() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    let cases: &[(&str, &str)] = &[
        (
            "return error('boom')",
            "(error) ERR user_script:1: boom script: ",
        ),
        (
            "local x = 1\nerror('boom')",
            "(error) ERR user_script:2: boom script: ",
        ),
        (
            "return error({err='MY custom'})",
            "(error) MY custom script: ",
        ),
        ("local ok, e = pcall(error, 'x') return e", "\"x\""),
        (
            "local ok, e = pcall(function() error('x') end) return e",
            "\"user_script:1: x\"",
        ),
        ("local ok, e = pcall(error) return tostring(e)", "\"nil\""),
        // Level 2 from a C function called by pcall is the script's line; the sandbox's own
        // pcall wrapper is not counted.
        (
            "local ok, e = pcall(error, 'x', 2) return e",
            "\"user_script:1: x\"",
        ),
        ("local ok, e = pcall(error, 'x', 3) return e", "\"x\""),
        (
            "local function f() error('x', 2) end\nlocal ok, e = pcall(f) return e",
            "\"x\"",
        ),
        (
            "local function f() error('x', 2) end\nf()",
            "(error) ERR user_script:2: x script: ",
        ),
        ("return type(rawget(_G, 'tonumber'))", "\"function\""),
        ("return type(rawget(string, 'len'))", "\"function\""),
        ("return type(next(_G))", "\"string\""),
        (
            "local n = 0 for _ in pairs(_G) do n = n + 1 end return n > 20",
            "(integer) 1",
        ),
        (
            "local t = {a = 1, b = 2} local n = 0 for _, v in pairs(t) do n = n + v end return n",
            "(integer) 3",
        ),
        (
            "return pairs(nil)",
            "(error) ERR user_script:1: bad argument #1 to 'pairs' (table expected, got nil)",
        ),
        (
            "return rawget(nil, 1)",
            "(error) ERR user_script:1: bad argument #1 to 'rawget' (table expected, got nil)",
        ),
    ];
    for (script, expected) in cases {
        let reply = eval(&mut con, script, &[], &[]);
        assert!(reply.starts_with(expected), "{script}: {reply}");
    }
    assert!(
        eval(&mut con, "return error('boom')", &[], &[]).ends_with("on @user_script:1."),
        "the reply names the script's line"
    );
}

#[test]
fn scripts_are_atomic_across_shards() {
    let ember = Ember::start(2);
    let (low, high) = keys_on_both_shards("atomic");
    let mut writer = ember.connect(false);
    let script = "redis.call('incr', KEYS[1]) redis.call('incr', KEYS[2]) return 1";
    let reader = {
        let port = ember.port;
        let (low, high) = (low.clone(), high.clone());
        std::thread::spawn(move || {
            let mut con = common::connect(port, false);
            let mut reads = 0;
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline {
                let values: Vec<Option<i64>> = redis::cmd("MGET")
                    .arg(&low)
                    .arg(&high)
                    .query(&mut con)
                    .unwrap();
                assert_eq!(values[0], values[1], "a reader saw half a script");
                let seen: Vec<Option<i64>> = redis::cmd("EVAL")
                    .arg("return {redis.call('get', KEYS[1]), redis.call('get', KEYS[2])}")
                    .arg(2)
                    .arg(&low)
                    .arg(&high)
                    .query(&mut con)
                    .unwrap();
                assert_eq!(seen[0], seen[1], "a reading script saw half a script");
                reads += 1;
            }
            reads
        })
    };
    let mut writes = 0;
    while !reader.is_finished() {
        let _: i64 = redis::cmd("EVAL")
            .arg(script)
            .arg(2)
            .arg(&low)
            .arg(&high)
            .query(&mut writer)
            .unwrap();
        writes += 1;
    }
    assert!(reader.join().unwrap() > 0);
    let values: Vec<i64> = redis::cmd("MGET")
        .arg(&low)
        .arg(&high)
        .query(&mut writer)
        .unwrap();
    assert_eq!(values, vec![writes, writes]);
}

#[test]
fn undeclared_keys_on_other_shards_work() {
    let ember = Ember::start(2);
    let (low, high) = keys_on_both_shards("undeclared");
    for attempt in 0..6 {
        // New connections land on either shard; each must see both keys.
        let mut con = ember.connect(false);
        let script = "redis.call('incr', ARGV[1]) redis.call('incr', ARGV[2]) \
                      return {redis.call('get', ARGV[1]), redis.call('get', ARGV[2])}";
        let values: Vec<i64> = redis::cmd("EVAL")
            .arg(script)
            .arg(0)
            .arg(&low)
            .arg(&high)
            .query(&mut con)
            .unwrap();
        assert_eq!(values, vec![attempt + 1, attempt + 1]);
        let reversed: Vec<i64> = redis::cmd("EVAL")
            .arg("return {redis.call('incrby', ARGV[2], 0), redis.call('incrby', ARGV[1], 0)}")
            .arg(0)
            .arg(&low)
            .arg(&high)
            .query(&mut con)
            .unwrap();
        assert_eq!(reversed, vec![attempt + 1, attempt + 1]);
    }
    let owners: BTreeSet<usize> = [owner(&low, 2), owner(&high, 2)].into();
    assert_eq!(owners.len(), 2);
    // Declared keys, then an undeclared one after writing, in both orders, from connections on
    // either shard.
    for (declared, undeclared) in [(&low, &high), (&high, &low)] {
        for _ in 0..6 {
            let mut con = ember.connect(false);
            let value: i64 = redis::cmd("EVAL")
                .arg("redis.call('set', KEYS[1], 5) return redis.call('incrby', ARGV[1], 0)")
                .arg(1)
                .arg(declared)
                .arg(undeclared)
                .query(&mut con)
                .unwrap();
            assert!(value >= 5);
        }
    }
}

/// A job queue's script (dramatiq's broker) declares its namespace and builds every other key
/// from it, writing one first. On two shards, with the namespace and the first key it writes on
/// shard 1 and later keys on shard 0, a run that held shard 1 alone used to write and then find
/// shard 0 held by a cross-shard MSET: the call failed ("busy with another operation after
/// writing"). Now its first write of an undeclared key takes every shard first. Each run here
/// is a new script (a new SHA), which Ember has not seen, under MSETs across both shards.
#[test]
fn scripts_that_build_key_names_under_contention() {
    let ember = Ember::start(2);
    let namespace = (0..1000)
        .map(|i| format!("ns{i}"))
        .find(|ns| owner(ns, 2) == 1 && owner(&format!("{ns}:hb"), 2) == 1)
        .expect("a namespace on shard 1 with its first key there too");
    let built: Vec<String> = (0..8).map(|i| format!("{namespace}:q{i}")).collect();
    assert!(built.iter().any(|key| owner(key, 2) == 0));
    let (low, high) = keys_on_both_shards("contended");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let port = ember.port;
    let writers: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            let (low, high) = (low.clone(), high.clone());
            std::thread::spawn(move || {
                let mut con = common::connect(port, false);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _: () = redis::cmd("MSET")
                        .arg(&low)
                        .arg(1)
                        .arg(&high)
                        .arg(2)
                        .query(&mut con)
                        .unwrap();
                }
            })
        })
        .collect();
    let runs_per_thread = 150;
    let runners: Vec<_> = (0..3)
        .map(|thread| {
            let namespace = namespace.clone();
            std::thread::spawn(move || {
                for run in 0..runs_per_thread {
                    // New connections land on either shard.
                    let mut con = common::connect(port, false);
                    let script = format!(
                        "redis.call('incr', KEYS[1] .. ':hb') \
                         for i = 0, 7 do redis.call('incr', KEYS[1] .. ':q' .. i) end \
                         return 1 -- thread {thread} run {run}"
                    );
                    let reply: redis::RedisResult<i64> = redis::cmd("EVAL")
                        .arg(&script)
                        .arg(1)
                        .arg(&namespace)
                        .query(&mut con);
                    assert_eq!(reply, Ok(1), "thread {thread} run {run}");
                }
            })
        })
        .collect();
    let results: Vec<_> = runners.into_iter().map(|runner| runner.join()).collect();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for writer in writers {
        writer.join().unwrap();
    }
    for result in results {
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    }
    let mut con = ember.connect(false);
    let expected = 3 * runs_per_thread;
    for key in std::iter::once(format!("{namespace}:hb")).chain(built) {
        let value: i64 = redis::cmd("GET").arg(&key).query(&mut con).unwrap();
        assert_eq!(value, expected, "{key}: every run did every increment once");
    }
}

#[test]
fn a_job_queue_script() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    // Enqueue: a job as JSON in a hash-tagged zset by priority; dequeue: pop the best job
    // into the active set and return it decoded and re-encoded.
    let enqueue = "local job = cjson.encode({id = ARGV[1], data = ARGV[2]}) \
                   redis.call('ZADD', KEYS[1], ARGV[3], job) \
                   return redis.call('ZCARD', KEYS[1])";
    let dequeue = "local jobs = redis.call('ZRANGE', KEYS[1], 0, 0) \
                   if #jobs == 0 then return nil end \
                   redis.call('ZREM', KEYS[1], jobs[1]) \
                   local job = cjson.decode(jobs[1]) \
                   redis.call('ZADD', KEYS[2], ARGV[1], job.id) \
                   return {job.id, job.data}";
    for (id, priority) in [("a", "3"), ("b", "1"), ("c", "2")] {
        let _: i64 = redis::cmd("EVAL")
            .arg(enqueue)
            .arg(1)
            .arg("{queue}:wait")
            .arg(id)
            .arg(format!("payload/{id}"))
            .arg(priority)
            .query(&mut con)
            .unwrap();
    }
    let mut order = Vec::new();
    loop {
        let job: Option<Vec<String>> = redis::cmd("EVAL")
            .arg(dequeue)
            .arg(2)
            .arg("{queue}:wait")
            .arg("active")
            .arg(100)
            .query(&mut con)
            .unwrap();
        let Some(job) = job else { break };
        assert_eq!(job[1], format!("payload/{}", job[0]));
        order.push(job[0].clone());
    }
    assert_eq!(order, vec!["b", "c", "a"]);
    let active: i64 = redis::cmd("ZCARD").arg("active").query(&mut con).unwrap();
    assert_eq!(active, 3);
}

#[test]
fn script_kill_after_the_threshold() {
    let ember = Ember::start(2);
    let mut setup = ember.connect(false);
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("busy-reply-threshold")
        .arg("100")
        .query(&mut setup)
        .unwrap();
    let error = redis::cmd("SCRIPT")
        .arg("KILL")
        .query::<()>(&mut setup)
        .unwrap_err();
    assert_eq!(error.code(), Some("NOTBUSY"));
    let port = ember.port;
    let looping = std::thread::spawn(move || {
        let mut con = common::connect(port, false);
        show(&run(
            &mut con,
            &[b"EVAL", b"local i = 0 while true do i = i + 1 end", b"0"],
        ))
    });
    // Every connection answers BUSY, on either shard, and SCRIPT KILL goes through it.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut killed = false;
    while !killed && Instant::now() < deadline {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
        // The handshake itself waits on the looping shard: such a connection is skipped.
        let Ok(mut con) = client.get_connection_with_timeout(Duration::from_millis(500)) else {
            continue;
        };
        con.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        match redis::cmd("PING").query::<String>(&mut con) {
            Err(error) if error.code() == Some("BUSY") => {
                let _: () = redis::cmd("SCRIPT").arg("KILL").query(&mut con).unwrap();
                killed = true;
            }
            _ => {}
        }
    }
    assert!(killed, "no connection saw BUSY");
    let reply = looping.join().unwrap();
    assert!(
        reply.starts_with("(error) ERR Script killed by user with SCRIPT KILL..."),
        "{reply}"
    );
    let pong: String = redis::cmd("PING").query(&mut setup).unwrap();
    assert_eq!(pong, "PONG");
}

/// A script past the threshold yields to its own shard: with one shard, every other connection
/// shares the looping script's thread and still gets BUSY, runs FUNCTION STATS, has its
/// transaction aborted, and kills the script.
#[test]
fn script_kill_from_the_busy_shard() {
    let ember = Ember::start(1);
    let mut con = ember.connect(false);
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("busy-reply-threshold")
        .arg("50")
        .query(&mut con)
        .unwrap();
    let port = ember.port;
    let looping = std::thread::spawn(move || {
        let mut con = common::connect(port, false);
        show(&run(
            &mut con,
            &[
                b"EVAL",
                b"local i = 0\nwhile true do\n  i = i + 1\nend",
                b"0",
            ],
        ))
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match redis::cmd("PING").query::<String>(&mut con) {
            Err(error) if error.code() == Some("BUSY") => break,
            _ if Instant::now() > deadline => panic!("the script never became busy"),
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    let mut other = ember.connect(false);
    // FUNCTION STATS answers while a function is busy; while EVAL's script is, BUSY (Redis).
    let stats = show(&run(&mut other, &[b"FUNCTION", b"STATS"]));
    assert!(stats.starts_with("(error) BUSY"), "{stats}");
    assert_eq!(show(&run(&mut other, &[b"MULTI"])), "+OK");
    let queued = show(&run(&mut other, &[b"INCR", b"x"]));
    assert!(queued.starts_with("(error) BUSY"), "{queued}");
    let aborted = show(&run(&mut other, &[b"EXEC"]));
    assert!(
        aborted.starts_with("(error) EXECABORT Transaction discarded because of: BUSY"),
        "{aborted}"
    );
    assert_eq!(
        show(&run(&mut other, &[b"FUNCTION", b"KILL"])),
        "(error) BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
    );
    assert_eq!(show(&run(&mut other, &[b"SCRIPT", b"KILL"])), "+OK");
    let reply = looping.join().unwrap();
    assert!(
        reply.starts_with("(error) ERR Script killed by user with SCRIPT KILL... script: ")
            && reply.contains("on @user_script:"),
        "{reply}"
    );
    let pong: String = redis::cmd("PING").query(&mut other).unwrap();
    assert_eq!(pong, "PONG");
    let missing: Option<String> = redis::cmd("GET").arg("x").query(&mut other).unwrap();
    assert_eq!(missing, None);
    // Inside pcall too (the sandbox's pcall runs its function in a hooked coroutine).
    let looping = std::thread::spawn(move || {
        let mut con = common::connect(port, false);
        show(&run(
            &mut con,
            &[
                b"EVAL",
                b"local f = function() while 1 do redis.call('ping') end end while 1 do pcall(f) end",
                b"0",
            ],
        ))
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match redis::cmd("SCRIPT").arg("KILL").query::<String>(&mut other) {
            Ok(_) => break,
            _ if Instant::now() > deadline => panic!("the pcall loop never became killable"),
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    let reply = looping.join().unwrap();
    assert!(
        reply.starts_with("(error) ERR Script killed by user with SCRIPT KILL... script: ")
            && reply.ends_with("on @user_script:1."),
        "{reply}"
    );
}

/// Key specifications and introspection as Redis 7 shows them, and calls with more arguments
/// than fit a callback's Lua stack.
#[test]
fn key_specs_and_large_calls_match_redis() {
    compare_args(arg_cases! {
        "COMMAND GETKEYSANDFLAGS" => [
            ["COMMAND", "GETKEYSANDFLAGS", "set", "k1", "v1"],
            ["COMMAND", "GETKEYSANDFLAGS", "set", "k1", "v1", "GET"],
            ["COMMAND", "GETKEYSANDFLAGS", "mset", "k1", "v1", "k2", "v2"],
            ["COMMAND", "GETKEYSANDFLAGS", "LMOVE", "k1", "k2", "left", "right"],
            ["COMMAND", "GETKEYSANDFLAGS", "sort", "k1", "store", "k2"],
            ["COMMAND", "GETKEYSANDFLAGS", "zunionstore", "d", "2", "a", "b"],
            ["COMMAND", "GETKEYSANDFLAGS", "bitfield", "k", "get", "u8", "0"],
            ["COMMAND", "GETKEYSANDFLAGS", "bitfield", "k", "set", "u8", "0", "1"],
            ["COMMAND", "GETKEYSANDFLAGS", "xreadgroup", "GROUP", "g", "c", "STREAMS", "s1", "s2", "0", "0"],
            ["COMMAND", "GETKEYSANDFLAGS", "eval", "return 1", "1", "k"],
            ["COMMAND", "GETKEYSANDFLAGS", "del", "a", "b"],
            ["COMMAND", "GETKEYSANDFLAGS", "ping", "x"],
            ["COMMAND", "GETKEYS", "eval", "return 1", "0"],
            ["COMMAND", "GETKEYS", "memory", "usage", "k"],
        ],
        "COMMAND INFO key specifications" => [
            ["COMMAND", "INFO", "set", "lmove", "sort", "georadius", "xread", "bitop", "get|key"],
        ],
        "COMMAND LIST FILTERBY" => [
            ["COMMAND", "LIST", "FILTERBY", "PATTERN", "GET"],
            ["COMMAND", "LIST", "FILTERBY", "ACLCAT", "nosuchcategory"],
            ["COMMAND", "LIST", "FILTERBY", "MODULE", "x"],
            ["COMMAND", "LIST", "bad"],
            ["COMMAND", "LIST", "FILTERBY", "bad", "x"],
        ],
        "many arguments to redis.call" => [
            ["EVAL", "local a = {} for i = 1, 7999 do a[i] = 1 end return redis.call('lpush', KEYS[1], unpack(a))", "1", "many"],
            ["EVAL", "local a = {} for i = 1, 300 do a[i] = 'v' .. i end return redis.pcall('rpush', KEYS[1], unpack(a))", "1", "many"],
            ["EVAL", "return redis.pcall({'get', 'x'})", "0"],
        ],
        "pcall in scripts" => [
            ["SET", "pa", "1"],
            ["SET", "pb", "2"],
            ["SET", "pc", "3"],
            ["EVAL", "return {pcall(redis.call, 'get', KEYS[1]), pcall(redis.call, 'get', KEYS[2]), pcall(redis.call, 'get', KEYS[3])}", "3", "pa", "pb", "pc"],
            ["EVAL", "return {pcall(redis.call, 'incr', KEYS[1])}", "1", "pa"],
            ["EVAL", "return {pcall(function() return 1, nil, 3 end)}", "0"],
            ["EVAL", "local ok, err = pcall(function() error('boom') end) return {tostring(ok), err}", "0"],
            ["EVAL", "local ok, err = pcall(function() return redis.call('nosuch') end) return {tostring(ok), err}", "0"],
            ["EVAL", "local ok, err = pcall(nil) return {tostring(ok), err}", "0"],
            ["EVAL", "return {pcall(string.rep, 'a', 3)}", "0"],
        ],
    });
}

#[test]
fn functions() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    let library = "#!lua name=mylib\n\
                   redis.register_function('echo_arg', function(keys, args) return args[1] end)\n\
                   redis.register_function{function_name='get_key', callback=function(keys) return redis.call('get', keys[1]) end, flags={'no-writes'}, description='reads'}";
    let name: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg(library)
        .query(&mut con)
        .unwrap();
    assert_eq!(name, "mylib");
    let error = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg(library)
        .query::<String>(&mut con)
        .unwrap_err();
    assert_eq!(error.detail(), Some("Library 'mylib' already exists"));
    let replaced: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg("REPLACE")
        .arg(library)
        .query(&mut con)
        .unwrap();
    assert_eq!(replaced, "mylib");
    let (low, high) = keys_on_both_shards("function");
    let _: () = redis::cmd("SET")
        .arg(&high)
        .arg("value")
        .query(&mut con)
        .unwrap();
    for _ in 0..4 {
        let mut other = ember.connect(false);
        let echoed: String = redis::cmd("FCALL")
            .arg("echo_arg")
            .arg(0)
            .arg("hi")
            .query(&mut other)
            .unwrap();
        assert_eq!(echoed, "hi");
        let read: String = redis::cmd("FCALL_RO")
            .arg("get_key")
            .arg(1)
            .arg(&high)
            .query(&mut other)
            .unwrap();
        assert_eq!(read, "value");
    }
    let error = redis::cmd("FCALL_RO")
        .arg("echo_arg")
        .arg(0)
        .query::<String>(&mut con)
        .unwrap_err();
    assert_eq!(
        error.detail(),
        Some("Can not execute a script with write flag using *_ro command.")
    );
    let error = redis::cmd("FCALL")
        .arg("nosuch")
        .arg(0)
        .query::<String>(&mut con)
        .unwrap_err();
    assert_eq!(error.detail(), Some("Function not found"));
    let _ = low;
    let listed = show(&run(&mut con, &[b"FUNCTION", b"LIST"]));
    assert!(
        listed.contains("\"library_name\", \"mylib\"") || listed.contains("mylib"),
        "{listed}"
    );
    let dump: Vec<u8> = redis::cmd("FUNCTION").arg("DUMP").query(&mut con).unwrap();
    let _: () = redis::cmd("FUNCTION").arg("FLUSH").query(&mut con).unwrap();
    let error = redis::cmd("FCALL")
        .arg("echo_arg")
        .arg(0)
        .query::<String>(&mut con)
        .unwrap_err();
    assert_eq!(error.detail(), Some("Function not found"));
    let _: () = redis::cmd("FUNCTION")
        .arg("RESTORE")
        .arg(dump)
        .query(&mut con)
        .unwrap();
    let echoed: String = redis::cmd("FCALL")
        .arg("echo_arg")
        .arg(0)
        .arg("back")
        .query(&mut con)
        .unwrap();
    assert_eq!(echoed, "back");
    let _: () = redis::cmd("FUNCTION")
        .arg("DELETE")
        .arg("mylib")
        .query(&mut con)
        .unwrap();
    let error = redis::cmd("FUNCTION")
        .arg("DELETE")
        .arg("mylib")
        .query::<()>(&mut con)
        .unwrap_err();
    assert_eq!(error.detail(), Some("Library not found"));
    let cases: &[(&str, &str, &str)] = &[
        (
            "no metadata",
            "redis.register_function('f', function() end)",
            "Missing library metadata",
        ),
        (
            "nothing registered",
            "#!lua name=empty\nlocal x = 1",
            "No functions registered",
        ),
    ];
    for (name, code, expected) in cases {
        let error = redis::cmd("FUNCTION")
            .arg("LOAD")
            .arg(*code)
            .query::<String>(&mut con)
            .unwrap_err();
        assert_eq!(error.detail(), Some(*expected), "{name}");
    }
}

/// FUNCTION LOAD as Redis 7 reads a library: the shebang's metadata, the library API its top
/// level sees (only `redis.register_function`, `redis.log`, the log levels and the version),
/// register_function's argument errors, the load's time limit, and the sandbox's globals once
/// the functions run; the subcommands' arity and syntax errors; FUNCTION RESTORE's policies.
#[test]
fn function_load_and_restore_match_redis() {
    compare_args(arg_cases! {
        "metadata" => [
            ["FUNCTION", "FLUSH"],
            ["FUNCTION", "LOAD", "#!lua name=lib"],
            ["FUNCTION", "LOAD", "#! name=lib\nredis.register_function('f', function() return 1 end)"],
            ["FUNCTION", "LOAD", "#!lua\nredis.register_function('f', function() return 1 end)"],
            ["FUNCTION", "LOAD", "#!lua name=a name=b\nredis.register_function('f', function() return 1 end)"],
            ["FUNCTION", "LOAD", "#!lua name=a foo=bar\nredis.register_function('f', function() return 1 end)"],
            ["FUNCTION", "LOAD", "#!lua name=\"a b\"\nredis.register_function('f', function() return 1 end)"],
            ["FUNCTION", "LOAD", "#!lua name=\"a\nredis.register_function('f', function() return 1 end)"],
            ["FUNCTION", "LOAD", "#!js name=a\nredis.register_function('f', function() return 1 end)"],
            ["FUNCTION", "LOAD", "#!LUA NAME=\"q\"\nredis.register_function('f', function() return 1 end)"],
            ["FUNCTION", "LOAD", "#!lua name=q\nredis.register_function('g', function() return 1 end)"],
            ["FUNCTION", "LOAD", "#!lua name=Q\nredis.register_function('F', function() return 1 end)"],
            ["FUNCTION", "LOAD", "#!lua name=Q\nredis.register_function('g', function() return 1 end)"],
            ["FCALL", "G", "0"],
            ["FUNCTION", "DELETE", "q"],
            ["FUNCTION", "DELETE", "Q"],
        ],
        "the library API while loading" => [
            ["FUNCTION", "FLUSH"],
            ["FUNCTION", "LOAD", "#!lua name=l\nreturn math.random()"],
            ["FUNCTION", "LOAD", "#!lua name=l\nreturn redis.call('ping')"],
            ["FUNCTION", "LOAD", "#!lua name=l\nreturn redis.setresp(3)"],
            ["FUNCTION", "LOAD", "#!lua name=l\nredis.math.random()"],
            ["FUNCTION", "LOAD", "#!lua name=l\nx = 1"],
            ["FUNCTION", "LOAD", "#!lua name=l\nredis.log = 1"],
            ["FUNCTION", "LOAD", "#!lua name=l\nlocal y = nil + 1"],
            ["FUNCTION", "LOAD", "#!lua name=l\nlocal a = 1\nwhile true do a = a + 1 end"],
            ["FUNCTION", "LOAD", "#!lua name=l\nredis.log(redis.LOG_DEBUG, 'hi')\nlocal v = redis.REDIS_VERSION_NUM\nredis.register_function('f', function() return redis.register_function end)\nredis.register_function('g', function() return {type(math.random), type(redis.call)} end)"],
            ["FCALL", "f", "0"],
            ["FCALL", "g", "0"],
        ],
        "register_function's arguments" => [
            ["FUNCTION", "FLUSH"],
            ["FUNCTION", "LOAD", "#!lua name=l\nredis.register_function()"],
            ["FUNCTION", "LOAD", "#!lua name=l\nredis.register_function('f')"],
            ["FUNCTION", "LOAD", "#!lua name=l\nredis.register_function('f', function() end, 3)"],
            ["FUNCTION", "LOAD", "#!lua name=l\nredis.register_function(nil, function() end)"],
            ["FUNCTION", "LOAD", "#!lua name=l\nredis.register_function('f', 'g')"],
            ["FUNCTION", "LOAD", "#!lua name=l\nredis.register_function('a-b', function() end)"],
            ["FUNCTION", "LOAD", "#!lua name=l\nredis.register_function{function_name='f'}"],
            ["FUNCTION", "LOAD", "#!lua name=l\nredis.register_function{callback=function() end}"],
            ["FUNCTION", "LOAD", "#!lua name=l\nredis.register_function{function_name='f', callback=function() end, flags='no-writes'}"],
            ["FUNCTION", "LOAD", "#!lua name=l\nredis.register_function{function_name='f', callback=function() end, flags={'nope'}}"],
            ["FUNCTION", "LOAD", "#!lua name=l\nredis.register_function{function_name='f', callback=function() end, other=1}"],
            ["FUNCTION", "LOAD", "#!lua name=l\nredis.register_function{function_name='f', callback=function() end, [true]=1}"],
            ["FUNCTION", "LOAD", "#!lua name=l\nredis.register_function{FUNCTION_NAME=7, Callback=function() return 1 end, flags={'NO-WRITES', 'allow-oom'}, description=3}"],
            ["FUNCTION", "LIST", "WITHCODE", "LIBRARYNAME", "L"],
            ["FCALL_RO", "7", "0"],
        ],
        "arity and syntax" => [
            ["FUNCTION", "LOAD"],
            ["FUNCTION", "LOAD", "BAD", "#!lua name=l\nredis.register_function('f', function() end)"],
            ["FUNCTION", "DELETE"],
            ["FUNCTION", "DUMP", "x"],
            ["FUNCTION", "STATS", "x"],
            ["FUNCTION", "KILL", "x"],
            ["FUNCTION", "FLUSH", "SYNC", "x"],
            ["FUNCTION", "FLUSH", "x"],
            ["FUNCTION", "RESTORE"],
            ["FUNCTION", "RESTORE", "a", "b", "c"],
            ["FUNCTION", "RESTORE", "a", "b"],
            ["FUNCTION", "RESTORE", "bad_payload"],
            ["FUNCTION", "HELP"],
            ["FUNCTION", "NOPE"],
            ["FCALL", "nope", "x"],
            ["EVAL_RO", "#!lua\nreturn 1", "0"],
            ["EVAL_RO", "#!lua flags=no-writes\nreturn 1", "0"],
            ["EVAL_RO", "return 1", "0"],
        ],
        "restore policies" => [
            ["FUNCTION", "FLUSH"],
            ["FUNCTION", "LOAD", "#!lua name=a\nredis.register_function('f1', function() return 1 end)"],
            ["FUNCTION", "LOAD", "#!lua name=b\nredis.register_function('f2', function() return 2 end)"],
            ["FUNCTION", "DELETE", "b"],
            ["FUNCTION", "LOAD", "#!lua name=c\nredis.register_function('f3', function() return 3 end)"],
            ["FUNCTION", "STATS"],
            ["FCALL", "f3", "0"],
        ],
    });
}

/// Scripts over maxmemory as Redis's scriptPrepareForRun and scriptVerifyOOM decide: a shebang
/// script or function that may write does not start unless flagged allow-oom; a script's first
/// deny-oom call is refused, later ones (after a write) are not; no-writes scripts run.
#[test]
fn scripts_over_maxmemory_match_redis() {
    compare_args(arg_cases! {
        "over maxmemory" => [
            ["FUNCTION", "FLUSH"],
            ["FUNCTION", "LOAD", "#!lua name=o\nredis.register_function{function_name='fo', callback=function() return redis.call('set','x','1') end, flags={'allow-oom'}}\nredis.register_function('fn', function() return redis.call('set','x','2') end)\nredis.register_function{function_name='fr', callback=function() return redis.call('get','x') end, flags={'no-writes'}}"],
            ["CONFIG", "SET", "maxmemory", "1"],
            ["FUNCTION", "LOAD", "REPLACE", "#!lua name=o
    redis.register_function('f1', function() return 1 end)"],
            ["FUNCTION", "RESTORE", "bad", "REPLACE"],
            ["FUNCTION", "LIST", "LIBRARYNAME", "nothing"],
            ["EVAL", "return redis.call('set','x','y')", "1", "x"],
            ["EVAL", "return redis.pcall('incr','counter')", "1", "counter"],
            ["EVAL", "redis.call('del','nothing') return redis.call('set','x','y')", "1", "x"],
            ["EVAL", "#!lua flags=allow-oom\nreturn redis.call('set','x','z')", "1", "x"],
            ["EVAL", "#!lua\nreturn redis.call('set','x','z')", "1", "x"],
            ["EVAL", "#!lua flags=no-writes\nreturn redis.call('get','x')", "1", "x"],
            ["FCALL", "fo", "0"],
            ["FCALL", "fn", "0"],
            ["FCALL", "fr", "0"],
            ["FCALL_RO", "fr", "0"],
            ["CONFIG", "SET", "maxmemory", "0"],
            ["GET", "x"],
            ["FUNCTION", "FLUSH"],
        ],
    });
}

/// FUNCTION DUMP's payload is Redis's: one from redis-server restores in Ember and the other
/// way round, under each policy, all or nothing.
#[test]
fn function_dump_payloads_cross_with_redis() {
    let Some(oracle) = RedisOracle::start() else {
        return;
    };
    let ember = Ember::start(2);
    let mut connections = [oracle.connect(false), ember.connect(false)];
    let library = |name: &str, function: &str, value: i64| {
        format!("#!lua name={name}\nredis.register_function('{function}', function() return {value} end)")
    };
    let load = |con: &mut redis::Connection, code: &str| {
        let _: String = redis::cmd("FUNCTION")
            .arg("LOAD")
            .arg(code)
            .query(con)
            .unwrap();
    };
    let flush = |con: &mut redis::Connection| {
        let _: () = redis::cmd("FUNCTION").arg("FLUSH").query(con).unwrap();
    };
    let dump = |con: &mut redis::Connection| -> Vec<u8> {
        redis::cmd("FUNCTION").arg("DUMP").query(con).unwrap()
    };
    let restore = |con: &mut redis::Connection, payload: &[u8], policy: Option<&str>| {
        let mut cmd = redis::cmd("FUNCTION");
        cmd.arg("RESTORE").arg(payload);
        if let Some(policy) = policy {
            cmd.arg(policy);
        }
        cmd.query::<()>(con).map_err(|error| error.to_string())
    };
    let fcall = |con: &mut redis::Connection, function: &str| -> redis::RedisResult<i64> {
        redis::cmd("FCALL").arg(function).arg(0).query(con)
    };
    for direction in [[0, 1], [1, 0]] {
        let [from, to] = connections.get_disjoint_mut(direction).unwrap();
        flush(from);
        flush(to);
        // Long enough that Redis compresses it (LZF) in its payload.
        let long = format!(
            "#!lua name=long\n{}redis.register_function('fl', function() return 9 end)",
            "-- padding padding padding padding\n".repeat(20)
        );
        load(from, &library("a", "fa", 1));
        load(from, &long);
        let payload = dump(from);
        load(to, &library("a", "other", 5));
        let error = restore(to, &payload, None).unwrap_err();
        assert!(error.contains("Library a already exists"), "{error}");
        assert!(fcall(to, "fa").is_err(), "nothing restored");
        restore(to, &payload, Some("REPLACE")).unwrap();
        assert_eq!(fcall(to, "fa").unwrap(), 1);
        assert_eq!(fcall(to, "fl").unwrap(), 9);
        assert!(fcall(to, "other").is_err(), "the replaced library is gone");
        flush(to);
        load(to, &library("b", "fa", 7));
        let error = restore(to, &payload, Some("APPEND")).unwrap_err();
        assert!(error.contains("Function fa already exists"), "{error}");
        restore(to, &payload, Some("FLUSH")).unwrap();
        assert_eq!(fcall(to, "fa").unwrap(), 1);
        let listed = show(&run(to, &[b"FUNCTION", b"LIST", b"LIBRARYNAME", b"b"]));
        assert_eq!(listed, "[]", "FLUSH dropped library b");
    }
}

#[test]
fn eval_inside_multi_runs_under_exec() {
    let ember = Ember::start(2);
    let (low, high) = keys_on_both_shards("exec");
    let mut con = ember.connect(false);
    let mut pipe = redis::pipe();
    pipe.atomic()
        .cmd("SET")
        .arg(&low)
        .arg(1)
        .ignore()
        .cmd("EVAL")
        .arg("return redis.call('incr', KEYS[1]) + redis.call('incr', ARGV[1])")
        .arg(1)
        .arg(&low)
        .arg(&high)
        .cmd("MGET")
        .arg(&low)
        .arg(&high);
    let (sum, values): (i64, Vec<i64>) = pipe.query(&mut con).unwrap();
    assert_eq!(sum, 3);
    assert_eq!(values, vec![2, 1]);
}

/// A library named `t` with one function `f` whose body is `body` (FUNCTION LOAD REPLACE).
macro_rules! library {
    ($body:literal) => {
        concat!(
            "#!lua name=t\nredis.register_function('f', function(KEYS, ARGV)\n",
            $body,
            "\nend)"
        )
    };
}

/// Behaviours Redis's scripting unit checks, compared with redis-server as scripts and as
/// functions: cjson's settings, cmsgpack's partial unpacking, the commands scripts may not run,
/// the read-only sandbox, binary chunks, `redis.sha1hex`'s arguments.
#[test]
fn scripting_unit_behaviours_match_redis() {
    compare_args(arg_cases! {
        "cjson settings" => [
            ["EVAL", "local ok = pcall(cjson.encode, {num = 0/0}) cjson.encode_invalid_numbers(true) local ok2, text = pcall(cjson.encode, {num = 0/0}) cjson.encode_invalid_numbers(false) return {tostring(ok), tostring(ok2)}", "0"],
            ["EVAL", "cjson.encode_max_depth(1) local ok = pcall(cjson.encode, {a = {1}}) cjson.encode_max_depth(1000) return tostring(ok)", "0"],
            ["EVAL", "cjson.decode_max_depth(1) local ok = pcall(cjson.decode, '{\"a\": {\"b\": [1]}}') cjson.decode_max_depth(1000) local ok2 = pcall(cjson.decode, '{\"a\": {\"b\": [1]}}') return {tostring(ok), tostring(ok2)}", "0"],
            ["EVAL", "cjson.encode_keep_buffer(false) return cjson.encode({1, 2})", "0"],
        ],
        "cmsgpack unpack_one and unpack_limit" => [
            ["EVAL", "local packed = cmsgpack.pack('a', 'bb', 'ccc') local o1, v1 = cmsgpack.unpack_one(packed, 0) local o2, v2 = cmsgpack.unpack_limit(packed, 1, o1) local o3, v3 = cmsgpack.unpack_limit(packed, 1, o2) return {o1, v1, o2, v2, o3, v3}", "0"],
            ["EVAL", "local o, a, b = cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), 2, 0) return {o, a, b}", "0"],
            ["EVAL", "local t = {} for i = 1, 20000 do t['k' .. i] = i end local u = cmsgpack.unpack(cmsgpack.pack(t)) return u.k20000", "0"],
        ],
        "commands scripts may not run" => [
            ["EVAL", "return redis.pcall('blpop', 'x', 0)", "0"],
            ["EVAL", "return redis.pcall('brpoplpush', 'a', 'b', 0)", "0"],
            ["EVAL", "return redis.pcall('bzpopmax', 'z', 0)", "0"],
            ["EVAL", "return redis.pcall('blmpop', '0', '1', 'x', 'LEFT')", "0"],
            ["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"],
            ["EVAL", "return redis.pcall('xread', 'STREAMS', 's', '$')", "1", "s"],
            ["EVAL", "return redis.pcall('xread', 'COUNT', '1', 'BLOCK', '0', 'STREAMS', 's', '$')", "1", "s"],
            ["EVAL", "return redis.pcall('XREADGROUP', 'GROUP', 'g', 'c', 'BLOCK', '0', 'STREAMS', 's', '>')", "1", "s"],
            ["EVAL", "return redis.pcall('xreadgroup', 'GROUP', 'block', 'c', 'STREAMS', 's', '>')", "1", "s"],
        ],
        "sha1hex arguments" => [
            ["EVAL", "return redis.sha1hex()", "0"],
            ["EVAL", "return redis.sha1hex('a', 'b')", "0"],
            ["EVAL", "return redis.sha1hex(12)", "0"],
        ],
        "read-only sandbox in scripts" => [
            ["EVAL", "setmetatable(_G, {})", "0"],
            ["EVAL", "local g = getmetatable(_G) g.__index = {}", "0"],
            ["EVAL", "redis.call = function() return 1 end", "0"],
            ["EVAL", "return loadstring(string.dump(function() return 1 end))()", "0"],
            ["EVAL", "local t = setmetatable({}, {}) return type(getmetatable(t))", "0"],
        ],
        "read-only sandbox in functions" => [
            ["FUNCTION", "LOAD", "REPLACE", library!("setmetatable(_G, {})")],
            ["FCALL", "f", "0"],
            ["FUNCTION", "LOAD", "REPLACE", library!("redis = function() return 1 end")],
            ["FCALL", "f", "0"],
            ["FUNCTION", "LOAD", "REPLACE", library!("redis.call = function() return 1 end")],
            ["FCALL", "f", "0"],
            ["FUNCTION", "LOAD", "REPLACE", library!("cjson.encode = function() return 1 end")],
            ["FCALL", "f", "0"],
            ["FUNCTION", "LOAD", "REPLACE", library!("return redis.call('set', KEYS[1], 'v')")],
            ["FCALL", "f", "1", "fk"],
            ["FUNCTION", "LOAD", "REPLACE", "#!lua name=t\nredis.register_function('f', function() return 1 end)\nredis.call = 1"],
            ["FUNCTION", "FLUSH"],
        ],
    });
}

/// ACL users as scripts see them: AUTH as a user, NOPERM for commands and keys the user may
/// not touch, the script's own calls refused, `redis.acl_check_cmd`.
#[test]
fn acl_users_and_scripts_match_redis() {
    compare_args(arg_cases! {
        "acl_check_cmd and NOPERM" => [
            ["ACL", "SETUSER", "bob", "on", ">123", "+@scripting", "+set", "+get", "~x*"],
            ["AUTH", "bob", "wrong"],
            ["AUTH", "bob", "123"],
            ["ACL", "WHOAMI"],
            ["EVAL", "return redis.acl_check_cmd('set', 'xx', 1)", "1", "xx"],
            ["EVAL", "return redis.acl_check_cmd('hset', 'xx', 'f', 1)", "1", "xx"],
            ["EVAL", "return redis.acl_check_cmd('set', 'yy', 1)", "0"],
            ["EVAL", "return redis.acl_check_cmd('invalid-cmd', 'arg')", "0"],
            ["EVAL", "return redis.pcall('hset', 'xx', 'f', 1)", "0"],
            ["EVAL", "return redis.pcall('set', 'yy', 1)", "0"],
            ["EVAL", "return redis.call('set', 'xx', 1)", "1", "xx"],
            ["SET", "x1", "v"],
            ["GET", "x1"],
            ["SET", "y1", "v"],
            ["HSET", "x2", "f", "v"],
        ],
        "users and passwords" => [
            ["ACL", "SETUSER", "carol", "on", "nopass", "allcommands", "allkeys"],
            ["AUTH", "carol", "anything"],
            ["SET", "k", "v"],
            ["ACL", "SETUSER", "dave", ">pw"],
            ["AUTH", "dave", "pw"],
            ["ACL", "SETUSER", "erin", "bogus"],
            ["ACL", "USERS"],
            ["ACL", "DELUSER", "dave", "nobody"],
            ["ACL", "USERS"],
        ],
    });
    // HELLO's AUTH option authenticates as the user too (its reply names the server, so this
    // part checks Ember alone).
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    let created = run(
        &mut con,
        &[b"ACL", b"SETUSER", b"frank", b"on", b">pw", b"+get", b"~*"],
    );
    assert_eq!(show(&created), "+OK");
    let hello = run(&mut con, &[b"HELLO", b"2", b"AUTH", b"frank", b"pw"]);
    assert!(hello.is_ok(), "{}", show(&hello));
    assert_eq!(show(&run(&mut con, &[b"GET", b"k"])), "(nil)");
    assert_eq!(
        show(&run(&mut con, &[b"SET", b"k", b"v"])),
        "(error) NOPERM this user has no permissions to run the 'set' command"
    );
}

/// A function busy past the threshold: FUNCTION STATS runs meanwhile and names it (Redis's
/// `running_script`), and FUNCTION KILL stops it even when it loops inside `pcall`.
#[test]
fn busy_function_shows_in_stats_and_pcall_cannot_swallow_the_kill() {
    let ember = Ember::start(2);
    let mut setup = ember.connect(false);
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("busy-reply-threshold")
        .arg("100")
        .query(&mut setup)
        .unwrap();
    let library = "#!lua name=busy\nredis.register_function('loop', function() \
        local f = function() while 1 do redis.call('ping') end end \
        while 1 do pcall(f) end end)";
    let _: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg(library)
        .query(&mut setup)
        .unwrap();
    let idle = show(&run(&mut setup, &[b"FUNCTION", b"STATS"]));
    assert!(idle.starts_with("[\"running_script\", (nil), "), "{idle}");
    let port = ember.port;
    let looping = std::thread::spawn(move || {
        let mut con = common::connect(port, false);
        show(&run(&mut con, &[b"FCALL", b"loop", b"0"]))
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut stats = None;
    while stats.is_none() && Instant::now() < deadline {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
        let Ok(mut con) = client.get_connection_with_timeout(Duration::from_millis(500)) else {
            continue;
        };
        con.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        if let Err(error) = redis::cmd("PING").query::<String>(&mut con) {
            if error.code() == Some("BUSY") {
                stats = Some(show(&run(&mut con, &[b"FUNCTION", b"STATS"])));
                let _: () = redis::cmd("FUNCTION").arg("KILL").query(&mut con).unwrap();
            }
        }
    }
    let stats = stats.expect("no connection saw BUSY");
    assert!(
        stats.starts_with(
            "[\"running_script\", [\"name\", \"loop\", \"command\", [\"FCALL\", \"loop\", \"0\"], \"duration_ms\", "
        ),
        "{stats}"
    );
    let reply = looping.join().unwrap();
    assert!(
        reply.starts_with("(error) ERR Script killed by user with SCRIPT KILL..."),
        "{reply}"
    );
}

/// Sends `request` (inline commands, each ending in CRLF) on a raw connection to `port` and
/// returns every byte the server sends within half a second.
fn raw_exchange(port: u16, request: &str) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    while let Ok(read) = stream.read(&mut buffer) {
        if read == 0 {
            break;
        }
        received.extend_from_slice(&buffer[..read]);
    }
    received
}

/// CLIENT REPLY OFF silences replies but not the pushes of (un)subscribe confirmations and
/// messages, byte for byte as redis-server (Redis's pubsub unit).
#[test]
fn reply_off_keeps_subscription_pushes() {
    let Some(oracle) = RedisOracle::start() else {
        return;
    };
    let ember = Ember::start(2);
    let request = "CLIENT REPLY OFF\r\nSUBSCRIBE channel\r\nPSUBSCRIBE ch*\r\nPING\r\n\
                   UNSUBSCRIBE channel\r\nPUNSUBSCRIBE ch*\r\nSET k v\r\n";
    for hello in ["", "HELLO 3\r\n"] {
        let ours = raw_exchange(ember.port, &format!("{hello}{request}"));
        let theirs = raw_exchange(oracle.port, &format!("{hello}{request}"));
        // HELLO's reply names the server and its version: only what follows is compared.
        let after_hello = |bytes: &[u8]| -> Vec<u8> {
            let text = String::from_utf8_lossy(bytes).into_owned();
            let start = if hello.is_empty() {
                0
            } else {
                text.find(">3\r\n").unwrap_or(text.len())
            };
            text.as_bytes()[start..].to_vec()
        };
        assert_eq!(
            String::from_utf8_lossy(&after_hello(&ours)),
            String::from_utf8_lossy(&after_hello(&theirs)),
            "hello: {hello:?}"
        );
    }
}

/// INFO with several section names answers their union, each section once, and the
/// replication section has Redis's fields (Redis's info-command unit).
#[test]
fn info_sections_combine_as_redis() {
    let Some(oracle) = RedisOracle::start() else {
        return;
    };
    let ember = Ember::start(2);
    let field_names = |port: u16, sections: &[&str]| -> Vec<String> {
        let mut con = common::connect(port, false);
        let mut command = redis::cmd("INFO");
        for section in sections {
            command.arg(*section);
        }
        let text: String = command.query(&mut con).unwrap();
        text.lines()
            .filter_map(|line| line.split_once(':').map(|(name, _)| name.to_owned()))
            .collect()
    };
    let replication = field_names(oracle.port, &["replication"]);
    assert_eq!(field_names(ember.port, &["replication"]), replication);
    let cpu_sentinel = field_names(ember.port, &["cpu", "sentinel"]);
    assert!(cpu_sentinel.contains(&"used_cpu_user".to_owned()));
    assert!(!cpu_sentinel.contains(&"master_repl_offset".to_owned()));
    for (sections, has_rejected_calls) in [(["cpu", "all"], true), (["cpu", "default"], false)] {
        let names = field_names(ember.port, &sections);
        let once = |name: &str| names.iter().filter(|found| *found == name).count() == 1;
        assert!(once("used_cpu_user") && once("used_memory") && once("master_repl_offset"));
        assert_eq!(
            names
                .iter()
                .any(|name| name.starts_with("cmdstat_") || name == "rejected_calls"),
            has_rejected_calls,
            "{sections:?}"
        );
    }
}

/// What `redis.call` answers scripts (its arguments read off the Lua stack, its replies pushed
/// straight as Lua values, see scripting/rawcall.rs), in both RESP versions of the script
/// (`redis.setresp`), against Redis.
#[test]
fn call_replies_reach_lua_as_in_redis() {
    compare_args(arg_cases! {
        "status, integer, bulk, nil" => [
            ["EVAL", "return {redis.call('set', KEYS[1], 'v'), redis.call('incr', KEYS[2]), redis.call('get', KEYS[1]), redis.call('get', KEYS[3])}", "3", "{c}a", "{c}n", "{c}none"],
            ["EVAL", "local s = redis.call('set', KEYS[1], 'v') return {type(s), s.ok, type(redis.call('get', KEYS[2]))}", "2", "{c}a", "{c}none"],
            ["EVAL", "redis.setresp(3) return {type(redis.call('get', KEYS[1])), redis.call('get', KEYS[1]) == nil}", "1", "{c}none"],
        ],
        "numbers as arguments" => [
            ["EVAL", "redis.call('set', KEYS[1], 10) redis.call('incrby', KEYS[1], 5) redis.call('incrbyfloat', KEYS[1], 0.5) return redis.call('get', KEYS[1])", "1", "{c}x"],
            ["EVAL", "return redis.call('set', KEYS[1], 3.25)", "1", "{c}f"],
            ["GET", "{c}f"],
            ["EVAL", "return redis.call('set', KEYS[1], 1e15)", "1", "{c}big"],
            ["GET", "{c}big"],
            ["EVAL", "return redis.call('set', KEYS[1], -2.5)", "1", "{c}neg"],
            ["GET", "{c}neg"],
            // Lua's own text for this is 0.3 (%.14g): Redis sends every digit it needs.
            ["EVAL", "return redis.call('set', KEYS[1], 0.1 + 0.2)", "1", "{c}sum"],
            ["GET", "{c}sum"],
            ["EVAL", "return redis.call('set', KEYS[1], true)", "1", "{c}bool"],
            ["EVAL", "return redis.pcall('set', KEYS[1], {})", "1", "{c}bool"],
        ],
        "arrays, maps, sets, doubles" => [
            ["HSET", "{c}h", "f1", "v1", "f2", "v2"],
            ["SADD", "{c}s", "m"],
            ["ZADD", "{c}z", "2.5", "m"],
            ["RPUSH", "{c}l", "a", "b", "c"],
            ["EVAL", "return redis.call('hgetall', KEYS[1])", "1", "{c}h"],
            ["EVAL", "redis.setresp(3) local m = redis.call('hgetall', KEYS[1]).map return {m.f1, m.f2}", "1", "{c}h"],
            ["EVAL", "redis.setresp(3) local s = redis.call('smembers', KEYS[1]).set return tostring(s.m)", "1", "{c}s"],
            ["EVAL", "return redis.call('zscore', KEYS[1], 'm')", "1", "{c}z"],
            ["EVAL", "redis.setresp(3) return tostring(redis.call('zscore', KEYS[1], 'm').double)", "1", "{c}z"],
            ["EVAL", "return redis.call('lrange', KEYS[1], 0, -1)", "1", "{c}l"],
            ["EVAL", "return redis.call('zrange', KEYS[1], 0, -1, 'withscores')", "1", "{c}z"],
            ["EVAL", "return #redis.call('lrange', KEYS[1], 5, 10)", "1", "{c}l"],
        ],
        "errors" => [
            ["SET", "{c}str", "v"],
            ["EVAL", "local e = redis.pcall('lpush', KEYS[1], 'x') return {type(e), e.err}", "1", "{c}str"],
            ["EVAL", "return redis.call('lpush', KEYS[1], 'x')", "1", "{c}str"],
            ["EVAL", "return redis.pcall('nosuchcommand')", "0"],
            ["EVAL", "return redis.pcall()", "0"],
            ["EVAL", "return redis.pcall('get')", "0"],
        ],
        "many arguments" => [
            ["EVAL", "local t = {} for i = 1, 5000 do t[i] = i end return redis.call('rpush', KEYS[1], unpack(t))", "1", "{c}many"],
            ["EVAL", "local t = {} for i = 1, 300 do t[#t + 1] = 'f' .. i t[#t + 1] = i end redis.call('hset', KEYS[1], unpack(t)) return redis.call('hlen', KEYS[1])", "1", "{c}hm"],
            ["LLEN", "{c}many"],
        ],
        "a script run again and again" => [
            ["SET", "{c}stock", "10"],
            ["EVAL", "local s = tonumber(redis.call('get', KEYS[1])) if s < 3 then return -1 end redis.call('rpush', KEYS[2], ARGV[1]) return redis.call('decrby', KEYS[1], 3)", "2", "{c}stock", "{c}orders", "b1"],
            ["EVAL", "local s = tonumber(redis.call('get', KEYS[1])) if s < 3 then return -1 end redis.call('rpush', KEYS[2], ARGV[1]) return redis.call('decrby', KEYS[1], 3)", "2", "{c}stock", "{c}orders", "b2"],
            ["EVAL", "local s = tonumber(redis.call('get', KEYS[1])) if s < 3 then return -1 end redis.call('rpush', KEYS[2], ARGV[1]) return redis.call('decrby', KEYS[1], 3)", "2", "{c}stock", "{c}orders", "b3"],
            ["EVAL", "local s = tonumber(redis.call('get', KEYS[1])) if s < 3 then return -1 end redis.call('rpush', KEYS[2], ARGV[1]) return redis.call('decrby', KEYS[1], 3)", "2", "{c}stock", "{c}orders", "b4"],
            ["LRANGE", "{c}orders", "0", "-1"],
            ["EVAL", "return {#KEYS, #ARGV, KEYS[1], ARGV[2]}", "1", "k", "a1", "a2"],
            ["EVAL", "return {#KEYS, #ARGV}", "0"],
        ],
    });
}

/// `tonumber` (Ember's own, with a fast path for plain decimal integers: see
/// scripting/tonumber.rs) answers and fails as Lua 5.1's does in Redis, for what takes the fast
/// path and for everything that does not.
#[test]
fn tonumber_matches_redis() {
    compare_args(arg_cases! {
        "plain integers (the fast path)" => [
            ["EVAL", "return {tonumber('0'), tonumber('12'), tonumber('-42'), tonumber('007'), tonumber('999999999999999')}", "0"],
            ["EVAL", "return {tostring(tonumber('-0')), type(tonumber('12')), tonumber(ARGV[1]) + 1}", "0", "41"],
            ["SET", "{n}stock", "1000000000"],
            ["EVAL", "return tonumber(redis.call('get', KEYS[1])) - 1", "1", "{n}stock"],
        ],
        "everything else (Lua's own path)" => [
            ["EVAL", "return {tostring(tonumber('9999999999999999')), tostring(tonumber('1.5')), tonumber('1e3'), tonumber('0x10'), tonumber(' 12 ')}", "0"],
            ["EVAL", "return {tonumber('12abc'), tonumber(''), tonumber('-'), tonumber('+1'), tonumber({}), tonumber(nil), tonumber(true)}", "0"],
            ["EVAL", "return {tonumber(12), tonumber('10', 16), tonumber('zz', 36), tonumber(' 5 ', 8), tonumber('  -7  ', 10), tonumber('9', 8)}", "0"],
        ],
        "errors" => [
            ["EVAL", "return tonumber()", "0"],
            ["EVAL", "return tonumber('1', 99)", "0"],
            ["EVAL", "return tonumber('1', 'x')", "0"],
        ],
    });
}

/// A script sees its own KEYS and ARGV and nothing of the last script's (Ember refills the
/// same two tables run after run), and globals read the same whether or not the script
/// assigns one (Ember reads them directly when its code never does).
#[test]
fn keys_argv_and_globals_start_fresh_each_run_as_in_redis() {
    const SHOW: &str = "return {#KEYS, #ARGV, tostring(KEYS[1]), tostring(KEYS[3]), tostring(KEYS.extra), tostring(ARGV[2]), tostring(ARGV[5]), type(getmetatable(KEYS)), type(getmetatable(ARGV))}";
    compare_args(arg_cases! {
        "a script that changes KEYS and ARGV" => [
            ["EVAL", "KEYS[3] = 'added' KEYS.extra = 1 ARGV[5] = 'x' ARGV[1] = nil return #KEYS", "2", "a", "b", "v1", "v2"],
            ["EVAL", SHOW, "2", "a", "b", "v1", "v2"],
            ["EVAL", SHOW, "1", "c", "w1"],
            ["EVAL", SHOW, "0"],
        ],
        "metatables on KEYS and ARGV" => [
            ["EVAL", "setmetatable(KEYS, {__index = function() return 'meta' end}) setmetatable(ARGV, {}) return KEYS[9]", "1", "a"],
            ["EVAL", SHOW, "1", "a", "v1", "v2"],
        ],
        "fewer items than the run before" => [
            ["EVAL", SHOW, "3", "a", "b", "c", "v1", "v2", "v3", "v4", "v5"],
            ["EVAL", SHOW, "1", "z"],
            ["EVAL", "return {unpack(KEYS)}", "2", "p", "q"],
            ["EVAL", "return {unpack(ARGV)}", "0", "r"],
        ],
        "the same key again, changed by the script" => [
            ["EVAL", "KEYS[1] = 'changed' return KEYS[1]", "1", "same"],
            ["EVAL", "return KEYS[1]", "1", "same"],
        ],
        "globals read directly and through the guard" => [
            ["EVAL", "return {tonumber(ARGV[1]) + 1, type(redis.call), type(string.format), type(_G)}", "0", "41"],
            ["EVAL", "return undefined_global", "0"],
            ["EVAL", "local function f() return also_undefined end return f()", "0"],
            ["EVAL", "leak = 1", "0"],
            ["EVAL", "tonumber = nil", "0"],
            ["EVAL", "local function f() leak_later = 1 end return 1", "0"],
            ["EVAL", "local function f() leak_later = 1 end f() return 1", "0"],
            ["EVAL", "if false then late = 1 end return tonumber('7')", "0"],
            ["EVAL", "return {type(leak), type(tonumber)}", "0"],
            ["EVAL", "redis.call = nil", "0"],
            ["EVAL", "return loadstring('return KEYS[1]')()", "1", "k"],
        ],
    });
}

/// KEYS and ARGV longer than the tables Ember keeps between runs, then short ones again.
#[test]
fn long_keys_and_argv_then_short_ones_match_redis() {
    let Some(oracle) = RedisOracle::start() else {
        return;
    };
    let ember = Ember::start(1);
    let many: Vec<String> = (0..200).map(|i| format!("k{i}")).collect();
    let script =
        "return {#KEYS, #ARGV, KEYS[1], KEYS[#KEYS], ARGV[1], ARGV[#ARGV], tostring(KEYS[150])}";
    let mut requests: Vec<Vec<String>> = Vec::new();
    for (keys, args) in [(150, 50), (3, 2), (100, 100), (0, 1), (65, 0), (2, 64)] {
        let mut request = vec!["EVAL".to_owned(), script.to_owned(), keys.to_string()];
        request.extend(many[..keys].iter().cloned());
        request.extend(many[..args].iter().map(|arg| format!("a{arg}")));
        requests.push(request);
    }
    let replies = |port: u16| -> Vec<String> {
        let mut con = common::connect(port, false);
        requests
            .iter()
            .map(|request| {
                let args: Vec<&[u8]> = request.iter().map(|arg| arg.as_bytes()).collect();
                show(&run(&mut con, &args))
            })
            .collect()
    };
    assert_eq!(replies(ember.port), replies(oracle.port));
}

/// Scripts and function libraries have an interpreter each on every shard, as Redis 7 has one of
/// each: INFO tells their memory apart, SCRIPT FLUSH drops the scripts' interpreters whole (and
/// leaves the libraries loaded), and a fresh scripts' interpreter is small (Redis's own test,
/// "EVAL does not leak in the Lua stack", wants it under 100 KB after 10,000 runs).
#[test]
fn scripts_and_functions_have_an_interpreter_each() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    let field = |con: &mut redis::Connection, name: &str| common::info_field(con, "memory", name);
    let (low, high) = keys_on_both_shards("vm");
    let _: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg("#!lua name=vmlib\nredis.register_function('vmget', function(keys) return redis.call('GET', keys[1]) end)")
        .query(&mut con)
        .unwrap();
    for key in [&low, &high] {
        let _: Option<String> = redis::cmd("FCALL")
            .arg("vmget")
            .arg(1)
            .arg(key)
            .query(&mut con)
            .unwrap();
    }
    let functions_vm = field(&mut con, "used_memory_vm_functions");
    assert!(functions_vm > 0, "the libraries' interpreters");
    assert_eq!(field(&mut con, "used_memory_lua"), 0, "no script has run");
    for key in [&low, &high] {
        let _: Option<String> = redis::cmd("EVAL")
            .arg("return redis.call('GET', KEYS[1])")
            .arg(1)
            .arg(key)
            .query(&mut con)
            .unwrap();
    }
    let eval_vm = field(&mut con, "used_memory_lua");
    assert!(eval_vm > 0);
    assert_eq!(field(&mut con, "used_memory_vm_eval"), eval_vm);
    assert_eq!(
        field(&mut con, "used_memory_vm_total"),
        eval_vm + field(&mut con, "used_memory_vm_functions")
    );
    redis::cmd("SCRIPT").arg("FLUSH").exec(&mut con).unwrap();
    assert_eq!(
        field(&mut con, "used_memory_lua"),
        0,
        "every shard dropped its scripts' interpreter"
    );
    assert!(
        field(&mut con, "used_memory_vm_functions") > 0,
        "the libraries stay"
    );
    let _: () = redis::cmd("SET")
        .arg(&low)
        .arg("kept")
        .query(&mut con)
        .unwrap();
    let value: String = redis::cmd("FCALL")
        .arg("vmget")
        .arg(1)
        .arg(&low)
        .query(&mut con)
        .unwrap();
    assert_eq!(value, "kept");
    // Redis's test: 10,000 runs of one script keep the scripts' memory under 100 KB.
    let mut pipe = redis::pipe();
    for _ in 0..10_000 {
        pipe.cmd("EVAL")
            .arg("return redis.call('INCR', KEYS[1])")
            .arg(1)
            .arg("vm:counter")
            .ignore();
    }
    pipe.exec(&mut con).unwrap();
    let used = field(&mut con, "used_memory_lua");
    assert!(
        used < 100 * 1024,
        "used_memory_lua {used} after 10,000 scripts"
    );
    let counter: i64 = redis::cmd("GET").arg("vm:counter").query(&mut con).unwrap();
    assert_eq!(counter, 10_000);
}

/// DEBUG PROTOCOL's values, and scripts that return RESP3's types (`{big_number=}`, `{map=}`,
/// `{set=}`, `{double=}`, `{verbatim_string=}`) or receive them through `redis.call`: byte for
/// byte Redis's replies, in RESP2 and RESP3, whatever protocol the script chose.
#[test]
fn resp3_types_through_debug_protocol_and_scripts_match_redis() {
    let ember = Ember::start_with(&["--threads", "2", "--enable-debug-command", "yes"]);
    let Some(redis) = RedisOracle::start() else {
        return;
    };
    let exchange = |port: u16| -> Vec<String> {
        let mut raw = common::Raw::connect(port);
        let mut replies = Vec::new();
        let _ = raw.command(&[b"DEBUG", b"SET-DISABLE-DENY-SCRIPTS", b"1"]);
        for protocol in [b"2", b"3"] {
            let _ = raw.command(&[b"HELLO", protocol]);
            for kind in [
                "string", "integer", "double", "bignum", "null", "array", "set", "map", "attrib",
                "push", "verbatim", "true", "false", "nonsense",
            ] {
                let mut reply = raw.command(&[b"DEBUG", b"PROTOCOL", kind.as_bytes()]);
                if kind == "push" && protocol == b"3" {
                    // The push, then the reply.
                    reply.extend(raw.reply());
                }
                replies.push(String::from_utf8_lossy(&reply).into_owned());
            }
            for lua_protocol in ["2", "3"] {
                for kind in [
                    "bignum", "map", "set", "double", "null", "verbatim", "true", "attrib",
                ] {
                    let script = format!(
                        "redis.setresp({lua_protocol}) return redis.call('debug', 'protocol', '{kind}')"
                    );
                    let reply = raw.command(&[b"EVAL", script.as_bytes(), b"0"]);
                    replies.push(String::from_utf8_lossy(&reply).into_owned());
                }
            }
            for script in [
                "return {big_number='123\\r\\n456'}",
                "return {double=2.5}",
                "return {map={a=1}}",
                "return {set={x=true}}",
                "return {verbatim_string={format='txt', string='hi'}}",
            ] {
                let reply = raw.command(&[b"EVAL", script.as_bytes(), b"0"]);
                replies.push(String::from_utf8_lossy(&reply).into_owned());
            }
        }
        replies
    };
    let ours = exchange(ember.port);
    let theirs = exchange(redis.port);
    for (index, (ours, theirs)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(ours, theirs, "reply {index}");
    }
    assert_eq!(ours.len(), theirs.len());
}

/// A script's commands see the clock as it was when the script started, on every shard: a key
/// whose TTL passes while the script runs still exists for it (the active expiry left on).
/// DEBUG OBJECT finds a key whose TTL passed and that nothing removed yet, as Redis's does.
#[test]
fn a_script_sees_its_start_time_on_every_shard() {
    let ember = Ember::start_with(&["--threads", "2", "--enable-debug-command", "yes"]);
    let mut con = ember.connect(false);
    let _: () = common::query(&mut con, &["DEBUG", "SET-DISABLE-DENY-SCRIPTS", "1"]);
    for shard in 0..2 {
        let key = common::key_on_shard("frozen", shard, 2);
        for _ in 0..5 {
            let exists: i64 = common::query(
                &mut con,
                &[
                    "EVAL",
                    "redis.call('SET', KEYS[1], 'v', 'PX', 1) redis.call('DEBUG', 'SLEEP', 0.01) return redis.call('EXISTS', KEYS[1])",
                    "1",
                    &key,
                ],
            );
            assert_eq!(exists, 1, "key on shard {shard}");
        }
        let _: () = common::query(&mut con, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
        let _: () = common::query(&mut con, &["SET", &key, "v", "PX", "1"]);
        std::thread::sleep(std::time::Duration::from_millis(5));
        let object: String = common::query(&mut con, &["DEBUG", "OBJECT", &key]);
        assert!(object.contains("encoding:embstr"), "{object}");
        assert_eq!(common::query::<i64>(&mut con, &["EXISTS", &key]), 0);
        let _: () = common::query(&mut con, &["DEBUG", "SET-ACTIVE-EXPIRE", "1"]);
    }
}
