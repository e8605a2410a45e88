//! `ember-bench rdma`: one-sided GET latency and throughput through the shm provider, against TCP
//! GET of the same server in the same run, with the server's CPU time measured over each phase.
//!
//! Two modes:
//! - `--ember PATH` (default: the `ember` binary next to this one): starts `ember --threads 1
//!   --port P --shm SOCKET`, loads the keys over TCP, then measures TCP GET (RESP, one connection,
//!   closed loop) and one-sided GET (ember-rdma client) on the same keys, and reads the server's
//!   CPU time from /proc before and after each phase and over an idle window of the same length.
//! - `--in-process`: no ember binary; ember-rdma's reference server runs on a thread of this
//!   process, and one-sided GET is compared with a GET by message over the same shm rings (there is
//!   no TCP server then, and the report says so).
//!
//! Every reply is checked against the value the benchmark wrote (a fast wrong run fails), and the
//! run fails unless every one-sided GET was a verified hit.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ember_rdma::client::{Client, ClientConfig};
use ember_rdma::fabric::Fabric;
use ember_rdma::reader::Lookup;
use ember_rdma::region::RegionConfig;
use ember_rdma::server::{Handler, MemoryStore, MessageServer};
use ember_rdma::shm::ShmFabric;
use hdrhistogram::Histogram;

const USAGE: &str = "usage: ember-bench rdma [--ember PATH | --in-process] [--keys N] \
[--value-len BYTES] [--ops N] [--warmup N] [--core N] [--clients N]";

/// What a run is asked to do.
#[derive(Clone, Debug)]
struct Options {
    ember: Option<String>,
    in_process: bool,
    key_count: usize,
    value_len: usize,
    op_count: usize,
    warmup_count: usize,
    /// Core the measuring client pins itself to (the server gets the other one).
    client_core: Option<usize>,
    /// Client threads of the one-sided throughput phase (0 skips it).
    throughput_clients: usize,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        ember: None,
        in_process: false,
        key_count: 10_000,
        value_len: 64,
        op_count: 200_000,
        warmup_count: 20_000,
        client_core: None,
        throughput_clients: 2,
    };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        let number = |text: &String| {
            text.parse::<usize>()
                .map_err(|_| format!("{flag}: {text:?} is not a count"))
        };
        match flag.as_str() {
            "--ember" => options.ember = Some(value()?.clone()),
            "--in-process" => options.in_process = true,
            "--keys" => options.key_count = number(value()?)?,
            "--value-len" => options.value_len = number(value()?)?,
            "--ops" => options.op_count = number(value()?)?,
            "--warmup" => options.warmup_count = number(value()?)?,
            "--core" => options.client_core = Some(number(value()?)?),
            "--clients" => options.throughput_clients = number(value()?)?,
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown flag {other}\n{USAGE}")),
        }
    }
    if options.key_count == 0 || options.op_count == 0 {
        return Err("--keys and --ops must be at least 1".to_string());
    }
    if !(8..=4096).contains(&options.value_len) {
        return Err("--value-len must be within 8..=4096 (the published value limit)".to_string());
    }
    Ok(options)
}

/// Entry point of `ember-bench rdma`.
///
/// # Errors
/// A message for bad flags, a server that does not start, or a reply that is wrong.
pub fn main(args: &[String]) -> Result<(), String> {
    let options = parse(args)?;
    if options.in_process {
        run_in_process(&options)
    } else {
        run_against_ember(&options)
    }
}

fn key(index: usize) -> String {
    format!("bench:{index:08}")
}

/// The value stored under key `index`: deterministic, so every reply can be checked.
fn value(index: usize, len: usize) -> Vec<u8> {
    let mut x = (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b'a' + (x % 26) as u8
        })
        .collect()
}

/// A sequence of key indexes, the same for every phase (xorshift, fixed seed).
fn key_sequence(options: &Options, count: usize) -> Vec<usize> {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    (0..count)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % options.key_count as u64) as usize
        })
        .collect()
}

struct Phase {
    name: &'static str,
    histogram: Histogram<u64>,
    elapsed: Duration,
    server_cpu_ns: Option<u64>,
}

impl Phase {
    fn row(&self) -> String {
        let h = &self.histogram;
        let ops_per_s = h.len() as f64 / self.elapsed.as_secs_f64();
        let cpu = self
            .server_cpu_ns
            .map(|ns| {
                format!(
                    "{:.1} ms ({:.0} ns/op)",
                    ns as f64 / 1e6,
                    ns as f64 / h.len() as f64
                )
            })
            .unwrap_or_else(|| "-".to_string());
        format!(
            "| {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} | {} |",
            self.name,
            h.len(),
            h.value_at_quantile(0.5) as f64 / 1000.0,
            h.value_at_quantile(0.99) as f64 / 1000.0,
            h.value_at_quantile(0.999) as f64 / 1000.0,
            h.max() as f64 / 1000.0,
            ops_per_s,
            cpu
        )
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("static bounds are valid")
}

fn measure(
    name: &'static str,
    options: &Options,
    sequence: &[usize],
    expected: &[Vec<u8>],
    server_cpu: &dyn Fn() -> Option<u64>,
    mut get: impl FnMut(&[u8], &mut Vec<u8>) -> Result<bool, String>,
) -> Result<Phase, String> {
    let mut buffer = Vec::with_capacity(options.value_len);
    for &index in sequence.iter().take(options.warmup_count) {
        get(key(index).as_bytes(), &mut buffer)?;
    }
    let keys: Vec<String> = sequence.iter().map(|&index| key(index)).collect();
    let mut histogram = histogram();
    let cpu_before = server_cpu();
    let started = Instant::now();
    for (key, &index) in keys.iter().zip(sequence) {
        let op_started = Instant::now();
        let found = get(key.as_bytes(), &mut buffer)?;
        let latency_ns = op_started.elapsed().as_nanos() as u64;
        if !found || buffer != expected[index] {
            return Err(format!("{name}: wrong reply for {key} (found {found})"));
        }
        histogram
            .record(latency_ns.max(1))
            .map_err(|e| e.to_string())?;
    }
    let elapsed = started.elapsed();
    let server_cpu_ns = match (cpu_before, server_cpu()) {
        (Some(before), Some(after)) => Some(after.saturating_sub(before)),
        _ => None,
    };
    Ok(Phase {
        name,
        histogram,
        elapsed,
        server_cpu_ns,
    })
}

/// One-sided GETs from `options.throughput_clients` threads at once, each with its own
/// connection and the whole key sequence; returns (GETs, elapsed). Every value is checked.
/// The one-sided GET phase, then the server's CPU over an idle window as long as that phase:
/// the two together show whether the reads cost the server anything.
fn one_sided_then_idle<C: ember_rdma::fabric::Connection>(
    options: &Options,
    client: &mut Client<C>,
    sequence: &[usize],
    expected: &[Vec<u8>],
    server_cpu: &dyn Fn() -> Option<u64>,
) -> Result<(Phase, Option<u64>), String> {
    let phase = measure(
        "shm one-sided GET",
        options,
        sequence,
        expected,
        server_cpu,
        |key, value| match client
            .get_one_sided(key, value)
            .map_err(|e| e.to_string())?
        {
            Lookup::Hit => Ok(true),
            other => Err(format!(
                "one-sided GET of {} was {other:?}",
                String::from_utf8_lossy(key)
            )),
        },
    )?;
    let idle_before = server_cpu();
    std::thread::sleep(phase.elapsed);
    let idle_cpu = idle_before
        .zip(server_cpu())
        .map(|(a, b)| b.saturating_sub(a));
    Ok((phase, idle_cpu))
}

fn one_sided_throughput(
    options: &Options,
    socket: &str,
    sequence: &[usize],
    expected: &[Vec<u8>],
) -> Result<Option<(u64, Duration)>, String> {
    if options.throughput_clients == 0 {
        return Ok(None);
    }
    let keys: std::sync::Arc<Vec<String>> =
        std::sync::Arc::new(sequence.iter().map(|&i| key(i)).collect());
    let expected: std::sync::Arc<Vec<Vec<u8>>> =
        std::sync::Arc::new(sequence.iter().map(|&i| expected[i].clone()).collect());
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(options.throughput_clients + 1));
    let threads: Vec<_> = (0..options.throughput_clients)
        .map(|_| {
            let (keys, expected, barrier, socket) = (
                keys.clone(),
                expected.clone(),
                barrier.clone(),
                socket.to_string(),
            );
            std::thread::spawn(move || -> Result<u64, String> {
                let connection = ShmFabric::default()
                    .connect(&socket)
                    .map_err(|e| e.to_string());
                let client = connection.and_then(|c| {
                    Client::new(c, ClientConfig::default()).map_err(|e| e.to_string())
                });
                barrier.wait();
                let mut client = client?;
                let mut value = Vec::new();
                for (key, expected) in keys.iter().zip(expected.iter()) {
                    let hit = client
                        .get_one_sided(key.as_bytes(), &mut value)
                        .map_err(|e| e.to_string())?;
                    if hit != Lookup::Hit || &value != expected {
                        return Err(format!("throughput: wrong one-sided reply for {key}"));
                    }
                }
                Ok(keys.len() as u64)
            })
        })
        .collect();
    barrier.wait();
    let started = Instant::now();
    let mut total = 0;
    for thread in threads {
        total += thread
            .join()
            .map_err(|_| "throughput thread panicked".to_string())??;
    }
    Ok(Some((total, started.elapsed())))
}

fn report_throughput(options: &Options, throughput: Option<(u64, Duration)>) {
    if let Some((gets, elapsed)) = throughput {
        println!();
        println!(
            "one-sided throughput: {} client threads, {gets} verified GETs in {:.1} ms = {:.0} GETs/s",
            options.throughput_clients,
            elapsed.as_secs_f64() * 1000.0,
            gets as f64 / elapsed.as_secs_f64()
        );
    }
}

fn report(
    options: &Options,
    mode: &str,
    phases: &[Phase],
    idle_cpu_ns: Option<u64>,
    idle: Duration,
) {
    println!(
        "ember-bench rdma ({mode}): {} keys, {}-byte values, {} measured GETs per phase after {} warm-up",
        options.key_count, options.value_len, options.op_count, options.warmup_count
    );
    println!();
    println!("| path | GETs | p50 us | p99 us | p99.9 us | max us | GETs/s (1 client) | server CPU over the phase |");
    println!("|---|---|---|---|---|---|---|---|");
    for phase in phases {
        println!("{}", phase.row());
    }
    if let Some(idle_ns) = idle_cpu_ns {
        println!(
            "| idle server, {:.0} ms | - | - | - | - | - | - | {:.1} ms |",
            idle.as_secs_f64() * 1000.0,
            idle_ns as f64 / 1e6
        );
    }
}

/// CPU time (user + system, ns) of every thread of process `pid`, from /proc schedstat.
fn process_cpu_ns(pid: u32) -> Option<u64> {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let path = task.ok()?.path().join("schedstat");
        let text = std::fs::read_to_string(path).ok()?;
        total += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

/// CPU time (ns) of one thread of this process.
fn thread_cpu_ns(tid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

fn core_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn pin_to_core(core: usize) -> Result<(), String> {
    // SAFETY: cpu_set_t is plain data; CPU_SET writes within it; sched_setaffinity reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(format!(
                "cannot pin to core {core}: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

fn run_in_process(options: &Options) -> Result<(), String> {
    let path = std::env::temp_dir()
        .join(format!("ember-bench-rdma-{}.sock", std::process::id()))
        .to_string_lossy()
        .into_owned();
    let fabric = ShmFabric::default();
    let expected: Vec<Vec<u8>> = (0..options.key_count)
        .map(|i| value(i, options.value_len))
        .collect();
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // The server thread gets the core next to the client's, as ember's shard would.
    let options_server_core = options.client_core.map(|core| (core + 1) % core_count());
    let server = std::thread::spawn({
        let (path, stop, expected) = (path.clone(), stop.clone(), expected.clone());
        move || -> Result<(), String> {
            if let Some(core) = options_server_core {
                pin_to_core(core)?;
            }
            // SAFETY: gettid has no preconditions.
            let _ = tid_tx.send(unsafe { libc::gettid() });
            let mut store = MemoryStore::new(RegionConfig::default()).map_err(|e| e.to_string())?;
            for (index, value) in expected.iter().enumerate() {
                store.set(key(index).as_bytes(), value)?;
            }
            let mut server =
                MessageServer::listen_shm(fabric, &path, vec![store.region().memory().clone()])
                    .map_err(|e| e.to_string())?;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                server
                    .run_once(
                        &mut store,
                        Duration::from_micros(50),
                        Duration::from_millis(5),
                    )
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        }
    });
    let server_tid = tid_rx
        .recv()
        .map_err(|_| "server thread died".to_string())?;
    if let Some(core) = options.client_core {
        pin_to_core(core)?;
    }
    let server_cpu = move || thread_cpu_ns(server_tid);
    let connection = wait_for(|| fabric.connect(&path).ok())?;
    let mut client = Client::new(connection, ClientConfig::default()).map_err(|e| e.to_string())?;
    let sequence = key_sequence(options, options.op_count);
    let mut phases = Vec::new();
    phases.push(measure(
        "shm GET by message (two-sided)",
        options,
        &sequence,
        &expected,
        &server_cpu,
        |key, value| {
            // A miss first forces the message path for a published key: send the GET directly.
            client.get_by_message(key, value).map_err(|e| e.to_string())
        },
    )?);
    let (one_sided, idle_cpu) =
        one_sided_then_idle(options, &mut client, &sequence, &expected, &server_cpu)?;
    let idle = one_sided.elapsed;
    phases.push(one_sided);
    let throughput = one_sided_throughput(options, &path, &sequence, &expected)?;
    let stats = client.stats();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    drop(client);
    server
        .join()
        .map_err(|_| "server thread panicked".to_string())??;
    report(
        options,
        "in-process reference server; no TCP server in this mode",
        &phases,
        idle_cpu,
        idle,
    );
    report_throughput(options, throughput);
    println!();
    println!("client: {stats:?}");
    Ok(())
}

fn wait_for<T>(mut attempt: impl FnMut() -> Option<T>) -> Result<T, String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(value) = attempt() {
            return Ok(value);
        }
        if Instant::now() > deadline {
            return Err("server did not come up within 20 s".to_string());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct EmberProcess(Child);

impl Drop for EmberProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

/// A RESP connection that sends GET/SET and reads bulk-string or simple replies.
struct Resp {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    line: String,
}

impl Resp {
    fn connect(port: u16) -> Option<Self> {
        let stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
        stream.set_nodelay(true).ok()?;
        Some(Self {
            reader: BufReader::new(stream.try_clone().ok()?),
            writer: stream,
            line: String::new(),
        })
    }

    fn command(out: &mut Vec<u8>, parts: &[&[u8]]) {
        out.extend_from_slice(format!("*{}\r\n", parts.len()).as_bytes());
        for part in parts {
            out.extend_from_slice(format!("${}\r\n", part.len()).as_bytes());
            out.extend_from_slice(part);
            out.extend_from_slice(b"\r\n");
        }
    }

    /// Reads one reply: a bulk string into `value` (true), a nil (false), `+OK` (true).
    fn reply(&mut self, value: &mut Vec<u8>) -> Result<bool, String> {
        self.line.clear();
        self.reader
            .read_line(&mut self.line)
            .map_err(|e| e.to_string())?;
        let line = self.line.trim_end();
        match line.as_bytes().first() {
            Some(b'+') => Ok(true),
            Some(b'$') if line == "$-1" => Ok(false),
            Some(b'$') => {
                let len: usize = line[1..]
                    .parse()
                    .map_err(|_| format!("bad bulk length {line}"))?;
                value.resize(len + 2, 0);
                self.reader.read_exact(value).map_err(|e| e.to_string())?;
                value.truncate(len);
                Ok(true)
            }
            _ => Err(format!("unexpected reply {line:?}")),
        }
    }
}

fn run_against_ember(options: &Options) -> Result<(), String> {
    let ember = match &options.ember {
        Some(path) => path.clone(),
        None => std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("ember")
            .to_string_lossy()
            .into_owned(),
    };
    let port = free_port()?;
    let socket = std::env::temp_dir()
        .join(format!("ember-bench-rdma-{port}.sock"))
        .to_string_lossy()
        .into_owned();
    let mut command = Command::new(&ember);
    command
        .args([
            "--threads",
            "1",
            "--port",
            &port.to_string(),
            "--shm",
            &socket,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some(core) = options.client_core {
        // The server's one shard gets the core next to the client's: ember pins its shards to the
        // cores it is allowed, so restricting the child's affinity before exec places it.
        let server_core = (core + 1) % core_count();
        use std::os::unix::process::CommandExt;
        // SAFETY: the closure runs between fork and exec and only calls sched_setaffinity, a
        // plain system call on a stack value, which is async-signal-safe.
        unsafe {
            command.pre_exec(move || {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(server_core, &mut set);
                if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let child = command
        .spawn()
        .map_err(|e| format!("cannot start {ember}: {e} (build it, or use --in-process)"))?;
    let server = EmberProcess(child);
    if let Some(core) = options.client_core {
        pin_to_core(core)?;
    }
    let pid = server.0.id();
    let server_cpu = move || process_cpu_ns(pid);
    let mut resp = wait_for(|| Resp::connect(port))?;
    let expected: Vec<Vec<u8>> = (0..options.key_count)
        .map(|i| value(i, options.value_len))
        .collect();
    let mut batch = Vec::new();
    let mut scratch = Vec::new();
    for chunk in (0..options.key_count).collect::<Vec<_>>().chunks(256) {
        batch.clear();
        for &index in chunk {
            Resp::command(
                &mut batch,
                &[b"SET", key(index).as_bytes(), &expected[index]],
            );
        }
        resp.writer.write_all(&batch).map_err(|e| e.to_string())?;
        for _ in chunk {
            resp.reply(&mut scratch)?;
        }
    }
    let connection = wait_for(|| ShmFabric::default().connect(&socket).ok())?;
    let mut client = Client::new(connection, ClientConfig::default()).map_err(|e| e.to_string())?;
    let sequence = key_sequence(options, options.op_count);
    let mut request = Vec::new();
    let mut phases = Vec::new();
    phases.push(measure(
        "TCP GET (RESP, 1 connection)",
        options,
        &sequence,
        &expected,
        &server_cpu,
        |key, value| {
            request.clear();
            Resp::command(&mut request, &[b"GET", key]);
            resp.writer.write_all(&request).map_err(|e| e.to_string())?;
            resp.reply(value)
        },
    )?);
    let (one_sided, idle_cpu) =
        one_sided_then_idle(options, &mut client, &sequence, &expected, &server_cpu)?;
    let idle = one_sided.elapsed;
    phases.push(one_sided);
    let throughput = one_sided_throughput(options, &socket, &sequence, &expected)?;
    report(
        options,
        &format!("against {ember} --threads 1"),
        &phases,
        idle_cpu,
        idle,
    );
    report_throughput(options, throughput);
    println!();
    println!("client: {:?}", client.stats());
    Ok(())
}
