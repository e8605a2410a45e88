//! `ember-bench compare`: Redis and Ember side by side on this machine.
//!
//! Each server runs pinned to one core (`taskset`), the load pinned to another. Each round
//! measures the busy-polling loopback echo (the physical floor for a round trip), then, for
//! each server in turn (the order rotates every round, so that drift in the machine's speed
//! falls on every server alike): starts it, preloads the same keys, runs every workload after
//! a short warm-up, reads the server's CPU seconds from /proc around each measured run, and
//! stops it. Medians over the rounds, ratios Ember/Redis, the issue's goals and SVG plots go
//! into a marked block of bench/RESULTS.md, with the exact command that produced them.

use crate::cli::Flags;
use crate::load::{self, LoadConfig, Mode, Outcome, Stop};
use crate::plot::{self, BarChart};
use crate::procstat;
use crate::report::Percentiles;
use crate::workload::KeyDistribution;
use serde::Serialize;
use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Usage text of `ember-bench compare`.
pub const USAGE: &str = "\
ember-bench compare [flags]: Redis and Ember side by side, medians and ratios into bench/RESULTS.md

  --quick               smoke run: 1 round, short runs, 10000 keys, results not written
                        unless --output is given
  --rounds N            rounds, each running every server once (default 5)
  --duration-s SECONDS  measured time per workload (default 3)
  --warmup-s SECONDS    unmeasured warm-up before each workload (default 0.5)
  --keys N              keys preloaded and used (default 100000)
  --value-size BYTES    value size (default 16)
  --connections N       connections of the throughput and open-loop workloads (default 50)
  --targets LIST        servers, from redis, ember, ember-busy-poll (default all three)
  --ember PATH          Ember binary (default target/release/ember)
  --redis-server PATH   redis-server binary (default redis-server)
  --server-cpu N        core the server is pinned to (default 0)
  --client-cpu N        core the load is pinned to (default 1)
  --output PATH         markdown file whose compare block is replaced (default bench/RESULTS.md)
  --json PATH           every sample, as JSON
  --profile WORKLOAD    after the rounds, run WORKLOAD once more on each server under
                        `perf record` (Debian's linux-perf) and add the hottest symbols to the
                        report; that run is not part of the figures

Workloads: GET and SET at pipeline 1 and 16 (closed loop), GET round trip on one connection
with a spinning client, and GET in open loop at 50% and 80% of Redis's measured maximum
(the best of three closed-loop GET pipeline-1 runs on the first target, before the rounds).";

const VALUED: &[&str] = &[
    "rounds",
    "duration-s",
    "warmup-s",
    "keys",
    "value-size",
    "connections",
    "targets",
    "ember",
    "redis-server",
    "server-cpu",
    "client-cpu",
    "output",
    "json",
    "profile",
];
const SWITCHES: &[&str] = &["quick", "help"];

/// Most rounds: each takes a minute or more with the defaults.
const ROUNDS_MAX: usize = 100;

/// How long a server may take to answer PING after it is started.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// How long a server may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Busy-poll setting of the `ember-busy-poll` target, as the issue asks.
const EMBER_BUSY_POLL_US: u32 = 50;

/// Markers around the block this command owns in RESULTS.md; the rest of the file is kept.
const BLOCK_BEGIN: &str = "<!-- ember-bench compare: begin (generated, do not edit) -->";
const BLOCK_END: &str = "<!-- ember-bench compare: end -->";

/// A server under test.
#[derive(Clone, Debug)]
struct Target {
    name: &'static str,
    program: PathBuf,
    /// Arguments after the port; `{port}` is replaced.
    args: Vec<String>,
}

impl Target {
    fn is_redis(&self) -> bool {
        self.name == "redis"
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Closed {
        pipeline: usize,
    },
    Latency,
    /// Open loop at this fraction of the reference maximum.
    Open {
        fraction: f64,
    },
}

#[derive(Clone, Copy, Debug)]
struct Workload {
    name: &'static str,
    get_weight: u32,
    set_weight: u32,
    kind: Kind,
}

const WORKLOADS: [Workload; 7] = [
    Workload {
        name: "get-p1",
        get_weight: 1,
        set_weight: 0,
        kind: Kind::Closed { pipeline: 1 },
    },
    Workload {
        name: "set-p1",
        get_weight: 0,
        set_weight: 1,
        kind: Kind::Closed { pipeline: 1 },
    },
    Workload {
        name: "get-p16",
        get_weight: 1,
        set_weight: 0,
        kind: Kind::Closed { pipeline: 16 },
    },
    Workload {
        name: "set-p16",
        get_weight: 0,
        set_weight: 1,
        kind: Kind::Closed { pipeline: 16 },
    },
    Workload {
        name: "get-latency",
        get_weight: 1,
        set_weight: 0,
        kind: Kind::Latency,
    },
    Workload {
        name: "get-open-50",
        get_weight: 1,
        set_weight: 0,
        kind: Kind::Open { fraction: 0.5 },
    },
    Workload {
        name: "get-open-80",
        get_weight: 1,
        set_weight: 0,
        kind: Kind::Open { fraction: 0.8 },
    },
];

/// Settings of one compare invocation.
#[derive(Clone, Debug)]
struct Plan {
    rounds: usize,
    duration: Duration,
    warmup: Duration,
    key_count: u64,
    value_size: usize,
    connections: usize,
    targets: Vec<Target>,
    server_cpu: Option<usize>,
    client_cpu: Option<usize>,
    output: Option<PathBuf>,
    json: Option<PathBuf>,
    /// Workload to profile with perf after the rounds.
    profile: Option<Workload>,
}

/// One measured run of one workload against one server in one round.
#[derive(Clone, Debug, Serialize)]
struct Sample {
    round: usize,
    target: &'static str,
    workload: &'static str,
    ops: u64,
    throughput_per_s: f64,
    server_cpu_s: f64,
    cpu_s_per_million_ops: f64,
    latency: Percentiles,
}

/// Everything measured, written as JSON with --json.
#[derive(Debug, Serialize)]
struct Measurements {
    command: String,
    reference_max_per_s: f64,
    echo_floor: Vec<Percentiles>,
    samples: Vec<Sample>,
    profiles: Vec<Profile>,
    /// /proc/loadavg before and after: other work on the machine shows here.
    load_average_before: String,
    load_average_after: String,
}

/// The hottest symbols of one server on one workload, from perf.
#[derive(Debug, Serialize)]
struct Profile {
    target: &'static str,
    workload: &'static str,
    /// `perf report` lines: share of samples, binary, symbol.
    hottest: Vec<String>,
}

/// Entry point of `ember-bench compare`.
///
/// # Errors
/// Returns a message for a bad command line, a server that will not start, or any run whose
/// replies were wrong; nothing is written to RESULTS.md then.
pub fn main(args: &[String]) -> Result<(), String> {
    let flags = Flags::parse(args, VALUED, SWITCHES)?;
    if flags.switch("help") {
        println!("{USAGE}");
        return Ok(());
    }
    let plan = plan_from_flags(&flags)?;
    let command = std::iter::once("ember-bench compare".to_string())
        .chain(args.iter().map(|arg| shell_word(arg)))
        .collect::<Vec<_>>()
        .join(" ");
    let measurements = measure(&plan, command)?;
    if let Some(path) = &plan.json {
        let text = serde_json::to_string_pretty(&measurements).expect("measurements serialise");
        std::fs::write(path, text)
            .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
    }
    let summary = Summary::new(&plan, &measurements);
    let block = summary.markdown(&plan, &measurements);
    println!("{block}");
    if let Some(output) = &plan.output {
        let plots = write_plots(output, &summary)?;
        let block = format!("{block}\n{plots}");
        replace_block(output, &block)?;
        eprintln!("ember-bench compare: wrote {}", output.display());
    }
    Ok(())
}

fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./,=:".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

fn plan_from_flags(flags: &Flags) -> Result<Plan, String> {
    let quick = flags.switch("quick");
    let rounds: usize = flags.get_or("rounds", if quick { 1 } else { 5 })?;
    if rounds == 0 || rounds > ROUNDS_MAX {
        return Err(format!("--rounds must be 1 to {ROUNDS_MAX}"));
    }
    let seconds = |name: &str, default: f64| -> Result<Duration, String> {
        let value: f64 = flags.get_or(name, default)?;
        if !(value.is_finite() && value > 0.0 && value <= 3600.0) {
            return Err(format!("--{name} must be above 0 and at most 3600 seconds"));
        }
        Ok(Duration::from_secs_f64(value))
    };
    let ember: PathBuf = flags.text("ember").unwrap_or("target/release/ember").into();
    let redis: PathBuf = flags.text("redis-server").unwrap_or("redis-server").into();
    let mut targets = Vec::new();
    for name in flags
        .text("targets")
        .unwrap_or("redis,ember,ember-busy-poll")
        .split(',')
    {
        let target = match name.trim() {
            "redis" => Target {
                name: "redis",
                program: redis.clone(),
                // No persistence: both servers are pure caches here.
                args: [
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--daemonize",
                    "no",
                ]
                .map(String::from)
                .to_vec(),
            },
            "ember" => ember_target("ember", &ember, 0),
            "ember-busy-poll" => ember_target("ember-busy-poll", &ember, EMBER_BUSY_POLL_US),
            other => {
                return Err(format!(
                    "--targets: unknown server '{other}' (redis, ember, ember-busy-poll)"
                ))
            }
        };
        if targets.iter().any(|seen: &Target| seen.name == target.name) {
            return Err(format!("--targets: {} given twice", target.name));
        }
        targets.push(target);
    }
    for target in &targets {
        if !program_exists(&target.program) {
            return Err(format!(
                "{} not found for target {}{}",
                target.program.display(),
                target.name,
                if target.is_redis() {
                    ": install Debian's redis-server (make test's setup does)"
                } else {
                    ": build it with `cargo build --release --bin ember`, or pass --targets redis"
                }
            ));
        }
    }
    let cpu_count = std::thread::available_parallelism().map_or(1, |count| count.get());
    let server_cpu: usize = flags.get_or("server-cpu", 0)?;
    let client_cpu: usize = flags.get_or("client-cpu", 1)?;
    let (server_cpu, client_cpu) = if cpu_count < 2 {
        eprintln!("ember-bench compare: only one CPU: server and load are not pinned");
        (None, None)
    } else if server_cpu == client_cpu || server_cpu >= cpu_count || client_cpu >= cpu_count {
        return Err(format!(
            "--server-cpu and --client-cpu must be two different CPUs below {cpu_count}"
        ));
    } else {
        if !program_exists(Path::new("taskset")) {
            return Err("taskset not found: install util-linux".to_string());
        }
        (Some(server_cpu), Some(client_cpu))
    };
    let output = match (flags.text("output"), quick) {
        (Some(path), _) => Some(PathBuf::from(path)),
        (None, true) => None,
        (None, false) => Some(PathBuf::from("bench/RESULTS.md")),
    };
    let profile = match flags.text("profile") {
        None => None,
        Some(name) => {
            let workload = WORKLOADS
                .iter()
                .find(|workload| workload.name == name)
                .ok_or_else(|| {
                    let names: Vec<&str> = WORKLOADS.iter().map(|workload| workload.name).collect();
                    format!(
                        "--profile: unknown workload '{name}' ({})",
                        names.join(", ")
                    )
                })?;
            if !program_exists(Path::new("perf")) {
                return Err("--profile needs perf: install Debian's linux-perf".to_string());
            }
            Some(*workload)
        }
    };
    let connections: usize = flags.get_or("connections", 50)?;
    if connections == 0 || connections > load::CONNECTIONS_MAX {
        return Err(format!(
            "--connections must be 1 to {}",
            load::CONNECTIONS_MAX
        ));
    }
    Ok(Plan {
        rounds,
        duration: seconds("duration-s", if quick { 0.5 } else { 3.0 })?,
        warmup: seconds("warmup-s", if quick { 0.2 } else { 0.5 })?,
        key_count: flags.get_or("keys", if quick { 10_000 } else { 100_000 })?,
        value_size: flags.get_or("value-size", 16)?,
        connections,
        targets,
        server_cpu,
        client_cpu,
        output,
        json: flags.text("json").map(PathBuf::from),
        profile,
    })
}

fn ember_target(name: &'static str, program: &Path, busy_poll_us: u32) -> Target {
    Target {
        name,
        program: program.to_path_buf(),
        args: vec![
            "--bind".to_string(),
            "127.0.0.1".to_string(),
            "--threads".to_string(),
            "1".to_string(),
            "--busy-poll-us".to_string(),
            busy_poll_us.to_string(),
        ],
    }
}

fn program_exists(program: &Path) -> bool {
    if program.components().count() > 1 {
        return program.is_file();
    }
    std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths).any(|directory| directory.join(program).is_file())
        })
        .unwrap_or(false)
}

/// A running server, stopped (SIGTERM, then SIGKILL) when dropped.
struct Server {
    child: Child,
    address: SocketAddr,
    log_path: PathBuf,
}

impl Server {
    fn start(target: &Target, cpu: Option<usize>, log_directory: &Path) -> Result<Self, String> {
        let port = free_port()?;
        let log_path = log_directory.join(format!("{}-{port}.log", target.name));
        let log = std::fs::File::create(&log_path)
            .map_err(|error| format!("cannot create {}: {error}", log_path.display()))?;
        let log_err = log
            .try_clone()
            .map_err(|error| format!("cannot share the log file: {error}"))?;
        let mut command = match cpu {
            // taskset execs the server, so the child's pid is the server's and every thread
            // the server starts inherits the pinning.
            Some(cpu) => {
                let mut command = Command::new("taskset");
                command.arg("-c").arg(cpu.to_string()).arg(&target.program);
                command
            }
            None => Command::new(&target.program),
        };
        // SAFETY: the closure runs in the forked child before exec and only calls prctl, which
        // is async-signal-safe and touches no memory of the parent. The death signal survives
        // taskset's exec, so a server never outlives an interrupted compare.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        command
            .arg("--port")
            .arg(port.to_string())
            .args(&target.args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        let child = command
            .spawn()
            .map_err(|error| format!("cannot start {}: {error}", target.program.display()))?;
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let mut server = Server {
            child,
            address,
            log_path,
        };
        server.wait_ready(target.name)?;
        Ok(server)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_ready(&mut self, name: &str) -> Result<(), String> {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "{name} exited at start-up ({status}): {}",
                    self.log_tail()
                ));
            }
            match load::ping(self.address, Duration::from_millis(500)) {
                Ok(()) => return Ok(()),
                Err(error) if start.elapsed() > START_TIMEOUT => {
                    return Err(format!(
                        "{name} did not answer PING within {} s ({error}): {}",
                        START_TIMEOUT.as_secs(),
                        self.log_tail()
                    ));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(10)..].join("\n");
        format!("log {}:\n{tail}", self.log_path.display())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: kill takes no pointers; pid is our own child, not yet reaped (we reap it
            // below), so the number cannot name another process.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let start = Instant::now();
        while start.elapsed() < STOP_TIMEOUT {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16, String> {
    // The port is free when this returns; a server started right after gets it unless another
    // process takes it in between, which start-up then reports.
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|error| format!("cannot find a free port: {error}"))?;
    listener
        .local_addr()
        .map(|address| address.port())
        .map_err(|error| format!("cannot find a free port: {error}"))
}

fn load_config(
    plan: &Plan,
    address: SocketAddr,
    workload: &Workload,
    reference_max_per_s: f64,
    duration: Duration,
) -> LoadConfig {
    let (mode, connections, pipeline) = match workload.kind {
        Kind::Closed { pipeline } => (Mode::Closed, plan.connections, pipeline),
        Kind::Latency => (Mode::Latency, 1, 1),
        Kind::Open { fraction } => (
            Mode::Open {
                rate_per_s: reference_max_per_s * fraction,
            },
            plan.connections,
            1,
        ),
    };
    LoadConfig {
        address,
        connections,
        threads: 1,
        pipeline,
        key_count: plan.key_count,
        distribution: KeyDistribution::Uniform,
        value_size: plan.value_size,
        get_weight: workload.get_weight,
        set_weight: workload.set_weight,
        stop: Stop::Duration(duration),
        mode,
        warmup: Duration::ZERO,
        // The keys are preloaded: a miss means the server lost or never stored a key.
        expect_hits: true,
        seed: 1,
        cpus: plan.client_cpu.into_iter().collect(),
        spin: true,
        progress: false,
    }
}

/// Runs one load and fails on any wrong reply.
fn checked_run(config: &LoadConfig, what: &str) -> Result<Outcome, String> {
    let outcome = load::run(config).map_err(|error| format!("{what}: {error}"))?;
    let failures = outcome.failures(config.expect_hits);
    if !failures.is_empty() {
        return Err(format!("{what}: {}", failures.join("; ")));
    }
    Ok(outcome)
}

fn measure(plan: &Plan, command: String) -> Result<Measurements, String> {
    let log_directory =
        std::env::temp_dir().join(format!("ember-bench-compare-{}", std::process::id()));
    std::fs::create_dir_all(&log_directory)
        .map_err(|error| format!("cannot create {}: {error}", log_directory.display()))?;
    let reference_max_per_s = calibrate(plan, &log_directory)?;
    eprintln!(
        "ember-bench compare: {} GET pipeline 1 maximum {reference_max_per_s:.0} ops/s; open loop at 50% and 80% of it",
        plan.targets[0].name
    );
    let mut measurements = Measurements {
        command,
        reference_max_per_s,
        echo_floor: Vec::new(),
        samples: Vec::new(),
        profiles: Vec::new(),
        load_average_before: load_average(),
        load_average_after: String::new(),
    };
    for round in 0..plan.rounds {
        let echo = crate::echo::measure(plan.duration, plan.server_cpu, plan.client_cpu)?;
        let floor = Percentiles::of(&echo);
        eprintln!(
            "round {}/{}: echo floor p50 {:.1} us p99 {:.1} us",
            round + 1,
            plan.rounds,
            floor.p50_us,
            floor.p99_us
        );
        measurements.echo_floor.push(floor);
        for offset in 0..plan.targets.len() {
            let target = &plan.targets[(round + offset) % plan.targets.len()];
            let samples = measure_target(plan, target, round, reference_max_per_s, &log_directory)?;
            measurements.samples.extend(samples);
        }
    }
    if let Some(workload) = &plan.profile {
        for target in &plan.targets {
            let profile =
                profile_target(plan, target, workload, reference_max_per_s, &log_directory)?;
            measurements.profiles.push(profile);
        }
    }
    let _ = std::fs::remove_dir_all(&log_directory);
    measurements.load_average_after = load_average();
    Ok(measurements)
}

/// The 1, 5 and 15-minute load averages.
fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Share of samples below which a symbol is left out of a profile.
const PROFILE_PERCENT_MIN: &str = "1";

/// Most profile lines kept per server.
const PROFILE_LINES_MAX: usize = 25;

/// Runs `workload` once on `target` with `perf record` attached to the server.
fn profile_target(
    plan: &Plan,
    target: &Target,
    workload: &Workload,
    reference_max_per_s: f64,
    log_directory: &Path,
) -> Result<Profile, String> {
    let server = Server::start(target, plan.server_cpu, log_directory)?;
    load::preload(server.address, plan.key_count, plan.value_size)
        .map_err(|error| format!("{} preload: {error}", target.name))?;
    let what = format!("profile {} {}", target.name, workload.name);
    checked_run(
        &load_config(
            plan,
            server.address,
            workload,
            reference_max_per_s,
            plan.warmup,
        ),
        &format!("{what} warm-up"),
    )?;
    let data = log_directory.join(format!("perf-{}.data", target.name));
    let mut perf = Command::new("perf")
        .args(["record", "-F", "2999", "-g", "-o"])
        .arg(&data)
        .args(["-p", &server.pid().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|error| format!("cannot start perf: {error}"))?;
    // perf needs a moment to attach before the load starts.
    std::thread::sleep(Duration::from_millis(300));
    let config = load_config(
        plan,
        server.address,
        workload,
        reference_max_per_s,
        plan.duration,
    );
    let outcome = checked_run(&config, &what);
    if let Ok(pid) = i32::try_from(perf.id()) {
        // SAFETY: kill takes no pointers; pid is our unreaped child perf.
        unsafe { libc::kill(pid, libc::SIGINT) };
    }
    let _ = perf.wait();
    outcome?;
    let report = Command::new("perf")
        .args([
            "report",
            "--no-children",
            "-g",
            "none",
            "--stdio",
            "--sort",
            "dso,symbol",
        ])
        .args(["--percent-limit", PROFILE_PERCENT_MIN, "-i"])
        .arg(&data)
        .output()
        .map_err(|error| format!("cannot run perf report: {error}"))?;
    let text = String::from_utf8_lossy(&report.stdout);
    let hottest: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|line| {
            line.split_whitespace()
                .next()
                .is_some_and(|first| first.ends_with('%'))
        })
        .take(PROFILE_LINES_MAX)
        // perf pads with empty "-" columns for the call-graph fields that -g none leaves out.
        .map(|line| line.trim_end_matches([' ', '-']).to_string())
        .collect();
    if hottest.is_empty() {
        return Err(format!(
            "{what}: perf recorded nothing: {}",
            String::from_utf8_lossy(&report.stderr).trim()
        ));
    }
    let _ = std::fs::remove_file(&data);
    Ok(Profile {
        target: target.name,
        workload: workload.name,
        hottest,
    })
}

/// Runs of the calibration workload; the best one sets the open-loop reference.
const CALIBRATION_RUNS: usize = 3;

/// The first target's closed-loop GET pipeline-1 throughput: the open-loop reference.
fn calibrate(plan: &Plan, log_directory: &Path) -> Result<f64, String> {
    let target = &plan.targets[0];
    let server = Server::start(target, plan.server_cpu, log_directory)?;
    load::preload(server.address, plan.key_count, plan.value_size)
        .map_err(|error| format!("{} preload: {error}", target.name))?;
    let workload = &WORKLOADS[0];
    checked_run(
        &load_config(plan, server.address, workload, 0.0, plan.warmup),
        "calibration warm-up",
    )?;
    // The best of a few runs: a maximum is what the server can do, and on a shared machine a
    // single run may catch a stall that belongs to someone else's work.
    let mut best_per_s = 0.0f64;
    for attempt in 0..CALIBRATION_RUNS {
        let outcome = checked_run(
            &load_config(plan, server.address, workload, 0.0, plan.duration),
            &format!("calibration {} on {}", attempt + 1, target.name),
        )?;
        best_per_s = best_per_s.max(outcome.throughput_per_s());
    }
    Ok(best_per_s)
}

fn measure_target(
    plan: &Plan,
    target: &Target,
    round: usize,
    reference_max_per_s: f64,
    log_directory: &Path,
) -> Result<Vec<Sample>, String> {
    let server = Server::start(target, plan.server_cpu, log_directory)?;
    load::preload(server.address, plan.key_count, plan.value_size)
        .map_err(|error| format!("{} preload: {error}", target.name))?;
    let mut samples = Vec::new();
    for workload in &WORKLOADS {
        let what = format!("round {} {} {}", round + 1, target.name, workload.name);
        checked_run(
            &load_config(
                plan,
                server.address,
                workload,
                reference_max_per_s,
                plan.warmup,
            ),
            &format!("{what} warm-up"),
        )?;
        let config = load_config(
            plan,
            server.address,
            workload,
            reference_max_per_s,
            plan.duration,
        );
        let cpu_before = procstat::cpu_seconds(server.pid())?;
        let outcome = checked_run(&config, &what)?;
        let cpu_after = procstat::cpu_seconds(server.pid())?;
        let server_cpu_s = cpu_after - cpu_before;
        let ops = outcome.counts.operations();
        let sample = Sample {
            round: round + 1,
            target: target.name,
            workload: workload.name,
            ops,
            throughput_per_s: outcome.throughput_per_s(),
            server_cpu_s,
            cpu_s_per_million_ops: server_cpu_s / ops as f64 * 1e6,
            latency: Percentiles::of(&outcome.all_latency_ns()),
        };
        eprintln!(
            "{what}: {:.0} ops/s, server {:.2} CPU s per M ops, p50 {:.1} us p99 {:.1} us p99.9 {:.1} us",
            sample.throughput_per_s,
            sample.cpu_s_per_million_ops,
            sample.latency.p50_us,
            sample.latency.p99_us,
            sample.latency.p99_9_us
        );
        samples.push(sample);
    }
    Ok(samples)
}

/// Median of a non-empty list (mean of the middle two for an even count).
pub(crate) fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

/// Medians of one server on one workload.
#[derive(Clone, Copy, Debug, Default)]
struct Medians {
    throughput_per_s: f64,
    cpu_s_per_million_ops: f64,
    p50_us: f64,
    p99_us: f64,
    p99_9_us: f64,
}

impl Medians {
    fn ops_per_cpu_s(&self) -> f64 {
        1e6 / self.cpu_s_per_million_ops
    }
}

struct Summary {
    targets: Vec<&'static str>,
    /// medians[target][workload]
    medians: Vec<Vec<Medians>>,
    echo_p50_us: f64,
    echo_p99_us: f64,
}

impl Summary {
    fn new(plan: &Plan, measurements: &Measurements) -> Self {
        let targets: Vec<&'static str> = plan.targets.iter().map(|target| target.name).collect();
        let medians = targets
            .iter()
            .map(|target| {
                WORKLOADS
                    .iter()
                    .map(|workload| {
                        let samples: Vec<&Sample> = measurements
                            .samples
                            .iter()
                            .filter(|sample| {
                                sample.target == *target && sample.workload == workload.name
                            })
                            .collect();
                        let of = |field: fn(&Sample) -> f64| {
                            median(samples.iter().map(|sample| field(sample)).collect())
                        };
                        Medians {
                            throughput_per_s: of(|sample| sample.throughput_per_s),
                            cpu_s_per_million_ops: of(|sample| sample.cpu_s_per_million_ops),
                            p50_us: of(|sample| sample.latency.p50_us),
                            p99_us: of(|sample| sample.latency.p99_us),
                            p99_9_us: of(|sample| sample.latency.p99_9_us),
                        }
                    })
                    .collect()
            })
            .collect();
        Summary {
            targets,
            medians,
            echo_p50_us: median(
                measurements
                    .echo_floor
                    .iter()
                    .map(|floor| floor.p50_us)
                    .collect(),
            ),
            echo_p99_us: median(
                measurements
                    .echo_floor
                    .iter()
                    .map(|floor| floor.p99_us)
                    .collect(),
            ),
        }
    }

    fn get(&self, target: &str, workload: &str) -> Option<Medians> {
        let target_index = self.targets.iter().position(|name| *name == target)?;
        let workload_index = WORKLOADS
            .iter()
            .position(|candidate| candidate.name == workload)?;
        Some(self.medians[target_index][workload_index])
    }

    fn markdown(&self, plan: &Plan, measurements: &Measurements) -> String {
        let mut text = String::new();
        let _ = writeln!(text, "## Ember against Redis (`ember-bench compare`)\n");
        let _ = writeln!(text, "Produced by:\n\n```\n{}\n```\n", measurements.command);
        let _ = writeln!(
            text,
            "{} Load average (1, 5, 15 min) before: {}; after: {} (other work on the machine shows here).\n",
            machine_description(plan),
            measurements.load_average_before,
            measurements.load_average_after
        );
        let _ = writeln!(
            text,
            "Settings: {} rounds (server order rotated each round), {} s measured per workload after a {} s warm-up, \
             {} keys preloaded, {}-byte values, uniform keys, {} connections on one load thread \
             (pipeline 1 and 16, closed loop, redis-benchmark's -P semantics). Every reply checked \
             (values match their key, no misses, no errors). Figures are medians over the rounds. \
             Server CPU is utime+stime from /proc/PID/stat (10 ms ticks) across each measured run.\n",
            plan.rounds,
            plan.duration.as_secs_f64(),
            plan.warmup.as_secs_f64(),
            plan.key_count,
            plan.value_size,
            plan.connections
        );
        self.throughput_table(&mut text);
        self.ratio_table(&mut text);
        self.latency_section(&mut text, measurements);
        self.goals_table(&mut text);
        profiles_section(&mut text, measurements);
        rounds_table(&mut text, measurements);
        text
    }

    fn throughput_table(&self, text: &mut String) {
        let _ = writeln!(text, "### Throughput, server CPU and latency (medians)\n");
        let _ = writeln!(
            text,
            "| workload | server | ops/s | server CPU s / M ops | ops per server CPU-s | p50 us | p99 us | p99.9 us |"
        );
        let _ = writeln!(text, "|---|---|---:|---:|---:|---:|---:|---:|");
        for workload in &WORKLOADS {
            for target in &self.targets {
                let Some(medians) = self.get(target, workload.name) else {
                    continue;
                };
                let _ = writeln!(
                    text,
                    "| {} | {} | {:.0} | {:.3} | {:.0} | {:.1} | {:.1} | {:.1} |",
                    workload.name,
                    target,
                    medians.throughput_per_s,
                    medians.cpu_s_per_million_ops,
                    medians.ops_per_cpu_s(),
                    medians.p50_us,
                    medians.p99_us,
                    medians.p99_9_us
                );
            }
        }
        let _ = writeln!(text);
    }

    fn ratio_table(&self, text: &mut String) {
        if !self.targets.contains(&"redis") || self.targets.len() < 2 {
            let _ = writeln!(
                text,
                "(No ratios: Redis and an Ember target are both needed.)\n"
            );
            return;
        }
        let _ = writeln!(text, "### Ratios Ember / Redis (medians)\n");
        let _ = writeln!(
            text,
            "Throughput and ops per CPU-second: above 1 is better for Ember. Latency: below 1 is better for Ember.\n"
        );
        let _ = writeln!(
            text,
            "| workload | server | throughput | ops per CPU-s | p50 | p99 | p99.9 |"
        );
        let _ = writeln!(text, "|---|---|---:|---:|---:|---:|---:|");
        for workload in &WORKLOADS {
            let Some(redis) = self.get("redis", workload.name) else {
                continue;
            };
            for target in self.targets.iter().filter(|name| **name != "redis") {
                let Some(ember) = self.get(target, workload.name) else {
                    continue;
                };
                let _ = writeln!(
                    text,
                    "| {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
                    workload.name,
                    target,
                    ember.throughput_per_s / redis.throughput_per_s,
                    ember.ops_per_cpu_s() / redis.ops_per_cpu_s(),
                    ember.p50_us / redis.p50_us,
                    ember.p99_us / redis.p99_us,
                    ember.p99_9_us / redis.p99_9_us
                );
            }
        }
        let _ = writeln!(text);
    }

    fn latency_section(&self, text: &mut String, measurements: &Measurements) {
        let _ = writeln!(text, "### Round trip, one connection, spinning client\n");
        let _ = writeln!(
            text,
            "Echo floor (two threads busy-polling a loopback TCP socket, pinned like the servers and the load, \
             {}-byte message): p50 {:.1} us, p99 {:.1} us (median over the rounds).\n",
            crate::echo::MESSAGE_LEN,
            self.echo_p50_us,
            self.echo_p99_us
        );
        let _ = writeln!(
            text,
            "| server | GET p50 us | p99 us | p99.9 us | p50 / echo floor p50 |"
        );
        let _ = writeln!(text, "|---|---:|---:|---:|---:|");
        for target in &self.targets {
            let Some(medians) = self.get(target, "get-latency") else {
                continue;
            };
            let _ = writeln!(
                text,
                "| {} | {:.1} | {:.1} | {:.1} | {:.2} |",
                target,
                medians.p50_us,
                medians.p99_us,
                medians.p99_9_us,
                medians.p50_us / self.echo_p50_us
            );
        }
        let _ = writeln!(
            text,
            "\nOpen loop: GET at {:.0} ops/s (50%) and {:.0} ops/s (80%) of {:.0} ops/s, the best of three \
             closed-loop GET pipeline-1 runs on {} before the rounds; latency from each request's due time \
             (coordinated omission corrected); see the get-open rows above.\n",
            measurements.reference_max_per_s * 0.5,
            measurements.reference_max_per_s * 0.8,
            measurements.reference_max_per_s,
            self.targets[0]
        );
    }

    fn goals_table(&self, text: &mut String) {
        if !self.targets.contains(&"redis") || self.targets.len() < 2 {
            return;
        }
        let _ = writeln!(text, "### Issue 3 goals, from this run\n");
        let _ = writeln!(text, "| goal | server | figure | met |");
        let _ = writeln!(text, "|---|---|---|---|");
        let mark = |met: bool| if met { "yes" } else { "**no**" };
        for target in self.targets.iter().filter(|name| **name != "redis") {
            for workload in ["get-p1", "set-p1", "get-p16", "set-p16"] {
                let (Some(redis), Some(ember)) =
                    (self.get("redis", workload), self.get(target, workload))
                else {
                    continue;
                };
                let ratio = ember.ops_per_cpu_s() / redis.ops_per_cpu_s();
                let _ = writeln!(
                    text,
                    "| ops per server CPU-s >= 2x Redis, {workload} | {target} | {ratio:.2}x ({:.0} vs {:.0}) | {} |",
                    ember.ops_per_cpu_s(),
                    redis.ops_per_cpu_s(),
                    mark(ratio >= 2.0)
                );
            }
            for workload in ["get-p16", "set-p16"] {
                let (Some(redis), Some(ember)) =
                    (self.get("redis", workload), self.get(target, workload))
                else {
                    continue;
                };
                let ratio = ember.throughput_per_s / redis.throughput_per_s;
                let _ = writeln!(
                    text,
                    "| throughput >= 2x Redis, {workload} | {target} | {ratio:.2}x ({:.0} vs {:.0} ops/s) | {} |",
                    ember.throughput_per_s,
                    redis.throughput_per_s,
                    mark(ratio >= 2.0)
                );
            }
            if let Some(ember) = self.get(target, "get-latency") {
                let ratio = ember.p50_us / self.echo_p50_us;
                let _ = writeln!(
                    text,
                    "| GET p50 <= 1.3x echo floor | {target} | {ratio:.2}x ({:.1} vs {:.1} us) | {} |",
                    ember.p50_us,
                    self.echo_p50_us,
                    mark(ratio <= 1.3)
                );
                let _ = writeln!(
                    text,
                    "| GET p99 < 10 us | {target} | {:.1} us | {} |",
                    ember.p99_us,
                    mark(ember.p99_us < 10.0)
                );
            }
            for workload in ["get-open-50", "get-open-80"] {
                let (Some(redis), Some(ember)) =
                    (self.get("redis", workload), self.get(target, workload))
                else {
                    continue;
                };
                let _ = writeln!(
                    text,
                    "| open-loop p99 below Redis's, {workload} | {target} | {:.1} vs {:.1} us | {} |",
                    ember.p99_us,
                    redis.p99_us,
                    mark(ember.p99_us < redis.p99_us)
                );
            }
        }
        let _ = writeln!(text);
    }
}

fn profiles_section(text: &mut String, measurements: &Measurements) {
    if measurements.profiles.is_empty() {
        return;
    }
    let _ = writeln!(
        text,
        "### Profiles (perf record -g on the server, a separate run after the rounds, not in the figures)\n"
    );
    for profile in &measurements.profiles {
        let _ = writeln!(text, "{} on {}:\n\n```", profile.target, profile.workload);
        for line in &profile.hottest {
            let _ = writeln!(text, "{line}");
        }
        let _ = writeln!(text, "```\n");
    }
}

fn rounds_table(text: &mut String, measurements: &Measurements) {
    let _ = writeln!(text, "<details><summary>Every round</summary>\n");
    let _ = writeln!(text, "| round | server | workload | ops | ops/s | server CPU s | CPU s / M ops | p50 us | p99 us | p99.9 us |");
    let _ = writeln!(text, "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for sample in &measurements.samples {
        let _ = writeln!(
            text,
            "| {} | {} | {} | {} | {:.0} | {:.2} | {:.3} | {:.1} | {:.1} | {:.1} |",
            sample.round,
            sample.target,
            sample.workload,
            sample.ops,
            sample.throughput_per_s,
            sample.server_cpu_s,
            sample.cpu_s_per_million_ops,
            sample.latency.p50_us,
            sample.latency.p99_us,
            sample.latency.p99_9_us
        );
    }
    for (round, floor) in measurements.echo_floor.iter().enumerate() {
        let _ = writeln!(
            text,
            "| {} | echo | busy-poll echo | {} | | | | {:.1} | {:.1} | {:.1} |",
            round + 1,
            floor.count,
            floor.p50_us,
            floor.p99_us,
            floor.p99_9_us
        );
    }
    let _ = writeln!(text, "\n</details>\n");
}

fn machine_description(plan: &Plan) -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".to_string());
    let cpu_count = std::thread::available_parallelism().map_or(1, |count| count.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let redis_program = plan
        .targets
        .iter()
        .find(|target| target.is_redis())
        .map_or_else(
            || PathBuf::from("redis-server"),
            |target| target.program.clone(),
        );
    let redis_version = Command::new(redis_program)
        .arg("--version")
        .output()
        .ok()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string())
        .unwrap_or_default();
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".to_string());
    let pinning = match (plan.server_cpu, plan.client_cpu) {
        (Some(server), Some(client)) => {
            format!("server pinned to CPU {server}, load to CPU {client}")
        }
        _ => "no pinning (one CPU)".to_string(),
    };
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string())
        .unwrap_or_default();
    format!(
        "Run {date} on {model}, {cpu_count} CPUs, Linux {}; {pinning}. Redis: {redis_version}. Ember: commit {commit}.",
        kernel.trim()
    )
}

/// Writes the SVG plots next to `output` (in `results/`) and returns the markdown that shows them.
fn write_plots(output: &Path, summary: &Summary) -> Result<String, String> {
    let directory = output.parent().unwrap_or(Path::new(".")).join("results");
    std::fs::create_dir_all(&directory)
        .map_err(|error| format!("cannot create {}: {error}", directory.display()))?;
    let series: Vec<String> = summary
        .targets
        .iter()
        .map(|name| name.to_string())
        .collect();
    let closed: Vec<&str> = ["get-p1", "set-p1", "get-p16", "set-p16"].to_vec();
    let categories: Vec<String> = closed.iter().map(|name| name.to_string()).collect();
    let values_of = |field: fn(&Medians) -> f64, workloads: &[&str]| -> Vec<Vec<Option<f64>>> {
        summary
            .targets
            .iter()
            .map(|target| {
                workloads
                    .iter()
                    .map(|workload| summary.get(target, workload).map(|medians| field(&medians)))
                    .collect()
            })
            .collect()
    };
    let mut markdown = String::from("### Plots\n\n");
    let throughput = values_of(|medians| medians.throughput_per_s, &closed);
    let file = "compare-throughput.svg";
    plot::write_bar_chart(
        &directory.join(file),
        &BarChart {
            title: "Throughput, 50 connections (median)",
            y_label: "operations per second",
            categories: &categories,
            series: &series,
            values: &throughput,
        },
    )?;
    let _ = writeln!(markdown, "![throughput](results/{file})\n");
    let efficiency = values_of(|medians| medians.ops_per_cpu_s(), &closed);
    let file = "compare-cpu.svg";
    plot::write_bar_chart(
        &directory.join(file),
        &BarChart {
            title: "Operations per server CPU-second (median)",
            y_label: "operations per CPU-second",
            categories: &categories,
            series: &series,
            values: &efficiency,
        },
    )?;
    let _ = writeln!(markdown, "![ops per CPU-second](results/{file})\n");
    let latency_categories: Vec<String> = [
        "round trip p50",
        "round trip p99",
        "open 50% p99",
        "open 80% p99",
    ]
    .map(String::from)
    .to_vec();
    let mut latency: Vec<Vec<Option<f64>>> = summary
        .targets
        .iter()
        .map(|target| {
            let round_trip = summary.get(target, "get-latency");
            vec![
                round_trip.map(|medians| medians.p50_us),
                round_trip.map(|medians| medians.p99_us),
                summary
                    .get(target, "get-open-50")
                    .map(|medians| medians.p99_us),
                summary
                    .get(target, "get-open-80")
                    .map(|medians| medians.p99_us),
            ]
        })
        .collect();
    latency.push(vec![
        Some(summary.echo_p50_us),
        Some(summary.echo_p99_us),
        None,
        None,
    ]);
    let mut latency_series = series.clone();
    latency_series.push("echo floor".to_string());
    let file = "compare-latency.svg";
    plot::write_bar_chart(
        &directory.join(file),
        &BarChart {
            title: "GET latency (median of rounds)",
            y_label: "microseconds",
            categories: &latency_categories,
            series: &latency_series,
            values: &latency,
        },
    )?;
    let _ = writeln!(markdown, "![latency](results/{file})\n");
    Ok(markdown)
}

/// Replaces the compare block of `path` (or appends one, creating the file if needed).
fn replace_block(path: &Path, block: &str) -> Result<(), String> {
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            "# Ember benchmark results\n\n".to_string()
        }
        Err(error) => return Err(format!("cannot read {}: {error}", path.display())),
    };
    let updated = splice_block(&existing, block);
    std::fs::write(path, updated)
        .map_err(|error| format!("cannot write {}: {error}", path.display()))
}

fn splice_block(existing: &str, block: &str) -> String {
    let wrapped = format!("{BLOCK_BEGIN}\n{block}\n{BLOCK_END}");
    match (existing.find(BLOCK_BEGIN), existing.find(BLOCK_END)) {
        (Some(begin), Some(end)) if end > begin => {
            format!(
                "{}{wrapped}{}",
                &existing[..begin],
                &existing[end + BLOCK_END.len()..]
            )
        }
        _ => {
            let separator = if existing.ends_with("\n\n") || existing.is_empty() {
                ""
            } else if existing.ends_with('\n') {
                "\n"
            } else {
                "\n\n"
            };
            format!("{existing}{separator}{wrapped}\n")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(Vec::new()).is_nan());
    }

    #[test]
    fn splices_only_its_own_block() {
        let fresh = splice_block("# Results\n\nrdma figures\n", "new");
        assert_eq!(
            fresh,
            format!("# Results\n\nrdma figures\n\n{BLOCK_BEGIN}\nnew\n{BLOCK_END}\n")
        );
        let replaced = splice_block(&format!("{fresh}infer figures\n"), "newer");
        assert_eq!(
            replaced,
            format!(
                "# Results\n\nrdma figures\n\n{BLOCK_BEGIN}\nnewer\n{BLOCK_END}\ninfer figures\n"
            )
        );
    }

    #[test]
    fn quotes_shell_words_only_when_needed() {
        assert_eq!(shell_word("--rounds"), "--rounds");
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word(""), "''");
    }
}
