//! Function libraries (FUNCTION LOAD): `#!lua name=<library>` code whose top level registers
//! functions with `redis.register_function`. The registry keeps each library's code; every shard
//! evaluates the libraries in its own interpreter when they change. Kept in memory only: Ember
//! has no persistence yet, so FUNCTION DUMP/RESTORE carry the code in Ember's own format.

use std::cell::RefCell;
use std::rc::Rc;

use mlua::{Function, Lua, MultiValue, Table, Value};

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
#[derive(Debug, Default, Clone)]
pub struct Libraries {
    libraries: std::collections::BTreeMap<String, Library>,
}

impl Libraries {
    /// The libraries in name order.
    pub fn iter(&self) -> impl Iterator<Item = &Library> {
        self.libraries.values()
    }

    /// Adds (or with `replace`, replaces) a library already evaluated.
    ///
    /// # Errors
    /// Redis's errors for an existing library or function.
    pub fn add(&mut self, library: Library, replace: bool) -> Result<(), String> {
        if self.libraries.contains_key(&library.name) && !replace {
            return Err(format!("ERR Library '{}' already exists", library.name));
        }
        for other in self
            .libraries
            .values()
            .filter(|other| other.name != library.name)
        {
            if let Some(clash) = library
                .functions
                .iter()
                .find(|function| other.functions.iter().any(|f| f.name == function.name))
            {
                return Err(format!("ERR Function {} already exists", clash.name));
            }
        }
        self.libraries.insert(library.name.clone(), library);
        Ok(())
    }

    /// Removes library `name`; false when there is none.
    pub fn remove(&mut self, name: &str) -> bool {
        self.libraries.remove(name).is_some()
    }

    /// Removes every library.
    pub fn clear(&mut self) {
        self.libraries.clear();
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

/// The library name from a `#!lua name=<library>` shebang.
///
/// # Errors
/// Redis's errors for missing metadata or a bad name.
pub fn library_name(code: &str) -> Result<String, String> {
    let Some(first_line) = code.strip_prefix("#!") else {
        return Err("ERR Missing library metadata".into());
    };
    let first_line = first_line.lines().next().unwrap_or("");
    let mut words = first_line.split_whitespace();
    let engine = words.next().unwrap_or("");
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(format!("ERR Engine '{engine}' not found"));
    }
    let mut name = None;
    for word in words {
        match word.split_once('=') {
            Some(("name", value)) => name = Some(value.to_owned()),
            _ => return Err(format!("ERR Invalid metadata value given: {word}")),
        }
    }
    let name = name.ok_or_else(|| "ERR Library name was not given".to_owned())?;
    if !valid_name(&name) {
        return Err("ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long".into());
    }
    Ok(name)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
}

/// Runs a library's code in `lua` and returns the functions it registered.
///
/// # Errors
/// Redis's errors for code that does not compile, fails, or registers nothing.
pub fn evaluate(lua: &Lua, code: &str) -> Result<Vec<LoadedFunction>, String> {
    library_name(code)?;
    let body = format!("\n{}", code.split_once('\n').map_or("", |(_, rest)| rest));
    let collected: Rc<RefCell<Vec<LoadedFunction>>> = Rc::default();
    let load_env = load_environment(lua, collected.clone()).map_err(|e| format!("ERR {e}"))?;
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
    chunk.call::<()>(()).map_err(|error| {
        let (message, _) = super::run::innermost(&error);
        // Redis raises the sandbox's own errors as error replies, which keep their code.
        let code = if message.contains("Attempt to modify a readonly table")
            || message.contains("Script attempted to access nonexistent global variable")
        {
            "ERR "
        } else {
            ""
        };
        format!(
            "ERR Error registering functions: {code}{}",
            message.replace(['\r', '\n'], " ")
        )
    })?;
    let functions = std::mem::take(&mut *collected.borrow_mut());
    if functions.is_empty() {
        return Err("ERR No functions registered".into());
    }
    Ok(functions)
}

/// The globals a library's top level sees: the sandbox's, with `redis.register_function`.
fn load_environment(lua: &Lua, collected: Rc<RefCell<Vec<LoadedFunction>>>) -> mlua::Result<Table> {
    let register = lua.create_function(move |_, args: MultiValue| {
        let function = registration(args).map_err(mlua::Error::RuntimeError)?;
        let mut collected = collected.borrow_mut();
        if collected.iter().any(|f| f.name == function.name) {
            return Err(mlua::Error::RuntimeError(
                "ERR Function already exists in the library".into(),
            ));
        }
        collected.push(function);
        Ok(())
    })?;
    let library_env: Function = lua.named_registry_value("ember_library_env")?;
    library_env.call(register)
}

/// `register_function(name, callback)` or `register_function{function_name=, callback=,
/// flags=, description=}`.
fn registration(args: MultiValue) -> Result<LoadedFunction, String> {
    let args: Vec<Value> = args.into_iter().collect();
    let (name, callback, flags, description) = match args.as_slice() {
        [Value::String(name), Value::Function(callback)] => (
            name.to_string_lossy(),
            callback.clone(),
            ScriptFlags::empty(),
            None,
        ),
        [Value::Table(table)] => named_registration(table)?,
        [_, _] => return Err("ERR callback must be a function".into()),
        _ => return Err("ERR wrong number of arguments to redis.register_function".into()),
    };
    if !valid_name(&name) {
        return Err("ERR Function names can only contain letters, numbers, or underscores(_) and must be at least one character long".into());
    }
    Ok(LoadedFunction {
        name: name.clone(),
        compiled: Compiled {
            function: callback,
            flags,
        },
        info: FunctionInfo {
            name,
            flags,
            description,
        },
    })
}

fn named_registration(
    table: &Table,
) -> Result<(String, Function, ScriptFlags, Option<String>), String> {
    let mut name = None;
    let mut callback = None;
    let mut flags = ScriptFlags::empty();
    let mut description = None;
    for pair in table.clone().pairs::<String, Value>() {
        let (key, value) = pair.map_err(|_| "ERR named argument must be a string".to_owned())?;
        match (key.as_str(), value) {
            ("function_name", Value::String(text)) => name = Some(text.to_string_lossy()),
            ("callback", Value::Function(function)) => callback = Some(function),
            ("description", Value::String(text)) => description = Some(text.to_string_lossy()),
            ("flags", Value::Table(list)) => {
                for flag in list.sequence_values::<String>() {
                    let flag = flag.map_err(|_| "ERR flags argument to redis.register_function must be a table representing function flags".to_owned())?;
                    flags |= super::sandbox::parse_flag(&flag)
                        .ok_or_else(|| format!("ERR Unknown flag given: {flag}"))?;
                }
            }
            ("function_name", _) => return Err("ERR function_name argument given to redis.register_function must be a string".into()),
            ("callback", _) => return Err("ERR callback argument given to redis.register_function must be a function".into()),
            ("description", _) => return Err("ERR description argument given to redis.register_function must be a string".into()),
            ("flags", _) => return Err("ERR flags argument to redis.register_function must be a table representing function flags".into()),
            (other, _) => return Err(format!("ERR unknown argument given to redis.register_function: {other}")),
        }
    }
    let name = name.ok_or_else(|| {
        "ERR redis.register_function must get a function name argument".to_owned()
    })?;
    let callback = callback
        .ok_or_else(|| "ERR redis.register_function must get a callback argument".to_owned())?;
    Ok((name, callback, flags, description))
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
