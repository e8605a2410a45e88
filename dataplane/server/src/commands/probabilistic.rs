//! RedisBloom's probabilistic commands (`BF.*`, `CF.*`, `CMS.*`, `TOPK.*`) over the store's
//! [`ember_store::probabilistic`] types, with RedisBloom's replies, error texts (many without
//! an `ERR` prefix, as RedisBloom sends them) and defaults. One file per type in
//! `probabilistic/`; this one holds the table and what they share.

mod bloom;
mod cuckoo;
mod sketch;

use ember_resp::Protocol;
use ember_store::Value;

use super::{
    command, movable, split, CommandError, CommandSpec, Ctx, Ks, Split, NO_KEYS, ONE_KEY, R,
    R_FAST, W, W_OOM, W_OOM_FAST,
};

/// This family's commands.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    command("bf.reserve", -4, W_OOM_FAST, ONE_KEY, "bf", "1.0.0", "Creates a new Bloom Filter.", Ks(bloom::reserve)),
    command("bf.add", 3, W_OOM_FAST, ONE_KEY, "bf", "1.0.0", "Adds an item to a Bloom Filter.", Ks(bloom::add)),
    command("bf.madd", -3, W_OOM_FAST, ONE_KEY, "bf", "1.0.0", "Adds one or more items to a Bloom Filter. A filter will be created if it does not exist.", Ks(bloom::madd)),
    command("bf.insert", -4, W_OOM_FAST, ONE_KEY, "bf", "1.0.0", "Adds one or more items to a Bloom Filter. A filter will be created if it does not exist.", Ks(bloom::insert)),
    command("bf.exists", 3, R_FAST, ONE_KEY, "bf", "1.0.0", "Checks whether an item exists in a Bloom Filter.", Ks(bloom::exists)),
    command("bf.mexists", -3, R_FAST, ONE_KEY, "bf", "1.0.0", "Checks whether one or more items exist in a Bloom Filter.", Ks(bloom::mexists)),
    command("bf.info", -2, R_FAST, ONE_KEY, "bf", "1.0.0", "Returns information about a Bloom Filter.", Ks(bloom::info)),
    command("bf.card", 2, R_FAST, ONE_KEY, "bf", "2.4.4", "Returns the cardinality of a Bloom filter.", Ks(bloom::card)),
    command("bf.scandump", 3, R_FAST, ONE_KEY, "bf", "1.0.0", "Begins an incremental save of the bloom filter.", Ks(bloom::scandump)),
    command("bf.loadchunk", 4, W_OOM, ONE_KEY, "bf", "1.0.0", "Restores a filter previously saved using SCANDUMP.", Ks(bloom::loadchunk)),
    command("cf.reserve", -3, W_OOM_FAST, ONE_KEY, "cf", "1.0.0", "Creates a new Cuckoo Filter.", Ks(cuckoo::reserve)),
    command("cf.add", 3, W_OOM_FAST, ONE_KEY, "cf", "1.0.0", "Adds an item to a Cuckoo Filter.", Ks(cuckoo::add)),
    command("cf.addnx", 3, W_OOM_FAST, ONE_KEY, "cf", "1.0.0", "Adds an item to a Cuckoo Filter if the item did not exist previously.", Ks(cuckoo::addnx)),
    command("cf.insert", -4, W_OOM_FAST, ONE_KEY, "cf", "1.0.0", "Adds one or more items to a Cuckoo Filter. A filter will be created if it does not exist.", Ks(cuckoo::insert)),
    command("cf.insertnx", -4, W_OOM_FAST, ONE_KEY, "cf", "1.0.0", "Adds one or more items to a Cuckoo Filter if the items did not exist previously.", Ks(cuckoo::insertnx)),
    command("cf.exists", 3, R_FAST, ONE_KEY, "cf", "1.0.0", "Checks whether one or more items exist in a Cuckoo Filter.", Ks(cuckoo::exists)),
    command("cf.mexists", -3, R_FAST, ONE_KEY, "cf", "1.0.0", "Checks whether one or more items exist in a Cuckoo Filter.", Ks(cuckoo::mexists)),
    command("cf.del", 3, W_FAST_OR_W, ONE_KEY, "cf", "1.0.0", "Deletes an item from a Cuckoo Filter.", Ks(cuckoo::del)),
    command("cf.count", 3, R_FAST, ONE_KEY, "cf", "1.0.0", "Return the number of times an item might be in a Cuckoo Filter.", Ks(cuckoo::count)),
    command("cf.info", 2, R_FAST, ONE_KEY, "cf", "1.0.0", "Returns information about a Cuckoo Filter.", Ks(cuckoo::info)),
    command("cf.scandump", 3, R_FAST, ONE_KEY, "cf", "1.0.0", "Begins an incremental save of the bloom filter.", Ks(cuckoo::scandump)),
    command("cf.loadchunk", 4, W_OOM, ONE_KEY, "cf", "1.0.0", "Restores a filter previously saved using SCANDUMP.", Ks(cuckoo::loadchunk)),
    command("cms.initbydim", 4, W_OOM_FAST, ONE_KEY, "cms", "2.0.0", "Initializes a Count-Min Sketch to dimensions specified by user.", Ks(sketch::cms_initbydim)),
    command("cms.initbyprob", 4, W_OOM_FAST, ONE_KEY, "cms", "2.0.0", "Initializes a Count-Min Sketch to accommodate requested tolerances.", Ks(sketch::cms_initbyprob)),
    command("cms.incrby", -4, W_OOM, ONE_KEY, "cms", "2.0.0", "Increases the count of one or more items by increment.", Ks(sketch::cms_incrby)),
    command("cms.query", -3, R, ONE_KEY, "cms", "2.0.0", "Returns the count for one or more items in a sketch.", Ks(sketch::cms_query)),
    split(movable(command("cms.merge", -4, W_OOM, NO_KEYS, "cms", "2.0.0", "Merges several sketches into one sketch.", Ks(sketch::cms_merge)), cms_merge_keys), Split::Scratch),
    command("cms.info", 2, R_FAST, ONE_KEY, "cms", "2.0.0", "Returns information about a sketch.", Ks(sketch::cms_info)),
    command("topk.reserve", -3, W_OOM_FAST, ONE_KEY, "topk", "2.0.0", "Initializes a TopK with specified parameters.", Ks(sketch::topk_reserve)),
    command("topk.add", -3, W_OOM, ONE_KEY, "topk", "2.0.0", "Increases the count of one or more items by increment.", Ks(sketch::topk_add)),
    command("topk.incrby", -4, W_OOM, ONE_KEY, "topk", "2.0.0", "Increases the count of one or more items by increment.", Ks(sketch::topk_incrby)),
    command("topk.query", -3, R, ONE_KEY, "topk", "2.0.0", "Checks whether one or more items are in a sketch.", Ks(sketch::topk_query)),
    command("topk.count", -3, R, ONE_KEY, "topk", "2.0.0", "Return the count for one or more items are in a sketch.", Ks(sketch::topk_count)),
    command("topk.list", -2, R, ONE_KEY, "topk", "2.0.0", "Return full list of items in Top K list.", Ks(sketch::topk_list)),
    command("topk.info", 2, R, ONE_KEY, "topk", "2.0.0", "Returns information about a sketch.", Ks(sketch::topk_info)),
];

/// CF.DEL's flags: RedisBloom registers it `write fast`, without deny-oom (a delete frees).
const W_FAST_OR_W: super::CommandFlags = W.union(super::CommandFlags::FAST);

/// CMS.MERGE destination numkeys source [source ...] [WEIGHTS weight ...]: the destination,
/// then `numkeys` sources (none when numkeys is not a count that fits).
fn cms_merge_keys(args: &[&[u8]]) -> Vec<usize> {
    let Some(count) = args.get(2).and_then(|arg| ember_resp::parse_i64(arg)) else {
        return vec![1];
    };
    let count = usize::try_from(count).unwrap_or(0);
    if count == 0 || 3 + count > args.len() {
        return vec![1];
    }
    std::iter::once(1).chain(3..3 + count).collect()
}

/// How a key holding a value of the wrong family answers.
const WRONGTYPE: &str = super::errors::WRONGTYPE;

/// An error reply with RedisBloom's exact text.
/// A new filter or sketch of `bytes` is charged against `maxmemory` before it is stored (its
/// zeroed pages are untouched until then): Redis's OOM error when it does not fit.
fn charge_new(ctx: &Ctx<'_>, bytes: usize) -> Result<(), CommandError> {
    if crate::memory::refuses_request(ctx.config, bytes as u64) {
        return Err(crate::memory::OOM_ERROR.into());
    }
    Ok(())
}

fn error(text: &'static str) -> CommandError {
    CommandError::from(text)
}

/// A reply of one `*.INFO` field: a one-pair map in RESP3, a one-element array in RESP2.
fn reply_info_field(ctx: &mut Ctx<'_>, name: &str) {
    if ctx.protocol == Protocol::Resp3 {
        ctx.out.map_len(1);
        ctx.out.simple(name.as_bytes());
    } else {
        ctx.out.array_len(1);
    }
}

/// Reads the value at `key` for a read command (counting the hit or miss).
fn read_value<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Option<&'c Value> {
    super::read_entry(ctx, key).map(|entry| &entry.value)
}
