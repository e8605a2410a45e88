//! MEMORY USAGE: an estimate of the bytes one key takes (Redis's test suite reads it, and tools
//! such as redis-rdb-tools' online mode do). The other MEMORY subcommands describe Redis's
//! allocator and are not served.

use std::mem::size_of;

use ember_store::Entry;

use super::{errors, is, parse_integer, unknown_subcommand_message, CommandResult, Ctx};

/// MEMORY USAGE key [SAMPLES count]: the key's bytes, its value's heap and the entry itself
/// (Ember's estimate; the allocator's overhead is not in it), or nil for a missing key.
/// SAMPLES is accepted and has no effect: every element is counted.
pub fn memory(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let subcommand = args[1];
    if !is(subcommand, "USAGE") {
        return Err(unknown_subcommand_message("memory", subcommand).into());
    }
    if args.len() < 3 {
        return Err("ERR wrong number of arguments for 'memory|usage' command".into());
    }
    match &args[3..] {
        [] => {}
        [word, count] if is(word, "SAMPLES") => {
            parse_integer(count)?;
        }
        _ => return Err(errors::SYNTAX.into()),
    }
    match ctx.keyspace.peek(ctx.db, args[2], ctx.now_ms) {
        Some(entry) => {
            let bytes = args[2].len() + size_of::<Entry>() + entry.value.heap_len();
            ctx.out.integer(bytes as i64);
        }
        None => ctx.out.null(),
    }
    Ok(())
}
