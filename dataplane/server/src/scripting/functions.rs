//! Function libraries (FUNCTION LOAD): `#!lua name=<library>` code whose top level registers
//! functions with `redis.register_function`. The registry keeps each library's code; every shard
//! evaluates the libraries in its own interpreter when they change. FUNCTION DUMP/RESTORE carry
//! the code in Redis's payload format ([`ember_store::dump::dump_functions`]).

use std::cell::{Cell, RefCell};
use std::ffi::c_int;
use std::rc::Rc;
use std::time::{Duration, Instant};

use mlua::{ffi, Function, Lua, MultiValue, Table, Value};

use super::{Compiled, ScriptFlags};

/// One registered function, as FUNCTION LIST shows it.
#[derive(Debug, Clone)]
pub struct FunctionInfo {
    /// Its name.
    pub name: String,
    /// Its flags.
    pub flags: ScriptFlags,
    /// Its description, if given.
    pub description: Option<String>,
}

/// One library.
#[derive(Debug, Clone)]
pub struct Library {
    /// Its name (from the shebang).
    pub name: String,
    /// The whole code, shebang included.
    pub code: String,
    /// Its functions, in registration order.
    pub functions: Vec<FunctionInfo>,
}

/// Every library, by name.
///
/// Library names are case-sensitive; function names are looked up and compared without regard
/// to case, as Redis 7's function dictionary does.
#[derive(Debug, Default, Clone)]
pub struct Libraries {
    libraries: std::collections::BTreeMap<String, Library>,
}

impl Libraries {
    /// The libraries in name order.
    pub fn iter(&self) -> impl Iterator<Item = &Library> {
        self.libraries.values()
    }

    /// True when library `name` exists.
    pub fn contains(&self, name: &str) -> bool {
        self.libraries.contains_key(name)
    }

    /// Adds (or with `replace`, replaces) a library already evaluated.
    ///
    /// # Errors
    /// Redis's errors for an existing library or function; nothing changes then.
    pub fn add(&mut self, library: Library, replace: bool) -> Result<(), String> {
        if self.libraries.contains_key(&library.name) && !replace {
            return Err(format!("ERR Library '{}' already exists", library.name));
        }
        for other in self
            .libraries
            .values()
            .filter(|other| other.name != library.name)
        {
            if let Some(clash) = library.functions.iter().find(|function| {
                other
                    .functions
                    .iter()
                    .any(|f| f.name.eq_ignore_ascii_case(&function.name))
            }) {
                return Err(format!("ERR Function {} already exists", clash.name));
            }
        }
        self.libraries.insert(library.name.clone(), library);
        Ok(())
    }

    /// Adds every library of `restored` (FUNCTION RESTORE APPEND, or REPLACE with `replace`),
    /// all or none.
    ///
    /// # Errors
    /// Redis's errors for an existing library (without `replace`) or a function that another
    /// library has.
    pub fn join(&mut self, restored: Libraries, replace: bool) -> Result<(), String> {
        let mut joined = self.clone();
        for name in restored.libraries.keys() {
            if joined.libraries.contains_key(name) {
                if !replace {
                    return Err(format!("ERR Library {name} already exists"));
                }
                joined.libraries.remove(name);
            }
        }
        for library in restored.libraries.values() {
            for function in &library.functions {
                if joined.function_library(&function.name).is_some() {
                    return Err(format!("ERR Function {} already exists", function.name));
                }
            }
        }
        joined.libraries.extend(restored.libraries);
        *self = joined;
        Ok(())
    }

    /// The library that has function `name` (case-insensitive).
    fn function_library(&self, name: &str) -> Option<&Library> {
        self.libraries.values().find(|library| {
            library
                .functions
                .iter()
                .any(|function| function.name.eq_ignore_ascii_case(name))
        })
    }

    /// Removes library `name`; false when there is none.
    pub fn remove(&mut self, name: &str) -> bool {
        self.libraries.remove(name).is_some()
    }

    /// Removes every library.
    pub fn clear(&mut self) {
        self.libraries.clear();
    }

    /// Bytes the libraries' code and names take (INFO's `used_memory_functions`).
    pub fn bytes(&self) -> usize {
        self.libraries
            .values()
            .map(|library| {
                library.name.len()
                    + library.code.len()
                    + library
                        .functions
                        .iter()
                        .map(|function| function.name.len() + std::mem::size_of::<FunctionInfo>())
                        .sum::<usize>()
                    + std::mem::size_of::<Library>()
            })
            .sum()
    }

    /// Number of libraries and of functions.
    pub fn counts(&self) -> (usize, usize) {
        (
            self.libraries.len(),
            self.libraries.values().map(|l| l.functions.len()).sum(),
        )
    }
}

/// A function as evaluated in one interpreter.
pub struct LoadedFunction {
    /// Its name.
    pub name: String,
    /// The callback, ready to call.
    pub compiled: Compiled,
    /// What FUNCTION LIST shows.
    pub info: FunctionInfo,
}

/// Redis's error for a library or function name that is not `[A-Za-z0-9_]+` (Redis 7 words
/// both the same way).
const BAD_NAME: &str = "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";

/// The library name from the `#!<engine> name=<library>` shebang, read as Redis reads it: the
/// first line split as `sdssplitargs` splits (quotes allowed), `name=` in any case, and the
/// engine (`lua`, in any case) checked after the name.
///
/// # Errors
/// Redis's errors for missing or malformed metadata, a bad name or an unknown engine.
pub fn library_name(code: &str) -> Result<String, String> {
    if !code.starts_with("#!") {
        return Err("ERR Missing library metadata".into());
    }
    let Some((shebang, _)) = code.split_once('\n') else {
        return Err("ERR Invalid library metadata".into());
    };
    let parts = match ember_resp::split_args(shebang.as_bytes()) {
        Some(parts) if !parts.is_empty() => parts,
        _ => return Err("ERR Invalid library metadata".into()),
    };
    let engine = String::from_utf8_lossy(&parts[0][2.min(parts[0].len())..]).into_owned();
    let mut name = None;
    for part in &parts[1..] {
        if part.len() >= 5 && part[..5].eq_ignore_ascii_case(b"name=") {
            if name.is_some() {
                return Err(
                    "ERR Invalid metadata value, name argument was given multiple times".into(),
                );
            }
            name = Some(String::from_utf8_lossy(&part[5..]).into_owned());
            continue;
        }
        return Err(format!(
            "ERR Invalid metadata value given: {}",
            String::from_utf8_lossy(part)
        ));
    }
    let name = name.ok_or_else(|| "ERR Library name was not given".to_owned())?;
    if !valid_name(&name) {
        return Err(format!("ERR {BAD_NAME}"));
    }
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(format!("ERR Engine '{engine}' not found"));
    }
    Ok(name)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
}

/// How long a library's top level may run in FUNCTION LOAD (Redis's `LOAD_TIMEOUT_MS`).
pub const LOAD_TIMEOUT: Duration = Duration::from_millis(500);

/// Instructions between two checks of the load's time limit (Redis checks as often).
const LOAD_HOOK_INSTRUCTIONS: c_int = 100_000;

thread_local! {
    /// When the library loading on this thread must stop (`None`: no limit).
    static LOAD_DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// The count hook of a library's load: past the deadline it raises Redis's timeout error (no
/// Rust value with a destructor is alive when `lua_error` unwinds).
unsafe extern "C-unwind" fn load_hook(lua: *mut ffi::lua_State, _debug: *mut ffi::lua_Debug) {
    let expired =
        LOAD_DEADLINE.with(|deadline| deadline.get().is_some_and(|at| Instant::now() >= at));
    if expired {
        // SAFETY: `lua` is the loading coroutine, running this hook on this thread.
        unsafe {
            ffi::lua_pushstring(lua, c"FUNCTION LOAD timeout".as_ptr());
            ffi::lua_error(lua);
        }
    }
}

/// Runs a library's code in `lua` and returns the functions it registered. The top level sees
/// only Redis's library API (`redis.register_function`, `redis.log`, the log levels and the
/// version); the functions it registers see the sandbox's globals when they run. `timeout`
/// stops a top level that runs longer (FUNCTION LOAD); `None` when the code already loaded
/// once (a shard loading the registry's libraries).
///
/// # Errors
/// Redis's errors for code that does not compile, fails, runs too long, or registers nothing.
pub fn evaluate(
    lua: &Lua,
    code: &str,
    timeout: Option<Duration>,
) -> Result<Vec<LoadedFunction>, String> {
    library_name(code)?;
    let body = format!("\n{}", code.split_once('\n').map_or("", |(_, rest)| rest));
    let collected: Collected = Rc::new(RefCell::new(Some(Vec::new())));
    let (load_env, finish) =
        load_environment(lua, collected.clone()).map_err(|e| format!("ERR {e}"))?;
    let chunk = lua
        .load(super::sandbox::untail(&body).as_ref())
        .set_name("@user_function")
        .set_environment(load_env)
        .into_function()
        .map_err(|error| match error {
            mlua::Error::SyntaxError { message, .. } => {
                format!("ERR Error compiling function: {message}")
            }
            other => format!("ERR Error compiling function: {other}"),
        })?;
    let thread = lua.create_thread(chunk).map_err(|e| format!("ERR {e}"))?;
    if let Some(timeout) = timeout {
        LOAD_DEADLINE.with(|deadline| deadline.set(Some(Instant::now() + timeout)));
        // SAFETY: a thread value's pointer is its lua_State, alive while `thread` is.
        unsafe {
            ffi::lua_sethook(
                thread.to_pointer() as *mut ffi::lua_State,
                Some(load_hook),
                ffi::LUA_MASKCOUNT,
                LOAD_HOOK_INSTRUCTIONS,
            );
        }
    }
    let result = thread.resume::<()>(());
    LOAD_DEADLINE.with(|deadline| deadline.set(None));
    // From now on the library's functions see the sandbox's globals, and register_function
    // refuses.
    let functions = collected.borrow_mut().take().unwrap_or_default();
    let ended = finish.call::<()>(());
    result.map_err(|error| {
        let (message, _) = super::run::innermost(&error);
        format!(
            "ERR Error registering functions: {}",
            error_text(&message.replace(['\r', '\n'], " "))
        )
    })?;
    ended.map_err(|e| format!("ERR {e}"))?;
    if functions.is_empty() {
        return Err("ERR No functions registered".into());
    }
    Ok(functions)
}

/// A Lua error's text as Redis quotes it: an error table's `err`, or `ERR` and the message.
fn error_text(message: &str) -> String {
    if message.starts_with("ERR ") {
        message.to_owned()
    } else {
        format!("ERR {message}")
    }
}

/// The functions a library registers while it loads; `None` once the load ended.
type Collected = Rc<RefCell<Option<Vec<LoadedFunction>>>>;

/// The globals a library's top level sees, and the function that points them at the
/// sandbox's globals once the load ends.
fn load_environment(lua: &Lua, collected: Collected) -> mlua::Result<(Table, Function)> {
    let register = lua.create_function(move |_, args: MultiValue| {
        let mut collected = collected.borrow_mut();
        let Some(collected) = collected.as_mut() else {
            return Err(mlua::Error::RuntimeError(
                "redis.register_function can only be called on FUNCTION LOAD command".into(),
            ));
        };
        let function = registration(args).map_err(mlua::Error::RuntimeError)?;
        if collected
            .iter()
            .any(|f| f.name.eq_ignore_ascii_case(&function.name))
        {
            return Err(mlua::Error::RuntimeError(
                "Function already exists in the library".into(),
            ));
        }
        collected.push(function);
        Ok(())
    })?;
    let library_env: Function = lua.named_registry_value("ember_library_env")?;
    library_env.call(register)
}

/// `register_function(name, callback)` or `register_function{function_name=, callback=,
/// flags=, description=}`, checked as Redis checks them (its messages, without the `ERR` the
/// load's error adds).
fn registration(args: MultiValue) -> Result<LoadedFunction, String> {
    let args: Vec<Value> = args.into_iter().collect();
    let (name, callback, flags, description) = match args.as_slice() {
        [Value::Table(table)] => named_registration(table)?,
        [_] => return Err("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).".into()),
        [name, callback] => {
            let name = lua_string(name)
                .ok_or("first argument to redis.register_function must be a string")?;
            let Value::Function(callback) = callback else {
                return Err("second argument to redis.register_function must be a function".into());
            };
            (name, callback.clone(), ScriptFlags::empty(), None)
        }
        _ => return Err("wrong number of arguments to redis.register_function".into()),
    };
    if !valid_name(&name) {
        return Err(BAD_NAME.into());
    }
    Ok(LoadedFunction {
        name: name.clone(),
        compiled: Compiled {
            function: std::rc::Rc::new(callback),
            flags,
        },
        info: FunctionInfo {
            name,
            flags,
            description,
        },
    })
}

/// A string or number as Lua's `lua_isstring` accepts it, as text.
fn lua_string(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.to_string_lossy()),
        Value::Integer(number) => Some(number.to_string()),
        Value::Number(number) => Some(super::libs::format_g14(*number)),
        _ => None,
    }
}

fn named_registration(
    table: &Table,
) -> Result<(String, Function, ScriptFlags, Option<String>), String> {
    let mut name = None;
    let mut callback = None;
    let mut flags = ScriptFlags::empty();
    let mut description = None;
    for pair in table.clone().pairs::<Value, Value>() {
        let (key, value) = pair.map_err(|e| e.to_string())?;
        let key = lua_string(&key)
            .ok_or("named argument key given to redis.register_function is not a string")?;
        match key.to_ascii_lowercase().as_str() {
            "function_name" => {
                name = Some(lua_string(&value).ok_or(
                    "function_name argument given to redis.register_function must be a string",
                )?);
            }
            "description" => {
                description = Some(lua_string(&value).ok_or(
                    "description argument given to redis.register_function must be a string",
                )?);
            }
            "callback" => {
                let Value::Function(function) = value else {
                    return Err(
                        "callback argument given to redis.register_function must be a function"
                            .into(),
                    );
                };
                callback = Some(function);
            }
            "flags" => {
                let Value::Table(list) = value else {
                    return Err("flags argument to redis.register_function must be a table representing function flags".into());
                };
                flags = registered_flags(&list).ok_or("unknown flag given")?;
            }
            _ => return Err("unknown argument given to redis.register_function".into()),
        }
    }
    let name = name.ok_or("redis.register_function must get a function name argument")?;
    let callback = callback.ok_or("redis.register_function must get a callback argument")?;
    Ok((name, callback, flags, description))
}

/// The flags of a `flags` list (names in any case, up to the first nil); `None` for an entry
/// that is not a known flag's name.
fn registered_flags(list: &Table) -> Option<ScriptFlags> {
    let mut flags = ScriptFlags::empty();
    for index in 1.. {
        let value: Value = list.raw_get(index).ok()?;
        if value.is_nil() {
            break;
        }
        flags |= super::sandbox::parse_flag(&lua_string(&value)?.to_ascii_lowercase())?;
    }
    Some(flags)
}

/// Flag names in FUNCTION LIST's order.
pub fn flag_names(flags: ScriptFlags) -> Vec<&'static str> {
    [
        (ScriptFlags::NO_WRITES, "no-writes"),
        (ScriptFlags::ALLOW_OOM, "allow-oom"),
        (ScriptFlags::ALLOW_STALE, "allow-stale"),
        (ScriptFlags::NO_CLUSTER, "no-cluster"),
        (ScriptFlags::ALLOW_CROSS_SLOT, "allow-cross-slot-keys"),
    ]
    .iter()
    .filter(|(flag, _)| flags.contains(*flag))
    .map(|(_, name)| *name)
    .collect()
}
