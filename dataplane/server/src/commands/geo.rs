//! Geo commands over sorted sets, as Redis stores them (scores are 52-bit geohashes, see
//! `ember_store::geo`): GEOADD, GEOPOS, GEODIST, GEOHASH, GEOSEARCH, GEOSEARCHSTORE, GEORADIUS,
//! GEORADIUSBYMEMBER and their read-only forms (the search and its replies in `search`).

mod search;

use ember_resp::{Protocol, ReplySink};
use ember_store::geo::{decode, distance_m, encode, geohash_string, DistanceUnit};
use ember_store::SortedSet;

use super::key_finders::key_and_store_keys;
use super::{
    command, errors, is, movable, parse_float, read_entry, split, CommandError, CommandResult,
    CommandSpec, Ctx, Ks, Split, ONE_KEY, R, TWO_KEYS, W_OOM,
};

/// This family's commands, in COMMAND's order.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    command("geoadd", -5, W_OOM, ONE_KEY, "geo", "3.2.0", "Adds one or more members to a geospatial index. The key is created if it doesn't exist.", Ks(geoadd)),
    command("geopos", -2, R, ONE_KEY, "geo", "3.2.0", "Returns the longitude and latitude of members from a geospatial index.", Ks(geopos)),
    command("geodist", -4, R, ONE_KEY, "geo", "3.2.0", "Returns the distance between two members of a geospatial index.", Ks(geodist)),
    command("geohash", -2, R, ONE_KEY, "geo", "3.2.0", "Returns members from a geospatial index as geohash strings.", Ks(geohash)),
    split(movable(command("georadius", -6, W_OOM, ONE_KEY, "geo", "3.2.0", "Queries a geospatial index for members within a distance from a coordinate, optionally stores the result.", Ks(search::georadius)), key_and_store_keys), Split::Scratch),
    command("georadius_ro", -6, R, ONE_KEY, "geo", "3.2.10", "Returns members from a geospatial index that are within a distance from a coordinate.", Ks(search::georadius_ro)),
    split(movable(command("georadiusbymember", -5, W_OOM, ONE_KEY, "geo", "3.2.0", "Queries a geospatial index for members within a distance from a member, optionally stores the result.", Ks(search::georadiusbymember)), key_and_store_keys), Split::Scratch),
    command("georadiusbymember_ro", -5, R, ONE_KEY, "geo", "3.2.10", "Returns members from a geospatial index that are within a distance from a member.", Ks(search::georadiusbymember_ro)),
    command("geosearch", -7, R, ONE_KEY, "geo", "6.2.0", "Queries a geospatial index for members inside an area of a box or a circle.", Ks(search::geosearch)),
    split(command("geosearchstore", -8, W_OOM, TWO_KEYS, "geo", "6.2.0", "Queries a geospatial index for members inside an area of a box or a circle, optionally stores the result.", Ks(search::geosearchstore)), Split::Scratch),
];

/// The sorted set at `key` for a read (hit or miss counted), or WRONGTYPE.
fn read_zset<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Result<Option<&'a SortedSet>, CommandError> {
    match read_entry(ctx, key).map(|entry| &entry.value) {
        None => Ok(None),
        Some(ember_store::Value::ZSet(zset)) => Ok(Some(zset)),
        Some(_) => Err(errors::WRONGTYPE.into()),
    }
}

/// Redis's `extractLongLatOrReply`: two floats, within the limits.
fn parse_position(longitude: &[u8], latitude: &[u8]) -> Result<(f64, f64), CommandError> {
    let (longitude, latitude) = (parse_float(longitude)?, parse_float(latitude)?);
    encode(longitude, latitude).map_err(|error| CommandError::from(error.to_string()))?;
    Ok((longitude, latitude))
}

/// A unit argument.
fn parse_unit(arg: &[u8]) -> Result<DistanceUnit, CommandError> {
    DistanceUnit::parse(arg).map_err(|error| error.to_string().into())
}

/// The position of `member`, decoded from its score.
fn position_of(zset: &SortedSet, member: &[u8]) -> Option<(f64, f64)> {
    zset.score(member).map(|score| decode(score as u64))
}

/// A coordinate as Redis's `addReplyHumanLongDouble`: 17 decimals, trailing zeros dropped, a
/// bulk string in RESP2 and a double in RESP3.
fn reply_coordinate(out: &mut ReplySink, value: f64) {
    match out.protocol() {
        Protocol::Resp2 => {
            let text = format!("{value:.17}");
            let text = text.trim_end_matches('0').trim_end_matches('.');
            out.bulk(text.as_bytes());
        }
        Protocol::Resp3 => out.double(value),
    }
}

/// `[longitude, latitude]`.
fn reply_position(out: &mut ReplySink, (longitude, latitude): (f64, f64)) {
    out.array_len(2);
    reply_coordinate(out, longitude);
    reply_coordinate(out, latitude);
}

/// A distance as Redis replies with one: `%.4f`, a bulk string in both protocols.
fn reply_distance(out: &mut ReplySink, distance: f64) {
    out.bulk(format!("{distance:.4}").as_bytes());
}

/// GEOADD key [NX | XX] [CH] longitude latitude member [longitude latitude member ...]: the
/// positions become scores and ZADD does the rest, as in Redis.
pub fn geoadd(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let mut first = 2;
    let (mut nx, mut xx) = (false, false);
    while let Some(option) = args.get(first) {
        if is(option, "NX") {
            nx = true;
        } else if is(option, "XX") {
            xx = true;
        } else if !is(option, "CH") {
            break;
        }
        first += 1;
    }
    let triples = &args[first..];
    if triples.len() % 3 != 0 || nx && xx {
        return Err(errors::SYNTAX.into());
    }
    let mut scores = Vec::with_capacity(triples.len() / 3);
    for triple in triples.chunks_exact(3) {
        let (longitude, latitude) = parse_position(triple[0], triple[1])?;
        let score = encode(longitude, latitude).expect("checked within the limits");
        scores.push(score.to_string());
    }
    let mut zadd_args: Vec<&[u8]> = vec![b"zadd", args[1]];
    zadd_args.extend_from_slice(&args[2..first]);
    for (triple, score) in triples.chunks_exact(3).zip(&scores) {
        zadd_args.push(score.as_bytes());
        zadd_args.push(triple[2]);
    }
    super::zsets::zadd(ctx, &zadd_args)
}

/// GEOPOS key [member ...]
pub fn geopos(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let positions: Vec<Option<(f64, f64)>> = match read_zset(ctx, args[1])? {
        Some(zset) => args[2..].iter().map(|m| position_of(zset, m)).collect(),
        None => vec![None; args.len() - 2],
    };
    ctx.out.array_len(positions.len());
    for position in positions {
        match position {
            Some(position) => reply_position(ctx.out, position),
            None => ctx.out.null_array(),
        }
    }
    Ok(())
}

/// GEODIST key member1 member2 [M | KM | FT | MI]
pub fn geodist(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let unit = match args.len() {
        4 => DistanceUnit::Meters,
        5 => parse_unit(args[4])?,
        _ => return Err(errors::SYNTAX.into()),
    };
    let distance = read_zset(ctx, args[1])?.and_then(|zset| {
        let (lon1, lat1) = position_of(zset, args[2])?;
        let (lon2, lat2) = position_of(zset, args[3])?;
        Some(distance_m(lon1, lat1, lon2, lat2))
    });
    match distance {
        Some(distance) => reply_distance(ctx.out, distance / unit.meters()),
        None => ctx.out.null(),
    }
    Ok(())
}

/// GEOHASH key [member ...]
pub fn geohash(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let hashes: Vec<Option<String>> = match read_zset(ctx, args[1])? {
        Some(zset) => args[2..]
            .iter()
            .map(|m| zset.score(m).map(|score| geohash_string(score as u64)))
            .collect(),
        None => vec![None; args.len() - 2],
    };
    ctx.out.array_len(hashes.len());
    for hash in hashes {
        match hash {
            Some(hash) => ctx.out.bulk(hash.as_bytes()),
            None => ctx.out.null(),
        }
    }
    Ok(())
}
