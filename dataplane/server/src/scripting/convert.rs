//! Redis's conversion rules between replies and Lua values, both ways.
//!
//! Replies to Lua (what `redis.call` returns, pushed by [`super::rawcall`] whether the call
//! completed at once or waited for another shard), in RESP2 (the default) or RESP3 (after
//! `redis.setresp(3)`): integers are numbers, bulk strings strings, a status `{ok=...}`, an
//! error `{err=...}`, a null `false` (RESP3: `nil`), arrays tables; RESP2 maps and sets arrive
//! flattened, doubles as strings and booleans as 1/0, as a RESP2 client would see them.
//!
//! Lua to replies (what a script returns): numbers are truncated to integers, strings bulk
//! strings, `true` 1 and `false` or `nil` a null (a RESP3 client gets booleans), `{ok=}` a
//! status, `{err=}` an error, and other tables arrays that stop at their first nil.

use ember_resp::{Protocol, Reply};
use mlua::{Lua, Table, Value};

/// Deepest nesting converted; deeper tables reply with an error, as Redis bounds its own.
const DEPTH_MAX: usize = 1000;

/// `{err=message}`.
///
/// # Errors
/// When Lua cannot allocate.
pub fn error_table(lua: &Lua, message: &str) -> mlua::Result<Value> {
    let table = lua.create_table()?;
    table.raw_set("err", lua.create_string(message)?)?;
    Ok(Value::Table(table))
}

/// A script's return value as the reply its client gets (in `protocol`, the client's).
pub fn lua_to_reply(value: &Value, protocol: Protocol) -> Reply {
    to_reply(value, protocol, 0)
}

fn to_reply(value: &Value, protocol: Protocol, depth: usize) -> Reply {
    let resp3 = protocol == Protocol::Resp3;
    match value {
        Value::Nil => Reply::Null,
        Value::Boolean(true) if resp3 => Reply::Boolean(true),
        Value::Boolean(false) if resp3 => Reply::Boolean(false),
        Value::Boolean(true) => Reply::Integer(1),
        Value::Boolean(false) => Reply::Null,
        Value::Integer(value) => Reply::Integer(*value),
        Value::Number(value) => Reply::Integer(c_cast(*value)),
        Value::String(text) => Reply::Bulk(text.as_bytes().to_vec()),
        Value::Table(table) if depth < DEPTH_MAX => table_to_reply(table, protocol, depth),
        Value::Table(_) => Reply::Error("ERR reached lua stack limit".into()),
        // Functions, userdata, threads: Redis replies with a null.
        _ => Reply::Null,
    }
}

/// Redis's `(long long)` cast of a Lua number: truncation toward zero, and (as x86's
/// conversion gives for values out of range and NaN) i64::MIN where Rust would saturate.
fn c_cast(value: f64) -> i64 {
    if value.is_nan()
        || !(-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&value)
    {
        i64::MIN
    } else {
        value as i64
    }
}

fn table_to_reply(table: &Table, protocol: Protocol, depth: usize) -> Reply {
    if let Ok(Value::String(message)) = table.raw_get::<Value>("err") {
        return Reply::Error(error_text(&message.to_string_lossy()).into());
    }
    if let Ok(Value::String(status)) = table.raw_get::<Value>("ok") {
        return Reply::Simple(status.to_string_lossy().replace(['\r', '\n'], " ").into());
    }
    // Whatever the client's protocol, as Redis's: the reply is written in it (a map as a flat
    // array in RESP2, a double or a big number as a bulk string).
    if let Ok(Value::Number(value)) = table.raw_get::<Value>("double") {
        return Reply::Double(value);
    }
    if let Ok(Value::String(digits)) = table.raw_get::<Value>("big_number") {
        let mut digits = digits.as_bytes().to_vec();
        for byte in &mut digits {
            if matches!(*byte, b'\r' | b'\n') {
                *byte = b' ';
            }
        }
        return Reply::BigNumber(digits);
    }
    if let Ok(Value::Table(map)) = table.raw_get::<Value>("map") {
        let mut items = Vec::new();
        for (key, value) in map.pairs::<Value, Value>().flatten() {
            items.push(to_reply(&key, protocol, depth + 1));
            items.push(to_reply(&value, protocol, depth + 1));
        }
        return Reply::Map(items);
    }
    if let Ok(Value::Table(set)) = table.raw_get::<Value>("set") {
        let items = set
            .pairs::<Value, Value>()
            .flatten()
            .map(|(key, _)| to_reply(&key, protocol, depth + 1))
            .collect();
        return Reply::Set(items);
    }
    if let Ok(Value::Table(verbatim)) = table.raw_get::<Value>("verbatim_string") {
        if let (Ok(Value::String(_)), Ok(Value::String(text))) = (
            verbatim.raw_get::<Value>("format"),
            verbatim.raw_get::<Value>("string"),
        ) {
            return Reply::Verbatim(text.as_bytes().to_vec());
        }
    }
    let mut items = Vec::new();
    for index in 1.. {
        match table.raw_get::<Value>(index) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(item) => items.push(to_reply(&item, protocol, depth + 1)),
        }
    }
    Reply::Array(items)
}

/// An error message as Redis sends it from a script's `{err=...}`: on one line.
pub fn error_text(message: &str) -> String {
    message.replace(['\r', '\n'], " ")
}
