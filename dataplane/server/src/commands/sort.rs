//! SORT and SORT_RO: sort the elements of a list, a set or a sorted set, by themselves or by
//! values read from other keys (`BY pattern`), reply with them or with values read through
//! patterns (`GET pattern`), or store the result in a list (`STORE`).
//!
//! A pattern names a key by putting an element in place of its first `*` (`weight_*`), and a
//! hash field after `->` (`object_*->weight`); `#` is the element itself. The keys a pattern
//! names live on any shard, so a SORT that uses one runs with every shard held
//! ([`LOOKUPS`]: the router sends it through the scratch path, which copies the named keys in
//! first); without a pattern only the source key and the STORE destination are involved.

use std::borrow::Cow;
use std::cmp::Ordering;

use ember_store::list::{End, ListValue};
use ember_store::Value;

use super::notify::{self, notify};
use super::AclCategories as A;
use super::{
    command, errors, is, looks_up, movable, read_entry, split, CommandError, CommandResult,
    CommandSpec, Ctx, Ks, Lookups, Split, ONE_KEY, R, W_OOM,
};

/// SORT with a numeric sort over a value that does not read as a double.
pub const NOT_A_DOUBLE: &str = "ERR One or more scores can't be converted into double";

/// This family's commands, in COMMAND's order.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    sorting(split(looks_up(movable(command("sort", -2, W_OOM, ONE_KEY, "generic", "1.0.0", "Sorts the elements in a list, a set, or a sorted set, optionally storing the result.", Ks(sort)), sort_keys), &LOOKUPS), Split::Scratch), A::WRITE),
    sorting(split(looks_up(movable(command("sort_ro", -2, R, ONE_KEY, "generic", "7.0.0", "Returns the sorted elements of a list, a set, or a sorted set.", Ks(sort_ro)), sort_ro_keys), &LOOKUPS), Split::Scratch), A::READ),
];

/// SORT's or SORT_RO's first option that reads keys named by the data (BY with a pattern, GET)
/// before any syntax error, as its error for a user who may not read every key (Redis checks
/// while it parses, so an earlier bad option wins); `None` for other commands.
pub fn option_reading_every_key(index: usize, args: &[&[u8]]) -> Option<&'static str> {
    let readonly = match super::COMMANDS[index].name {
        "sort" => false,
        "sort_ro" => true,
        _ => return None,
    };
    let mut position = 2;
    while position < args.len() {
        let left = args.len() - position - 1;
        let arg = args[position];
        if is(arg, "ASC") || is(arg, "DESC") || is(arg, "ALPHA") {
        } else if is(arg, "LIMIT") && left >= 2 {
            let integers = [args[position + 1], args[position + 2]]
                .iter()
                .all(|arg| ember_resp::parse_i64(arg).is_some());
            if !integers {
                return None;
            }
            position += 2;
        } else if !readonly && is(arg, "STORE") && left >= 1 {
            position += 1;
        } else if is(arg, "BY") && left >= 1 {
            if args[position + 1].contains(&b'*') {
                return Some("ERR BY option of SORT denied due to insufficient ACL permissions.");
            }
            position += 1;
        } else if is(arg, "GET") && left >= 1 {
            return Some("ERR GET option of SORT denied due to insufficient ACL permissions.");
        } else {
            return None;
        }
        position += 1;
    }
    None
}

/// SORT's ACL categories, as Redis's: the types it reads, and @dangerous (its patterns read any
/// key), in place of the generic group's @keyspace.
const fn sorting(mut spec: CommandSpec, access: A) -> CommandSpec {
    spec.categories = access
        .union(A::SET)
        .union(A::SORTEDSET)
        .union(A::LIST)
        .union(A::SLOW)
        .union(A::DANGEROUS);
    spec
}

/// The keys SORT's patterns name, for the router and the scratch path.
pub static LOOKUPS: Lookups = Lookups {
    wide: uses_patterns,
    keys: pattern_keys,
};

/// SORT key [BY pattern] [LIMIT offset count] [GET pattern [GET pattern ...]] [ASC|DESC]
/// [ALPHA] [STORE destination]
pub fn sort(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    run(ctx, args, Mode::ReadWrite)
}

/// SORT_RO key [BY pattern] [LIMIT offset count] [GET pattern [GET pattern ...]] [ASC|DESC]
/// [ALPHA]
pub fn sort_ro(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    run(ctx, args, Mode::ReadOnly)
}

/// SORT's keys, as Redis's `sortGetKeys`: the source, then the destination of the last STORE
/// (LIMIT's two values and BY's and GET's pattern are skipped, so a pattern named STORE is none).
pub fn sort_keys(args: &[&[u8]]) -> Vec<usize> {
    let mut store_at = None;
    let mut index = 2;
    while index < args.len() {
        let arg = args[index];
        if is(arg, "LIMIT") {
            index += 2;
        } else if is(arg, "GET") || is(arg, "BY") {
            index += 1;
        } else if is(arg, "STORE") && index + 1 < args.len() {
            store_at = Some(index + 1);
        }
        index += 1;
    }
    std::iter::once(1).chain(store_at).collect()
}

/// SORT_RO's one key: the source.
pub fn sort_ro_keys(_args: &[&[u8]]) -> Vec<usize> {
    vec![1]
}

/// Whether STORE is an option (SORT) or a syntax error (SORT_RO).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    ReadWrite,
    ReadOnly,
}

/// A parsed SORT request.
#[derive(Debug, Default, PartialEq)]
struct Request<'a> {
    descending: bool,
    alpha: bool,
    /// LIMIT's offset and count, as given.
    limit: Option<(i64, i64)>,
    /// The last BY pattern.
    by: Option<&'a [u8]>,
    /// Set by any BY pattern without `*` (and never cleared, as in Redis): the elements keep
    /// their native order.
    no_sort: bool,
    /// GET patterns, in order.
    gets: Vec<&'a [u8]>,
    /// The last STORE destination.
    store: Option<&'a [u8]>,
}

/// Parses SORT's options (from argument 2).
///
/// # Errors
/// A syntax error for an unknown option, one without its values, or STORE in SORT_RO; "not an
/// integer" for a LIMIT value.
fn parse<'a>(args: &[&'a [u8]], mode: Mode) -> Result<Request<'a>, CommandError> {
    let mut request = Request::default();
    let mut index = 2;
    while index < args.len() {
        let arg = args[index];
        let left = args.len() - index - 1;
        if is(arg, "ASC") {
            request.descending = false;
        } else if is(arg, "DESC") {
            request.descending = true;
        } else if is(arg, "ALPHA") {
            request.alpha = true;
        } else if is(arg, "LIMIT") && left >= 2 {
            let offset = super::parse_integer(args[index + 1])?;
            let count = super::parse_integer(args[index + 2])?;
            request.limit = Some((offset, count));
            index += 2;
        } else if mode == Mode::ReadWrite && is(arg, "STORE") && left >= 1 {
            request.store = Some(args[index + 1]);
            index += 1;
        } else if is(arg, "BY") && left >= 1 {
            let pattern = args[index + 1];
            request.no_sort |= !pattern.contains(&b'*');
            request.by = Some(pattern);
            index += 1;
        } else if is(arg, "GET") && left >= 1 {
            request.gets.push(args[index + 1]);
            index += 1;
        } else {
            return Err(errors::SYNTAX.into());
        }
        index += 1;
    }
    Ok(request)
}

/// True when SORT's arguments read keys through a pattern (BY or GET with a `*`): the command
/// then runs with every shard held. Malformed arguments read none (the handler answers the
/// error).
fn uses_patterns(args: &[&[u8]]) -> bool {
    let Ok(request) = parse(args, Mode::ReadWrite) else {
        return false;
    };
    let sorts_by_pattern = !request.no_sort && request.by.is_some();
    sorts_by_pattern || request.gets.iter().any(|pattern| pattern.contains(&b'*'))
}

/// Every key SORT's patterns may read for the elements of `source` (a superset: BY's keys are
/// listed even when LIMIT or BY without `*` means they are never read).
fn pattern_keys(args: &[&[u8]], source: &Value) -> Vec<Vec<u8>> {
    let Ok(request) = parse(args, Mode::ReadWrite) else {
        return Vec::new();
    };
    let patterns: Vec<Pattern<'_>> = request
        .by
        .iter()
        .chain(&request.gets)
        .filter_map(|pattern| Pattern::parse(pattern))
        .collect();
    if patterns.is_empty() {
        return Vec::new();
    }
    let mut keys = Vec::new();
    for element in elements_of(source).unwrap_or_default() {
        keys.extend(patterns.iter().map(|pattern| pattern.key_for(&element)));
    }
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// A BY or GET pattern that names keys: the key's text around the `*`, and the hash field.
#[derive(Debug, PartialEq)]
struct Pattern<'a> {
    prefix: &'a [u8],
    suffix: &'a [u8],
    field: Option<&'a [u8]>,
}

impl<'a> Pattern<'a> {
    /// The pattern's parts, as Redis's `lookupKeyByPattern`: `None` when it has no `*` (it then
    /// names no key) or is `#`. A `->` after the `*` starts the field only when text follows.
    fn parse(pattern: &'a [u8]) -> Option<Self> {
        let star = pattern.iter().position(|&byte| byte == b'*')?;
        let after = &pattern[star + 1..];
        let arrow = after
            .windows(2)
            .position(|pair| pair == b"->")
            .filter(|&at| at + 2 < after.len());
        let (suffix, field) = match arrow {
            Some(at) => (&after[..at], Some(&after[at + 2..])),
            None => (after, None),
        };
        Some(Self {
            prefix: &pattern[..star],
            suffix,
            field,
        })
    }

    /// The key this pattern names for `element`.
    fn key_for(&self, element: &[u8]) -> Vec<u8> {
        let mut key = Vec::with_capacity(self.prefix.len() + element.len() + self.suffix.len());
        key.extend_from_slice(self.prefix);
        key.extend_from_slice(element);
        key.extend_from_slice(self.suffix);
        key
    }
}

/// What `pattern` reads for `element`: the element itself for `#`, a string key's value, a
/// hash key's field; `None` when the key is absent or of another type (or the pattern has no
/// `*`).
fn lookup(ctx: &mut Ctx<'_>, pattern: &[u8], element: &[u8]) -> Option<Vec<u8>> {
    if pattern == b"#" {
        return Some(element.to_vec());
    }
    let parsed = Pattern::parse(pattern)?;
    let key = parsed.key_for(element);
    let (db, now_ms) = (ctx.db, ctx.now_ms);
    let entry = if ctx.no_touch {
        ctx.keyspace.peek(db, &key, now_ms)
    } else {
        ctx.keyspace.get(db, &key, now_ms)
    };
    ctx.stats.count_lookup(entry.is_some());
    let value = &entry?.value;
    match (parsed.field, value) {
        (Some(field), Value::Hash(hash)) => hash.get(field, now_ms).map(<[u8]>::to_vec),
        (None, value) if value.is_string() => Some(value.to_vec()),
        _ => None,
    }
}

/// The elements of a list, a set or a sorted set in their native order (a sorted set's by
/// score); `None` for another type.
fn elements_of(value: &Value) -> Option<Vec<Vec<u8>>> {
    let elements = match value {
        Value::List(list) => list.iter().map(Cow::into_owned).collect(),
        Value::Set(set) => set.iter().map(<[u8]>::to_vec).collect(),
        Value::ZSet(zset) => zset.iter().map(|(member, _)| member.to_vec()).collect(),
        _ => return None,
    };
    Some(elements)
}

/// The type of the value SORT reads, which decides what "native order" means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SourceType {
    /// A list, or an absent key (Redis sorts an empty list then).
    List,
    Set,
    SortedSet,
}

/// The source's elements and type.
///
/// # Errors
/// WRONGTYPE when the key holds something SORT cannot sort.
fn load_source(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<(Vec<Vec<u8>>, SourceType), CommandError> {
    let Some(entry) = read_entry(ctx, key) else {
        return Ok((Vec::new(), SourceType::List));
    };
    let source_type = match &entry.value {
        Value::List(_) => SourceType::List,
        Value::Set(_) => SourceType::Set,
        Value::ZSet(_) => SourceType::SortedSet,
        _ => return Err(errors::WRONGTYPE.into()),
    };
    let elements = elements_of(&entry.value).expect("a sortable type");
    Ok((elements, source_type))
}

/// The first and last output positions, as Redis clamps LIMIT: an empty range is
/// `(len - 1, len - 2)`.
fn output_range(limit: Option<(i64, i64)>, len: usize) -> (i64, i64) {
    let len = len as i64;
    let (offset, count) = limit.unwrap_or((0, -1));
    let mut start = offset.clamp(0, len);
    let count = count.clamp(-1, len);
    let mut end = if count < 0 {
        len - 1
    } else {
        start + count - 1
    };
    if start >= len {
        start = len - 1;
        end = len - 2;
    }
    (start, end.min(len - 1))
}

/// What an element sorts by.
#[derive(Debug, Clone, PartialEq)]
enum SortKey {
    /// Numeric sort: the score (0 when BY's key is absent).
    Score(f64),
    /// ALPHA by the element itself.
    Element,
    /// ALPHA by BY's value (`None`, absent, sorts first).
    Text(Option<Vec<u8>>),
}

/// Reads `text` as C's `strtod` does for SORT: leading white space, then a whole number (an
/// empty text reads as 0); `None` for anything left over, NaN, or a result out of range. Redis
/// hands strtod a C string, so the text ends at its first NUL byte (SETRANGE's and SETBIT's
/// zero padding reads as 0).
fn parse_score(text: &[u8]) -> Option<f64> {
    let text = match text.iter().position(|&byte| byte == 0) {
        Some(nul) => &text[..nul],
        None => text,
    };
    if text.is_empty() {
        return Some(0.0);
    }
    let text = std::str::from_utf8(text).ok()?;
    let trimmed = text.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (negative, unsigned) = match trimmed.as_bytes().first() {
        Some(b'-') => (true, &trimmed[1..]),
        Some(b'+') => (false, &trimmed[1..]),
        _ => (false, trimmed),
    };
    let hex = unsigned
        .strip_prefix("0x")
        .or_else(|| unsigned.strip_prefix("0X"));
    let magnitude = match hex {
        Some(digits) if !digits.is_empty() => u64::from_str_radix(digits, 16).ok()? as f64,
        _ => {
            let lower = unsigned.to_ascii_lowercase();
            if lower.starts_with("nan") || lower.contains('_') || unsigned.is_empty() {
                return None;
            }
            let value: f64 = unsigned.parse().ok()?;
            let spelled_infinite = lower.starts_with("inf");
            let mantissa = lower.split('e').next().unwrap_or("");
            let mantissa_nonzero = mantissa.bytes().any(|byte| (b'1'..=b'9').contains(&byte));
            let overflow = value.is_infinite() && !spelled_infinite;
            let underflow = value == 0.0 && mantissa_nonzero;
            let subnormal = value != 0.0 && value < f64::MIN_POSITIVE;
            if overflow || underflow || subnormal {
                return None;
            }
            value
        }
    };
    Some(if negative { -magnitude } else { magnitude })
}

/// Compares two elements with their sort keys, ascending, as Redis's `sortCompare`: equal
/// scores fall back to the elements' bytes.
fn compare(a: (&[u8], &SortKey), b: (&[u8], &SortKey)) -> Ordering {
    match (a.1, b.1) {
        (SortKey::Score(x), SortKey::Score(y)) => x
            .partial_cmp(y)
            .unwrap_or(Ordering::Equal)
            .then_with(|| a.0.cmp(b.0)),
        (SortKey::Text(x), SortKey::Text(y)) => x.cmp(y),
        _ => a.0.cmp(b.0),
    }
}

fn run(ctx: &mut Ctx<'_>, args: &[&[u8]], mode: Mode) -> CommandResult {
    let mut request = parse(args, mode)?;
    let (mut elements, source_type) = load_source(ctx, args[1])?;
    // A set has no order of its own: stored, or read by a script, it is sorted so the result
    // is repeatable.
    let repeatable = request.store.is_some() || ctx.script;
    if request.no_sort && source_type == SourceType::Set && repeatable {
        request.no_sort = false;
        request.alpha = true;
        request.by = None;
    }
    let (start, end) = output_range(request.limit, elements.len());
    if request.no_sort {
        if request.descending && source_type != SourceType::Set {
            elements.reverse();
        }
    } else {
        sort_elements(ctx, &request, &mut elements)?;
    }
    let selected: &[Vec<u8>] = if end >= start {
        &elements[start as usize..=end as usize]
    } else {
        &[]
    };
    match request.store {
        None => reply(ctx, &request, selected),
        Some(destination) => store(ctx, &request, selected, destination),
    }
    Ok(())
}

/// Sorts `elements` by `request`'s order.
///
/// # Errors
/// [`NOT_A_DOUBLE`] when a numeric sort meets a value that is not a number.
fn sort_elements(
    ctx: &mut Ctx<'_>,
    request: &Request<'_>,
    elements: &mut Vec<Vec<u8>>,
) -> Result<(), CommandError> {
    let mut keyed = Vec::with_capacity(elements.len());
    for element in elements.drain(..) {
        let by_value = match request.by {
            Some(pattern) => lookup(ctx, pattern, &element),
            None => None,
        };
        let key = match (request.alpha, request.by) {
            (true, Some(_)) => SortKey::Text(by_value),
            (true, None) => SortKey::Element,
            (false, Some(_)) => match by_value {
                Some(text) => SortKey::Score(parse_score(&text).ok_or(NOT_A_DOUBLE)?),
                None => SortKey::Score(0.0),
            },
            (false, None) => SortKey::Score(parse_score(&element).ok_or(NOT_A_DOUBLE)?),
        };
        keyed.push((element, key));
    }
    // A stable sort: elements whose keys compare equal (ALPHA by equal values) keep their
    // native order, where Redis's quicksort leaves them in no particular one.
    keyed.sort_by(|a, b| {
        let order = compare((&a.0, &a.1), (&b.0, &b.1));
        if request.descending {
            order.reverse()
        } else {
            order
        }
    });
    elements.extend(keyed.into_iter().map(|(element, _)| element));
    Ok(())
}

/// Replies with the selected elements, or with what each GET pattern reads for each.
fn reply(ctx: &mut Ctx<'_>, request: &Request<'_>, selected: &[Vec<u8>]) {
    if request.gets.is_empty() {
        ctx.out.array_len(selected.len());
        for element in selected {
            ctx.out.bulk(element);
        }
        return;
    }
    let mut values = Vec::with_capacity(selected.len() * request.gets.len());
    for element in selected {
        for pattern in &request.gets {
            values.push(lookup(ctx, pattern, element));
        }
    }
    ctx.out.array_len(values.len());
    for value in &values {
        match value {
            Some(value) => ctx.out.bulk(value),
            None => ctx.out.null(),
        }
    }
}

/// Stores the output as a list at `destination` (an empty output deletes it) and replies with
/// its length.
fn store(ctx: &mut Ctx<'_>, request: &Request<'_>, selected: &[Vec<u8>], destination: &[u8]) {
    let mut output: Vec<Vec<u8>> = Vec::new();
    if request.gets.is_empty() {
        output.extend(selected.iter().cloned());
    } else {
        for element in selected {
            for pattern in &request.gets {
                output.push(lookup(ctx, pattern, element).unwrap_or_default());
            }
        }
    }
    let (db, now_ms, limits) = (ctx.db, ctx.now_ms, ctx.config.list_limits);
    if output.is_empty() {
        if ctx.keyspace.remove(db, destination, now_ms).is_some() {
            notify(ctx, notify::GENERIC, "del", destination);
        }
    } else {
        let mut list = ListValue::new();
        let slices: Vec<&[u8]> = output.iter().map(Vec::as_slice).collect();
        list.push(End::Back, &slices, &limits);
        ctx.keyspace
            .insert(db, destination, Value::List(list), None, now_ms);
        notify(ctx, notify::LIST, "sortstore", destination);
    }
    ctx.out.integer(output.len() as i64);
}

#[cfg(test)]
mod tests;
