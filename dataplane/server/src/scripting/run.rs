//! Running a script or function: holds, `redis.call`, the time limit, the reply.
//!
//! Holds. A script holds its own shard and its declared keys' shards (ascending, as EXEC and
//! every multi-shard write take them), so other clients of those shards wait until it ends and
//! the script is atomic. A script may touch keys it did not declare:
//! - when, before it wrote anything, it touches a key on a shard it lacks, or writes a key it
//!   did not declare, it takes every shard it lacks: waiting for them in ascending order when
//!   they are all above those it holds, else the run is abandoned (it changed nothing) and the
//!   script runs again with every shard held. Ember remembers the script, and later runs hold
//!   every shard from the start. A script that builds key names (a job queue's
//!   "namespace:queue") so holds every shard before its first write, and cannot need one
//!   afterwards;
//! - after it wrote, a shard above those it holds is waited for (ascending order still); a
//!   lower one, waiting for which could deadlock and undoing is not possible, is taken only
//!   when it is free, tried again while another operation holds it, for up to a quarter of a
//!   second ([`try_hold_all`]); past that the call fails with an error (as Redis Cluster
//!   fails a script that touches a key of another node). Later runs hold every shard.
//! - a script that declares no keys and touches one runs again with every shard held (it has
//!   changed nothing yet), and so do its later runs.
//!
//! Inside MULTI/EXEC every shard is held already, and the script runs under EXEC's hold.
//!
//! Lua runs on this shard's thread. `redis.call` is a C function that runs the command through
//! the executor at once when it needs no other shard (the common case: no future is kept,
//! nothing yields); on another shard it leaves the call pending and yields the script's
//! coroutine, which [`call_script`]'s resume loop resumes with the reply once the mesh
//! answered (see [`super::rawcall`]). Lua 5.1 cannot yield across
//! a C call such as its own `pcall`, so the sandbox's `pcall` runs Lua functions in a hooked
//! coroutine of their own and passes yields outward ([`hooked_coroutine_function`]):
//! `pcall(redis.call, ...)` works on any shard; metamethods and `table.sort` comparators still
//! cannot yield.
//!
//! Past busy-reply-threshold the count hook yields the coroutine every check (see
//! [`count_hook`]), so the script's own shard keeps serving its other connections: they get
//! BUSY, and SCRIPT KILL, FUNCTION KILL and FUNCTION STATS run, as in Redis.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use ember_resp::{Protocol, Reply, ReplySink};
use std::ffi::c_int;

use mlua::{ffi, Function, Lua, MultiValue, Value};
use smallvec::SmallVec;

use super::convert::lua_to_reply;
use super::{Compiled, Registry, ScriptFlags};
use crate::client::Client;
use crate::commands::multikey::{hold_all, release_all};
use crate::commands::{exec, CommandFlags, CommandResult, COMMANDS};
use crate::shard::{HoldToken, Shard, ShardRequest};

/// The running script, as `redis.call` and the hook see it.
pub struct RunState {
    shard: Rc<Shard>,
    /// The client the script's commands run as (taken while a command runs); boxed, and the
    /// box kept from run to run ([`super::Engine::spare_client`]), so the run's state moves
    /// in and out of its cell as a few hundred bytes less.
    client: Option<Box<Client>>,
    now_ms: u64,
    token: HoldToken,
    /// Shards held now.
    held: BTreeSet<usize>,
    /// Every shard is held (from the start, or by EXEC).
    wide: bool,
    /// The script declared no keys: any key it touches is undeclared.
    keyless: bool,
    /// KEYS, where the invocation keeps them (see [`RunState::declared`]).
    declared: (*const &'static [u8], usize),
    /// A write command ran (SCRIPT KILL refuses then).
    wrote: bool,
    /// The script ran a read-only command (client tracking remembers its declared keys).
    read: bool,
    /// EVAL_RO, FCALL_RO or `no-writes`.
    read_only: bool,
    /// A shebang script or function flagged allow-oom: its writes pass maxmemory.
    allow_oom: bool,
    /// `redis.setresp(3)`.
    resp3: bool,
    /// When the run started, on the cheap clock (an `Instant` read was 1.7% of a shard's time
    /// under EVALSHA of the flash-sale script).
    started: crate::clock::Ticks,
    threshold_ms: u64,
    busy: bool,
    function: bool,
    /// A key on a lower shard than held, before any write: run again with every shard held.
    restart: bool,
    /// The script must hold every shard next time.
    learn_wide: bool,
    /// A multi-shard write is marked begun ([`crate::shard::MultiWrites`]).
    multi_write: bool,
    /// The last error raised through `redis.call` or `error({...})`, with its line, and
    /// whether it was raised as a table.
    pub(crate) noted_error: Option<NotedError>,
    /// SCRIPT KILL stopped the script at this line.
    killed: Option<Option<i32>>,
    /// Where the error that ended the run was raised ([`error_place`]).
    error_place: Option<ErrorPlace>,
    /// What FUNCTION STATS shows once the script is busy.
    running: Option<RunningSource>,
    /// A `redis.call` waiting for another shard, until the resume loop takes it.
    pending: Option<PendingCall>,
    /// Where that call was made ([`call_script`] resumes it there).
    wait_site: Option<WaitSite>,
    /// Where the calls that run at once write their replies (each taken before the next).
    call_sink: ReplySink,
}

impl RunState {
    /// The script's declared keys.
    fn declared(&self) -> &[&[u8]] {
        let (start, len) = self.declared;
        // SAFETY: they point into the invocation `invoke` runs, which outlives the run's
        // state (`invoke` takes the state out before it returns); the `'static` is never
        // handed out beyond `&self`'s lifetime.
        unsafe { std::slice::from_raw_parts(start, len) }
    }

    /// True when `args` are the run's first write and touch a key the script did not declare,
    /// in a run that holds only some shards: the script builds key names, and before it writes
    /// it takes every shard ([`hold_keys`]).
    fn first_write_undeclared(
        &self,
        shard: &Shard,
        spec: &crate::commands::CommandSpec,
        args: &[&[u8]],
    ) -> bool {
        !self.wide
            && !self.wrote
            && shard.count() > 1
            && spec.has(CommandFlags::WRITE)
            && spec
                .key_args(args)
                .iter()
                .any(|key| !self.declared().contains(key))
    }
}

/// What FUNCTION STATS shows of a script that runs past the threshold, copied from the
/// invocation only then (most runs end long before).
struct RunningSource {
    name: *const str,
    /// Where the command's `&[u8]` arguments start, and how many.
    command: (*const (), usize),
    started: crate::clock::Ticks,
}

impl RunningSource {
    fn copy(&self) -> super::Running {
        // SAFETY: both point into the invocation `invoke` runs, which outlives the run's state:
        // `invoke` takes the state out before it returns, and only the state holds this.
        let (name, command) = unsafe {
            let (start, len) = self.command;
            (
                &*self.name,
                std::slice::from_raw_parts(start as *const &[u8], len),
            )
        };
        super::Running {
            name: name.to_owned(),
            command: command.iter().map(|arg| arg.to_vec()).collect(),
            started: Instant::now()
                - std::time::Duration::from_micros(crate::clock::elapsed_us(
                    self.started,
                    crate::clock::now(),
                )),
        }
    }
}

/// An error a script is about to raise, remembered for its reply.
#[derive(Debug, Clone)]
pub(crate) struct NotedError {
    /// Its message.
    pub message: String,
    /// The script's line that raised it.
    pub line: Option<i32>,
    /// Raised as an error table.
    pub table: bool,
    /// Counted already in the error statistics (a failed `redis.call`).
    pub counted: bool,
    /// Raised by a `redis.call` that waited for another shard: Lua sees it raised at the
    /// script's next instruction, which may be on a later line than the call's.
    pub after_wait: bool,
}

/// How a `redis.call` that waits for another shard was made: whether it was `redis.pcall`,
/// and the script's line (its coroutine is the interpreter's wait site, see
/// [`super::rawcall`]).
pub(crate) struct WaitSite {
    pub protected: bool,
    pub line: Option<i32>,
}

/// Notes how the call that just left a pending call waits.
pub(crate) fn set_wait_site(state: &State, site: WaitSite) {
    with_run(state, |run| run.wait_site = Some(site));
}

/// Notes the error a `redis.call` is about to raise (its reply quotes it with `line`).
pub(crate) fn note_error(
    state: &State,
    message: String,
    line: Option<i32>,
    counted: bool,
    after_wait: bool,
) {
    if let Some(run) = state.borrow_mut().as_mut() {
        run.noted_error = Some(NotedError {
            message,
            line,
            table: false,
            counted,
            after_wait,
        });
    }
}

pub(crate) type State = Rc<RefCell<Option<RunState>>>;

/// What a `redis.call` came to, before it becomes Lua values.
pub(crate) enum Outcome {
    /// The command's reply, in the script's protocol.
    Reply(Reply, Protocol),
    /// Refused before it ran.
    Failure(std::borrow::Cow<'static, str>),
    /// Refused before it ran, the refusal counted already in the error statistics.
    Counted(std::borrow::Cow<'static, str>),
    /// Abandon the run; it starts again with every shard held.
    Restart,
}

impl From<&'static str> for Outcome {
    fn from(message: &'static str) -> Self {
        Self::Failure(message.into())
    }
}

/// A `redis.call` waiting for another shard.
type PendingCall = std::pin::Pin<Box<dyn std::future::Future<Output = Outcome>>>;

/// `redis.acl_check_cmd`: whether the script's user may run the command.
///
/// # Errors
/// Redis's errors for a call outside a script, no argument, or an unknown command.
pub fn acl_check(lua: &Lua, args: MultiValue) -> mlua::Result<bool> {
    let Some(state) = lua.app_data_ref::<State>() else {
        return Err(mlua::Error::RuntimeError(
            "redis.acl_check_cmd can only be called inside a script invocation".into(),
        ));
    };
    let (user, shard) = {
        let guard = state.borrow();
        let Some(run) = guard.as_ref() else {
            return Err(mlua::Error::RuntimeError(
                "redis.acl_check_cmd can only be called inside a script invocation".into(),
            ));
        };
        let user = run.client.as_ref().and_then(|client| client.user.clone());
        (user, run.shard.clone())
    };
    let mut owned: Vec<Vec<u8>> = Vec::new();
    for arg in args.iter() {
        owned.push(match arg {
            Value::String(text) => text.as_bytes().to_vec(),
            Value::Integer(value) => value.to_string().into_bytes(),
            Value::Number(value) => match integral(*value) {
                Some(integer) => integer.to_string().into_bytes(),
                None => number_text(*value).into_bytes(),
            },
            _ => {
                return Err(mlua::Error::RuntimeError(
                    "Lua redis lib command arguments must be strings or integers".into(),
                ))
            }
        });
    }
    if owned.is_empty() {
        return Err(mlua::Error::RuntimeError(
            "Please specify at least one argument for this redis lib call".into(),
        ));
    }
    let args: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
    let index = crate::commands::lookup(args[0])
        .filter(|&index| crate::commands::arity_ok(COMMANDS[index].arity, args.len()))
        .ok_or_else(|| {
            mlua::Error::RuntimeError("Invalid command passed to redis.acl_check_cmd()".into())
        })?;
    Ok(shard.shared.acl.allows(user.as_ref(), index, &args))
}

/// `redis.setresp`.
pub fn set_resp(lua: &Lua, resp3: bool) {
    if let Some(state) = lua.app_data_ref::<State>() {
        if let Some(run) = state.borrow_mut().as_mut() {
            run.resp3 = resp3;
        }
    }
}

/// The field of an error table whose error was counted already (Redis's name for it), so the
/// script's reply does not count it again.
pub(crate) const COUNTED_FIELD: &str = "ignore_error_stats_update";

/// The text of a call's number arguments, one after another in one buffer (its strings go to
/// the command as Lua holds them).
#[derive(Default)]
pub(crate) struct ArgBuffer {
    bytes: Vec<u8>,
    /// Where each argument ends in `bytes`.
    ends: SmallVec<[usize; 16]>,
}

impl ArgBuffer {
    /// Appends an argument.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
        self.ends.push(self.bytes.len());
    }

    /// Appends an integer argument, as text.
    fn push_integer(&mut self, value: i64) {
        ember_resp::encode::integer_text(&mut self.bytes, value);
        self.ends.push(self.bytes.len());
    }

    /// Appends a Lua number as text: an integral one (that fits) as an integer, others as
    /// Lua's `%.14g`, as mlua's conversion to values and then the callback wrote them.
    pub(crate) fn push_number(&mut self, value: f64) {
        match integral(value) {
            Some(integer) => self.push_integer(integer),
            None => self.push(number_text(value).as_bytes()),
        }
    }

    /// The arguments, in the order pushed.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let slice = &self.bytes[start..end];
            start = end;
            slice
        })
    }
}

/// A Lua number that is an integer, as one (Redis's `double2ll`): sent as its digits, never in
/// exponent form.
fn integral(value: f64) -> Option<i64> {
    if (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&value) {
        let integer = value as i64;
        if (value - integer as f64).abs() < f64::EPSILON {
            return Some(integer);
        }
    }
    None
}

/// A Lua number that is not an integer as a command argument: not Lua's own `%.14g`, which
/// loses precision, but the shortest text that reads back as the same number, as Redis 7.2
/// sends it (its `fpconv_dtoa`, the format of its double replies).
fn number_text(value: f64) -> String {
    ember_resp::encode::format_double(value)
}

thread_local! {
    /// Boxed, so taking it and giving it back moves a pointer, not the buffer.
    static CALL_ARGS: std::cell::Cell<Option<Box<ArgBuffer>>> = const { std::cell::Cell::new(None) };
}

/// The argument buffer of [`super::rawcall`], reused from call to call, emptied (a call never
/// runs inside another; one that did would find the buffer taken and use a new one).
pub(crate) fn take_arg_buffer() -> Box<ArgBuffer> {
    let mut buffer = CALL_ARGS.with(std::cell::Cell::take).unwrap_or_default();
    buffer.bytes.clear();
    buffer.ends.clear();
    buffer
}

/// Gives the argument buffer back for the next call.
pub(crate) fn give_arg_buffer(buffer: Box<ArgBuffer>) {
    CALL_ARGS.with(|slot| slot.set(Some(buffer)));
}

/// `redis.call` once the arguments are bytes: the outcome, or `None` when the command waits
/// for another shard (then it is kept in [`RunState::pending`]).
pub(crate) fn call_bytes(state: &State, args: &[&[u8]]) -> Option<Outcome> {
    let (index, shard, now_ms, resp3) = match check(state, args) {
        Ok(checked) => checked,
        Err(outcome) => return Some(outcome),
    };
    if let Some(outcome) = complete_now(state, &shard, args, index, now_ms, resp3) {
        return Some(outcome);
    }
    let owned: SmallVec<[Vec<u8>; 8]> = args.iter().map(|arg| arg.to_vec()).collect();
    let mut call: PendingCall =
        Box::pin(complete(state.clone(), shard, owned, index, now_ms, resp3));
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match call.as_mut().poll(&mut context) {
        std::task::Poll::Ready(outcome) => Some(outcome),
        std::task::Poll::Pending => {
            // The run's resume loop polls it again with the executor's waker.
            if with_run(state, |run| run.pending = Some(call)).is_none() {
                return Some(STALE_CALL.into());
            }
            None
        }
    }
}

/// Command names scripts called lately, as sent, with their table index: a script calls the
/// same few commands over and over, and comparing a few bytes is cheaper than hashing them.
const LOOKUPS_CACHED: usize = 8;

thread_local! {
    static LOOKUPS: RefCell<(usize, [(SmallVec<[u8; 16]>, usize); LOOKUPS_CACHED])> =
        RefCell::new(Default::default());
}

/// [`crate::commands::lookup`] through [`LOOKUPS`].
fn lookup_cached(name: &[u8]) -> Option<usize> {
    LOOKUPS.with(|cache| {
        let mut cache = cache.borrow_mut();
        let (next, entries) = &mut *cache;
        if let Some((_, index)) = entries
            .iter()
            .find(|(cached, _)| !cached.is_empty() && cached.as_slice() == name)
        {
            return Some(*index);
        }
        let index = crate::commands::lookup(name)?;
        entries[*next] = (SmallVec::from_slice(name), index);
        *next = (*next + 1) % LOOKUPS_CACHED;
        Some(index)
    })
}

/// What a script's call must pass before it runs: a known command with the right arity,
/// allowed in scripts, to the script's user, and (writes) to a script that may write.
fn check(state: &State, args: &[&[u8]]) -> Result<(usize, Rc<Shard>, u64, bool), Outcome> {
    let Some(&name) = args.first() else {
        return Err("ERR Please specify at least one argument for this redis lib call".into());
    };
    let guard = state.borrow();
    let Some(run) = guard.as_ref() else {
        return Err("ERR redis.call is only available while a script or function runs".into());
    };
    // Refusals from here on count as the refused command's error reply and rejected call, as
    // Redis's scriptCall counts them (the script's own error reply then does not count again).
    let refuse = |index: Option<usize>, outcome: Outcome| {
        if let Outcome::Failure(message) = &outcome {
            run.shard.stats.record_error(message);
            if let Some(index) = index {
                let id = crate::commands::acl::CATALOGUE.request_id(index, args);
                run.shard.stats.record_rejected(id);
            }
            return Outcome::Counted(message.clone());
        }
        outcome
    };
    let Some(index) = lookup_cached(name) else {
        return Err(refuse(
            None,
            "ERR Unknown Redis command called from script".into(),
        ));
    };
    let spec = &COMMANDS[index];
    let id = crate::commands::acl::CATALOGUE.request_id(index, args);
    if crate::commands::arity_refusal(index, id, args.len()).is_some() {
        return Err(refuse(
            Some(index),
            "ERR Wrong number of args calling Redis command from script".into(),
        ));
    }
    // CLUSTER RESET is Redis's one noscript subcommand of a container whose other subcommands
    // scripts may call.
    let noscript_subcommand = spec.name == "cluster"
        && args
            .get(1)
            .is_some_and(|sub| sub.eq_ignore_ascii_case(b"reset"));
    if (spec.has(CommandFlags::NOSCRIPT) || noscript_subcommand)
        && !crate::commands::server::admin::deny_scripts_disabled()
    {
        return Err(refuse(
            Some(index),
            "ERR This Redis command is not allowed from script".into(),
        ));
    }
    if let Some(client) = run.client.as_ref() {
        if let Err(denied) = run.shard.shared.acl.check(&run.shard, client, index, args) {
            return Err(refuse(
                Some(index),
                Outcome::Failure(denied.script_message().to_owned().into()),
            ));
        }
    }
    if (spec.name == "xread" || spec.name == "xreadgroup") && has_block_option(args) {
        let name = String::from_utf8_lossy(name);
        return Err(refuse(
            None,
            Outcome::Failure(
                format!("ERR {name} command is not allowed with BLOCK option from scripts").into(),
            ),
        ));
    }
    if run.restart {
        return Err(Outcome::Restart);
    }
    // Commands that may propagate (PUBLISH, PFCOUNT) count as writes here, as in Redis.
    if run.read_only && (spec.has(CommandFlags::WRITE) || crate::commands::pause::propagates(spec))
    {
        return Err(refuse(
            Some(index),
            "ERR Write commands are not allowed from read-only scripts.".into(),
        ));
    }
    // Over maxmemory a script's first write that may grow memory is refused, unless the
    // script is flagged allow-oom; once it wrote, it is not stopped halfway (Redis's
    // scriptVerifyOOM).
    if spec.has(CommandFlags::DENYOOM)
        && !run.allow_oom
        && !run.wrote
        && crate::memory::refuses_growth(&run.shard)
    {
        return Err(refuse(Some(index), crate::memory::OOM_ERROR.into()));
    }
    Ok((index, run.shard.clone(), run.now_ms, run.resp3))
}

/// Runs a checked call: holds the shards of its keys, then the command, through the executor
/// every connection uses.
async fn complete(
    state: State,
    shard: Rc<Shard>,
    owned: SmallVec<[Vec<u8>; 8]>,
    index: usize,
    now_ms: u64,
    resp3: bool,
) -> Outcome {
    let spec = &COMMANDS[index];
    let args: SmallVec<[&[u8]; 8]> = owned.iter().map(Vec::as_slice).collect();
    if let Err(message) = hold_keys(&state, &shard, spec, &args).await {
        return match message {
            None => Outcome::Restart,
            Some(message) => message.into(),
        };
    }
    let protocol = if resp3 {
        Protocol::Resp3
    } else {
        Protocol::Resp2
    };
    // A call left waiting inside a coroutine the script abandoned still has the client.
    let Some(mut client) = take_client(&state) else {
        return STALE_CALL.into();
    };
    client.protocol = protocol;
    let mut sink = ReplySink::values(protocol);
    exec::execute(&shard, &mut client, &args, now_ms, &mut sink, None).await;
    finish_call(&state, &shard, spec, client, sink, protocol)
}

/// The common case of a checked call, with no future: every key of the command is on a shard
/// the script holds and the command needs nothing but this shard
/// ([`exec::execute_now`]). `None` when it needs [`complete`] (nothing ran then).
fn complete_now(
    state: &State,
    shard: &Rc<Shard>,
    args: &[&[u8]],
    index: usize,
    now_ms: u64,
    resp3: bool,
) -> Option<Outcome> {
    let spec = &COMMANDS[index];
    let mut guard = state.borrow_mut();
    let run = guard.as_mut()?;
    // What hold_keys would find with nothing to take: the keys' shards are held already.
    let owned_here = |position: usize| run.held.contains(&shard.owner_of(args[position]));
    let held = run.wide
        || (!run.keyless
            && !spec.reads_named_keys(args)
            // With one shard every key is on the shard the run holds.
            && (shard.count() == 1
                || match spec.key_finder {
                    Some(finder) => finder(args).into_iter().all(owned_here),
                    None => spec.keys.positions(args.len()).all(owned_here),
                }));
    if !held || run.first_write_undeclared(shard, spec, args) {
        return None;
    }
    let protocol = if resp3 {
        Protocol::Resp3
    } else {
        Protocol::Resp2
    };
    // The state stays borrowed while the command runs: a keyspace command never reaches the
    // script's state (only `redis.call` and the hook do, and neither runs meanwhile).
    let client = run.client.as_mut()?;
    client.protocol = protocol;
    let sink = &mut run.call_sink;
    sink.set_protocol(protocol);
    if !exec::execute_now(shard, client, index, args, now_ms, sink) {
        return None;
    }
    let reply = sink.take_reply();
    note_call(run, shard, spec, &reply);
    Some(Outcome::Reply(reply, protocol))
}

/// A call's end: gives the client back to the script, notes a write or a read, and answers
/// the reply.
fn finish_call(
    state: &State,
    shard: &Rc<Shard>,
    spec: &crate::commands::CommandSpec,
    client: Box<Client>,
    mut sink: ReplySink,
    protocol: Protocol,
) -> Outcome {
    let reply = sink.take_reply();
    with_run(state, |run| {
        run.client = Some(client);
        note_call(run, shard, spec, &reply);
    });
    Outcome::Reply(reply, protocol)
}

/// Notes what a call did: a write (SCRIPT KILL then refuses) or a read.
fn note_call(
    run: &mut RunState,
    shard: &Shard,
    spec: &crate::commands::CommandSpec,
    reply: &Reply,
) {
    if spec.has(CommandFlags::WRITE) && reply.error_message().is_none() {
        run.wrote = true;
        shard.shared.scripts.note_write(shard.index);
    }
    run.read |= spec.has(CommandFlags::READONLY);
}

/// True when an XREAD or XREADGROUP request has a BLOCK option (before STREAMS).
fn has_block_option(args: &[&[u8]]) -> bool {
    let mut index = 1;
    while index < args.len() {
        let option = args[index];
        if option.eq_ignore_ascii_case(b"STREAMS") {
            return false;
        }
        if option.eq_ignore_ascii_case(b"BLOCK") {
            return true;
        }
        index += if option.eq_ignore_ascii_case(b"GROUP") {
            3
        } else if option.eq_ignore_ascii_case(b"COUNT") {
            2
        } else {
            1
        };
    }
    false
}

/// The reply to a `redis.call` made while another of the same script waits (a coroutine left
/// suspended), or resumed after its script ended.
const STALE_CALL: &str =
    "ERR redis.call cannot run while another call of the script waits in a coroutine";

fn take_client(state: &State) -> Option<Box<Client>> {
    state
        .borrow_mut()
        .as_mut()
        .and_then(|run| run.client.take())
}

/// Runs `f` on the running script's state; `None` when no script runs (a coroutine resumed
/// after its script ended).
fn with_run<R>(state: &State, f: impl FnOnce(&mut RunState) -> R) -> Option<R> {
    state.borrow_mut().as_mut().map(f)
}

/// Makes sure the shards of the command's keys are held (see the module's notes). `Err(None)`:
/// abandon the run and start again with every shard held; `Err(Some(message))`: fail the call.
async fn hold_keys(
    state: &State,
    shard: &Rc<Shard>,
    spec: &crate::commands::CommandSpec,
    args: &[&[u8]],
) -> Result<(), Option<&'static str>> {
    let (missing, token, in_order) = {
        let mut guard = state.borrow_mut();
        let Some(run) = guard.as_mut() else {
            return Err(Some(STALE_CALL));
        };
        if run.wide {
            return Ok(());
        }
        if run.keyless && !run.wrote && spec.keys.positions(args.len()).next().is_some() {
            // A script that declares no keys but touches some: it runs with every shard held
            // (it has changed nothing yet, so starting again is safe).
            run.learn_wide = true;
            run.restart = true;
            return Err(None);
        }
        let missing: BTreeSet<usize> = if spec.reads_named_keys(args) {
            // Keys its data names (SORT's patterns) may live on any shard.
            (0..shard.count())
                .filter(|owner| !run.held.contains(owner))
                .collect()
        } else {
            spec.key_positions(args)
                .into_iter()
                .map(|position| shard.owner_of(args[position]))
                .filter(|owner| !run.held.contains(owner))
                .collect()
        };
        let undeclared_write = run.first_write_undeclared(shard, spec, args);
        if missing.is_empty() && !undeclared_write {
            return Ok(());
        }
        // A key on a shard the run does not hold, or a first write of an undeclared key: the
        // script builds key names and may need any shard next. Later runs hold every shard
        // from the start.
        run.learn_wide = true;
        let highest = run.held.last().copied().unwrap_or(0);
        if !run.wrote {
            // Before its first write it takes every shard now (so that it never needs a
            // lower shard after a write, where it could neither wait nor start again):
            // waiting in ascending order when every shard it lacks is above those it holds,
            // else it starts again holding every shard (it has changed nothing).
            let rest: BTreeSet<usize> = (0..shard.count())
                .filter(|owner| !run.held.contains(owner))
                .collect();
            if rest.first().is_some_and(|&lowest| lowest < highest) {
                run.restart = true;
                return Err(None);
            }
            (rest, run.token, true)
        } else {
            let in_order = missing.first().is_none_or(|&lowest| lowest > highest);
            (missing, run.token, in_order)
        }
    };
    if !in_order {
        // It wrote, so it cannot start again: take the shards only when they are free,
        // trying again for a while (waiting out of ascending order could deadlock).
        return try_hold_all(state, shard, missing, token).await;
    }
    with_run(state, |run| {
        if !run.multi_write && !run.read_only {
            shard.shared.multi_writes.begin();
            run.multi_write = true;
        }
    });
    hold_all(shard, &missing, token).await;
    keep_holds(state, shard, missing, token).await?;
    with_run(state, |run| run.wide = run.held.len() == shard.count());
    Ok(())
}

/// Records shards just held for `token` in the running script, which releases them when it
/// ends; when that script already ended (a coroutine resumed late), releases them now, so a
/// hold can never outlive its script.
async fn keep_holds(
    state: &State,
    shard: &Rc<Shard>,
    taken: BTreeSet<usize>,
    token: HoldToken,
) -> Result<(), Option<&'static str>> {
    let kept = with_run(state, |run| {
        if run.token == token {
            run.held.extend(taken.iter().copied());
            true
        } else {
            false
        }
    });
    if kept == Some(true) {
        return Ok(());
    }
    release_all(shard, &taken, token).await;
    Err(Some(STALE_CALL))
}

/// Holds every shard of `missing`, for a script that wrote and needs shards below those it
/// holds: it cannot start again, and waiting for them as [`hold_all`] does could deadlock
/// against an operation that holds one of them and waits, in ascending order, for one this
/// script holds. So it only takes a shard when it is free, and tries again while another
/// operation holds it (an EXEC or a script ends in microseconds), up to [`TRY_HOLD_PATIENCE`];
/// past that (a deadlock, or a script running that long) the call fails.
async fn try_hold_all(
    state: &State,
    shard: &Rc<Shard>,
    missing: BTreeSet<usize>,
    token: HoldToken,
) -> Result<(), Option<&'static str>> {
    let deadline = Instant::now() + TRY_HOLD_PATIENCE;
    let mut taken = BTreeSet::new();
    let mut pause = std::time::Duration::from_micros(50);
    let all_free = loop {
        let pending: Vec<usize> = missing.difference(&taken).copied().collect();
        for owner in pending {
            let held = if owner == shard.index {
                shard.gate.try_hold(token)
            } else {
                let reply = shard.call(owner, ShardRequest::TryHold { token }).await;
                matches!(reply, crate::shard::ShardReply::Integer(1))
            };
            if held {
                taken.insert(owner);
            }
        }
        if taken.len() == missing.len() {
            break true;
        }
        if Instant::now() >= deadline {
            break false;
        }
        crate::runtime::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_millis(5));
    };
    with_run(state, |run| {
        if !run.multi_write && !run.read_only {
            shard.shared.multi_writes.begin();
            run.multi_write = true;
        }
    });
    // Whatever was taken is released with the script's other holds.
    keep_holds(state, shard, taken, token).await?;
    if all_free {
        Ok(())
    } else {
        Err(Some("ERR Script attempted to access a key on a shard busy with another operation after writing; declare every key it uses in KEYS (the next run holds every shard)"))
    }
}

/// How long a script that wrote tries to take a lower shard another operation holds.
const TRY_HOLD_PATIENCE: std::time::Duration = std::time::Duration::from_millis(250);

/// What the count hook does at one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HookAction {
    /// Keep running.
    Continue,
    /// Past the threshold: yield, so the shard serves its other clients (BUSY replies, SCRIPT
    /// KILL) before the script goes on.
    Yield,
    /// SCRIPT KILL: raise the kill error (`first`: from now on check on every line too).
    Kill { first: bool },
    /// No script of this thread runs (a coroutine resumed after its script ended): stop hooking.
    Detach,
}

/// The running script of this shard's thread, as its count hook sees it.
struct HookContext {
    state: State,
    registry: Arc<Registry>,
    shard: usize,
}

thread_local! {
    static HOOK: RefCell<Option<HookContext>> = const { RefCell::new(None) };
}

/// Makes `engine`'s state the one the count hook decides on. The context stays between runs
/// (it is the same for every run of this shard's engine; with no run the hook detaches), so a
/// run does not clone and drop it.
fn install_hook_context(engine: &super::Engine, registry: &Arc<Registry>, shard: usize) {
    HOOK.with(|slot| {
        let installed = slot
            .borrow()
            .as_ref()
            .is_some_and(|context| Rc::ptr_eq(&context.state, &engine.state));
        if !installed {
            *slot.borrow_mut() = Some(HookContext {
                state: engine.state.clone(),
                registry: registry.clone(),
                shard,
            });
        }
    });
}

/// The count hook's decision: marks the script busy past the threshold, and stops it on
/// SCRIPT KILL.
fn decide(
    state: &State,
    registry: &Registry,
    shard_index: usize,
    line: impl FnOnce() -> Option<i32>,
) -> HookAction {
    let Ok(mut guard) = state.try_borrow_mut() else {
        return HookAction::Continue; // redis.call is between steps; the next check decides.
    };
    let Some(run) = guard.as_mut() else {
        return HookAction::Detach;
    };
    if run.killed.is_some() {
        return HookAction::Kill { first: false };
    }
    if !run.busy
        && crate::clock::elapsed_us(run.started, crate::clock::now()) / 1000 >= run.threshold_ms
    {
        run.busy = true;
        registry.set_busy(shard_index, run.wrote, run.function);
        if let Some(source) = run.running.take() {
            registry.set_running(source.copy());
        }
    }
    if run.busy && registry.take_kill(shard_index) {
        run.killed = Some(line());
        return HookAction::Kill { first: true };
    }
    if run.busy {
        HookAction::Yield
    } else {
        HookAction::Continue
    }
}

/// Instructions between two checks of the time limit and of SCRIPT KILL; Redis checks as often.
const HOOK_INSTRUCTIONS: c_int = 100_000;

/// The kill error raised into the script.
const KILLED: &std::ffi::CStr = c"Script killed by user with SCRIPT KILL...";

/// The script coroutine's count hook, set through Lua's own `lua_sethook` rather than mlua's
/// (whose hooks cannot yield on Lua 5.1, which allows a count hook to yield).
///
/// Past the threshold it yields the coroutine: `lua_yield` from a count hook is Lua 5.1's
/// documented way to suspend a running function (resuming continues at the same instruction),
/// and the run's resume loop ([`call_script`]) answers a yield with no call waiting by
/// letting the shard's other tasks run (its other connections get BUSY, or run SCRIPT KILL
/// and FUNCTION STATS) before it resumes the script. A yield
/// is only possible with no C call between the hook and the coroutine's start (`pcall`, a
/// metamethod, `table.sort`'s comparator): then the hook does not yield and the shard keeps
/// running the script, as before.
///
/// After SCRIPT KILL the hook raises the kill error, and checks on every line from then on, so
/// a `pcall` loop cannot swallow it. No Rust value with a destructor is alive when it calls
/// `lua_error` (which unwinds with `longjmp`).
unsafe extern "C-unwind" fn count_hook(lua: *mut ffi::lua_State, debug: *mut ffi::lua_Debug) {
    // The line the script was stopped at, for the kill error.
    let line = || {
        // SAFETY: `debug` is this hook call's activation record.
        unsafe {
            // Only a line of the script itself (not of the sandbox's wrappers) names the place.
            let known = ffi::lua_getinfo(lua, c"Sl".as_ptr(), debug) != 0
                && (*debug).currentline > 0
                && !(*debug).source.is_null()
                && std::ffi::CStr::from_ptr((*debug).source)
                    .to_bytes()
                    .starts_with(b"@user_");
            known.then(|| (*debug).currentline)
        }
    };
    let action = HOOK.with(|slot| match slot.try_borrow() {
        Ok(context) => match context.as_ref() {
            Some(context) => decide(&context.state, &context.registry, context.shard, line),
            None => HookAction::Detach,
        },
        Err(_) => HookAction::Continue,
    });
    // SAFETY: `lua` is the hooked coroutine, running this hook on this thread.
    unsafe {
        match action {
            HookAction::Continue => {}
            HookAction::Detach => {
                ffi::lua_sethook(lua, None, 0, 0);
            }
            HookAction::Yield => {
                if yieldable_from_hook(lua) {
                    ffi::lua_yield(lua, 0);
                }
            }
            HookAction::Kill { first } => {
                if first {
                    ffi::lua_sethook(
                        lua,
                        Some(count_hook),
                        ffi::LUA_MASKCOUNT | ffi::LUA_MASKLINE,
                        HOOK_INSTRUCTIONS,
                    );
                }
                ffi::lua_pushstring(lua, KILLED.as_ptr());
                ffi::lua_error(lua);
            }
        }
    }
}

/// `pcall`'s coroutine: the sandbox's `pcall` runs a Lua function in a coroutine of its own
/// carrying the count hook, and passes the coroutine's yields outward, so a script busy inside
/// `pcall` still yields to its shard (and `pcall(redis.call, ...)` may wait for another shard).
/// Answers `nil` for what is not a Lua function (the prelude then calls Lua's own `pcall`);
/// after SCRIPT KILL raises the kill error, so a loop of `pcall`s stops.
///
/// # Errors
/// The kill error, or when Lua cannot allocate.
pub fn hooked_coroutine_function(lua: &Lua) -> mlua::Result<Function> {
    lua.create_function(|lua, f: Value| {
        let killed = HOOK.with(|slot| {
            slot.try_borrow().ok().and_then(|context| {
                context.as_ref().map(|context| {
                    context
                        .state
                        .try_borrow()
                        .ok()
                        .and_then(|run| run.as_ref().map(|run| run.killed.is_some()))
                        .unwrap_or(false)
                })
            })
        });
        if killed == Some(true) {
            return Err(mlua::Error::RuntimeError(
                KILLED.to_string_lossy().into_owned(),
            ));
        }
        let Value::Function(function) = f else {
            return Ok(Value::Nil);
        };
        if function.info().what != "Lua" {
            return Ok(Value::Nil);
        }
        let thread = lua.create_thread(function)?;
        if killed.is_some() {
            // SAFETY: a thread value's pointer is its lua_State, alive while `thread` is.
            unsafe {
                ffi::lua_sethook(
                    thread.to_pointer() as *mut ffi::lua_State,
                    Some(count_hook),
                    ffi::LUA_MASKCOUNT,
                    HOOK_INSTRUCTIONS,
                );
            }
        }
        Ok(Value::Thread(thread))
    })
}

/// The head of Lua 5.1.5's `struct lua_State` (lstate.h), as far as the C-call counters; the
/// vendored Lua is 5.1.5, and [`yieldable_from_hook`] checks the layout before trusting it.
#[repr(C)]
struct LuaStateHead {
    next: *mut std::ffi::c_void,
    tt: u8,
    marked: u8,
    status: u8,
    top: *mut u8,
    base: *mut u8,
    global: *mut std::ffi::c_void,
    ci: *mut std::ffi::c_void,
    savedpc: *const std::ffi::c_void,
    stack_last: *mut u8,
    stack: *mut u8,
    end_ci: *mut std::ffi::c_void,
    base_ci: *mut std::ffi::c_void,
    stacksize: c_int,
    size_ci: c_int,
    c_calls: u16,
    base_c_calls: u16,
    hookmask: u8,
    allowhook: u8,
}

/// Size of a Lua 5.1 `TValue` on 64-bit targets (a value and its type tag).
const TVALUE_SIZE: usize = 16;

/// True when the coroutine running this hook can yield: no C call sits between the hook and
/// the coroutine's start (Lua 5.1's `nCcalls == baseCcalls`; `lua_yield` raises an error
/// otherwise). The layout is trusted only when the fields read back what the API says: the
/// stack top and base match `lua_gettop`, the coroutine runs, and hooks are off inside a hook.
unsafe fn yieldable_from_hook(lua: *mut ffi::lua_State) -> bool {
    if cfg!(not(target_pointer_width = "64")) {
        return false;
    }
    // SAFETY: `lua` points at a live lua_State, whose first fields are those of LuaStateHead.
    unsafe {
        let head = &*(lua as *const LuaStateHead);
        let top_ok = head.top >= head.base
            && head.stack <= head.base
            && head.top <= head.stack_last
            && (head.top as usize - head.base as usize) / TVALUE_SIZE
                == ffi::lua_gettop(lua) as usize;
        let running = head.status == 0 && ffi::lua_status(lua) == 0;
        top_ok && running && head.allowhook == 0 && head.c_calls == head.base_c_calls
    }
}

/// What to run: a script (by SHA1) or a function (by name).
pub struct Invocation<'a> {
    /// The SHA1 hex or the function's name: the error replies name it.
    pub name: &'a str,
    /// The compiled code.
    pub compiled: Compiled,
    /// KEYS.
    pub keys: &'a [&'a [u8]],
    /// ARGV.
    pub argv: &'a [&'a [u8]],
    /// EVAL_RO / FCALL_RO.
    pub read_only: bool,
    /// FCALL (the function gets KEYS and ARGV as arguments).
    pub function: bool,
    /// The whole command (FUNCTION STATS shows it while the script is busy).
    pub command: &'a [&'a [u8]],
}

/// Runs a script or function for `client` and writes its reply into `out`.
///
/// # Errors
/// When the interpreter cannot be created.
pub async fn invoke(
    shard: &Rc<Shard>,
    client: &mut Client,
    invocation: Invocation<'_>,
    now_ms: u64,
    out: &mut ReplySink,
) -> CommandResult {
    let registry = &shard.shared.scripts;
    // The engine of this run, kept if SCRIPT FLUSH replaces the shard's meanwhile.
    let engine = shard.scripting();
    let engine = &*engine;
    let lua = engine
        .lua(invocation.function)
        .map_err(|error| format!("ERR {error}"))?
        .clone();
    let flags = invocation.compiled.flags;
    let read_only = invocation.read_only || flags.contains(ScriptFlags::NO_WRITES);
    // A script with flags (a shebang, or a function) is checked before it starts, as Redis's
    // scriptPrepareForRun does: one that may write is refused by the *_RO commands and needs
    // the replicas min-replicas-to-write asks for; over maxmemory only allow-oom (or
    // no-writes) lets it start.
    let flagged = invocation.function || flags.contains(ScriptFlags::SHEBANG);
    if flagged && !flags.contains(ScriptFlags::NO_WRITES) {
        if invocation.read_only {
            return Err("ERR Can not execute a script with write flag using *_ro command.".into());
        }
        if shard.config.borrow().min_replicas_to_write > 0 {
            return Err(exec::NOREPLICAS.into());
        }
    }
    if flagged
        && !flags.intersects(ScriptFlags::ALLOW_OOM | ScriptFlags::NO_WRITES)
        && crate::memory::refuses_growth(shard)
    {
        // Redis refuses it before it starts, as a deny-oom command (the script's flags make
        // EVAL's and FCALL's), with the usual OOM error.
        return Err(crate::memory::OOM_ERROR.into());
    }
    let threshold_ms = shard.config.borrow().busy_reply_threshold_ms;
    let all = || (0..shard.count()).collect::<BTreeSet<usize>>();
    let mut wide = client.hold.is_some() || {
        let scripts = engine.wide.borrow();
        !scripts.is_empty() && scripts.contains(invocation.name)
    };
    loop {
        let (token, taken, held) = match client.hold {
            Some(token) => (token, false, all()),
            None => {
                let held: BTreeSet<usize> = if wide {
                    all()
                } else {
                    // Inserted one by one: collecting into a BTreeSet sorts a vector first.
                    let mut held = BTreeSet::new();
                    held.insert(shard.index);
                    for key in invocation.keys {
                        held.insert(shard.owner_of(key));
                    }
                    held
                };
                (shard.new_hold_token(), true, held)
            }
        };
        let multi_write = taken && held.len() > 1 && !read_only;
        if multi_write {
            shard.shared.multi_writes.begin();
        }
        if taken {
            hold_all(shard, &held, token).await;
        }
        let started = crate::clock::now();
        let mut script_client = match engine.spare_client.borrow_mut().take() {
            Some(mut spare) => {
                *spare = Client::new(client.handle.clone(), true);
                spare
            }
            None => Box::new(Client::new(client.handle.clone(), true)),
        };
        script_client.db = client.db;
        script_client.no_touch = client.no_touch;
        script_client.script = true;
        script_client.time_ms = std::num::NonZeroU64::new(now_ms);
        script_client.user = client.user.clone();
        script_client.hold = Some(token);
        *engine.state.borrow_mut() = Some(RunState {
            shard: shard.clone(),
            client: Some(script_client),
            now_ms,
            token,
            held,
            wide: wide || !taken,
            keyless: invocation.keys.is_empty(),
            declared: (invocation.keys.as_ptr().cast(), invocation.keys.len()),
            wrote: false,
            read: false,
            read_only,
            allow_oom: flagged && flags.contains(ScriptFlags::ALLOW_OOM),
            resp3: false,
            started,
            threshold_ms,
            busy: false,
            function: invocation.function,
            restart: false,
            learn_wide: false,
            multi_write,
            noted_error: None,
            killed: None,
            error_place: None,
            running: Some(RunningSource {
                name: invocation.name,
                command: (
                    invocation.command.as_ptr() as *const (),
                    invocation.command.len(),
                ),
                started,
            }),
            pending: None,
            wait_site: None,
            call_sink: ReplySink::values(Protocol::Resp2),
        });
        install_hook_context(engine, registry, shard.index);
        let logged = crate::aof::ScriptBlock::new(token);
        let result = call_script(&lua, engine, &invocation).await;
        // Logged while its shards are still held.
        drop(logged);
        let mut run = engine
            .state
            .borrow_mut()
            .take()
            .expect("the script's state outlives it");
        if let Some(script_client) = run.client.take() {
            *engine.spare_client.borrow_mut() = Some(script_client);
        }
        registry.clear_busy(shard.index);
        if run.multi_write {
            shard.shared.multi_writes.end();
        }
        if taken {
            crate::commands::tracking::flush_held(shard, &run.held).await;
            release_all(shard, &run.held, token).await;
        }
        if run.read && !run.restart {
            crate::commands::tracking::after_script(shard, client, invocation.keys).await;
        }
        if run.learn_wide {
            engine.wide.borrow_mut().insert(invocation.name.to_owned());
        }
        if run.restart && taken {
            wide = true;
            continue;
        }
        match result {
            // Redis converts with the script's protocol (redis.setresp), not the client's: a
            // RESP3 client gets 1 for `return true` unless the script asked for RESP3.
            Ok(value) => {
                let protocol = if run.resp3 {
                    Protocol::Resp3
                } else {
                    Protocol::Resp2
                };
                // An error table a failed call returned was counted when the call failed.
                if let Value::Table(table) = &value {
                    client.error_counted =
                        matches!(table.raw_get::<Option<bool>>(COUNTED_FIELD), Ok(Some(true)))
                            && table.raw_get::<Value>("err").is_ok_and(|err| !err.is_nil());
                }
                lua_to_reply(&value, protocol).write_to(out)
            }
            Err(error) => {
                client.error_counted = error_counted(&error, &run);
                out.error(&error_message(&error, &run, &invocation));
            }
        }
        return Ok(());
    }
}

/// Calls the script in a coroutine of its own (so `redis.call` may yield while another shard
/// answers) that carries the time-limit hook (Lua 5.1 hooks are per coroutine).
///
/// The coroutine of a run that ended normally is kept and serves the next run (a finished Lua
/// 5.1 coroutine starts again with a new function, as mlua's own thread pool reuses them), so
/// a run allocates no coroutine; one that ended in an error is dropped.
async fn call_script(
    lua: &Lua,
    engine: &super::Engine,
    invocation: &Invocation<'_>,
) -> mlua::Result<Value> {
    let (runner, setup) = engine.runner(invocation.function)?;
    let interpreter = engine.interpreter(invocation.function);
    let spare = interpreter.spare_thread.borrow_mut().take();
    let thread = match spare {
        Some(thread) if thread.status() == mlua::ThreadStatus::Finished => {
            thread.reset(runner.clone())?;
            thread
        }
        _ => lua.create_thread(runner.clone())?,
    };
    // SAFETY: a thread value's pointer is its lua_State, alive while `thread` is.
    unsafe {
        ffi::lua_sethook(
            thread.to_pointer() as *mut ffi::lua_State,
            Some(count_hook),
            ffi::LUA_MASKCOUNT,
            HOOK_INSTRUCTIONS,
        );
    }
    // The first resume runs `setup` (KEYS and ARGV) before the script, while the invocation
    // is borrowed; the functions go by reference (pushed onto the coroutine's stack, not
    // cloned first).
    super::rawcall::set_arguments(invocation.keys, invocation.argv, !invocation.function);
    let mut resumed = thread.resume::<Value>((setup, &*invocation.compiled.function));
    super::rawcall::clear_arguments();
    // Ember's own resume loop: a coroutine that yields either made a call that waits for
    // another shard (resumed with its value once it completes, or armed to raise its error),
    // or is a busy script yielding to its shard from the count hook (resumed at once after the
    // shard's other tasks ran: they get BUSY, or run SCRIPT KILL and FUNCTION STATS).
    let result = loop {
        let value = match resumed {
            Ok(value) => value,
            Err(error) => break Err(error),
        };
        if thread.status() != mlua::ThreadStatus::Resumable {
            break Ok(value);
        }
        let waiting = with_run(&engine.state, |run| {
            run.pending.take().map(|call| (call, run.wait_site.take()))
        })
        .flatten();
        resumed = match waiting {
            None => {
                crate::runtime::yield_now().await;
                thread.resume::<Value>(())
            }
            Some((call, site)) => {
                let outcome = call.await;
                match site {
                    Some(site) => match after_wait(lua, &engine.state, &site, &outcome) {
                        Ok(Some(value)) => thread.resume::<Value>(value),
                        Ok(None) => thread.resume::<Value>(()),
                        Err(error) => Err(error),
                    },
                    None => thread.resume::<Value>(()),
                }
            }
        };
    };
    if result.is_err() {
        let place = error_place(&thread);
        if let Some(run) = engine.state.borrow_mut().as_mut() {
            run.error_place = place;
        }
    }
    if result.is_ok() && thread.status() == mlua::ThreadStatus::Finished {
        *interpreter.spare_thread.borrow_mut() = Some(thread);
    }
    result
}

/// What a call that waited came to, as the resume hands it to the script: `Some(value)` to
/// resume the coroutine with (the reply's value, or `redis.pcall`'s error table), or `None`
/// when the coroutine was armed to raise the call's error (or the restart).
fn after_wait(
    lua: &Lua,
    state: &State,
    site: &WaitSite,
    outcome: &Outcome,
) -> mlua::Result<Option<Value>> {
    let raise = match outcome {
        Outcome::Restart => Some(None),
        _ if site.protected => None,
        _ => super::rawcall::error_of(outcome).map(|(message, counted)| {
            note_error(state, message.to_owned(), site.line, counted, true);
            Some(message)
        }),
    };
    if let Some(message) = raise {
        // SAFETY: the closure pushes two values at most (exec_raw made room for three).
        unsafe { lua.exec_raw::<()>((), |l| super::rawcall::arm_raise(l, message))? };
        return Ok(None);
    }
    // The common replies become values without a protected call, whose two C functions would
    // be garbage at every wait; they convert as `push_reply` pushes them.
    match outcome {
        Outcome::Reply(Reply::Integer(value), _) => return Ok(Some(Value::Number(*value as f64))),
        Outcome::Reply(Reply::Bulk(bytes), _) => {
            return lua
                .create_string(bytes)
                .map(|text| Some(Value::String(text)))
        }
        _ => {}
    }
    // SAFETY: the closure pushes one value (exec_raw made room for three, what an error table
    // takes; a reply checks for more as it nests); an allocation failure raises inside
    // exec_raw's protected call, with nothing of Rust's alive in the closure but borrows.
    unsafe { lua.exec_raw::<Value>((), |l| super::rawcall::push_value(l, outcome)) }.map(Some)
}

/// The chunk and line an error was raised at.
#[derive(Debug, Clone)]
struct ErrorPlace {
    /// The chunk's source as Lua holds it: `@user_script`, or a `loadstring` chunk's text.
    source: String,
    line: i32,
}

/// Where the error that ended a run was raised, as Redis's error handler reports it: the
/// innermost frame of the script's (dead) coroutine that is a Lua function and not the
/// sandbox's. Lua 5.1 leaves a coroutine's frames in place when an error ends it.
fn error_place(thread: &mlua::Thread) -> Option<ErrorPlace> {
    let state = thread.to_pointer() as *mut ffi::lua_State;
    // SAFETY: a thread value's pointer is its lua_State, alive while `thread` is, and not
    // running; a frame's `what` and `source` are NUL-terminated strings Lua owns while the
    // frame's function is on the stack, as it is here.
    unsafe {
        // Neither a C function nor the mark a tail call leaves (a script's `return f()`
        // replaced its own frame): Lua names no line there.
        let frame = super::globals::find_frame(state, 0, |frame| {
            !matches!(
                std::ffi::CStr::from_ptr(frame.what).to_bytes(),
                b"C" | b"tail"
            )
        })?;
        Some(ErrorPlace {
            source: String::from_utf8_lossy(std::ffi::CStr::from_ptr(frame.source).to_bytes())
                .into_owned(),
            line: frame.currentline,
        })
    }
}

/// The error reply of a failed run, as Redis 7 words it:
/// `<message> script: <name>, on @user_script:<line>.`, naming where the error was raised
/// (a `loadstring` chunk's source where it was raised in one).
fn error_message(error: &mlua::Error, run: &RunState, invocation: &Invocation<'_>) -> String {
    let source = if invocation.function {
        "@user_function"
    } else {
        "@user_script"
    };
    // `line` is the call's where the error was raised after a wait: Lua raised it at the
    // script's next instruction.
    let place_at = |line: Option<i32>, after_wait: bool| match &run.error_place {
        Some(raised) if run.killed.is_none() => format!(
            " script: {}, on {}:{}.",
            invocation.name,
            raised.source,
            line.filter(|_| after_wait).unwrap_or(raised.line)
        ),
        _ => format!(
            " script: {}, on {source}:{}.",
            invocation.name,
            line.map_or_else(|| "0".to_owned(), |line| line.to_string())
        ),
    };
    let place = |line: Option<i32>| place_at(line, false);
    let (message, traceback) = innermost(error);
    if let Some(line) = run.killed {
        let line = line.or_else(|| line_of(&traceback));
        return format!(
            "ERR Script killed by user with SCRIPT KILL...{}",
            place(line)
        );
    }
    if let Some(noted) = &run.noted_error {
        if noted_matches(noted, &message) {
            return format!(
                "{}{}",
                super::convert::error_text(&noted.message),
                place_at(noted.line, noted.after_wait)
            );
        }
    }
    let line = line_of(&message).or_else(|| line_of(&traceback));
    if is_table_text(&message) {
        return format!("ERR unknown error{}", place(line));
    }
    format!("ERR {}{}", message.replace(['\r', '\n'], " "), place(line))
}

/// True when the error raised (`message`) is the one the script noted before raising it.
fn noted_matches(noted: &NotedError, message: &str) -> bool {
    message == noted.message || (noted.table && is_table_text(message))
}

/// True when the error a run ended with was counted already, when the call that failed ran.
fn error_counted(error: &mlua::Error, run: &RunState) -> bool {
    run.killed.is_none()
        && run
            .noted_error
            .as_ref()
            .is_some_and(|noted| noted.counted && noted_matches(noted, &innermost(error).0))
}

/// True when `message` is how Lua or mlua print a table raised as an error.
fn is_table_text(message: &str) -> bool {
    message.starts_with("<table") || message.starts_with("table: ")
}

/// The innermost message of a (possibly wrapped) Lua error, and the traceback when a Rust
/// callback raised it.
pub(crate) fn innermost(error: &mlua::Error) -> (String, String) {
    let mut traceback = String::new();
    let mut current = error;
    loop {
        match current {
            mlua::Error::CallbackError {
                cause,
                traceback: trace,
            } => {
                if traceback.is_empty() {
                    traceback = trace.clone();
                }
                current = cause;
            }
            mlua::Error::RuntimeError(message) => {
                // Lua's message handler appends the stack; the reply carries the message only.
                let message = message
                    .split_once("\nstack traceback:")
                    .map_or(message.as_str(), |(head, _)| head);
                return (message.to_owned(), traceback);
            }
            mlua::Error::WithContext { cause, .. } => current = cause,
            other => return (other.to_string(), traceback),
        }
    }
}

/// The first `user_script:N:` (or `user_function:N:`) line number in `text`.
fn line_of(text: &str) -> Option<i32> {
    ["user_script:", "user_function:"]
        .iter()
        .find_map(|marker| {
            let start = text.find(marker)? + marker.len();
            let digits: String = text[start..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        })
}
