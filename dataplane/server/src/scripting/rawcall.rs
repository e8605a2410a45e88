//! `redis.call` and `redis.pcall` as plain Lua C functions: the arguments are read straight off
//! the Lua stack into one reused buffer, and the reply is pushed straight as a Lua value, with
//! none of mlua's per-value handles (a registry slot per argument and per result) in between,
//! and no Lua frame of the sandbox's around the call.
//!
//! A call that completed at once (keys on shards the script holds: the common case) returns its
//! value, or raises its error (`redis.call`) or returns the error table (`redis.pcall`). A call
//! that waits for another shard yields the script's coroutine (Lua 5.1 lets a C function yield
//! by returning `lua_yield`); the run's resume loop ([`super::run`]) awaits it and resumes the
//! coroutine with the value, which Lua hands to the script as the C function's result. An error
//! to raise after a wait is raised by a one-instruction count hook armed on the coroutine that
//! called ([`arm_raise`]), before the script's next instruction runs. The conversion rules are
//! described in [`super::convert`].
//! Any number of arguments is read in place (a script may pass thousands through `unpack`): the
//! function needs no stack of its own beyond its result.
//!
//! Lua raises errors with `longjmp`, which skips Rust destructors. The only Lua calls that can
//! raise here are allocations (a new string or table, when Lua's allocator fails); they run
//! after the command ran, with nothing alive but the reply being pushed (whose memory is then
//! lost, as nothing else can be). Every error this module raises on purpose is pushed first and
//! raised with no Rust value alive.

use std::cell::RefCell;
use std::ffi::c_int;

use ember_resp::{Protocol, Reply};
use mlua::{ffi, Function, Lua};

use super::run::{self, Outcome, State, WaitSite};

/// The running script's state, boxed so its address stays put while the interpreter lives
/// (kept in the interpreter's app data; the C functions read it through a light userdata
/// upvalue).
struct RawCallState(#[allow(dead_code)] Box<State>);

/// Creates `redis.call` and `redis.pcall`, and makes the running script's state the
/// interpreter's app data (`redis.setresp` and `redis.acl_check_cmd` read it).
///
/// # Errors
/// When Lua cannot allocate.
pub fn call_functions(lua: &Lua, state: State) -> mlua::Result<(Function, Function)> {
    lua.set_app_data(state.clone());
    let boxed = Box::new(state);
    let pointer = &*boxed as *const State as *mut std::ffi::c_void;
    lua.set_app_data(RawCallState(boxed));
    // SAFETY: the closure only pushes light userdata, a table and C closures, and names the
    // table in the registry; the pointer stays valid while the interpreter (which owns the box
    // through its app data) lives.
    unsafe {
        lua.exec_raw::<(Function, Function)>((), |l| {
            ffi::lua_createtable(l, 1, 0);
            ffi::lua_pushvalue(l, -1);
            ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, WAIT_SITE.as_ptr());
            for function in [redis_call as ffi::lua_CFunction, redis_pcall] {
                ffi::lua_pushlightuserdata(l, pointer);
                ffi::lua_pushvalue(l, -2);
                ffi::lua_pushcclosure(l, function, 2);
                ffi::lua_insert(l, -2);
            }
            ffi::lua_settop(l, -2);
        })
    }
}

/// The registry's name of the table whose first item is the coroutine of the last call that
/// waited (the C functions' second upvalue): it keeps that coroutine alive for [`arm_raise`]
/// until the next call that waits, with no reference to drop.
const WAIT_SITE: &std::ffi::CStr = c"ember.wait_site";

/// What a call that waits yields: the sandbox's `pcall` and the scripts' coroutines pass it
/// outward, up to the run's resume loop.
static WAIT_MARK: u8 = 0;

/// The light userdata a waiting call yields ([`WAIT_MARK`]'s address).
pub fn wait_mark() -> *mut std::ffi::c_void {
    std::ptr::addr_of!(WAIT_MARK) as *mut std::ffi::c_void
}

/// What the C function does, decided before anything is pushed.
enum Answer {
    /// The call's outcome.
    Outcome(Outcome),
    /// The call waits for another shard.
    Waiting,
}

const BAD_ARGUMENT: &str = "ERR Lua redis lib command arguments must be strings or integers";

unsafe extern "C-unwind" fn redis_call(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: forwarded; `l` is the calling coroutine inside this C call.
    unsafe { call(l, false) }
}

unsafe extern "C-unwind" fn redis_pcall(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: as above.
    unsafe { call(l, true) }
}

/// Both functions: `protected` answers errors as `{err=...}` instead of raising them.
unsafe fn call(l: *mut ffi::lua_State, protected: bool) -> c_int {
    // SAFETY: the upvalue is the pointer `call_functions` stored, alive while Lua runs.
    let state = unsafe { &*(ffi::lua_touserdata(l, ffi::lua_upvalueindex(1)) as *const State) };
    let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: `l` is the calling coroutine, inside this C call.
        unsafe { answer(l, state) }
    }))
    .unwrap_or_else(|_| {
        Answer::Outcome(Outcome::Failure(
            "ERR internal error running a script's command".into(),
        ))
    });
    let outcome = match answer {
        Answer::Outcome(outcome) => outcome,
        Answer::Waiting => {
            // SAFETY: `l` is the calling coroutine; the thread pushed is stored in the table
            // (its slot exists: no allocation).
            unsafe {
                ffi::lua_settop(l, 0);
                let line = user_line(l);
                ffi::lua_pushthread(l);
                ffi::lua_rawseti_(l, ffi::lua_upvalueindex(2), 1);
                run::set_wait_site(state, WaitSite { protected, line });
                ffi::lua_pushlightuserdata(l, wait_mark());
                return ffi::lua_yield(l, 1);
            }
        }
    };
    // SAFETY: `l` is the calling coroutine; pushes past the arguments are checked; the errors
    // are raised with the outcome dropped.
    unsafe {
        ffi::lua_settop(l, 0);
        if matches!(outcome, Outcome::Restart) {
            ffi::lua_pushstring(l, RESTART.as_ptr());
            ffi::lua_error(l);
        }
        if ffi::lua_checkstack(l, 8) == 0 {
            return 0;
        }
        if !protected {
            if let Some((message, counted)) = error_of(&outcome) {
                run::note_error(state, message.to_owned(), user_line(l), counted, false);
                push_bytes(l, message.as_bytes());
                drop(outcome);
                ffi::lua_error(l);
            }
        }
        push_value(l, &outcome);
    }
    1
}

/// The error a finished call came to, and whether it was counted already in the error
/// statistics (a command's own error reply was counted when it was written).
pub(super) fn error_of(outcome: &Outcome) -> Option<(&str, bool)> {
    match outcome {
        Outcome::Reply(Reply::Error(message), _) => Some((message, true)),
        Outcome::Failure(message) => Some((message, false)),
        Outcome::Counted(message) => Some((message, true)),
        Outcome::Reply(..) | Outcome::Restart => None,
    }
}

/// Pushes what a finished call came to as `redis.pcall` returns it: the reply's value, or
/// `{err=...}` (marked counted where the error was counted already). [`Outcome::Restart`] is
/// raised before this.
///
/// # Safety
/// `l` is a Lua state with room for three more values (an error takes three at most; a reply
/// checks for more itself as it nests).
pub(super) unsafe fn push_value(l: *mut ffi::lua_State, outcome: &Outcome) {
    unsafe {
        if let Some((message, counted)) = error_of(outcome) {
            return push_error(l, message, counted);
        }
        match outcome {
            Outcome::Reply(reply, protocol) => push_reply(l, reply, *protocol == Protocol::Resp3),
            _ => unreachable!("errors are pushed above, a restart is raised"),
        }
    }
}

/// The line of the innermost frame of the user's script (or function library) below the
/// running C function.
///
/// # Safety
/// `l` is a coroutine inside a C call.
unsafe fn user_line(l: *mut ffi::lua_State) -> Option<i32> {
    // SAFETY: as the caller promises; `source` is a NUL-terminated string Lua owns.
    unsafe {
        super::globals::find_frame(l, 1, |frame| {
            frame.currentline > 0
                && std::ffi::CStr::from_ptr(frame.source)
                    .to_bytes()
                    .starts_with(b"@user_")
        })
        .map(|frame| frame.currentline)
    }
}

/// An error to raise in a coroutine resumed after its call waited, and the hook to put back.
struct Raise {
    message: Vec<u8>,
    hook: Option<ffi::lua_Hook>,
    mask: c_int,
    count: c_int,
}

thread_local! {
    /// The error [`raise_hook`] raises. One script runs at a time on a shard's thread, and the
    /// hook fires within the resume that follows its arming.
    static RAISE: RefCell<Option<Raise>> = const { RefCell::new(None) };
}

/// Arms the coroutine of the last call that waited to raise `message` before its next
/// instruction. `None` raises the restart error.
///
/// # Safety
/// `l` is a state of the interpreter the coroutine belongs to, with room for two values.
pub(super) unsafe fn arm_raise(l: *mut ffi::lua_State, message: Option<&str>) {
    let message = message.map_or_else(
        || RESTART.to_bytes().to_vec(),
        |text| text.as_bytes().to_vec(),
    );
    // SAFETY: the table keeps the coroutine alive; hooks may be set on a suspended coroutine.
    unsafe {
        ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, WAIT_SITE.as_ptr());
        ffi::lua_rawgeti_(l, -1, 1);
        let thread = ffi::lua_tothread(l, -1);
        ffi::lua_settop(l, -3);
        if !thread.is_null() {
            RAISE.with(|slot| {
                *slot.borrow_mut() = Some(Raise {
                    message,
                    hook: ffi::lua_gethook(thread),
                    mask: ffi::lua_gethookmask(thread),
                    count: ffi::lua_gethookcount(thread),
                })
            });
            ffi::lua_sethook(thread, Some(raise_hook), ffi::LUA_MASKCOUNT, 1);
        }
    }
}

/// The one-instruction hook [`arm_raise`] sets: puts the coroutine's own hook back and raises.
unsafe extern "C-unwind" fn raise_hook(l: *mut ffi::lua_State, _debug: *mut ffi::lua_Debug) {
    let raise = RAISE.with(|slot| slot.borrow_mut().take());
    // SAFETY: `l` is the hooked coroutine, running this hook; the message is pushed (copied)
    // and dropped before `lua_error` unwinds.
    unsafe {
        let Some(raise) = raise else {
            ffi::lua_sethook(l, None, 0, 0);
            return;
        };
        ffi::lua_sethook(l, raise.hook, raise.mask, raise.count);
        push_bytes(l, &raise.message);
        drop(raise);
        ffi::lua_error(l);
    }
}

/// Why a run stops when it must start again with every shard held (see `run`'s notes).
const RESTART: &std::ffi::CStr = c"the script runs again with every shard held";

/// Arguments of a call held in an array on the stack (more go in a vector).
const FEW_ARGS: usize = 8;

/// Reads the arguments and runs the command.
///
/// String arguments go to the command as Lua holds them, not copied: they stay on this call's
/// stack until it returns, and a command that must wait for another shard copies its arguments
/// first ([`run::call_bytes`]). Only numbers are written out, as text, into a buffer kept from
/// call to call.
unsafe fn answer(l: *mut ffi::lua_State, state: &State) -> Answer {
    let mut numbers = run::take_arg_buffer();
    let count = unsafe { ffi::lua_gettop(l) };
    for index in 1..=count {
        // SAFETY: `index` is within the call's arguments.
        match unsafe { ffi::lua_type(l, index) } {
            ffi::LUA_TSTRING => {}
            ffi::LUA_TNUMBER => numbers.push_number(unsafe { ffi::lua_tonumber(l, index) }),
            _ => {
                run::give_arg_buffer(numbers);
                return Answer::Outcome(Outcome::Failure(BAD_ARGUMENT.into()));
            }
        }
    }
    let mut texts = numbers.iter();
    // SAFETY (of each call below): `index` is within the call's arguments; lua_tolstring on a
    // string neither allocates nor raises, and the bytes it points to live while the string
    // is on the stack, which outlives the arguments' use here.
    unsafe fn arg<'a>(
        l: *mut ffi::lua_State,
        index: c_int,
        texts: &mut impl Iterator<Item = &'a [u8]>,
    ) -> &'a [u8] {
        unsafe {
            if ffi::lua_type(l, index) == ffi::LUA_TSTRING {
                let mut len = 0usize;
                let data = ffi::lua_tolstring(l, index, &mut len) as *const u8;
                std::slice::from_raw_parts(data, len)
            } else {
                texts.next().expect("one text per number argument")
            }
        }
    }
    let answer = {
        // Most calls have a few arguments: they go in an array on the stack.
        let mut few: [&[u8]; FEW_ARGS] = [&[]; FEW_ARGS];
        let many: Vec<&[u8]>;
        let args: &[&[u8]] = if count as usize <= FEW_ARGS {
            for index in 1..=count {
                few[index as usize - 1] = unsafe { arg(l, index, &mut texts) };
            }
            &few[..count as usize]
        } else {
            many = (1..=count)
                .map(|index| unsafe { arg(l, index, &mut texts) })
                .collect();
            &many
        };
        match run::call_bytes(state, args) {
            Some(outcome) => Answer::Outcome(outcome),
            None => Answer::Waiting,
        }
    };
    drop(texts);
    run::give_arg_buffer(numbers);
    answer
}

/// Pushes `{err=message}` (with the counted mark when the error was counted already).
unsafe fn push_error(l: *mut ffi::lua_State, message: &str, counted: bool) {
    unsafe {
        ffi::lua_createtable(l, 0, 2);
        push_bytes(l, message.as_bytes());
        ffi::lua_setfield(l, -2, c"err".as_ptr());
        if counted {
            ffi::lua_pushboolean(l, 1);
            ffi::lua_setfield(l, -2, c"ignore_error_stats_update".as_ptr());
        }
    }
}

unsafe fn push_bytes(l: *mut ffi::lua_State, bytes: &[u8]) {
    unsafe { ffi::lua_pushlstring(l, bytes.as_ptr() as *const _, bytes.len()) };
}

/// Pushes `{name=<the value on top>}` in place of the value on top.
unsafe fn wrap_in_field(l: *mut ffi::lua_State, name: &std::ffi::CStr) {
    unsafe {
        ffi::lua_createtable(l, 0, 1);
        ffi::lua_insert(l, -2);
        ffi::lua_setfield(l, -2, name.as_ptr());
    }
}

/// Pushes one reply as the Lua value `redis.call` returns (see [`super::convert`]).
unsafe fn push_reply(l: *mut ffi::lua_State, reply: &Reply, resp3: bool) {
    unsafe {
        if ffi::lua_checkstack(l, 4) == 0 {
            ffi::lua_pushnil(l);
            return;
        }
        match reply {
            Reply::Integer(value) => ffi::lua_pushnumber(l, *value as f64),
            Reply::Bulk(bytes) => push_bytes(l, bytes),
            Reply::Verbatim(bytes) if !resp3 => push_bytes(l, bytes),
            Reply::Verbatim(bytes) => {
                ffi::lua_createtable(l, 0, 2);
                ffi::lua_pushstring(l, c"txt".as_ptr());
                ffi::lua_setfield(l, -2, c"format".as_ptr());
                push_bytes(l, bytes);
                ffi::lua_setfield(l, -2, c"string".as_ptr());
                wrap_in_field(l, c"verbatim_string");
            }
            Reply::Simple(text) => {
                push_bytes(l, text.as_bytes());
                wrap_in_field(l, c"ok");
            }
            Reply::Error(message) => push_error(l, message, false),
            Reply::Null | Reply::NullArray if resp3 => ffi::lua_pushnil(l),
            Reply::Null | Reply::NullArray => ffi::lua_pushboolean(l, 0),
            Reply::Array(items) | Reply::Push(items) => push_array(l, items, resp3),
            Reply::Map(items) if resp3 => {
                // Grown as Redis grows it (lua_newtable): the script's `pairs` then meets the
                // fields in Redis's order, which a script that returns the map passes on.
                ffi::lua_createtable(l, 0, 0);
                for pair in items.chunks_exact(2) {
                    push_reply(l, &pair[0], resp3);
                    push_reply(l, &pair[1], resp3);
                    if ffi::lua_type(l, -2) == ffi::LUA_TNIL {
                        ffi::lua_settop(l, -3); // A table cannot have a nil key.
                    } else {
                        ffi::lua_rawset(l, -3);
                    }
                }
                wrap_in_field(l, c"map");
            }
            Reply::Set(items) if resp3 => {
                ffi::lua_createtable(l, 0, 0);
                for item in items {
                    push_reply(l, item, resp3);
                    if ffi::lua_type(l, -1) == ffi::LUA_TNIL {
                        ffi::lua_settop(l, -2);
                    } else {
                        ffi::lua_pushboolean(l, 1);
                        ffi::lua_rawset(l, -3);
                    }
                }
                wrap_in_field(l, c"set");
            }
            Reply::Map(items) | Reply::Set(items) => push_array(l, items, resp3),
            Reply::Double(value) if resp3 => {
                ffi::lua_pushnumber(l, *value);
                wrap_in_field(l, c"double");
            }
            Reply::Double(value) => {
                let text = ember_resp::encode::format_double(*value);
                push_bytes(l, text.as_bytes());
            }
            Reply::Boolean(value) if resp3 => ffi::lua_pushboolean(l, c_int::from(*value)),
            Reply::Boolean(value) => ffi::lua_pushnumber(l, f64::from(u8::from(*value))),
            Reply::BigNumber(digits) if resp3 => {
                push_bytes(l, digits);
                wrap_in_field(l, c"big_number");
            }
            Reply::BigNumber(digits) => push_bytes(l, digits),
        }
    }
}

unsafe fn push_array(l: *mut ffi::lua_State, items: &[Reply], resp3: bool) {
    unsafe {
        ffi::lua_createtable(l, items.len().min(c_int::MAX as usize) as c_int, 0);
        for (index, item) in items.iter().enumerate() {
            push_reply(l, item, resp3);
            ffi::lua_rawseti_(l, -2, (index + 1) as c_int);
        }
    }
}

/// KEYS and ARGV of the run about to start, for [`setup`]: pointers into the invocation, set
/// just before the run's first resume (which calls `setup` before anything else) and taken by
/// it.
#[derive(Clone, Copy)]
pub struct Arguments {
    /// KEYS: where the invocation's `&[u8]` slices start, and how many.
    keys: (*const (), usize),
    /// ARGV, the same way.
    argv: (*const (), usize),
    as_globals: bool,
}

thread_local! {
    static ARGUMENTS: std::cell::Cell<Option<Arguments>> = const { std::cell::Cell::new(None) };
}

/// Makes `keys` and `argv` the next run's KEYS and ARGV (globals for a script, arguments for a
/// function). The caller resumes the run's coroutine while both are borrowed.
pub fn set_arguments(keys: &[&[u8]], argv: &[&[u8]], as_globals: bool) {
    let arguments = Arguments {
        keys: (keys.as_ptr() as *const (), keys.len()),
        argv: (argv.as_ptr() as *const (), argv.len()),
        as_globals,
    };
    ARGUMENTS.with(|slot| slot.set(Some(arguments)));
}

/// Forgets the arguments once the run's first resume returned.
pub fn clear_arguments() {
    ARGUMENTS.with(|slot| slot.set(None));
}

/// The C function the run's coroutine calls first (see the sandbox's `run_script`).
///
/// For a script it refills two tables it keeps (its upvalues, with the interned names `KEYS`
/// and `ARGV`) rather than making new ones: a script's run would otherwise allocate two tables
/// and intern every key and argument, and the garbage collector's work follows the
/// allocations. Nothing of one run reaches the next: the tables are cleared of anything the
/// last script put there (other fields, a metatable), and a script cannot keep a reference to
/// them across runs (its globals are read-only). A function gets new tables each call: a
/// library's functions may keep what they are given in an upvalue of their library.
///
/// # Errors
/// When Lua cannot allocate.
pub fn setup_function(lua: &Lua) -> mlua::Result<Function> {
    // SAFETY: the closure pushes two strings and two tables, then a C closure over them; `setup`
    // follows the C function protocol.
    unsafe {
        lua.exec_raw::<Function>((), |l| {
            ffi::lua_pushstring(l, c"KEYS".as_ptr());
            ffi::lua_pushstring(l, c"ARGV".as_ptr());
            ffi::lua_createtable(l, 0, 0);
            ffi::lua_createtable(l, 0, 0);
            ffi::lua_pushcclosure(l, setup, 4);
        })
    }
}

/// The longest KEYS or ARGV kept between runs: a table keeps the array it once grew to, so a
/// run with more items than this gets tables of its own and the kept ones stay small.
const KEPT_LIST_LEN_MAX: usize = 64;

/// `setup`'s upvalues: the names `KEYS` and `ARGV`, then the kept tables.
const KEYS_NAME: c_int = ffi::lua_upvalueindex(1);
const ARGV_NAME: c_int = ffi::lua_upvalueindex(2);
const KEPT_KEYS: c_int = ffi::lua_upvalueindex(3);
const KEPT_ARGV: c_int = ffi::lua_upvalueindex(4);

unsafe extern "C-unwind" fn setup(l: *mut ffi::lua_State) -> c_int {
    let Some(arguments) = ARGUMENTS.with(|slot| slot.take()) else {
        return 0;
    };
    // SAFETY: the pointers are the invocation's, borrowed by the caller that resumed this
    // coroutine (see `set_arguments`); nothing here has a destructor, so an allocation error's
    // longjmp skips nothing.
    unsafe {
        let list = |(start, len): (*const (), usize)| {
            std::slice::from_raw_parts(start as *const &[u8], len)
        };
        let (keys, argv) = (list(arguments.keys), list(arguments.argv));
        ffi::lua_settop(l, 0);
        if ffi::lua_checkstack(l, 8) == 0 {
            return 0;
        }
        if arguments.as_globals {
            ffi::lua_pushvalue(l, KEYS_NAME);
            push_kept_list(l, KEPT_KEYS, keys);
            ffi::lua_rawset(l, ffi::LUA_GLOBALSINDEX);
            ffi::lua_pushvalue(l, ARGV_NAME);
            push_kept_list(l, KEPT_ARGV, argv);
            ffi::lua_rawset(l, ffi::LUA_GLOBALSINDEX);
            0
        } else {
            push_list(l, keys);
            push_list(l, argv);
            2
        }
    }
}

unsafe fn push_list(l: *mut ffi::lua_State, items: &[&[u8]]) {
    unsafe {
        ffi::lua_createtable(l, items.len().min(c_int::MAX as usize) as c_int, 0);
        for (index, item) in items.iter().enumerate() {
            push_bytes(l, item);
            ffi::lua_rawseti_(l, -2, (index + 1) as c_int);
        }
    }
}

/// Pushes the kept table at upvalue `kept` holding exactly `items` (at 1..n, nothing else, no
/// metatable), or a new table when there are too many to keep.
unsafe fn push_kept_list(l: *mut ffi::lua_State, kept: c_int, items: &[&[u8]]) {
    if items.len() > KEPT_LIST_LEN_MAX {
        return unsafe { push_list(l, items) };
    }
    unsafe {
        ffi::lua_pushvalue(l, kept);
        if ffi::lua_getmetatable(l, -1) != 0 {
            ffi::lua_settop(l, -2);
            ffi::lua_pushnil(l);
            ffi::lua_setmetatable(l, -2);
        }
        for (index, item) in items.iter().enumerate() {
            let position = (index + 1) as c_int;
            // An item equal to the one there already (the same key run after run) is not
            // interned again: comparing bytes is cheaper than hashing them.
            ffi::lua_rawgeti_(l, -1, position);
            let same = ffi::lua_type(l, -1) == ffi::LUA_TSTRING && {
                let mut len = 0usize;
                let data = ffi::lua_tolstring(l, -1, &mut len) as *const u8;
                std::slice::from_raw_parts(data, len) == *item
            };
            ffi::lua_settop(l, -2);
            if !same {
                push_bytes(l, item);
                ffi::lua_rawseti_(l, -2, position);
            }
        }
        // Whatever follows the items (a longer last run's, or fields the script added) goes.
        // Lua allows clearing a field that `lua_next` just answered.
        if items.is_empty() {
            ffi::lua_pushnil(l);
        } else {
            ffi::lua_pushinteger(l, items.len() as ffi::lua_Integer);
        }
        while ffi::lua_next(l, -2) != 0 {
            ffi::lua_settop(l, -2);
            ffi::lua_pushvalue(l, -1);
            ffi::lua_pushnil(l);
            ffi::lua_rawset(l, -4);
        }
    }
}
