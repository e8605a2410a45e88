//! Base-library functions the sandbox must replace, written as Lua C functions so that they
//! behave as Redis's do from a script's point of view.
//!
//! - `error`: Redis's is the C function of Lua's base library. A script's `return error("x")`
//!   then keeps the script's frame (Lua 5.1 does not tail-call C functions), so the message
//!   names the script's line: `user_script:1: x`. A Lua wrapper loses that frame. Ember's also
//!   notes a table it raises (`redis.error_reply(...)`), so the reply can tell the error apart,
//!   and leaves the sandbox's own Lua frames (its `pcall`) out when it counts `level`, so
//!   `pcall(error, "x", 2)` names the script's line as Redis's does, not the sandbox's.
//! - `rawget`, `next` and `pairs`: the sandbox's read-only tables (`_G` and the libraries) are
//!   empty proxies whose `__index` is the real table; these see through a proxy to the table
//!   behind it, as Redis's (whose read-only tables are the tables themselves) do:
//!   `rawget(_G, "tonumber")` is the function, `pairs(_G)` walks the globals.
//!
//! Lua raises errors with `longjmp`: these functions hold no Rust value with a destructor.

use std::ffi::{c_int, CStr};

use mlua::{ffi, Function, Lua, Table};

/// `error(message [, level])` with `note` (called with a table raised as the error) as its
/// upvalue.
///
/// # Errors
/// When Lua cannot allocate.
pub fn error_function(lua: &Lua, note: Function) -> mlua::Result<Function> {
    // SAFETY: `note` is on the stack when the closure runs; the closure pops it as upvalue.
    unsafe { lua.exec_raw::<Function>(note, |l| ffi::lua_pushcclosure(l, error, 1)) }
}

/// `rawget`, `next` and `pairs` over `proxies` (a weak-keyed table: proxy -> real table).
///
/// # Errors
/// When Lua cannot allocate.
pub fn through_proxies(lua: &Lua, proxies: &Table) -> mlua::Result<(Function, Function, Function)> {
    // SAFETY: each closure takes `proxies` (and `next`) from the stack as upvalues.
    unsafe {
        let rawget = lua.exec_raw::<Function>(proxies, |l| ffi::lua_pushcclosure(l, rawget, 1))?;
        let next = lua.exec_raw::<Function>(proxies, |l| ffi::lua_pushcclosure(l, next, 1))?;
        let pairs =
            lua.exec_raw::<Function>((proxies, &next), |l| ffi::lua_pushcclosure(l, pairs, 2))?;
        Ok((rawget, next, pairs))
    }
}

/// Lua's `luaB_error`, noting a table first.
unsafe extern "C-unwind" fn error(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: `l` is the calling coroutine inside this C call; every index read exists.
    unsafe {
        let level = ffi::luaL_optinteger(l, 2, 1) as c_int;
        ffi::lua_settop(l, 1);
        if ffi::lua_type(l, 1) == ffi::LUA_TTABLE {
            ffi::lua_pushvalue(l, ffi::lua_upvalueindex(1));
            ffi::lua_pushvalue(l, 1);
            ffi::lua_call(l, 1, 0);
        }
        if ffi::lua_type(l, 1) == ffi::LUA_TSTRING && level > 0 {
            push_where(l, level);
            ffi::lua_pushvalue(l, 1);
            ffi::lua_concat(l, 2);
        }
        ffi::lua_error(l)
    }
}

/// The chunk name of the sandbox's prelude (scripting/sandbox.rs).
pub const SANDBOX_CHUNK: &str = "=sandbox";

/// Walks the frames of `l` from `first_level` outward, leaving out the sandbox's own Lua frames,
/// and answers the first one `wanted` accepts; the strings it points to are Lua's, valid while
/// that frame is on the stack.
///
/// # Safety
/// `l` is a live Lua state that is not running Lua code on another thread.
pub unsafe fn find_frame(
    l: *mut ffi::lua_State,
    first_level: c_int,
    mut wanted: impl FnMut(&ffi::lua_Debug) -> bool,
) -> Option<ffi::lua_Debug> {
    // SAFETY: `lua_Debug` is plain data that `lua_getstack` fills; `source` is a NUL-terminated
    // string Lua owns while the frame exists.
    unsafe {
        let mut frame: ffi::lua_Debug = std::mem::zeroed();
        let mut level = first_level;
        while ffi::lua_getstack(l, level, &mut frame) != 0 {
            level += 1;
            if ffi::lua_getinfo(l, c"Sl".as_ptr(), &mut frame) == 0
                || CStr::from_ptr(frame.source).to_bytes() == SANDBOX_CHUNK.as_bytes()
            {
                continue;
            }
            if wanted(&frame) {
                return Some(frame);
            }
        }
        None
    }
}

/// `luaL_where(l, level)` as if the sandbox's Lua frames were not on the stack: pushes
/// `"<chunk>:<line>: "` for the `level`-th frame below the running C function that is not the
/// sandbox's, or `""` when that frame is a C function or there is none.
unsafe fn push_where(l: *mut ffi::lua_State, level: c_int) {
    let mut counted = 0;
    // SAFETY: `l` is the calling coroutine inside a C call; `short_src` is the frame's own
    // NUL-terminated buffer.
    unsafe {
        match find_frame(l, 1, |_| {
            counted += 1;
            counted == level
        }) {
            Some(frame) if frame.currentline > 0 => {
                ffi::lua_pushfstring(
                    l,
                    c"%s:%d: ".as_ptr(),
                    frame.short_src.as_ptr(),
                    frame.currentline,
                );
            }
            _ => ffi::lua_pushliteral(l, ""),
        }
    }
}

/// Replaces the table at `index` by the real table behind it when it is a proxy.
unsafe fn unwrap_proxy(l: *mut ffi::lua_State, index: c_int) {
    // SAFETY: the caller checked that `index` holds a table; upvalue 1 is the proxies' table.
    unsafe {
        ffi::lua_pushvalue(l, index);
        ffi::lua_rawget(l, ffi::lua_upvalueindex(1));
        if ffi::lua_type(l, -1) == ffi::LUA_TTABLE {
            ffi::lua_replace(l, index);
        } else {
            ffi::lua_settop(l, -2);
        }
    }
}

unsafe extern "C-unwind" fn rawget(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: as `error`.
    unsafe {
        ffi::luaL_checktype(l, 1, ffi::LUA_TTABLE);
        ffi::luaL_checkany(l, 2);
        ffi::lua_settop(l, 2);
        unwrap_proxy(l, 1);
        ffi::lua_rawget(l, 1);
    }
    1
}

unsafe extern "C-unwind" fn next(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: as `error`.
    unsafe {
        ffi::luaL_checktype(l, 1, ffi::LUA_TTABLE);
        ffi::lua_settop(l, 2);
        unwrap_proxy(l, 1);
        if ffi::lua_next(l, 1) != 0 {
            2
        } else {
            ffi::lua_pushnil(l);
            1
        }
    }
}

unsafe extern "C-unwind" fn pairs(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: as `error`; upvalue 2 is `next` above.
    unsafe {
        ffi::luaL_checktype(l, 1, ffi::LUA_TTABLE);
        ffi::lua_settop(l, 1);
        ffi::lua_pushvalue(l, ffi::lua_upvalueindex(2));
        ffi::lua_insert(l, 1);
        ffi::lua_pushnil(l);
    }
    3
}
