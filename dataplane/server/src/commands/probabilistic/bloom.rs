//! BF.*: scalable Bloom filters, as RedisBloom answers them.

use ember_store::probabilistic::{BloomChain, BloomChainError};
use ember_store::{Change, Value};

use super::super::{is, CommandResult, Ctx};
use super::{error, read_value, reply_info_field, CommandError, WRONGTYPE};

/// RedisBloom's default error rate (`bf-error-rate`) for filters that BF.ADD creates.
const DEFAULT_ERROR_RATE: f64 = 0.01;
/// RedisBloom's default capacity (`bf-initial-size`).
const DEFAULT_CAPACITY: i64 = 100;
/// RedisBloom's default growth factor (`bf-expansion-factor`).
const DEFAULT_EXPANSION: i64 = 2;
/// Largest capacity RedisBloom accepts (`bf-initial-size` maximum).
const CAPACITY_MAX: i64 = 1 << 30;
/// Largest growth factor RedisBloom accepts.
const EXPANSION_MAX: i64 = 32768;
/// Error rates above this are lowered to it (RedisBloom's `BF_ERROR_RATE_CAP`): past a
/// quarter a filter is of little use.
const ERROR_RATE_CAP: f64 = 0.25;

/// How a filter is made when a command creates one.
struct Creation {
    capacity: i64,
    error_rate: f64,
    expansion: i64,
    non_scaling: bool,
}

impl Default for Creation {
    fn default() -> Self {
        Self {
            capacity: DEFAULT_CAPACITY,
            error_rate: DEFAULT_ERROR_RATE,
            expansion: DEFAULT_EXPANSION,
            non_scaling: false,
        }
    }
}

impl Creation {
    fn build(&self) -> Result<BloomChain, CommandError> {
        let non_scaling = self.non_scaling || self.expansion == 0;
        BloomChain::new(
            self.capacity as u64,
            self.error_rate.min(ERROR_RATE_CAP),
            self.expansion as u32,
            non_scaling,
        )
        .map_err(|_| error("ERR Insufficient memory to create filter"))
    }
}

/// A double as RedisModule_StringToDouble reads it.
fn parse_double(arg: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(arg).ok()?;
    if text.is_empty() || text.starts_with(char::is_whitespace) {
        return None;
    }
    text.parse::<f64>().ok().filter(|value| !value.is_nan())
}

fn parse_long(arg: &[u8]) -> Option<i64> {
    ember_resp::parse_i64(arg)
}

/// The position of option `word` among the arguments, as RedisBloom's `RMUtil_ArgIndex`.
fn arg_index(args: &[&[u8]], word: &str) -> Option<usize> {
    args.iter().position(|arg| is(arg, word))
}

/// BF.RESERVE key error_rate capacity [EXPANSION expansion] [NONSCALING].
pub fn reserve(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    if args.len() > 7 {
        return Err(super::super::arity_message("bf.reserve").into());
    }
    let mut creation = Creation {
        error_rate: parse_double(args[2]).ok_or_else(|| error("ERR bad error rate"))?,
        ..Creation::default()
    };
    if !(creation.error_rate > 0.0 && creation.error_rate < 1.0) {
        return Err(error(
            "ERR error rate must be in the range (0.000000, 1.000000)",
        ));
    }
    creation.capacity = parse_long(args[3]).ok_or_else(|| error("ERR bad capacity"))?;
    if !(1..=CAPACITY_MAX).contains(&creation.capacity) {
        return Err(error("ERR capacity must be in the range [1, 1073741824]"));
    }
    creation.non_scaling = arg_index(args, "NONSCALING").is_some();
    if let Some(at) = arg_index(args, "EXPANSION") {
        let value = args.get(at + 1).ok_or_else(|| error("ERR no expansion"))?;
        creation.expansion = parse_long(value).ok_or_else(|| error("ERR bad expansion"))?;
        if creation.expansion == 0 {
            creation.non_scaling = true;
        } else if creation.non_scaling {
            return Err(error("Nonscaling filters cannot expand"));
        }
        if !(0..=EXPANSION_MAX).contains(&creation.expansion) {
            return Err(error("ERR expansion must be in the range [0, 32768]"));
        }
    }
    let (db, now_ms, key) = (ctx.db, ctx.now_ms, args[1]);
    if let Some(entry) = ctx.keyspace.get(db, key, now_ms) {
        return Err(match entry.value {
            Value::Bloom(_) => error("ERR item exists"),
            _ => error(WRONGTYPE),
        });
    }
    let chain = creation.build()?;
    super::charge_new(ctx, chain.memory_bytes())?;
    ctx.keyspace
        .insert(db, key, Value::Bloom(Box::new(chain)), None, now_ms);
    ctx.out.ok();
    Ok(())
}

/// One item's outcome of an addition.
enum Added {
    Reply(bool),
    /// A per-item error (a full non-scaling filter also ends the command).
    Failed(&'static str),
}

fn add_all(chain: &mut BloomChain, items: &[&[u8]]) -> Vec<Added> {
    let mut outcomes = Vec::with_capacity(items.len());
    for item in items {
        match chain.add(item) {
            Ok(added) => outcomes.push(Added::Reply(added)),
            Err(BloomChainError::Full) => {
                outcomes.push(Added::Failed("ERR non scaling filter is full"));
                break;
            }
            Err(BloomChainError::TooLarge) => {
                outcomes.push(Added::Failed("ERR problem inserting into filter"));
            }
        }
    }
    outcomes
}

/// Adds `items` to the filter at the key, creating it with `creation` unless `no_create`.
fn add_common(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    items: &[&[u8]],
    creation: &Creation,
    no_create: bool,
) -> Result<Vec<Added>, CommandError> {
    let (db, now_ms) = (ctx.db, ctx.now_ms);
    let updated = ctx.keyspace.update(db, key, now_ms, |value| {
        let Value::Bloom(chain) = value else {
            return Err(error(WRONGTYPE));
        };
        let outcomes = add_all(chain, items);
        let changed = outcomes
            .iter()
            .any(|outcome| matches!(outcome, Added::Reply(true)));
        Ok((
            outcomes,
            if changed {
                Change::Modified
            } else {
                Change::None
            },
        ))
    });
    match updated {
        Some(outcomes) => outcomes,
        None if no_create => Err(error("ERR not found")),
        None => {
            let mut chain = creation.build()?;
            super::charge_new(ctx, chain.memory_bytes())?;
            let outcomes = add_all(&mut chain, items);
            ctx.keyspace
                .insert(db, key, Value::Bloom(Box::new(chain)), None, now_ms);
            Ok(outcomes)
        }
    }
}

fn reply_outcome(ctx: &mut Ctx<'_>, outcome: &Added) {
    match outcome {
        Added::Reply(added) => ctx.out.boolean(*added),
        Added::Failed(text) => ctx.out.error(text),
    }
}

fn reply_outcomes(ctx: &mut Ctx<'_>, outcomes: &[Added]) {
    ctx.out.array_len(outcomes.len());
    for outcome in outcomes {
        reply_outcome(ctx, outcome);
    }
}

/// BF.ADD key item: 1 when newly added, 0 when it may have been there.
pub fn add(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let outcomes = add_common(ctx, args[1], &args[2..], &Creation::default(), false)?;
    match &outcomes[..] {
        [Added::Failed(text)] => Err(error(text)),
        [outcome] => {
            reply_outcome(ctx, outcome);
            Ok(())
        }
        _ => unreachable!("one item gives one outcome"),
    }
}

/// BF.MADD key item [item ...].
pub fn madd(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let outcomes = add_common(ctx, args[1], &args[2..], &Creation::default(), false)?;
    reply_outcomes(ctx, &outcomes);
    Ok(())
}

/// BF.INSERT key [CAPACITY capacity] [ERROR error] [EXPANSION expansion] [NOCREATE]
/// [NONSCALING] ITEMS item [item ...], parsed as RedisBloom does (by each option's first
/// letters).
pub fn insert(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let arity = || CommandError::from(super::super::arity_message("bf.insert"));
    let mut creation = Creation::default();
    let mut no_create = false;
    let mut items_at = None;
    let mut index = 2;
    while index < args.len() && items_at.is_none() {
        let option = args[index].to_ascii_lowercase();
        match option.first() {
            Some(b'i') => {
                index += 1;
                items_at = Some(index);
            }
            Some(b'e') => {
                let value = args.get(index + 1).ok_or_else(arity)?;
                if option.get(1) == Some(&b'r') {
                    creation.error_rate = parse_double(value)
                        .filter(|rate| *rate > 0.0 && *rate < 1.0)
                        .ok_or_else(|| error("Bad error rate"))?;
                } else {
                    creation.expansion = parse_long(value)
                        .filter(|expansion| (0..=EXPANSION_MAX).contains(expansion))
                        .ok_or_else(|| error("Bad expansion"))?;
                }
                index += 2;
            }
            Some(b'c') => {
                let value = args.get(index + 1).ok_or_else(arity)?;
                creation.capacity = parse_long(value)
                    .filter(|capacity| (1..=CAPACITY_MAX).contains(capacity))
                    .ok_or_else(|| error("Bad capacity"))?;
                index += 2;
            }
            Some(b'n') => {
                if option.get(2) == Some(&b'c') {
                    no_create = true;
                } else {
                    creation.non_scaling = true;
                }
                index += 1;
            }
            _ => return Err(error("Unknown argument received")),
        }
    }
    let items_at = items_at.filter(|&at| at < args.len()).ok_or_else(arity)?;
    let outcomes = add_common(ctx, args[1], &args[items_at..], &creation, no_create)?;
    reply_outcomes(ctx, &outcomes);
    Ok(())
}

/// The chain at `key` for a read: `Ok(None)` when absent.
fn read_chain<'c>(
    ctx: &'c mut Ctx<'_>,
    key: &[u8],
) -> Result<Option<&'c BloomChain>, CommandError> {
    match read_value(ctx, key) {
        None => Ok(None),
        Some(Value::Bloom(chain)) => Ok(Some(chain)),
        Some(_) => Err(error(WRONGTYPE)),
    }
}

/// Answers membership of `items`; a missing key, or one of another type, holds nothing (as
/// RedisBloom's BF.EXISTS answers).
fn exists_common(ctx: &mut Ctx<'_>, key: &[u8], items: &[&[u8]]) -> Vec<bool> {
    match super::super::read_entry(ctx, key).map(|entry| &entry.value) {
        Some(Value::Bloom(chain)) => items.iter().map(|item| chain.contains(item)).collect(),
        _ => vec![false; items.len()],
    }
}

/// BF.EXISTS key item.
pub fn exists(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let found = exists_common(ctx, args[1], &args[2..]);
    ctx.out.boolean(found[0]);
    Ok(())
}

/// BF.MEXISTS key item [item ...].
pub fn mexists(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let found = exists_common(ctx, args[1], &args[2..]);
    ctx.out.array_len(found.len());
    for found in found {
        ctx.out.boolean(found);
    }
    Ok(())
}

/// BF.INFO key [CAPACITY | SIZE | FILTERS | ITEMS | EXPANSION].
pub fn info(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    if args.len() > 3 {
        return Err(super::super::arity_message("bf.info").into());
    }
    let chain = read_chain(ctx, args[1])?.ok_or_else(|| error("ERR not found"))?;
    let fields: [(&str, &str, Option<i64>); 5] = [
        ("capacity", "Capacity", Some(chain.capacity() as i64)),
        ("size", "Size", Some(chain.info_size() as i64)),
        (
            "filters",
            "Number of filters",
            Some(chain.filter_count() as i64),
        ),
        (
            "items",
            "Number of items inserted",
            Some(chain.len() as i64),
        ),
        (
            "expansion",
            "Expansion rate",
            chain.expansion().map(i64::from),
        ),
    ];
    let reply_value = |ctx: &mut Ctx<'_>, value: Option<i64>| match value {
        Some(value) => ctx.out.integer(value),
        None => ctx.out.null(),
    };
    if let Some(wanted) = args.get(2) {
        let (_, name, value) = fields
            .iter()
            .find(|(option, _, _)| is(wanted, option))
            .ok_or_else(|| error("Invalid information value"))?;
        let (name, value) = (*name, *value);
        reply_info_field(ctx, name);
        reply_value(ctx, value);
        return Ok(());
    }
    ctx.out.map_len(fields.len());
    for (_, name, value) in fields {
        ctx.out.simple(name.as_bytes());
        reply_value(ctx, value);
    }
    Ok(())
}

/// BF.CARD key: items added, 0 for a missing key.
pub fn card(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let len = read_chain(ctx, args[1])?.map_or(0, BloomChain::len);
    ctx.out.integer(len as i64);
    Ok(())
}

/// Largest chunk BF.SCANDUMP and CF.SCANDUMP answer (RedisBloom's `MAX_SCANDUMP_SIZE`).
pub(super) const SCANDUMP_CHUNK_MAX: usize = 16 << 20;

/// BF.SCANDUMP key iterator: iterator 0 answers `[1, header]`; each later call answers the
/// next chunk of the bit arrays and the iterator to pass next, and `[0, ""]` once past the
/// end. Loading every pair in order with BF.LOADCHUNK rebuilds the filter.
pub fn scandump(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let chain = read_chain(ctx, args[1])?.ok_or_else(|| error("ERR not found"))?;
    let iter = parse_long(args[2]).ok_or_else(|| error("Second argument must be numeric"))?;
    let (next, data) = if iter == 0 {
        (1, chain.dump_header())
    } else {
        chain
            .dump_chunk(iter, SCANDUMP_CHUNK_MAX)
            .unwrap_or((0, Vec::new()))
    };
    ctx.out.array_len(2);
    ctx.out.integer(next);
    ctx.out.bulk(&data);
    Ok(())
}

/// BF.LOADCHUNK key iterator data: iterator 1 on a missing key makes the filter from the
/// header; any other pair fills its chunk into the filter at the key.
pub fn loadchunk(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let iter = parse_long(args[2]).ok_or_else(|| error("ERR Second argument must be numeric"))?;
    let (db, now_ms, key, data) = (ctx.db, ctx.now_ms, args[1], args[3]);
    let loaded = ctx.keyspace.update(db, key, now_ms, |value| {
        let Value::Bloom(chain) = value else {
            return Err(error(WRONGTYPE));
        };
        chain
            .load_chunk(iter, data)
            .map_err(|failed| error(failed.message()))?;
        Ok(((), Change::Modified))
    });
    match loaded {
        Some(result) => result?,
        None if iter == 1 => {
            let chain =
                BloomChain::from_dump_header(data).map_err(|failed| error(failed.message()))?;
            ctx.keyspace
                .insert(db, key, Value::Bloom(Box::new(chain)), None, now_ms);
        }
        None => return Err(error("ERR not found")),
    }
    ctx.out.ok();
    Ok(())
}
