//! Routing: which shard owns a key, and where a command's keys live.

use ember_store::slot::key_slot;

use super::Shard;
use crate::commands::CommandSpec;

pub use ember_store::slot::shard_of_slot as owner_of_slot;

/// The shard of `shard_count` that owns `key` (no CRC16 when there is one shard: RECOMMEND
/// asks for thousands of rows).
#[inline]
pub fn owner_of_key(key: &[u8], shard_count: usize) -> usize {
    if shard_count == 1 {
        return 0;
    }
    owner_of_slot(key_slot(key), shard_count)
}

/// Where a keyspace command's keys live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// All on this shard (or no keys).
    Local,
    /// All on one other shard.
    Remote(usize),
    /// On several shards.
    Split,
}

/// Finds where the keys of `args` live.
pub fn route(shard: &Shard, spec: &CommandSpec, args: &[&[u8]]) -> Route {
    if shard.count() > 1 && spec.reads_named_keys(args) {
        // Keys its data names (SORT's patterns) may live on any shard.
        return Route::Split;
    }
    if shard.offload_sim {
        return route_through_offload(shard, spec, args);
    }
    if shard.count() == 1 {
        return Route::Local;
    }
    if let Some(finder) = spec.key_finder {
        return route_positions(shard, finder(args).into_iter(), args);
    }
    route_positions(shard, spec.keys.positions(args.len()), args)
}

/// [`route`] over the keys at `positions`.
fn route_positions(shard: &Shard, positions: impl Iterator<Item = usize>, args: &[&[u8]]) -> Route {
    let mut owner = None;
    for position in positions {
        let key_owner = shard.owner_of(args[position]);
        match owner {
            None => owner = Some(key_owner),
            Some(previous) if previous != key_owner => return Route::Split,
            Some(_) => {}
        }
    }
    match owner {
        Some(owner) if owner != shard.index => Route::Remote(owner),
        _ => Route::Local,
    }
}

/// [`route`] with the key slots computed by the offload (`--offload sim`): the simulated
/// `slot_hash` module hashes every key and counts its cycles. A simulation failure is reported
/// and the software slot function answers instead, so a request never fails for it.
fn route_through_offload(shard: &Shard, spec: &CommandSpec, args: &[&[u8]]) -> Route {
    let keys: Vec<&[u8]> = spec
        .key_positions(args)
        .into_iter()
        .map(|p| args[p])
        .collect();
    if keys.is_empty() {
        return Route::Local;
    }
    let slots = shard
        .offload
        .borrow_mut()
        .key_slots(&keys)
        .unwrap_or_else(|error| {
            eprintln!("ember: offload failed ({error}); using the software slot function");
            keys.iter().map(|key| key_slot(key)).collect()
        });
    let mut owners = slots.iter().map(|&slot| owner_of_slot(slot, shard.count()));
    let first = owners.next().expect("at least one key");
    if owners.any(|owner| owner != first) {
        Route::Split
    } else if first == shard.index {
        Route::Local
    } else {
        Route::Remote(first)
    }
}
