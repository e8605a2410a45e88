//! The append-only file: with `appendonly yes`, every write is logged as the command that
//! repeats it, and `ember` replays the log at start, so a restart loses at most what
//! `appendfsync` allows (nothing with `always`, about a second with `everysec`, the default).
//!
//! The layout is Redis 7's multi-part AOF, so a directory moves between Ember and Redis either
//! way: in `dir`/`appenddirname`, a manifest (`appendonly.aof.manifest`) names one base file
//! (`appendonly.aof.N.base.rdb`, an RDB snapshot) and the increment files after it
//! (`appendonly.aof.M.incr.aof`, commands in RESP). BGREWRITEAOF takes a background snapshot as
//! BGSAVE does (copy-on-write by segment, no fork: [`crate::persistence`]); at its moment, while
//! every shard is held, the log moves on to a new increment file; once the snapshot is written
//! as the new base, the manifest names the two and the old files go.
//!
//! **One order for all shards.** The shards share one log, appended under a lock at the moment
//! each command runs. That order is a valid order of execution: a command's record follows
//! every record of the keys it read or wrote (they ran before it on their shard, or before the
//! holds that a command spanning shards takes), and precedes every later one. A record that
//! concerns every key (FLUSHALL, SWAPDB) is written while every shard is held. One lock for the
//! process is a departure from Ember's shared-nothing rule: the log is one file in one order,
//! and a copy into a buffer under an uncontended lock is cheaper than merging per-shard logs.
//!
//! **What is logged** is the command as it ran, or its effect where replaying the command
//! would not give the same result: relative expiries become absolute (`PEXPIREAT`, `SET ...
//! PXAT`), a float increment becomes the value it produced, a random pop the members it took,
//! `XADD *` the ID it chose, a served blocking pop the pop itself, and an expiry or an eviction
//! the `DEL` that removed the key. While the log is replayed, no TTL passes
//! ([`ember_store::value::suspend_expiry`]), as in Redis: a key's expiry is in the log where it
//! happened.
//!
//! **When it reaches the disk.** The records of a batch are written (`write`) before its
//! replies leave ([`before_reply`], from the connection's flush), so an acknowledged write survives
//! the process's death; `appendfsync always` syncs them there too, `everysec` syncs once a
//! second on a thread of its own, `no` leaves it to the kernel.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ember_resp::{Limits, Outcome, Protocol, ReplySink, RequestParser};

use crate::client::{Client, ClientHandle};
use crate::config::Config;
use crate::shard::{HoldToken, Shard};
use crate::stats::unix_time_ms;

/// The process's log.
pub static AOF: Aof = Aof::new();

/// How often the background thread writes out records no reply has written yet (an expiry's
/// `DEL`, a transport's command) and, with `everysec`, syncs.
const BACKGROUND_PERIOD: Duration = Duration::from_millis(100);
/// `everysec`'s period.
const SYNC_PERIOD: Duration = Duration::from_secs(1);
/// Commands a replay sends before it waits for the other shards' replies.
const REPLAY_BATCH_LEN: u64 = 1024;
/// The longest argument a log may hold: Redis's `proto-max-bulk-len` ceiling.
const ARGUMENT_LEN_MAX: usize = 512 * 1024 * 1024;

/// `appendfsync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    Always,
    EverySecond,
    No,
}

impl Fsync {
    fn of(config: &Config) -> Self {
        match config.value("appendfsync") {
            "always" => Self::Always,
            "no" => Self::No,
            _ => Self::EverySecond,
        }
    }
}

/// The log's state, its counters for INFO, and the lock over its buffer and file.
#[derive(Debug)]
pub struct Aof {
    /// Records are appended: `appendonly yes` and an increment file open.
    on: AtomicBool,
    log: Mutex<Option<Log>>,
    /// A replay at start is pending or under way: the other shards wait before they listen.
    loading: AtomicBool,
    /// Shards that have put the base snapshot's keys in place (the replay starts after all).
    shards_loaded: AtomicUsize,
    rewriting: AtomicBool,
    rewrite_since_s: AtomicU64,
    rewrite_scheduled: AtomicBool,
    last_rewrite_ok: AtomicBool,
    last_rewrite_seconds: AtomicI64,
    rewrites: AtomicU64,
    rewrite_failures_in_a_row: AtomicU64,
    /// The next rewrite turns the log on ([`begin`]); otherwise a rewrite with the log off
    /// only writes the files (Redis's BGREWRITEAOF with `appendonly no`).
    enabling: AtomicBool,
    /// The log closed while a rewrite ran (CONFIG SET appendonly no): its base is dropped.
    abandoned: AtomicBool,
    last_write_ok: AtomicBool,
    /// Bumped when the log closes, so the background thread of an earlier one ends.
    generation: AtomicU64,
    /// [`Log::written_bytes`] as of the last sync that succeeded.
    synced_bytes: AtomicU64,
    /// The open log's `appendfsync` is `always`: a failure to write or sync it ends the process.
    always: AtomicBool,
}

/// The open log.
#[derive(Debug)]
struct Log {
    /// Records not written yet.
    buffer: Vec<u8>,
    /// The database the last record ran in (a `SELECT` precedes a record in another).
    selected_db: Option<usize>,
    /// The last increment file, opened to append.
    file: File,
    fsync: Fsync,
    directory: PathBuf,
    /// `appendfilename`: the files' prefix.
    name: String,
    manifest: Manifest,
    /// Sizes for INFO: the base file, and the base and increments together.
    base_bytes: u64,
    total_bytes: u64,
    /// Bytes written since the process started, all files together (never reset): what a
    /// sync covers ([`Aof::synced_bytes`]).
    written_bytes: u64,
    /// `total_bytes` after the last rewrite (or at opening): `auto-aof-rewrite-percentage`
    /// measures growth from it.
    rewritten_bytes: u64,
    /// A transaction runs ([`Transaction`]): `Some(false)` until its first record, which
    /// `MULTI` precedes, `Some(true)` after it.
    transaction: Option<bool>,
    /// The records of running scripts, by their hold, each with its database, until the
    /// script ends ([`ScriptBlock`]).
    blocks: std::collections::HashMap<BlockId, Vec<(usize, Vec<u8>)>>,
}

/// Redis 7's manifest: the base file and the increment files, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// File name and sequence number.
    pub base: Option<(String, u64)>,
    pub increments: Vec<(String, u64)>,
}

impl Manifest {
    /// Reads a manifest's text: lines of `file NAME seq N type b|h|i` (history files are
    /// forgotten; `#` starts a comment).
    ///
    /// # Errors
    /// A line that is not of that form.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut manifest = Self::default();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            let mut name = None;
            let mut seq = None;
            let mut kind = None;
            for pair in words.chunks(2) {
                match pair {
                    ["file", value] => name = Some(value.trim_matches('"').to_string()),
                    ["seq", value] => seq = value.parse::<u64>().ok(),
                    ["type", value] => kind = Some(*value),
                    [_, _] => {} // Keys of later versions.
                    _ => return Err(format!("invalid manifest line '{line}'")),
                }
            }
            let (Some(name), Some(seq), Some(kind)) = (name, seq, kind) else {
                return Err(format!("invalid manifest line '{line}'"));
            };
            if name.contains('/') {
                return Err(format!("invalid file name '{name}' in the manifest"));
            }
            match kind {
                "b" if manifest.base.is_none() => manifest.base = Some((name, seq)),
                "b" => return Err("the manifest names two base files".into()),
                "h" => {}
                "i" => manifest.increments.push((name, seq)),
                other => return Err(format!("unknown file type '{other}' in the manifest")),
            }
        }
        Ok(manifest)
    }

    /// The manifest's text.
    pub fn text(&self) -> String {
        let mut text = String::new();
        if let Some((name, seq)) = &self.base {
            text.push_str(&format!("file {name} seq {seq} type b\n"));
        }
        for (name, seq) in &self.increments {
            text.push_str(&format!("file {name} seq {seq} type i\n"));
        }
        text
    }

    /// Every file it names, the base first.
    fn names(&self) -> impl Iterator<Item = &str> {
        self.base
            .iter()
            .chain(&self.increments)
            .map(|(name, _)| name.as_str())
    }

    /// The base file's size and the base's and increments' together, in `directory`.
    fn sizes(&self, directory: &Path) -> (u64, u64) {
        let size = |name: &str| {
            std::fs::metadata(directory.join(name))
                .map(|m| m.len())
                .unwrap_or(0)
        };
        let base = self.base.as_ref().map_or(0, |(name, _)| size(name));
        let increments: u64 = self.increments.iter().map(|(name, _)| size(name)).sum();
        (base, base + increments)
    }

    /// Deletes from `directory` the files this manifest named that `newer` does not.
    fn remove_files_not_in(&self, newer: &Manifest, directory: &Path) {
        for name in self.names() {
            if !newer.names().any(|kept| kept == name) {
                let _ = std::fs::remove_file(directory.join(name));
            }
        }
    }

    fn next_increment_seq(&self) -> u64 {
        self.increments
            .iter()
            .map(|(_, seq)| seq + 1)
            .max()
            .unwrap_or(1)
    }

    fn next_base_seq(&self) -> u64 {
        self.base.as_ref().map_or(1, |(_, seq)| seq + 1)
    }
}

impl Default for Aof {
    fn default() -> Self {
        Self::new()
    }
}

impl Aof {
    /// A closed log.
    pub const fn new() -> Self {
        Self {
            on: AtomicBool::new(false),
            log: Mutex::new(None),
            loading: AtomicBool::new(false),
            shards_loaded: AtomicUsize::new(0),
            rewriting: AtomicBool::new(false),
            rewrite_since_s: AtomicU64::new(0),
            rewrite_scheduled: AtomicBool::new(false),
            last_rewrite_ok: AtomicBool::new(true),
            last_rewrite_seconds: AtomicI64::new(-1),
            rewrites: AtomicU64::new(0),
            rewrite_failures_in_a_row: AtomicU64::new(0),
            enabling: AtomicBool::new(false),
            abandoned: AtomicBool::new(false),
            last_write_ok: AtomicBool::new(true),
            generation: AtomicU64::new(0),
            synced_bytes: AtomicU64::new(0),
            always: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Log>> {
        // A panic while the lock was held ends the process (server::run's hook): no poison to
        // recover from.
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// True while writes are logged. One relaxed load: the check every write pays.
pub fn on() -> bool {
    AOF.on.load(Ordering::Relaxed)
}

/// True while a replay at start is pending or under way.
pub fn loading() -> bool {
    AOF.loading.load(Ordering::Acquire)
}

/// Appends one record (a command's arguments) run in `db`: to the log, or to the block of the
/// script whose command runs on this thread ([`in_block`]).
pub fn append(db: usize, args: &[&[u8]]) {
    if !on() {
        return;
    }
    let block = SCRIPT_BLOCK.get();
    if let Some(log) = AOF.lock().as_mut() {
        match block {
            None => log.append(db, args),
            Some(hold) => {
                let mut record = Vec::new();
                encode(&mut record, args);
                log.blocks.entry(hold).or_default().push((db, record));
            }
        }
    }
}

thread_local! {
    /// The hold of the script whose command runs on this thread now ([`in_block`]).
    static SCRIPT_BLOCK: std::cell::Cell<Option<BlockId>> = const { std::cell::Cell::new(None) };
}

/// A script's block ([`ScriptBlock`]): its hold in 8 bytes, as a command's caller carries it
/// across the mesh (whose messages stay small).
pub type BlockId = std::num::NonZeroU64;

/// The block of the script holding `hold`: the shard in the top byte, the hold's count below
/// (two holds of a run's lifetime never share one).
pub fn block_id(hold: HoldToken) -> BlockId {
    let id = ((hold.0 as u64) << 56) ^ hold.1;
    BlockId::new(id).unwrap_or(BlockId::MAX)
}

/// Runs `run` (a command of the script holding `block`, or of no script: `None`; it must not
/// await) with the records it appends, on this thread, kept for the script's block.
pub fn in_block<R>(block: Option<BlockId>, run: impl FnOnce() -> R) -> R {
    if block.is_none() || !on() {
        return run();
    }
    let outer = SCRIPT_BLOCK.replace(block);
    let result = run();
    SCRIPT_BLOCK.set(outer);
    result
}

/// A script's records, logged inside `MULTI` ... `EXEC` when it ends, as Redis 7 logs a script
/// that wrote more than once, so that a replay applies all of it or none. They are kept apart
/// until then ([`in_block`], on whichever shard each command runs) because a script holds only
/// its keys' shards: the other shards' commands go on being logged meanwhile, and a block
/// open in the log would take them in (a log cut inside it would then lose their
/// acknowledged writes). The script's keys are held until the block is logged, so nothing else
/// changes them between its records and its place in the log. A command of the script that
/// changes every shard (FLUSHALL, FLUSHDB, SWAPDB) logs what the script wrote before it first
/// ([`end_block`]) and itself in its place. Dropped, it logs the block (a script cut short
/// still logs what it ran).
#[must_use]
pub struct ScriptBlock(HoldToken);

impl ScriptBlock {
    /// The block of the script that runs holding `hold`.
    pub fn new(hold: HoldToken) -> Self {
        Self(hold)
    }
}

impl Drop for ScriptBlock {
    fn drop(&mut self) {
        end_block(self.0);
    }
}

/// Logs the records kept for the script holding `hold` ([`ScriptBlock`]): inside `MULTI` ...
/// `EXEC` when there are several and no transaction's block is open (a script inside EXEC is
/// part of that one).
pub fn end_block(hold: HoldToken) {
    if !on() {
        return;
    }
    if let Some(log) = AOF.lock().as_mut() {
        if let Some(records) = log.blocks.remove(&block_id(hold)) {
            log.append_block(records);
        }
    }
}

/// EXEC's records, logged inside `MULTI` ... `EXEC` as Redis logs a transaction, so that a
/// replay applies all of it or, when the log ends inside it (a crash mid-write), none. EXEC
/// holds every shard while its commands run, so nothing but its own records (and an expired
/// key's `DEL`) lands between. `MULTI` is written before its first record only: a transaction
/// that wrote nothing logs nothing. Dropped, it closes the block (a transaction cut short by
/// its connection's end still logs `EXEC` after what it ran).
#[must_use]
pub struct Transaction {
    /// A block was opened (the log was on): the drop closes it, and takes no lock otherwise.
    opened: bool,
}

/// Opens a transaction's block in the log (nothing when the log is off).
pub fn transaction() -> Transaction {
    let mut opened = false;
    if on() {
        if let Some(log) = AOF.lock().as_mut() {
            log.transaction = Some(false);
            opened = true;
        }
    }
    Transaction { opened }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if !self.opened {
            return;
        }
        if let Some(log) = AOF.lock().as_mut() {
            if log.transaction.take() == Some(true) {
                encode(&mut log.buffer, &[b"EXEC"]);
            }
        }
    }
}

impl Log {
    fn append_block(&mut self, records: Vec<(usize, Vec<u8>)>) {
        let wrap = records.len() > 1 && self.transaction.is_none();
        for (index, (db, record)) in records.into_iter().enumerate() {
            self.select(db);
            if wrap && index == 0 {
                encode(&mut self.buffer, &[b"MULTI"]);
            }
            self.enter_transaction();
            self.buffer.extend_from_slice(&record);
        }
        if wrap {
            encode(&mut self.buffer, &[b"EXEC"]);
        }
    }

    fn select(&mut self, db: usize) {
        if self.selected_db != Some(db) {
            let db_text = db.to_string();
            encode(&mut self.buffer, &[b"SELECT", db_text.as_bytes()]);
            self.selected_db = Some(db);
        }
    }

    /// `MULTI` before the first record of an open transaction ([`Transaction`]).
    fn enter_transaction(&mut self) {
        if self.transaction == Some(false) {
            encode(&mut self.buffer, &[b"MULTI"]);
            self.transaction = Some(true);
        }
    }

    fn append(&mut self, db: usize, args: &[&[u8]]) {
        self.select(db);
        self.enter_transaction();
        encode(&mut self.buffer, args);
    }

    /// Writes the buffer to the file (the sync is the caller's: [`before_reply`] with
    /// `always`, the background thread with `everysec`).
    fn write_buffer(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.file.write_all(&self.buffer)?;
        self.total_bytes += self.buffer.len() as u64;
        self.written_bytes += self.buffer.len() as u64;
        self.buffer.clear();
        if self.buffer.capacity() > 1 << 20 {
            self.buffer.shrink_to(64 << 10);
        }
        Ok(())
    }

    /// Syncs the file here (under the lock); everything written so far is then on disk.
    fn sync(&mut self) -> std::io::Result<()> {
        self.file.sync_data()?;
        AOF.synced_bytes
            .fetch_max(self.written_bytes, Ordering::AcqRel);
        Ok(())
    }
}

/// A command in RESP, as the log holds it.
fn encode(buffer: &mut Vec<u8>, args: &[&[u8]]) {
    buffer.push(b'*');
    buffer.extend_from_slice(args.len().to_string().as_bytes());
    buffer.extend_from_slice(b"\r\n");
    for arg in args {
        buffer.push(b'$');
        buffer.extend_from_slice(arg.len().to_string().as_bytes());
        buffer.extend_from_slice(b"\r\n");
        buffer.extend_from_slice(arg);
        buffer.extend_from_slice(b"\r\n");
    }
}

/// Writes the records appended so far, and with `always` syncs them (called before a batch's
/// replies leave). A failed write keeps them for the next try and refuses writes meanwhile
/// ([`writes_refused`]).
pub async fn before_reply() {
    if !on() {
        return;
    }
    let needed = {
        let mut guard = AOF.lock();
        let Some(log) = guard.as_mut() else {
            return;
        };
        if !log.buffer.is_empty() {
            note_write(log.write_buffer());
        }
        if log.fsync != Fsync::Always {
            return;
        }
        log.written_bytes
    };
    sync_to(needed).await;
}

thread_local! {
    /// This shard's sync of the log: whether one is in flight, and the tasks that wait for it.
    static SHARD_SYNC: std::cell::RefCell<ShardSync> = const {
        std::cell::RefCell::new(ShardSync {
            in_flight: false,
            waiters: Vec::new(),
        })
    };
}

/// A shard's part in `appendfsync always` ([`sync_to`]).
struct ShardSync {
    in_flight: bool,
    waiters: Vec<std::task::Waker>,
}

/// With `appendfsync always`: returns once the log is synced past `needed` bytes.
///
/// One sync serves every connection that waits for it (group commit, as Redis syncs once per
/// turn of its loop): the first connection of a shard to wait lets the others of the same turn
/// write their records, then starts the sync in the shard's ring, one at a time per shard. The
/// kernel's worker syncs while the shard goes on reading and running requests (Redis's loop
/// blocks in `fdatasync`), and their records go with the next sync: the clients whose replies
/// one sync releases send again while the next one runs. A shard without a ring (`--io-uring
/// no`) syncs on its own thread, outside the log's lock, so the other shards go on appending.
async fn sync_to(needed: u64) {
    let done = || {
        AOF.synced_bytes.load(Ordering::Acquire) >= needed
            || !on()
            || !AOF.last_write_ok.load(Ordering::Acquire)
    };
    if done() {
        return;
    }
    if !SHARD_SYNC.with(|sync| sync.borrow().in_flight) {
        // The shard's other connections that are ready run first, and join this sync.
        crate::runtime::yield_now().await;
    }
    std::future::poll_fn(|cx| loop {
        if done() {
            return std::task::Poll::Ready(());
        }
        let in_flight = SHARD_SYNC.with(|sync| {
            let mut sync = sync.borrow_mut();
            if sync.in_flight {
                sync.waiters.push(cx.waker().clone());
            }
            sync.in_flight
        });
        if in_flight {
            return std::task::Poll::Pending;
        }
        // None in flight here: this task starts one (and waits for it), or syncs at once.
        let Some((file, written)) = written_out() else {
            return std::task::Poll::Ready(());
        };
        let Ok(sync_file) = file.try_clone() else {
            synced(written, file.sync_data());
            continue;
        };
        let done_with = Box::new(move |outcome: std::io::Result<()>| {
            synced(written, outcome);
            let waiters = SHARD_SYNC.with(|sync| {
                let mut sync = sync.borrow_mut();
                sync.in_flight = false;
                std::mem::take(&mut sync.waiters)
            });
            waiters.into_iter().for_each(std::task::Waker::wake);
        });
        match crate::io::start_sync(sync_file, done_with) {
            Ok(()) => SHARD_SYNC.with(|sync| sync.borrow_mut().in_flight = true),
            // No ring on this shard: synced here, on the shard's thread, outside the lock.
            Err(_) => synced(written, file.sync_data()),
        }
    })
    .await;
}

/// Writes out what is pending and returns the log's file with the bytes written so far (all
/// of them in that file or in earlier ones, which were synced when the log moved on); `None`
/// when the log is closed.
fn written_out() -> Option<(std::fs::File, u64)> {
    let mut guard = AOF.lock();
    let log = guard.as_mut()?;
    note_write(log.write_buffer());
    let file = log.file.try_clone();
    match file {
        Ok(file) => Some((file, log.written_bytes)),
        Err(error) => {
            note_write(Err(error));
            None
        }
    }
}

/// Notes the outcome of a sync of everything up to `written` bytes.
fn synced(written: u64, outcome: std::io::Result<()>) {
    if outcome.is_ok() {
        AOF.synced_bytes.fetch_max(written, Ordering::AcqRel);
    }
    note_write(outcome);
}

/// Notes the outcome of a write or sync of the log. A failure refuses writes until a write
/// succeeds again ([`writes_refused`]); with `appendfsync always` it ends the process, as
/// Redis does: a reply may already have been promised on that write, and none must leave for
/// a write the log does not hold.
fn note_write(outcome: std::io::Result<()>) {
    let ok = outcome.is_ok();
    if let Err(error) = outcome {
        if AOF.always.load(Ordering::Acquire) && on() {
            eprintln!(
                "ember: can't persist the append-only file with appendfsync always ({error}): exiting, as Redis does"
            );
            std::process::exit(1);
        }
        if AOF.last_write_ok.load(Ordering::Acquire) {
            eprintln!("ember: error writing to the append-only file: {error}");
        }
    } else if !AOF.last_write_ok.load(Ordering::Acquire) {
        eprintln!("ember: the append-only file is written again");
    }
    AOF.last_write_ok.store(ok, Ordering::Release);
}

/// Redis's refusal of writes while the log cannot be written.
pub const MISCONF: &str =
    "MISCONF Errors writing to the AOF file: the log could not be written (see the server's log)";

/// True while the last write to the log failed: writes are refused with [`MISCONF`].
pub fn writes_refused() -> bool {
    on() && !AOF.last_write_ok.load(Ordering::Relaxed)
}

/// Writes out and syncs whatever is pending (SHUTDOWN, a termination signal, DEBUG LOADAOF).
pub fn write_and_sync() {
    let mut guard = AOF.lock();
    if let Some(log) = guard.as_mut() {
        let outcome = log.write_buffer().and_then(|()| log.sync());
        note_write(outcome);
    }
}

/// The directory of the log's files.
pub fn directory(config: &Config) -> PathBuf {
    Path::new(config.value("dir")).join(config.value("appenddirname"))
}

fn manifest_name(config: &Config) -> String {
    format!("{}.manifest", config.value("appendfilename"))
}

fn base_name(prefix: &str, seq: u64) -> String {
    format!("{prefix}.{seq}.base.rdb")
}

fn increment_name(prefix: &str, seq: u64) -> String {
    format!("{prefix}.{seq}.incr.aof")
}

/// Writes `manifest` to `directory` under its name: a temporary file, synced, renamed.
fn write_manifest(directory: &Path, name: &str, manifest: &Manifest) -> std::io::Result<()> {
    let temporary = directory.join(format!("temp-{name}"));
    {
        let mut file = File::create(&temporary)?;
        file.write_all(manifest.text().as_bytes())?;
        file.sync_all()?;
    }
    std::fs::rename(&temporary, directory.join(name))?;
    File::open(directory)?.sync_all()
}

/// The manifest in `config`'s directory, if there is one.
///
/// # Errors
/// A manifest that cannot be read or parsed.
pub fn read_manifest(config: &Config) -> Result<Option<Manifest>, String> {
    let path = directory(config).join(manifest_name(config));
    match std::fs::read_to_string(&path) {
        Ok(text) => Manifest::parse(&text)
            .map(Some)
            .map_err(|why| format!("cannot read {}: {why}", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(format!("cannot read {}: {error}", path.display())),
    }
}

/// What the start-up does with the log, decided before the shards start ([`prepare_at_start`]).
#[derive(Debug)]
pub enum AtStart {
    /// `appendonly no`.
    Off,
    /// `appendonly yes` and a manifest: its base (an RDB file, loaded as `dump.rdb` would be)
    /// and its increments, replayed by shard 0 before any shard listens.
    Replay { manifest: Manifest },
    /// `appendonly yes` and no log yet: the server starts from `dump.rdb` (if any), then writes
    /// the first base from it, as Redis 7 does.
    Create,
}

/// Pending start-up work (set by [`prepare_at_start`], taken by shard 0).
static AT_START: Mutex<Option<AtStart>> = Mutex::new(None);

/// Decides what the start-up does with the log. Returns `None` to load `dump.rdb` as usual,
/// `Some(path)` to load the log's RDB base instead, `Some(None)` to load no RDB file (a log with
/// no base, or an `.aof` base, which is replayed with the increments).
///
/// # Errors
/// A manifest that cannot be read.
pub fn prepare_at_start(config: &Config) -> Result<Option<Option<PathBuf>>, String> {
    if config.value("appendonly") != "yes" {
        *AT_START.lock().expect("start lock") = Some(AtStart::Off);
        return Ok(None);
    }
    let manifest = read_manifest(config)?;
    // An `.aof` base is a log of its own, replayed before the increments: no RDB to load.
    let rdb = manifest.as_ref().map(|manifest| {
        manifest
            .base
            .as_ref()
            .filter(|(name, _)| name.ends_with(".rdb"))
            .map(|(name, _)| directory(config).join(name))
    });
    let at_start = match manifest {
        Some(manifest) => AtStart::Replay { manifest },
        None => AtStart::Create,
    };
    AOF.loading.store(true, Ordering::Release);
    *AT_START.lock().expect("start lock") = Some(at_start);
    Ok(rdb)
}

/// Notes that `shard` has put its part of the snapshot read at start in place.
pub fn shard_loaded() {
    AOF.shards_loaded.fetch_add(1, Ordering::AcqRel);
}

/// Shard 0, before it listens: replays the log's increments (all shards running, none
/// listening), then opens the log for appending; or, with no log yet, writes its first base.
/// The other shards wait in [`wait_for_load`].
///
/// # Errors
/// A log that cannot be read or replayed, or a directory where the log cannot be written.
pub async fn start(shard: &Rc<Shard>) -> Result<(), String> {
    let at_start = AT_START.lock().expect("start lock").take();
    if matches!(at_start, Some(AtStart::Replay { .. } | AtStart::Create)) {
        while AOF.shards_loaded.load(Ordering::Acquire) < shard.count() {
            crate::runtime::sleep(Duration::from_millis(1)).await;
        }
    }
    let outcome = match at_start {
        None | Some(AtStart::Off) => Ok(()),
        Some(AtStart::Replay { manifest }) => {
            replay_manifest(shard, &manifest).await.and_then(|()| {
                open_log(&shard.config.borrow(), manifest, None).map_err(|error| error.to_string())
            })
        }
        Some(AtStart::Create) => {
            // The dataset is in place: the other shards may listen while the base is written.
            AOF.loading.store(false, Ordering::Release);
            begin(shard, None).await.map(|_| ())
        }
    };
    AOF.loading.store(false, Ordering::Release);
    outcome
}

/// The other shards, before they listen: waits for shard 0's replay.
pub async fn wait_for_load() {
    while loading() {
        crate::runtime::sleep(Duration::from_millis(1)).await;
    }
}

/// Replays `manifest`'s files that are logs (an `.aof` base, then the increments) in order.
async fn replay_manifest(shard: &Rc<Shard>, manifest: &Manifest) -> Result<(), String> {
    let directory = directory(&shard.config.borrow());
    let mut files: Vec<&str> = Vec::new();
    if let Some((name, _)) = manifest.base.as_ref().filter(|(n, _)| !n.ends_with(".rdb")) {
        files.push(name);
    }
    files.extend(manifest.increments.iter().map(|(name, _)| name.as_str()));
    let started = Instant::now();
    let mut commands = 0u64;
    for (position, name) in files.iter().enumerate() {
        let last = position + 1 == files.len();
        commands += replay_file(shard, &directory.join(name), last).await?;
    }
    eprintln!(
        "ember: append-only file replayed ({}): {commands} commands from {} files, {:.3} seconds",
        directory.display(),
        files.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Why a replay stopped before a file's end.
enum Stopped {
    /// The file ends inside a command (or an annotation line).
    Truncated,
    /// A command Ember does not know, or bytes that are no command.
    Failed(String),
}

/// Replays one file of the log through the executor, as a client of shard 0 would send it,
/// with expiry suspended. A command cut short at the end of the last file (a crash mid-write)
/// is dropped and the file truncated before it, as Redis does with `aof-load-truncated yes`;
/// so is a transaction left open there. Returns how many commands ran.
async fn replay_file(shard: &Rc<Shard>, path: &Path, last: bool) -> Result<u64, String> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        // Redis creates an empty increment lazily; a missing last one is an empty one.
        Err(error) if error.kind() == std::io::ErrorKind::NotFound && last => return Ok(0),
        Err(error) => return Err(format!("cannot read {}: {error}", path.display())),
    };
    if bytes.starts_with(b"REDIS") {
        return Err(format!(
            "cannot replay {}: an RDB preamble in a log file is not read by Ember (rewrite the log with Redis 7 first)",
            path.display()
        ));
    }
    let mut parser = RequestParser::new(Limits {
        bulk_len_max: ARGUMENT_LEN_MAX,
        ..Limits::default()
    });
    let handle = Rc::new(ClientHandle::detached(0, "aof"));
    let mut client = Client::new(handle, true);
    client.user = Some(crate::commands::acl::AclUser::internal());
    let mut start = 0usize;
    let mut commands = 0u64;
    let mut pipeline = crate::commands::exec::Pipeline::default();
    // The replies, dropped (a replayed command's error is only reported).
    let mut out = ReplySink::resp(Vec::new(), Protocol::Resp2);
    // Where the open transaction began (MULTI), to cut it if the file ends inside it.
    let mut open_multi: Option<usize> = None;
    ember_store::value::suspend_expiry(true);
    let outcome = loop {
        if start == bytes.len() {
            break Ok(());
        }
        // Redis's annotations (`#TS:...` with aof-timestamp-enabled) are lines of their own.
        if bytes[start] == b'#' {
            match bytes[start..].iter().position(|&byte| byte == b'\n') {
                Some(end) => {
                    start += end + 1;
                    continue;
                }
                None => break Err(Stopped::Truncated),
            }
        }
        match parser.parse(&bytes[start..]) {
            Ok(Some(consumed)) => {
                let args: Vec<&[u8]> = parser.args(&bytes[start..]).iter().collect();
                if args.is_empty() {
                    start += consumed;
                    continue;
                }
                if crate::commands::lookup(args[0]).is_none() {
                    break Err(Stopped::Failed(format!(
                        "unknown command '{}' at byte {start} of {}",
                        String::from_utf8_lossy(args[0]),
                        path.display()
                    )));
                }
                if args[0].eq_ignore_ascii_case(b"MULTI") {
                    open_multi = Some(start);
                } else if args[0].eq_ignore_ascii_case(b"EXEC") {
                    open_multi = None;
                }
                let now_ms = unix_time_ms();
                // Pipelined, as a client's batch: a command for another shard is sent and not
                // awaited, and the mesh keeps each shard's commands in order (a later command
                // that reads that shard's keys arrives after them).
                crate::commands::exec::execute(
                    shard,
                    &mut client,
                    &args,
                    now_ms,
                    &mut out,
                    Some(&mut pipeline),
                )
                .await;
                if commands % REPLAY_BATCH_LEN == REPLAY_BATCH_LEN - 1 {
                    pipeline.drain(shard, &mut out).await;
                    out.bytes_mut().clear();
                }
                if let Outcome::Error(message) = out.outcome() {
                    // Redis ignores a logged command's error too (it ran the same way live).
                    if commands < 10 || !message.starts_with("ERR") {
                        eprintln!(
                            "ember: a command of {} answered an error on replay: {message}",
                            path.display()
                        );
                    }
                }
                commands += 1;
                start += consumed;
            }
            Ok(None) => break Err(Stopped::Truncated),
            Err(error) => {
                break Err(Stopped::Failed(format!(
                    "bad format at byte {start} of {}: {}",
                    path.display(),
                    error.redis_message()
                )))
            }
        }
    };
    pipeline.drain(shard, &mut out).await;
    ember_store::value::suspend_expiry(false);
    let cut_at = match (outcome, open_multi) {
        (Err(Stopped::Truncated), _) => Some(open_multi.unwrap_or(start)),
        (Ok(()), Some(multi)) => {
            // Undo the transaction's half: its commands were only queued, never run.
            let mut out = ReplySink::values(Protocol::Resp2);
            crate::commands::exec::execute(
                shard,
                &mut client,
                &[b"DISCARD"],
                unix_time_ms(),
                &mut out,
                None,
            )
            .await;
            Some(multi)
        }
        (Err(Stopped::Failed(why)), _) => return Err(why),
        (Ok(()), None) => None,
    };
    if let Some(cut_at) = cut_at {
        if !last {
            return Err(format!(
                "{} ends in the middle of a command or transaction and is not the last file",
                path.display()
            ));
        }
        eprintln!(
            "ember: !!! Warning: {} ends in the middle of a command or transaction: truncated to {cut_at} bytes (of {})",
            path.display(),
            bytes.len()
        );
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|file| file.set_len(cut_at as u64).map(|()| file))
            .and_then(|file| file.sync_all());
        file.map_err(|error| format!("cannot truncate {}: {error}", path.display()))?;
    }
    Ok(commands)
}

/// Opens the log for appending: the manifest's last increment, or a new one (`new_increment`,
/// or none in the manifest), and starts the background thread.
fn open_log(
    config: &Config,
    mut manifest: Manifest,
    new_increment: Option<u64>,
) -> std::io::Result<()> {
    let directory = directory(config);
    let prefix = config.value("appendfilename").to_string();
    std::fs::create_dir_all(&directory)?;
    let mut wrote_manifest = false;
    if new_increment.is_some() || manifest.increments.is_empty() {
        let seq = new_increment.unwrap_or_else(|| manifest.next_increment_seq());
        manifest
            .increments
            .push((increment_name(&prefix, seq), seq));
        wrote_manifest = true;
    }
    let (name, _) = manifest
        .increments
        .last()
        .expect("one increment at least")
        .clone();
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(directory.join(&name))?;
    if wrote_manifest {
        write_manifest(&directory, &manifest_name(config), &manifest)?;
    }
    let (base_bytes, total_bytes) = manifest.sizes(&directory);
    let log = Log {
        buffer: Vec::new(),
        selected_db: None,
        file,
        fsync: set_policy(config),
        directory,
        name: prefix,
        manifest,
        base_bytes,
        total_bytes,
        written_bytes: AOF.synced_bytes.load(Ordering::Acquire),
        rewritten_bytes: total_bytes,
        transaction: None,
        blocks: std::collections::HashMap::new(),
    };
    *AOF.lock() = Some(log);
    AOF.last_write_ok.store(true, Ordering::Release);
    AOF.on.store(true, Ordering::Release);
    start_background_thread();
    Ok(())
}

/// Writes out what no reply wrote and, with `everysec`, syncs once a second; ends when the log
/// it was started for closes.
fn start_background_thread() {
    let generation = AOF.generation.load(Ordering::Acquire);
    let spawned = std::thread::Builder::new()
        .name("ember-aof".into())
        .spawn(move || {
            crate::runtime::as_helper_thread();
            let mut last_sync = Instant::now();
            loop {
                std::thread::sleep(BACKGROUND_PERIOD);
                if AOF.generation.load(Ordering::Acquire) != generation {
                    return;
                }
                let sync_file = {
                    let mut guard = AOF.lock();
                    let Some(log) = guard.as_mut() else {
                        return;
                    };
                    if !log.buffer.is_empty() {
                        let outcome = log.write_buffer();
                        // `always`: what no reply waited for (an expiry's DEL) is synced too.
                        let outcome = match log.fsync {
                            Fsync::Always => outcome.and_then(|()| log.sync()),
                            _ => outcome,
                        };
                        note_write(outcome);
                    }
                    let due = log.fsync == Fsync::EverySecond
                        && log.written_bytes > AOF.synced_bytes.load(Ordering::Acquire)
                        && last_sync.elapsed() >= SYNC_PERIOD;
                    if due {
                        log.file
                            .try_clone()
                            .ok()
                            .map(|file| (file, log.written_bytes))
                    } else {
                        None
                    }
                };
                // Synced outside the lock: appends and writes go on meanwhile.
                if let Some((file, written_bytes)) = sync_file {
                    last_sync = Instant::now();
                    match file.sync_data() {
                        Ok(()) => {
                            AOF.synced_bytes.fetch_max(written_bytes, Ordering::AcqRel);
                        }
                        Err(error) => {
                            eprintln!("ember: cannot sync the append-only file: {error}");
                        }
                    }
                }
            }
        });
    if let Err(error) = spawned {
        eprintln!("ember: cannot start the append-only file's thread: {error}");
    }
}

/// Closes the log (CONFIG SET appendonly no): what is pending is written and synced first.
pub fn stop() {
    if rewriting() {
        AOF.abandoned.store(true, Ordering::Release);
    }
    write_and_sync();
    AOF.on.store(false, Ordering::Release);
    AOF.generation.fetch_add(1, Ordering::AcqRel);
    *AOF.lock() = None;
}

/// Follows a CONFIG SET of `appendfsync`.
pub fn configure(config: &Config) {
    if let Some(log) = AOF.lock().as_mut() {
        log.fsync = set_policy(config);
    }
}

/// `appendfsync` as `config` says, noted for [`note_write`].
fn set_policy(config: &Config) -> Fsync {
    let fsync = Fsync::of(config);
    AOF.always.store(fsync == Fsync::Always, Ordering::Release);
    fsync
}

/// CONFIG SET appendonly yes at run time (or a start with no log yet): the log begins with a
/// rewrite, its first base the dataset as of now.
///
/// # Errors
/// A directory where the log cannot be written, or a save under way.
pub async fn begin(shard: &Rc<Shard>, hold: Option<HoldToken>) -> Result<Rewrite, String> {
    if on() {
        return Ok(Rewrite::Started);
    }
    AOF.enabling.store(true, Ordering::Release);
    let outcome = rewrite(shard, hold).await;
    if outcome.is_err() {
        AOF.enabling.store(false, Ordering::Release);
    }
    outcome
}

/// What BGREWRITEAOF did.
#[derive(Debug, PartialEq, Eq)]
pub enum Rewrite {
    Started,
    /// A save was under way: the rewrite starts after it.
    Scheduled,
}

/// BGREWRITEAOF: a background snapshot becomes the next base; at its moment the log moves on
/// to a new increment file.
///
/// # Errors
/// A rewrite already under way, or one that cannot start.
pub async fn rewrite(shard: &Rc<Shard>, hold: Option<HoldToken>) -> Result<Rewrite, String> {
    if AOF.rewriting.load(Ordering::Acquire) {
        return Err("Background append only file rewriting already in progress".into());
    }
    if crate::persistence::saving(shard) {
        AOF.rewrite_scheduled.store(true, Ordering::Release);
        return Ok(Rewrite::Scheduled);
    }
    AOF.rewrite_scheduled.store(false, Ordering::Release);
    crate::persistence::background_rewrite(shard, hold)
        .await
        .map(|()| Rewrite::Started)
}

/// A rewrite scheduled behind a save, started once the save ended (the persistence timer).
pub async fn rewrite_if_scheduled(shard: &Rc<Shard>) {
    if AOF.rewrite_scheduled.load(Ordering::Acquire) && !crate::persistence::saving(shard) {
        let _ = rewrite(shard, None).await;
    }
}

/// A rewrite's moment (every shard held): the log moves on to a new increment file, named in
/// the manifest at once (beside the old base and increments, which still hold everything
/// before it). Returns the new base's path and sequence number.
///
/// # Errors
/// A file or the manifest that cannot be written: the rewrite does not start.
pub fn rewrite_moment(config: &Config) -> Result<(PathBuf, u64), String> {
    AOF.rewriting.store(true, Ordering::Release);
    AOF.rewrite_since_s
        .store(unix_time_ms() / 1000, Ordering::Release);
    let opened = (|| -> std::io::Result<(PathBuf, u64)> {
        let mut guard = AOF.lock();
        match guard.as_mut() {
            Some(log) => {
                log.write_buffer()?;
                log.sync()?;
                let seq = log.manifest.next_increment_seq();
                let name = increment_name(&log.name, seq);
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(log.directory.join(&name))?;
                log.manifest.increments.push((name, seq));
                write_manifest(&log.directory, &manifest_name(config), &log.manifest)?;
                log.file = file;
                log.selected_db = None;
                let base_seq = log.manifest.next_base_seq();
                Ok((log.directory.join(base_name(&log.name, base_seq)), base_seq))
            }
            None => {
                drop(guard);
                std::fs::create_dir_all(directory(config))?;
                let manifest = read_manifest(config)
                    .map_err(std::io::Error::other)?
                    .unwrap_or_default();
                let seq = manifest.next_increment_seq();
                let base_seq = manifest.next_base_seq();
                // The first rewrite of a log being turned on: it opens now, on an increment of
                // its own. With the log off, the files are written and nothing is logged.
                if AOF.enabling.swap(false, Ordering::AcqRel) {
                    open_log(config, manifest, Some(seq))?;
                }
                let prefix = config.value("appendfilename");
                Ok((
                    directory(config).join(base_name(prefix, base_seq)),
                    base_seq,
                ))
            }
        }
    })();
    opened.map_err(|error| {
        AOF.rewriting.store(false, Ordering::Release);
        format!("cannot open a new append-only increment: {error}")
    })
}

/// A rewrite's end: with its base written, the manifest names the base and the increments
/// from the rewrite's moment on, and the older files are deleted.
pub fn rewrite_done(config: &Config, base_seq: u64, outcome: Result<(), String>, started: Instant) {
    let outcome = if AOF.abandoned.swap(false, Ordering::AcqRel) {
        // As Redis kills its rewrite child when the log turns off: the files stay as they were.
        let base = directory(config).join(base_name(config.value("appendfilename"), base_seq));
        let _ = std::fs::remove_file(base);
        Err("the log was turned off (appendonly no) during the rewrite".to_string())
    } else {
        outcome
    };
    let outcome = outcome.and_then(|()| {
        let mut guard = AOF.lock();
        let Some(log) = guard.as_mut() else {
            drop(guard);
            return replace_files_of_closed_log(config, base_seq)
                .map_err(|error| format!("cannot write the manifest: {error}"));
        };
        let base = (base_name(&log.name, base_seq), base_seq);
        // The increment opened at the rewrite's moment and any after it.
        let first_kept = log.manifest.increments.len().saturating_sub(1);
        let mut manifest = Manifest {
            base: Some(base),
            increments: log.manifest.increments[first_kept..].to_vec(),
        };
        std::mem::swap(&mut manifest, &mut log.manifest);
        if let Err(error) = write_manifest(&log.directory, &manifest_name(config), &log.manifest) {
            std::mem::swap(&mut manifest, &mut log.manifest);
            return Err(format!("cannot write the manifest: {error}"));
        }
        // `manifest` is the old one now: its files the new one no longer names go.
        manifest.remove_files_not_in(&log.manifest, &log.directory);
        // The files as written (the buffer is counted where INFO reads the size).
        (log.base_bytes, log.total_bytes) = log.manifest.sizes(&log.directory);
        log.rewritten_bytes = log.total_bytes;
        Ok(())
    });
    let ok = outcome.is_ok();
    match outcome {
        Ok(()) => {
            eprintln!(
                "ember: Background AOF rewrite finished successfully in {:.3} seconds",
                started.elapsed().as_secs_f64()
            );
            AOF.rewrites.fetch_add(1, Ordering::AcqRel);
            AOF.rewrite_failures_in_a_row.store(0, Ordering::Release);
        }
        Err(error) => {
            eprintln!("ember: Background AOF rewrite failed: {error}");
            AOF.rewrite_failures_in_a_row.fetch_add(1, Ordering::AcqRel);
        }
    }
    AOF.last_rewrite_ok.store(ok, Ordering::Release);
    AOF.last_rewrite_seconds
        .store(started.elapsed().as_secs() as i64, Ordering::Release);
    AOF.rewrite_since_s.store(0, Ordering::Release);
    AOF.rewriting.store(false, Ordering::Release);
}

/// A rewrite's end with the log off: the manifest names the new base and an empty increment,
/// and the older files go.
fn replace_files_of_closed_log(config: &Config, base_seq: u64) -> std::io::Result<()> {
    let directory = directory(config);
    let prefix = config.value("appendfilename");
    let old = read_manifest(config)
        .map_err(std::io::Error::other)?
        .unwrap_or_default();
    let seq = old.next_increment_seq();
    let increment = increment_name(prefix, seq);
    File::create(directory.join(&increment))?.sync_all()?;
    let manifest = Manifest {
        base: Some((base_name(prefix, base_seq), base_seq)),
        increments: vec![(increment, seq)],
    };
    write_manifest(&directory, &manifest_name(config), &manifest)?;
    old.remove_files_not_in(&manifest, &directory);
    Ok(())
}

/// True when the log has grown past `auto-aof-rewrite-min-size` and by
/// `auto-aof-rewrite-percentage` since its last rewrite (0 turns it off), and none is under way.
pub fn rewrite_due(config: &Config) -> bool {
    let percentage = config.integer("auto-aof-rewrite-percentage").max(0) as u64;
    if !on() || percentage == 0 || rewriting() || AOF.rewrite_scheduled.load(Ordering::Acquire) {
        return false;
    }
    let min_bytes = config.integer("auto-aof-rewrite-min-size").max(0) as u64;
    let guard = AOF.lock();
    let Some(log) = guard.as_ref() else {
        return false;
    };
    let total = log.total_bytes + log.buffer.len() as u64;
    let base = log.rewritten_bytes.max(1);
    total >= min_bytes && total > base && (total - base) * 100 / base >= percentage
}

/// True while a rewrite is under way.
pub fn rewriting() -> bool {
    AOF.rewriting.load(Ordering::Acquire)
}

/// INFO persistence's AOF lines.
pub fn info_lines() -> Vec<(&'static str, String)> {
    let since = AOF.rewrite_since_s.load(Ordering::Acquire);
    let current = if since == 0 {
        -1
    } else {
        (unix_time_ms() / 1000).saturating_sub(since) as i64
    };
    let status = |ok: bool| if ok { "ok" } else { "err" }.to_string();
    let mut lines = vec![
        ("aof_enabled", u8::from(on()).to_string()),
        ("aof_rewrite_in_progress", u8::from(rewriting()).to_string()),
        (
            "aof_rewrite_scheduled",
            u8::from(AOF.rewrite_scheduled.load(Ordering::Acquire)).to_string(),
        ),
        (
            "aof_last_rewrite_time_sec",
            AOF.last_rewrite_seconds.load(Ordering::Acquire).to_string(),
        ),
        ("aof_current_rewrite_time_sec", current.to_string()),
        (
            "aof_last_bgrewrite_status",
            status(AOF.last_rewrite_ok.load(Ordering::Acquire)),
        ),
        (
            "aof_rewrites",
            AOF.rewrites.load(Ordering::Acquire).to_string(),
        ),
        (
            "aof_rewrites_consecutive_failures",
            AOF.rewrite_failures_in_a_row
                .load(Ordering::Acquire)
                .to_string(),
        ),
        (
            "aof_last_write_status",
            status(AOF.last_write_ok.load(Ordering::Acquire)),
        ),
        ("aof_last_cow_size", "0".into()),
    ];
    if let Some(log) = AOF.lock().as_ref() {
        lines.extend([
            (
                "aof_current_size",
                (log.total_bytes + log.buffer.len() as u64).to_string(),
            ),
            ("aof_base_size", log.base_bytes.to_string()),
            ("aof_pending_rewrite", "0".into()),
            ("aof_buffer_length", log.buffer.len().to_string()),
            ("aof_pending_bio_fsync", "0".into()),
            ("aof_delayed_fsync", "0".into()),
        ]);
    }
    lines
}

/// DEBUG LOADAOF: the log written and synced, every key dropped, the log read again as at
/// start (its base, then its increments), and appending resumed on the last increment.
///
/// # Errors
/// No log, or one that cannot be read again.
pub async fn load_again(shard: &Rc<Shard>, hold: Option<HoldToken>) -> Result<(), String> {
    let was_on = on();
    write_and_sync();
    let open_manifest = AOF.lock().as_ref().map(|log| log.manifest.clone());
    let manifest = match open_manifest {
        Some(manifest) => manifest,
        // The log is off: the files a BGREWRITEAOF wrote, as Redis reads them.
        None => read_manifest(&shard.config.borrow())
            .map_err(|error| format!("ERR {error}"))?
            .ok_or("ERR there is no append-only file to load (no manifest)")?,
    };
    // Nothing the reload runs is logged again.
    AOF.on.store(false, Ordering::Release);
    let directory = directory(&shard.config.borrow());
    let base = manifest
        .base
        .as_ref()
        .filter(|(name, _)| name.ends_with(".rdb"))
        .map(|(name, _)| directory.join(name));
    let loaded = crate::persistence::replace_dataset(
        shard,
        hold,
        base.as_deref(),
        crate::persistence::Reload::Flush,
    )
    .await;
    let replayed = match loaded {
        Ok(()) => {
            // Boxed: a replayed DEBUG LOADAOF would replay again (an async cycle).
            let replay: std::pin::Pin<
                Box<dyn std::future::Future<Output = Result<(), String>> + '_>,
            > = Box::pin(replay_manifest(shard, &manifest));
            replay.await
        }
        Err(error) => Err(error),
    };
    if let Some(log) = AOF.lock().as_mut() {
        log.selected_db = None;
    }
    AOF.on.store(was_on, Ordering::Release);
    replayed.map_err(|error| format!("ERR {error}"))
}

/// What a write command logs: its own arguments, unless its handler asked for other records
/// ([`Propagation::replace`]): the effect, where replaying the command would not repeat it.
#[derive(Debug, Default)]
pub struct Propagation {
    /// The log is on: records are kept (off, asking costs nothing).
    on: bool,
    replaced: bool,
    records: Vec<Vec<Vec<u8>>>,
}

impl Propagation {
    /// A command's propagation, on when the log is.
    pub fn new() -> Self {
        Self {
            on: on(),
            ..Self::default()
        }
    }

    /// A propagation that keeps records whatever the log (the command fuzz target runs every
    /// handler's effect records this way).
    pub fn recording() -> Self {
        Self {
            on: true,
            ..Self::default()
        }
    }

    /// The records kept so far (none: the command's own arguments, when it wrote).
    pub fn records(&self) -> &[Vec<Vec<u8>>] {
        &self.records
    }

    /// True when records are kept: a handler builds its replacement only then.
    pub fn is_on(&self) -> bool {
        self.on
    }

    /// Logs `args` (one more record) instead of the command's own arguments.
    pub fn replace(&mut self, args: &[&[u8]]) {
        if self.on {
            self.replaced = true;
            self.records
                .push(args.iter().map(|arg| arg.to_vec()).collect());
        }
    }

    /// Logs nothing for this command (its effect was logged otherwise, or it had none).
    pub fn suppress(&mut self) {
        if self.on {
            self.replaced = true;
        }
    }

    /// Appends this command's records: the replacements, or `args` when `wrote`.
    pub fn finish(self, db: usize, args: &[&[u8]], wrote: bool) {
        if !self.on {
            return;
        }
        if self.replaced {
            for record in &self.records {
                let slices: Vec<&[u8]> = record.iter().map(Vec::as_slice).collect();
                append(db, &slices);
            }
        } else if wrote {
            append_command(db, args);
        }
    }
}

/// Appends a write command as it ran, in the form a replay runs without waiting: XREADGROUP
/// loses its BLOCK option (the entries it delivered are there when it is replayed).
fn append_command(db: usize, args: &[&[u8]]) {
    if args[0].eq_ignore_ascii_case(b"XREADGROUP") {
        append(db, &without_block(args));
        return;
    }
    append(db, args);
}

/// XREADGROUP's arguments without its BLOCK option (read before STREAMS: a key or an ID after
/// it may be the word BLOCK).
fn without_block<'a>(args: &[&'a [u8]]) -> Vec<&'a [u8]> {
    let mut kept = Vec::with_capacity(args.len());
    let mut index = 0;
    while index < args.len() {
        if args[index].eq_ignore_ascii_case(b"STREAMS") {
            kept.extend_from_slice(&args[index..]);
            break;
        }
        if args[index].eq_ignore_ascii_case(b"BLOCK") && index + 1 < args.len() {
            index += 2;
            continue;
        }
        kept.push(args[index]);
        index += 1;
    }
    kept
}

/// The record of a blocking command a key served (on the key's shard): the pop it made, read
/// from the request that would give back what it took (`undo`), or, for a move done whole
/// here or a group read, the command's non-blocking form.
pub fn served_record(waiter_args: &[&[u8]], undo: Option<&[&[u8]]>) -> Option<Vec<Vec<u8>>> {
    let owned = |args: &[&[u8]]| args.iter().map(|arg| arg.to_vec()).collect::<Vec<_>>();
    if let Some(undo) = undo {
        let key = undo.get(1)?.to_vec();
        let elements = undo.len().checked_sub(2)?;
        let name = undo[0];
        return if name.eq_ignore_ascii_case(b"LPUSH") || name.eq_ignore_ascii_case(b"RPUSH") {
            let pop: &[u8] = if name.eq_ignore_ascii_case(b"LPUSH") {
                b"LPOP"
            } else {
                b"RPOP"
            };
            Some(vec![pop.to_vec(), key, elements.to_string().into_bytes()])
        } else if name.eq_ignore_ascii_case(b"ZADD") {
            let mut record = vec![b"ZREM".to_vec(), key];
            record.extend(
                undo[2..]
                    .chunks(2)
                    .filter_map(|pair| pair.get(1))
                    .map(|m| m.to_vec()),
            );
            Some(record)
        } else {
            None
        };
    }
    let name = waiter_args[0];
    if name.eq_ignore_ascii_case(b"BLMOVE") && waiter_args.len() == 6 {
        let mut record = owned(&waiter_args[..5]);
        record[0] = b"LMOVE".to_vec();
        Some(record)
    } else if name.eq_ignore_ascii_case(b"BRPOPLPUSH") && waiter_args.len() == 4 {
        let mut record = owned(&waiter_args[..3]);
        record[0] = b"RPOPLPUSH".to_vec();
        Some(record)
    } else if name.eq_ignore_ascii_case(b"XREADGROUP") {
        Some(owned(&without_block(waiter_args)))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_read_and_write_as_redis_7_does() {
        // Lines as Redis 7.0.15 writes them (tests/integration/aof-multi-part.tcl), with a
        // history file, a comment and a key of a later version.
        let text = "# a comment\nfile appendonly.aof.1.base.rdb seq 1 type b\n\
                    file appendonly.aof.0.incr.aof seq 0 type h\n\
                    file appendonly.aof.1.incr.aof seq 1 type i\n\
                    file appendonly.aof.2.incr.aof seq 2 type i startoffset 100\n";
        let manifest = Manifest::parse(text).unwrap();
        assert_eq!(
            manifest.base,
            Some(("appendonly.aof.1.base.rdb".to_string(), 1))
        );
        assert_eq!(manifest.increments.len(), 2);
        assert_eq!(manifest.next_increment_seq(), 3);
        assert_eq!(manifest.next_base_seq(), 2);
        assert_eq!(
            manifest.text(),
            "file appendonly.aof.1.base.rdb seq 1 type b\n\
             file appendonly.aof.1.incr.aof seq 1 type i\n\
             file appendonly.aof.2.incr.aof seq 2 type i\n"
        );
        assert_eq!(Manifest::parse(&manifest.text()).unwrap(), manifest);
        let refused = [
            "file a seq 1",
            "file a seq x type i",
            "file ../a seq 1 type i",
            "file a seq 1 type z",
            "file a seq 1 type b\nfile b seq 2 type b",
            "file a seq",
        ];
        for text in refused {
            assert!(Manifest::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn served_blocking_pops_are_logged_as_pops() {
        let args = |text: &str| -> Vec<Vec<u8>> {
            text.split(' ')
                .map(|word| word.as_bytes().to_vec())
                .collect()
        };
        let cases: &[(&str, Option<&str>, Option<&str>)] = &[
            ("BLPOP q 0", Some("LPUSH q a"), Some("LPOP q 1")),
            (
                "BLMPOP 0 1 q RIGHT COUNT 2",
                Some("RPUSH q b a"),
                Some("RPOP q 2"),
            ),
            ("BZPOPMIN z 0", Some("ZADD z 1 m"), Some("ZREM z m")),
            (
                "BLMOVE a b LEFT RIGHT 0",
                None,
                Some("LMOVE a b LEFT RIGHT"),
            ),
            ("BRPOPLPUSH a b 0", None, Some("RPOPLPUSH a b")),
            (
                "XREADGROUP GROUP g c BLOCK 0 STREAMS s >",
                None,
                Some("XREADGROUP GROUP g c STREAMS s >"),
            ),
            // A stream called BLOCK stays.
            (
                "XREADGROUP GROUP g c COUNT 1 BLOCK 10 STREAMS BLOCK >",
                None,
                Some("XREADGROUP GROUP g c COUNT 1 STREAMS BLOCK >"),
            ),
            ("XREAD BLOCK 0 STREAMS s $", None, None),
        ];
        for (waiter, undo, expected) in cases {
            let waiter = args(waiter);
            let waiter: Vec<&[u8]> = waiter.iter().map(Vec::as_slice).collect();
            let undo = undo.map(args);
            let undo_slices: Option<Vec<&[u8]>> = undo
                .as_ref()
                .map(|undo| undo.iter().map(Vec::as_slice).collect());
            let record = served_record(&waiter, undo_slices.as_deref());
            assert_eq!(record, expected.map(args), "{waiter:?}");
        }
    }
}
