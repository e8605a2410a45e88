//! Sorted-set algebra: ZUNION, ZINTER, ZDIFF, their STORE forms, and ZINTERCARD, with WEIGHTS
//! and AGGREGATE. Plain sets count as sorted sets whose scores are all 1, as in Redis. Keys on
//! several shards run through `Split::Scratch`.

use std::borrow::Cow;
use std::collections::HashMap;

use ember_store::split::SplitBytes;
use ember_store::zset::AddOptions;
use ember_store::{Keyspace, SetValue, SortedSet, Value};

use super::reply_with_scores;
use crate::commands::notify::{self, notify};
use crate::commands::{errors, is, parse_float, CommandError, CommandResult, Ctx};

/// One input: a sorted set, a set (scores 1), or a missing key (empty).
#[derive(Clone, Copy)]
enum Source<'a> {
    Sorted(&'a SortedSet),
    Plain(&'a SetValue),
    Missing,
}

impl<'a> Source<'a> {
    fn len(self) -> usize {
        match self {
            Self::Sorted(zset) => zset.len(),
            Self::Plain(set) => set.len(),
            Self::Missing => 0,
        }
    }

    fn score(self, member: &[u8]) -> Option<f64> {
        match self {
            Self::Sorted(zset) => zset.score(member),
            Self::Plain(set) => set.contains(member).then_some(1.0),
            Self::Missing => None,
        }
    }

    fn members(self) -> Box<dyn Iterator<Item = (Cow<'a, [u8]>, f64)> + 'a> {
        match self {
            Self::Sorted(zset) => {
                Box::new(zset.iter().map(|(member, score)| (member.bytes(), score)))
            }
            Self::Plain(set) => Box::new(set.iter().map(|member| (Cow::Borrowed(member), 1.0))),
            Self::Missing => Box::new(std::iter::empty()),
        }
    }
}

/// AGGREGATE
#[derive(Clone, Copy, PartialEq, Eq)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

impl Aggregate {
    /// Redis's `zunionInterAggregate`: a NaN sum (inf + -inf) is 0.
    fn combine(self, total: f64, score: f64) -> f64 {
        match self {
            Self::Sum => {
                let sum = total + score;
                if sum.is_nan() {
                    0.0
                } else {
                    sum
                }
            }
            Self::Min => total.min(score),
            Self::Max => total.max(score),
        }
    }
}

/// Which operation.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Operation {
    Union,
    Intersection,
    Difference,
}

/// Which command shape: a reply, a STORE, or ZINTERCARD's count.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Output {
    Reply,
    Store,
    Cardinality,
}

/// The options after the keys.
struct Options {
    weights: Vec<f64>,
    aggregate: Aggregate,
    with_scores: bool,
    /// ZINTERCARD's LIMIT (0: none).
    limit: usize,
}

/// Parses the options after the keys as Redis does for this operation and output.
fn parse_options(
    args: &[&[u8]],
    key_count: usize,
    operation: Operation,
    output: Output,
) -> Result<Options, CommandError> {
    let mut options = Options {
        weights: vec![1.0; key_count],
        aggregate: Aggregate::Sum,
        with_scores: false,
        limit: 0,
    };
    let mut index = 0;
    while index < args.len() {
        let left = args.len() - index - 1;
        let option = args[index];
        if output == Output::Cardinality {
            if is(option, "LIMIT") && left >= 1 {
                options.limit = ember_resp::parse_i64(args[index + 1])
                    .and_then(|limit| usize::try_from(limit).ok())
                    .ok_or(CommandError::from("ERR LIMIT can't be negative"))?;
                index += 2;
                continue;
            }
            return Err(errors::SYNTAX.into());
        }
        if operation != Operation::Difference && is(option, "WEIGHTS") && left >= key_count {
            for (weight, arg) in options.weights.iter_mut().zip(&args[index + 1..]) {
                *weight = parse_float(arg)
                    .map_err(|_| CommandError::from("ERR weight value is not a float"))?;
            }
            index += key_count + 1;
        } else if operation != Operation::Difference && is(option, "AGGREGATE") && left >= 1 {
            let name = args[index + 1];
            options.aggregate = if is(name, "SUM") {
                Aggregate::Sum
            } else if is(name, "MIN") {
                Aggregate::Min
            } else if is(name, "MAX") {
                Aggregate::Max
            } else {
                return Err(errors::SYNTAX.into());
            };
            index += 2;
        } else if output == Output::Reply && is(option, "WITHSCORES") {
            options.with_scores = true;
            index += 1;
        } else {
            return Err(errors::SYNTAX.into());
        }
    }
    Ok(options)
}

/// Reads the inputs (each lookup counted), WRONGTYPE for a key that is neither kind.
fn load_sources<'a>(ctx: &'a mut Ctx<'_>, keys: &[&[u8]]) -> Result<Vec<Source<'a>>, CommandError> {
    for key in keys {
        let _ = crate::commands::read_entry(ctx, key);
    }
    let (db, now_ms) = (ctx.db, ctx.now_ms);
    let keyspace: &'a Keyspace = ctx.keyspace;
    keys.iter()
        .map(
            |key| match keyspace.peek(db, key, now_ms).map(|entry| &entry.value) {
                None => Ok(Source::Missing),
                Some(Value::ZSet(zset)) => Ok(Source::Sorted(zset)),
                Some(Value::Set(set)) => Ok(Source::Plain(set)),
                Some(_) => Err(errors::WRONGTYPE.into()),
            },
        )
        .collect()
}

/// A weighted score: Redis turns NaN (inf times 0) into 0.
fn weighted(score: f64, weight: f64) -> f64 {
    let value = score * weight;
    if value.is_nan() {
        0.0
    } else {
        value
    }
}

/// The result, unordered.
fn compute<'a>(
    operation: Operation,
    sources: &[Source<'a>],
    options: &Options,
) -> Vec<(Cow<'a, [u8]>, f64)> {
    match operation {
        Operation::Union => {
            let mut totals: HashMap<Cow<'a, [u8]>, f64> = HashMap::new();
            let mut order = Vec::new();
            for (source, &weight) in sources.iter().zip(&options.weights) {
                for (member, score) in source.members() {
                    let score = weighted(score, weight);
                    match totals.get_mut(&member) {
                        Some(total) => *total = options.aggregate.combine(*total, score),
                        None => {
                            order.push(member.clone());
                            totals.insert(member, score);
                        }
                    }
                }
            }
            order
                .into_iter()
                .map(|member| {
                    let total = totals[&member];
                    (member, total)
                })
                .collect()
        }
        Operation::Intersection => {
            // Walk the smallest input, as Redis does (inputs sorted by size, weights with them).
            let mut inputs: Vec<(Source<'a>, f64)> = sources
                .iter()
                .copied()
                .zip(options.weights.iter().copied())
                .collect();
            inputs.sort_by_key(|(source, _)| source.len());
            let ((smallest, first_weight), others) =
                inputs.split_first().expect("at least one key");
            let mut found = Vec::new();
            'members: for (member, score) in smallest.members() {
                let mut total = weighted(score, *first_weight);
                for (other, weight) in others {
                    let Some(score) = other.score(&member) else {
                        continue 'members;
                    };
                    total = options.aggregate.combine(total, weighted(score, *weight));
                }
                found.push((member, total));
                if found.len() == options.limit {
                    break;
                }
            }
            found
        }
        Operation::Difference => sources[0]
            .members()
            .filter(|(member, _)| sources[1..].iter().all(|s| s.score(member).is_none()))
            .collect(),
    }
}

/// Sorts by score, then member, as a sorted set orders them.
fn sort(members: &mut [(Cow<'_, [u8]>, f64)]) {
    members.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
}

/// What the inputs gave, owned, so the keyspace may change afterwards.
struct Computed {
    members: Vec<(Vec<u8>, f64)>,
    with_scores: bool,
}

fn generic(
    ctx: &mut Ctx<'_>,
    args: &[&[u8]],
    operation: Operation,
    output: Output,
    name: &str,
) -> CommandResult {
    let count_at = if output == Output::Store { 2 } else { 1 };
    let count = crate::commands::parse_integer(args[count_at])?;
    if count < 1 {
        return Err(format!("ERR at least 1 input key is needed for '{name}' command").into());
    }
    if count as u64 > (args.len() - count_at - 1) as u64 {
        return Err(errors::SYNTAX.into());
    }
    let count = count as usize;
    let keys = &args[count_at + 1..count_at + 1 + count];
    // Redis reads the keys (WRONGTYPE) before it parses the options.
    let computed = {
        let sources = load_sources(ctx, keys)?;
        let options = parse_options(&args[count_at + 1 + count..], count, operation, output)?;
        let mut members = compute(operation, &sources, &options);
        if output != Output::Cardinality {
            sort(&mut members);
        }
        Computed {
            members: members
                .into_iter()
                .map(|(m, s)| (m.into_owned(), s))
                .collect(),
            with_scores: options.with_scores,
        }
    };
    match output {
        Output::Cardinality => ctx.out.integer(computed.members.len() as i64),
        Output::Reply if computed.with_scores => {
            let members: Vec<(SplitBytes<'_>, f64)> = computed
                .members
                .iter()
                .map(|(member, score)| (SplitBytes::whole(member), *score))
                .collect();
            reply_with_scores(ctx.out, &members, ctx.protocol);
        }
        Output::Reply => {
            ctx.out.array_len(computed.members.len());
            for (member, _) in &computed.members {
                ctx.out.bulk(member);
            }
        }
        Output::Store => store(ctx, args[1], &computed.members, name),
    }
    Ok(())
}

/// Writes `members` as the sorted set at `destination` (replacing whatever it held, TTL gone;
/// deleting it when empty), replies with its size and raises `event` (or `del` when the
/// destination went).
pub(crate) fn store(
    ctx: &mut Ctx<'_>,
    destination: &[u8],
    members: &[(Vec<u8>, f64)],
    event: &str,
) {
    let (db, now_ms) = (ctx.db, ctx.now_ms);
    if members.is_empty() {
        let removed = ctx.keyspace.remove(db, destination, now_ms).is_some();
        ctx.out.integer(0);
        if removed {
            notify(ctx, notify::GENERIC, "del", destination);
        }
        return;
    }
    let member_len_max = members.iter().map(|(m, _)| m.len()).max().unwrap_or(0);
    let mut zset = SortedSet::for_members(members.len(), member_len_max);
    for (member, score) in members {
        zset.add(member, *score, AddOptions::default())
            .expect("a plain add of a number is no NaN");
    }
    ctx.keyspace
        .insert(db, destination, Value::ZSet(zset), None, now_ms);
    ctx.out.integer(members.len() as i64);
    notify(ctx, notify::ZSET, event, destination);
}

/// ZUNION numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]
pub fn zunion(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    generic(ctx, args, Operation::Union, Output::Reply, "zunion")
}

/// ZINTER numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]
pub fn zinter(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    generic(ctx, args, Operation::Intersection, Output::Reply, "zinter")
}

/// ZDIFF numkeys key [key ...] [WITHSCORES]
pub fn zdiff(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    generic(ctx, args, Operation::Difference, Output::Reply, "zdiff")
}

/// ZUNIONSTORE destination numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX]
pub fn zunionstore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    generic(ctx, args, Operation::Union, Output::Store, "zunionstore")
}

/// ZINTERSTORE destination numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX]
pub fn zinterstore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    generic(
        ctx,
        args,
        Operation::Intersection,
        Output::Store,
        "zinterstore",
    )
}

/// ZDIFFSTORE destination numkeys key [key ...]
pub fn zdiffstore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    generic(
        ctx,
        args,
        Operation::Difference,
        Output::Store,
        "zdiffstore",
    )
}

/// ZINTERCARD numkeys key [key ...] [LIMIT limit]
pub fn zintercard(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    generic(
        ctx,
        args,
        Operation::Intersection,
        Output::Cardinality,
        "zintercard",
    )
}
