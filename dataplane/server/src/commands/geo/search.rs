//! GEOSEARCH, GEOSEARCHSTORE, GEORADIUS, GEORADIUSBYMEMBER and the read-only forms: one parse
//! in Redis's order (`georadiusGeneric`), the 3×3 cell scan of `ember_store::geo`, then the
//! reply or the stored sorted set.

use ember_store::geo::{decode, search_ranges, within, DistanceUnit, Shape};
use ember_store::zset::{AddOptions, Limit, ScoreBound};
use ember_store::{SortedSet, Value};

use super::{parse_position, parse_unit, position_of, read_zset, reply_distance, reply_position};
use crate::commands::notify::{self, notify};
use crate::commands::{errors, is, parse_float, CommandError, CommandResult, Ctx};

/// Which command.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    /// GEORADIUS longitude latitude radius unit
    Radius,
    /// GEORADIUSBYMEMBER member radius unit
    ByMember,
    /// GEOSEARCH with FROM... and BY...
    Search,
    /// GEOSEARCHSTORE destination source ...
    SearchStore,
}

/// One match: member, distance in meters, score.
struct Found {
    member: Vec<u8>,
    distance_m: f64,
    score: u64,
}

/// Redis's `extractDistanceOrReply`.
fn parse_radius(radius: &[u8], unit: &[u8]) -> Result<Shape, CommandError> {
    let radius = parse_float(radius).map_err(|_| CommandError::from("ERR need numeric radius"))?;
    if radius < 0.0 {
        return Err("ERR radius cannot be negative".into());
    }
    Ok(Shape::Radius {
        radius,
        unit: parse_unit(unit)?,
    })
}

/// Redis's `extractBoxOrReply`.
fn parse_box(width: &[u8], height: &[u8], unit: &[u8]) -> Result<Shape, CommandError> {
    let width = parse_float(width).map_err(|_| CommandError::from("ERR need numeric width"))?;
    let height = parse_float(height).map_err(|_| CommandError::from("ERR need numeric height"))?;
    if width < 0.0 || height < 0.0 {
        return Err("ERR height or width cannot be negative".into());
    }
    Ok(Shape::Box {
        width,
        height,
        unit: parse_unit(unit)?,
    })
}

fn unit_of(shape: Shape) -> DistanceUnit {
    match shape {
        Shape::Radius { unit, .. } | Shape::Box { unit, .. } => unit,
    }
}

/// The members of `zset` inside `shape` around `center`, scanning Redis's cells in Redis's
/// order; with `stop_at`, the first that many (ANY).
fn members_within(
    zset: &SortedSet,
    center: (f64, f64),
    shape: Shape,
    stop_at: Option<usize>,
) -> Vec<Found> {
    let mut found = Vec::new();
    for (min, max) in search_ranges(center.0, center.1, shape) {
        let low = ScoreBound {
            value: min as f64,
            exclusive: false,
        };
        let high = ScoreBound {
            value: max as f64,
            exclusive: true,
        };
        for (member, score) in zset.range_by_score(low, high, false, Limit::ALL) {
            let score = score as u64;
            if let Some(distance_m) = within(center.0, center.1, shape, score) {
                found.push(Found {
                    member: member.to_vec(),
                    distance_m,
                    score,
                });
                if stop_at.is_some_and(|count| found.len() >= count) {
                    return found;
                }
            }
        }
    }
    found
}

#[allow(clippy::too_many_lines)]
fn generic(ctx: &mut Ctx<'_>, args: &[&[u8]], form: Form, read_only: bool) -> CommandResult {
    let source_at = if form == Form::SearchStore { 2 } else { 1 };
    let name = String::from_utf8_lossy(args[0]).into_owned();
    let mut center = None;
    let mut shape = None;
    let mut store: Option<(&[u8], bool)> = None;
    let mut store_distance = false;
    let (mut with_distance, mut with_hash, mut with_coordinates) = (false, false, false);
    let (mut from_member, mut from_position, mut by_radius, mut by_box) =
        (false, false, false, false);
    let mut descending = None;
    let mut any = false;
    let mut count = 0usize;
    let found = {
        let zset = read_zset(ctx, args[source_at])?;
        let base = match form {
            Form::Radius => {
                center = Some(parse_position(args[2], args[3])?);
                shape = Some(parse_radius(args[4], args[5])?);
                6
            }
            Form::ByMember => {
                if let Some(zset) = zset {
                    center = Some(position_of(zset, args[2]).ok_or(CommandError::from(
                        "ERR could not decode requested zset member",
                    ))?);
                    shape = Some(parse_radius(args[3], args[4])?);
                }
                5
            }
            Form::Search => 2,
            Form::SearchStore => 3,
        };
        let searching = matches!(form, Form::Search | Form::SearchStore);
        let options = &args[base..];
        let mut index = 0;
        while index < options.len() {
            let option = options[index];
            let left = options.len() - index - 1;
            if is(option, "WITHDIST") {
                with_distance = true;
            } else if is(option, "WITHHASH") {
                with_hash = true;
            } else if is(option, "WITHCOORD") {
                with_coordinates = true;
            } else if is(option, "ANY") {
                any = true;
            } else if is(option, "ASC") {
                descending = Some(false);
            } else if is(option, "DESC") {
                descending = Some(true);
            } else if is(option, "COUNT") && left >= 1 {
                let value = crate::commands::parse_integer(options[index + 1])?;
                if value <= 0 {
                    return Err("ERR COUNT must be > 0".into());
                }
                count = value as usize;
                index += 1;
            } else if (is(option, "STORE") || is(option, "STOREDIST"))
                && left >= 1
                && !read_only
                && !searching
            {
                store = Some((options[index + 1], is(option, "STOREDIST")));
                index += 1;
            } else if is(option, "STOREDIST") && form == Form::SearchStore {
                store_distance = true;
            } else if is(option, "FROMMEMBER") && left >= 1 && searching && !from_position {
                if let Some(zset) = zset {
                    center = Some(position_of(zset, options[index + 1]).ok_or(
                        CommandError::from("ERR could not decode requested zset member"),
                    )?);
                }
                from_member = true;
                index += 1;
            } else if is(option, "FROMLONLAT") && left >= 2 && searching && !from_member {
                center = Some(parse_position(options[index + 1], options[index + 2])?);
                from_position = true;
                index += 2;
            } else if is(option, "BYRADIUS") && left >= 2 && searching && !by_box {
                shape = Some(parse_radius(options[index + 1], options[index + 2])?);
                by_radius = true;
                index += 2;
            } else if is(option, "BYBOX") && left >= 3 && searching && !by_radius {
                shape = Some(parse_box(
                    options[index + 1],
                    options[index + 2],
                    options[index + 3],
                )?);
                by_box = true;
                index += 3;
            } else {
                return Err(errors::SYNTAX.into());
            }
            index += 1;
        }
        if form == Form::SearchStore {
            store = Some((args[1], store_distance));
        }
        if store.is_some() && (with_distance || with_hash || with_coordinates) {
            let what = if form == Form::SearchStore {
                "GEOSEARCHSTORE"
            } else {
                "STORE option in GEORADIUS"
            };
            return Err(format!(
                "ERR {what} is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
            )
            .into());
        }
        if searching && !(from_member || from_position) {
            return Err(format!(
                "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}"
            )
            .into());
        }
        if searching && !(by_radius || by_box) {
            return Err(format!(
                "ERR exactly one of BYRADIUS and BYBOX can be specified for {name}"
            )
            .into());
        }
        if any && count == 0 {
            return Err("ERR the ANY argument requires COUNT argument".into());
        }
        match (zset, center, shape) {
            (Some(zset), Some(center), Some(shape)) => {
                Some(members_within(zset, center, shape, any.then_some(count)))
            }
            _ => None,
        }
    };
    let (db, now_ms) = (ctx.db, ctx.now_ms);
    let Some(mut found) = found else {
        // No source key: an empty answer, and a STORE deletes its destination.
        match store {
            Some((destination, _)) => {
                if ctx.keyspace.remove(db, destination, now_ms).is_some() {
                    notify(ctx, notify::GENERIC, "del", destination);
                }
                ctx.out.integer(0);
            }
            None => ctx.out.array_len(0),
        }
        return Ok(());
    };
    if count != 0 && descending.is_none() && !any {
        descending = Some(false);
    }
    match descending {
        Some(false) => found.sort_by(|a, b| a.distance_m.total_cmp(&b.distance_m)),
        Some(true) => found.sort_by(|a, b| b.distance_m.total_cmp(&a.distance_m)),
        None => {}
    }
    if count != 0 {
        found.truncate(count);
    }
    let conversion = unit_of(shape.expect("found implies a shape")).meters();
    match store {
        Some((destination, distances)) => {
            if found.is_empty() {
                if ctx.keyspace.remove(db, destination, now_ms).is_some() {
                    notify(ctx, notify::GENERIC, "del", destination);
                }
                ctx.out.integer(0);
                return Ok(());
            }
            let member_len_max = found.iter().map(|f| f.member.len()).max().unwrap_or(0);
            let mut zset = SortedSet::for_members(found.len(), member_len_max);
            for item in &found {
                let score = if distances {
                    item.distance_m / conversion
                } else {
                    item.score as f64
                };
                zset.add(&item.member, score, AddOptions::default())
                    .expect("a plain add of a number is no NaN");
            }
            ctx.keyspace
                .insert(db, destination, Value::ZSet(zset), None, now_ms);
            ctx.out.integer(found.len() as i64);
            let event = if form == Form::SearchStore {
                "geosearchstore"
            } else {
                "georadiusstore"
            };
            notify(ctx, notify::ZSET, event, destination);
        }
        None => {
            let out = &mut *ctx.out;
            let extras =
                usize::from(with_distance) + usize::from(with_hash) + usize::from(with_coordinates);
            out.array_len(found.len());
            for item in &found {
                if extras > 0 {
                    out.array_len(extras + 1);
                }
                out.bulk(&item.member);
                if with_distance {
                    reply_distance(out, item.distance_m / conversion);
                }
                if with_hash {
                    out.integer(item.score as i64);
                }
                if with_coordinates {
                    reply_position(out, decode(item.score));
                }
            }
        }
    }
    Ok(())
}

/// GEORADIUS key longitude latitude radius M | KM | FT | MI [WITHCOORD] [WITHDIST] [WITHHASH]
/// [COUNT count [ANY]] [ASC | DESC] [STORE key | STOREDIST key]
pub fn georadius(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    generic(ctx, args, Form::Radius, false)
}

/// GEORADIUS_RO: GEORADIUS without STORE.
pub fn georadius_ro(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    generic(ctx, args, Form::Radius, true)
}

/// GEORADIUSBYMEMBER key member radius M | KM | FT | MI [options as GEORADIUS]
pub fn georadiusbymember(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    generic(ctx, args, Form::ByMember, false)
}

/// GEORADIUSBYMEMBER_RO: GEORADIUSBYMEMBER without STORE.
pub fn georadiusbymember_ro(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    generic(ctx, args, Form::ByMember, true)
}

/// GEOSEARCH key FROMMEMBER member | FROMLONLAT longitude latitude BYRADIUS radius unit |
/// BYBOX width height unit [ASC | DESC] [COUNT count [ANY]] [WITHCOORD] [WITHDIST] [WITHHASH]
pub fn geosearch(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    generic(ctx, args, Form::Search, true)
}

/// GEOSEARCHSTORE destination source [GEOSEARCH's options] [STOREDIST]
pub fn geosearchstore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    generic(ctx, args, Form::SearchStore, false)
}
