//! Shared by the integration tests: start the real `ember` binary (and, as an oracle, a real
//! `redis-server`) on a free loopback port, talk to them with the `redis` crate or raw bytes,
//! and print replies in one canonical form so two servers' answers compare as strings.
//!
//! Every server started here is killed by pid when its handle drops, so a failing test leaves
//! no process behind.

// Each test file compiles this module on its own and uses a different part of it.
#![allow(dead_code)]

pub mod values;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use redis::{RedisResult, Value};

/// The first key `prefix:0`, `prefix:1`... that a server of `shard_count` shards keeps on
/// `shard`.
pub fn key_on_shard(prefix: &str, shard: usize, shard_count: usize) -> String {
    use ember_store::slot::{key_slot, shard_of_slot};
    (0..)
        .map(|i| format!("{prefix}:{i}"))
        .find(|key| shard_of_slot(key_slot(key.as_bytes()), shard_count) == shard)
        .expect("some key lands on every shard")
}

/// How long a server may take to print its ready line (or answer PING) before the test fails.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Read timeout on raw sockets: a reply that takes longer than this is a hang, not a slow test.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Output a child writes, kept so that a failing test can show the server's log.
type Log = Arc<Mutex<String>>;

fn drain_into(mut source: impl Read + Send + 'static, log: Log) {
    thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(read) = source.read(&mut chunk) {
            if read == 0 {
                break;
            }
            log.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&chunk[..read]));
        }
    });
}

/// Reads a starting `ember`'s standard output to its end on a thread of its own (so the server
/// never blocks on a full pipe), handing each line to `on_line`; the receiver gets the port of
/// the ready line (`None` when that line names none).
pub fn watch_ready_line(
    stdout: impl Read + Send + 'static,
    mut on_line: impl FnMut(&str) + Send + 'static,
) -> std::sync::mpsc::Receiver<Option<u16>> {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            on_line(&line);
            if let Some(address) = line.strip_prefix("ember: ready to accept connections on ") {
                let port = address
                    .split_whitespace()
                    .next()
                    .and_then(|a| a.rsplit(':').next())
                    .and_then(|p| p.parse::<u16>().ok());
                let _ = tx.send(port);
            }
        }
    });
    rx
}

/// A running `ember`, killed on drop.
pub struct Ember {
    child: Child,
    /// The port it listens on, 127.0.0.1.
    pub port: u16,
    /// Its `dir` (a fresh directory each, removed on drop), so that a SAVE in one test is never
    /// the file another test's server loads at start.
    pub dir: std::path::PathBuf,
    log: Log,
}

impl Ember {
    /// Starts `ember --port 0 --threads <threads>`.
    pub fn start(threads: usize) -> Self {
        Self::start_with(&["--threads", &threads.to_string()])
    }

    /// Starts `ember --port 0` with extra arguments, and waits for its ready line.
    pub fn start_with(extra_args: &[&str]) -> Self {
        Self::start_from(None, extra_args)
    }

    /// Starts `ember FILE --port 0` with extra arguments: the config file's settings, then the
    /// harness's and the test's.
    pub fn start_with_file(file: &std::path::Path, extra_args: &[&str]) -> Self {
        Self::start_from(Some(file), extra_args)
    }

    fn start_from(file: Option<&std::path::Path>, extra_args: &[&str]) -> Self {
        let dir = scratch_dir("ember-dir");
        let mut child = Command::new(env!("CARGO_BIN_EXE_ember"))
            .args(file)
            .args(["--port", "0", "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&dir)
            // DEBUG SLEEP stalls a shard on purpose in several tests (Redis's own test suite
            // turns DEBUG on for its servers too).
            .args(["--enable-debug-command", "yes"])
            // EMBER_TEST_ARGS (for example `--io-uring no`) runs every test in another
            // configuration; the test's own arguments come after, so they win.
            .args(
                std::env::var("EMBER_TEST_ARGS")
                    .unwrap_or_default()
                    .split_whitespace(),
            )
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn target/release/ember");
        let log: Log = Arc::default();
        drain_into(child.stderr.take().expect("stderr piped"), log.clone());
        let stdout = child.stdout.take().expect("stdout piped");
        let stdout_log = log.clone();
        let rx = watch_ready_line(stdout, move |line| {
            stdout_log.lock().unwrap().push_str(&format!("{line}\n"));
        });
        let port = match rx.recv_timeout(START_TIMEOUT) {
            Ok(Some(port)) => port,
            outcome => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "ember did not print its ready line ({outcome:?}); log:\n{}",
                    log.lock().unwrap()
                );
            }
        };
        Self {
            child,
            port,
            dir,
            log,
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the server wrote on stdout and stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Resident set size, from /proc.
    pub fn rss_bytes(&self) -> u64 {
        rss_bytes(self.pid())
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits up to `timeout` for the process to exit by itself; its exit code, if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status.code().unwrap_or(-1));
            }
            thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// A `redis` crate connection, RESP2 or RESP3 (redis-rs then sends HELLO 3 first).
    pub fn connect(&self, resp3: bool) -> redis::Connection {
        connect(self.port, resp3)
    }

    /// A raw socket to the server.
    pub fn raw(&self) -> Raw {
        Raw::connect(self.port)
    }

    /// Fails the test, with the server's log, unless the server is still up and serving: a
    /// fresh connection gets PONG and reads back `key` as `expected`.
    pub fn assert_serving(&mut self, key: &str, expected: &[u8]) {
        assert!(
            self.is_running(),
            "ember exited; log:\n{}",
            self.log.lock().unwrap()
        );
        let mut con = self.connect(false);
        let pong: String = redis::cmd("PING").query(&mut con).expect("PING");
        assert_eq!(pong, "PONG");
        let value: Vec<u8> = redis::cmd("GET").arg(key).query(&mut con).expect("GET");
        assert_eq!(value, expected, "stored value of {key} changed");
    }
}

/// A new empty directory under the system's temporary directory, named for `prefix`, this
/// process and a counter.
pub fn scratch_dir(prefix: &str) -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("{prefix}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}

/// A [`scratch_dir`] removed when it goes out of scope, passing test or failing.
pub struct ScratchDir(std::path::PathBuf);

impl ScratchDir {
    /// A new empty directory named for `prefix`.
    pub fn new(prefix: &str) -> Self {
        Self(scratch_dir(prefix))
    }

    /// Its path.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A field of INFO persistence (the test fails when there is none).
pub fn persistence_field(con: &mut redis::Connection, name: &str) -> String {
    let info: String = query(con, &["INFO", "persistence"]);
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in INFO persistence:\n{info}"))
        .trim()
        .to_string()
}

/// Polls `done` every 20 ms for up to 10 seconds; fails the test naming `what` after that.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for Ember {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
        if thread::panicking() {
            eprintln!("--- ember log ---\n{}", self.log.lock().unwrap());
        }
    }
}

/// Resident set size of process `pid`, in bytes (0 when /proc cannot be read).
pub fn rss_bytes(pid: u32) -> u64 {
    status_bytes(pid, "VmRSS")
}

/// Peak resident set size of process `pid` since it started or since the last
/// [`reset_peak_rss`], in bytes (VmHWM; 0 when /proc cannot be read). A transient allocation
/// that was freed before the test looks still shows here, where [`rss_bytes`] would miss it.
pub fn peak_rss_bytes(pid: u32) -> u64 {
    status_bytes(pid, "VmHWM")
}

/// A field of /proc/`pid`/status given in kB, in bytes (0 when it cannot be read).
fn status_bytes(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
        })
        .map_or(0, |kb| kb * 1024)
}

/// Resets process `pid`'s peak resident set size to its current one (Linux's `clear_refs`
/// value 5; allowed for a child of the test). False when the kernel refused.
pub fn reset_peak_rss(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// The command `args` (name first) as the `redis` crate sends it.
pub fn command(args: &[&str]) -> redis::Cmd {
    let mut command = redis::cmd(args[0]);
    for arg in &args[1..] {
        command.arg(*arg);
    }
    command
}

/// Sends `args` and converts the reply; a failure names the command.
pub fn query<T: redis::FromRedisValue>(con: &mut redis::Connection, args: &[&str]) -> T {
    command(args)
        .query(con)
        .unwrap_or_else(|error| panic!("{args:?}: {error}"))
}

/// A `redis` crate connection to 127.0.0.1:`port`.
pub fn connect(port: u16, resp3: bool) -> redis::Connection {
    let protocol = if resp3 { "resp3" } else { "resp2" };
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/?protocol={protocol}"))
        .expect("client URL");
    client
        .get_connection_with_timeout(READ_TIMEOUT)
        .unwrap_or_else(|error| panic!("connect to {port} ({protocol}): {error}"))
}

/// A real `redis-server` on a free port: the oracle for Redis's exact replies. Killed on drop.
pub struct RedisOracle {
    child: Child,
    /// Its port, 127.0.0.1.
    pub port: u16,
}

impl RedisOracle {
    /// Starts `redis-server`, or returns None (after saying why) when it is not installed.
    pub fn start() -> Option<Self> {
        Self::start_with(&[])
    }

    /// [`RedisOracle::start`] with extra arguments after the harness's (they win).
    pub fn start_with(extra_args: &[&str]) -> Option<Self> {
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!(
                "skipped: redis-server is not installed (ci/setup-base.sh installs Debian's redis-server)"
            );
            return None;
        }
        // The port is free when chosen; another process may take it before redis-server binds,
        // so a failed start tries another.
        for _ in 0..5 {
            let port = free_port();
            let mut child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .args(["--enable-debug-command", "yes", "--loglevel", "warning"])
                .args(extra_args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn redis-server");
            let deadline = Instant::now() + START_TIMEOUT;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
                    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
                    let mut reply = [0u8; 7];
                    if stream.write_all(b"PING\r\n").is_ok()
                        && stream.read_exact(&mut reply).is_ok()
                        && &reply == b"+PONG\r\n"
                    {
                        return Some(Self { child, port });
                    }
                }
                thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("redis-server did not start");
    }

    /// A `redis` crate connection.
    pub fn connect(&self, resp3: bool) -> redis::Connection {
        connect(self.port, resp3)
    }
}

impl Drop for RedisOracle {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on right now, on 127.0.0.1.
pub fn free_port() -> u16 {
    free_port_on("127.0.0.1")
}

/// A port nobody listens on right now, on `address`: from a socket that is bound (with
/// SO_REUSEADDR, as servers bind) but never listens. A listening probe is inherited by a child
/// another test forks at that moment; until that child's exec closes it, it takes the first
/// connection to the port, then resets it (or keeps a server from binding).
pub fn free_port_on(address: &str) -> u16 {
    use socket2::{Domain, Socket, Type};
    let address = std::net::SocketAddr::new(address.parse().expect("an IP address"), 0);
    let probe = Socket::new(Domain::for_address(address), Type::STREAM, None).expect("a socket");
    probe.set_reuse_address(true).expect("SO_REUSEADDR");
    probe.bind(&address.into()).expect("a free port");
    probe
        .local_addr()
        .ok()
        .and_then(|bound| bound.as_socket())
        .expect("its address")
        .port()
}

/// Runs one command (arguments as bytes) and returns its reply.
pub fn run(con: &mut redis::Connection, args: &[&[u8]]) -> RedisResult<Value> {
    let mut command = redis::cmd(std::str::from_utf8(args[0]).expect("command names are text"));
    for arg in &args[1..] {
        command.arg(*arg);
    }
    command.query(con)
}

/// A reply in one canonical text form, close to what redis-cli prints, so that two servers'
/// replies compare as strings and a mismatch reads well.
pub fn show(reply: &RedisResult<Value>) -> String {
    match reply {
        Ok(value) => show_value(value),
        Err(error) => match (error.code(), error.detail()) {
            (Some(code), Some(detail)) => format!("(error) {code} {detail}"),
            (Some(code), None) => format!("(error) {code}"),
            _ => format!("(client error) {error}"),
        },
    }
}

/// One value in the canonical form of [`show`].
pub fn show_value(value: &Value) -> String {
    let list = |items: &[Value]| items.iter().map(show_value).collect::<Vec<_>>().join(", ");
    match value {
        Value::Nil => "(nil)".into(),
        Value::Int(int) => format!("(integer) {int}"),
        Value::BulkString(bytes) => format!("\"{}\"", bytes.escape_ascii()),
        Value::SimpleString(text) => format!("+{text}"),
        Value::Okay => "+OK".into(),
        Value::Array(items) => format!("[{}]", list(items)),
        Value::Set(items) => format!("~[{}]", list(items)),
        Value::Map(pairs) => format!(
            "{{{}}}",
            pairs
                .iter()
                .map(|(k, v)| format!("{}: {}", show_value(k), show_value(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Double(double) => format!("(double) {double}"),
        Value::Boolean(boolean) => format!("(boolean) {boolean}"),
        Value::VerbatimString { format, text } => format!("(verbatim {format:?}) {text:?}"),
        Value::BigNumber(number) => format!("(big number) {number:?}"),
        Value::Push { kind, data } => format!("(push {kind:?}) [{}]", list(data)),
        Value::Attribute { data, attributes } => {
            format!("(attribute {attributes:?}) {}", show_value(data))
        }
        Value::ServerError(error) => format!(
            "(error) {} {}",
            error.code(),
            error.details().unwrap_or_default()
        ),
    }
}

/// A raw socket, for what no client library sends: malformed frames, split frames, floods.
pub struct Raw {
    /// The socket.
    pub stream: TcpStream,
    pending: Vec<u8>,
}

impl Raw {
    /// Connects to 127.0.0.1:`port`.
    pub fn connect(port: u16) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Self {
            stream,
            pending: Vec::new(),
        }
    }

    /// Sends `bytes` as they are.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Reads one whole reply and returns its raw bytes.
    pub fn reply(&mut self) -> Vec<u8> {
        loop {
            if let Some(length) = reply_len(&self.pending) {
                return self.pending.drain(..length).collect();
            }
            let mut chunk = [0u8; 64 * 1024];
            let read = self.stream.read(&mut chunk).unwrap_or_else(|error| {
                panic!(
                    "reading a reply: {error}; have {:?}",
                    self.pending.escape_ascii().to_string()
                )
            });
            assert!(
                read > 0,
                "connection closed before a whole reply; have {:?}",
                self.pending.escape_ascii().to_string()
            );
            self.pending.extend_from_slice(&chunk[..read]);
        }
    }

    /// Reads one reply as text.
    pub fn reply_text(&mut self) -> String {
        String::from_utf8_lossy(&self.reply()).into_owned()
    }

    /// Sends a command as a multibulk request and returns its raw reply.
    pub fn command(&mut self, args: &[&[u8]]) -> Vec<u8> {
        self.send(&multibulk(args));
        self.reply()
    }

    /// True when the server closes the connection (read returns 0 or a reset) within the read
    /// timeout, after any bytes still pending.
    pub fn closed_by_server(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(error) => {
                    return matches!(
                        error.kind(),
                        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                    )
                }
            }
        }
    }

    /// Closes the write side only.
    pub fn shutdown_write(&self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}

/// A field of INFO's text, as a number.
pub fn info_field(con: &mut redis::Connection, section: &str, name: &str) -> u64 {
    info_text(con, section, name).parse().unwrap()
}

/// A field of INFO's text, as written.
pub fn info_text(con: &mut redis::Connection, section: &str, name: &str) -> String {
    let info: String = redis::cmd("INFO").arg(section).query(con).unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("INFO {section} has {name}: {info}"))
        .trim()
        .to_owned()
}

/// The response (head and body) to an HTTP/1.0 GET of `path` on a loopback port (the metrics
/// endpoint).
pub fn http_get(port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// A command encoded as a RESP multibulk request.
pub fn multibulk(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Length of the first whole RESP2/RESP3 reply in `input`, or None when it is incomplete.
/// Written here, independent of ember-resp, so that the tests check the server's encoder.
pub fn reply_len(input: &[u8]) -> Option<usize> {
    let line_end = input.windows(2).position(|w| w == b"\r\n")?;
    let header = std::str::from_utf8(&input[1..line_end]).ok()?;
    let after_header = line_end + 2;
    match input[0] {
        b'+' | b'-' | b':' | b',' | b'#' | b'(' | b'_' => Some(after_header),
        b'$' | b'=' | b'!' => {
            let length: i64 = header.parse().ok()?;
            if length < 0 {
                return Some(after_header);
            }
            let end = after_header + length as usize + 2;
            (input.len() >= end).then_some(end)
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let count: i64 = header.parse().ok()?;
            let elements = if input[0] == b'%' || input[0] == b'|' {
                count * 2
            } else {
                count
            };
            let mut at = after_header;
            for _ in 0..elements.max(0) {
                at += reply_len(&input[at..])?;
            }
            Some(at)
        }
        other => panic!(
            "not a RESP reply type byte: {:?} in {:?}",
            other as char,
            input.escape_ascii().to_string()
        ),
    }
}

/// Where redis-py is: the project-local install of ci/setup-servertests.sh, or the system's.
pub fn python_with_redis_py() -> Option<(String, String)> {
    let local = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.deps/python-redis");
    for python in ["python3", "/usr/bin/python3"] {
        let works = Command::new(python)
            .args(["-c", "import redis"])
            .env("PYTHONPATH", local)
            .output()
            .is_ok_and(|output| output.status.success());
        if works {
            return Some((python.to_string(), local.to_string()));
        }
    }
    None
}
