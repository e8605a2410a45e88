//! HOTKEYS (Redis 8.6): START METRICS count [CPU] [NET] [COUNT k] [DURATION s] [SAMPLE ratio]
//! [SLOTS count slot...], GET, STOP, RESET, HELP.
//!
//! Every shard keeps its own session ([`Recorder`]): a HeavyKeeper top-k (ember-store's
//! [`TopK`], the sketch behind TOPK.*) per metric. CPU is recorded where a keyspace command
//! runs (the shard owning its keys, timed around its handler, at least 1 us so that
//! sub-microsecond reads still rank; other commands by the executor); NET where the
//! connection lives (the executor, after the reply: the request's RESP size plus the reply's
//! bytes). Each is attributed to every key of the command, so a key read from several shards
//! appears in several NET sketches: HOTKEYS GET asks every shard ([`AdminRequest::Hotkeys`])
//! and adds up each key's figures before it ranks them. START, STOP and RESET go to every
//! shard too, so all of them hold the same session.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use ember_resp::{Protocol, ReplySink};
use ember_store::probabilistic::TopK;
use ember_store::slot::{key_slot, SLOT_COUNT};

use super::{is, parse_integer, CommandResult, COMMANDS};
use crate::shard::{AdminRequest, HoldToken, Shard, ShardReply};

/// Metrics a session may track (CPU and NET): Redis's bound on METRICS count.
const METRICS_MAX: i64 = 2;
/// COUNT's default and bounds, Redis's: a report of at most 64 keys per metric.
const COUNT_DEFAULT: u32 = 10;
const COUNT_MAX: i64 = 64;
/// DURATION's bound in seconds, Redis's (about 11.5 days); 0 runs until STOP.
const DURATION_MAX_S: i64 = 1_000_000;
/// HeavyKeeper's shape for a top-`k`, as Redis sizes its own: `k * 10` candidates over a
/// table `k * 100` wide (rounded up to a power of two), so that keys just below the top k are
/// still counted when they climb.
const CANDIDATES_PER_KEY: u32 = 10;
const WIDTH_PER_KEY: u32 = 100;
const SKETCH_DEPTH: u32 = 6;
/// HeavyKeeper's decay, Redis's for HOTKEYS.
const SKETCH_DECAY: f64 = 0.925;

/// What START asked for; every shard holds a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionParams {
    /// Track CPU time per key.
    pub cpu: bool,
    /// Track network bytes per key.
    pub net: bool,
    /// Keys reported per metric.
    pub k: u32,
    /// Tracking stops by itself this long after the start (0: only at STOP).
    pub duration_ms: u64,
    /// Each key is sampled with probability 1/ratio.
    pub sample_ratio: u64,
    /// Slots tracked (empty: all), sorted and distinct.
    pub slots: Vec<u16>,
    /// Unix time of START, milliseconds.
    pub started_unix_ms: u64,
}

/// Whole-shard HOTKEYS work, sent to every shard.
#[derive(Debug, Clone)]
pub enum HotkeysRequest {
    /// Start a session (the origin checked that none runs).
    Start(SessionParams),
    /// Stop recording, keeping the figures.
    Stop { stopped_unix_ms: u64 },
    /// Forget the session.
    Reset,
    /// This shard's figures.
    Get,
}

/// One shard's figures for HOTKEYS GET.
#[derive(Debug, Clone, Default)]
pub struct ShardHotkeys {
    /// Top keys by CPU time (us) on this shard.
    pub by_cpu_us: Vec<(Vec<u8>, u64)>,
    /// Top keys by bytes on this shard.
    pub by_net_bytes: Vec<(Vec<u8>, u64)>,
    /// Totals, every command.
    pub totals: Totals,
}

/// Running sums of one session on one shard.
#[derive(Debug, Clone, Copy, Default)]
pub struct Totals {
    /// Time of every command, us.
    pub all_us: u64,
    /// Bytes of every command.
    pub all_net_bytes: u64,
    /// Time of the commands with a key in the selected slots, us.
    pub selected_us: u64,
    /// Their bytes.
    pub selected_net_bytes: u64,
    /// Time of the commands of the selected slots that were sampled, us.
    pub sampled_us: u64,
    /// Their bytes.
    pub sampled_net_bytes: u64,
}

impl Totals {
    fn add(&mut self, other: &Totals) {
        self.all_us += other.all_us;
        self.all_net_bytes += other.all_net_bytes;
        self.selected_us += other.selected_us;
        self.selected_net_bytes += other.selected_net_bytes;
        self.sampled_us += other.sampled_us;
        self.sampled_net_bytes += other.sampled_net_bytes;
    }
}

/// A session on one shard.
struct Session {
    params: SessionParams,
    started: Instant,
    /// Unix time of STOP (or of the end of DURATION), once stopped.
    stopped_unix_ms: Option<u64>,
    /// Selected slots as a bitmap (empty when all are).
    slot_bits: Vec<u64>,
    cpu: Option<TopK>,
    net: Option<TopK>,
    totals: Totals,
    /// Process CPU time at START (user, system), for total-cpu-time-*-ms.
    rusage_start_us: (u64, u64),
}

impl Session {
    fn new(params: SessionParams) -> Self {
        let sketch = || {
            let k = params.k * CANDIDATES_PER_KEY;
            let width = (params.k * WIDTH_PER_KEY).next_power_of_two();
            TopK::new(k, width, SKETCH_DEPTH, SKETCH_DECAY).expect("COUNT bounds the sketch")
        };
        let mut slot_bits = Vec::new();
        if !params.slots.is_empty() {
            slot_bits = vec![0u64; usize::from(SLOT_COUNT) / 64];
            for &slot in &params.slots {
                slot_bits[usize::from(slot) / 64] |= 1 << (slot % 64);
            }
        }
        Self {
            cpu: params.cpu.then(sketch),
            net: params.net.then(sketch),
            started: Instant::now(),
            stopped_unix_ms: None,
            slot_bits,
            totals: Totals::default(),
            rusage_start_us: process_cpu_us(),
            params,
        }
    }

    fn selects(&self, slot: u16) -> bool {
        self.slot_bits.is_empty()
            || self.slot_bits[usize::from(slot) / 64] & (1 << (slot % 64)) != 0
    }
}

/// A shard's HOTKEYS state. `recording` is the one load the executor pays per command while
/// no session runs.
#[derive(Default)]
pub struct Recorder {
    recording: Cell<bool>,
    session: RefCell<Option<Session>>,
}

impl Recorder {
    /// True while a session records.
    pub fn recording(&self) -> bool {
        self.recording.get()
    }

    /// A session records and its DURATION has not passed; ends it when it has.
    fn active(&self) -> bool {
        if !self.recording.get() {
            return false;
        }
        let mut session = self.session.borrow_mut();
        let Some(session) = session.as_mut() else {
            return false;
        };
        let duration_ms = session.params.duration_ms;
        if duration_ms > 0 && session.started.elapsed() >= Duration::from_millis(duration_ms) {
            session.stopped_unix_ms = Some(session.params.started_unix_ms + duration_ms);
            self.recording.set(false);
            return false;
        }
        true
    }

    /// Records the CPU time of a keyspace command that ran here (the shard owning its keys):
    /// `elapsed_us` for each of its keys, or of another command (`args` with no keys): the
    /// total only.
    pub fn record_cpu(&self, index: usize, args: &[&[u8]], elapsed_us: u64) {
        if !self.active() {
            return;
        }
        let cpu_us = elapsed_us.max(1);
        self.record(
            index,
            args,
            |session, key| {
                if let Some(sketch) = session.cpu.as_mut() {
                    sketch.add(key, saturate(cpu_us));
                }
            },
            |totals, selected, sampled| {
                totals.all_us += cpu_us;
                totals.selected_us += if selected { cpu_us } else { 0 };
                totals.sampled_us += if sampled { cpu_us } else { 0 };
            },
        );
    }

    /// Records the bytes of a command of a connection of this shard: its request and its
    /// `reply_bytes`, for each of its keys.
    pub fn record_net(&self, index: usize, args: &[&[u8]], reply_bytes: usize) {
        if !self.active() {
            return;
        }
        let net_bytes = (request_bytes(args) + reply_bytes) as u64;
        self.record(
            index,
            args,
            |session, key| {
                if let Some(sketch) = session.net.as_mut() {
                    sketch.add(key, saturate(net_bytes));
                }
            },
            |totals, selected, sampled| {
                totals.all_net_bytes += net_bytes;
                totals.selected_net_bytes += if selected { net_bytes } else { 0 };
                totals.sampled_net_bytes += if sampled { net_bytes } else { 0 };
            },
        );
    }

    /// Hands each key of command `index` that is in the selected slots and sampled to `key`,
    /// then the totals to `totals` with whether a key was selected and one was sampled.
    fn record(
        &self,
        index: usize,
        args: &[&[u8]],
        mut per_key: impl FnMut(&mut Session, &[u8]),
        totals: impl FnOnce(&mut Totals, bool, bool),
    ) {
        let mut guard = self.session.borrow_mut();
        let session = guard.as_mut().expect("active");
        let mut selected = false;
        let mut sampled = false;
        let positions = if args.is_empty() {
            Vec::new() // A total only (a command timed without its arguments).
        } else {
            COMMANDS[index].key_positions(args)
        };
        for position in positions {
            let key = args[position];
            if !session.selects(key_slot(key)) {
                continue;
            }
            selected = true;
            let ratio = session.params.sample_ratio;
            if ratio > 1 && rand::random::<u64>() % ratio != 0 {
                continue;
            }
            sampled = true;
            per_key(session, key);
        }
        totals(&mut session.totals, selected, sampled);
    }
}

fn saturate(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// Bytes of `args` as a client sends them (a RESP array of bulk strings).
fn request_bytes(args: &[&[u8]]) -> usize {
    let digits = |n: usize| n.checked_ilog10().unwrap_or(0) as usize + 1;
    let header = 3 + digits(args.len());
    header
        + args
            .iter()
            .map(|arg| 1 + digits(arg.len()) + 2 + arg.len() + 2)
            .sum::<usize>()
}

/// This process's user and system CPU time, microseconds.
fn process_cpu_us() -> (u64, u64) {
    // SAFETY: getrusage writes one rusage into the zeroed struct we own; RUSAGE_SELF is valid.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let us = |time: libc::timeval| time.tv_sec as u64 * 1_000_000 + time.tv_usec as u64;
    (us(usage.ru_utime), us(usage.ru_stime))
}

/// Answers a shard's part of HOTKEYS.
pub fn answer(shard: &Shard, request: HotkeysRequest) -> ShardReply {
    let recorder = &shard.hotkeys;
    match request {
        HotkeysRequest::Start(params) => {
            *recorder.session.borrow_mut() = Some(Session::new(params));
            recorder.recording.set(true);
            ShardReply::Done
        }
        HotkeysRequest::Stop { stopped_unix_ms } => {
            if recorder.active() {
                if let Some(session) = recorder.session.borrow_mut().as_mut() {
                    session.stopped_unix_ms = Some(stopped_unix_ms);
                }
                recorder.recording.set(false);
            }
            ShardReply::Done
        }
        HotkeysRequest::Reset => {
            recorder.recording.set(false);
            *recorder.session.borrow_mut() = None;
            ShardReply::Done
        }
        HotkeysRequest::Get => match recorder.session.borrow().as_ref() {
            Some(session) => ShardReply::Hotkeys(Box::new(figures(session))),
            None => ShardReply::Done,
        },
    }
}

/// A session's figures on this shard.
fn figures(session: &Session) -> ShardHotkeys {
    let list = |sketch: &Option<TopK>| {
        sketch
            .as_ref()
            .map(|sketch| {
                sketch
                    .list()
                    .into_iter()
                    .map(|(key, count)| (key.to_vec(), u64::from(count)))
                    .collect()
            })
            .unwrap_or_default()
    };
    ShardHotkeys {
        by_cpu_us: list(&session.cpu),
        by_net_bytes: list(&session.net),
        totals: session.totals,
    }
}

/// HOTKEYS and its subcommands.
pub async fn run(
    shard: &Rc<Shard>,
    hold: Option<HoldToken>,
    args: &[&[u8]],
    out: &mut ReplySink,
) -> CommandResult {
    let subcommand = args[1];
    if is(subcommand, "START") {
        if shard.hotkeys.active() {
            return Err("ERR hotkey tracking session already in progress".into());
        }
        let params = parse_start(&args[2..], crate::stats::unix_time_ms())?;
        broadcast(shard, hold, HotkeysRequest::Start(params)).await;
        out.ok();
    } else if is(subcommand, "STOP") {
        if args.len() != 2 {
            return Err("ERR wrong number of arguments for 'hotkeys|stop' command".into());
        }
        if !shard.hotkeys.active() {
            out.null();
            return Ok(());
        }
        let stopped_unix_ms = crate::stats::unix_time_ms();
        broadcast(shard, hold, HotkeysRequest::Stop { stopped_unix_ms }).await;
        out.ok();
    } else if is(subcommand, "RESET") {
        if args.len() != 2 {
            return Err("ERR wrong number of arguments for 'hotkeys|reset' command".into());
        }
        if shard.hotkeys.active() {
            return Err("ERR hotkey tracking session in progress, stop tracking first".into());
        }
        broadcast(shard, hold, HotkeysRequest::Reset).await;
        out.ok();
    } else if is(subcommand, "GET") {
        if args.len() != 2 {
            return Err("ERR wrong number of arguments for 'hotkeys|get' command".into());
        }
        get(shard, hold, out).await;
    } else if is(subcommand, "HELP") && args.len() == 2 {
        help(out);
    } else {
        return Err(super::unknown_subcommand_message("hotkeys", subcommand).into());
    }
    Ok(())
}

async fn broadcast(
    shard: &Rc<Shard>,
    hold: Option<HoldToken>,
    request: HotkeysRequest,
) -> Vec<ShardReply> {
    super::remote::broadcast(shard, hold, AdminRequest::Hotkeys(request)).await
}

/// Parses START's options (after `START`); Redis's checks and wording.
fn parse_start(options: &[&[u8]], now_unix_ms: u64) -> Result<SessionParams, super::CommandError> {
    let mut params = SessionParams {
        cpu: false,
        net: false,
        k: COUNT_DEFAULT,
        duration_ms: 0,
        sample_ratio: 1,
        slots: Vec::new(),
        started_unix_ms: now_unix_ms,
    };
    let mut metrics_seen = false;
    let mut slots_seen = false;
    let mut at = 0;
    let value = |at: usize| -> Result<i64, super::CommandError> {
        options
            .get(at)
            .map(|arg| parse_integer(arg))
            .unwrap_or_else(|| Err("ERR syntax error".into()))
    };
    while at < options.len() {
        let option = options[at];
        if is(option, "METRICS") && !metrics_seen {
            metrics_seen = true;
            let count = value(at + 1)?;
            if count <= 0 || count > METRICS_MAX {
                return Err(format!("ERR METRICS count must be > 0 and <= {METRICS_MAX}").into());
            }
            at += 2;
            let mut named = 0;
            while let Some(metric) = options.get(at) {
                let flag = if is(metric, "CPU") {
                    &mut params.cpu
                } else if is(metric, "NET") {
                    &mut params.net
                } else {
                    break;
                };
                if *flag {
                    let name = if is(metric, "CPU") { "CPU" } else { "NET" };
                    return Err(format!("ERR METRICS {name} defined more than once!").into());
                }
                *flag = true;
                named += 1;
                at += 1;
            }
            if named == 0 {
                return Err("ERR METRICS no valid metrics passed. Supported: CPU|NET".into());
            }
            if named != count {
                return Err(
                    "ERR METRICS count does not match number of metric types provided".into(),
                );
            }
        } else if is(option, "COUNT") {
            let k = value(at + 1)?;
            if !(1..=COUNT_MAX).contains(&k) {
                return Err(format!("ERR COUNT must be between 1 and {COUNT_MAX}").into());
            }
            params.k = k as u32;
            at += 2;
        } else if is(option, "DURATION") {
            let seconds = value(at + 1)?;
            if !(0..=DURATION_MAX_S).contains(&seconds) {
                return Err(format!("ERR DURATION must be between 1 and {DURATION_MAX_S}").into());
            }
            params.duration_ms = seconds as u64 * 1000;
            at += 2;
        } else if is(option, "SAMPLE") {
            let ratio = value(at + 1)?;
            if ratio <= 0 {
                return Err("ERR SAMPLE ratio must be positive".into());
            }
            params.sample_ratio = ratio as u64;
            at += 2;
        } else if is(option, "SLOTS") {
            if slots_seen {
                return Err("ERR SLOTS parameter already specified".into());
            }
            slots_seen = true;
            let count = value(at + 1)?;
            if count < 1 || count > i64::from(SLOT_COUNT) {
                return Err(format!("ERR SLOTS count must be between 1 and {SLOT_COUNT}").into());
            }
            at += 2;
            if options.len() < at + count as usize {
                return Err("ERR not enough slot numbers provided".into());
            }
            for arg in &options[at..at + count as usize] {
                let slot = parse_integer(arg)?;
                if !(0..i64::from(SLOT_COUNT)).contains(&slot) {
                    return Err(format!("ERR slot {slot} not handled by this node").into());
                }
                if params.slots.contains(&(slot as u16)) {
                    return Err("ERR duplicate slot number".into());
                }
                params.slots.push(slot as u16);
            }
            at += count as usize;
        } else {
            return Err("ERR syntax error".into());
        }
    }
    if !metrics_seen {
        return Err("ERR METRICS parameter is required".into());
    }
    params.slots.sort_unstable();
    Ok(params)
}

/// HOTKEYS GET: null without a session, else one session's report (an array of one element:
/// a flat field/value array in RESP2, a map in RESP3), fields in Redis's order.
async fn get(shard: &Rc<Shard>, hold: Option<HoldToken>, out: &mut ReplySink) {
    let active = shard.hotkeys.active();
    let params_and_times = shard.hotkeys.session.borrow().as_ref().map(|session| {
        (
            session.params.clone(),
            session.stopped_unix_ms,
            session.rusage_start_us,
        )
    });
    let Some((params, stopped_unix_ms, rusage_start_us)) = params_and_times else {
        out.null();
        return;
    };
    let mut totals = Totals::default();
    let mut by_cpu: Vec<(Vec<u8>, u64)> = Vec::new();
    let mut by_net: Vec<(Vec<u8>, u64)> = Vec::new();
    for reply in broadcast(shard, hold, HotkeysRequest::Get).await {
        if let ShardReply::Hotkeys(figures) = reply {
            totals.add(&figures.totals);
            merge(&mut by_cpu, figures.by_cpu_us);
            merge(&mut by_net, figures.by_net_bytes);
        }
    }
    let k = params.k as usize;
    rank(&mut by_cpu, k);
    rank(&mut by_net, k);
    let now_unix_ms = crate::stats::unix_time_ms();
    let end_unix_ms = if active {
        now_unix_ms
    } else {
        stopped_unix_ms.unwrap_or(now_unix_ms)
    };
    let duration_ms = end_unix_ms.saturating_sub(params.started_unix_ms);
    let sliced = !params.slots.is_empty();
    let sampled = sliced && params.sample_ratio > 1;
    let pairs = 7
        + usize::from(sliced) * 2
        + usize::from(sampled) * 2
        + usize::from(params.cpu) * 3
        + usize::from(params.net) * 2;
    out.array_len(1);
    if out.protocol() == Protocol::Resp3 {
        out.map_len(pairs);
    } else {
        out.array_len(pairs * 2);
    }
    let field = |out: &mut ReplySink, name: &str, value: u64| {
        out.bulk(name.as_bytes());
        out.integer(value.min(i64::MAX as u64) as i64);
    };
    field(out, "tracking-active", u64::from(active));
    field(out, "sample-ratio", params.sample_ratio);
    out.bulk(b"selected-slots");
    let ranges = slot_ranges(&params.slots);
    out.array_len(ranges.len());
    for (first, last) in ranges {
        out.array_len(2);
        out.integer(i64::from(first));
        out.integer(i64::from(last));
    }
    if sampled {
        field(out, "sampled-commands-selected-slots-us", totals.sampled_us);
    }
    if sliced {
        field(out, "all-commands-selected-slots-us", totals.selected_us);
    }
    field(out, "all-commands-all-slots-us", totals.all_us);
    if sampled {
        field(
            out,
            "net-bytes-sampled-commands-selected-slots",
            totals.sampled_net_bytes,
        );
    }
    if sliced {
        field(
            out,
            "net-bytes-all-commands-selected-slots",
            totals.selected_net_bytes,
        );
    }
    field(
        out,
        "net-bytes-all-commands-all-slots",
        totals.all_net_bytes,
    );
    field(out, "collection-start-time-unix-ms", params.started_unix_ms);
    field(out, "collection-duration-ms", duration_ms);
    if params.cpu {
        let (user_us, system_us) = process_cpu_us();
        field(
            out,
            "total-cpu-time-user-ms",
            user_us.saturating_sub(rusage_start_us.0) / 1000,
        );
        field(
            out,
            "total-cpu-time-sys-ms",
            system_us.saturating_sub(rusage_start_us.1) / 1000,
        );
    }
    if params.net {
        field(out, "total-net-bytes", totals.all_net_bytes);
    }
    if params.cpu {
        write_ranking(out, "by-cpu-time-us", &by_cpu);
    }
    if params.net {
        write_ranking(out, "by-net-bytes", &by_net);
    }
}

/// Adds `more` into `into`, key by key.
fn merge(into: &mut Vec<(Vec<u8>, u64)>, more: Vec<(Vec<u8>, u64)>) {
    for (key, value) in more {
        match into.iter_mut().find(|(known, _)| *known == key) {
            Some((_, total)) => *total += value,
            None => into.push((key, value)),
        }
    }
}

/// Heaviest first (ties by key, so the order is stable), at most `k`.
fn rank(items: &mut Vec<(Vec<u8>, u64)>, k: usize) {
    items.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    items.truncate(k);
}

fn write_ranking(out: &mut ReplySink, name: &str, items: &[(Vec<u8>, u64)]) {
    out.bulk(name.as_bytes());
    out.array_len(items.len() * 2);
    for (key, value) in items {
        out.bulk(key);
        out.integer((*value).min(i64::MAX as u64) as i64);
    }
}

/// Sorted distinct slots as inclusive ranges.
fn slot_ranges(slots: &[u16]) -> Vec<(u16, u16)> {
    let mut ranges: Vec<(u16, u16)> = Vec::new();
    for &slot in slots {
        match ranges.last_mut() {
            Some((_, last)) if *last + 1 == slot => *last = slot,
            _ => ranges.push((slot, slot)),
        }
    }
    ranges
}

fn help(out: &mut ReplySink) {
    let lines = [
        "HOTKEYS <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "START METRICS <count> [CPU] [NET] [COUNT <k>] [DURATION <duration>] [SAMPLE <ratio>] [SLOTS <count> <slot>...]",
        "    Start tracking hotkeys.",
        "    * METRICS count [CPU] [NET]",
        "        Specify count of metrics and choose amongst:",
        "        - CPU: Track hotkeys by CPU time percentage",
        "        - NET: Track hotkeys by network bytes percentage",
        "    * COUNT k",
        "        Specifies the value of K for the top-K hotkeys tracking. Default: 10",
        "    * DURATION duration",
        "        Specifies tracking duration in seconds. 0 means tracking will continue until manually stopped. Default: 0",
        "    * SAMPLE ratio",
        "        Keys are tracked with probability 1/ratio. Default: 1 (tracks every key)",
        "    * SLOTS count slot...",
        "        Specify which slots to track keys from. Default: empty (track all slots)",
        "STOP",
        "    Stop hotkeys tracking. Results are still available via GET",
        "GET",
        "    Get results from hotkeys tracking.",
        "RESET",
        "    Reset memory used for hotkeys tracking. Tracking must have been stopped.",
        "    Results will no longer be available after this command.",
        "HELP",
        "    Print this help.",
    ];
    out.array_len(lines.len());
    for line in lines {
        out.simple(line.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<Vec<u8>> {
        args.iter().map(|a| a.as_bytes().to_vec()).collect()
    }

    fn parse(args: &[&str]) -> Result<SessionParams, String> {
        let owned = strings(args);
        let slices: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
        parse_start(&slices, 1000).map_err(|error| error.0.to_string())
    }

    #[test]
    fn start_options_are_checked_as_redis_checks_them() {
        let cases: &[(&str, &[&str], &str)] = &[
            ("no metrics", &[], "ERR METRICS parameter is required"),
            (
                "count only",
                &["COUNT", "5"],
                "ERR METRICS parameter is required",
            ),
            (
                "zero metrics",
                &["METRICS", "0", "CPU"],
                "ERR METRICS count must be > 0 and <= 2",
            ),
            (
                "three metrics",
                &["METRICS", "3", "CPU"],
                "ERR METRICS count must be > 0 and <= 2",
            ),
            (
                "cpu twice",
                &["METRICS", "2", "CPU", "CPU"],
                "ERR METRICS CPU defined more than once!",
            ),
            (
                "count mismatch",
                &["METRICS", "2", "CPU"],
                "ERR METRICS count does not match number of metric types provided",
            ),
            (
                "no metric named",
                &["METRICS", "1", "MEM"],
                "ERR METRICS no valid metrics passed. Supported: CPU|NET",
            ),
            (
                "count too big",
                &["METRICS", "1", "CPU", "COUNT", "65"],
                "ERR COUNT must be between 1 and 64",
            ),
            (
                "count zero",
                &["METRICS", "1", "CPU", "COUNT", "0"],
                "ERR COUNT must be between 1 and 64",
            ),
            (
                "duration too long",
                &["METRICS", "1", "NET", "DURATION", "1000001"],
                "ERR DURATION must be between 1 and 1000000",
            ),
            (
                "sample zero",
                &["METRICS", "1", "NET", "SAMPLE", "0"],
                "ERR SAMPLE ratio must be positive",
            ),
            (
                "not a number",
                &["METRICS", "x", "NET"],
                "ERR value is not an integer or out of range",
            ),
            (
                "missing value",
                &["METRICS", "1", "NET", "COUNT"],
                "ERR syntax error",
            ),
            (
                "unknown option",
                &["METRICS", "1", "NET", "FOO"],
                "ERR syntax error",
            ),
            (
                "slots short",
                &["METRICS", "1", "NET", "SLOTS", "2", "1"],
                "ERR not enough slot numbers provided",
            ),
            (
                "slot duplicate",
                &["METRICS", "1", "NET", "SLOTS", "2", "1", "1"],
                "ERR duplicate slot number",
            ),
            (
                "slot out of range",
                &["METRICS", "1", "NET", "SLOTS", "1", "16384"],
                "ERR slot 16384 not handled by this node",
            ),
            (
                "slots twice",
                &["METRICS", "1", "NET", "SLOTS", "1", "1", "SLOTS", "1", "2"],
                "ERR SLOTS parameter already specified",
            ),
        ];
        for (name, args, expected) in cases {
            assert_eq!(parse(args).unwrap_err(), *expected, "{name}");
        }
    }

    #[test]
    fn start_options_parse() {
        let params = parse(&[
            "metrics", "2", "net", "cpu", "count", "5", "duration", "3", "sample", "4", "slots",
            "3", "9", "7", "8",
        ])
        .unwrap();
        assert!(params.cpu && params.net);
        assert_eq!(params.k, 5);
        assert_eq!(params.duration_ms, 3000);
        assert_eq!(params.sample_ratio, 4);
        assert_eq!(params.slots, vec![7, 8, 9]);
        assert_eq!(slot_ranges(&params.slots), vec![(7, 9)]);
        assert_eq!(slot_ranges(&[1, 3, 4]), vec![(1, 1), (3, 4)]);
    }

    #[test]
    fn request_bytes_are_the_resp_encoding() {
        // *2\r\n$3\r\nGET\r\n$3\r\nkey\r\n = 4 + 9 + 9
        assert_eq!(request_bytes(&[b"GET", b"key"]), 22);
        let long = vec![b'x'; 10];
        // *1\r\n$10\r\nxxxxxxxxxx\r\n = 4 + 17
        assert_eq!(request_bytes(&[&long]), 21);
    }

    #[test]
    fn recorder_ranks_the_heaviest_key_and_stops_after_its_duration() {
        let recorder = Recorder::default();
        let get = super::super::lookup(b"get").expect("GET in the table");
        recorder.record_cpu(get, &[b"get", b"a"], 5);
        assert!(
            recorder.session.borrow().is_none(),
            "nothing without a session"
        );
        let params = parse(&["METRICS", "2", "CPU", "NET", "COUNT", "2"]).unwrap();
        *recorder.session.borrow_mut() = Some(Session::new(params));
        recorder.recording.set(true);
        for _ in 0..100 {
            recorder.record_cpu(get, &[b"get", b"hot"], 3);
            recorder.record_net(get, &[b"get", b"hot"], 10);
        }
        for key in [b"c1", b"c2", b"c3"] {
            recorder.record_cpu(get, &[b"get", key], 0);
            recorder.record_net(get, &[b"get", key], 10);
        }
        let figures = figures(recorder.session.borrow().as_ref().unwrap());
        assert_eq!(figures.by_cpu_us[0], (b"hot".to_vec(), 300));
        assert_eq!(figures.by_net_bytes[0].0, b"hot".to_vec());
        assert_eq!(figures.totals.all_us, 303, "at least 1 us a command");
        assert_eq!(figures.totals.all_net_bytes, 100 * 32 + 3 * 31);
        let mut guard = recorder.session.borrow_mut();
        let session = guard.as_mut().unwrap();
        session.params.duration_ms = 1;
        session.started -= Duration::from_millis(5);
        drop(guard);
        assert!(!recorder.active(), "its DURATION passed");
    }
}
