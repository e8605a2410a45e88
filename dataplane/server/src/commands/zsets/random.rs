//! ZRANDMEMBER and ZSCAN.

use ember_resp::encode::format_double;
use ember_store::split::SplitBytes;
use rand::Rng;

use super::{reply_with_scores, zset_of};
use crate::commands::sets::scan;
use crate::commands::sets::RANDOM_REPEATED_COUNT_MAX;
use crate::commands::{
    bulk_split, errors, is, parse_integer, read_for_reply, CommandError, CommandResult, Ctx,
};

/// ZRANDMEMBER key [count [WITHSCORES]]: without a count one member or nil; a positive count
/// that many distinct members (all when the set is smaller); a negative count that many with
/// repeats.
pub fn zrandmember(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    if args.len() > 4 {
        return Err(errors::SYNTAX.into());
    }
    let with_scores = match args.get(3) {
        Some(option) if is(option, "WITHSCORES") => true,
        Some(_) => return Err(errors::SYNTAX.into()),
        None => false,
    };
    let count = match args.get(2) {
        Some(arg) => Some(parse_count(arg, with_scores)?),
        None => None,
    };
    let protocol = ctx.protocol;
    let (entry, out) = read_for_reply(ctx, args[1]);
    let zset = entry.map(zset_of).transpose()?;
    let mut rng = rand::thread_rng();
    let Some(count) = count else {
        match zset {
            Some(zset) => {
                let rank = rng.gen_range(0..zset.len());
                let (member, _) = zset.iter().nth(rank).expect("rank within the size");
                bulk_split(out, member);
            }
            None => out.null(),
        }
        return Ok(());
    };
    let Some(zset) = zset else {
        out.array_len(0);
        return Ok(());
    };
    let all: Vec<(SplitBytes<'_>, f64)> = zset.iter().collect();
    let picked: Vec<(SplitBytes<'_>, f64)> = if count >= 0 {
        let wanted = (count as u64).min(all.len() as u64) as usize;
        rand::seq::index::sample(&mut rng, all.len(), wanted)
            .into_iter()
            .map(|index| all[index])
            .collect()
    } else {
        (0..count.unsigned_abs())
            .map(|_| all[rng.gen_range(0..all.len())])
            .collect()
    };
    if with_scores {
        reply_with_scores(out, &picked, protocol);
    } else {
        out.array_len(picked.len());
        for (member, _) in picked {
            bulk_split(out, member);
        }
    }
    Ok(())
}

/// ZRANDMEMBER's count: Redis's range checks, and Ember's bound on repeats.
fn parse_count(arg: &[u8], with_scores: bool) -> Result<i64, CommandError> {
    let count = parse_integer(arg)?;
    if count == i64::MIN {
        return Err(format!(
            "ERR value is out of range, value must between {} and {}",
            -i64::MAX,
            i64::MAX
        )
        .into());
    }
    // Redis refuses counts whose doubled reply length would overflow.
    if with_scores && (count >= i64::MAX / 2 || count <= -i64::MAX / 2) {
        return Err("ERR value is out of range".into());
    }
    if count < 0 && count.unsigned_abs() > RANDOM_REPEATED_COUNT_MAX {
        return Err(format!(
            "ERR ZRANDMEMBER returns at most {RANDOM_REPEATED_COUNT_MAX} members with repeats"
        )
        .into());
    }
    Ok(count)
}

/// ZSCAN key cursor [MATCH pattern] [COUNT count]: members and scores, flat, scores as bulk
/// strings in both protocols (as Redis 7.0 replies).
pub fn zscan(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let cursor = scan::parse_cursor(args[2])?;
    let (entry, out) = read_for_reply(ctx, args[1]);
    let Some(zset) = entry.map(zset_of).transpose()? else {
        out.array_len(2);
        out.bulk(b"0");
        out.array_len(0);
        return Ok(());
    };
    let options = scan::parse_options(&args[3..])?;
    let whole = zset.encoding_name() == "listpack";
    let members = zset.iter().map(|(member, score)| (member.bytes(), score));
    let (next, found) = scan::select(members, cursor, &options, whole);
    out.array_len(2);
    out.bulk(next.to_string().as_bytes());
    out.array_len(found.len() * 2);
    for (member, score) in found {
        out.bulk(&member);
        out.bulk(format_double(score).as_bytes());
    }
    Ok(())
}
