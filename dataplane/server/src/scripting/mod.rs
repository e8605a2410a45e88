//! Lua scripting and functions: the engine behind EVAL, EVALSHA, SCRIPT, FUNCTION and FCALL.
//!
//! Each shard has its own Lua 5.1 interpreter ([`Engine`]), created on first use and sandboxed
//! as Redis 7 sandboxes its own: no `os` (but `os.clock`), `io`, `require`, `loadfile` or
//! `dofile`; the global table is read-only, so nothing one script does is seen by the next.
//! What every shard must agree on (the script cache that SCRIPT LOAD fills, the function
//! libraries, whether a script is running past `busy-reply-threshold`) is in the process-wide
//! [`Registry`]; each shard compiles what it needs from there into its own interpreter.
//!
//! A script runs on the shard of the connection that sent it, and `redis.call` runs commands
//! through the one executor ([`crate::commands::exec::execute`]), as a connection's commands
//! run. Atomicity comes from holds ([`crate::shard::Gate`]): a script holds its own shard and
//! the shards of its declared keys (in ascending order, as every multi-shard operation does), so
//! nothing else touches those shards while it runs; see [`run`] for keys it did not declare.

pub mod bytecode;
pub mod convert;
pub mod functions;
pub mod globals;
pub mod libs;
pub mod msgpack;
pub mod rawcall;
pub mod run;
pub mod sandbox;
pub mod sha1;
pub mod structlib;
pub mod tonumber;

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use mlua::{Function, Lua};

pub use functions::Libraries;

/// Redis's reply to EVALSHA of an unknown script.
pub const NOSCRIPT: &str = "NOSCRIPT No matching script. Please use EVAL.";
/// Redis's reply to commands while a script runs past the threshold.
pub const BUSY: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
/// Redis's reply to SCRIPT KILL when no script runs.
pub const NOTBUSY: &str = "NOTBUSY No scripts in execution right now.";
/// Redis's reply to SCRIPT KILL once the script wrote.
pub const UNKILLABLE: &str = "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.";

/// No shard runs a script past the threshold.
const NOT_BUSY: usize = usize::MAX;

/// What every shard shares about scripts: the cache SCRIPT LOAD and EVAL fill, the function
/// libraries, and the one script (at most) that runs past `busy-reply-threshold`.
///
/// Departs from "nothing is shared between shards" on purpose: a script loaded through one
/// connection must be callable by EVALSHA on every shard at once, as in Redis, and loads are
/// rare next to calls. Calls read only the shard's own compiled copy and one atomic generation
/// number; the lock is taken on a shard's first call of a script, and by loads and flushes.
#[derive(Debug, Default)]
pub struct Registry {
    /// Script bodies by lower-case SHA1 hex.
    scripts: RwLock<HashMap<String, Arc<str>>>,
    /// Bumped by SCRIPT FLUSH: shards then drop their compiled copies.
    scripts_generation: AtomicU64,
    /// FUNCTION libraries.
    pub libraries: RwLock<Libraries>,
    /// Bumped by every change of the libraries: shards then load them again.
    pub libraries_generation: AtomicU64,
    /// The shard whose script runs past the threshold, or [`NOT_BUSY`].
    busy_shard: AtomicUsize,
    /// Whether that script wrote (SCRIPT KILL then refuses).
    busy_wrote: AtomicBool,
    /// Whether that script is a function (FUNCTION KILL stops only functions).
    busy_function: AtomicBool,
    /// Set by SCRIPT KILL; the busy script's hook stops it.
    kill_requested: AtomicBool,
    /// The busy script, as FUNCTION STATS shows it.
    running: Mutex<Option<Arc<Running>>>,
}

/// A script or function running past the threshold.
#[derive(Debug)]
pub struct Running {
    /// The function's name or the script's SHA1.
    pub name: String,
    /// The command that runs it.
    pub command: Vec<Vec<u8>>,
    /// When it started.
    pub started: std::time::Instant,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self {
            busy_shard: AtomicUsize::new(NOT_BUSY),
            ..Self::default()
        }
    }

    /// Adds a script body; returns its SHA1 hex.
    pub fn load(&self, body: &[u8]) -> String {
        let sha = sha1::hex(body);
        let mut scripts = self.scripts.write().expect("script cache lock");
        scripts
            .entry(sha.clone())
            .or_insert_with(|| Arc::from(String::from_utf8_lossy(body).as_ref()));
        sha
    }

    /// The body of script `sha` (lower-case hex).
    pub fn body(&self, sha: &str) -> Option<Arc<str>> {
        self.scripts
            .read()
            .expect("script cache lock")
            .get(sha)
            .cloned()
    }

    /// True when script `sha` is cached.
    pub fn exists(&self, sha: &str) -> bool {
        self.scripts
            .read()
            .expect("script cache lock")
            .contains_key(sha)
    }

    /// Bytes the cached scripts take: bodies, SHA1s and their entries (INFO's
    /// `used_memory_scripts_eval`).
    pub fn cached_bytes(&self) -> usize {
        self.scripts
            .read()
            .expect("script cache lock")
            .iter()
            .map(|(sha, body)| sha.len() + body.len() + 64)
            .sum()
    }

    /// Number of cached scripts (INFO's `number_of_cached_scripts`).
    pub fn cached(&self) -> usize {
        self.scripts.read().expect("script cache lock").len()
    }

    /// SCRIPT FLUSH.
    pub fn flush(&self) {
        self.scripts.write().expect("script cache lock").clear();
        self.scripts_generation.fetch_add(1, Ordering::SeqCst);
    }

    /// The BUSY error when a script runs past the threshold, for a command that may not run
    /// meanwhile (every command but those flagged allow-busy, and SCRIPT KILL / FUNCTION KILL).
    pub fn busy_error(&self) -> Option<&'static str> {
        (self.busy_shard.load(Ordering::Relaxed) != NOT_BUSY).then_some(BUSY)
    }

    /// Marks shard `shard`'s script as running past the threshold.
    fn set_busy(&self, shard: usize, wrote: bool, function: bool) {
        self.busy_wrote.store(wrote, Ordering::SeqCst);
        self.busy_function.store(function, Ordering::SeqCst);
        self.busy_shard.store(shard, Ordering::SeqCst);
    }

    /// Records the busy script FUNCTION STATS shows.
    fn set_running(&self, running: Running) {
        *self.running.lock().expect("running script lock") = Some(Arc::new(running));
    }

    /// The busy script, if any.
    pub fn running(&self) -> Option<Arc<Running>> {
        if self.busy_shard.load(Ordering::SeqCst) == NOT_BUSY {
            return None;
        }
        self.running.lock().expect("running script lock").clone()
    }

    /// True when the busy script is a function (FCALL), not EVAL's.
    pub fn busy_is_function(&self) -> bool {
        self.busy_function.load(Ordering::SeqCst)
    }

    /// Notes that the busy script of `shard` wrote.
    fn note_write(&self, shard: usize) {
        if self.busy_shard.load(Ordering::SeqCst) == shard {
            self.busy_wrote.store(true, Ordering::SeqCst);
        }
    }

    /// Clears the busy mark of `shard`'s script (it ended).
    fn clear_busy(&self, shard: usize) {
        if self.busy_shard.load(Ordering::SeqCst) == shard {
            self.kill_requested.store(false, Ordering::SeqCst);
            self.busy_shard.store(NOT_BUSY, Ordering::SeqCst);
            *self.running.lock().expect("running script lock") = None;
        }
    }

    /// SCRIPT KILL (`function` false) or FUNCTION KILL (true).
    ///
    /// # Errors
    /// NOTBUSY when no script runs past the threshold, UNKILLABLE when it wrote.
    pub fn kill(&self, function: bool) -> Result<(), &'static str> {
        if self.busy_shard.load(Ordering::SeqCst) == NOT_BUSY {
            return Err(NOTBUSY);
        }
        if self.busy_function.load(Ordering::SeqCst) != function {
            return Err(if function {
                BUSY
            } else {
                "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
            });
        }
        if self.busy_wrote.load(Ordering::SeqCst) {
            return Err(UNKILLABLE);
        }
        self.kill_requested.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// True (once) when SCRIPT KILL asked the busy script of `shard` to stop.
    fn take_kill(&self, shard: usize) -> bool {
        self.busy_shard.load(Ordering::SeqCst) == shard
            && self.kill_requested.swap(false, Ordering::SeqCst)
    }
}

/// One compiled script or function, ready to call.
#[derive(Clone)]
pub struct Compiled {
    /// The Lua function, shared: every call takes a copy of its script's `Compiled`, and
    /// cloning an mlua handle takes a registry slot (and dropping it gives it back).
    pub function: Rc<Function>,
    /// Flags from the `#!lua` shebang or `register_function`.
    pub flags: ScriptFlags,
}

bitflags::bitflags! {
    /// Flags a script declares (`#!lua flags=...`) or a function registers.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct ScriptFlags: u8 {
        /// no-writes: the script only reads.
        const NO_WRITES = 1 << 0;
        /// allow-oom: may run over maxmemory.
        const ALLOW_OOM = 1 << 1;
        /// allow-stale.
        const ALLOW_STALE = 1 << 2;
        /// no-cluster.
        const NO_CLUSTER = 1 << 3;
        /// allow-cross-slot-keys.
        const ALLOW_CROSS_SLOT = 1 << 4;
        /// The script had a shebang (flags are then enforced as Redis 7 does).
        const SHEBANG = 1 << 7;
    }
}

/// One Lua interpreter, sandboxed, and what a run needs of it.
#[derive(Default)]
pub struct Interpreter {
    lua: OnceCell<Lua>,
    /// The sandbox's runners of scripts and functions, and the C function that sets up a
    /// run's KEYS and ARGV (see [`rawcall`]).
    runners: OnceCell<(Function, Function, Function)>,
    /// The coroutine of the last run that ended normally, for the next run.
    pub(crate) spare_thread: RefCell<Option<mlua::Thread>>,
}

impl Interpreter {
    /// Bytes it holds (0 before it is created).
    fn bytes(&self) -> usize {
        self.lua.get().map_or(0, Lua::used_memory)
    }

    /// The interpreter, created (and sandboxed) on first use, with `state` as its runs' state.
    fn lua(&self, state: &Rc<RefCell<Option<run::RunState>>>) -> mlua::Result<&Lua> {
        if let Some(lua) = self.lua.get() {
            return Ok(lua);
        }
        let lua = sandbox::new_interpreter(state.clone())?;
        Ok(self.lua.get_or_init(|| lua))
    }
}

/// A shard's interpreters and its compiled scripts and functions. Scripts (EVAL, SCRIPT LOAD)
/// and function libraries (FUNCTION LOAD, FCALL) have an interpreter each, as in Redis 7:
/// SCRIPT FLUSH gives the scripts' back whole ([`Engine::without_scripts`]), INFO tells their
/// memory apart (`used_memory_vm_eval`, `used_memory_vm_functions`), and a library's garbage
/// never counts as the scripts'.
#[derive(Default)]
pub struct Engine {
    /// The scripts' interpreter.
    eval: Interpreter,
    /// The function libraries' interpreter.
    library: Interpreter,
    /// Compiled scripts by SHA1 hex.
    scripts: RefCell<HashMap<String, Compiled>>,
    /// The script found last, by its SHA1 as asked: EVALSHA mostly repeats one script, and
    /// comparing 40 bytes costs less than hashing them.
    last_script: RefCell<Option<(String, Compiled)>>,
    /// The registry's script generation the compiled scripts belong to.
    scripts_generation: Cell<u64>,
    /// Functions by name, loaded from the registry's libraries.
    functions: RefCell<HashMap<String, Compiled>>,
    /// The registry's library generation the functions belong to (`None`: none loaded yet).
    functions_generation: Cell<Option<u64>>,
    /// Scripts that touched keys they did not declare on shards they did not hold: they run
    /// with every shard held from then on.
    pub wide: RefCell<HashSet<String>>,
    /// The script running now, for `redis.call` and the hook.
    pub(crate) state: Rc<RefCell<Option<run::RunState>>>,
    /// The box of the last run's client, for the next run's (which overwrites what it holds:
    /// until then it keeps the last caller's handle, one small allocation).
    pub(crate) spare_client: RefCell<Option<Box<crate::client::Client>>>,
}

impl Engine {
    /// Bytes the shard's interpreters hold, the scripts' and the libraries' (0 before their
    /// first use); they allocate through the process's allocator, so they are part of
    /// `used_memory`.
    pub fn lua_bytes(&self) -> (usize, usize) {
        (self.eval.bytes(), self.library.bytes())
    }

    /// The interpreter of functions (`function`) or of scripts.
    pub fn interpreter(&self, function: bool) -> &Interpreter {
        if function {
            &self.library
        } else {
            &self.eval
        }
    }

    /// The functions' interpreter (`function`) or the scripts', created on first use.
    ///
    /// # Errors
    /// When the interpreter cannot be created.
    pub fn lua(&self, function: bool) -> mlua::Result<&Lua> {
        self.interpreter(function).lua(&self.state)
    }

    /// The function a run's coroutine starts in (a script's or a function's), and the setup
    /// function it gets first.
    ///
    /// # Errors
    /// When the interpreter cannot be created.
    pub fn runner(&self, function: bool) -> mlua::Result<(&Function, &Function)> {
        let interpreter = self.interpreter(function);
        let (script, library_function, setup) = match interpreter.runners.get() {
            Some(runners) => runners,
            None => {
                let lua = interpreter.lua(&self.state)?;
                let runners = (
                    lua.named_registry_value("ember_run_script")?,
                    lua.named_registry_value("ember_run_function")?,
                    lua.named_registry_value("ember_setup")?,
                );
                interpreter.runners.get_or_init(|| runners)
            }
        };
        let runner = if function { library_function } else { script };
        Ok((runner, setup))
    }

    /// This engine after SCRIPT FLUSH: the scripts' interpreter and everything compiled in it
    /// dropped (the next script creates a fresh one), the libraries' kept.
    pub fn without_scripts(self, registry: &Registry) -> Self {
        Self {
            eval: Interpreter::default(),
            scripts: RefCell::default(),
            last_script: RefCell::default(),
            scripts_generation: Cell::new(registry.scripts_generation.load(Ordering::SeqCst)),
            wide: RefCell::default(),
            ..self
        }
    }

    /// Drops the compiled scripts when the registry's cache was flushed since they were
    /// compiled, and collects the scripts' interpreter's garbage then. SCRIPT FLUSH normally
    /// replaces the engine by [`Engine::without_scripts`] on every shard; this is for an engine
    /// a run still held then.
    pub fn forget_scripts(&self, registry: &Registry) {
        let generation = registry.scripts_generation.load(Ordering::SeqCst);
        if self.scripts_generation.get() == generation {
            return;
        }
        self.scripts.borrow_mut().clear();
        self.last_script.take();
        self.wide.borrow_mut().clear();
        self.scripts_generation.set(generation);
        if let Some(lua) = self.eval.lua.get() {
            // A collection failing (a finalizer's error) leaves garbage for the next cycle.
            let _ = lua.gc_collect();
        }
    }

    /// The compiled script `sha`, compiling it from the registry when needed.
    ///
    /// # Errors
    /// NOSCRIPT when the registry does not have it; a compile error.
    pub fn script(&self, registry: &Registry, sha: &str) -> Result<Compiled, String> {
        self.forget_scripts(registry);
        if let Some((last_sha, compiled)) = self.last_script.borrow().as_ref() {
            if last_sha == sha {
                return Ok(compiled.clone());
            }
        }
        if let Some(compiled) = self.scripts.borrow().get(sha) {
            *self.last_script.borrow_mut() = Some((sha.to_owned(), compiled.clone()));
            return Ok(compiled.clone());
        }
        let body = registry.body(sha).ok_or_else(|| NOSCRIPT.to_owned())?;
        let lua = self.lua(false).map_err(|e| e.to_string())?;
        let compiled = sandbox::compile_script(lua, &body)?;
        self.scripts
            .borrow_mut()
            .insert(sha.to_owned(), compiled.clone());
        Ok(compiled)
    }

    /// The function `name`, loading the registry's libraries when they changed.
    ///
    /// # Errors
    /// When no function has that name.
    pub fn function(&self, registry: &Registry, name: &str) -> Result<Compiled, String> {
        let generation = registry.libraries_generation.load(Ordering::SeqCst);
        if self.functions_generation.get() != Some(generation) {
            let lua = self.lua(true).map_err(|e| e.to_string())?;
            let libraries = registry.libraries.read().expect("libraries lock");
            let mut loaded = HashMap::new();
            for library in libraries.iter() {
                // Every library was checked when FUNCTION LOAD accepted it.
                if let Ok(functions) = functions::evaluate(lua, &library.code, None) {
                    // Function names are case-insensitive, as Redis 7 looks them up.
                    loaded.extend(
                        functions
                            .into_iter()
                            .map(|f| (f.name.to_ascii_lowercase(), f.compiled)),
                    );
                }
            }
            *self.functions.borrow_mut() = loaded;
            self.functions_generation.set(Some(generation));
        }
        self.functions
            .borrow()
            .get(&name.to_ascii_lowercase())
            .cloned()
            .ok_or_else(|| "ERR Function not found".to_owned())
    }
}
