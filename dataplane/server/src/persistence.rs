//! RDB snapshots: SAVE, BGSAVE, SHUTDOWN SAVE and the `save` points write every shard's keys and
//! the function libraries to `dir`/`dbfilename` in Redis's RDB format, and `ember` loads that
//! file at start, so a dataset survives a restart and moves between Ember and Redis either way.
//!
//! Ember has no `fork`. SAVE holds every shard (as EXEC does) while each encodes its own keys
//! into memory ([`encode_shard`], the shards in parallel), then writes the file on the caller's
//! shard. BGSAVE holds the shards only to mark the moment: each shard's keyspace then encodes
//! its segments a few at a time between requests, and the first write to a segment not encoded
//! yet encodes it first, as it was (`ember_store::keyspace::Snapshot`, copy-on-write by segment,
//! where Redis's fork copies pages); a thread of its own writes the file once every shard is
//! done. The file is written to a temporary name, synced and renamed, so a crash mid-write
//! leaves the previous snapshot whole.

use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use ember_store::dump::{read_rdb_file, RdbFile, RdbKey, RdbWriter, RestoreLimits, Section};
use ember_store::DATABASE_COUNT;

use crate::commands::multikey::{hold_all, release_all};
use crate::commands::remote::broadcast;
use crate::config::Config;
use crate::shard::{AdminRequest, HoldToken, Shard, ShardReply};
use crate::stats::unix_time_ms;

/// The Redis version written in a file's `redis-ver` field (the one INFO claims).
const REDIS_VERSION: &str = "7.2.4";
/// How long after a failed background save the `save` points wait to try again (Redis's
/// `CONFIG_BGSAVE_RETRY_DELAY`).
const RETRY_DELAY_S: u64 = 5;
/// How often shard 0 looks at the `save` points and a scheduled BGSAVE.
const CRON_PERIOD: Duration = Duration::from_millis(100);

/// Redis's refusal of writes after a failed background save.
pub const MISCONF: &str = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";

/// True while writes get [`MISCONF`]: the last background save failed, `save` points are set
/// and `stop-writes-on-bgsave-error` is yes. One load per command.
static WRITES_REFUSED: AtomicBool = AtomicBool::new(false);

/// True while writes are refused ([`MISCONF`]).
pub fn writes_refused() -> bool {
    WRITES_REFUSED.load(Ordering::Relaxed)
}

/// Sets [`writes_refused`] from the last background save's outcome, whether `save` points are
/// set, and `config`'s `stop-writes-on-bgsave-error`.
fn refuse_writes_if_failing(persistence: &Persistence, save_points_set: bool, config: &Config) {
    let refused = !persistence.last_background_ok.load(Ordering::Acquire)
        && save_points_set
        && config.value("stop-writes-on-bgsave-error") == "yes";
    WRITES_REFUSED.store(refused, Ordering::Relaxed);
}

/// What the server knows of its snapshots; one per process ([`crate::shard::Shared`]).
#[derive(Debug)]
pub struct Persistence {
    /// Unix seconds of the last successful save (the start until then), LASTSAVE.
    last_save_s: AtomicU64,
    /// A save (SAVE or BGSAVE) is taking its snapshot or writing its file.
    saving: AtomicBool,
    /// Unix seconds at which the BGSAVE under way started; 0 when none is.
    background_since_s: AtomicU64,
    /// A BGSAVE SCHEDULE waits for the save under way.
    scheduled: AtomicBool,
    last_background_ok: AtomicBool,
    last_background_seconds: AtomicI64,
    /// Unix seconds of the last save the `save` points started (for their retry delay).
    last_try_s: AtomicU64,
    /// The shards' change counters summed when the last successful save took its snapshot.
    changes_at_save: AtomicU64,
    saves: AtomicU64,
    loaded_keys: AtomicU64,
    loaded_expired: AtomicU64,
    /// The file read at start, each shard's keys apart, until each shard takes its own.
    loading: Mutex<Option<Loaded>>,
    /// Keys the save under way started with, and those its shards have encoded so far (INFO's
    /// `current_save_keys_total` and `current_save_keys_processed`).
    save_keys_total: AtomicU64,
    save_keys_processed: AtomicU64,
    /// The shards' parts of the BGSAVE under way, as each finishes encoding.
    collected: Mutex<Collected>,
    collected_ready: Condvar,
}

/// The parts of a background snapshot the shards have finished.
#[derive(Debug, Default)]
struct Collected {
    /// The BGSAVE they belong to: a part of an earlier one that failed (a shard that answered
    /// its start too late) is not mixed into this one.
    generation: u64,
    sections: Vec<Section>,
    changes: u64,
    shards: usize,
}

/// An RDB file read at start: each shard's keys, and the function libraries.
#[derive(Debug)]
struct Loaded {
    shards: Vec<Option<Vec<RdbKey>>>,
    functions: Option<Vec<Vec<u8>>>,
}

/// Every shard's keys and the libraries, as of one moment.
struct Snapshot {
    sections: Vec<Section>,
    functions: Vec<String>,
    changes: u64,
}

impl Snapshot {
    fn keys(&self) -> u64 {
        self.sections.iter().map(Section::keys).sum()
    }
}

impl Persistence {
    /// The state of a server started at `started_at_s` that has loaded nothing yet.
    pub fn new(started_at_s: u64) -> Self {
        Self {
            last_save_s: AtomicU64::new(started_at_s),
            saving: AtomicBool::new(false),
            background_since_s: AtomicU64::new(0),
            scheduled: AtomicBool::new(false),
            last_background_ok: AtomicBool::new(true),
            last_background_seconds: AtomicI64::new(-1),
            last_try_s: AtomicU64::new(0),
            changes_at_save: AtomicU64::new(0),
            saves: AtomicU64::new(0),
            loaded_keys: AtomicU64::new(0),
            loaded_expired: AtomicU64::new(0),
            loading: Mutex::new(None),
            save_keys_total: AtomicU64::new(0),
            save_keys_processed: AtomicU64::new(0),
            collected: Mutex::new(Collected::default()),
            collected_ready: Condvar::new(),
        }
    }

    /// LASTSAVE.
    pub fn last_save_s(&self) -> u64 {
        self.last_save_s.load(Ordering::Acquire)
    }

    /// INFO persistence's RDB lines, given the shards' change counters summed.
    pub fn info_lines(&self, changes: u64) -> Vec<(&'static str, String)> {
        let since = self.background_since_s.load(Ordering::Acquire);
        let current = if since == 0 {
            -1
        } else {
            (unix_time_ms() / 1000).saturating_sub(since) as i64
        };
        let status = if self.last_background_ok.load(Ordering::Acquire) {
            "ok"
        } else {
            "err"
        };
        let saving = self.saving.load(Ordering::Acquire);
        let save_keys = |counter: &AtomicU64| {
            if saving {
                counter.load(Ordering::Acquire).to_string()
            } else {
                "0".into()
            }
        };
        vec![
            ("loading", "0".into()),
            ("async_loading", "0".into()),
            (
                "current_save_keys_processed",
                save_keys(&self.save_keys_processed),
            ),
            ("current_save_keys_total", save_keys(&self.save_keys_total)),
            (
                "rdb_changes_since_last_save",
                changes
                    .saturating_sub(self.changes_at_save.load(Ordering::Acquire))
                    .to_string(),
            ),
            ("rdb_bgsave_in_progress", u8::from(since != 0).to_string()),
            ("rdb_last_save_time", self.last_save_s().to_string()),
            ("rdb_last_bgsave_status", status.into()),
            (
                "rdb_last_bgsave_time_sec",
                self.last_background_seconds
                    .load(Ordering::Acquire)
                    .to_string(),
            ),
            ("rdb_current_bgsave_time_sec", current.to_string()),
            ("rdb_saves", self.saves.load(Ordering::Acquire).to_string()),
            (
                "rdb_last_load_keys_expired",
                self.loaded_expired.load(Ordering::Acquire).to_string(),
            ),
            (
                "rdb_last_load_keys_loaded",
                self.loaded_keys.load(Ordering::Acquire).to_string(),
            ),
        ]
    }

    /// Takes the right to save; false when a save is under way.
    fn begin(&self) -> bool {
        let begun = self
            .saving
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if begun {
            self.save_keys_total.store(0, Ordering::Release);
            self.save_keys_processed.store(0, Ordering::Release);
        }
        begun
    }

    /// Records a save's end: `changes` is its snapshot's counter, `saved` whether the file is
    /// written.
    fn end(&self, changes: u64, saved: bool) {
        if saved {
            self.last_save_s
                .store(unix_time_ms() / 1000, Ordering::Release);
            self.changes_at_save.store(changes, Ordering::Release);
            self.saves.fetch_add(1, Ordering::AcqRel);
            // Any successful save ends the refusal of writes, as Redis's rdbSave does.
            self.last_background_ok.store(true, Ordering::Release);
            WRITES_REFUSED.store(false, Ordering::Relaxed);
        }
        self.saving.store(false, Ordering::Release);
    }
}

/// A per-key delay parameter's value: microseconds, or nanoseconds when negative (Redis's
/// `debugDelay`).
fn key_delay(config: &Config, name: &str) -> Duration {
    match config.integer(name) {
        delay if delay >= 0 => Duration::from_micros(delay as u64),
        delay => Duration::from_nanos(delay.unsigned_abs()),
    }
}

/// The snapshot file's path: `dbfilename` in `dir`.
pub fn file_path(config: &Config) -> PathBuf {
    Path::new(config.value("dir")).join(config.value("dbfilename"))
}

/// A `save` setting's points, (seconds, changes) pairs; `None` unless it is empty or pairs of
/// non-negative integers.
fn parse_save_points(value: &str) -> Option<Vec<(u64, u64)>> {
    let numbers = value
        .split_whitespace()
        .map(|word| word.parse::<u64>().ok())
        .collect::<Option<Vec<u64>>>()?;
    (numbers.len() % 2 == 0).then(|| {
        numbers
            .chunks_exact(2)
            .map(|pair| (pair[0], pair[1]))
            .collect()
    })
}

/// The `save` points: none when `save` is empty (CONFIG SET checked it: [`valid_save_points`]).
fn save_points(config: &Config) -> Vec<(u64, u64)> {
    parse_save_points(config.value("save")).unwrap_or_default()
}

/// True when `value` is a valid `save` setting: empty, or pairs of non-negative integers.
pub fn valid_save_points(value: &str) -> bool {
    parse_save_points(value).is_some()
}

/// Reads `dir`/`dbfilename` before the shards start, if there is one, and keeps each shard's
/// keys for it ([`load_into_shard`]). Keys whose expiry has passed are left out, as Redis's
/// primary does.
///
/// # Errors
/// A file that cannot be read or is not a valid RDB file: Ember does not start on it, as Redis
/// does not.
pub fn read_at_start(
    config: &Config,
    persistence: &Persistence,
    shard_count: usize,
) -> Result<(), String> {
    // With `appendonly yes`, the log's base replaces `dump.rdb` (crate::aof).
    let path = match crate::aof::prepare_at_start(config)? {
        None => file_path(config),
        Some(Some(base)) => base,
        Some(None) => return Ok(()),
    };
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(format!("cannot read {}: {error}", path.display())),
    };
    let started = Instant::now();
    let (file, shards, loaded, expired) = read_and_split(config, &path, &bytes, shard_count)?;
    persistence.loaded_keys.store(loaded, Ordering::Release);
    persistence.loaded_expired.store(expired, Ordering::Release);
    eprintln!(
        "ember: DB loaded from disk ({}): {loaded} keys, {expired} expired left out, {} libraries, {:.3} seconds",
        path.display(),
        file.functions.len(),
        started.elapsed().as_secs_f64()
    );
    *persistence.loading.lock().expect("loading lock") = Some(Loaded {
        shards: shards.into_iter().map(Some).collect(),
        functions: Some(file.functions),
    });
    Ok(())
}

/// An RDB file's keys split by shard (those expired left out), with the count of each.
type SplitFile = (RdbFile, Vec<Vec<RdbKey>>, u64, u64);

/// Reads the RDB file `bytes` (from `path`) and splits its live keys by owning shard.
fn read_and_split(
    config: &Config,
    path: &Path,
    bytes: &[u8],
    shard_count: usize,
) -> Result<SplitFile, String> {
    let now_ms = unix_time_ms();
    let limits = RestoreLimits {
        hash: config.hash_limits,
        list: config.list_limits,
        stream: crate::commands::streams::limits(config),
    };
    let mut file = read_rdb_file(bytes, &limits, now_ms).map_err(|error| {
        let why = match error {
            ember_store::dump::DumpError::Checksum => {
                "not an RDB file of version 12 or older, or its checksum is wrong"
            }
            ember_store::dump::DumpError::BadFormat => "a value in it cannot be read",
        };
        format!("cannot load {}: {why}", path.display())
    })?;
    let mut shards: Vec<Vec<RdbKey>> = (0..shard_count).map(|_| Vec::new()).collect();
    let (mut loaded, mut expired) = (0u64, 0u64);
    for key in std::mem::take(&mut file.keys) {
        if key.db >= DATABASE_COUNT as u64 {
            return Err(format!(
                "cannot load {}: database {} is out of range (Ember has {DATABASE_COUNT})",
                path.display(),
                key.db
            ));
        }
        if key.expire_at_ms.is_some_and(|at| at <= now_ms) {
            expired += 1;
            continue;
        }
        shards[crate::shard::router::owner_of_key(&key.key, shard_count)].push(key);
        loaded += 1;
    }
    Ok((file, shards, loaded, expired))
}

/// Puts the keys [`read_at_start`] kept for `shard` into its keyspace (and, on shard 0, the
/// function libraries), before the shard listens.
///
/// # Errors
/// A library that does not load.
pub fn load_into_shard(shard: &Shard) -> Result<(), String> {
    let (keys, functions) = {
        let mut loading = shard
            .shared
            .persistence
            .loading
            .lock()
            .expect("loading lock");
        let Some(loaded) = loading.as_mut() else {
            return Ok(());
        };
        let functions = if shard.index == 0 {
            loaded.functions.take()
        } else {
            None
        };
        (loaded.shards[shard.index].take(), functions)
    };
    if let Some(codes) = functions.filter(|codes| !codes.is_empty()) {
        crate::commands::scripting::load_libraries(shard, &codes, false)
            .map_err(|error| format!("cannot load the RDB file's function libraries: {error}"))?;
    }
    insert_keys(shard, keys.unwrap_or_default(), true);
    Ok(())
}

/// Puts `keys` (read from an RDB file) into this shard's keyspace; with `replace` false, a key
/// already there stays. Returns how many were already there.
pub fn insert_keys(shard: &Shard, keys: Vec<RdbKey>, replace: bool) -> u64 {
    let now_ms = unix_time_ms();
    let per_key = key_delay(&shard.config.borrow(), "key-load-delay");
    let mut keyspace = shard.keyspace.borrow_mut();
    let mut present = 0;
    for key in keys {
        if !per_key.is_zero() {
            // A test hook: the shard does nothing else meanwhile, as Redis while loading.
            std::thread::sleep(per_key);
        }
        if keyspace.contains(key.db as usize, &key.key, now_ms) {
            present += 1;
            if !replace {
                continue;
            }
        }
        keyspace.insert(
            key.db as usize,
            &key.key,
            key.value,
            key.expire_at_ms,
            now_ms,
        );
    }
    present
}

/// How [`replace_dataset`] treats what is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    /// Every database and library dropped first.
    Flush,
    /// Kept; a key or library also in the file is an error (DEBUG RELOAD NOFLUSH).
    Keep,
    /// Kept; the file's keys and libraries replace those of the same name (NOFLUSH MERGE).
    Merge,
}

/// DEBUG RELOAD and DEBUG LOADAOF: with every shard held, every database emptied (as `mode`
/// says) and `rdb`'s keys and libraries (if a file is named) put in place.
///
/// # Errors
/// A file that cannot be read, or (under [`Reload::Keep`]) keys or libraries already there.
pub async fn replace_dataset(
    shard: &Rc<Shard>,
    hold: Option<HoldToken>,
    rdb: Option<&Path>,
    mode: Reload,
) -> Result<(), String> {
    let read = match rdb {
        Some(path) => {
            let bytes = std::fs::read(path)
                .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
            Some(read_and_split(
                &shard.config.borrow(),
                path,
                &bytes,
                shard.count(),
            )?)
        }
        None => None,
    };
    let held = EveryShard::hold(shard, hold).await;
    let token = held.token;
    let mut outcome = Ok(());
    if mode == Reload::Flush {
        broadcast(shard, Some(token), AdminRequest::FlushAll { lazy: false }).await;
        outcome = crate::commands::scripting::flush_libraries(shard);
    }
    if let Some((file, shards, ..)) = read {
        let mut present = 0;
        for (index, keys) in shards.into_iter().enumerate() {
            let request = AdminRequest::InsertKeys {
                keys,
                replace: mode != Reload::Keep,
            };
            if let ShardReply::Integer(count) =
                crate::commands::remote::admin_on(shard, Some(token), index, request).await
            {
                present += count;
            }
        }
        let codes = file.functions;
        if outcome.is_ok() && !codes.is_empty() {
            outcome =
                crate::commands::scripting::load_libraries(shard, &codes, mode == Reload::Merge);
        }
        if outcome.is_ok() && present > 0 && mode == Reload::Keep {
            outcome = Err(format!(
                "{present} keys of the file are already in the dataset"
            ));
        }
    }
    held.release(shard).await;
    outcome
}

/// Every shard held for one operation: under the caller's EXEC hold when it has one, or under
/// a hold of its own, released by [`EveryShard::release`].
struct EveryShard {
    token: HoldToken,
    own: bool,
}

impl EveryShard {
    async fn hold(shard: &Rc<Shard>, hold: Option<HoldToken>) -> Self {
        match hold {
            Some(token) => Self { token, own: false },
            None => {
                let token = shard.new_hold_token();
                hold_all(shard, &(0..shard.count()).collect(), token).await;
                Self { token, own: true }
            }
        }
    }

    async fn release(self, shard: &Rc<Shard>) {
        if self.own {
            release_all(shard, &(0..shard.count()).collect(), self.token).await;
        }
    }
}

/// Encodes this shard's live keys, database by database, at once (SAVE's
/// [`AdminRequest::Snapshot`]).
pub fn encode_shard(shard: &Shard, now_ms: u64) -> ember_store::keyspace::Snapshot {
    let mut keyspace = shard.keyspace.borrow_mut();
    // SAVE and BGSAVE never overlap (`Persistence::begin`); an encoding still under way here is
    // the part of a BGSAVE that failed, dropped now (its task then finds nothing to finish).
    if !keyspace.begin_snapshot(now_ms) {
        keyspace.finish_snapshot();
        keyspace.begin_snapshot(now_ms);
    }
    keyspace.finish_snapshot().expect("just begun")
}

/// Keys a shard encodes between two turns of its other tasks during a BGSAVE (whole segments,
/// at least one): a request waits at most tens of microseconds behind a step.
const KEYS_PER_STEP: usize = 1000;
/// The shortest timer: the next turn of the runtime's loop.
const STEP_PAUSE: Duration = Duration::from_micros(1);

/// Starts this shard's part of a BGSAVE (an [`AdminRequest::BeginSnapshot`]): the moment is
/// marked now; the encoding goes on between requests and its result joins the others' in
/// [`Persistence`] for the writer thread. False when this shard is still encoding the part of
/// an earlier BGSAVE that failed (it answered that one's start too late).
pub fn begin_background_part(shard: &Rc<Shard>, generation: u64, now_ms: u64) -> bool {
    let keys = {
        let mut keyspace = shard.keyspace.borrow_mut();
        if !keyspace.begin_snapshot(now_ms) {
            return false;
        }
        keyspace.key_count() as u64
    };
    let persistence = &shard.shared.persistence;
    persistence
        .save_keys_total
        .fetch_add(keys, Ordering::AcqRel);
    let shard = shard.clone();
    crate::runtime::spawn(async move {
        let mut reported = 0;
        loop {
            // `rdb-key-save-delay` (a test hook) slows the save down key by key: one segment
            // a step, then the delay for each of its keys.
            let per_key = key_delay(&shard.config.borrow(), "rdb-key-save-delay");
            let budget = if per_key.is_zero() { KEYS_PER_STEP } else { 1 };
            let (done, visited) = {
                let mut keyspace = shard.keyspace.borrow_mut();
                let done = keyspace.snapshot_step(budget);
                (done, keyspace.snapshot_keys_visited())
            };
            if !per_key.is_zero() {
                let keys = u32::try_from(visited - reported).unwrap_or(u32::MAX);
                crate::runtime::sleep(per_key.saturating_mul(keys)).await;
            }
            shard
                .shared
                .persistence
                .save_keys_processed
                .fetch_add(visited - reported, Ordering::AcqRel);
            reported = visited;
            if done {
                break;
            }
            // A timer, not a yield within the task queue: the runtime's loop (the socket
            // ring's hand-backs, the mesh, timers) must turn between steps, and a task that
            // stays runnable would keep it from turning until the preemption timer.
            crate::runtime::sleep(STEP_PAUSE).await;
        }
        let Some(snapshot) = shard.keyspace.borrow_mut().finish_snapshot() else {
            return;
        };
        let persistence = &shard.shared.persistence;
        let mut collected = persistence.collected.lock().expect("collected lock");
        if collected.generation != generation {
            return; // Its BGSAVE failed; a later one may be collecting.
        }
        collected.sections.extend(snapshot.sections);
        collected.changes += snapshot.changes;
        collected.shards += 1;
        persistence.collected_ready.notify_all();
    });
    true
}

/// Every shard's keys as of one moment: all shards held (under `hold` when the caller's EXEC
/// already holds them), each encoding its own at once.
async fn take_snapshot(shard: &Rc<Shard>, hold: Option<HoldToken>) -> Result<Snapshot, String> {
    let (replies, functions) = every_shard_held(shard, hold, AdminRequest::Snapshot).await;
    let mut snapshot = Snapshot {
        sections: Vec::new(),
        functions,
        changes: 0,
    };
    for reply in replies {
        match reply {
            ShardReply::Snapshot(part) => {
                snapshot.sections.extend(part.sections);
                snapshot.changes += part.changes;
            }
            other => return Err(shard_error(&other)),
        }
    }
    report_skipped(&snapshot);
    Ok(snapshot)
}

/// Sends `request` to every shard while all are held together (under `hold` when the caller's
/// EXEC already holds them), so that each answers as of the same moment; the function
/// libraries' code read in that moment too.
async fn every_shard_held(
    shard: &Rc<Shard>,
    hold: Option<HoldToken>,
    request: AdminRequest,
) -> (Vec<ShardReply>, Vec<String>) {
    every_shard_held_then(shard, hold, request, || {}).await
}

/// [`every_shard_held`], running `at_moment` too while every shard is held.
pub(crate) async fn every_shard_held_then(
    shard: &Rc<Shard>,
    hold: Option<HoldToken>,
    request: AdminRequest,
    at_moment: impl FnOnce(),
) -> (Vec<ShardReply>, Vec<String>) {
    let held = EveryShard::hold(shard, hold).await;
    let replies = broadcast(shard, Some(held.token), request).await;
    at_moment();
    let functions = library_codes(shard);
    held.release(shard).await;
    (replies, functions)
}

/// A shard's answer other than the one asked for, as a sentence (a timeout's error).
fn shard_error(reply: &ShardReply) -> String {
    match reply {
        ShardReply::Reply(ember_resp::Reply::Error(error)) => error.to_string(),
        _ => "a shard answered the snapshot with something else".into(),
    }
}

/// Writes `snapshot` to `path`: to a temporary file beside it, synced, then renamed over it.
/// Returns the file's size.
fn write_file(path: &Path, snapshot: &Snapshot) -> std::io::Result<u64> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let temp = dir.join(format!("temp-{}.rdb", std::process::id()));
    let opened = std::fs::File::create(&temp).map_err(|error| {
        std::io::Error::new(
            error.kind(),
            format!(
                "Failed opening the temp RDB file {} (in server root dir {}) for saving: {error}",
                temp.display(),
                std::env::current_dir()
                    .map(|dir| dir.display().to_string())
                    .unwrap_or_default()
            ),
        )
    })?;
    let written = write_rdb(BufWriter::with_capacity(1 << 20, opened), snapshot)
        .and_then(|out| out.into_inner().map_err(|error| error.into_error()))
        .and_then(|file| {
            file.sync_all()?;
            Ok(file.metadata()?.len())
        })
        .and_then(|len| std::fs::rename(&temp, path).map(|()| len));
    match written {
        Ok(len) => {
            // The rename itself is durable once the directory is synced.
            if let Ok(dir) = std::fs::File::open(&dir) {
                let _ = dir.sync_all();
            }
            Ok(len)
        }
        Err(error) => {
            let _ = std::fs::remove_file(&temp);
            Err(error)
        }
    }
}

fn write_rdb<W: std::io::Write>(out: W, snapshot: &Snapshot) -> std::io::Result<W> {
    let version = snapshot
        .sections
        .iter()
        .map(Section::version)
        .max()
        .unwrap_or(ember_store::dump::RDB_VERSION);
    let ctime = (unix_time_ms() / 1000).to_string();
    let used = crate::memory::GAUGE.used_bytes().to_string();
    let aux = [
        ("redis-ver", REDIS_VERSION),
        ("redis-bits", "64"),
        ("ctime", ctime.as_str()),
        ("used-mem", used.as_str()),
        ("aof-base", "0"),
    ];
    let mut writer = RdbWriter::start(out, version, &aux)?;
    for code in &snapshot.functions {
        writer.function(code.as_bytes())?;
    }
    for db in 0..DATABASE_COUNT {
        let sections: Vec<&Section> = snapshot
            .sections
            .iter()
            .filter(|section| section.db() == db && !section.is_empty())
            .collect();
        if sections.is_empty() {
            continue;
        }
        let keys = sections.iter().map(|section| section.keys()).sum();
        let expires = sections.iter().map(|section| section.expires()).sum();
        writer.database(db, keys, expires)?;
        for section in sections {
            writer.section(section)?;
        }
    }
    writer.finish()
}

/// SAVE (and SHUTDOWN's save): the snapshot, then the file written here, while the caller
/// waits. The error is a sentence for the log and the reply.
pub async fn save(shard: &Rc<Shard>, hold: Option<HoldToken>) -> Result<(), String> {
    let persistence = &shard.shared.persistence;
    if !persistence.begin() {
        return Err("Background save already in progress".into());
    }
    let started = Instant::now();
    let snapshot = match take_snapshot(shard, hold).await {
        Ok(snapshot) => snapshot,
        Err(error) => {
            persistence.end(0, false);
            return Err(error);
        }
    };
    let path = file_path(&shard.config.borrow());
    let written = write_file(&path, &snapshot);
    persistence.end(snapshot.changes, written.is_ok());
    match written {
        Ok(bytes) => {
            eprintln!(
                "ember: DB saved on disk ({}): {} keys, {bytes} bytes, {:.3} seconds",
                path.display(),
                snapshot.keys(),
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Err(error) => {
            eprintln!("ember: SAVE failed: {error}");
            Err(error.to_string())
        }
    }
}

/// What BGSAVE did.
#[derive(Debug, PartialEq, Eq)]
pub enum Background {
    /// The snapshot is taken; its file is being written.
    Started,
    /// A save was under way: this one starts after it (BGSAVE SCHEDULE).
    Scheduled,
}

/// BGSAVE [SCHEDULE]: the moment marked on every shard (held together for it), then each
/// encodes its keys between requests, and a thread of its own writes the file once they all
/// have.
pub async fn background_save(
    shard: &Rc<Shard>,
    hold: Option<HoldToken>,
    schedule: bool,
) -> Result<Background, String> {
    let persistence = &shard.shared.persistence;
    if !persistence.begin() {
        if crate::aof::rewriting() && !schedule {
            return Err("An AOF log rewriting in progress: can't BGSAVE right now. Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.".into());
        }
        if schedule {
            persistence.scheduled.store(true, Ordering::Release);
            return Ok(Background::Scheduled);
        }
        return Err("Background save already in progress".into());
    }
    background_snapshot(shard, hold, Target::Rdb).await?;
    Ok(Background::Started)
}

/// BGREWRITEAOF's snapshot, the log's next base ([`crate::aof::rewrite`]).
///
/// # Errors
/// A save under way, or a rewrite that cannot start.
pub async fn background_rewrite(shard: &Rc<Shard>, hold: Option<HoldToken>) -> Result<(), String> {
    if !shard.shared.persistence.begin() {
        return Err("Background save already in progress".into());
    }
    background_snapshot(shard, hold, Target::AofBase).await
}

/// True while a save or an AOF rewrite takes its snapshot or writes its file.
pub fn saving(shard: &Shard) -> bool {
    shard.shared.persistence.saving.load(Ordering::Acquire)
}

/// Where a background snapshot goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// `dir`/`dbfilename` (BGSAVE).
    Rdb,
    /// The append-only file's next base (BGREWRITEAOF).
    AofBase,
}

/// A background snapshot to `target`, once [`Persistence::begin`] has been won.
async fn background_snapshot(
    shard: &Rc<Shard>,
    hold: Option<HoldToken>,
    target: Target,
) -> Result<(), String> {
    let persistence = &shard.shared.persistence;
    let started = Instant::now();
    if target == Target::Rdb {
        persistence
            .background_since_s
            .store(unix_time_ms() / 1000, Ordering::Release);
    }
    let generation = {
        let mut collected = persistence.collected.lock().expect("collected lock");
        let generation = collected.generation + 1;
        *collected = Collected {
            generation,
            ..Collected::default()
        };
        generation
    };
    // An AOF rewrite moves the log to a new increment at the snapshot's moment.
    let mut moment: Option<Result<(PathBuf, u64), String>> = None;
    let config = shard.config.borrow().clone();
    let (begun, functions) = every_shard_held_then(
        shard,
        hold,
        AdminRequest::BeginSnapshot { generation },
        || {
            if target == Target::AofBase {
                moment = Some(crate::aof::rewrite_moment(&config));
            }
        },
    )
    .await;
    let paused = started.elapsed();
    let error = begun
        .iter()
        .find(|reply| !matches!(reply, ShardReply::Done))
        .map(shard_error);
    let (path, base_seq) = match (target, moment) {
        (Target::Rdb, _) => (file_path(&config), 0),
        (Target::AofBase, Some(Ok((path, seq)))) => (path, seq),
        (Target::AofBase, Some(Err(why))) => {
            finish_background(shard.shared.clone(), target, 0, started, Err(why.clone()));
            return Err(why);
        }
        (Target::AofBase, None) => unreachable!("the moment closure runs"),
    };
    if let Some(error) = error {
        // A shard that did not answer may still begin later: its part is never collected, and
        // this save is over.
        if target == Target::AofBase {
            crate::aof::rewrite_done(&config, base_seq, Err(error.clone()), started);
        }
        finish_background(shard.shared.clone(), target, 0, started, Err(error.clone()));
        return Err(error);
    }
    let shared = shard.shared.clone();
    let shard_count = shard.count();
    std::thread::Builder::new()
        .name("ember-bgsave".into())
        .spawn(move || {
            crate::runtime::as_helper_thread();
            let snapshot = {
                let persistence = &shared.persistence;
                let mut collected = persistence.collected.lock().expect("collected lock");
                while collected.shards < shard_count {
                    collected = persistence
                        .collected_ready
                        .wait(collected)
                        .expect("collected lock");
                }
                Snapshot {
                    sections: std::mem::take(&mut collected.sections),
                    functions,
                    changes: collected.changes,
                }
            };
            let encoded = started.elapsed();
            report_skipped(&snapshot);
            let written = write_file(&path, &snapshot).map_err(|error| error.to_string());
            if let Ok(bytes) = &written {
                let what = match target {
                    Target::Rdb => "Background saving terminated with success",
                    Target::AofBase => "Background AOF base written",
                };
                eprintln!(
                    "ember: {what} ({}): {} keys, {bytes} bytes; shards held {:.3} ms to mark the moment, encoded by {:.3} s, written by {:.3} s",
                    path.display(),
                    snapshot.keys(),
                    paused.as_secs_f64() * 1e3,
                    encoded.as_secs_f64(),
                    started.elapsed().as_secs_f64()
                );
            }
            let outcome = written.map(|_| ());
            if target == Target::AofBase {
                crate::aof::rewrite_done(&config, base_seq, outcome.clone(), started);
            }
            finish_background(shared, target, snapshot.changes, started, outcome);
        })
        .map_err(|error| format!("cannot start the background save: {error}"))?;
    Ok(())
}

/// The function libraries' code, as FUNCTION DUMP has it.
fn library_codes(shard: &Shard) -> Vec<String> {
    shard
        .shared
        .scripts
        .libraries
        .read()
        .expect("libraries lock")
        .iter()
        .map(|library| library.code.clone())
        .collect()
}

/// Says in the log how many keys a snapshot left out (types RDB cannot hold).
fn report_skipped(snapshot: &Snapshot) {
    let skipped: u64 = snapshot.sections.iter().map(Section::skipped).sum();
    if skipped > 0 {
        eprintln!(
            "ember: {skipped} keys left out of the snapshot: their types (AI tensors, Top-K) have no RDB encoding"
        );
    }
}

fn finish_background(
    shared: std::sync::Arc<crate::shard::Shared>,
    target: Target,
    changes: u64,
    started: Instant,
    outcome: Result<(), String>,
) {
    let persistence = &shared.persistence;
    if target == Target::AofBase {
        // The log's own counters took the outcome (crate::aof::rewrite_done).
        persistence.saving.store(false, Ordering::Release);
        return;
    }
    if let Err(error) = &outcome {
        eprintln!("ember: Background saving error: {error}");
    }
    persistence
        .last_background_ok
        .store(outcome.is_ok(), Ordering::Release);
    persistence
        .last_background_seconds
        .store(started.elapsed().as_secs() as i64, Ordering::Release);
    persistence.background_since_s.store(0, Ordering::Release);
    persistence.end(changes, outcome.is_ok());
}

/// Waits for the save under way, if any, to end.
pub async fn wait_for_save(shard: &Shard) {
    while shard.shared.persistence.saving.load(Ordering::Acquire) {
        crate::runtime::sleep(Duration::from_millis(10)).await;
    }
}

/// True when `save` points are set (SHUTDOWN and a termination signal save then).
pub fn has_save_points(config: &Config) -> bool {
    !save_points(config).is_empty()
}

/// Shard 0's timer: a scheduled BGSAVE once the save before it ended, a BGSAVE when a `save`
/// point is reached (Redis's `serverCron`), and the save before exiting on a termination signal.
pub async fn cron(shard: Rc<Shard>) {
    loop {
        crate::runtime::sleep_until_tick(CRON_PERIOD).await;
        let persistence = &shard.shared.persistence;
        let points = save_points(&shard.config.borrow());
        crate::runtime::defer_termination(!points.is_empty() || crate::aof::on());
        refuse_writes_if_failing(persistence, !points.is_empty(), &shard.config.borrow());
        if crate::runtime::termination_requested() {
            // The listeners stay until the save is done: a shard whose accept loops end stops.
            wait_for_save(&shard).await;
            crate::aof::write_and_sync();
            if has_save_points(&shard.config.borrow()) {
                if let Err(error) = save(&shard, None).await {
                    eprintln!("ember: the save before exiting failed: {error}");
                }
            }
            eprintln!("ember: terminated by a signal; exiting");
            std::process::exit(0);
        }
        if persistence.saving.load(Ordering::Acquire) {
            continue;
        }
        if persistence.scheduled.swap(false, Ordering::AcqRel) {
            let _ = background_save(&shard, None, false).await;
            continue;
        }
        crate::aof::rewrite_if_scheduled(&shard).await;
        if crate::aof::rewrite_due(&shard.config.borrow()) {
            eprintln!("ember: starting an automatic rewrite of the append-only file (auto-aof-rewrite-percentage)");
            let _ = crate::aof::rewrite(&shard, None).await;
            continue;
        }
        if points.is_empty() {
            continue;
        }
        let now_s = unix_time_ms() / 1000;
        let since_save = now_s.saturating_sub(persistence.last_save_s());
        let retry_ok = persistence.last_background_ok.load(Ordering::Acquire)
            || now_s.saturating_sub(persistence.last_try_s.load(Ordering::Acquire)) > RETRY_DELAY_S;
        if !retry_ok {
            continue;
        }
        let changes = total_changes(&shard)
            .await
            .saturating_sub(persistence.changes_at_save.load(Ordering::Acquire));
        if let Some((seconds, wanted)) = points
            .iter()
            .find(|&&(seconds, wanted)| changes >= wanted && since_save > seconds)
        {
            eprintln!("ember: {wanted} changes in {seconds} seconds. Saving...");
            persistence.last_try_s.store(now_s, Ordering::Release);
            let _ = background_save(&shard, None, false).await;
        }
    }
}

/// The shards' change counters summed.
pub async fn total_changes(shard: &Rc<Shard>) -> u64 {
    broadcast(shard, None, AdminRequest::Changes)
        .await
        .iter()
        .map(|reply| match reply {
            ShardReply::Integer(changes) => *changes as u64,
            _ => 0,
        })
        .sum()
}
