//! CF.*: cuckoo filters, as RedisBloom answers them.

use ember_store::probabilistic::{CuckooFilter, CuckooInsert, CUCKOO_DUMP_HEADER_LEN};
use ember_store::{Change, Value};

use super::super::{arity_message, is, CommandResult, Ctx};
use super::{error, CommandError, WRONGTYPE};

/// RedisBloom's default capacity of a filter that CF.ADD creates (`cf-initial-size`).
const DEFAULT_CAPACITY: i64 = 1024;
/// RedisBloom's defaults: `cf-bucket-size`, `cf-max-iterations`, `cf-expansion-factor`.
const DEFAULT_BUCKET_SIZE: i64 = 2;
const DEFAULT_MAX_ITERATIONS: i64 = 20;
const DEFAULT_EXPANSION: i64 = 1;
/// Largest capacity (`cf-initial-size` maximum).
const CAPACITY_MAX: i64 = 1 << 30;
/// Most sub-filters before additions are refused (`cf-max-expansions`).
const FILTERS_MAX: usize = 32;

/// An option's value after `word` (RedisBloom's `RMUtil_ArgIndex` then the next argument).
fn option_value<'a>(args: &[&'a [u8]], word: &str) -> Option<Option<&'a [u8]>> {
    let at = args.iter().position(|arg| is(arg, word))?;
    Some(args.get(at + 1).copied())
}

fn ranged(
    args: &[&[u8]],
    word: &str,
    default: i64,
    range: std::ops::RangeInclusive<i64>,
    parse_error: &'static str,
    range_error: &'static str,
) -> Result<i64, CommandError> {
    match option_value(args, word) {
        None => Ok(default),
        Some(value) => {
            let value = value
                .and_then(ember_resp::parse_i64)
                .ok_or_else(|| error(parse_error))?;
            if range.contains(&value) {
                Ok(value)
            } else {
                Err(error(range_error))
            }
        }
    }
}

/// CF.RESERVE key capacity [BUCKETSIZE n] [MAXITERATIONS n] [EXPANSION n].
pub fn reserve(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    if args.len() % 2 == 0 {
        return Err(arity_message("cf.reserve").into());
    }
    let capacity = ember_resp::parse_i64(args[2]).ok_or_else(|| error("Bad capacity"))?;
    let max_iterations = ranged(
        args,
        "MAXITERATIONS",
        DEFAULT_MAX_ITERATIONS,
        1..=65535,
        "Couldn't parse MAXITERATIONS",
        "MAXITERATIONS: value must be in the range [1, 65535]",
    )?;
    let bucket_size = ranged(
        args,
        "BUCKETSIZE",
        DEFAULT_BUCKET_SIZE,
        1..=255,
        "Couldn't parse BUCKETSIZE",
        "BUCKETSIZE: value must be in the range [1, 255]",
    )?;
    let expansion = ranged(
        args,
        "EXPANSION",
        DEFAULT_EXPANSION,
        0..=32768,
        "Couldn't parse EXPANSION",
        "EXPANSION: value must be in the range [0, 32768]",
    )?;
    if bucket_size * 2 > capacity || capacity > CAPACITY_MAX {
        return Err(error(
            "Capacity must be in the range [2 * BUCKETSIZE, 1073741824]",
        ));
    }
    let (db, now_ms, key) = (ctx.db, ctx.now_ms, args[1]);
    if let Some(entry) = ctx.keyspace.get(db, key, now_ms) {
        return Err(match entry.value {
            Value::Cuckoo(_) => error("ERR item exists"),
            _ => error(WRONGTYPE),
        });
    }
    let filter = CuckooFilter::new(
        capacity as u64,
        bucket_size as u8,
        max_iterations as u16,
        expansion as u16,
    )
    .ok_or_else(|| error("ERR Insufficient memory to create filter"))?;
    super::charge_new(ctx, filter.memory_bytes())?;
    ctx.keyspace
        .insert(db, key, Value::Cuckoo(Box::new(filter)), None, now_ms);
    ctx.out.ok();
    Ok(())
}

/// How an insertion command behaves.
struct Insertion {
    unique: bool,
    multi: bool,
    create: bool,
    capacity: i64,
}

fn insert_common(ctx: &mut Ctx<'_>, key: &[u8], items: &[&[u8]], how: &Insertion) -> CommandResult {
    let (db, now_ms) = (ctx.db, ctx.now_ms);
    let add_all = |filter: &mut CuckooFilter| -> Result<Vec<CuckooInsert>, CommandError> {
        if filter.filter_count() >= FILTERS_MAX {
            return Err(error("Maximum expansions reached"));
        }
        Ok(items
            .iter()
            .map(|item| {
                if how.unique {
                    filter.insert_unique(item)
                } else {
                    filter.insert(item)
                }
            })
            .collect())
    };
    let updated = ctx.keyspace.update(db, key, now_ms, |value| {
        let Value::Cuckoo(filter) = value else {
            return Err(error(WRONGTYPE));
        };
        let outcomes = add_all(filter)?;
        let changed = outcomes.contains(&CuckooInsert::Inserted);
        Ok((
            outcomes,
            if changed {
                Change::Modified
            } else {
                Change::None
            },
        ))
    });
    let outcomes = match updated {
        Some(outcomes) => outcomes?,
        None if !how.create => return Err(error("ERR not found")),
        None => {
            let mut filter = (how.capacity >= DEFAULT_BUCKET_SIZE * 2)
                .then(|| {
                    CuckooFilter::new(
                        how.capacity as u64,
                        DEFAULT_BUCKET_SIZE as u8,
                        DEFAULT_MAX_ITERATIONS as u16,
                        DEFAULT_EXPANSION as u16,
                    )
                })
                .flatten()
                .ok_or_else(|| error("ERR Could not create filter"))?;
            super::charge_new(ctx, filter.memory_bytes())?;
            let outcomes = add_all(&mut filter)?;
            ctx.keyspace
                .insert(db, key, Value::Cuckoo(Box::new(filter)), None, now_ms);
            outcomes
        }
    };
    let resp3 = ctx.protocol == ember_resp::Protocol::Resp3;
    if !how.multi {
        return match outcomes[0] {
            CuckooInsert::Inserted | CuckooInsert::Exists => {
                ctx.out.boolean(outcomes[0] == CuckooInsert::Inserted);
                Ok(())
            }
            CuckooInsert::NoSpace => Err(error("Filter is full")),
            CuckooInsert::MemoryLimit => Err(error("ERR Insufficient memory")),
        };
    }
    ctx.out.array_len(outcomes.len());
    for outcome in outcomes {
        match outcome {
            // CF.INSERTNX answers integers in either protocol, as RedisBloom does.
            CuckooInsert::Inserted if how.unique => ctx.out.integer(1),
            CuckooInsert::Exists if how.unique => ctx.out.integer(0),
            CuckooInsert::Inserted => ctx.out.boolean(true),
            CuckooInsert::Exists => ctx.out.boolean(false),
            _ if resp3 && !how.unique => ctx.out.boolean(false),
            _ => ctx.out.integer(-1),
        }
    }
    Ok(())
}

fn add_one(ctx: &mut Ctx<'_>, args: &[&[u8]], unique: bool) -> CommandResult {
    let how = Insertion {
        unique,
        multi: false,
        create: true,
        capacity: DEFAULT_CAPACITY,
    };
    insert_common(ctx, args[1], &args[2..3], &how)
}

/// CF.ADD key item.
pub fn add(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    add_one(ctx, args, false)
}

/// CF.ADDNX key item.
pub fn addnx(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    add_one(ctx, args, true)
}

fn insert_many(ctx: &mut Ctx<'_>, args: &[&[u8]], unique: bool) -> CommandResult {
    let name = if unique { "cf.insertnx" } else { "cf.insert" };
    let arity = || CommandError::from(arity_message(name));
    let mut how = Insertion {
        unique,
        multi: true,
        create: true,
        capacity: DEFAULT_CAPACITY,
    };
    let mut items_at = None;
    let mut index = 2;
    while index < args.len() && items_at.is_none() {
        match args[index].first().map(u8::to_ascii_lowercase) {
            Some(b'c') => {
                let value = args.get(index + 1).ok_or_else(arity)?;
                how.capacity = ember_resp::parse_i64(value).ok_or_else(|| error("Bad capacity"))?;
                if !(4..=CAPACITY_MAX).contains(&how.capacity) {
                    return Err(error(
                        "Capacity must be in the range [cf-bucket-size * 2, 1073741824]",
                    ));
                }
                index += 2;
            }
            Some(b'i') => {
                index += 1;
                items_at = Some(index);
            }
            Some(b'n') => {
                how.create = false;
                index += 1;
            }
            _ => return Err(error("Unknown argument received")),
        }
    }
    let items_at = items_at.filter(|&at| at < args.len()).ok_or_else(arity)?;
    insert_common(ctx, args[1], &args[items_at..], &how)
}

/// CF.INSERT key [CAPACITY capacity] [NOCREATE] ITEMS item [item ...].
pub fn insert(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    insert_many(ctx, args, false)
}

/// CF.INSERTNX key [CAPACITY capacity] [NOCREATE] ITEMS item [item ...].
pub fn insertnx(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    insert_many(ctx, args, true)
}

/// Per item: membership (as booleans) or counts; a missing key or one of another type holds
/// nothing, as RedisBloom answers.
fn check(ctx: &mut Ctx<'_>, args: &[&[u8]], counting: bool) -> Vec<u64> {
    match super::read_value(ctx, args[1]) {
        Some(Value::Cuckoo(filter)) => args[2..]
            .iter()
            .map(|item| {
                if counting {
                    filter.count(item)
                } else {
                    u64::from(filter.contains(item))
                }
            })
            .collect(),
        _ => vec![0; args.len() - 2],
    }
}

/// CF.EXISTS key item.
pub fn exists(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let found = check(ctx, args, false);
    ctx.out.boolean(found[0] > 0);
    Ok(())
}

/// CF.MEXISTS key item [item ...].
pub fn mexists(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let found = check(ctx, args, false);
    ctx.out.array_len(found.len());
    for found in found {
        ctx.out.boolean(found > 0);
    }
    Ok(())
}

/// CF.COUNT key item.
pub fn count(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let counts = check(ctx, args, true);
    ctx.out.integer(counts[0] as i64);
    Ok(())
}

/// CF.DEL key item: 1 when a copy was removed, 0 when none was there.
pub fn del(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let (db, now_ms) = (ctx.db, ctx.now_ms);
    let deleted = ctx.keyspace.update(db, args[1], now_ms, |value| {
        let Value::Cuckoo(filter) = value else {
            return Err(error("Not found"));
        };
        let deleted = filter.delete(args[2]);
        Ok((
            deleted,
            if deleted {
                Change::Modified
            } else {
                Change::None
            },
        ))
    });
    let deleted = deleted.ok_or_else(|| error("Not found"))??;
    ctx.out.boolean(deleted);
    Ok(())
}

/// CF.INFO key.
pub fn info(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let filter = match super::read_value(ctx, args[1]) {
        Some(Value::Cuckoo(filter)) => filter,
        Some(_) => return Err(error(WRONGTYPE)),
        None => return Err(error("ERR not found")),
    };
    let fields = [
        ("Size", filter.info_size() as i64),
        ("Number of buckets", filter.bucket_count() as i64),
        ("Number of filters", filter.filter_count() as i64),
        ("Number of items inserted", filter.items() as i64),
        ("Number of items deleted", filter.deletes() as i64),
        ("Bucket size", i64::from(filter.bucket_size())),
        ("Expansion rate", filter.expansion() as i64),
        ("Max iterations", i64::from(filter.max_iterations())),
    ];
    ctx.out.map_len(fields.len());
    for (name, value) in fields {
        ctx.out.simple(name.as_bytes());
        ctx.out.integer(value);
    }
    Ok(())
}

/// CF.SCANDUMP key position: position 0 answers `[1, header]`; each later call the next
/// chunk of buckets and the position to pass next; `[0, nil]` past the end, and at once for
/// an empty filter (as RedisBloom answers).
pub fn scandump(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let pos = ember_resp::parse_i64(args[2])
        .filter(|pos| *pos >= 0)
        .ok_or_else(|| error("Invalid position"))?;
    let filter = match super::read_value(ctx, args[1]) {
        Some(Value::Cuckoo(filter)) => filter,
        Some(_) => return Err(error(WRONGTYPE)),
        None => return Err(error("ERR not found")),
    };
    let step = if filter.items() == 0 {
        None
    } else if pos == 0 {
        Some((1, filter.dump_header()))
    } else {
        filter.dump_chunk(pos, super::bloom::SCANDUMP_CHUNK_MAX)
    };
    ctx.out.array_len(2);
    match step {
        Some((next, data)) => {
            ctx.out.integer(next);
            ctx.out.bulk(&data);
        }
        None => {
            ctx.out.integer(0);
            ctx.out.null();
        }
    }
    Ok(())
}

/// CF.LOADCHUNK key position data: position 1 makes the filter from the header (the key
/// must not exist); other positions fill their chunk into the filter at the key.
pub fn loadchunk(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let (db, now_ms, key, data) = (ctx.db, ctx.now_ms, args[1], args[3]);
    let pos = ember_resp::parse_i64(args[2])
        .filter(|pos| *pos != 0)
        .ok_or_else(|| error("Invalid position"))?;
    if pos == 1 {
        if let Some(entry) = ctx.keyspace.get(db, key, now_ms) {
            return Err(match entry.value {
                Value::Cuckoo(_) => error("ERR item exists"),
                _ => error(WRONGTYPE),
            });
        }
        if data.len() != CUCKOO_DUMP_HEADER_LEN {
            return Err(error("Invalid header"));
        }
        let filter =
            CuckooFilter::from_dump_header(data).ok_or_else(|| error("Couldn't create filter!"))?;
        ctx.keyspace
            .insert(db, key, Value::Cuckoo(Box::new(filter)), None, now_ms);
        ctx.out.ok();
        return Ok(());
    }
    let loaded = ctx.keyspace.update(db, key, now_ms, |value| {
        let Value::Cuckoo(filter) = value else {
            return Err(error(WRONGTYPE));
        };
        if !filter.load_chunk(pos, data) {
            return Err(error("Couldn't load chunk!"));
        }
        Ok(((), Change::Modified))
    });
    loaded.ok_or_else(|| error("ERR not found"))??;
    ctx.out.ok();
    Ok(())
}
