//! Server commands. Those that need no other shard (COMMAND, TIME, LASTSAVE, FUNCTION) are
//! here; those that ask every shard (INFO, CONFIG, CLIENT, DBSIZE, FLUSHALL, SCAN, SLOWLOG...)
//! are in [`admin`].

pub mod admin;

use ember_resp::ReplySink;

use super::{
    is, lookup, unknown_subcommand_message, CommandResult, CommandSpec, ConnectionCtx, Handler,
    COMMANDS,
};

fn write_info(out: &mut ReplySink, spec: &CommandSpec) {
    out.array_len(10);
    out.bulk(spec.name.as_bytes());
    out.integer(i64::from(spec.arity));
    let mut flags: Vec<&str> = spec.flags.names().collect();
    if spec.key_finder.is_some() {
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
    out.array_len(0); // tips
    out.array_len(0); // key specifications: first/last/step above say it
    out.array_len(0); // subcommands
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
    } else if is(subcommand, "LIST") {
        out.array_len(COMMANDS.len());
        for spec in COMMANDS.iter() {
            out.bulk(spec.name.as_bytes());
        }
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
    } else if is(subcommand, "GETKEYS") && args.len() < 4 {
        // Redis's COMMAND GETKEYS has arity -4: a command and at least one argument.
        return Err("ERR wrong number of arguments for 'command|getkeys' command".into());
    } else if is(subcommand, "GETKEYS") {
        let Some(index) = lookup(args[2]) else {
            return Err("ERR Invalid command specified".into());
        };
        let spec = &COMMANDS[index];
        let full = &args[2..];
        if !super::arity_ok(spec.arity, full.len()) {
            return Err("ERR Invalid number of arguments specified for command".into());
        }
        if let Handler::Script(_) = spec.handler {
            // EVAL and FCALL name their keys with numkeys, not a fixed key spec.
            let keys = crate::commands::scripting::declared_keys(full)
                .filter(|keys| !keys.is_empty())
                .ok_or("ERR The command has no key arguments")?;
            out.array_len(keys.len());
            for key in keys {
                out.bulk(key);
            }
            return Ok(());
        }
        if !matches!(spec.handler, Handler::Keyspace(_))
            || spec.keys.first == 0 && spec.key_finder.is_none()
        {
            return Err("ERR The command has no key arguments".into());
        }
        let positions: Vec<usize> = spec.key_positions(full);
        out.array_len(positions.len());
        for position in positions {
            out.bulk(full[position]);
        }
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

/// LASTSAVE: Ember keeps no snapshot, so the last "save" is the start.
pub fn lastsave(ctx: &mut ConnectionCtx<'_>, _args: &[&[u8]]) -> CommandResult {
    ctx.out.integer(ctx.shard.shared.started_at_s as i64);
    Ok(())
}
