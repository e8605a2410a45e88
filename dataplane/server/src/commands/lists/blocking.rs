//! The blocking list pops: BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, as
//! [`BlockingCommand`](crate::commands::blocking::BlockingCommand)s.

use ember_store::list::End;
use ember_store::Value;
use smallvec::SmallVec;

use super::{move_element, parse_end, parse_mpop, pop_elements, reply_key_and_elements};
use crate::commands::blocking::{
    nil_array, nil_bulk, parse_timeout, BlockingCommand, Parsed, Taken,
};
use crate::commands::{CommandError, Ctx};
use crate::shard::PackedArgs;

/// BLPOP key [key ...] timeout
pub static BLPOP: BlockingCommand = BlockingCommand {
    parse: parse_keys_then_timeout,
    serve: serve_front,
    serve_pop_only: None,
    prepare: None,
    nil: nil_array,
    nil_without_blocking: nil_array,
};

/// BRPOP key [key ...] timeout
pub static BRPOP: BlockingCommand = BlockingCommand {
    parse: parse_keys_then_timeout,
    serve: serve_back,
    serve_pop_only: None,
    prepare: None,
    nil: nil_array,
    nil_without_blocking: nil_array,
};

/// BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout
pub static BLMOVE: BlockingCommand = BlockingCommand {
    parse: parse_blmove,
    serve: serve_blmove,
    serve_pop_only: Some(serve_blmove_pop),
    prepare: None,
    nil: nil_array,
    nil_without_blocking: nil_bulk,
};

/// BRPOPLPUSH source destination timeout
pub static BRPOPLPUSH: BlockingCommand = BlockingCommand {
    parse: parse_brpoplpush,
    serve: serve_brpoplpush,
    serve_pop_only: Some(serve_brpoplpush_pop),
    prepare: None,
    nil: nil_array,
    nil_without_blocking: nil_bulk,
};

/// BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]
pub static BLMPOP: BlockingCommand = BlockingCommand {
    parse: parse_blmpop,
    serve: serve_blmpop,
    serve_pop_only: None,
    prepare: None,
    nil: nil_array,
    nil_without_blocking: nil_array,
};

/// The request that pushes `elements` (in popping order) back where they were popped from.
pub fn push_back_request(key: &[u8], end: End, elements: &[Vec<u8>]) -> PackedArgs {
    let mut undo = PackedArgs::default();
    undo.push(if end == End::Front {
        b"LPUSH"
    } else {
        b"RPUSH"
    });
    undo.push(key);
    for element in elements.iter().rev() {
        undo.push(element);
    }
    undo
}

/// BLPOP, BRPOP, BZPOPMIN, BZPOPMAX: every argument but the last is a key.
pub fn parse_keys_then_timeout(args: &[&[u8]]) -> Result<Parsed, CommandError> {
    let timeout = parse_timeout(args[args.len() - 1])?;
    Ok(Parsed {
        keys: (1..args.len() - 1).collect(),
        timeout,
        push_to: None,
    })
}

fn serve_pop(ctx: &mut Ctx<'_>, key: &[u8], end: End) -> Result<Option<Taken>, CommandError> {
    let Some(popped) = pop_elements(ctx, key, end, 1)? else {
        return Ok(None);
    };
    ctx.out.array_len(2);
    ctx.out.bulk(key);
    ctx.out.bulk(&popped[0]);
    Ok(Some(Taken {
        undo: Some(push_back_request(key, end, &popped)),
    }))
}

fn serve_front(
    ctx: &mut Ctx<'_>,
    _args: &[&[u8]],
    key: &[u8],
) -> Result<Option<Taken>, CommandError> {
    serve_pop(ctx, key, End::Front)
}

fn serve_back(
    ctx: &mut Ctx<'_>,
    _args: &[&[u8]],
    key: &[u8],
) -> Result<Option<Taken>, CommandError> {
    serve_pop(ctx, key, End::Back)
}

fn push_name(to: End) -> &'static str {
    if to == End::Front {
        "LPUSH"
    } else {
        "RPUSH"
    }
}

fn parse_blmove(args: &[&[u8]]) -> Result<Parsed, CommandError> {
    parse_end(args[3])?;
    let to = parse_end(args[4])?;
    let timeout = parse_timeout(args[5])?;
    Ok(Parsed {
        keys: SmallVec::from_slice(&[1]),
        timeout,
        push_to: Some((2, push_name(to))),
    })
}

fn parse_brpoplpush(args: &[&[u8]]) -> Result<Parsed, CommandError> {
    let timeout = parse_timeout(args[3])?;
    Ok(Parsed {
        keys: SmallVec::from_slice(&[1]),
        timeout,
        push_to: Some((2, push_name(End::Front))),
    })
}

fn serve_move(
    ctx: &mut Ctx<'_>,
    args: &[&[u8]],
    from: End,
    to: End,
) -> Result<Option<Taken>, CommandError> {
    let element = match move_element(ctx, args[1], args[2], from, to) {
        Ok(Some(element)) => element,
        Ok(None) => return Ok(None),
        Err(error) => {
            let source_is_list = matches!(
                ctx.keyspace
                    .peek(ctx.db, args[1], ctx.now_ms)
                    .map(|entry| &entry.value),
                Some(Value::List(_))
            );
            if !source_is_list {
                return Err(error); // A waiter stays blocked while its source is not a list.
            }
            // The destination is of another type: Redis ends the wait with the error and
            // leaves the element where it was.
            ctx.out.error(&error.0);
            return Ok(Some(Taken { undo: None }));
        }
    };
    ctx.out.bulk(&element);
    // The move is done and complete on this shard: nothing to give back.
    Ok(Some(Taken { undo: None }))
}

fn serve_pop_for_move(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    from: End,
) -> Result<Option<Taken>, CommandError> {
    let Some(popped) = pop_elements(ctx, key, from, 1)? else {
        return Ok(None);
    };
    ctx.out.bulk(&popped[0]);
    Ok(Some(Taken {
        undo: Some(push_back_request(key, from, &popped)),
    }))
}

fn serve_blmove(
    ctx: &mut Ctx<'_>,
    args: &[&[u8]],
    _key: &[u8],
) -> Result<Option<Taken>, CommandError> {
    let (from, to) = (parse_end(args[3])?, parse_end(args[4])?);
    serve_move(ctx, args, from, to)
}

fn serve_blmove_pop(
    ctx: &mut Ctx<'_>,
    args: &[&[u8]],
    key: &[u8],
) -> Result<Option<Taken>, CommandError> {
    serve_pop_for_move(ctx, key, parse_end(args[3])?)
}

fn serve_brpoplpush(
    ctx: &mut Ctx<'_>,
    args: &[&[u8]],
    _key: &[u8],
) -> Result<Option<Taken>, CommandError> {
    serve_move(ctx, args, End::Back, End::Front)
}

fn serve_brpoplpush_pop(
    ctx: &mut Ctx<'_>,
    _args: &[&[u8]],
    key: &[u8],
) -> Result<Option<Taken>, CommandError> {
    serve_pop_for_move(ctx, key, End::Back)
}

/// BLMPOP and BZMPOP: the timeout, then `numkeys` and the keys.
pub fn parse_timeout_then_numkeys(
    args: &[&[u8]],
    parse_word: fn(&[u8]) -> Result<(), CommandError>,
) -> Result<Parsed, CommandError> {
    let timeout = parse_timeout(args[1])?;
    let (keys, _, _) = parse_mpop(args, 2, parse_word)?;
    Ok(Parsed {
        keys: (3..3 + keys.len()).collect(),
        timeout,
        push_to: None,
    })
}

fn parse_blmpop(args: &[&[u8]]) -> Result<Parsed, CommandError> {
    parse_timeout_then_numkeys(args, |word| parse_end(word).map(|_| ()))
}

fn serve_blmpop(
    ctx: &mut Ctx<'_>,
    args: &[&[u8]],
    key: &[u8],
) -> Result<Option<Taken>, CommandError> {
    let (_, word, count) = parse_mpop(args, 2, |word| parse_end(word).map(|_| ()))?;
    let end = parse_end(word)?;
    let Some(popped) = pop_elements(ctx, key, end, count)? else {
        return Ok(None);
    };
    reply_key_and_elements(ctx.out, key, &popped);
    Ok(Some(Taken {
        undo: Some(push_back_request(key, end, &popped)),
    }))
}
