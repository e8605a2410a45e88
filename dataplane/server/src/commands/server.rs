//! Server commands that need no other shard: COMMAND, TIME, LASTSAVE, FUNCTION.

use ember_resp::{encode, Protocol};

use super::{
    is, lookup, unknown_subcommand_message, CommandResult, CommandSpec, ConnectionCtx, Handler,
    COMMANDS,
};

fn acl_categories(spec: &CommandSpec) -> Vec<String> {
    let mut categories = Vec::new();
    let flags = spec.flags;
    if flags.contains(&"write") {
        categories.push("@write".to_string());
    }
    if flags.contains(&"readonly") {
        categories.push("@read".to_string());
    }
    categories.push(format!(
        "@{}",
        if spec.group == "generic" {
            "keyspace"
        } else {
            spec.group
        }
    ));
    categories.push(
        if flags.contains(&"fast") {
            "@fast"
        } else {
            "@slow"
        }
        .to_string(),
    );
    if flags.contains(&"admin") {
        categories.push("@admin".to_string());
        categories.push("@dangerous".to_string());
    }
    categories
}

fn write_info(out: &mut Vec<u8>, spec: &CommandSpec, protocol: Protocol) {
    encode::array_len(out, 10);
    encode::bulk(out, spec.name.as_bytes());
    encode::integer(out, i64::from(spec.arity));
    encode::set_len(out, spec.flags.len(), protocol);
    for flag in spec.flags {
        encode::simple(out, flag.as_bytes());
    }
    encode::integer(out, i64::from(spec.keys.first));
    encode::integer(out, i64::from(spec.keys.last));
    encode::integer(out, i64::from(spec.keys.step));
    let categories = acl_categories(spec);
    encode::set_len(out, categories.len(), protocol);
    for category in &categories {
        encode::simple(out, category.as_bytes());
    }
    encode::array_len(out, 0); // tips
    encode::array_len(out, 0); // key specifications: first/last/step above say it
    encode::array_len(out, 0); // subcommands
}

fn write_docs(out: &mut Vec<u8>, spec: &CommandSpec, protocol: Protocol) {
    encode::bulk(out, spec.name.as_bytes());
    encode::map_len(out, 3, protocol);
    encode::bulk(out, b"summary");
    encode::bulk(out, spec.summary.as_bytes());
    encode::bulk(out, b"since");
    encode::bulk(out, spec.since.as_bytes());
    encode::bulk(out, b"group");
    encode::bulk(out, spec.group.as_bytes());
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
    let protocol = ctx.client.protocol;
    let out = &mut *ctx.out;
    if args.len() == 1 {
        encode::array_len(out, COMMANDS.len());
        for spec in COMMANDS {
            write_info(out, spec, protocol);
        }
        return Ok(());
    }
    let subcommand = args[1];
    if is(subcommand, "COUNT") && args.len() == 2 {
        encode::integer(out, COMMANDS.len() as i64);
    } else if is(subcommand, "LIST") {
        encode::array_len(out, COMMANDS.len());
        for spec in COMMANDS {
            encode::bulk(out, spec.name.as_bytes());
        }
    } else if is(subcommand, "INFO") {
        let names: Vec<&[u8]> = if args.len() == 2 {
            COMMANDS.iter().map(|s| s.name.as_bytes()).collect()
        } else {
            args[2..].to_vec()
        };
        encode::array_len(out, names.len());
        for name in names {
            match lookup(name) {
                Some(index) => write_info(out, &COMMANDS[index], protocol),
                None => encode::null_array(out, protocol),
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
        encode::map_len(out, specs.len(), protocol);
        for spec in specs {
            write_docs(out, spec, protocol);
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
        if !matches!(spec.handler, Handler::Keyspace(_)) || spec.keys.first == 0 {
            return Err("ERR The command has no key arguments".into());
        }
        let positions: Vec<usize> = spec.keys.positions(full.len()).collect();
        encode::array_len(out, positions.len());
        for position in positions {
            encode::bulk(out, full[position]);
        }
    } else if is(subcommand, "HELP") {
        encode::array_len(out, COMMAND_HELP.len());
        for line in COMMAND_HELP {
            encode::simple(out, line.as_bytes());
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
    encode::array_len(ctx.out, 2);
    encode::bulk(ctx.out, now.as_secs().to_string().as_bytes());
    encode::bulk(ctx.out, now.subsec_micros().to_string().as_bytes());
    Ok(())
}

/// LASTSAVE: Ember keeps no snapshot, so the last "save" is the start.
pub fn lastsave(ctx: &mut ConnectionCtx<'_>, _args: &[&[u8]]) -> CommandResult {
    encode::integer(ctx.out, ctx.shard.shared.started_at_s as i64);
    Ok(())
}

/// FUNCTION FLUSH | LIST | HELP, on the empty library (scripting is not built yet).
pub fn function(ctx: &mut ConnectionCtx<'_>, args: &[&[u8]]) -> CommandResult {
    let subcommand = args[1];
    if is(subcommand, "FLUSH") && args.len() <= 3 {
        if args.len() == 3 && !is(args[2], "ASYNC") && !is(args[2], "SYNC") {
            return Err("ERR FUNCTION FLUSH only supports SYNC|ASYNC option".into());
        }
        encode::ok(ctx.out);
    } else if is(subcommand, "LIST") {
        encode::array_len(ctx.out, 0);
    } else {
        return Err(unknown_subcommand_message("function", subcommand).into());
    }
    Ok(())
}
