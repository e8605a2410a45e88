//! Server commands. Those that need no other shard (COMMAND, TIME, LASTSAVE, FUNCTION) are
//! here; those that ask every shard (INFO, CONFIG, CLIENT, DBSIZE, FLUSHALL, SCAN, SLOWLOG...)
//! are in [`admin`].

pub mod admin;

use ember_resp::ReplySink;

use super::key_specs::{self, Begin, Find, KeySpecDef};
use super::{
    is, lookup, unknown_subcommand_message, CommandResult, CommandSpec, ConnectionCtx, Handler,
    COMMANDS,
};

/// Writes key specifications in Redis 7's shape: a map each of `notes` (when there is one),
/// `flags`, `begin_search` and `find_keys`.
fn write_key_specs(out: &mut ReplySink, specs: &[KeySpecDef]) {
    out.set_len(specs.len());
    for def in specs {
        out.map_len(if def.notes.is_empty() { 3 } else { 4 });
        if !def.notes.is_empty() {
            out.bulk(b"notes");
            out.bulk(def.notes.as_bytes());
        }
        out.bulk(b"flags");
        let flags: Vec<&str> = def.flags.names().collect();
        out.set_len(flags.len());
        for flag in flags {
            out.simple(flag.as_bytes());
        }
        out.bulk(b"begin_search");
        out.map_len(2);
        out.bulk(b"type");
        match def.begin {
            Begin::Index(index) => {
                out.bulk(b"index");
                out.bulk(b"spec");
                out.map_len(1);
                out.bulk(b"index");
                out.integer(i64::from(index));
            }
            Begin::Keyword(keyword, start_from) => {
                out.bulk(b"keyword");
                out.bulk(b"spec");
                out.map_len(2);
                out.bulk(b"keyword");
                out.bulk(keyword.as_bytes());
                out.bulk(b"startfrom");
                out.integer(i64::from(start_from));
            }
            Begin::Unknown => {
                out.bulk(b"unknown");
                out.bulk(b"spec");
                out.map_len(0);
            }
        }
        out.bulk(b"find_keys");
        out.map_len(2);
        out.bulk(b"type");
        let (kind, fields) = match def.find {
            Find::Range(last_key, step, limit) => (
                "range",
                [("lastkey", last_key), ("keystep", step), ("limit", limit)],
            ),
            Find::KeyNum(count_at, first, step) => (
                "keynum",
                [
                    ("keynumidx", count_at),
                    ("firstkey", first),
                    ("keystep", step),
                ],
            ),
            Find::Unknown => ("unknown", [("", 0); 3]),
        };
        out.bulk(kind.as_bytes());
        out.bulk(b"spec");
        if kind == "unknown" {
            out.map_len(0);
            continue;
        }
        out.map_len(3);
        for (field, value) in fields {
            out.bulk(field.as_bytes());
            out.integer(i64::from(value));
        }
    }
}

fn write_info(out: &mut ReplySink, spec: &CommandSpec) {
    out.array_len(10);
    out.bulk(spec.name.as_bytes());
    out.integer(i64::from(spec.arity));
    let mut flags: Vec<&str> = spec.flags.names().collect();
    let specs = key_specs::specs(spec);
    let movable = if spec.key_specs.is_empty() {
        spec.key_finder.is_some()
    } else {
        key_specs::movable(spec.key_specs)
    };
    if movable {
        flags.push("movablekeys");
    }
    out.set_len(flags.len());
    for flag in flags {
        out.simple(flag.as_bytes());
    }
    out.integer(i64::from(spec.keys.first));
    out.integer(i64::from(spec.keys.last));
    out.integer(i64::from(spec.keys.step));
    let categories: Vec<&str> = spec.categories.names().collect();
    out.set_len(categories.len());
    for category in categories {
        out.simple(format!("@{category}").as_bytes());
    }
    // Redis 7.0 sends tips, key specifications and subcommands as sets (arrays in RESP2).
    out.set_len(0); // tips
    write_key_specs(out, &specs);
    out.set_len(0); // subcommands
}

fn write_docs(out: &mut ReplySink, spec: &CommandSpec) {
    out.bulk(spec.name.as_bytes());
    out.map_len(3);
    out.bulk(b"summary");
    out.bulk(spec.summary.as_bytes());
    out.bulk(b"since");
    out.bulk(spec.since.as_bytes());
    out.bulk(b"group");
    out.bulk(spec.group.as_bytes());
}

const COMMAND_HELP: &[&str] = &[
    "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "(no subcommand)",
    "    Return details about all Redis commands.",
    "COUNT",
    "    Return the total number of commands in this Redis server.",
    "LIST",
    "    Return a list of all commands in this Redis server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple Redis commands.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple Redis commands.",
    "GETKEYS <full-command>",
    "    Return the keys from a full Redis command.",
    "HELP",
    "    Print this help.",
];

/// COMMAND [COUNT | LIST | INFO name... | DOCS name... | GETKEYS cmd... | HELP]
pub fn command(ctx: &mut ConnectionCtx<'_>, args: &[&[u8]]) -> CommandResult {
    let out = &mut *ctx.out;
    if args.len() == 1 {
        out.array_len(COMMANDS.len());
        for spec in COMMANDS.iter() {
            write_info(out, spec);
        }
        return Ok(());
    }
    let subcommand = args[1];
    if is(subcommand, "COUNT") && args.len() == 2 {
        out.integer(COMMANDS.len() as i64);
    } else if is(subcommand, "INFO") {
        let names: Vec<&[u8]> = if args.len() == 2 {
            COMMANDS.iter().map(|s| s.name.as_bytes()).collect()
        } else {
            args[2..].to_vec()
        };
        out.array_len(names.len());
        for name in names {
            match lookup(name) {
                Some(index) => write_info(out, &COMMANDS[index]),
                None => out.null_array(),
            }
        }
    } else if is(subcommand, "DOCS") {
        let specs: Vec<&CommandSpec> = if args.len() == 2 {
            COMMANDS.iter().collect()
        } else {
            args[2..]
                .iter()
                .filter_map(|name| lookup(name).map(|index| &COMMANDS[index]))
                .collect()
        };
        out.map_len(specs.len());
        for spec in specs {
            write_docs(out, spec);
        }
    } else if is(subcommand, "GETKEYS") || is(subcommand, "GETKEYSANDFLAGS") {
        get_keys(out, args)?;
    } else if is(subcommand, "LIST") {
        list(out, &args[2..])?;
    } else if is(subcommand, "HELP") {
        out.array_len(COMMAND_HELP.len());
        for line in COMMAND_HELP {
            out.simple(line.as_bytes());
        }
    } else {
        return Err(unknown_subcommand_message("command", subcommand).into());
    }
    Ok(())
}

/// COMMAND GETKEYS | GETKEYSANDFLAGS command arg...: the keys of a full command, as routing
/// finds them, with their key-specification flags for GETKEYSANDFLAGS.
fn get_keys(out: &mut ReplySink, args: &[&[u8]]) -> CommandResult {
    let with_flags = is(args[1], "GETKEYSANDFLAGS");
    if args.len() < 4 {
        // Redis's arity -4: a command and at least one argument.
        let name = if with_flags {
            "getkeysandflags"
        } else {
            "getkeys"
        };
        return Err(format!("ERR wrong number of arguments for 'command|{name}' command").into());
    }
    let Some(index) = lookup(args[2]) else {
        return Err("ERR Invalid command specified".into());
    };
    let spec = &COMMANDS[index];
    let full = &args[2..];
    let script = matches!(spec.handler, Handler::Script(_));
    let specs = key_specs::specs_for(spec, full);
    if !script && specs.is_empty() {
        return Err("ERR The command has no key arguments".into());
    }
    if !super::arity_ok(spec.arity, full.len()) {
        return Err("ERR Invalid number of arguments specified for command".into());
    }
    let positions: Vec<usize> = if script {
        // EVAL and FCALL name their keys with numkeys; none is fine.
        let count = crate::commands::scripting::declared_keys(full)
            .ok_or("ERR Invalid arguments specified for command")?
            .len();
        (3..3 + count).collect()
    } else if spec.keys.first != 0 || spec.key_finder.is_some() {
        spec.key_positions(full)
    } else {
        // Keys Ember does not route by (SPUBLISH's channel): Redis's specifications say.
        let mut positions: Vec<usize> = specs
            .iter()
            .flat_map(|def| key_specs::positions(def, full))
            .collect();
        positions.sort_unstable();
        positions.dedup();
        positions
    };
    if positions.is_empty() && !script {
        return Err("ERR Invalid arguments specified for command".into());
    }
    out.array_len(positions.len());
    for position in positions {
        if with_flags {
            out.array_len(2);
            out.bulk(full[position]);
            let flags: Vec<&str> = key_specs::flags_at(spec.name, &specs, full, position)
                .names()
                .collect();
            out.set_len(flags.len());
            for flag in flags {
                out.simple(flag.as_bytes());
            }
        } else {
            out.bulk(full[position]);
        }
    }
    Ok(())
}

/// COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN pattern]: command names,
/// and the subcommands of containers as `container|sub`.
fn list(out: &mut ReplySink, args: &[&[u8]]) -> CommandResult {
    enum Filter {
        All,
        Module,
        Category(Option<super::AclCategories>),
        Pattern(Vec<u8>),
    }
    let filter = match args {
        [] => Filter::All,
        [word, kind, value] if is(word, "FILTERBY") => {
            if is(kind, "MODULE") {
                Filter::Module
            } else if is(kind, "ACLCAT") {
                Filter::Category(
                    super::CATEGORY_NAMES
                        .iter()
                        .find(|(_, name)| is(value, name))
                        .map(|(category, _)| *category),
                )
            } else if is(kind, "PATTERN") {
                Filter::Pattern(value.to_ascii_lowercase())
            } else {
                return Err(super::errors::SYNTAX.into());
            }
        }
        _ => return Err(super::errors::SYNTAX.into()),
    };
    let mut names: Vec<String> = Vec::new();
    for spec in COMMANDS.iter() {
        let subcommands = key_specs::SUBCOMMANDS
            .iter()
            .find(|(container, _)| *container == spec.name)
            .map_or(&[][..], |(_, subs)| *subs);
        let full = std::iter::once(spec.name.to_string())
            .chain(subcommands.iter().map(|sub| format!("{}|{sub}", spec.name)));
        for name in full {
            let keep = match filter {
                Filter::All => true,
                Filter::Module => false,
                Filter::Category(category) => {
                    category.is_some_and(|category| spec.categories.contains(category))
                }
                Filter::Pattern(ref pattern) => {
                    ember_store::glob::glob_match(pattern, name.as_bytes())
                }
            };
            if keep {
                names.push(name);
            }
        }
    }
    out.array_len(names.len());
    for name in names {
        out.bulk(name.as_bytes());
    }
    Ok(())
}

/// TIME
pub fn time(ctx: &mut ConnectionCtx<'_>, _args: &[&[u8]]) -> CommandResult {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    ctx.out.array_len(2);
    ctx.out.bulk(now.as_secs().to_string().as_bytes());
    ctx.out.bulk(now.subsec_micros().to_string().as_bytes());
    Ok(())
}

/// ROLE: Ember is a primary with no replicas (and so no replication offset).
pub fn role(ctx: &mut ConnectionCtx<'_>, _args: &[&[u8]]) -> CommandResult {
    ctx.out.array_len(3);
    ctx.out.bulk(b"master");
    ctx.out.integer(0);
    ctx.out.array_len(0);
    Ok(())
}

/// MODULE LIST | LOAD | LOADEX | UNLOAD | HELP. Ember loads no Redis module (their C interface
/// is Redis's own); RedisBloom's Bloom, cuckoo, count-min and top-k commands are built in. So
/// LIST answers none, and LOAD, LOADEX and UNLOAD answer what Redis does for a module it cannot
/// load or does not have, behind the same `enable-module-command` gate (off by default).
pub fn module(ctx: &mut ConnectionCtx<'_>, args: &[&[u8]]) -> CommandResult {
    let subcommand = args[1];
    let arity = |exact: Option<usize>, least: usize| match exact {
        Some(count) => args.len() == count,
        None => args.len() >= least,
    };
    if is(subcommand, "LIST") && arity(Some(2), 2) {
        ctx.out.array_len(0);
    } else if is(subcommand, "HELP") && arity(Some(2), 2) {
        admin::help(ctx.out, MODULE_HELP);
    } else if (is(subcommand, "LOAD") || is(subcommand, "LOADEX")) && arity(None, 3)
        || is(subcommand, "UNLOAD") && arity(Some(3), 3)
    {
        admin::command_enabled(ctx.shard, ctx.client, "MODULE")?;
        if is(subcommand, "UNLOAD") {
            return Err("ERR Error unloading module: no such module with that name".into());
        }
        eprintln!(
            "ember: MODULE {}: Ember does not load Redis modules (RedisBloom's commands are built in)",
            String::from_utf8_lossy(subcommand).to_ascii_uppercase()
        );
        return Err("ERR Error loading the extension. Please check the server logs.".into());
    } else if ["LIST", "HELP", "LOAD", "LOADEX", "UNLOAD"]
        .iter()
        .any(|name| is(subcommand, name))
    {
        return Err(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try MODULE HELP.",
            String::from_utf8_lossy(subcommand)
        )
        .into());
    } else {
        return Err(unknown_subcommand_message("module", subcommand).into());
    }
    Ok(())
}

const MODULE_HELP: &[&str] = &[
    "MODULE <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "LIST",
    "    Return a list of loaded modules.",
    "LOAD <path> [<arg> ...]",
    "    Load a module library from <path>, passing to it any optional arguments.",
    "LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]",
    "    Load a module library from <path>, while passing it module configurations and optional arguments.",
    "UNLOAD <name>",
    "    Unload a module.",
    "HELP",
    "    Prints this help.",
];

/// REPLICAOF (and SLAVEOF) host port: `NO ONE` keeps Ember what it is, a primary; Ember does
/// not replicate from another server, so naming one is refused (after Redis's own checks).
pub fn replicaof(ctx: &mut ConnectionCtx<'_>, args: &[&[u8]]) -> CommandResult {
    if is(args[1], "NO") && is(args[2], "ONE") {
        ctx.out.ok();
        return Ok(());
    }
    if super::parse_integer(args[2]).is_err() {
        return Err("ERR Invalid master port".into());
    }
    Err("ERR Ember does not replicate from another server: it is always a primary (REPLICAOF NO ONE)".into())
}

/// FAILOVER [TO host port [FORCE]] [ABORT] [TIMEOUT ms]: Redis's checks, then its answer for
/// a primary without replicas, which Ember always is.
pub fn failover(_ctx: &mut ConnectionCtx<'_>, args: &[&[u8]]) -> CommandResult {
    let mut index = 1;
    let (mut abort, mut force, mut target, mut timeout) = (false, false, false, false);
    while index < args.len() {
        let more = args.len() - index - 1;
        if is(args[index], "TO") && more >= 2 && !target {
            if super::parse_integer(args[index + 2]).is_err() {
                return Err("ERR value is not an integer or out of range".into());
            }
            target = true;
            index += 3;
        } else if is(args[index], "TIMEOUT") && more >= 1 && !timeout {
            let ms = super::parse_integer(args[index + 1])?;
            if ms <= 0 {
                return Err("ERR FAILOVER timeout must be greater than 0".into());
            }
            timeout = true;
            index += 2;
        } else if is(args[index], "FORCE") && !force {
            force = true;
            index += 1;
        } else if is(args[index], "ABORT") && !abort {
            abort = true;
            index += 1;
        } else {
            return Err(super::errors::SYNTAX.into());
        }
    }
    if abort && (target || force || timeout) {
        return Err(super::errors::SYNTAX.into());
    }
    if abort {
        return Err("ERR No failover in progress.".into());
    }
    // Redis looks for replicas before it checks FORCE's companions: with none, this is all.
    Err("ERR FAILOVER requires connected replicas.".into())
}

/// LASTSAVE: the Unix time of the last successful save (the start, before the first).
pub fn lastsave(ctx: &mut ConnectionCtx<'_>, _args: &[&[u8]]) -> CommandResult {
    ctx.out
        .integer(ctx.shard.shared.persistence.last_save_s() as i64);
    Ok(())
}
