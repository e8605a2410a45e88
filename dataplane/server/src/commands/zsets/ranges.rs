//! ZRANGESTORE and the range removals (ZREMRANGEBYRANK, ZREMRANGEBYSCORE, ZREMRANGEBYLEX).

use ember_store::{Change, Value};

use super::score::{parse_lex_bound, parse_score_bound, NOT_FLOAT_RANGE, NOT_LEX_RANGE};
use super::{members_in, parse_range, zset_of, Range};
use crate::commands::notify::{self, notify_change};
use crate::commands::{errors, is, parse_integer, read_entry, CommandError, CommandResult, Ctx};

/// ZRANGESTORE dst src min max [BYSCORE | BYLEX] [REV] [LIMIT offset count]
pub fn zrangestore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    // WITHSCORES is no option of the STORE form: a syntax error where Redis finds it.
    if args[5..].iter().any(|arg| is(arg, "WITHSCORES")) {
        return Err(errors::SYNTAX.into());
    }
    let request = parse_range(&args[1..], None, None)?;
    let members: Vec<(Vec<u8>, f64)> = match read_entry(ctx, args[2]).map(zset_of).transpose()? {
        Some(zset) => members_in(zset, &request)
            .into_iter()
            .map(|(m, s)| (m.to_vec(), s))
            .collect(),
        None => Vec::new(),
    };
    super::algebra::store(ctx, args[1], &members, "zrangestore");
    Ok(())
}

/// Removes the members `range` selects from the sorted set at `key`; the key goes with its last
/// member.
fn remove_range(ctx: &mut Ctx<'_>, key: &[u8], range: Range, event: &str) -> CommandResult {
    let request = super::RangeRequest {
        range,
        reverse: false,
        limit: ember_store::zset::Limit::ALL,
        with_scores: false,
    };
    let (db, now_ms) = (ctx.db, ctx.now_ms);
    let removed = ctx
        .keyspace
        .update(db, key, now_ms, |value| {
            let Value::ZSet(zset) = value else {
                return Err(CommandError::from(errors::WRONGTYPE));
            };
            let doomed: Vec<Vec<u8>> = members_in(zset, &request)
                .into_iter()
                .map(|(m, _)| m.to_vec())
                .collect();
            for member in &doomed {
                zset.remove(member);
            }
            let change = if zset.is_empty() {
                Change::Emptied
            } else if doomed.is_empty() {
                Change::None
            } else {
                Change::Modified
            };
            Ok((doomed.len(), change))
        })
        .transpose()?
        .unwrap_or(0);
    if removed > 0 {
        notify_change(ctx, notify::ZSET, event, key);
    }
    ctx.out.integer(removed as i64);
    Ok(())
}

/// ZREMRANGEBYRANK key start stop
pub fn zremrangebyrank(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let range = Range::Rank(parse_integer(args[2])?, parse_integer(args[3])?);
    remove_range(ctx, args[1], range, "zremrangebyrank")
}

/// ZREMRANGEBYSCORE key min max
pub fn zremrangebyscore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let (min, max) = parse_score_bound(args[2])
        .zip(parse_score_bound(args[3]))
        .ok_or(CommandError::from(NOT_FLOAT_RANGE))?;
    remove_range(ctx, args[1], Range::Score(min, max), "zremrangebyscore")
}

/// ZREMRANGEBYLEX key min max
pub fn zremrangebylex(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let (min, max) = parse_lex_bound(args[2])
        .zip(parse_lex_bound(args[3]))
        .ok_or(CommandError::from(NOT_LEX_RANGE))?;
    remove_range(ctx, args[1], Range::Lex(min, max), "zremrangebylex")
}
