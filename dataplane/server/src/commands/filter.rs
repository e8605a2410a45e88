//! Live text filters: FILTER.ADD, FILTER.DEL, FILTER.CHECK, FILTER.MASK, FILTER.INFO,
//! FILTER.LIST, FILTER.ATTACH, FILTER.DETACH, and [`screen`], which PUBLISH calls.
//!
//! Filters are server-wide, not keys: a change edits the rules in the process-wide registry,
//! which compiles the new automata once and bumps a generation; every shard swaps the new set
//! in the next time it filters ([`crate::protection::ShardProtection::filters`]), so a rule
//! added on one connection applies to the next PUBLISH on any shard.

use std::borrow::Cow;
use std::collections::BTreeSet;

use super::{
    command, is, CommandError, CommandResult, CommandSpec, Connection, ConnectionCtx, NO_KEYS,
};
use super::{CommandFlags as F, LOADING_STALE};
use crate::protection::filter::{
    self, Action, ATTACHMENTS_MAX, FILTERS_MAX, NAME_BYTES_MAX, WORDS_MAX, WORD_BYTES_MAX,
};
use crate::protection::{bump, CompiledFilters};
use crate::shard::Shard;

/// This family's commands.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    command("filter.add", -3, F::empty(), NO_KEYS, "server", "0.1.0", "Adds words to a text filter, creating it; answers how many were new.", Connection(add)),
    command("filter.del", -3, F::empty(), NO_KEYS, "server", "0.1.0", "Removes words from a text filter; answers how many were there.", Connection(del)),
    command("filter.check", 3, LOADING_STALE, NO_KEYS, "server", "0.1.0", "Returns a filter's matches in a text: word, start and end byte offsets.", Connection(check)),
    command("filter.mask", 3, LOADING_STALE, NO_KEYS, "server", "0.1.0", "Returns a text with a filter's matches masked by asterisks.", Connection(mask)),
    command("filter.info", 2, LOADING_STALE, NO_KEYS, "server", "0.1.0", "Returns a filter's word count, words and attached channels.", Connection(info)),
    command("filter.list", 1, LOADING_STALE, NO_KEYS, "server", "0.1.0", "Returns the names of the filters.", Connection(list)),
    command("filter.attach", 4, F::empty(), NO_KEYS, "server", "0.1.0", "Makes PUBLISH to a channel drop or mask messages a filter matches.", Connection(attach)),
    command("filter.detach", 2, F::empty(), NO_KEYS, "server", "0.1.0", "Removes a channel's filter.", Connection(detach)),
];

/// The error for a filter that does not exist.
fn no_such_filter(name: &[u8]) -> CommandError {
    format!("ERR no such filter '{}'", String::from_utf8_lossy(name)).into()
}

/// FILTER.ADD name word [word ...]: the number of words that were not there yet.
pub fn add(ctx: &mut ConnectionCtx<'_>, args: &[&[u8]]) -> CommandResult {
    let (name, words) = (args[1], &args[2..]);
    if name.is_empty() || name.len() > NAME_BYTES_MAX {
        return Err(format!("ERR filter name must be 1 to {NAME_BYTES_MAX} bytes").into());
    }
    let mut folded = Vec::with_capacity(words.len());
    for word in words {
        let word = filter::fold(word);
        if word.is_empty() || word.len() > WORD_BYTES_MAX {
            return Err(format!("ERR filter words must be 1 to {WORD_BYTES_MAX} bytes").into());
        }
        folded.push(word);
    }
    let added = ctx.shard.protection.registry.change(|rules| {
        let existing = rules.filters.get(name);
        if existing.is_none() && rules.filters.len() >= FILTERS_MAX {
            return (
                Err(format!("ERR too many filters (at most {FILTERS_MAX})")),
                false,
            );
        }
        let new_words: BTreeSet<Vec<u8>> = folded
            .into_iter()
            .filter(|word| existing.is_none_or(|set| !set.contains(word)))
            .collect();
        let total = existing.map_or(0, |set| set.len()) + new_words.len();
        if total > WORDS_MAX {
            let message = format!("ERR too many words in one filter (at most {WORDS_MAX})");
            return (Err(message), false);
        }
        let added = new_words.len();
        rules
            .filters
            .entry(name.to_vec())
            .or_default()
            .extend(new_words);
        (Ok(added), added > 0)
    });
    let added = added.map_err(CommandError::from)?;
    ctx.out.integer(added as i64);
    Ok(())
}

/// FILTER.DEL name word [word ...]: the number of words removed; a filter left with no words
/// is removed.
pub fn del(ctx: &mut ConnectionCtx<'_>, args: &[&[u8]]) -> CommandResult {
    let (name, words) = (args[1], &args[2..]);
    let removed = ctx.shard.protection.registry.change(|rules| {
        let Some(set) = rules.filters.get_mut(name) else {
            return (0, false);
        };
        let removed = words
            .iter()
            .filter(|word| set.remove(&filter::fold(word)))
            .count();
        if set.is_empty() {
            rules.filters.remove(name);
        }
        (removed, removed > 0)
    });
    ctx.out.integer(removed as i64);
    Ok(())
}

/// This shard's copy of the compiled filters, the newest.
fn compiled(shard: &Shard) -> std::sync::Arc<CompiledFilters> {
    shard.protection.filters()
}

/// FILTER.CHECK name text: `[[word, start, end], ...]`, byte offsets in the text, end exclusive.
pub fn check(ctx: &mut ConnectionCtx<'_>, args: &[&[u8]]) -> CommandResult {
    let filters = compiled(ctx.shard);
    let found = filters
        .filters
        .get(args[1])
        .ok_or_else(|| no_such_filter(args[1]))?;
    let matches = found.scan(args[2]);
    let counters = ctx.shard.protection.counters();
    bump(&counters.filter_scans, 1);
    bump(&counters.filter_hits, matches.len() as u64);
    ctx.out.array_len(matches.len());
    for found in &matches {
        ctx.out.array_len(3);
        ctx.out.bulk(&found.word);
        ctx.out.integer(found.start as i64);
        ctx.out.integer(found.end as i64);
    }
    Ok(())
}

/// FILTER.MASK name text: the text with each match replaced by one `*` per character.
pub fn mask(ctx: &mut ConnectionCtx<'_>, args: &[&[u8]]) -> CommandResult {
    let filters = compiled(ctx.shard);
    let found = filters
        .filters
        .get(args[1])
        .ok_or_else(|| no_such_filter(args[1]))?;
    let (masked, hits) = found.mask(args[2]);
    let counters = ctx.shard.protection.counters();
    bump(&counters.filter_scans, 1);
    bump(&counters.filter_hits, hits as u64);
    ctx.out.bulk(&masked);
    Ok(())
}

/// FILTER.INFO name: `name`, `words` (count), `wordlist`, `channels` (attached, with action).
pub fn info(ctx: &mut ConnectionCtx<'_>, args: &[&[u8]]) -> CommandResult {
    let filters = compiled(ctx.shard);
    let found = filters
        .filters
        .get(args[1])
        .ok_or_else(|| no_such_filter(args[1]))?;
    let channels: Vec<(&Vec<u8>, Action)> = filters
        .attachments
        .iter()
        .filter(|(_, (name, _))| name.as_slice() == args[1])
        .map(|(channel, (_, action))| (channel, *action))
        .collect();
    ctx.out.map_len(4);
    ctx.out.bulk(b"name");
    ctx.out.bulk(args[1]);
    ctx.out.bulk(b"words");
    ctx.out.integer(found.words.len() as i64);
    ctx.out.bulk(b"wordlist");
    ctx.out.array_len(found.words.len());
    for word in &found.words {
        ctx.out.bulk(word);
    }
    ctx.out.bulk(b"channels");
    ctx.out.array_len(channels.len() * 2);
    for (channel, action) in channels {
        ctx.out.bulk(channel);
        ctx.out.bulk(match action {
            Action::Drop => b"drop",
            Action::Mask => b"mask",
        });
    }
    Ok(())
}

/// FILTER.LIST: the filters' names, sorted.
pub fn list(ctx: &mut ConnectionCtx<'_>, _args: &[&[u8]]) -> CommandResult {
    let filters = compiled(ctx.shard);
    ctx.out.array_len(filters.filters.len());
    for name in filters.filters.keys() {
        ctx.out.bulk(name);
    }
    Ok(())
}

/// FILTER.ATTACH channel name DROP|MASK: PUBLISH to `channel` then drops or masks what the
/// filter matches. Replaces the channel's previous attachment.
pub fn attach(ctx: &mut ConnectionCtx<'_>, args: &[&[u8]]) -> CommandResult {
    let (channel, name) = (args[1], args[2]);
    let action = if is(args[3], "drop") {
        Action::Drop
    } else if is(args[3], "mask") {
        Action::Mask
    } else {
        return Err(super::errors::SYNTAX.into());
    };
    let result = ctx.shard.protection.registry.change(|rules| {
        if !rules.filters.contains_key(name) {
            return (Err(no_such_filter(name)), false);
        }
        if !rules.attachments.contains_key(channel) && rules.attachments.len() >= ATTACHMENTS_MAX {
            let message = format!("ERR too many filtered channels (at most {ATTACHMENTS_MAX})");
            return (Err(message.into()), false);
        }
        rules
            .attachments
            .insert(channel.to_vec(), (name.to_vec(), action));
        (Ok(()), true)
    });
    result?;
    ctx.out.ok();
    Ok(())
}

/// FILTER.DETACH channel: 1 when the channel had a filter, else 0.
pub fn detach(ctx: &mut ConnectionCtx<'_>, args: &[&[u8]]) -> CommandResult {
    let removed = ctx.shard.protection.registry.change(|rules| {
        let removed = rules.attachments.remove(args[1]).is_some();
        (removed, removed)
    });
    ctx.out.integer(i64::from(removed));
    Ok(())
}

/// What PUBLISH sends on `channel`: the message as it is, masked, or nothing (dropped), by the
/// filter attached to the channel. A channel whose filter was removed passes everything.
pub fn screen<'m>(shard: &Shard, channel: &[u8], message: &'m [u8]) -> Option<Cow<'m, [u8]>> {
    let filters = shard.protection.filters();
    let Some((name, action)) = filters.attachments.get(channel) else {
        return Some(Cow::Borrowed(message));
    };
    let Some(found) = filters.filters.get(name) else {
        return Some(Cow::Borrowed(message));
    };
    let counters = shard.protection.counters();
    bump(&counters.filter_scans, 1);
    match action {
        Action::Drop => {
            let hits = found.scan(message).len();
            bump(&counters.filter_hits, hits as u64);
            if hits == 0 {
                return Some(Cow::Borrowed(message));
            }
            bump(&counters.filter_dropped_messages, 1);
            None
        }
        Action::Mask => {
            let (masked, hits) = found.mask(message);
            bump(&counters.filter_hits, hits as u64);
            if hits == 0 {
                return Some(Cow::Borrowed(message));
            }
            bump(&counters.filter_masked_messages, 1);
            Some(Cow::Owned(masked))
        }
    }
}
