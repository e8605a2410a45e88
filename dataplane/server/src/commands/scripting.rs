//! Lua scripting and functions: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT, FUNCTION, FCALL,
//! FCALL_RO. The engine is [`crate::scripting`]; this file parses the commands and replies.

use std::rc::Rc;
use std::sync::atomic::Ordering;

use ember_resp::ReplySink;

use super::{command, is, CommandResult, CommandSpec, F, NO_KEYS};
use crate::client::Client;
use crate::scripting::functions::{self, Library};
use crate::scripting::run::{invoke, Invocation};
use crate::shard::Shard;

/// Which scripting command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptOp {
    /// EVAL
    Eval,
    /// EVAL_RO
    EvalRo,
    /// EVALSHA
    EvalSha,
    /// EVALSHA_RO
    EvalShaRo,
    /// SCRIPT
    Script,
    /// FUNCTION
    Function,
    /// FCALL
    Fcall,
    /// FCALL_RO
    FcallRo,
}

use super::Handler::Script as S;

/// Redis 7's flags of EVAL and FCALL: noscript, stale, skip-monitor, may-replicate,
/// no-mandatory-keys, movablekeys (Ember declares the first two). Keys are found by the
/// handler from numkeys, so the table declares none.
const EVAL_FLAGS: F = F::NOSCRIPT.union(F::STALE);
const EVAL_RO_FLAGS: F = EVAL_FLAGS.union(F::READONLY);
/// SCRIPT and FUNCTION: their KILL subcommand must run while a script is busy; the handler
/// refuses the others then.
const CONTAINER_FLAGS: F = F::NOSCRIPT.union(F::ALLOW_BUSY);

/// This family's commands, in COMMAND's order.
pub static COMMANDS: &[CommandSpec] = &[
    command(
        "eval",
        -3,
        EVAL_FLAGS,
        NO_KEYS,
        "scripting",
        "2.6.0",
        "Executes a server-side Lua script.",
        S(ScriptOp::Eval),
    ),
    command(
        "eval_ro",
        -3,
        EVAL_RO_FLAGS,
        NO_KEYS,
        "scripting",
        "7.0.0",
        "Executes a read-only server-side Lua script.",
        S(ScriptOp::EvalRo),
    ),
    command(
        "evalsha",
        -3,
        EVAL_FLAGS,
        NO_KEYS,
        "scripting",
        "2.6.0",
        "Executes a server-side Lua script by SHA1 digest.",
        S(ScriptOp::EvalSha),
    ),
    command(
        "evalsha_ro",
        -3,
        EVAL_RO_FLAGS,
        NO_KEYS,
        "scripting",
        "7.0.0",
        "Executes a read-only server-side Lua script by SHA1 digest.",
        S(ScriptOp::EvalShaRo),
    ),
    command(
        "script",
        -2,
        CONTAINER_FLAGS,
        NO_KEYS,
        "scripting",
        "2.6.0",
        "A container for Lua scripts management commands.",
        S(ScriptOp::Script),
    ),
    command(
        "function",
        -2,
        CONTAINER_FLAGS,
        NO_KEYS,
        "scripting",
        "7.0.0",
        "A container for function commands.",
        S(ScriptOp::Function),
    ),
    command(
        "fcall",
        -3,
        EVAL_FLAGS,
        NO_KEYS,
        "scripting",
        "7.0.0",
        "Invokes a function.",
        S(ScriptOp::Fcall),
    ),
    command(
        "fcall_ro",
        -3,
        EVAL_RO_FLAGS,
        NO_KEYS,
        "scripting",
        "7.0.0",
        "Invokes a read-only function.",
        S(ScriptOp::FcallRo),
    ),
];

/// Runs a scripting command.
///
/// # Errors
/// Redis's errors for each command.
pub async fn run(
    op: ScriptOp,
    shard: &Rc<Shard>,
    client: &mut Client,
    args: &[&[u8]],
    now_ms: u64,
    out: &mut ReplySink,
) -> CommandResult {
    match op {
        ScriptOp::Eval | ScriptOp::EvalRo | ScriptOp::EvalSha | ScriptOp::EvalShaRo => {
            eval(op, shard, client, args, now_ms, out).await
        }
        ScriptOp::Fcall | ScriptOp::FcallRo => {
            fcall(op == ScriptOp::FcallRo, shard, client, args, now_ms, out).await
        }
        ScriptOp::Script => {
            script(shard, args, out)?;
            // Flushed (a refusal returned above): every shard lets go of its scripts now.
            if is(args[1], "FLUSH") {
                crate::commands::remote::broadcast(
                    shard,
                    client.hold,
                    crate::shard::AdminRequest::ScriptsFlushed,
                )
                .await;
            }
            Ok(())
        }
        ScriptOp::Function => {
            function(shard, args, out)?;
            // A change of the libraries goes into the append-only file (their functions'
            // calls are logged as the commands they ran).
            let subcommand = args[1];
            if ["LOAD", "DELETE", "FLUSH", "RESTORE"]
                .iter()
                .any(|name| is(subcommand, name))
            {
                crate::aof::append(client.db, args);
            }
            Ok(())
        }
    }
}

/// The keys an EVAL, EVALSHA or FCALL request declares (COMMAND GETKEYS); `None` for SCRIPT
/// and FUNCTION, or when numkeys does not parse.
pub fn declared_keys<'a>(args: &'a [&'a [u8]]) -> Option<&'a [&'a [u8]]> {
    if args.len() < 3 || is(args[0], "SCRIPT") || is(args[0], "FUNCTION") {
        return None;
    }
    keys_and_args(args).ok().map(|(keys, _)| keys)
}

/// Splits `numkeys key... arg...` (arguments from position 2).
fn keys_and_args<'a>(
    args: &'a [&'a [u8]],
) -> Result<(&'a [&'a [u8]], &'a [&'a [u8]]), super::CommandError> {
    let count = super::parse_integer(args[2])?;
    if count < 0 {
        return Err("ERR Number of keys can't be negative".into());
    }
    let count = count as usize;
    if count > args.len() - 3 {
        return Err("ERR Number of keys can't be greater than number of args".into());
    }
    Ok((&args[3..3 + count], &args[3 + count..]))
}

async fn eval(
    op: ScriptOp,
    shard: &Rc<Shard>,
    client: &mut Client,
    args: &[&[u8]],
    now_ms: u64,
    out: &mut ReplySink,
) -> CommandResult {
    let (keys, argv) = keys_and_args(args)?;
    let registry = &shard.shared.scripts;
    let by_sha = matches!(op, ScriptOp::EvalSha | ScriptOp::EvalShaRo);
    let sha: std::borrow::Cow<'_, str> = if by_sha {
        match std::str::from_utf8(args[1]) {
            // The usual case: a client sends the digest as SCRIPT LOAD answered it.
            // (A fold, not `any`: no early exit, so the 40 bytes are checked as vectors.)
            Ok(text)
                if !text
                    .bytes()
                    .fold(false, |upper, byte| upper | byte.is_ascii_uppercase()) =>
            {
                text.into()
            }
            _ => String::from_utf8_lossy(args[1]).to_ascii_lowercase().into(),
        }
    } else {
        let body = args[1];
        let sha = crate::scripting::sha1::hex(body);
        if !registry.exists(&sha) {
            // Compile before caching, so a script that does not compile is not kept.
            let engine = shard.scripting();
            let lua = engine.lua(false).map_err(|error| format!("ERR {error}"))?;
            crate::scripting::sandbox::compile_script(lua, &String::from_utf8_lossy(body))?;
            registry.load(body);
        }
        sha.into()
    };
    if by_sha && sha.len() != 40 {
        return Err(crate::scripting::NOSCRIPT.into());
    }
    let compiled = shard.scripting().script(registry, &sha)?;
    let invocation = Invocation {
        name: &sha,
        compiled,
        keys,
        argv,
        read_only: matches!(op, ScriptOp::EvalRo | ScriptOp::EvalShaRo),
        function: false,
        command: args,
    };
    invoke(shard, client, invocation, now_ms, out).await
}

async fn fcall(
    read_only: bool,
    shard: &Rc<Shard>,
    client: &mut Client,
    args: &[&[u8]],
    now_ms: u64,
    out: &mut ReplySink,
) -> CommandResult {
    let name = String::from_utf8_lossy(args[1]).into_owned();
    let registry = &shard.shared.scripts;
    let compiled = shard.scripting().function(registry, &name)?;
    // FCALL words a numkeys that is not a number its own way.
    if super::parse_integer(args[2]).is_err() {
        return Err("ERR Bad number of keys provided".into());
    }
    let (keys, argv) = keys_and_args(args)?;
    let invocation = Invocation {
        name: &name,
        compiled,
        keys,
        argv,
        read_only,
        function: true,
        command: args,
    };
    invoke(shard, client, invocation, now_ms, out).await
}

/// The BUSY error for a SCRIPT or FUNCTION subcommand other than KILL while a script is busy.
fn refuse_while_busy(shard: &Shard, subcommand: &[u8]) -> CommandResult {
    match shard.shared.scripts.busy_error() {
        Some(message) if !is(subcommand, "KILL") && !is(subcommand, "STATS") => Err(message.into()),
        _ => Ok(()),
    }
}

fn script(shard: &Rc<Shard>, args: &[&[u8]], out: &mut ReplySink) -> CommandResult {
    let registry = &shard.shared.scripts;
    let subcommand = args[1];
    refuse_while_busy(shard, subcommand)?;
    let arity_error = || {
        super::CommandError::from(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try SCRIPT HELP.",
            String::from_utf8_lossy(subcommand)
        ))
    };
    if is(subcommand, "LOAD") {
        if args.len() != 3 {
            return Err(arity_error());
        }
        let engine = shard.scripting();
        let lua = engine.lua(false).map_err(|error| format!("ERR {error}"))?;
        crate::scripting::sandbox::compile_script(lua, &String::from_utf8_lossy(args[2]))?;
        let sha = registry.load(args[2]);
        out.bulk(sha.as_bytes());
    } else if is(subcommand, "EXISTS") {
        if args.len() < 3 {
            return Err(arity_error());
        }
        out.array_len(args.len() - 2);
        for sha in &args[2..] {
            let sha = String::from_utf8_lossy(sha).to_ascii_lowercase();
            out.integer(i64::from(registry.exists(&sha)));
        }
    } else if is(subcommand, "FLUSH") {
        if args.len() > 3 || (args.len() == 3 && !is(args[2], "ASYNC") && !is(args[2], "SYNC")) {
            return Err("ERR SCRIPT FLUSH only support SYNC|ASYNC option".into());
        }
        registry.flush();
        out.ok();
    } else if is(subcommand, "KILL") {
        if args.len() != 2 {
            return Err(arity_error());
        }
        registry.kill(false)?;
        out.ok();
    } else if is(subcommand, "HELP") {
        let lines: &[&str] = &[
            "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "DEBUG (YES|SYNC|NO)",
            "    Set the debug mode for subsequent scripts executed.",
            "EXISTS <sha1> [<sha1> ...]",
            "    Return information about the existence of the scripts in the script cache.",
            "FLUSH [ASYNC|SYNC]",
            "    Flush the Lua scripts cache. Very dangerous on replicas.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the scripts cache.",
            "    * SYNC: Synchronously flush the scripts cache.",
            "KILL",
            "    Kill the currently executing Lua script.",
            "LOAD <script>",
            "    Load a script into the scripts cache without executing it.",
            "HELP",
            "    Prints this help.",
        ];
        out.array_len(lines.len());
        for line in lines {
            out.simple(line.as_bytes());
        }
    } else {
        return Err(super::unknown_subcommand_message("script", subcommand).into());
    }
    Ok(())
}

fn function(shard: &Rc<Shard>, args: &[&[u8]], out: &mut ReplySink) -> CommandResult {
    let registry = &shard.shared.scripts;
    let subcommand = args[1];
    // FUNCTION STATS answers while a function is busy, but not while a script (EVAL) is.
    if is(subcommand, "STATS") && registry.running().is_some() && !registry.busy_is_function() {
        return Err(crate::scripting::BUSY.into());
    }
    refuse_while_busy(shard, subcommand)?;
    // Redis's arity of each subcommand (`function|load` is -3, `function|delete` 3, ...).
    let arity = [
        ("LOAD", -3),
        ("DELETE", 3),
        ("FLUSH", -2),
        ("LIST", -2),
        ("DUMP", 2),
        ("RESTORE", -3),
        ("STATS", 2),
        ("KILL", 2),
        ("HELP", 2),
    ]
    .into_iter()
    .find(|(name, _)| is(subcommand, name));
    let Some((_, arity)) = arity else {
        return Err(super::unknown_subcommand_message("function", subcommand).into());
    };
    if !super::arity_ok(arity, args.len()) {
        return Err(format!(
            "ERR wrong number of arguments for 'function|{}' command",
            String::from_utf8_lossy(subcommand).to_ascii_lowercase()
        )
        .into());
    }
    // FUNCTION LOAD and RESTORE are deny-oom in Redis.
    if (is(subcommand, "LOAD") || is(subcommand, "RESTORE")) && crate::memory::refuses_growth(shard)
    {
        return Err(crate::memory::OOM_ERROR.into());
    }
    let syntax_error = || {
        super::CommandError::from(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try FUNCTION HELP.",
            String::from_utf8_lossy(subcommand)
        ))
    };
    let bump = || {
        registry.libraries_generation.fetch_add(1, Ordering::SeqCst);
    };
    if is(subcommand, "LOAD") {
        let (code, options) = args[2..].split_last().expect("at least one argument");
        let mut replace = false;
        for option in options {
            if is(option, "REPLACE") {
                replace = true;
            } else {
                return Err(format!(
                    "ERR Unknown option given: {}",
                    String::from_utf8_lossy(option)
                )
                .into());
            }
        }
        let code = String::from_utf8_lossy(code);
        // Redis checks the metadata and the library's name before it runs the code.
        let name = functions::library_name(&code)?;
        if !replace
            && registry
                .libraries
                .read()
                .expect("libraries lock")
                .contains(&name)
        {
            return Err(format!("ERR Library '{name}' already exists").into());
        }
        let library = evaluate_library(shard, &code)?;
        registry
            .libraries
            .write()
            .expect("libraries lock")
            .add(library, replace)?;
        bump();
        out.bulk(name.as_bytes());
    } else if is(subcommand, "DELETE") {
        let name = String::from_utf8_lossy(args[2]);
        if !registry
            .libraries
            .write()
            .expect("libraries lock")
            .remove(&name)
        {
            return Err("ERR Library not found".into());
        }
        bump();
        out.ok();
    } else if is(subcommand, "FLUSH") {
        if args.len() > 3 {
            return Err(syntax_error());
        }
        if args.len() == 3 && !is(args[2], "ASYNC") && !is(args[2], "SYNC") {
            return Err("ERR FUNCTION FLUSH only supports SYNC|ASYNC option".into());
        }
        registry.libraries.write().expect("libraries lock").clear();
        bump();
        out.ok();
    } else if is(subcommand, "LIST") {
        list(shard, &args[2..], out)?;
    } else if is(subcommand, "DUMP") {
        let libraries = registry.libraries.read().expect("libraries lock");
        out.bulk(&ember_store::dump::dump_functions(
            libraries.iter().map(|library| library.code.as_bytes()),
        ));
    } else if is(subcommand, "RESTORE") {
        if args.len() > 4 {
            return Err(syntax_error());
        }
        restore(shard, &args[2..], out)?;
        bump();
    } else if is(subcommand, "STATS") {
        let (library_count, function_count) =
            registry.libraries.read().expect("libraries lock").counts();
        out.map_len(2);
        out.bulk(b"running_script");
        match registry.running() {
            None => out.null(),
            Some(running) => {
                out.map_len(3);
                out.bulk(b"name");
                out.bulk(running.name.as_bytes());
                out.bulk(b"command");
                out.array_len(running.command.len());
                for arg in &running.command {
                    out.bulk(arg);
                }
                out.bulk(b"duration_ms");
                out.integer(running.started.elapsed().as_millis() as i64);
            }
        }
        out.bulk(b"engines");
        out.map_len(1);
        out.bulk(b"LUA");
        out.map_len(2);
        out.bulk(b"libraries_count");
        out.integer(library_count as i64);
        out.bulk(b"functions_count");
        out.integer(function_count as i64);
    } else if is(subcommand, "KILL") {
        registry.kill(true)?;
        out.ok();
    } else {
        help(out);
    }
    Ok(())
}

/// FUNCTION HELP, in Redis 7's words.
fn help(out: &mut ReplySink) {
    let lines: &[&str] = &[
        "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "LOAD [REPLACE] <FUNCTION CODE>",
        "    Create a new library with the given library name and code.",
        "DELETE <LIBRARY NAME>",
        "    Delete the given library.",
        "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
        "    Return general information on all the libraries:",
        "    * Library name",
        "    * The engine used to run the Library",
        "    * Library description",
        "    * Functions list",
        "    * Library code (if WITHCODE is given)",
        "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
        "STATS",
        "    Return information about the current function running:",
        "    * Function name",
        "    * Command used to run the function",
        "    * Duration in MS that the function is running",
        "    If no function is running, return nil",
        "    In addition, returns a list of available engines.",
        "KILL",
        "    Kill the current running function.",
        "FLUSH [ASYNC|SYNC]",
        "    Delete all the libraries.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the libraries.",
        "    * SYNC: Synchronously flush the libraries.",
        "DUMP",
        "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
        "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
        "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
        "    control how to handle existing libraries (default APPEND):",
        "    * FLUSH: delete all existing libraries.",
        "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
        "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
        "      libraries with the new libraries (notice that even on this option there is a chance of failure",
        "      in case of functions name collision with another library).",
        "HELP",
        "    Prints this help.",
    ];
    out.array_len(lines.len());
    for line in lines {
        out.simple(line.as_bytes());
    }
}

/// Evaluates a library's code in this shard's interpreter (within FUNCTION LOAD's time limit)
/// and describes it.
/// Every library of `codes` evaluated, or the first one's error (a name given twice included).
fn evaluate_libraries(shard: &Shard, codes: &[Vec<u8>]) -> Result<functions::Libraries, String> {
    let mut libraries = functions::Libraries::default();
    for code in codes {
        let library = evaluate_library(shard, &String::from_utf8_lossy(code))?;
        libraries.add(library, false)?;
    }
    Ok(libraries)
}

/// Loads the libraries of an RDB file (at start, or DEBUG RELOAD): they join those already
/// loaded, replacing those of the same name only with `replace`.
///
/// # Errors
/// A library that does not evaluate, or whose name is taken.
pub fn load_libraries(shard: &Shard, codes: &[Vec<u8>], replace: bool) -> Result<(), String> {
    let loaded = evaluate_libraries(shard, codes)?;
    let registry = &shard.shared.scripts;
    registry
        .libraries
        .write()
        .expect("libraries lock")
        .join(loaded, replace)?;
    registry.libraries_generation.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

/// Drops every function library (DEBUG RELOAD and DEBUG LOADAOF, before they load the file's).
///
/// # Errors
/// None today; fallible as [`load_libraries`] is, for the reload's one error path.
pub fn flush_libraries(shard: &Shard) -> Result<(), String> {
    let registry = &shard.shared.scripts;
    registry.libraries.write().expect("libraries lock").clear();
    registry.libraries_generation.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

fn evaluate_library(shard: &Shard, code: &str) -> Result<Library, String> {
    let name = functions::library_name(code)?;
    let engine = shard.scripting();
    let lua = engine.lua(true).map_err(|error| format!("ERR {error}"))?;
    let loaded = functions::evaluate(lua, code, Some(functions::LOAD_TIMEOUT))?;
    Ok(Library {
        name,
        code: code.to_owned(),
        functions: loaded.into_iter().map(|function| function.info).collect(),
    })
}

/// FUNCTION LIST [LIBRARYNAME pattern] [WITHCODE].
fn list(shard: &Shard, options: &[&[u8]], out: &mut ReplySink) -> CommandResult {
    let mut pattern: Option<&[u8]> = None;
    let mut with_code = false;
    let mut index = 0;
    while index < options.len() {
        if is(options[index], "WITHCODE") && !with_code {
            with_code = true;
        } else if is(options[index], "LIBRARYNAME") && pattern.is_none() {
            let Some(value) = options.get(index + 1) else {
                return Err("ERR library name argument was not given".into());
            };
            pattern = Some(value);
            index += 1;
        } else {
            return Err(format!(
                "ERR Unknown argument {}",
                String::from_utf8_lossy(options[index])
            )
            .into());
        }
        index += 1;
    }
    let libraries = shard
        .shared
        .scripts
        .libraries
        .read()
        .expect("libraries lock");
    let selected: Vec<&Library> = libraries
        .iter()
        .filter(|library| {
            // Redis matches the pattern without regard to case.
            pattern.is_none_or(|pattern| {
                ember_store::glob::glob_match(
                    &pattern.to_ascii_lowercase(),
                    library.name.to_ascii_lowercase().as_bytes(),
                )
            })
        })
        .collect();
    out.array_len(selected.len());
    for library in selected {
        out.map_len(if with_code { 4 } else { 3 });
        out.bulk(b"library_name");
        out.bulk(library.name.as_bytes());
        out.bulk(b"engine");
        out.bulk(b"LUA");
        out.bulk(b"functions");
        out.array_len(library.functions.len());
        for function in &library.functions {
            out.map_len(3);
            out.bulk(b"name");
            out.bulk(function.name.as_bytes());
            out.bulk(b"description");
            match &function.description {
                Some(text) => out.bulk(text.as_bytes()),
                None => out.null(),
            }
            out.bulk(b"flags");
            let names = functions::flag_names(function.flags);
            // Redis writes the flags as status replies.
            out.set_len(names.len());
            for name in names {
                out.simple(name.as_bytes());
            }
        }
        if with_code {
            out.bulk(b"library_code");
            out.bulk(library.code.as_bytes());
        }
    }
    Ok(())
}

/// FUNCTION RESTORE payload [FLUSH|APPEND|REPLACE]: every library of the payload or none.
fn restore(shard: &Shard, options: &[&[u8]], out: &mut ReplySink) -> CommandResult {
    #[derive(PartialEq)]
    enum Policy {
        Flush,
        Append,
        Replace,
    }
    let payload = options[0];
    let policy =
        match options.get(1) {
            None => Policy::Append,
            Some(policy) if is(policy, "APPEND") => Policy::Append,
            Some(policy) if is(policy, "REPLACE") => Policy::Replace,
            Some(policy) if is(policy, "FLUSH") => Policy::Flush,
            Some(_) => return Err(
                "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE."
                    .into(),
            ),
        };
    let codes =
        ember_store::dump::restore_functions(payload).map_err(|error| format!("ERR {error}"))?;
    let restored = evaluate_libraries(shard, &codes)?;
    let mut libraries = shard
        .shared
        .scripts
        .libraries
        .write()
        .expect("libraries lock");
    if policy == Policy::Flush {
        *libraries = restored;
    } else {
        libraries.join(restored, policy == Policy::Replace)?;
    }
    out.ok();
    Ok(())
}
