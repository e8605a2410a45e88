//! CMS.* (count-min sketch) and TOPK.* (HeavyKeeper top-k), as RedisBloom answers them.

use ember_store::probabilistic::{CountMinError, CountMinSketch, TopK};
use ember_store::{Change, Value};

use super::super::{is, CommandResult, Ctx};
use super::{error, read_value, CommandError, WRONGTYPE};

/// TOPK.RESERVE's defaults when only k is given (RedisBloom's).
const TOPK_DEFAULT_WIDTH: u32 = 8;
const TOPK_DEFAULT_DEPTH: u32 = 7;
const TOPK_DEFAULT_DECAY: f64 = 0.9;
/// Largest TOPK.INCRBY increment RedisBloom accepts (each unit may cost a random draw).
const TOPK_INCREMENT_MAX: i64 = 100_000;

fn parse_double(arg: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(arg).ok()?;
    text.parse::<f64>().ok().filter(|value| !value.is_nan())
}

/// Refuses an existing key (RedisBloom's `<prefix>: key already exists`).
fn refuse_existing(ctx: &mut Ctx<'_>, key: &[u8], text: &'static str) -> CommandResult {
    match ctx.keyspace.get(ctx.db, key, ctx.now_ms) {
        Some(_) => Err(error(text)),
        None => Ok(()),
    }
}

fn create_cms(ctx: &mut Ctx<'_>, key: &[u8], width: u64, depth: u64) -> CommandResult {
    if width
        .checked_mul(depth)
        .is_none_or(|cells| cells > i64::MAX as u64)
    {
        return Err(error("CMS: invalid init arguments"));
    }
    let sketch = CountMinSketch::new(width, depth)
        .ok_or_else(|| error("CMS: Insufficient memory to create the key"))?;
    super::charge_new(ctx, sketch.memory_bytes())?;
    let (db, now_ms) = (ctx.db, ctx.now_ms);
    ctx.keyspace
        .insert(db, key, Value::CountMin(Box::new(sketch)), None, now_ms);
    ctx.out.ok();
    Ok(())
}

/// CMS.INITBYDIM key width depth.
pub fn cms_initbydim(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    refuse_existing(ctx, args[1], "CMS: key already exists")?;
    let width = ember_resp::parse_i64(args[2])
        .filter(|&width| width >= 1)
        .ok_or_else(|| error("CMS: invalid width"))?;
    let depth = ember_resp::parse_i64(args[3])
        .filter(|&depth| depth >= 1)
        .ok_or_else(|| error("CMS: invalid depth"))?;
    create_cms(ctx, args[1], width as u64, depth as u64)
}

/// CMS.INITBYPROB key error probability.
pub fn cms_initbyprob(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    refuse_existing(ctx, args[1], "CMS: key already exists")?;
    let fraction = |value: f64| value > 0.0 && value < 1.0;
    let overestimate = parse_double(args[2])
        .filter(|&value| fraction(value))
        .ok_or_else(|| error("CMS: invalid overestimation value"))?;
    let probability = parse_double(args[3])
        .filter(|&value| fraction(value))
        .ok_or_else(|| error("CMS: invalid prob value"))?;
    let (width, depth) = CountMinSketch::dimensions_for(overestimate, probability);
    if width < 1 || depth < 1 {
        return Err(error("CMS: invalid init arguments"));
    }
    create_cms(ctx, args[1], width, depth)
}

/// The sketch at `key` for a read.
fn read_cms<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Result<&'c CountMinSketch, CommandError> {
    match read_value(ctx, key) {
        Some(Value::CountMin(sketch)) => Ok(sketch),
        Some(_) => Err(error(WRONGTYPE)),
        None => Err(error("CMS: key does not exist")),
    }
}

/// CMS.INCRBY key item increment [item increment ...]: each item's new estimate.
pub fn cms_incrby(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    if args.len() % 2 == 1 {
        return Err(super::super::arity_message("cms.incrby").into());
    }
    let (db, now_ms) = (ctx.db, ctx.now_ms);
    match ctx
        .keyspace
        .get(db, args[1], now_ms)
        .map(|entry| &entry.value)
    {
        None => return Err(error("CMS: key does not exist")),
        Some(Value::CountMin(_)) => {}
        Some(_) => return Err(error(WRONGTYPE)),
    }
    let mut pairs = Vec::with_capacity(args.len() / 2 - 1);
    for pair in args[2..].chunks_exact(2) {
        let increment =
            ember_resp::parse_i64(pair[1]).ok_or_else(|| error("CMS: Cannot parse number"))?;
        if increment < 0 {
            return Err(error("CMS: Number cannot be negative"));
        }
        // RedisBloom adds increments to 32-bit counters; a larger one saturates them.
        pairs.push((pair[0], u32::try_from(increment).unwrap_or(u32::MAX)));
    }
    let estimates = ctx.keyspace.update(db, args[1], now_ms, |value| {
        let Value::CountMin(sketch) = value else {
            return Err(error(WRONGTYPE));
        };
        let estimates: Vec<u32> = pairs
            .iter()
            .map(|(item, by)| sketch.increment(item, *by))
            .collect();
        Ok((estimates, Change::Modified))
    });
    let estimates = estimates.ok_or_else(|| error("CMS: key does not exist"))??;
    ctx.out.array_len(estimates.len());
    for estimate in estimates {
        if estimate == u32::MAX {
            ctx.out.error("CMS: INCRBY overflow");
        } else {
            ctx.out.integer(i64::from(estimate));
        }
    }
    Ok(())
}

/// CMS.QUERY key item [item ...].
pub fn cms_query(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let sketch = read_cms(ctx, args[1])?;
    let counts: Vec<u32> = args[2..].iter().map(|item| sketch.query(item)).collect();
    ctx.out.array_len(counts.len());
    for count in counts {
        ctx.out.integer(i64::from(count));
    }
    Ok(())
}

/// CMS.MERGE destination numkeys source [source ...] [WEIGHTS weight [weight ...]]; the
/// destination must exist and share the sources' dimensions.
pub fn cms_merge(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    read_cms(ctx, args[1])?;
    let count = ember_resp::parse_i64(args[2]).ok_or_else(|| error("CMS: invalid numkeys"))?;
    if count <= 0 {
        return Err(error("CMS: Number of keys must be positive"));
    }
    let rest = &args[3..];
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    let weights_at = rest.iter().position(|arg| is(arg, "WEIGHTS"));
    match weights_at {
        None if count != rest.len() => return Err(error("CMS: wrong number of keys")),
        Some(at) if at != count || rest.len() != 1 + count * 2 => {
            return Err(error("CMS: wrong number of keys/weights"))
        }
        _ => {}
    }
    // First every source is looked up as a read (expiring it if due, counting the hit, and
    // refusing a missing or mistyped one in argument order), with its weight.
    let mut weights = Vec::with_capacity(count);
    for (index, key) in rest[..count].iter().enumerate() {
        let weight = match weights_at {
            None => 1,
            Some(at) => ember_resp::parse_i64(rest[at + 1 + index])
                .ok_or_else(|| error("CMS: invalid weight value"))?,
        };
        read_cms(ctx, key)?;
        weights.push(weight);
    }
    // Then the sum is made from borrowed sketches: a source named many times is read many
    // times and copied never (`CMS.MERGE dst 100000 src src ...` costs one destination-sized
    // array, not 100000 copies of src), and the destination may be among its own sources.
    let (db, now_ms) = (ctx.db, ctx.now_ms);
    let peek_cms = |key: &[u8]| match ctx.keyspace.peek(db, key, now_ms).map(|e| &e.value) {
        Some(Value::CountMin(sketch)) => sketch.as_ref(),
        _ => unreachable!("every key was found a sketch just above, at the same time"),
    };
    let sources: Vec<(&CountMinSketch, i64)> = rest[..count]
        .iter()
        .map(|key| peek_cms(key))
        .zip(weights)
        .collect();
    let merged = peek_cms(args[1])
        .merged(&sources)
        .map_err(|failure| match failure {
            CountMinError::Dimensions => error("CMS: width/depth is not equal"),
            CountMinError::Overflow => error("CMS: MERGE overflow"),
        })?;
    let stored = ctx.keyspace.update(db, args[1], now_ms, |value| {
        let Value::CountMin(sketch) = value else {
            return Err(error(WRONGTYPE));
        };
        **sketch = merged;
        Ok(((), Change::Modified))
    });
    stored.ok_or_else(|| error("CMS: key does not exist"))??;
    ctx.out.ok();
    Ok(())
}

/// CMS.INFO key.
pub fn cms_info(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let sketch = read_cms(ctx, args[1])?;
    let fields = [
        ("width", i64::from(sketch.width())),
        ("depth", i64::from(sketch.depth())),
        ("count", sketch.total() as i64),
    ];
    ctx.out.map_len(fields.len());
    for (name, value) in fields {
        ctx.out.simple(name.as_bytes());
        ctx.out.integer(value);
    }
    Ok(())
}

/// A positive 32-bit TOPK.RESERVE parameter.
fn parse_u32(arg: &[u8], text: &'static str) -> Result<u32, CommandError> {
    ember_resp::parse_i64(arg)
        .filter(|&value| value >= 1)
        .and_then(|value| u32::try_from(value).ok())
        .ok_or_else(|| error(text))
}

/// TOPK.RESERVE key topk [width depth decay].
pub fn topk_reserve(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    if args.len() != 3 && args.len() != 6 {
        return Err(super::super::arity_message("topk.reserve").into());
    }
    refuse_existing(ctx, args[1], "TopK: key already exists")?;
    let k = parse_u32(args[2], "TopK: invalid k")?;
    let (width, depth, decay) = if args.len() == 6 {
        let width = parse_u32(args[3], "TopK: invalid width")?;
        let depth = parse_u32(args[4], "TopK: invalid depth")?;
        let decay = parse_double(args[5])
            .filter(|&decay| decay > 0.0 && decay <= 1.0)
            .ok_or_else(|| error("TopK: invalid decay value. must be '<= 1' & '> 0'"))?;
        (width, depth, decay)
    } else {
        (TOPK_DEFAULT_WIDTH, TOPK_DEFAULT_DEPTH, TOPK_DEFAULT_DECAY)
    };
    let top = TopK::new(k, width, depth, decay)
        .ok_or_else(|| error("ERR Insufficient memory to create topk data structure"))?;
    super::charge_new(ctx, top.memory_bytes())?;
    let (db, now_ms) = (ctx.db, ctx.now_ms);
    ctx.keyspace
        .insert(db, args[1], Value::TopK(Box::new(top)), None, now_ms);
    ctx.out.ok();
    Ok(())
}

fn read_topk<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Result<&'c TopK, CommandError> {
    match read_value(ctx, key) {
        Some(Value::TopK(top)) => Ok(top),
        Some(_) => Err(error(WRONGTYPE)),
        None => Err(error("TopK: key does not exist")),
    }
}

/// Adds each (item, increment), replying with what each expelled; an invalid increment ends
/// the reply with an error there, as RedisBloom's TOPK.INCRBY does.
fn topk_add_pairs(ctx: &mut Ctx<'_>, key: &[u8], pairs: &[(&[u8], Option<u32>)]) -> CommandResult {
    let (db, now_ms) = (ctx.db, ctx.now_ms);
    let expelled = ctx.keyspace.update(db, key, now_ms, |value| {
        let Value::TopK(top) = value else {
            return Err(error(WRONGTYPE));
        };
        // A bad increment answers an error in its place and the other pairs go on, as Redis
        // 8's TOPK.INCRBY does: the reply holds one element per pair. (RedisBloom's module
        // stopped at it and left its array short, which desynchronised the connection.)
        let expelled: Vec<_> = pairs
            .iter()
            .map(|(item, increment)| increment.map(|increment| top.add(item, increment)))
            .collect();
        Ok((expelled, Change::Modified))
    });
    let expelled = expelled.ok_or_else(|| error("TopK: key does not exist"))??;
    ctx.out.array_len(pairs.len());
    for outcome in expelled {
        match outcome {
            Some(Some(item)) => ctx.out.bulk(&item),
            Some(None) => ctx.out.null(),
            None => ctx.out.error(
                "TopK: increment must be an integer greater or equal to 0 and smaller or equal to 100,000",
            ),
        }
    }
    Ok(())
}

/// TOPK.ADD key item [item ...].
pub fn topk_add(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let pairs: Vec<(&[u8], Option<u32>)> = args[2..].iter().map(|item| (*item, Some(1))).collect();
    topk_add_pairs(ctx, args[1], &pairs)
}

/// TOPK.INCRBY key item increment [item increment ...].
pub fn topk_incrby(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    if args.len() % 2 == 1 {
        return Err(super::super::arity_message("topk.incrby").into());
    }
    let pairs: Vec<(&[u8], Option<u32>)> = args[2..]
        .chunks_exact(2)
        .map(|pair| {
            let increment = ember_resp::parse_i64(pair[1])
                .filter(|value| (0..=TOPK_INCREMENT_MAX).contains(value))
                .map(|value| value as u32);
            (pair[0], increment)
        })
        .collect();
    topk_add_pairs(ctx, args[1], &pairs)
}

/// TOPK.QUERY key item [item ...].
pub fn topk_query(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let top = read_topk(ctx, args[1])?;
    let found: Vec<bool> = args[2..].iter().map(|item| top.contains(item)).collect();
    ctx.out.array_len(found.len());
    for found in found {
        ctx.out.boolean(found);
    }
    Ok(())
}

/// TOPK.COUNT key item [item ...] (deprecated in RedisBloom, kept for old clients).
pub fn topk_count(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let top = read_topk(ctx, args[1])?;
    let counts: Vec<u32> = args[2..].iter().map(|item| top.count(item)).collect();
    ctx.out.array_len(counts.len());
    for count in counts {
        ctx.out.integer(i64::from(count));
    }
    Ok(())
}

/// TOPK.LIST key [WITHCOUNT]: the items, heaviest first.
pub fn topk_list(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    if args.len() > 3 {
        return Err(super::super::arity_message("topk.list").into());
    }
    let with_count = match args.get(2) {
        None => false,
        Some(arg) if is(arg, "WITHCOUNT") => true,
        Some(_) => return Err(error("WITHCOUNT keyword expected")),
    };
    let top = read_topk(ctx, args[1])?;
    let listed: Vec<(Vec<u8>, u32)> = top
        .list()
        .into_iter()
        .map(|(item, count)| (item.to_vec(), count))
        .collect();
    ctx.out
        .array_len(listed.len() * if with_count { 2 } else { 1 });
    for (item, count) in listed {
        ctx.out.bulk(&item);
        if with_count {
            ctx.out.integer(i64::from(count));
        }
    }
    Ok(())
}

/// TOPK.INFO key.
pub fn topk_info(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let top = read_topk(ctx, args[1])?;
    let (k, width, depth, decay) = (top.k(), top.width(), top.depth(), top.decay());
    ctx.out.map_len(4);
    for (name, value) in [("k", k), ("width", width), ("depth", depth)] {
        ctx.out.simple(name.as_bytes());
        ctx.out.integer(i64::from(value));
    }
    ctx.out.simple(b"decay");
    ctx.out.double(decay);
    Ok(())
}
