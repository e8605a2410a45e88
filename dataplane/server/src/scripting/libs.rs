//! The Lua libraries Redis preloads beside the standard ones, written in Rust: `cjson`
//! (encode, decode, null), `bit` (LuaBitOp), `cmsgpack` ([`super::msgpack`]) and `struct` ([`super::structlib`]). Redis links C libraries for them; none on the
//! registry builds against mlua's vendored Lua 5.1, and these behave as the C ones do on what
//! scripts use (cjson's number format `%.14g`, its escaping of `/`, empty tables as `{}`).

use mlua::{LightUserData, Lua, MultiValue, Table, Value};

/// Deepest nesting cjson encodes, as cjson's default `encode_max_depth`.
const JSON_DEPTH_MAX: usize = 1000;
/// cjson's sparse-array rule: an integer-keyed table whose largest key is over this ratio of
/// its item count (and over [`SPARSE_SAFE`]) is refused as "excessively sparse".
const SPARSE_RATIO: usize = 2;
/// Integer keys up to this are always encoded as an array, however sparse.
const SPARSE_SAFE: usize = 10;

/// Installs `cjson` and `bit` as globals of `lua`.
///
/// # Errors
/// When Lua cannot allocate.
pub fn install(lua: &Lua) -> mlua::Result<()> {
    let globals = lua.globals();
    globals.set("cjson", cjson(lua)?)?;
    globals.set("bit", bit(lua)?)?;
    globals.set("cmsgpack", super::msgpack::table(lua)?)?;
    globals.set("struct", super::structlib::table(lua)?)?;
    Ok(())
}

fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

/// cjson's settings a script may change (`encode_max_depth`, `decode_max_depth`,
/// `encode_invalid_numbers`); they last as long as the interpreter, as in Redis.
#[derive(Debug, Clone, Copy)]
struct JsonConfig {
    encode_max_depth: usize,
    decode_max_depth: usize,
    /// NaN and infinities are written (`nan`, `inf`, `-inf`) instead of refused.
    encode_invalid_numbers: bool,
}

type SharedConfig = std::rc::Rc<std::cell::Cell<JsonConfig>>;

/// A depth setter (`encode_max_depth` / `decode_max_depth`): with an argument from 1 to 2^31-1
/// it sets the depth; it answers the depth in force.
fn depth_setter(
    lua: &Lua,
    config: SharedConfig,
    field: fn(&mut JsonConfig) -> &mut usize,
) -> mlua::Result<mlua::Function> {
    lua.create_function(move |_, depth: Option<f64>| {
        let mut current = config.get();
        if let Some(depth) = depth {
            if !(1.0..=2_147_483_647.0).contains(&depth) {
                return Err(mlua::Error::RuntimeError(
                    "bad argument #1 to '?' (expected integer between 1 and 2147483647)".into(),
                ));
            }
            *field(&mut current) = depth as usize;
            config.set(current);
        }
        Ok(*field(&mut current) as f64)
    })
}

fn cjson(lua: &Lua) -> mlua::Result<Table> {
    let table = lua.create_table()?;
    let config: SharedConfig = std::rc::Rc::new(std::cell::Cell::new(JsonConfig {
        encode_max_depth: JSON_DEPTH_MAX,
        decode_max_depth: JSON_DEPTH_MAX,
        encode_invalid_numbers: false,
    }));
    let encode_config = config.clone();
    table.set(
        "encode",
        lua.create_function(move |_, value: Value| {
            let mut out = String::new();
            encode(&value, &mut out, 0, &encode_config.get()).map_err(mlua::Error::RuntimeError)?;
            Ok(out)
        })?,
    )?;
    let decode_config = config.clone();
    table.set(
        "decode",
        lua.create_function(move |lua, text: mlua::String| {
            let parsed: serde_json::Value = serde_json::from_slice(&text.as_bytes())
                .map_err(|error| mlua::Error::RuntimeError(decode_error(&error)))?;
            let limit = decode_config.get().decode_max_depth;
            if let Some(depth) = too_deep(&parsed, 1, limit) {
                return Err(mlua::Error::RuntimeError(format!(
                    "Found too many nested data structures ({depth})"
                )));
            }
            decode(lua, &parsed)
        })?,
    )?;
    table.set(
        "encode_max_depth",
        depth_setter(lua, config.clone(), |config| &mut config.encode_max_depth)?,
    )?;
    table.set(
        "decode_max_depth",
        depth_setter(lua, config.clone(), |config| &mut config.decode_max_depth)?,
    )?;
    let numbers_config = config.clone();
    table.set(
        "encode_invalid_numbers",
        lua.create_function(move |_, allow: Option<Value>| {
            let mut current = numbers_config.get();
            if let Some(allow) = allow {
                current.encode_invalid_numbers = match allow {
                    Value::Boolean(allow) => allow,
                    Value::String(text) => text.as_bytes().as_ref() == b"on",
                    _ => false,
                };
                numbers_config.set(current);
            }
            Ok(current.encode_invalid_numbers)
        })?,
    )?;
    // Ember builds each encoding in a buffer of its own; the setting is accepted and kept.
    table.set(
        "encode_keep_buffer",
        lua.create_function(|_, keep: Option<Value>| {
            Ok(!matches!(keep, Some(Value::Boolean(false))))
        })?,
    )?;
    table.set("null", null())?;
    Ok(table)
}

/// The depth of the first container nested deeper than `limit` in `value` (which is at
/// `depth`), if any.
fn too_deep(value: &serde_json::Value, depth: usize, limit: usize) -> Option<usize> {
    let children: Box<dyn Iterator<Item = &serde_json::Value>> = match value {
        serde_json::Value::Array(items) => Box::new(items.iter()),
        serde_json::Value::Object(fields) => Box::new(fields.values()),
        _ => return None,
    };
    if depth > limit {
        return Some(depth);
    }
    children
        .filter(|child| child.is_array() || child.is_object())
        .find_map(|child| too_deep(child, depth + 1, limit))
}

fn decode_error(error: &serde_json::Error) -> String {
    format!(
        "Expected value but found invalid token at character {}",
        error.column().max(1)
    )
}

fn decode(lua: &Lua, value: &serde_json::Value) -> mlua::Result<Value> {
    Ok(match value {
        serde_json::Value::Null => null(),
        serde_json::Value::Bool(value) => Value::Boolean(*value),
        serde_json::Value::Number(number) => Value::Number(number.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(text) => Value::String(lua.create_string(text)?),
        serde_json::Value::Array(items) => {
            let table = lua.create_table_with_capacity(items.len(), 0)?;
            for (index, item) in items.iter().enumerate() {
                table.raw_set(index + 1, decode(lua, item)?)?;
            }
            Value::Table(table)
        }
        serde_json::Value::Object(fields) => {
            let table = lua.create_table_with_capacity(0, fields.len())?;
            for (key, item) in fields {
                table.raw_set(key.as_str(), decode(lua, item)?)?;
            }
            Value::Table(table)
        }
    })
}

/// A number as cjson writes it: `%.14g`.
pub fn format_number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        return format!("{}", value as i64);
    }
    format_g14(value)
}

/// C's `%.14g`.
pub fn format_g14(value: f64) -> String {
    if value == 0.0 {
        return "0".to_owned();
    }
    let exponent = value.abs().log10().floor() as i32;
    let scientific = format!("{value:.13e}");
    let (mantissa, exp) = scientific.split_once('e').expect("exponent form");
    let exp: i32 = exp.parse().unwrap_or(exponent);
    if !(-4..14).contains(&exp) {
        let mantissa = trim_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    let decimals = (13 - exp).max(0) as usize;
    trim_zeros(&format!("{value:.decimals$}")).to_owned()
}

fn trim_zeros(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}

fn encode(
    value: &Value,
    out: &mut String,
    depth: usize,
    config: &JsonConfig,
) -> Result<(), String> {
    match value {
        Value::Nil => out.push_str("null"),
        Value::LightUserData(data) if data.0.is_null() => out.push_str("null"),
        Value::Boolean(value) => out.push_str(if *value { "true" } else { "false" }),
        Value::Integer(value) => out.push_str(&value.to_string()),
        Value::Number(value) => {
            if !value.is_finite() {
                if !config.encode_invalid_numbers {
                    return Err("Cannot serialise number: must not be NaN or Inf".into());
                }
                out.push_str(if value.is_nan() {
                    "nan"
                } else if *value > 0.0 {
                    "inf"
                } else {
                    "-inf"
                });
                return Ok(());
            }
            out.push_str(&format_number(*value));
        }
        Value::String(text) => encode_string(&text.as_bytes(), out),
        Value::Table(table) => {
            if depth >= config.encode_max_depth {
                return Err(format!(
                    "Cannot serialise, excessive nesting ({})",
                    depth + 1
                ));
            }
            encode_table(table, out, depth + 1, config)?;
        }
        other => {
            return Err(format!(
                "Cannot serialise {}: type not supported",
                other.type_name()
            ))
        }
    }
    Ok(())
}

fn encode_string(bytes: &[u8], out: &mut String) {
    out.push('"');
    let text = String::from_utf8_lossy(bytes);
    for character in text.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The array length of `table` when every key is a positive integer (cjson's test), `None`
/// when it is an object.
fn array_len(table: &Table) -> Result<Option<usize>, String> {
    let mut max = 0usize;
    let mut count = 0usize;
    for pair in table.clone().pairs::<Value, Value>() {
        let (key, _) = pair.map_err(|e| e.to_string())?;
        let index = match key {
            Value::Integer(i) if i >= 1 => i as usize,
            Value::Number(n) if n >= 1.0 && n.fract() == 0.0 => n as usize,
            _ => return Ok(None),
        };
        max = max.max(index);
        count += 1;
    }
    if count == 0 {
        return Ok(None); // cjson writes an empty table as an object.
    }
    if max > SPARSE_SAFE && max > count * SPARSE_RATIO {
        return Err("Cannot serialise table: excessively sparse array".into());
    }
    Ok(Some(max))
}

fn encode_table(
    table: &Table,
    out: &mut String,
    depth: usize,
    config: &JsonConfig,
) -> Result<(), String> {
    if let Some(len) = array_len(table)? {
        out.push('[');
        for index in 1..=len {
            if index > 1 {
                out.push(',');
            }
            let item: Value = table.raw_get(index).map_err(|e| e.to_string())?;
            encode(&item, out, depth, config)?;
        }
        out.push(']');
        return Ok(());
    }
    out.push('{');
    let mut first = true;
    for pair in table.clone().pairs::<Value, Value>() {
        let (key, item) = pair.map_err(|e| e.to_string())?;
        if !first {
            out.push(',');
        }
        first = false;
        match &key {
            Value::String(text) => encode_string(&text.as_bytes(), out),
            Value::Integer(_) | Value::Number(_) => {
                let mut number = String::new();
                encode(&key, &mut number, depth, config)?;
                encode_string(number.as_bytes(), out);
            }
            _ => return Err("Cannot serialise table: table key must be a number or string".into()),
        }
        out.push(':');
        encode(&item, out, depth, config)?;
    }
    out.push('}');
    Ok(())
}

/// LuaBitOp's argument normalisation: the number modulo 2^32, as a signed 32-bit integer.
fn to_bit(value: f64) -> i32 {
    let wrapped = value.rem_euclid(4_294_967_296.0).round_ties_even();
    (wrapped as u64 as u32) as i32
}

fn numbers(args: &MultiValue) -> mlua::Result<Vec<i32>> {
    args.iter()
        .map(|value| match value {
            Value::Integer(i) => Ok(to_bit(*i as f64)),
            Value::Number(n) => Ok(to_bit(*n)),
            Value::String(s) => s
                .to_str()
                .ok()
                .and_then(|s| s.trim().parse::<f64>().ok())
                .map(to_bit)
                .ok_or_else(|| mlua::Error::RuntimeError("bad argument (number expected)".into())),
            other => Err(mlua::Error::RuntimeError(format!(
                "bad argument (number expected, got {})",
                other.type_name()
            ))),
        })
        .collect()
}

fn bit(lua: &Lua) -> mlua::Result<Table> {
    let table = lua.create_table()?;
    let fold = |lua: &Lua, name: &str, op: fn(i32, i32) -> i32| -> mlua::Result<()> {
        let function = lua.create_function(move |_, args: MultiValue| {
            let values = numbers(&args)?;
            let first = *values.first().ok_or_else(|| {
                mlua::Error::RuntimeError("bad argument #1 (number expected, got no value)".into())
            })?;
            Ok(f64::from(
                values[1..].iter().fold(first, |acc, v| op(acc, *v)),
            ))
        })?;
        table.set(name, function)
    };
    fold(lua, "band", |a, b| a & b)?;
    fold(lua, "bor", |a, b| a | b)?;
    fold(lua, "bxor", |a, b| a ^ b)?;
    fold(lua, "tobit", |a, _| a)?;
    let shift = |lua: &Lua, name: &str, op: fn(i32, u32) -> i32| -> mlua::Result<()> {
        let function = lua.create_function(move |_, args: MultiValue| {
            let values = numbers(&args)?;
            if values.len() < 2 {
                return Err(mlua::Error::RuntimeError(
                    "bad argument #2 (number expected, got no value)".into(),
                ));
            }
            Ok(f64::from(op(values[0], (values[1] & 31) as u32)))
        })?;
        table.set(name, function)
    };
    shift(lua, "lshift", |a, n| ((a as u32) << n) as i32)?;
    shift(lua, "rshift", |a, n| ((a as u32) >> n) as i32)?;
    shift(lua, "arshift", |a, n| a >> n)?;
    shift(lua, "rol", |a, n| (a as u32).rotate_left(n) as i32)?;
    shift(lua, "ror", |a, n| (a as u32).rotate_right(n) as i32)?;
    table.set(
        "bnot",
        lua.create_function(|_, args: MultiValue| {
            let values = numbers(&args)?;
            Ok(f64::from(!values.first().copied().unwrap_or(0)))
        })?,
    )?;
    table.set(
        "bswap",
        lua.create_function(|_, args: MultiValue| {
            let values = numbers(&args)?;
            Ok(f64::from(values.first().copied().unwrap_or(0).swap_bytes()))
        })?,
    )?;
    table.set(
        "tohex",
        lua.create_function(|_, args: MultiValue| {
            let values = numbers(&args)?;
            let value = values.first().copied().unwrap_or(0) as u32;
            let digits = values.get(1).copied().unwrap_or(8);
            let upper = digits < 0;
            let count = digits.unsigned_abs().min(8) as usize;
            let masked = if count == 8 {
                value
            } else {
                value & ((1u32 << (count * 4)) - 1)
            };
            let text = if upper {
                format!("{masked:0count$X}")
            } else {
                format!("{masked:0count$x}")
            };
            Ok(text)
        })?,
    )?;
    Ok(table)
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_as_cjson_writes_them() {
        let cases: &[(&str, f64, &str)] = &[
            ("integer", 1.0, "1"),
            ("negative", -42.0, "-42"),
            ("fraction", 1.5, "1.5"),
            ("third", 1.0 / 3.0, "0.33333333333333"),
            ("large", 1e20, "1e+20"),
            ("small", 1e-7, "1e-07"),
        ];
        for (name, value, expected) in cases {
            assert_eq!(super::format_number(*value), *expected, "{name}");
        }
    }

    #[test]
    fn bit_normalisation() {
        let cases: &[(&str, f64, i32)] = &[
            ("small", 7.0, 7),
            ("wraps", 4_294_967_295.0, -1),
            ("negative", -1.0, -1),
            ("past 2^32", 4_294_967_296.0 + 5.0, 5),
        ];
        for (name, value, expected) in cases {
            assert_eq!(super::to_bit(*value), *expected, "{name}");
        }
    }
}
