//! `cmsgpack.pack` and `cmsgpack.unpack`, as Redis's lua-cmsgpack writes and reads MessagePack
//! (job queues such as BullMQ pass their options through it): integers in the smallest form,
//! floats as float32 when exact, strings as fixstr/str8/16/32, tables as arrays when their keys
//! are exactly 1..n and as maps otherwise.

use mlua::{Lua, MultiValue, Table, Value};

/// Deepest nesting packed; deeper tables pack as nil, as lua-cmsgpack does.
const NESTING_MAX: usize = 16;

/// The `cmsgpack` table.
///
/// # Errors
/// When Lua cannot allocate.
pub fn table(lua: &Lua) -> mlua::Result<Table> {
    let table = lua.create_table()?;
    table.set(
        "pack",
        lua.create_function(|lua, values: MultiValue| {
            if values.is_empty() {
                return Err(mlua::Error::RuntimeError(
                    "MessagePack pack needs input.".into(),
                ));
            }
            let mut out = Vec::new();
            for value in values.iter() {
                pack(value, &mut out, 0);
            }
            lua.create_string(&out)
        })?,
    )?;
    table.set(
        "unpack",
        lua.create_function(|lua, data: mlua::String| unpack_full(lua, &data, 0, 0))?,
    )?;
    table.set(
        "unpack_one",
        lua.create_function(|lua, (data, offset): (mlua::String, Option<i64>)| {
            unpack_full(lua, &data, 1, offset.unwrap_or(0))
        })?,
    )?;
    table.set(
        "unpack_limit",
        lua.create_function(
            |lua, (data, limit, offset): (mlua::String, i64, Option<i64>)| {
                unpack_full(lua, &data, limit, offset.unwrap_or(0))
            },
        )?,
    )?;
    Ok(table)
}

fn pack(value: &Value, out: &mut Vec<u8>, depth: usize) {
    match value {
        Value::Boolean(true) => out.push(0xc3),
        Value::Boolean(false) => out.push(0xc2),
        Value::Integer(value) => pack_integer(*value, out),
        Value::Number(value) => {
            if value.fract() == 0.0 && value.abs() < 9.2e18 {
                pack_integer(*value as i64, out);
            } else if f64::from(*value as f32) == *value {
                out.push(0xca);
                out.extend_from_slice(&(*value as f32).to_be_bytes());
            } else {
                out.push(0xcb);
                out.extend_from_slice(&value.to_be_bytes());
            }
        }
        Value::String(text) => pack_bytes(&text.as_bytes(), out),
        Value::Table(table) if depth < NESTING_MAX => pack_table(table, out, depth + 1),
        _ => out.push(0xc0),
    }
}

fn pack_integer(value: i64, out: &mut Vec<u8>) {
    if value >= 0 {
        match value {
            0..=127 => out.push(value as u8),
            128..=0xff => out.extend_from_slice(&[0xcc, value as u8]),
            0x100..=0xffff => {
                out.push(0xcd);
                out.extend_from_slice(&(value as u16).to_be_bytes());
            }
            0x1_0000..=0xffff_ffff => {
                out.push(0xce);
                out.extend_from_slice(&(value as u32).to_be_bytes());
            }
            _ => {
                out.push(0xcf);
                out.extend_from_slice(&(value as u64).to_be_bytes());
            }
        }
    } else if value >= -32 {
        out.push(value as i8 as u8);
    } else if value >= -128 {
        out.extend_from_slice(&[0xd0, value as i8 as u8]);
    } else if value >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(value as i16).to_be_bytes());
    } else if value >= -2_147_483_648 {
        out.push(0xd2);
        out.extend_from_slice(&(value as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&value.to_be_bytes());
    }
}

fn pack_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    let len = bytes.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0xd9, len as u8]);
    } else if len <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(bytes);
}

/// The length when `table`'s keys are exactly 1..n (lua-cmsgpack's array test).
fn array_len(table: &Table) -> Option<usize> {
    let mut count = 0usize;
    let mut max = 0usize;
    for pair in table.clone().pairs::<Value, Value>() {
        let (key, _) = pair.ok()?;
        let index = match key {
            Value::Integer(i) if i >= 1 => i as usize,
            Value::Number(n) if n >= 1.0 && n.fract() == 0.0 => n as usize,
            _ => return None,
        };
        count += 1;
        max = max.max(index);
    }
    (count == max).then_some(count)
}

fn pack_header(len: usize, fix: u8, sixteen: u8, thirty_two: u8, out: &mut Vec<u8>) {
    if len < 16 {
        out.push(fix | len as u8);
    } else if len <= 0xffff {
        out.push(sixteen);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(thirty_two);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

fn pack_table(table: &Table, out: &mut Vec<u8>, depth: usize) {
    if let Some(len) = array_len(table) {
        pack_header(len, 0x90, 0xdc, 0xdd, out);
        for index in 1..=len {
            let item: Value = table.raw_get(index).unwrap_or(Value::Nil);
            pack(&item, out, depth);
        }
        return;
    }
    // Two passes, each pair dropped as soon as it is packed: a big table's values never sit
    // in Lua's reference stack all at once.
    let len = table.clone().pairs::<Value, Value>().flatten().count();
    pack_header(len, 0x80, 0xde, 0xdf, out);
    for (key, item) in table.clone().pairs::<Value, Value>().flatten() {
        pack(&key, out, depth);
        pack(&item, out, depth);
    }
}

/// lua-cmsgpack's `unpack_full`: up to `limit` objects (0: all) from `offset`. With a limit
/// or an offset the objects follow the offset where decoding stopped (-1 at the end).
fn unpack_full(
    lua: &Lua,
    data: &mlua::String,
    limit: i64,
    offset: i64,
) -> mlua::Result<MultiValue> {
    let bytes = data.as_bytes();
    if offset < 0 || limit < 0 {
        return Err(mlua::Error::RuntimeError(format!(
            "Invalid request to unpack with offset of {offset} and limit of {limit}."
        )));
    }
    if offset as usize > bytes.len() {
        return Err(mlua::Error::RuntimeError(format!(
            "Start offset {offset} greater than input length {}.",
            bytes.len()
        )));
    }
    let decode_all = limit == 0 && offset == 0;
    let mut cursor = offset as usize;
    let mut values = Vec::new();
    while cursor < bytes.len() && (decode_all || (values.len() as i64) < limit) {
        values.push(unpack(lua, &bytes, &mut cursor, 0)?);
    }
    if !decode_all {
        let next = if cursor >= bytes.len() {
            -1
        } else {
            cursor as i64
        };
        values.insert(0, Value::Integer(next));
    }
    Ok(MultiValue::from_iter(values))
}

fn truncated() -> mlua::Error {
    mlua::Error::RuntimeError("Missing bytes in input.".into())
}

fn take<'a>(bytes: &'a [u8], cursor: &mut usize, len: usize) -> mlua::Result<&'a [u8]> {
    let end = cursor.checked_add(len).ok_or_else(truncated)?;
    let slice = bytes.get(*cursor..end).ok_or_else(truncated)?;
    *cursor = end;
    Ok(slice)
}

fn be(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

fn unpack(lua: &Lua, bytes: &[u8], cursor: &mut usize, depth: usize) -> mlua::Result<Value> {
    if depth > 1000 {
        return Err(mlua::Error::RuntimeError(
            "MessagePack nesting too deep".into(),
        ));
    }
    let tag = take(bytes, cursor, 1)?[0];
    let number = |n: f64| Ok(Value::Number(n));
    match tag {
        0x00..=0x7f => number(f64::from(tag)),
        0xe0..=0xff => number(f64::from(tag as i8)),
        0xc0 => Ok(Value::Nil),
        0xc2 => Ok(Value::Boolean(false)),
        0xc3 => Ok(Value::Boolean(true)),
        0xcc => number(be(take(bytes, cursor, 1)?) as f64),
        0xcd => number(be(take(bytes, cursor, 2)?) as f64),
        0xce => number(be(take(bytes, cursor, 4)?) as f64),
        0xcf => number(be(take(bytes, cursor, 8)?) as f64),
        0xd0 => number(f64::from(take(bytes, cursor, 1)?[0] as i8)),
        0xd1 => number(f64::from(be(take(bytes, cursor, 2)?) as u16 as i16)),
        0xd2 => number(f64::from(be(take(bytes, cursor, 4)?) as u32 as i32)),
        0xd3 => number(be(take(bytes, cursor, 8)?) as i64 as f64),
        0xca => number(f64::from(
            f32::from_bits(be(take(bytes, cursor, 4)?) as u32),
        )),
        0xcb => number(f64::from_bits(be(take(bytes, cursor, 8)?))),
        0xa0..=0xbf => string(lua, bytes, cursor, usize::from(tag & 0x1f)),
        0xd9 | 0xc4 => {
            let len = be(take(bytes, cursor, 1)?) as usize;
            string(lua, bytes, cursor, len)
        }
        0xda | 0xc5 => {
            let len = be(take(bytes, cursor, 2)?) as usize;
            string(lua, bytes, cursor, len)
        }
        0xdb | 0xc6 => {
            let len = be(take(bytes, cursor, 4)?) as usize;
            string(lua, bytes, cursor, len)
        }
        0x90..=0x9f => array(lua, bytes, cursor, usize::from(tag & 0x0f), depth),
        0xdc => {
            let len = be(take(bytes, cursor, 2)?) as usize;
            array(lua, bytes, cursor, len, depth)
        }
        0xdd => {
            let len = be(take(bytes, cursor, 4)?) as usize;
            array(lua, bytes, cursor, len, depth)
        }
        0x80..=0x8f => map(lua, bytes, cursor, usize::from(tag & 0x0f), depth),
        0xde => {
            let len = be(take(bytes, cursor, 2)?) as usize;
            map(lua, bytes, cursor, len, depth)
        }
        0xdf => {
            let len = be(take(bytes, cursor, 4)?) as usize;
            map(lua, bytes, cursor, len, depth)
        }
        _ => Err(mlua::Error::RuntimeError(
            "Bad data format in input.".into(),
        )),
    }
}

fn string(lua: &Lua, bytes: &[u8], cursor: &mut usize, len: usize) -> mlua::Result<Value> {
    Ok(Value::String(lua.create_string(take(bytes, cursor, len)?)?))
}

fn array(
    lua: &Lua,
    bytes: &[u8],
    cursor: &mut usize,
    len: usize,
    depth: usize,
) -> mlua::Result<Value> {
    // Every item takes at least a byte: a length past the input is refused before allocating.
    if len > bytes.len() - *cursor {
        return Err(truncated());
    }
    let table = lua.create_table_with_capacity(len, 0)?;
    for index in 1..=len {
        table.raw_set(index, unpack(lua, bytes, cursor, depth + 1)?)?;
    }
    Ok(Value::Table(table))
}

fn map(
    lua: &Lua,
    bytes: &[u8],
    cursor: &mut usize,
    len: usize,
    depth: usize,
) -> mlua::Result<Value> {
    if len > bytes.len() - *cursor {
        return Err(truncated());
    }
    let table = lua.create_table_with_capacity(0, len)?;
    for _ in 0..len {
        let key = unpack(lua, bytes, cursor, depth + 1)?;
        let value = unpack(lua, bytes, cursor, depth + 1)?;
        if !matches!(key, Value::Nil) {
            table.raw_set(key, value)?;
        }
    }
    Ok(Value::Table(table))
}
