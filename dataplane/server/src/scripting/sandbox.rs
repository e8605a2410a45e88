//! A shard's interpreter: the libraries Redis gives scripts, the `redis` table, and the sandbox.
//!
//! The sandbox is Redis 7's: scripts see the globals through a read-only proxy, so writing a
//! global fails with "Attempt to modify a readonly table" and reading one that does not exist
//! with "Script attempted to access nonexistent global variable"; the library tables are
//! read-only proxies too, `rawset` refuses them, and `loadstring` compiles into the same
//! sandbox. Nothing a script does survives into the next one. Redis makes tables read-only
//! inside its patched Lua; Ember's Lua is the stock 5.1, so proxies do the same job.

use std::cell::RefCell;
use std::rc::Rc;

use mlua::{Function, Lua, LuaOptions, MultiValue, StdLib, Table, Value};

use super::run::RunState;
use super::{Compiled, ScriptFlags};

/// The Lua half of the sandbox: the read-only proxies, the global table's guard, and `pcall`,
/// which runs Lua functions (and `redis.call`/`redis.pcall`, C functions that yield while a
/// command waits for another shard) in a coroutine whose yields it passes outward.
const PRELUDE: &str = r#"
local real, redis_call, redis_pcall, hooked, note, raw_error, raw_setmetatable, raw_rawset,
      raw_loadstring, raw_setfenv, raw_tostring, raw_type, base, wait_mark = ...
-- The base library's functions in C (scripting/globals.rs); `proxies` maps each read-only
-- proxy to its table, for `rawget`, `next` and `pairs`.
local proxies = base.proxies
local readonly = raw_setmetatable({}, {__mode = "k"})
local raw_byte = real.string.byte
local function refuse() raw_error("Attempt to modify a readonly table", 2) end
-- What getmetatable answers for a read-only table: read-only itself, as Redis's are.
local shown_meta = raw_setmetatable({}, {__newindex = refuse, __metatable = false})
readonly[shown_meta] = true
local function proxy(table)
  local p = raw_setmetatable({}, {__index = table, __newindex = refuse, __metatable = shown_meta})
  readonly[p] = true
  proxies[p] = table
  return p
end
local redis = real.redis
-- redis.call and redis.pcall are C functions (scripting/rawcall.rs); pcall runs them through
-- a Lua function, so that a call waiting for another shard may yield.
redis.call, redis.pcall = redis_call, redis_pcall
local function call_in_lua(...) return redis_call(...) end
local function pcall_in_lua(...) return redis_pcall(...) end
-- pcall runs a Lua function in a coroutine that carries the time-limit hook and passes its
-- yields (a busy script yielding to its shard, a call waiting for another shard) outward.
local raw_pcall, raw_resume, raw_yield, raw_status =
  real.pcall, real.coroutine.resume, real.coroutine.yield, real.coroutine.status
local function step(co, ok, ...)
  if not ok or raw_status(co) == "dead" then return ok, ... end
  return step(co, raw_resume(co, raw_yield(...)))
end
real.pcall = function(f, ...)
  if f == redis_call then f = call_in_lua elseif f == redis_pcall then f = pcall_in_lua end
  local co = hooked(f)
  if not co then return raw_pcall(f, ...) end
  return step(co, raw_resume(co, ...))
end
-- A script's own coroutines pass a waiting call's yield (the wait mark) outward too, and
-- resume with what the wait came to, so a call on another shard answers inside them as
-- anywhere else; their other yields are theirs.
local raw_create = real.coroutine.create
local function pass(co, ok, ...)
  if ok and (...) == wait_mark and raw_status(co) == "suspended" then
    return pass(co, raw_resume(co, raw_yield(wait_mark)))
  end
  return ok, ...
end
real.coroutine.resume = function(co, ...)
  return pass(co, raw_resume(co, ...))
end
local raw_select, raw_unpack = real.select, real.unpack
local function collect(...) return raw_select('#', ...), {...} end
real.coroutine.wrap = function(f)
  local co = raw_create(f)
  return function(...)
    -- Not a tail call: an error names the script's line, as Lua's own wrap does.
    local n, results = collect(pass(co, raw_resume(co, ...)))
    if not results[1] then
      local message = results[2]
      if raw_type(message) == "string" then raw_error(message, 2) end
      raw_error(message, 0)
    end
    return raw_unpack(results, 2, n)
  end
end
for _, name in ipairs({"string", "table", "math", "os", "redis", "cjson", "bit", "cmsgpack", "struct", "coroutine"}) do
  if real[name] then real[name] = proxy(real[name]) end
end
local env = proxy(real)
real._G = env
real.rawset = function(table, key, value)
  if readonly[table] then raw_error("Attempt to modify a readonly table", 2) end
  return raw_rawset(table, key, value)
end
real.setmetatable = function(table, meta)
  if readonly[table] then
    local message = "ERR Attempt to modify a readonly table"
    note(message)
    raw_error(message, 0)
  end
  return raw_setmetatable(table, meta)
end
real.error, real.rawget, real.next, real.pairs = base.error, base.rawget, base.next, base.pairs
real.loadstring = function(text, name)
  -- Redis 7 refuses precompiled (binary) chunks.
  if raw_type(text) == "string" and raw_byte(text, 1) == 27 then
    return nil, "binary chunks are not allowed"
  end
  local chunk, message = raw_loadstring(text, name)
  if chunk then raw_setfenv(chunk, env) end
  return chunk, message
end
raw_setmetatable(real, {
  __index = function(_, key)
    raw_error("Script attempted to access nonexistent global variable '" .. raw_tostring(key) .. "'", 2)
  end,
  __metatable = shown_meta,
})
-- What a function library's top level sees while it loads (Redis's library API): only `redis`,
-- with register_function, log, the log levels and the version; reading anything else fails as
-- a missing global does, and every assignment is refused. The functions it registers see the
-- sandbox's globals: `finish` points the environment at them once the load ends, as Redis
-- swaps its globals' index table.
local missing = {
  __index = function(_, key)
    raw_error("Script attempted to access nonexistent global variable '" .. raw_tostring(key) .. "'", 2)
  end,
}
local library_api = {"log", "LOG_DEBUG", "LOG_VERBOSE", "LOG_NOTICE", "LOG_WARNING", "REDIS_VERSION", "REDIS_VERSION_NUM"}
local function library_env(register)
  local api = {register_function = register}
  for _, name in ipairs(library_api) do api[name] = redis[name] end
  local load_globals = raw_setmetatable({redis = proxy(raw_setmetatable(api, missing))}, missing)
  local meta = {__index = load_globals, __newindex = refuse, __metatable = shown_meta}
  local library = raw_setmetatable({}, meta)
  readonly[library] = true
  return library, function() meta.__index = env end
end
-- A run's coroutine starts in one of these: `setup` sets KEYS and ARGV (or answers them, for a
-- function), then the script runs by a tail call, so its frames are the coroutine's only ones.
local function run_script(setup, f) setup() return f() end
local function run_function(setup, f) return f(setup()) end
return env, library_env, run_script, run_function
"#;

/// Globals the sandbox removes: files, modules, environments and the debug library.
const REMOVED_GLOBALS: &[&str] = &[
    "dofile", "loadfile", "load", "require", "module", "package", "io", "debug", "getfenv",
    "setfenv", "newproxy", "gcinfo", "print",
];

/// Creates a shard's interpreter. `state` is the running script's state that `redis.call`
/// and the hook read.
///
/// # Errors
/// When Lua cannot be set up.
pub fn new_interpreter(state: Rc<RefCell<Option<RunState>>>) -> mlua::Result<Lua> {
    let libraries = StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::OS;
    let lua = Lua::new_with(libraries, LuaOptions::default())?;
    let globals = lua.globals();
    // os.clock only: the rest of os reaches the process and the clock of the machine.
    let os: Table = globals.get("os")?;
    let clock: Function = os.get("clock")?;
    let limited_os = lua.create_table()?;
    limited_os.set("clock", clock)?;
    globals.set("os", limited_os)?;
    super::libs::install(&lua)?;
    globals.raw_set("tonumber", super::tonumber::function(&lua)?)?;
    globals.set("redis", redis_table(&lua)?)?;
    let raw_setfenv: Function = globals.get("setfenv")?;
    for name in REMOVED_GLOBALS {
        globals.raw_set(*name, Value::Nil)?;
    }
    let (call, pcall) = super::rawcall::call_functions(&lua, state.clone())?;
    let hooked = super::run::hooked_coroutine_function(&lua)?;
    let note = note_function(&lua, state)?;
    let proxies = lua.create_table()?;
    proxies.set_metatable(Some(lua.create_table_from([("__mode", "k")])?));
    let script_error = super::globals::error_function(&lua, note.clone())?;
    let (rawget, next, pairs) = super::globals::through_proxies(&lua, &proxies)?;
    let base = lua.create_table()?;
    base.set("proxies", proxies)?;
    base.set("error", script_error)?;
    base.set("rawget", rawget)?;
    base.set("next", next)?;
    base.set("pairs", pairs)?;
    let prelude = lua
        .load(PRELUDE)
        .set_name(super::globals::SANDBOX_CHUNK)
        .into_function()?;
    let (env, library_env, run_script, run_function): (Table, Function, Function, Function) =
        prelude.call((
            globals.clone(),
            call,
            pcall,
            hooked,
            note,
            globals.get::<Function>("error")?,
            globals.get::<Function>("setmetatable")?,
            globals.get::<Function>("rawset")?,
            globals.get::<Function>("loadstring")?,
            raw_setfenv,
            globals.get::<Function>("tostring")?,
            globals.get::<Function>("type")?,
            base,
            mlua::LightUserData(super::rawcall::wait_mark()),
        ))?;
    lua.set_named_registry_value("ember_env", env)?;
    lua.set_named_registry_value("ember_library_env", library_env)?;
    lua.set_named_registry_value("ember_run_script", run_script)?;
    lua.set_named_registry_value("ember_run_function", run_function)?;
    lua.set_named_registry_value("ember_setup", super::rawcall::setup_function(&lua)?)?;
    Ok(lua)
}

/// The `redis` table but `call` and `pcall` (the prelude adds those).
fn redis_table(lua: &Lua) -> mlua::Result<Table> {
    let redis = lua.create_table()?;
    redis.set(
        "error_reply",
        lua.create_function(|lua, message: mlua::String| {
            let text = message.to_string_lossy();
            let text = text.strip_prefix('-').unwrap_or(&text).to_owned();
            // A message with no code of its own gets ERR, as Redis adds it.
            let text = if text.contains(' ') {
                text
            } else {
                format!("ERR {text}")
            };
            super::convert::error_table(lua, &text)
        })?,
    )?;
    redis.set(
        "status_reply",
        lua.create_function(|lua, message: mlua::String| {
            let table = lua.create_table()?;
            table.set("ok", message)?;
            Ok(table)
        })?,
    )?;
    redis.set(
        "sha1hex",
        lua.create_function(|_, args: MultiValue| {
            if args.len() != 1 {
                return Err(mlua::Error::RuntimeError(
                    "wrong number of arguments".into(),
                ));
            }
            let text = match args.into_iter().next().unwrap_or(Value::Nil) {
                Value::String(text) => text.as_bytes().to_vec(),
                Value::Integer(value) => value.to_string().into_bytes(),
                Value::Number(value) => super::libs::format_g14(value).into_bytes(),
                _ => Vec::new(),
            };
            Ok(super::sha1::hex(&text))
        })?,
    )?;
    redis.set(
        "log",
        lua.create_function(|_, args: MultiValue| {
            let mut args = args.into_iter();
            let level = match args.next() {
                Some(Value::Integer(level)) => level,
                Some(Value::Number(level)) => level as i64,
                _ => {
                    return Err(mlua::Error::RuntimeError(
                        "First argument must be a number (log level).".into(),
                    ))
                }
            };
            let words: Vec<String> = args
                .map(|value| match value {
                    Value::String(text) => text.to_string_lossy(),
                    other => other.to_string().unwrap_or_default(),
                })
                .collect();
            if level >= LOG_WARNING {
                eprintln!("ember: script: {}", words.join(" "));
            }
            Ok(())
        })?,
    )?;
    redis.set("acl_check_cmd", lua.create_function(super::run::acl_check)?)?;
    redis.set(
        "setresp",
        lua.create_function(|lua, version: i64| {
            if version != 2 && version != 3 {
                return Err(mlua::Error::RuntimeError(
                    "RESP version must be 2 or 3.".into(),
                ));
            }
            super::run::set_resp(lua, version == 3);
            Ok(())
        })?,
    )?;
    redis.set("set_repl", lua.create_function(|_, _: MultiValue| Ok(()))?)?;
    redis.set(
        "replicate_commands",
        lua.create_function(|_, _: MultiValue| Ok(true))?,
    )?;
    redis.set(
        "breakpoint",
        lua.create_function(|_, _: MultiValue| Ok(false))?,
    )?;
    redis.set("debug", lua.create_function(|_, _: MultiValue| Ok(()))?)?;
    for (name, value) in [
        ("LOG_DEBUG", 0),
        ("LOG_VERBOSE", 1),
        ("LOG_NOTICE", 2),
        ("LOG_WARNING", LOG_WARNING),
        ("REPL_NONE", 0),
        ("REPL_AOF", 1),
        ("REPL_SLAVE", 2),
        ("REPL_REPLICA", 2),
        ("REPL_ALL", 3),
    ] {
        redis.set(name, value)?;
    }
    redis.set("REDIS_VERSION", "7.2.4")?;
    redis.set("REDIS_VERSION_NUM", 0x0007_0204)?;
    Ok(redis)
}

/// redis.LOG_WARNING: messages at this level reach the server's log.
const LOG_WARNING: i64 = 3;

/// `note(error)`: remembers an error about to be raised (a table passed to `error`, or the
/// sandbox's refusal to modify a read-only table) with the line of the script that raised it,
/// for the reply. `redis.call` notes its own errors ([`super::run::note_error`]).
fn note_function(lua: &Lua, state: Rc<RefCell<Option<RunState>>>) -> mlua::Result<Function> {
    lua.create_function(move |lua, error: Value| {
        let line = script_line(lua);
        let (message, counted) = match &error {
            Value::String(text) => (text.to_string_lossy(), false),
            Value::Table(table) => (
                match table.raw_get::<Value>("err")? {
                    Value::String(text) => text.to_string_lossy(),
                    _ => "ERR unknown error".to_owned(),
                },
                table.raw_get::<Option<bool>>(super::run::COUNTED_FIELD)? == Some(true),
            ),
            _ => return Ok(()),
        };
        if let Some(state) = state.borrow_mut().as_mut() {
            state.noted_error = Some(super::run::NotedError {
                message,
                line,
                table: matches!(error, Value::Table(_)),
                counted,
                after_wait: false,
            });
        }
        Ok(())
    })
}

/// The line of the innermost frame of the user's script (or function library).
pub fn script_line(lua: &Lua) -> Option<i32> {
    (1..32).find_map(|level| {
        let frame = lua.inspect_stack(level)?;
        let source = frame.source();
        let is_user = source
            .source
            .as_deref()
            .is_some_and(|source| source.starts_with("@user_"));
        is_user.then(|| frame.curr_line())
    })
}

/// Parses a `#!lua` shebang: the flags, and the body with the shebang line blanked (so line
/// numbers stay those of the text sent).
///
/// # Errors
/// Redis's errors for another engine and an unknown flag.
pub fn shebang(body: &str) -> Result<(ScriptFlags, std::borrow::Cow<'_, str>), String> {
    let Some(rest) = body.strip_prefix("#!") else {
        return Ok((ScriptFlags::empty(), body.into()));
    };
    let (line, after) = rest.split_once('\n').unwrap_or((rest, ""));
    let mut words = line.split_whitespace();
    if words.next() != Some("lua") {
        return Err(format!(
            "ERR Unexpected engine in script shebang: #!{}",
            line.split_whitespace().next().unwrap_or("")
        ));
    }
    let mut flags = ScriptFlags::SHEBANG;
    for word in words {
        let Some(list) = word.strip_prefix("flags=") else {
            if word.starts_with("name=") {
                continue; // FUNCTION LOAD's library name: read by the caller.
            }
            return Err(format!("ERR Unknown lua shebang option: {word}"));
        };
        for flag in list.split(',').filter(|flag| !flag.is_empty()) {
            flags |= parse_flag(flag)
                .ok_or_else(|| format!("ERR Unexpected flag in script shebang: {flag}"))?;
        }
    }
    Ok((flags, format!("\n{after}").into()))
}

/// One flag's name as scripts and functions write it.
pub fn parse_flag(name: &str) -> Option<ScriptFlags> {
    Some(match name {
        "no-writes" => ScriptFlags::NO_WRITES,
        "allow-oom" => ScriptFlags::ALLOW_OOM,
        "allow-stale" => ScriptFlags::ALLOW_STALE,
        "no-cluster" => ScriptFlags::NO_CLUSTER,
        "allow-cross-slot-keys" => ScriptFlags::ALLOW_CROSS_SLOT,
        _ => return None,
    })
}

/// Compiles an EVAL body in the sandbox.
///
/// # Errors
/// Redis's shebang errors, or "Error compiling script".
pub fn compile_script(lua: &Lua, body: &str) -> Result<Compiled, String> {
    let (flags, body) = shebang(body)?;
    let function = compile(lua, &untail(&body), "@user_script")
        .map_err(|message| format!("ERR Error compiling script (new function): {message}"))?;
    // A script that never assigns a global reads the real globals, not their read-only proxy:
    // it cannot tell the difference, and each global it reads is one table lookup, not two
    // and a metatable (see [`super::bytecode`]).
    if !super::bytecode::assigns_globals(&function.dump(false)) {
        function
            .set_environment(lua.globals())
            .map_err(|error| format!("ERR Error compiling script (new function): {error}"))?;
    }
    Ok(Compiled {
        function: Rc::new(function),
        flags,
    })
}

/// Compiles `code` as chunk `name` with the sandbox's globals.
///
/// # Errors
/// Lua's compile error message.
pub fn compile(lua: &Lua, code: &str, name: &str) -> Result<Function, String> {
    let env: Table = lua
        .named_registry_value("ember_env")
        .map_err(|error| error.to_string())?;
    lua.load(code)
        .set_name(name)
        .set_environment(env)
        .into_function()
        .map_err(|error| match error {
            mlua::Error::SyntaxError { message, .. } => message,
            other => other.to_string(),
        })
}

/// Wraps `return redis.call(...)` (and `redis.pcall`) in parentheses, so it is not a tail call.
///
/// Why: Redis's `redis.call` is a C function, and Lua 5.1 keeps the caller's frame when it
/// tail-calls a C function, so Redis's error replies name the script's line. Ember's is a Lua
/// function (it must be able to yield while another shard answers), and a tail call to a Lua
/// function drops the caller's frame and with it the line. A parenthesised call is not a tail
/// call; it returns the same single value. Strings and comments are skipped; when the text does
/// not scan (unbalanced), it is left as it is.
pub fn untail(body: &str) -> std::borrow::Cow<'_, str> {
    let bytes = body.as_bytes();
    let mut inserts: Vec<(usize, &str)> = Vec::new();
    let mut position = 0;
    while position < bytes.len() {
        if let Some(end) = skip_string_or_comment(bytes, position) {
            position = end;
            continue;
        }
        let at_word_start = position == 0
            || !(bytes[position - 1].is_ascii_alphanumeric() || bytes[position - 1] == b'_');
        if at_word_start && bytes[position..].starts_with(b"return") {
            let mut cursor = position + b"return".len();
            while cursor < bytes.len() && bytes[cursor].is_ascii_whitespace() {
                cursor += 1;
            }
            let call_start = cursor;
            let rest = &bytes[cursor..];
            let name_len = [&b"redis.call"[..], b"redis.pcall"]
                .iter()
                .find(|name| rest.starts_with(name))
                .map(|name| name.len());
            if let (Some(name_len), true) = (name_len, cursor > position + 6) {
                cursor += name_len;
                while cursor < bytes.len() && bytes[cursor].is_ascii_whitespace() {
                    cursor += 1;
                }
                if bytes.get(cursor) == Some(&b'(') {
                    if let Some(close) = matching_paren(bytes, cursor) {
                        inserts.push((call_start, "("));
                        inserts.push((close + 1, ")"));
                        position = close + 1;
                        continue;
                    }
                }
            }
        }
        position += 1;
    }
    if inserts.is_empty() {
        return body.into();
    }
    let mut out = String::with_capacity(body.len() + inserts.len());
    let mut copied = 0;
    for (at, text) in inserts {
        out.push_str(&body[copied..at]);
        out.push_str(text);
        copied = at;
    }
    out.push_str(&body[copied..]);
    out.into()
}

/// The position after the string or comment starting at `start`, if one starts there.
fn skip_string_or_comment(bytes: &[u8], start: usize) -> Option<usize> {
    let rest = &bytes[start..];
    if rest.starts_with(b"--") {
        if let Some(end) = long_bracket_end(bytes, start + 2) {
            return Some(end);
        }
        let line_end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |p| start + p);
        return Some(line_end);
    }
    match rest.first()? {
        quote @ (b'"' | b'\'') => {
            let mut cursor = start + 1;
            while cursor < bytes.len() && bytes[cursor] != *quote {
                cursor += if bytes[cursor] == b'\\' { 2 } else { 1 };
            }
            Some((cursor + 1).min(bytes.len()))
        }
        b'[' => long_bracket_end(bytes, start),
        _ => None,
    }
}

/// The position after a long bracket (`[[...]]`, `[==[...]==]`) starting at `start`.
fn long_bracket_end(bytes: &[u8], start: usize) -> Option<usize> {
    if bytes.get(start) != Some(&b'[') {
        return None;
    }
    let level = bytes[start + 1..]
        .iter()
        .take_while(|&&b| b == b'=')
        .count();
    if bytes.get(start + 1 + level) != Some(&b'[') {
        return None;
    }
    let closing: Vec<u8> = std::iter::once(b']')
        .chain(std::iter::repeat_n(b'=', level))
        .chain(std::iter::once(b']'))
        .collect();
    let body_start = start + 2 + level;
    let found = bytes[body_start..]
        .windows(closing.len())
        .position(|window| window == closing.as_slice())?;
    Some(body_start + found + closing.len())
}

/// The position of the `)` that closes the `(` at `open`.
fn matching_paren(bytes: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut position = open;
    while position < bytes.len() {
        if let Some(end) = skip_string_or_comment(bytes, position) {
            position = end;
            continue;
        }
        match bytes[position] {
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(position);
                }
            }
            _ => {}
        }
        position += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn tail_calls_are_parenthesised() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "plain",
                "return redis.call('get', 'k')",
                "return (redis.call('get', 'k'))",
            ),
            (
                "pcall",
                "return redis.pcall('x')",
                "return (redis.pcall('x'))",
            ),
            (
                "nested parens",
                "return redis.call('set', f(1), 'v')",
                "return (redis.call('set', f(1), 'v'))",
            ),
            (
                "paren in string",
                "return redis.call('set', ')', 'v')",
                "return (redis.call('set', ')', 'v'))",
            ),
            (
                "not a tail call",
                "local x = redis.call('get', 'k')",
                "local x = redis.call('get', 'k')",
            ),
            (
                "in a comment",
                "-- return redis.call('x')\nreturn 1",
                "-- return redis.call('x')\nreturn 1",
            ),
            (
                "in a long string",
                "return [[return redis.call('x')]]",
                "return [[return redis.call('x')]]",
            ),
            (
                "another word",
                "myreturn redis.call('x')",
                "myreturn redis.call('x')",
            ),
            (
                "unbalanced",
                "return redis.call('x'",
                "return redis.call('x'",
            ),
        ];
        for (name, body, expected) in cases {
            assert_eq!(super::untail(body), *expected, "{name}");
        }
    }
}
