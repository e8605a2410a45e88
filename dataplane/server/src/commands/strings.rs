//! String commands: GET, SET and their family, counters, ranges, LCS.

use ember_resp::ReplySink;
use ember_store::{Change, Entry, ExpireAtMs, Value, PREFETCH_BATCH_LEN};

use super::notify::{self, notify};
use super::{errors, is, parse_float, parse_integer, CommandError, CommandResult, Ctx};

/// Reads `key` for a read command, counting the hit or miss.
fn read<'a>(ctx: &'a mut Ctx<'_>, key: &[u8]) -> Option<&'a Entry> {
    notify::note_read(ctx, key);
    let entry = lookup(ctx.keyspace, ctx.db, key, ctx.now_ms, ctx.no_touch);
    ctx.stats.count_lookup(entry.is_some());
    entry
}

/// A read that touches the key's access time unless the client asked for CLIENT NO-TOUCH.
fn lookup<'a>(
    keyspace: &'a mut ember_store::Keyspace,
    db: usize,
    key: &[u8],
    now_ms: u64,
    no_touch: bool,
) -> Option<&'a Entry> {
    if no_touch {
        keyspace.peek(db, key, now_ms)
    } else {
        keyspace.get(db, key, now_ms)
    }
}

/// The value of a string command's key: WRONGTYPE for a set, sorted set or tensor, as in Redis.
fn string_value(entry: &Entry) -> Result<&Value, CommandError> {
    if entry.value.is_string() {
        Ok(&entry.value)
    } else {
        Err(errors::WRONGTYPE.into())
    }
}

/// Replies with a string value (callers have checked the type with [`string_value`]).
fn reply_value(out: &mut ReplySink, value: &Value) {
    match value {
        Value::Int(int) => out.bulk_integer(*int),
        Value::Str(bytes) => out.bulk(bytes),
        _ => {
            unreachable!("string replies are type-checked first")
        }
    }
}

fn reply_optional(ctx: &mut Ctx<'_>, value: Option<&Value>) {
    match value {
        Some(value) => reply_value(ctx.out, value),
        None => ctx.out.null(),
    }
}

/// GET key
pub fn get(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    notify::note_read(ctx, args[1]);
    let entry = lookup(ctx.keyspace, ctx.db, args[1], ctx.now_ms, ctx.no_touch);
    ctx.stats.count_lookup(entry.is_some());
    match entry {
        Some(entry) => reply_value(ctx.out, string_value(entry)?),
        None => ctx.out.null(),
    }
    Ok(())
}

/// When a write's key should expire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExpireOption {
    /// No expiry option: the key loses any TTL (SET) or keeps it (GETEX).
    Unset,
    /// KEEPTTL
    Keep,
    /// PERSIST
    Persist,
    /// EX/PX/EXAT/PXAT, as an absolute time.
    At(u64),
}

/// Converts an EX/PX/EXAT/PXAT argument to an absolute time; Redis's checks and wording.
fn expire_at(
    ctx: &Ctx<'_>,
    unit_ms: u64,
    absolute: bool,
    arg: &[u8],
    command: &str,
) -> Result<u64, CommandError> {
    let amount = parse_integer(arg)?;
    let invalid = || CommandError::from(format!("ERR invalid expire time in '{command}' command"));
    if amount <= 0 {
        return Err(invalid());
    }
    let ms = (amount as u64)
        .checked_mul(unit_ms)
        .filter(|ms| *ms <= i64::MAX as u64)
        .ok_or_else(invalid)?;
    let at = if absolute {
        ms
    } else {
        let ms = super::expiry_jitter::jittered_ms(ctx.config, ms);
        ctx.now_ms
            .checked_add(ms)
            .filter(|at| *at <= i64::MAX as u64)
            .ok_or_else(invalid)?
    };
    Ok(at)
}

/// Parses SET's and GETEX's options.
struct WriteOptions<'a> {
    nx: bool,
    xx: bool,
    get: bool,
    /// IFEQ, IFNE, IFDEQ or IFDNE (Redis 8.4; SET only).
    compare: Option<Compare<'a>>,
    expire: ExpireOption,
    /// EX/PX/EXAT/PXAT's unit, whether it is absolute, and its unparsed argument: Redis checks
    /// the whole option syntax first and the number afterwards (GETEX only once the key is
    /// found), so the number is read by [`WriteOptions::resolve_expire`].
    expire_arg: Option<(u64, bool, &'a [u8])>,
}

impl WriteOptions<'_> {
    /// Turns a pending EX/PX/EXAT/PXAT argument into [`ExpireOption::At`].
    fn resolve_expire(&mut self, ctx: &Ctx<'_>, command: &str) -> CommandResult {
        if let Some((unit_ms, absolute, arg)) = self.expire_arg.take() {
            self.expire = ExpireOption::At(expire_at(ctx, unit_ms, absolute, arg, command)?);
        }
        Ok(())
    }
}

fn parse_write_options<'a>(
    options: &[&'a [u8]],
    allow_set_flags: bool,
) -> Result<WriteOptions<'a>, CommandError> {
    let mut parsed = WriteOptions {
        nx: false,
        xx: false,
        get: false,
        compare: None,
        expire: ExpireOption::Unset,
        expire_arg: None,
    };
    let mut index = 0;
    while index < options.len() {
        let option = options[index];
        let next = options.get(index + 1);
        let expire_unset = parsed.expire == ExpireOption::Unset;
        // NX, XX and the four comparisons exclude one another.
        let unconditional = !parsed.nx && !parsed.xx && parsed.compare.is_none();
        let compare = next.and_then(|arg| Compare::parse(option, arg));
        if allow_set_flags && is(option, "NX") && (parsed.nx || unconditional) {
            parsed.nx = true;
        } else if allow_set_flags && is(option, "XX") && (parsed.xx || unconditional) {
            parsed.xx = true;
        } else if allow_set_flags && compare.is_some() && unconditional {
            parsed.compare = compare;
            index += 1;
        } else if allow_set_flags && is(option, "GET") {
            parsed.get = true;
        } else if allow_set_flags && is(option, "KEEPTTL") && expire_unset {
            parsed.expire = ExpireOption::Keep;
        } else if !allow_set_flags && is(option, "PERSIST") && expire_unset {
            parsed.expire = ExpireOption::Persist;
        } else if expire_unset
            && (is(option, "EX") || is(option, "PX") || is(option, "EXAT") || is(option, "PXAT"))
        {
            let Some(&arg) = next else {
                return Err(errors::SYNTAX.into());
            };
            let unit_ms = if is(option, "EX") || is(option, "EXAT") {
                1000
            } else {
                1
            };
            let absolute = is(option, "EXAT") || is(option, "PXAT");
            // Placeholder until resolve_expire reads the number; it marks the expiry as set.
            parsed.expire = ExpireOption::At(0);
            parsed.expire_arg = Some((unit_ms, absolute, arg));
            index += 1;
        } else {
            return Err(errors::SYNTAX.into());
        }
        index += 1;
    }
    Ok(parsed)
}

/// SET key value [NX | XX | IFEQ v | IFNE v | IFDEQ digest | IFDNE digest] [GET]
/// [EX s | PX ms | EXAT s | PXAT ms | KEEPTTL]
pub fn set(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let mut options = parse_write_options(&args[3..], true)?;
    options.resolve_expire(ctx, "set")?;
    let (key, value) = (args[1], args[2]);
    // SET overwrites a key of any type; only its GET option reads the old value, and answers
    // WRONGTYPE for a collection without writing.
    // Not an access yet: the write records it, or the touch below when NX or XX stop the write
    // (Redis looks the key up once per SET).
    let existing = ctx.keyspace.get_for_overwrite(ctx.db, key, ctx.now_ms);
    let (exists, existing_expire) = (
        existing.is_some(),
        existing.and_then(|entry| entry.expire_at_ms()),
    );
    // A comparison reads the current value: WRONGTYPE for a collection, as for GET.
    let compared = match (options.compare, existing) {
        (Some(compare), Some(entry)) => compare.holds(string_value(entry)?),
        (Some(compare), None) => compare.creates(),
        (None, _) => true,
    };
    let previous = match existing {
        Some(entry) if options.get => Some(string_value(entry)?.clone()),
        _ => None,
    };
    if options.get && exists && !ctx.no_touch {
        // Redis reads the old value with a lookup of its own before the write's lookup.
        ctx.keyspace.touch(ctx.db, key, ctx.now_ms);
    }
    let condition_met = compared && !(options.nx && exists || options.xx && !exists);
    if condition_met {
        let expire = match options.expire {
            ExpireOption::Keep => existing_expire,
            ExpireOption::At(at) => Some(at),
            ExpireOption::Unset | ExpireOption::Persist => None,
        };
        store(ctx, key, Value::from_bytes(value), expire);
        notify(ctx, notify::STRING, "set", key);
        if matches!(options.expire, ExpireOption::At(_)) {
            notify(ctx, notify::GENERIC, "expire", key);
        }
    } else if exists && !ctx.no_touch {
        ctx.keyspace.touch(ctx.db, key, ctx.now_ms);
    }
    if condition_met {
        super::propagate_string(ctx, key);
    } else {
        ctx.propagation.suppress();
    }
    if options.get {
        reply_optional(ctx, previous.as_ref());
    } else if condition_met {
        ctx.out.ok();
    } else {
        ctx.out.null();
    }
    Ok(())
}

/// Writes `value` with expiry `expire`; a time already past deletes the key instead, as Redis.
fn store(ctx: &mut Ctx<'_>, key: &[u8], value: Value, expire: ExpireAtMs) {
    if expire.is_some_and(|at| super::already_expired(at, ctx.now_ms)) {
        ctx.keyspace.remove(ctx.db, key, ctx.now_ms);
    } else {
        ctx.keyspace.insert(ctx.db, key, value, expire, ctx.now_ms);
    }
}

/// A condition on a string's current value, compared as Redis 8.4's SET and DELEX compare it.
#[derive(Debug, Clone, Copy)]
enum Compare<'a> {
    /// IFEQ: the value equals this one.
    Eq(&'a [u8]),
    /// IFNE: the value differs from this one.
    Ne(&'a [u8]),
    /// IFDEQ: the value's digest (see [`digest_hex`]) is this one, in either case.
    DigestEq(&'a [u8]),
    /// IFDNE: the value's digest is not this one.
    DigestNe(&'a [u8]),
}

impl<'a> Compare<'a> {
    /// The condition `word arg` names, if `word` is one of the four.
    fn parse(word: &[u8], arg: &'a [u8]) -> Option<Self> {
        if is(word, "IFEQ") {
            Some(Self::Eq(arg))
        } else if is(word, "IFNE") {
            Some(Self::Ne(arg))
        } else if is(word, "IFDEQ") {
            Some(Self::DigestEq(arg))
        } else if is(word, "IFDNE") {
            Some(Self::DigestNe(arg))
        } else {
            None
        }
    }

    /// True when a string `value` meets the condition.
    fn holds(self, value: &Value) -> bool {
        let bytes = string_bytes(value);
        match self {
            Self::Eq(expected) => *bytes == *expected,
            Self::Ne(expected) => *bytes != *expected,
            Self::DigestEq(digest) => digest_hex(&bytes).eq_ignore_ascii_case(digest),
            Self::DigestNe(digest) => !digest_hex(&bytes).eq_ignore_ascii_case(digest),
        }
    }

    /// True when the condition lets a missing key be created: "not equal" holds for no value.
    fn creates(self) -> bool {
        matches!(self, Self::Ne(_) | Self::DigestNe(_))
    }
}

/// The bytes of a string value (an integer's text for an integer).
fn string_bytes(value: &Value) -> std::borrow::Cow<'_, [u8]> {
    match value {
        Value::Str(bytes) => std::borrow::Cow::Borrowed(&bytes[..]),
        _ => std::borrow::Cow::Owned(value.to_vec()),
    }
}

/// The digest Redis 8.4's DIGEST answers: XXH3's 64-bit hash of the bytes (no seed, the default
/// secret), as sixteen lower-case hexadecimal digits.
pub fn digest_hex(bytes: &[u8]) -> [u8; 16] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let hash = xxhash_rust::xxh3::xxh3_64(bytes);
    let mut text = [0u8; 16];
    for (at, digit) in text.iter_mut().enumerate() {
        *digit = HEX[((hash >> (60 - 4 * at)) & 0xf) as usize];
    }
    text
}

/// DIGEST key (Redis 8.4): the value's digest, nil for a missing key, WRONGTYPE for another
/// type.
pub fn digest(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let Some(entry) = read(ctx, args[1]) else {
        ctx.out.null();
        return Ok(());
    };
    let text = digest_hex(&string_bytes(string_value(entry)?));
    ctx.out.bulk(&text);
    Ok(())
}

/// DELEX key [IFEQ v | IFNE v | IFDEQ digest | IFDNE digest] (Redis 8.4): deletes the key, of
/// any type without a condition, a string meeting the condition with one; 1 when deleted.
pub fn delex(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let compare = match args {
        [_, _] => None,
        [_, _, word, arg] => Some(Compare::parse(word, arg).ok_or(errors::SYNTAX)?),
        _ => return Err(errors::SYNTAX.into()),
    };
    delete_if(ctx, args[1], compare)
}

/// DELIFEQ key value (Valkey 9.0): deletes a string key holding exactly `value`; 1 when
/// deleted. DELEX's IFEQ under Valkey's name.
pub fn delifeq(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    delete_if(ctx, args[1], Some(Compare::Eq(args[2])))
}

/// Deletes `key` when it exists and meets `compare` (a string, for a comparison), answering
/// 1 or 0; DEL's lazy freeing and keyspace event.
fn delete_if(ctx: &mut Ctx<'_>, key: &[u8], compare: Option<Compare<'_>>) -> CommandResult {
    let Some(entry) = ctx.keyspace.get(ctx.db, key, ctx.now_ms) else {
        ctx.out.integer(0);
        return Ok(());
    };
    if let Some(compare) = compare {
        if !compare.holds(string_value(entry)?) {
            ctx.out.integer(0);
            return Ok(());
        }
    }
    let lazy = crate::lazyfree::lazy(ctx.config, ctx.config.lazyfree_lazy_user_del);
    super::keys::remove_key(ctx, key, lazy);
    ctx.out.integer(1);
    Ok(())
}

/// SETNX key value
pub fn setnx(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let created = !ctx.keyspace.contains(ctx.db, args[1], ctx.now_ms);
    if created {
        ctx.keyspace.insert(
            ctx.db,
            args[1],
            Value::from_bytes(args[2]),
            None,
            ctx.now_ms,
        );
        notify(ctx, notify::STRING, "set", args[1]);
    }
    ctx.out.integer(i64::from(created));
    Ok(())
}

fn set_with_ttl(ctx: &mut Ctx<'_>, args: &[&[u8]], unit_ms: u64, command: &str) -> CommandResult {
    let at = expire_at(ctx, unit_ms, false, args[2], command)?;
    store(ctx, args[1], Value::from_bytes(args[3]), Some(at));
    notify(ctx, notify::STRING, "set", args[1]);
    notify(ctx, notify::GENERIC, "expire", args[1]);
    super::propagate_string(ctx, args[1]);
    ctx.out.ok();
    Ok(())
}

/// SETEX key seconds value
pub fn setex(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    set_with_ttl(ctx, args, 1000, "setex")
}

/// PSETEX key milliseconds value
pub fn psetex(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    set_with_ttl(ctx, args, 1, "psetex")
}

/// GETSET key value
pub fn getset(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    if let Some(entry) = ctx.keyspace.get(ctx.db, args[1], ctx.now_ms) {
        string_value(entry)?;
    }
    let previous = ctx.keyspace.insert(
        ctx.db,
        args[1],
        Value::from_bytes(args[2]),
        None,
        ctx.now_ms,
    );
    notify(ctx, notify::STRING, "set", args[1]);
    reply_optional(ctx, previous.as_ref().map(|entry| &entry.value));
    Ok(())
}

/// GETDEL key
pub fn getdel(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    if let Some(entry) = ctx.keyspace.get(ctx.db, args[1], ctx.now_ms) {
        string_value(entry)?;
    }
    let removed = ctx.keyspace.remove(ctx.db, args[1], ctx.now_ms);
    ctx.stats.count_lookup(removed.is_some());
    if removed.is_some() {
        notify(ctx, notify::GENERIC, "del", args[1]);
    }
    reply_optional(ctx, removed.as_ref().map(|entry| &entry.value));
    Ok(())
}

/// GETEX key [EX s | PX ms | EXAT s | PXAT ms | PERSIST]
pub fn getex(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let mut options = parse_write_options(&args[2..], false)?;
    let key = args[1];
    let Some(entry) = read(ctx, key) else {
        ctx.out.null();
        return Ok(());
    };
    let value = string_value(entry)?.clone();
    options.resolve_expire(ctx, "getex")?;
    match options.expire {
        ExpireOption::At(at) if super::already_expired(at, ctx.now_ms) => {
            ctx.keyspace.remove(ctx.db, key, ctx.now_ms);
            notify(ctx, notify::GENERIC, "del", key);
        }
        ExpireOption::At(at) => {
            ctx.keyspace.set_expire(ctx.db, key, Some(at), ctx.now_ms);
            notify(ctx, notify::GENERIC, "expire", key);
        }
        ExpireOption::Persist => {
            if ctx
                .keyspace
                .peek(ctx.db, key, ctx.now_ms)
                .is_some_and(|entry| entry.expire_at_ms().is_some())
            {
                ctx.keyspace.set_expire(ctx.db, key, None, ctx.now_ms);
                notify(ctx, notify::GENERIC, "persist", key);
            }
        }
        ExpireOption::Unset | ExpireOption::Keep => {}
    }
    super::propagate_expiry(ctx, key);
    reply_value(ctx.out, &value);
    Ok(())
}

/// MGET key [key ...]
pub fn mget(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    ctx.out.array_len(args.len() - 1);
    // A batch's keys are looked for first, so their cache misses overlap (see
    // `Keyspace::prefetch`), then read one by one.
    for batch in args[1..].chunks(PREFETCH_BATCH_LEN) {
        ctx.keyspace.prefetch(ctx.db, batch.iter().copied());
        for key in batch {
            notify::note_read(ctx, key);
            let entry = lookup(ctx.keyspace, ctx.db, key, ctx.now_ms, ctx.no_touch);
            ctx.stats.count_lookup(entry.is_some());
            // MGET answers nil for a key of another type, as Redis does.
            match entry.filter(|entry| entry.value.is_string()) {
                Some(entry) => reply_value(ctx.out, &entry.value),
                None => ctx.out.null(),
            }
        }
    }
    Ok(())
}

fn check_pairs(args: &[&[u8]], command: &str) -> CommandResult {
    if args.len() % 2 == 0 {
        return Err(super::arity_message(command).into());
    }
    Ok(())
}

/// MSET key value [key value ...]
pub fn mset(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    check_pairs(args, "mset")?;
    // As MGET: a batch's keys are looked for first, so their cache misses overlap.
    for batch in args[1..].chunks(2 * PREFETCH_BATCH_LEN) {
        ctx.keyspace
            .prefetch(ctx.db, batch.iter().step_by(2).copied());
        for pair in batch.chunks_exact(2) {
            ctx.keyspace.insert(
                ctx.db,
                pair[0],
                Value::from_bytes(pair[1]),
                None,
                ctx.now_ms,
            );
            notify(ctx, notify::STRING, "set", pair[0]);
        }
    }
    ctx.out.ok();
    Ok(())
}

/// MSETNX key value [key value ...]
pub fn msetnx(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    check_pairs(args, "msetnx")?;
    let any_exists = args[1..]
        .chunks_exact(2)
        .any(|pair| ctx.keyspace.contains(ctx.db, pair[0], ctx.now_ms));
    if !any_exists {
        for pair in args[1..].chunks_exact(2) {
            ctx.keyspace.insert(
                ctx.db,
                pair[0],
                Value::from_bytes(pair[1]),
                None,
                ctx.now_ms,
            );
            notify(ctx, notify::STRING, "set", pair[0]);
        }
    }
    ctx.out.integer(i64::from(!any_exists));
    Ok(())
}

/// MSETEX numkeys key value [key value ...] [NX | XX] [EX s | PX ms | EXAT s | PXAT ms |
/// KEEPTTL] (Redis 8.4): sets every pair with one expiry, all or (under NX or XX) none; 1 when
/// set, 0 when the condition stopped it. Keys on several shards meet in the scratch keyspace.
pub fn msetex(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let count = parse_integer(args[1])?;
    if count <= 0 {
        return Err("ERR numkeys should be greater than 0".into());
    }
    let pairs_end = usize::try_from(count)
        .ok()
        .and_then(|count| count.checked_mul(2))
        .and_then(|len| len.checked_add(2))
        .filter(|&end| end <= args.len())
        .ok_or("ERR Number of keys can't be greater than number of args")?;
    let pairs = &args[2..pairs_end];
    let mut options = parse_write_options(&args[pairs_end..], true)?;
    if options.get || options.compare.is_some() {
        return Err(errors::SYNTAX.into());
    }
    options.resolve_expire(ctx, "msetex")?;
    let (db, now_ms) = (ctx.db, ctx.now_ms);
    if options.nx || options.xx {
        let wanted = options.xx;
        let met = pairs
            .chunks_exact(2)
            .all(|pair| ctx.keyspace.contains(db, pair[0], now_ms) == wanted);
        if !met {
            ctx.out.integer(0);
            return Ok(());
        }
    }
    for pair in pairs.chunks_exact(2) {
        let expire = match options.expire {
            ExpireOption::Keep => ctx
                .keyspace
                .peek(db, pair[0], now_ms)
                .and_then(|entry| entry.expire_at_ms()),
            ExpireOption::At(at) => Some(at),
            ExpireOption::Unset | ExpireOption::Persist => None,
        };
        store(ctx, pair[0], Value::from_bytes(pair[1]), expire);
        notify(ctx, notify::STRING, "set", pair[0]);
        if matches!(options.expire, ExpireOption::At(_)) {
            notify(ctx, notify::GENERIC, "expire", pair[0]);
        }
        super::propagate_string(ctx, pair[0]);
    }
    ctx.out.integer(1);
    Ok(())
}

/// Adds `delta` to the integer at `key` (0 when absent), keeping its TTL.
fn add(ctx: &mut Ctx<'_>, key: &[u8], delta: i64) -> CommandResult {
    let (db, now_ms) = (ctx.db, ctx.now_ms);
    let updated = ctx.keyspace.update(db, key, now_ms, |value| {
        // A string that reads as an integer counts as one, as in Redis: APPEND and SETRANGE
        // store their results as strings even when they spell a number.
        let current = match value {
            Value::Int(int) => *int,
            Value::Str(bytes) => {
                ember_resp::parse_i64(bytes).ok_or(CommandError::from(errors::NOT_INTEGER))?
            }
            _ => return Err(CommandError::from(errors::WRONGTYPE)),
        };
        let next = current
            .checked_add(delta)
            .ok_or(CommandError::from(errors::OVERFLOW))?;
        *value = Value::Int(next);
        Ok((next, Change::Modified))
    });
    let result = match updated {
        Some(next) => next?,
        None => {
            ctx.keyspace
                .insert(db, key, Value::Int(delta), None, now_ms);
            delta
        }
    };
    notify(ctx, notify::STRING, "incrby", key);
    ctx.out.integer(result);
    Ok(())
}

/// INCR key
pub fn incr(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    add(ctx, args[1], 1)
}

/// DECR key
pub fn decr(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    add(ctx, args[1], -1)
}

/// INCRBY key increment
pub fn incrby(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let delta = parse_integer(args[2])?;
    add(ctx, args[1], delta)
}

/// DECRBY key decrement
pub fn decrby(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let delta = parse_integer(args[2])?;
    let negated = delta
        .checked_neg()
        .ok_or(CommandError::from("ERR decrement would overflow"))?;
    add(ctx, args[1], negated)
}

/// INCRBYFLOAT key increment
pub fn incrbyfloat(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let (db, now_ms, key) = (ctx.db, ctx.now_ms, args[1]);
    // Redis checks the key's type before it reads the increment. The insert below records the
    // access.
    let existing = match ctx.keyspace.get_for_overwrite(db, key, now_ms) {
        Some(entry) => Some((string_value(entry)?.clone(), entry.expire_at_ms())),
        None => None,
    };
    let increment = parse_float(args[2])?;
    let current = match existing.as_ref().map(|(value, _)| value) {
        None => 0.0,
        Some(Value::Int(int)) => *int as f64,
        Some(Value::Str(bytes)) => parse_float(bytes)?,
        Some(_) => {
            unreachable!("type-checked above")
        }
    };
    let next = current + increment;
    if !next.is_finite() {
        return Err("ERR increment would produce NaN or Infinity".into());
    }
    let text = format!("{next}");
    let expire = existing.and_then(|(_, expire)| expire);
    ctx.keyspace
        .insert(db, key, Value::from_bytes(text.as_bytes()), expire, now_ms);
    notify(ctx, notify::STRING, "incrbyfloat", key);
    // The value it came to: a float's text may be read back differently.
    super::propagate_string(ctx, key);
    ctx.out.bulk(text.as_bytes());
    Ok(())
}

/// APPEND key value
pub fn append(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let (db, now_ms, key, suffix) = (ctx.db, ctx.now_ms, args[1], args[2]);
    let limit = ctx.config.proto_max_bulk_len;
    let updated = ctx.keyspace.update(db, key, now_ms, |value| {
        if !value.is_string() {
            return Err(CommandError::from(errors::WRONGTYPE));
        }
        let mut bytes = value.to_vec();
        if bytes.len() + suffix.len() > limit {
            return Err(CommandError::from(errors::STRING_TOO_LONG));
        }
        bytes.extend_from_slice(suffix);
        let length = bytes.len();
        *value = Value::Str(ember_store::CompactBytes::from_vec(bytes));
        Ok((length, Change::Modified))
    });
    let length = match updated {
        Some(length) => length?,
        None => {
            ctx.keyspace.insert(
                db,
                key,
                Value::Str(ember_store::CompactBytes::new(suffix)),
                None,
                now_ms,
            );
            suffix.len()
        }
    };
    notify(ctx, notify::STRING, "append", key);
    ctx.out.integer(length as i64);
    Ok(())
}

/// STRLEN key
pub fn strlen(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let length = match read(ctx, args[1]) {
        Some(entry) => string_value(entry)?.string_len(),
        None => 0,
    };
    ctx.out.integer(length as i64);
    Ok(())
}

/// GETRANGE key start end (and SUBSTR)
pub fn getrange(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let mut start = parse_integer(args[2])?;
    let mut end = parse_integer(args[3])?;
    let bytes = match read(ctx, args[1]) {
        Some(entry) => string_value(entry)?.to_vec(),
        None => Vec::new(),
    };
    let length = bytes.len() as i64;
    if start < 0 && end < 0 && start > end {
        ctx.out.bulk(b"");
        return Ok(());
    }
    if start < 0 {
        start += length;
    }
    if end < 0 {
        end += length;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= length {
        end = length - 1;
    }
    if start > end || length == 0 {
        ctx.out.bulk(b"");
    } else {
        ctx.out.bulk(&bytes[start as usize..=end as usize]);
    }
    Ok(())
}

/// SETRANGE key offset value
pub fn setrange(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    let offset = parse_integer(args[2])?;
    if offset < 0 {
        return Err("ERR offset is out of range".into());
    }
    let (db, now_ms, key, patch) = (ctx.db, ctx.now_ms, args[1], args[3]);
    let offset = offset as usize;
    // The insert below records the access.
    let existing = match ctx.keyspace.get_for_overwrite(db, key, now_ms) {
        Some(entry) => Some((string_value(entry)?.to_vec(), entry.expire_at_ms())),
        None => None,
    };
    let Some((mut bytes, expire_at_ms)) = existing else {
        if patch.is_empty() {
            ctx.out.integer(0);
            return Ok(());
        }
        if offset + patch.len() > ctx.config.proto_max_bulk_len {
            return Err(errors::STRING_TOO_LONG.into());
        }
        if crate::memory::refuses_request(ctx.config, (offset + patch.len()) as u64) {
            return Err(crate::memory::OOM_ERROR.into());
        }
        let mut bytes = vec![0u8; offset];
        bytes.extend_from_slice(patch);
        let length = bytes.len();
        ctx.keyspace.insert(
            db,
            key,
            Value::Str(ember_store::CompactBytes::from_vec(bytes)),
            None,
            now_ms,
        );
        notify(ctx, notify::STRING, "setrange", key);
        ctx.out.integer(length as i64);
        return Ok(());
    };
    if patch.is_empty() {
        ctx.out.integer(bytes.len() as i64);
        return Ok(());
    }
    if offset + patch.len() > ctx.config.proto_max_bulk_len {
        return Err(errors::STRING_TOO_LONG.into());
    }
    let growth = (offset + patch.len()).saturating_sub(bytes.len());
    if crate::memory::refuses_request(ctx.config, growth as u64) {
        return Err(crate::memory::OOM_ERROR.into());
    }
    if bytes.len() < offset + patch.len() {
        bytes.resize(offset + patch.len(), 0);
    }
    bytes[offset..offset + patch.len()].copy_from_slice(patch);
    let length = bytes.len();
    ctx.keyspace.insert(
        db,
        key,
        Value::Str(ember_store::CompactBytes::from_vec(bytes)),
        expire_at_ms,
        now_ms,
    );
    notify(ctx, notify::STRING, "setrange", key);
    ctx.out.integer(length as i64);
    Ok(())
}

/// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]
pub fn lcs(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CommandResult {
    // Redis checks both keys' types before it reads the options.
    for key in &args[1..3] {
        let entry = ctx.keyspace.peek(ctx.db, key, ctx.now_ms);
        if entry.is_some_and(|entry| !entry.value.is_string()) {
            return Err("ERR The specified keys must contain string values".into());
        }
    }
    let (mut want_len, mut want_idx, mut with_match_len, mut min_match_len) =
        (false, false, false, 0u64);
    let mut index = 3;
    while index < args.len() {
        let option = args[index];
        if is(option, "IDX") {
            want_idx = true;
        } else if is(option, "LEN") {
            want_len = true;
        } else if is(option, "WITHMATCHLEN") {
            with_match_len = true;
        } else if is(option, "MINMATCHLEN") && index + 1 < args.len() {
            min_match_len = parse_integer(args[index + 1])?.max(0) as u64;
            index += 1;
        } else {
            return Err(errors::SYNTAX.into());
        }
        index += 1;
    }
    if want_len && want_idx {
        return Err("ERR If you want both the length and indexes, please just use IDX.".into());
    }
    let a = read(ctx, args[1])
        .map(|entry| entry.value.to_vec())
        .unwrap_or_default();
    let b = read(ctx, args[2])
        .map(|entry| entry.value.to_vec())
        .unwrap_or_default();
    let cells = (a.len() as u64 + 1) * (b.len() as u64 + 1);
    if cells > (ctx.config.proto_max_bulk_len / std::mem::size_of::<u32>()) as u64 {
        return Err(
            "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len".into(),
        );
    }
    let result = longest_common_subsequence(&a, &b, min_match_len);
    if want_len {
        ctx.out.integer(result.text.len() as i64);
    } else if want_idx {
        ctx.out.map_len(2);
        ctx.out.bulk(b"matches");
        ctx.out.array_len(result.matches.len());
        for found in &result.matches {
            ctx.out.array_len(if with_match_len { 3 } else { 2 });
            for (start, end) in [found.a, found.b] {
                ctx.out.array_len(2);
                ctx.out.integer(start as i64);
                ctx.out.integer(end as i64);
            }
            if with_match_len {
                ctx.out.integer((found.a.1 - found.a.0 + 1) as i64);
            }
        }
        ctx.out.bulk(b"len");
        ctx.out.integer(result.text.len() as i64);
    } else {
        ctx.out.bulk(&result.text);
    }
    Ok(())
}

/// One matching range of LCS IDX: inclusive (start, end) in each string.
struct LcsMatch {
    a: (usize, usize),
    b: (usize, usize),
}

struct LcsResult {
    text: Vec<u8>,
    /// Ranges from the end of the strings backwards, as Redis lists them.
    matches: Vec<LcsMatch>,
}

/// Dynamic-programming LCS, walked back from the end to collect contiguous ranges.
fn longest_common_subsequence(a: &[u8], b: &[u8], min_match_len: u64) -> LcsResult {
    let width = b.len() + 1;
    let mut table = vec![0u32; (a.len() + 1) * width];
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            table[i * width + j] = if a[i - 1] == b[j - 1] {
                table[(i - 1) * width + j - 1] + 1
            } else {
                table[(i - 1) * width + j].max(table[i * width + j - 1])
            };
        }
    }
    let mut text = vec![0u8; table[a.len() * width + b.len()] as usize];
    let mut remaining = text.len();
    let mut matches = Vec::new();
    let (mut i, mut j) = (a.len(), b.len());
    let mut current: Option<LcsMatch> = None;
    while i > 0 && j > 0 {
        let mut emit = false;
        if a[i - 1] == b[j - 1] {
            text[remaining - 1] = a[i - 1];
            match current.as_mut() {
                None => {
                    current = Some(LcsMatch {
                        a: (i - 1, i - 1),
                        b: (j - 1, j - 1),
                    })
                }
                Some(range) if range.a.0 == i && range.b.0 == j => {
                    range.a.0 -= 1;
                    range.b.0 -= 1;
                }
                Some(_) => emit = true,
            }
            if current
                .as_ref()
                .is_some_and(|range| range.a.0 == 0 || range.b.0 == 0)
            {
                emit = true;
            }
            remaining -= 1;
            i -= 1;
            j -= 1;
        } else {
            if table[(i - 1) * width + j] > table[i * width + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            emit = current.is_some();
        }
        if emit {
            let range = current.take().expect("emit needs a range");
            if min_match_len == 0 || (range.a.1 - range.a.0 + 1) as u64 >= min_match_len {
                matches.push(range);
            }
        }
    }
    LcsResult { text, matches }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lcs_as_redis_documents_it() {
        let result = longest_common_subsequence(b"ohmytext", b"mynewtext", 0);
        assert_eq!(result.text, b"mytext");
        let ranges: Vec<_> = result.matches.iter().map(|m| (m.a, m.b)).collect();
        assert_eq!(ranges, vec![((4, 7), (5, 8)), ((2, 3), (0, 1))]);
        let long_only = longest_common_subsequence(b"ohmytext", b"mynewtext", 4);
        assert_eq!(long_only.matches.len(), 1);
        assert_eq!(longest_common_subsequence(b"", b"abc", 0).text, b"");
    }
}
