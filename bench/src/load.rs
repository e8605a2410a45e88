//! The load engine: N connections x pipeline depth over a few threads, each thread driving its
//! connections with non-blocking sockets and epoll (never one thread per connection).
//!
//! Three modes share one worker loop:
//! - closed loop: each connection sends `pipeline` requests in one write, waits for all of their
//!   replies, then sends the next batch (redis-benchmark's `-P` semantics);
//! - open loop: requests are due at a fixed rate whatever the server does, and latency is measured
//!   from the time a request was *due*, not when it could be sent, so a server that stalls is
//!   charged for every request that queued behind the stall (coordinated omission corrected);
//! - latency: one connection, one request at a time, the client spinning on a non-blocking read
//!   instead of sleeping in epoll, so the client's own wake-up time stays out of the figure.
//!
//! Every reply is checked: SET must answer `+OK`, GET must return exactly the pattern value of
//! the key it asked for (see [`crate::workload`]), and with `expect_hits` a miss fails the run.

use crate::poller::{Interest, Poller, Readiness};
use crate::reply::{self, Reply};
use crate::workload::{self, KeyChooser, KeyDistribution};
use hdrhistogram::Histogram;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

/// Most connections one run opens: beyond this the client measures its own descriptor handling.
pub const CONNECTIONS_MAX: usize = 10_000;

/// Deepest pipeline: a batch this deep already amortises every per-call cost.
pub const PIPELINE_MAX: usize = 4096;

/// In open loop, most requests outstanding on one connection; past it, due requests wait in the
/// client (and are charged from their due time) instead of growing the socket buffers forever.
pub const OPEN_LOOP_OUTSTANDING_MAX: usize = 1024;

/// Slowest open-loop rate: below one request a second a run measures almost nothing.
pub const RATE_PER_S_MIN: f64 = 1.0;

/// Fastest open-loop rate: far beyond what one machine's loopback carries.
pub const RATE_PER_S_MAX: f64 = 1e9;

/// Largest reply buffer per connection; a pipeline of the largest values fits.
const INPUT_BUFFER_MAX: usize = 256 << 20;

/// Bytes of a SET request or GET reply besides the value: framing and the key.
const REQUEST_OVERHEAD_BYTES: usize = 64;

/// Initial reply buffer per connection: a full pipeline of small replies in one read.
const INPUT_BUFFER_INITIAL: usize = 64 << 10;

/// How long a connection attempt may take before the run fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// After the measured window, how long outstanding replies may take before they count as lost.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Highest latency the histograms hold (longer ones are clamped to it): one minute, in ns.
const LATENCY_NS_MAX: u64 = 60_000_000_000;

/// Requests per write while preloading: large enough to be cheap, small enough to stay well
/// inside any server's output-buffer limits.
const PRELOAD_BATCH: u64 = 1000;

/// When a run stops.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stop {
    /// After this long (measured from the end of the warm-up).
    Duration(Duration),
    /// After this many measured requests, across all connections.
    Requests(u64),
}

/// The loop discipline.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    /// Batches of `pipeline` requests, the next one sent when the previous one is answered.
    Closed,
    /// Requests due at this many per second in total, latency measured from the due time.
    Open {
        /// Total arrival rate over all connections.
        rate_per_s: f64,
    },
    /// One connection, one request at a time, the client spinning on its socket.
    Latency,
}

/// Everything one run needs.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// The server.
    pub address: SocketAddr,
    /// Connections in total.
    pub connections: usize,
    /// Threads driving them (each owns connections / threads of them).
    pub threads: usize,
    /// Requests per batch in closed loop.
    pub pipeline: usize,
    /// Keys `key:000000000000` .. `key:<key_count - 1>`.
    pub key_count: u64,
    /// How keys are drawn.
    pub distribution: KeyDistribution,
    /// Bytes per value written (and expected back).
    pub value_size: usize,
    /// Relative weight of GET.
    pub get_weight: u32,
    /// Relative weight of SET.
    pub set_weight: u32,
    /// When to stop.
    pub stop: Stop,
    /// Closed, open or latency.
    pub mode: Mode,
    /// Unmeasured time at the start.
    pub warmup: Duration,
    /// Every GET must find its key (the keys were preloaded).
    pub expect_hits: bool,
    /// Seed of every random choice; thread t uses seed + t.
    pub seed: u64,
    /// CPUs the load threads are pinned to (thread t to cpus[t % len]); empty: not pinned.
    pub cpus: Vec<usize>,
    /// Spin on the sockets (epoll with a zero timeout) instead of sleeping.
    pub spin: bool,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

/// Counts of what happened, summed over connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// GET requests answered.
    pub gets: u64,
    /// SET requests answered.
    pub sets: u64,
    /// GETs that returned a value.
    pub hits: u64,
    /// GETs that returned null.
    pub misses: u64,
    /// Error replies.
    pub errors: u64,
    /// GETs whose value was not the key's pattern.
    pub wrong_values: u64,
    /// Replies of a type the request cannot get (a SET answered by a bulk, ...).
    pub unexpected: u64,
    /// Requests sent but never answered.
    pub unanswered: u64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.gets += other.gets;
        self.sets += other.sets;
        self.hits += other.hits;
        self.misses += other.misses;
        self.errors += other.errors;
        self.wrong_values += other.wrong_values;
        self.unexpected += other.unexpected;
        self.unanswered += other.unanswered;
    }

    /// Requests answered, GET and SET.
    pub fn operations(&self) -> u64 {
        self.gets + self.sets
    }
}

/// What a run measured.
pub struct Outcome {
    /// Latency of GETs, in nanoseconds.
    pub get_latency_ns: Histogram<u64>,
    /// Latency of SETs, in nanoseconds.
    pub set_latency_ns: Histogram<u64>,
    /// What happened.
    pub counts: Counts,
    /// From the end of the warm-up to the last reply.
    pub elapsed: Duration,
    /// The first thing that went wrong, in words, for the report.
    pub first_problem: Option<String>,
}

impl Outcome {
    /// GET and SET latencies together.
    pub fn all_latency_ns(&self) -> Histogram<u64> {
        let mut all = new_histogram();
        // Same bounds on both sides, so adding cannot fail.
        all.add(&self.get_latency_ns).expect("same bounds");
        all.add(&self.set_latency_ns).expect("same bounds");
        all
    }

    /// Operations per second over the measured window.
    pub fn throughput_per_s(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds <= 0.0 {
            return 0.0;
        }
        self.counts.operations() as f64 / seconds
    }

    /// Everything that makes this run's figures untrustworthy, in words; empty when none.
    pub fn failures(&self, expect_hits: bool) -> Vec<String> {
        let counts = &self.counts;
        let mut failures = Vec::new();
        if counts.operations() == 0 {
            failures.push("no request was answered".to_string());
        }
        let checks = [
            (counts.errors, "error replies"),
            (counts.wrong_values, "GET replies with a wrong value"),
            (counts.unexpected, "replies of an unexpected type"),
            (counts.unanswered, "requests never answered"),
        ];
        for (count, what) in checks {
            if count > 0 {
                failures.push(format!("{count} {what}"));
            }
        }
        if expect_hits && counts.misses > 0 {
            failures.push(format!(
                "{} GET misses where every key was expected to exist",
                counts.misses
            ));
        }
        if let (false, Some(problem)) = (failures.is_empty(), &self.first_problem) {
            failures.push(format!("first problem: {problem}"));
        }
        failures
    }
}

fn new_histogram() -> Histogram<u64> {
    // Three significant digits: 0.1% resolution at every scale, as memtier and wrk2 use.
    Histogram::new_with_bounds(1, LATENCY_NS_MAX, 3).expect("valid histogram bounds")
}

/// Checks a configuration before anything connects.
///
/// # Errors
/// Returns a message naming the first setting that is out of range.
pub fn validate(config: &LoadConfig) -> Result<(), String> {
    if config.connections == 0 || config.connections > CONNECTIONS_MAX {
        return Err(format!(
            "connections must be 1 to {CONNECTIONS_MAX}, not {}",
            config.connections
        ));
    }
    if config.threads == 0 || config.threads > config.connections {
        return Err(format!(
            "threads must be 1 to the number of connections ({}), not {}",
            config.connections, config.threads
        ));
    }
    if config.pipeline == 0 || config.pipeline > PIPELINE_MAX {
        return Err(format!(
            "pipeline must be 1 to {PIPELINE_MAX}, not {}",
            config.pipeline
        ));
    }
    if config.value_size > workload::VALUE_SIZE_MAX {
        return Err(format!(
            "value size must be at most {} bytes, not {}",
            workload::VALUE_SIZE_MAX,
            config.value_size
        ));
    }
    // A whole batch of replies (or of SETs) must fit one connection's buffer.
    let batch_bytes = config
        .pipeline
        .saturating_mul(config.value_size + REQUEST_OVERHEAD_BYTES);
    if batch_bytes > INPUT_BUFFER_MAX {
        return Err(format!(
            "pipeline {} of {}-byte values needs {batch_bytes} bytes per batch, over the {INPUT_BUFFER_MAX}-byte limit",
            config.pipeline, config.value_size
        ));
    }
    if config.get_weight == 0 && config.set_weight == 0 {
        return Err("the GET:SET ratio must not be 0:0".to_string());
    }
    KeyChooser::new(config.key_count, &config.distribution)?;
    match config.stop {
        Stop::Duration(duration) if duration.is_zero() => {
            return Err("duration must be above 0".to_string())
        }
        Stop::Requests(0) => return Err("request count must be above 0".to_string()),
        _ => {}
    }
    if let Mode::Open { rate_per_s } = config.mode {
        if !(RATE_PER_S_MIN..=RATE_PER_S_MAX).contains(&rate_per_s) {
            return Err(format!(
                "rate must be {RATE_PER_S_MIN} to {RATE_PER_S_MAX} requests per second, not {rate_per_s}"
            ));
        }
    }
    if config.mode == Mode::Latency
        && (config.connections != 1 || config.pipeline != 1 || config.threads != 1)
    {
        return Err(
            "latency mode uses exactly one connection, one thread and pipeline 1".to_string(),
        );
    }
    Ok(())
}

/// Runs the load described by `config`.
///
/// # Errors
/// Returns a message when the configuration is invalid, a connection cannot be made, or the
/// server closes a connection or sends bytes that are not RESP. Wrong or missing replies do
/// not stop the run: they are counted in [`Outcome::counts`] and reported by
/// [`Outcome::failures`].
pub fn run(config: &LoadConfig) -> Result<Outcome, String> {
    validate(config)?;
    let completed = AtomicU64::new(0);
    let barrier = Barrier::new(config.threads);
    let outcomes = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..config.threads)
            .map(|thread_index| {
                let completed = &completed;
                let barrier = &barrier;
                std::thread::Builder::new()
                    .name(format!("load-{thread_index}"))
                    .spawn_scoped(scope, move || {
                        run_thread(config, thread_index, barrier, completed)
                    })
                    .map_err(|error| format!("cannot start a load thread: {error}"))
            })
            .collect();
        let progress = ProgressBar::start(config);
        while handles
            .iter()
            .any(|handle| handle.as_ref().is_ok_and(|handle| !handle.is_finished()))
        {
            progress.update(completed.load(Ordering::Relaxed));
            std::thread::sleep(Duration::from_millis(50));
        }
        progress.finish(completed.load(Ordering::Relaxed));
        handles
            .into_iter()
            .map(|handle| {
                handle?
                    .join()
                    .map_err(|_| "a load thread panicked".to_string())?
            })
            .collect::<Result<Vec<_>, String>>()
    })?;
    let mut merged = Outcome {
        get_latency_ns: new_histogram(),
        set_latency_ns: new_histogram(),
        counts: Counts::default(),
        elapsed: Duration::ZERO,
        first_problem: None,
    };
    for outcome in outcomes {
        merged
            .get_latency_ns
            .add(&outcome.get_latency_ns)
            .expect("same bounds");
        merged
            .set_latency_ns
            .add(&outcome.set_latency_ns)
            .expect("same bounds");
        merged.counts.add(&outcome.counts);
        merged.elapsed = merged.elapsed.max(outcome.elapsed);
        if merged.first_problem.is_none() {
            merged.first_problem = outcome.first_problem;
        }
    }
    Ok(merged)
}

/// The progress bar: drawn on stderr only when it is a terminal and the run is long enough
/// for one to help.
struct ProgressBar {
    bar: Option<indicatif::ProgressBar>,
    total: Option<u64>,
    start: Instant,
    length: Duration,
}

/// Runs shorter than this get no progress bar.
const PROGRESS_RUN_MIN: Duration = Duration::from_secs(2);

impl ProgressBar {
    fn start(config: &LoadConfig) -> Self {
        let (total, length) = match config.stop {
            Stop::Requests(count) => (Some(count), Duration::ZERO),
            Stop::Duration(duration) => (None, config.warmup + duration),
        };
        let long = total.is_some_and(|count| count >= 1_000_000) || length >= PROGRESS_RUN_MIN;
        let bar = (config.progress && long).then(|| {
            let bar = match total {
                Some(count) => indicatif::ProgressBar::new(count),
                None => indicatif::ProgressBar::new(length.as_millis() as u64),
            };
            let template = match total {
                Some(_) => "{bar:40} {pos}/{len} requests {msg}",
                None => "{bar:40} {elapsed}/{duration} {msg}",
            };
            if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            bar
        });
        ProgressBar {
            bar,
            total,
            start: Instant::now(),
            length,
        }
    }

    fn update(&self, completed: u64) {
        let Some(bar) = &self.bar else { return };
        match self.total {
            Some(_) => bar.set_position(completed),
            None => bar.set_position((self.start.elapsed().min(self.length)).as_millis() as u64),
        }
        let seconds = self.start.elapsed().as_secs_f64().max(1e-3);
        bar.set_message(format!(
            "{completed} done, {:.0} ops/s",
            completed as f64 / seconds
        ));
    }

    fn finish(&self, completed: u64) {
        self.update(completed);
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Pins the calling thread to `cpu`.
///
/// # Errors
/// Returns the operating system's error (a CPU that does not exist or is not allowed).
pub fn pin_current_thread(cpu: usize) -> Result<(), String> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(format!("CPU {cpu} is out of range"));
    }
    // SAFETY: cpu_set_t is plain data for which all zeroes is the empty set; CPU_SET writes
    // inside it because cpu < CPU_SETSIZE, checked above; sched_setaffinity reads exactly
    // size_of::<cpu_set_t>() bytes from a live local.
    let result = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if result != 0 {
        return Err(format!(
            "cannot pin to CPU {cpu}: {}",
            io::Error::last_os_error()
        ));
    }
    Ok(())
}

fn run_thread(
    config: &LoadConfig,
    thread_index: usize,
    barrier: &Barrier,
    completed: &AtomicU64,
) -> Result<Outcome, String> {
    let prepared = prepare_thread(config, thread_index);
    // Every thread reaches the barrier, even one that failed, so that none waits forever.
    barrier.wait();
    let mut worker = prepared?;
    worker.run(completed)
}

fn prepare_thread(config: &LoadConfig, thread_index: usize) -> Result<Worker<'_>, String> {
    if !config.cpus.is_empty() {
        pin_current_thread(config.cpus[thread_index % config.cpus.len()])?;
    }
    let first = thread_index * config.connections / config.threads;
    let end = (thread_index + 1) * config.connections / config.threads;
    let mut connections = Vec::with_capacity(end - first);
    let poller = Poller::new().map_err(|error| format!("cannot create epoll: {error}"))?;
    for global_index in first..end {
        let connection = Connection::open(config.address, global_index)?;
        poller
            .add(
                connection.stream.as_raw_fd(),
                (global_index - first) as u64,
                Interest::Read,
            )
            .map_err(|error| format!("cannot watch a connection: {error}"))?;
        connections.push(connection);
    }
    let requests_left = match config.stop {
        Stop::Requests(count) => {
            // Thread t sends its share; the first threads take the remainder.
            let share = count / config.threads as u64;
            let remainder = (thread_index as u64) < count % config.threads as u64;
            Some(share + u64::from(remainder))
        }
        Stop::Duration(_) => None,
    };
    Ok(Worker {
        config,
        chooser: KeyChooser::new(config.key_count, &config.distribution)?,
        rng: SmallRng::seed_from_u64(config.seed.wrapping_add(thread_index as u64)),
        connections,
        poller,
        recorder: Recorder::new(),
        requests_left,
        scratch: Vec::with_capacity(config.value_size),
        unsent: Vec::new(),
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Command {
    Get,
    Set,
}

/// One request on the wire, waiting for its reply.
#[derive(Clone, Copy, Debug)]
struct Request {
    command: Command,
    key: u64,
    /// When it was sent (closed loop) or due (open loop).
    start: Instant,
    /// Sent after the warm-up: its latency and reply count.
    measured: bool,
}

struct Connection {
    stream: TcpStream,
    /// The connection's index over all threads, which staggers open-loop arrivals.
    global_index: usize,
    output: Vec<u8>,
    output_sent: usize,
    input: Vec<u8>,
    input_start: usize,
    input_end: usize,
    outstanding: VecDeque<Request>,
    watching_writes: bool,
    /// Open loop: when this connection's next request is due.
    next_due: Option<Instant>,
}

impl Connection {
    fn open(address: SocketAddr, global_index: usize) -> Result<Self, String> {
        let stream = TcpStream::connect_timeout(&address, CONNECT_TIMEOUT)
            .map_err(|error| format!("cannot connect to {address}: {error}"))?;
        stream
            .set_nodelay(true)
            .and_then(|()| stream.set_nonblocking(true))
            .map_err(|error| format!("cannot set up the connection to {address}: {error}"))?;
        Ok(Connection {
            stream,
            global_index,
            output: Vec::with_capacity(INPUT_BUFFER_INITIAL),
            output_sent: 0,
            input: vec![0; INPUT_BUFFER_INITIAL],
            input_start: 0,
            input_end: 0,
            outstanding: VecDeque::new(),
            watching_writes: false,
            next_due: None,
        })
    }

    fn idle(&self) -> bool {
        self.outstanding.is_empty() && self.output_sent == self.output.len()
    }
}

/// Histograms and counts of one thread.
struct Recorder {
    get_latency_ns: Histogram<u64>,
    set_latency_ns: Histogram<u64>,
    counts: Counts,
    first_problem: Option<String>,
}

impl Recorder {
    fn new() -> Self {
        Recorder {
            get_latency_ns: new_histogram(),
            set_latency_ns: new_histogram(),
            counts: Counts::default(),
            first_problem: None,
        }
    }

    fn problem(&mut self, describe: impl FnOnce() -> String) {
        if self.first_problem.is_none() {
            self.first_problem = Some(describe());
        }
    }
}

struct Worker<'a> {
    config: &'a LoadConfig,
    chooser: KeyChooser,
    rng: SmallRng,
    connections: Vec<Connection>,
    poller: Poller,
    recorder: Recorder,
    /// Measured requests this thread may still send (request-count runs only).
    requests_left: Option<u64>,
    scratch: Vec<u8>,
    /// Connections whose output buffer went from empty to not empty since the last flush.
    unsent: Vec<usize>,
}

impl Worker<'_> {
    fn run(&mut self, completed: &AtomicU64) -> Result<Outcome, String> {
        let start = Instant::now();
        let measure_start = start + self.config.warmup;
        let deadline = match self.config.stop {
            Stop::Duration(duration) => Some(measure_start + duration),
            Stop::Requests(_) => None,
        };
        if let Mode::Open { rate_per_s } = self.config.mode {
            let interval = self.open_loop_interval(rate_per_s);
            for connection in &mut self.connections {
                // Stagger the connections across one interval so arrivals are evenly spread.
                let phase = interval
                    .mul_f64(connection.global_index as f64 / self.config.connections as f64);
                connection.next_due = Some(start + phase);
            }
        }
        let mut ready = Vec::new();
        let mut last_reply = measure_start;
        let mut drain_deadline = None;
        loop {
            let now = Instant::now();
            let sending = self.requests_left != Some(0) && self.more_to_send(now, deadline);
            if sending {
                self.issue(now, measure_start, deadline);
            } else {
                if self.connections.iter().all(Connection::idle) {
                    break;
                }
                let drain_by = *drain_deadline.get_or_insert(now + DRAIN_TIMEOUT);
                if now >= drain_by {
                    self.abandon_outstanding();
                    break;
                }
            }
            // Only connections that queued requests this pass have anything to send.
            while let Some(index) = self.unsent.pop() {
                self.flush(index)?;
            }
            if self.config.mode == Mode::Latency {
                // Spin straight on the one socket: no epoll call between the bytes and us,
                // and no writable event either, so a partly sent request is retried here.
                self.flush(0)?;
                let done = self.read_replies(0, completed)?;
                if done > 0 {
                    last_reply = Instant::now();
                }
                continue;
            }
            let timeout_ms = self.wait_timeout_ms(now, sending);
            self.poller
                .wait(&mut ready, timeout_ms)
                .map_err(|error| format!("epoll_wait failed: {error}"))?;
            for &Readiness {
                token,
                readable,
                writable,
            } in &ready
            {
                let index = token as usize;
                if writable {
                    self.flush(index)?;
                }
                if readable && self.read_replies(index, completed)? > 0 {
                    last_reply = Instant::now();
                }
            }
        }
        let recorder = std::mem::replace(&mut self.recorder, Recorder::new());
        Ok(Outcome {
            get_latency_ns: recorder.get_latency_ns,
            set_latency_ns: recorder.set_latency_ns,
            counts: recorder.counts,
            elapsed: last_reply.saturating_duration_since(measure_start),
            first_problem: recorder.first_problem,
        })
    }

    /// Whether the run still sends: closed loop until the deadline; open loop until every
    /// request due before the deadline is sent, however late the client is in sending it
    /// (the schedule, not the client's speed, defines the requests).
    fn more_to_send(&self, now: Instant, deadline: Option<Instant>) -> bool {
        let Some(deadline) = deadline else {
            return true;
        };
        match self.config.mode {
            Mode::Open { .. } => self
                .connections
                .iter()
                .any(|connection| connection.next_due.is_some_and(|due| due < deadline)),
            Mode::Closed | Mode::Latency => now < deadline,
        }
    }

    fn open_loop_interval(&self, rate_per_s: f64) -> Duration {
        // Each connection carries an equal share of the total rate.
        Duration::from_secs_f64(self.config.connections as f64 / rate_per_s)
    }

    fn wait_timeout_ms(&self, now: Instant, sending: bool) -> i32 {
        if self.config.spin {
            return 0;
        }
        // Wake at least this often to notice the deadline in closed loop.
        const IDLE_WAKE_MS: i32 = 10;
        match (self.config.mode, sending) {
            (Mode::Open { .. }, true) => {
                let next_due = self
                    .connections
                    .iter()
                    .filter_map(|connection| connection.next_due)
                    .min();
                match next_due {
                    // epoll counts whole milliseconds: round down, so a request is never late
                    // because of the sleep (below 1 ms this spins).
                    Some(due) => due
                        .saturating_duration_since(now)
                        .as_millis()
                        .min(IDLE_WAKE_MS as u128) as i32,
                    None => IDLE_WAKE_MS,
                }
            }
            _ => IDLE_WAKE_MS,
        }
    }

    /// Queues the requests that are due now on every connection.
    fn issue(&mut self, now: Instant, measure_start: Instant, deadline: Option<Instant>) {
        for index in 0..self.connections.len() {
            match self.config.mode {
                Mode::Closed | Mode::Latency => {
                    if !self.connections[index].idle() {
                        continue;
                    }
                    for _ in 0..self.config.pipeline {
                        if !self.queue_request(index, now, now >= measure_start) {
                            break;
                        }
                    }
                }
                Mode::Open { rate_per_s } => {
                    let interval = self.open_loop_interval(rate_per_s);
                    while let Some(due) = self.connections[index].next_due {
                        let in_window = deadline.is_none_or(|deadline| due < deadline);
                        let room =
                            self.connections[index].outstanding.len() < OPEN_LOOP_OUTSTANDING_MAX;
                        if due > now || !in_window || !room {
                            break;
                        }
                        if !self.queue_request(index, due, due >= measure_start) {
                            break;
                        }
                        self.connections[index].next_due = Some(due + interval);
                    }
                }
            }
        }
    }

    /// Encodes one request on connection `index`; false when the request budget is spent.
    fn queue_request(&mut self, index: usize, start: Instant, measured: bool) -> bool {
        if measured {
            match &mut self.requests_left {
                Some(0) => return false,
                Some(left) => *left -= 1,
                None => {}
            }
        }
        let total_weight = self.config.get_weight + self.config.set_weight;
        let command = if self.rng.gen_range(0..total_weight) < self.config.get_weight {
            Command::Get
        } else {
            Command::Set
        };
        let key = self.chooser.next(&mut self.rng);
        let connection = &mut self.connections[index];
        if connection.output.is_empty() {
            self.unsent.push(index);
        }
        match command {
            Command::Get => workload::encode_get(&mut connection.output, key),
            Command::Set => {
                workload::encode_set(&mut connection.output, key, self.config.value_size)
            }
        }
        connection.outstanding.push_back(Request {
            command,
            key,
            start,
            measured,
        });
        true
    }

    /// Writes what connection `index` has queued, watching for room when the socket is full.
    fn flush(&mut self, index: usize) -> Result<(), String> {
        let connection = &mut self.connections[index];
        while connection.output_sent < connection.output.len() {
            match connection
                .stream
                .write(&connection.output[connection.output_sent..])
            {
                Ok(0) => return Err("the server stopped accepting bytes".to_string()),
                Ok(written) => connection.output_sent += written,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    if !connection.watching_writes {
                        self.poller
                            .modify(
                                connection.stream.as_raw_fd(),
                                index as u64,
                                Interest::ReadWrite,
                            )
                            .map_err(|error| format!("cannot watch a connection: {error}"))?;
                        connection.watching_writes = true;
                    }
                    return Ok(());
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(format!("send failed: {error}")),
            }
        }
        connection.output.clear();
        connection.output_sent = 0;
        if connection.watching_writes {
            self.poller
                .modify(connection.stream.as_raw_fd(), index as u64, Interest::Read)
                .map_err(|error| format!("cannot watch a connection: {error}"))?;
            connection.watching_writes = false;
        }
        Ok(())
    }

    /// Reads what has arrived on connection `index` and settles every complete reply.
    /// Returns how many replies it settled.
    fn read_replies(&mut self, index: usize, completed: &AtomicU64) -> Result<u64, String> {
        let mut settled = 0;
        loop {
            let connection = &mut self.connections[index];
            make_room(connection)?;
            let space = connection.input.len() - connection.input_end;
            let read = match connection
                .stream
                .read(&mut connection.input[connection.input_end..])
            {
                Ok(0) => return Err("the server closed the connection".to_string()),
                Ok(read) => read,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(format!("receive failed: {error}")),
            };
            connection.input_end += read;
            settled += self.settle(index)?;
            if read < space {
                // Level-triggered epoll calls again if more arrives; no EAGAIN round trip.
                break;
            }
        }
        if settled > 0 {
            completed.fetch_add(settled, Ordering::Relaxed);
        }
        Ok(settled)
    }

    fn settle(&mut self, index: usize) -> Result<u64, String> {
        let now = Instant::now();
        let mut settled = 0;
        loop {
            let connection = &mut self.connections[index];
            let parsed = reply::parse(
                &connection.input[..connection.input_end],
                connection.input_start,
            )
            .map_err(|error| format!("the server sent bytes that are not a reply: {error}"))?;
            let Some((parsed_reply, next)) = parsed else {
                break;
            };
            let Some(request) = connection.outstanding.pop_front() else {
                return Err("the server sent a reply to no request".to_string());
            };
            connection.input_start = next;
            let latency_ns = now.saturating_duration_since(request.start).as_nanos() as u64;
            self.check(index, request, parsed_reply, latency_ns);
            settled += u64::from(request.measured);
        }
        let connection = &mut self.connections[index];
        if connection.input_start == connection.input_end {
            connection.input_start = 0;
            connection.input_end = 0;
        }
        Ok(settled)
    }

    fn check(&mut self, index: usize, request: Request, parsed_reply: Reply, latency_ns: u64) {
        let latency_ns = latency_ns.clamp(1, LATENCY_NS_MAX);
        let recorder = &mut self.recorder;
        let input = &self.connections[index].input;
        // Warm-up replies are checked like all others, but only measured ones are timed and
        // counted as operations, hits and misses.
        let measured = u64::from(request.measured);
        match (request.command, request.measured) {
            (Command::Get, true) => {
                recorder.counts.gets += 1;
                recorder.get_latency_ns.saturating_record(latency_ns);
            }
            (Command::Set, true) => {
                recorder.counts.sets += 1;
                recorder.set_latency_ns.saturating_record(latency_ns);
            }
            (_, false) => {}
        }
        match (request.command, parsed_reply) {
            (Command::Get, Reply::Bulk { start, len }) => {
                recorder.counts.hits += measured;
                let value = &input[start..start + len];
                if !workload::value_matches(
                    value,
                    request.key,
                    self.config.value_size,
                    &mut self.scratch,
                ) {
                    recorder.counts.wrong_values += 1;
                    recorder.problem(|| {
                        format!(
                            "GET key {} returned {:?}",
                            request.key,
                            String::from_utf8_lossy(&value[..value.len().min(64)])
                        )
                    });
                }
            }
            (Command::Get, Reply::Null) => {
                recorder.counts.misses += measured;
                if self.config.expect_hits {
                    recorder.problem(|| format!("GET key {} missed", request.key));
                }
            }
            (Command::Set, Reply::Simple { start, len }) if &input[start..start + len] == b"OK" => {
            }
            (_, Reply::Error { start, len }) => {
                recorder.counts.errors += 1;
                recorder.problem(|| {
                    format!(
                        "error reply: {}",
                        String::from_utf8_lossy(&input[start..start + len])
                    )
                });
            }
            (command, other) => {
                recorder.counts.unexpected += 1;
                recorder.problem(|| format!("{command:?} answered by {other:?}"));
            }
        }
    }

    fn abandon_outstanding(&mut self) {
        for connection in &mut self.connections {
            let lost = connection
                .outstanding
                .iter()
                .filter(|request| request.measured)
                .count();
            self.recorder.counts.unanswered += lost as u64;
            connection.outstanding.clear();
        }
        self.recorder.problem(|| {
            format!(
                "replies still missing {} s after the run ended",
                DRAIN_TIMEOUT.as_secs()
            )
        });
    }
}

/// Makes room at the end of a connection's input buffer: moves unread bytes to the front, and
/// grows the buffer when one reply is larger than it.
fn make_room(connection: &mut Connection) -> Result<(), String> {
    if connection.input_end < connection.input.len() {
        return Ok(());
    }
    if connection.input_start > 0 {
        connection
            .input
            .copy_within(connection.input_start..connection.input_end, 0);
        connection.input_end -= connection.input_start;
        connection.input_start = 0;
        return Ok(());
    }
    let grown = connection.input.len() * 2;
    if grown > INPUT_BUFFER_MAX {
        return Err(format!("a reply is larger than {INPUT_BUFFER_MAX} bytes"));
    }
    connection.input.resize(grown, 0);
    Ok(())
}

/// Writes the pattern value of every key `0..key_count`, checking every `+OK`, over one
/// blocking connection.
///
/// # Errors
/// Returns a message when the server cannot be reached or any SET is not answered `+OK`.
pub fn preload(address: SocketAddr, key_count: u64, value_size: usize) -> Result<(), String> {
    if value_size > workload::VALUE_SIZE_MAX {
        return Err(format!(
            "value size must be at most {} bytes",
            workload::VALUE_SIZE_MAX
        ));
    }
    KeyChooser::new(key_count, &KeyDistribution::Uniform)?;
    let mut stream = TcpStream::connect_timeout(&address, CONNECT_TIMEOUT)
        .map_err(|error| format!("cannot connect to {address}: {error}"))?;
    stream
        .set_read_timeout(Some(DRAIN_TIMEOUT))
        .map_err(|error| format!("cannot set a timeout: {error}"))?;
    let mut output = Vec::new();
    let mut input = Vec::new();
    let mut first = 0;
    while first < key_count {
        let end = (first + PRELOAD_BATCH).min(key_count);
        output.clear();
        for key in first..end {
            workload::encode_set(&mut output, key, value_size);
        }
        stream
            .write_all(&output)
            .map_err(|error| format!("preload send failed: {error}"))?;
        expect_replies(&mut stream, &mut input, end - first, b"OK")?;
        first = end;
    }
    Ok(())
}

/// Sends PING and expects PONG: the server is up and speaks RESP.
///
/// # Errors
/// Returns a message when the server cannot be reached or does not answer `+PONG`.
pub fn ping(address: SocketAddr, timeout: Duration) -> Result<(), String> {
    let mut stream = TcpStream::connect_timeout(&address, timeout)
        .map_err(|error| format!("cannot connect to {address}: {error}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|error| format!("cannot set a timeout: {error}"))?;
    stream
        .write_all(b"*1\r\n$4\r\nPING\r\n")
        .map_err(|error| format!("PING send failed: {error}"))?;
    expect_replies(&mut stream, &mut Vec::new(), 1, b"PONG")
}

/// Reads `count` replies from a blocking stream, each of which must be `+<expected>`.
fn expect_replies(
    stream: &mut TcpStream,
    input: &mut Vec<u8>,
    count: u64,
    expected: &[u8],
) -> Result<(), String> {
    input.clear();
    let mut start = 0;
    let mut seen = 0;
    let mut chunk = [0u8; 64 << 10];
    while seen < count {
        match reply::parse(input, start).map_err(|error| format!("bad reply: {error}"))? {
            Some((Reply::Simple { start: text, len }, next))
                if &input[text..text + len] == expected =>
            {
                seen += 1;
                start = next;
            }
            Some((other, _)) => {
                let shown = match other {
                    Reply::Simple { start, len }
                    | Reply::Error { start, len }
                    | Reply::Bulk { start, len } => {
                        String::from_utf8_lossy(&input[start..start + len]).into_owned()
                    }
                    other => format!("{other:?}"),
                };
                return Err(format!(
                    "expected +{} but the server answered: {shown}",
                    String::from_utf8_lossy(expected)
                ));
            }
            None => {
                let read = stream
                    .read(&mut chunk)
                    .map_err(|error| format!("receive failed: {error}"))?;
                if read == 0 {
                    return Err("the server closed the connection".to_string());
                }
                input.extend_from_slice(&chunk[..read]);
            }
        }
    }
    Ok(())
}
