//! `struct.pack`, `struct.unpack` and `struct.size` (Roberto Ierusalimschy's struct library, as
//! Redis ships it) for the formats scripts use: `<` `>` `=` `!` endianness, `x` padding, `b B h
//! H l L T` integers, `i I` with an optional size, `f d` floats, `s` zero-terminated strings
//! and `cN` fixed strings (`c0` in unpack: the length is the previous value). Alignment (`!n`)
//! is accepted and ignored: scripts pack wire formats, not C structs.

use mlua::{Lua, MultiValue, Table, Value};

/// Largest integer size in bytes (Lua numbers are doubles; struct allows up to this).
const INTEGER_SIZE_MAX: usize = 8;

enum Item {
    Pad,
    Integer { size: usize, signed: bool },
    Float,
    Double,
    ZeroTerminated,
    Chars(usize),
}

/// Parses `format` into items and the little-endian flag changes between them.
fn parse(format: &str) -> mlua::Result<Vec<(bool, Item)>> {
    let bytes = format.as_bytes();
    let mut little = cfg!(target_endian = "little");
    let mut items = Vec::new();
    let mut position = 0;
    while position < bytes.len() {
        let code = bytes[position];
        position += 1;
        let digits_start = position;
        while position < bytes.len() && bytes[position].is_ascii_digit() {
            position += 1;
        }
        let size: Option<usize> = format[digits_start..position].parse().ok();
        let item = match code {
            b'<' => {
                little = true;
                continue;
            }
            b'>' => {
                little = false;
                continue;
            }
            b'=' => {
                little = cfg!(target_endian = "little");
                continue;
            }
            b'!' | b' ' => continue,
            b'x' => Item::Pad,
            b'b' | b'B' => Item::Integer {
                size: 1,
                signed: code == b'b',
            },
            b'h' | b'H' => Item::Integer {
                size: 2,
                signed: code == b'h',
            },
            b'l' | b'L' | b'T' => Item::Integer {
                size: 8,
                signed: code == b'l',
            },
            b'i' | b'I' => {
                let size = size.unwrap_or(4);
                if size == 0 || size > INTEGER_SIZE_MAX {
                    return Err(mlua::Error::RuntimeError(format!(
                        "integral size {size} is larger than limit of {INTEGER_SIZE_MAX}"
                    )));
                }
                Item::Integer {
                    size,
                    signed: code == b'i',
                }
            }
            b'f' => Item::Float,
            b'd' => Item::Double,
            b's' => Item::ZeroTerminated,
            b'c' => Item::Chars(size.unwrap_or(1)),
            other => {
                return Err(mlua::Error::RuntimeError(format!(
                    "invalid format option '{}'",
                    other as char
                )))
            }
        };
        items.push((little, item));
    }
    Ok(items)
}

fn number(value: Option<&Value>) -> mlua::Result<f64> {
    match value {
        Some(Value::Integer(i)) => Ok(*i as f64),
        Some(Value::Number(n)) => Ok(*n),
        Some(Value::String(s)) => s
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| mlua::Error::RuntimeError("bad argument (number expected)".into())),
        _ => Err(mlua::Error::RuntimeError(
            "bad argument (number expected)".into(),
        )),
    }
}

fn put(out: &mut Vec<u8>, bytes: &[u8], little: bool) {
    if little {
        out.extend(bytes.iter());
    } else {
        out.extend(bytes.iter().rev());
    }
}

fn pack(lua: &Lua, args: MultiValue) -> mlua::Result<mlua::String> {
    let mut args = args.into_iter();
    let format = match args.next() {
        Some(Value::String(format)) => format.to_string_lossy(),
        _ => {
            return Err(mlua::Error::RuntimeError(
                "bad argument #1 to 'pack' (string expected)".into(),
            ))
        }
    };
    let values: Vec<Value> = args.collect();
    let mut next = values.iter();
    let mut out = Vec::new();
    for (little, item) in parse(&format)? {
        match item {
            Item::Pad => out.push(0),
            Item::Integer { size, .. } => {
                let value = number(next.next())? as i64;
                put(&mut out, &value.to_le_bytes()[..size], little);
            }
            Item::Float => {
                let value = number(next.next())? as f32;
                put(&mut out, &value.to_le_bytes(), little);
            }
            Item::Double => put(&mut out, &number(next.next())?.to_le_bytes(), little),
            Item::ZeroTerminated | Item::Chars(_) => {
                let Some(Value::String(text)) = next.next() else {
                    return Err(mlua::Error::RuntimeError(
                        "bad argument (string expected)".into(),
                    ));
                };
                let text = text.as_bytes();
                match item {
                    Item::ZeroTerminated => {
                        out.extend_from_slice(&text);
                        out.push(0);
                    }
                    Item::Chars(0) => out.extend_from_slice(&text),
                    Item::Chars(len) => {
                        if text.len() < len {
                            return Err(mlua::Error::RuntimeError("string too short".into()));
                        }
                        out.extend_from_slice(&text[..len]);
                    }
                    _ => unreachable!("strings only"),
                }
            }
        }
    }
    lua.create_string(&out)
}

fn unpack(
    lua: &Lua,
    (format, data, start): (String, mlua::String, Option<usize>),
) -> mlua::Result<MultiValue> {
    let data = data.as_bytes();
    let mut position = start.unwrap_or(1).saturating_sub(1);
    let mut values: Vec<Value> = Vec::new();
    let short = || mlua::Error::RuntimeError("data string too short".into());
    for (little, item) in parse(&format)? {
        match item {
            Item::Pad => position += 1,
            Item::Integer { size, signed } => {
                let bytes = data.get(position..position + size).ok_or_else(short)?;
                let mut raw = [0u8; 8];
                if little {
                    raw[..size].copy_from_slice(bytes);
                } else {
                    for (slot, byte) in raw[..size].iter_mut().zip(bytes.iter().rev()) {
                        *slot = *byte;
                    }
                }
                let unsigned = u64::from_le_bytes(raw);
                let value = if signed && size < 8 && unsigned >> (size * 8 - 1) & 1 == 1 {
                    (unsigned | (u64::MAX << (size * 8))) as i64 as f64
                } else if signed {
                    unsigned as i64 as f64
                } else {
                    unsigned as f64
                };
                values.push(Value::Number(value));
                position += size;
            }
            Item::Float | Item::Double => {
                let size = if matches!(item, Item::Float) { 4 } else { 8 };
                let bytes = data.get(position..position + size).ok_or_else(short)?;
                let mut raw = [0u8; 8];
                if little {
                    raw[..size].copy_from_slice(bytes);
                } else {
                    for (slot, byte) in raw[..size].iter_mut().zip(bytes.iter().rev()) {
                        *slot = *byte;
                    }
                }
                let value = if size == 4 {
                    f64::from(f32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]))
                } else {
                    f64::from_le_bytes(raw)
                };
                values.push(Value::Number(value));
                position += size;
            }
            Item::ZeroTerminated => {
                let rest = data.get(position..).ok_or_else(short)?;
                let end = rest
                    .iter()
                    .position(|&b| b == 0)
                    .ok_or_else(|| mlua::Error::RuntimeError("unfinished string in data".into()))?;
                values.push(Value::String(lua.create_string(&rest[..end])?));
                position += end + 1;
            }
            Item::Chars(len) => {
                let len = if len == 0 {
                    // c0: the length is the value unpacked just before.
                    match values.pop() {
                        Some(Value::Number(n)) => n as usize,
                        _ => {
                            return Err(mlua::Error::RuntimeError(
                                "format 'c0' needs a previous size".into(),
                            ))
                        }
                    }
                } else {
                    len
                };
                let bytes = data.get(position..position + len).ok_or_else(short)?;
                values.push(Value::String(lua.create_string(bytes)?));
                position += len;
            }
        }
    }
    values.push(Value::Number((position + 1) as f64));
    Ok(MultiValue::from_iter(values))
}

fn size(format: &str) -> mlua::Result<usize> {
    let mut total = 0;
    for (_, item) in parse(format)? {
        total += match item {
            Item::Pad => 1,
            Item::Integer { size, .. } => size,
            Item::Float => 4,
            Item::Double => 8,
            Item::Chars(len) => len,
            Item::ZeroTerminated => {
                return Err(mlua::Error::RuntimeError(
                    "options 'c0' - 's' have undefined sizes".into(),
                ))
            }
        };
    }
    Ok(total)
}

/// The `struct` table.
///
/// # Errors
/// When Lua cannot allocate.
pub fn table(lua: &Lua) -> mlua::Result<Table> {
    let table = lua.create_table()?;
    table.set("pack", lua.create_function(pack)?)?;
    table.set("unpack", lua.create_function(unpack)?)?;
    table.set(
        "size",
        lua.create_function(|_, format: String| size(&format))?,
    )?;
    Ok(table)
}
