//! Lua 5.1's `tonumber`, as a C function of Ember's with a fast path for plain decimal
//! integers, the common case in scripts (`tonumber(ARGV[1])`, `tonumber(redis.call('GET',
//! k))`): Lua's own converts every string through the C library's `strtod`, which costs more
//! than the rest of the call. Every other input takes Lua 5.1.5's own steps (`luaB_tonumber`
//! and `luaO_str2d`), so the answers and the errors are the same.

use std::ffi::c_int;

use mlua::{ffi, Function, Lua};

/// The most digits the fast path reads: any such integer is exact in a double, so the answer
/// is the one `strtod` gives.
const FAST_DIGITS: usize = 15;

/// Creates the function (the sandbox makes it the global `tonumber`).
///
/// # Errors
/// When Lua cannot allocate.
pub fn function(lua: &Lua) -> mlua::Result<Function> {
    // SAFETY: `tonumber` follows the C function protocol.
    unsafe { lua.create_c_function(tonumber) }
}

/// A plain decimal integer (an optional `-`, then 1 to [`FAST_DIGITS`] digits and nothing
/// else) as the double `strtod` reads it; `None` for anything else.
fn plain_integer(text: &[u8]) -> Option<f64> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > FAST_DIGITS {
        return None;
    }
    let mut value: u64 = 0;
    for &byte in digits {
        if !byte.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u64::from(byte - b'0');
    }
    let value = value as f64;
    // `-0` reads as negative zero, as strtod reads it.
    Some(if negative { -value } else { value })
}

/// C's `isspace` in the C locale (Lua's scripts run in it).
fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// `luaB_tonumber` of Lua 5.1.5. Lua raises its argument errors with `longjmp`: nothing here
/// has a destructor.
unsafe extern "C-unwind" fn tonumber(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: `l` is the calling coroutine, inside this C call; strings Lua answers are
    // NUL-terminated and live while they are on the stack.
    unsafe {
        let base = ffi::luaL_optinteger(l, 2, 10) as c_int;
        if base == 10 {
            ffi::luaL_checkany(l, 1);
            if ffi::lua_type(l, 1) == ffi::LUA_TSTRING {
                let mut len = 0usize;
                let data = ffi::lua_tolstring(l, 1, &mut len) as *const u8;
                if let Some(value) = plain_integer(std::slice::from_raw_parts(data, len)) {
                    ffi::lua_pushnumber(l, value);
                    return 1;
                }
            }
            if ffi::lua_isnumber(l, 1) != 0 {
                ffi::lua_pushnumber(l, ffi::lua_tonumber(l, 1));
                return 1;
            }
        } else {
            if !(2..=36).contains(&base) {
                ffi::luaL_argerror(l, 2, c"base out of range".as_ptr());
            }
            let start = ffi::luaL_checklstring(l, 1, std::ptr::null_mut());
            let mut end: *mut std::ffi::c_char = std::ptr::null_mut();
            let value = libc::strtoul(start, &mut end, base);
            if !std::ptr::eq(start, end) {
                let mut end = end as *const u8;
                while is_space(*end) {
                    end = end.add(1);
                }
                if *end == 0 {
                    ffi::lua_pushnumber(l, value as ffi::lua_Number);
                    return 1;
                }
            }
        }
        ffi::lua_pushnil(l);
        1
    }
}

#[cfg(test)]
mod tests {
    use super::plain_integer;

    #[test]
    fn plain_integers_read_as_strtod_reads_them() {
        assert_eq!(plain_integer(b"0"), Some(0.0));
        assert_eq!(plain_integer(b"1000000000"), Some(1e9));
        assert_eq!(plain_integer(b"-42"), Some(-42.0));
        assert!(plain_integer(b"-0").unwrap().is_sign_negative());
        assert_eq!(plain_integer(b"007"), Some(7.0));
        assert_eq!(
            plain_integer(b"999999999999999"),
            Some(999_999_999_999_999.0)
        );
        // Everything else takes Lua's own path.
        for text in [
            &b""[..],
            b"-",
            b"+1",
            b" 1",
            b"1 ",
            b"1.5",
            b"1e3",
            b"0x10",
            b"1000000000000000",
            b"12a",
        ] {
            assert_eq!(
                plain_integer(text),
                None,
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
    }
}
