//! End to end through the real `ember` binary: `--shm` publishes what RESP clients write, and
//! an ember-rdma client reads it one-sided; deleted, expired, renamed-away and flushed keys are
//! misses. `--rdma` without a device says so and keeps serving TCP.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ember_rdma::client::{Client, ClientConfig};
use ember_rdma::fabric::Fabric;
use ember_rdma::reader::Lookup;
use ember_rdma::shm::ShmFabric;

struct Ember {
    child: Child,
    port: u16,
    stderr: std::sync::mpsc::Receiver<String>,
}

impl Drop for Ember {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(extra: &[&str]) -> Ember {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ember"))
        .args(["--port", "0", "--threads", "2"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ember");
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut port = None;
    for line in stdout.lines().map_while(Result::ok) {
        if let Some(rest) = line.strip_prefix("ember: ready to accept connections on ") {
            let address = rest.split_whitespace().next().unwrap();
            port = Some(address.rsplit(':').next().unwrap().parse().unwrap());
            break;
        }
    }
    Ember {
        child,
        port: port.expect("ember printed its address"),
        stderr: rx,
    }
}

struct Resp {
    stream: BufReader<TcpStream>,
}

impl Resp {
    fn connect(port: u16) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Self {
            stream: BufReader::new(stream),
        }
    }

    /// Sends a command and returns the reply's first line (and a bulk string's body).
    fn call(&mut self, args: &[&[u8]]) -> String {
        let mut request = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            request.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            request.extend_from_slice(arg);
            request.extend_from_slice(b"\r\n");
        }
        self.stream.get_mut().write_all(&request).unwrap();
        let mut line = String::new();
        self.stream.read_line(&mut line).unwrap();
        let line = line.trim_end().to_string();
        if let Some(len) = line.strip_prefix('$').and_then(|n| n.parse::<usize>().ok()) {
            let mut body = vec![0u8; len + 2];
            self.stream.read_exact(&mut body).unwrap();
            return String::from_utf8_lossy(&body[..len]).into_owned();
        }
        line
    }
}

fn socket_path(name: &str) -> String {
    std::env::temp_dir()
        .join(format!("ember-e2e-{name}-{}.sock", std::process::id()))
        .to_string_lossy()
        .into_owned()
}

fn shm_client(path: &str) -> Client<ember_rdma::shm::ShmConnection> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match ShmFabric::default().connect(path) {
            Ok(connection) => return Client::new(connection, ClientConfig::default()).unwrap(),
            Err(error) if Instant::now() > deadline => panic!("shm connect: {error}"),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn one_sided(client: &mut Client<ember_rdma::shm::ShmConnection>, key: &str) -> Option<String> {
    let mut value = Vec::new();
    match client.get_one_sided(key.as_bytes(), &mut value).unwrap() {
        Lookup::Hit => Some(String::from_utf8(value).unwrap()),
        Lookup::Miss => None,
        Lookup::GaveUp => panic!("one-sided GET of {key} gave up"),
    }
}

#[test]
fn resp_writes_are_read_one_sided_and_removals_are_misses() {
    let path = socket_path("basic");
    let ember = start(&["--shm", &path]);
    let mut resp = Resp::connect(ember.port);
    let mut client = shm_client(&path);
    // Keys on both shards.
    for i in 0..50 {
        let key = format!("user:{i}");
        assert_eq!(
            resp.call(&[b"SET", key.as_bytes(), format!("v{i}").as_bytes()]),
            "+OK"
        );
    }
    for i in 0..50 {
        assert_eq!(
            one_sided(&mut client, &format!("user:{i}")),
            Some(format!("v{i}")),
            "user:{i}"
        );
    }
    assert_eq!(client.stats().fallbacks, 0);
    assert_eq!(resp.call(&[b"SET", b"counter", b"41"]), "+OK");
    assert_eq!(resp.call(&[b"INCR", b"counter"]), ":42");
    assert_eq!(one_sided(&mut client, "counter").as_deref(), Some("42"));
    assert_eq!(resp.call(&[b"APPEND", b"user:1", b"!"]), ":3");
    assert_eq!(one_sided(&mut client, "user:1").as_deref(), Some("v1!"));

    assert_eq!(resp.call(&[b"DEL", b"user:1"]), ":1");
    assert_eq!(one_sided(&mut client, "user:1"), None);
    assert_eq!(client.get(b"user:1").unwrap(), None);

    assert_eq!(resp.call(&[b"RENAME", b"user:2", b"renamed"]), "+OK");
    assert_eq!(one_sided(&mut client, "user:2"), None);
    assert_eq!(one_sided(&mut client, "renamed").as_deref(), Some("v2"));

    assert_eq!(
        resp.call(&[b"SET", b"short", b"lived", b"PX", b"150"]),
        "+OK"
    );
    assert_eq!(resp.call(&[b"SET", b"later", b"too"]), "+OK");
    assert_eq!(resp.call(&[b"PEXPIRE", b"later", b"150"]), ":1");
    assert_eq!(one_sided(&mut client, "short").as_deref(), Some("lived"));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        one_sided(&mut client, "short"),
        None,
        "expired key read one-sided"
    );
    assert_eq!(
        one_sided(&mut client, "later"),
        None,
        "expired key read one-sided"
    );
    assert_eq!(client.get(b"short").unwrap(), None);

    assert_eq!(resp.call(&[b"FLUSHALL"]), "+OK");
    assert_eq!(one_sided(&mut client, "user:3"), None);
}

/// Only strings are published: a set or sorted set that replaces a string (RENAME, COPY
/// REPLACE, MOVE into database 0...) takes the string's bytes out of the region, so a one-sided
/// GET misses rather than reading them, and a GET by message gets WRONGTYPE.
#[test]
fn sets_and_sorted_sets_are_never_read_one_sided() {
    let path = socket_path("collections");
    let ember = start(&["--shm", &path]);
    let mut resp = Resp::connect(ember.port);
    let mut client = shm_client(&path);
    for key in ["renamed", "copied", "zset"] {
        assert_eq!(resp.call(&[b"SET", key.as_bytes(), b"old"]), "+OK");
        assert_eq!(one_sided(&mut client, key).as_deref(), Some("old"), "{key}");
    }
    assert_eq!(resp.call(&[b"SADD", b"set:a", b"m"]), ":1");
    assert_eq!(resp.call(&[b"RENAME", b"set:a", b"renamed"]), "+OK");
    assert_eq!(resp.call(&[b"SADD", b"set:b", b"m"]), ":1");
    assert_eq!(resp.call(&[b"COPY", b"set:b", b"copied", b"REPLACE"]), ":1");
    assert_eq!(resp.call(&[b"DEL", b"zset"]), ":1");
    assert_eq!(resp.call(&[b"ZADD", b"zset", b"1", b"m"]), ":1");
    assert_eq!(resp.call(&[b"SADD", b"renamed", b"n"]), ":1");
    for key in ["renamed", "copied", "zset", "set:b"] {
        assert_eq!(one_sided(&mut client, key), None, "{key} read one-sided");
        let by_message = client.get(key.as_bytes());
        assert!(
            format!("{by_message:?}").contains("WRONGTYPE"),
            "{key} by message: {by_message:?}"
        );
    }
    assert_eq!(resp.call(&[b"SET", b"renamed", b"new"]), "+OK");
    assert_eq!(one_sided(&mut client, "renamed").as_deref(), Some("new"));
}

/// Tensors are keys but not strings: one that replaces a string (RENAME, COPY REPLACE) takes the
/// string's bytes out of the region, and one written by AI.TENSORSET is never published.
#[test]
fn tensors_are_never_read_one_sided() {
    let path = socket_path("tensors");
    let ember = start(&["--shm", &path]);
    let mut resp = Resp::connect(ember.port);
    let mut client = shm_client(&path);
    for key in ["renamed", "copied"] {
        assert_eq!(resp.call(&[b"SET", key.as_bytes(), b"old"]), "+OK");
        assert_eq!(one_sided(&mut client, key).as_deref(), Some("old"), "{key}");
    }
    for key in ["t:a", "t:b"] {
        let set: &[&[u8]] = &[
            b"AI.TENSORSET",
            key.as_bytes(),
            b"FLOAT",
            b"1",
            b"VALUES",
            b"1",
        ];
        assert_eq!(resp.call(set), "+OK");
    }
    assert_eq!(resp.call(&[b"RENAME", b"t:a", b"renamed"]), "+OK");
    assert_eq!(resp.call(&[b"COPY", b"t:b", b"copied", b"REPLACE"]), ":1");
    for key in ["renamed", "copied", "t:b"] {
        assert_eq!(one_sided(&mut client, key), None, "{key} read one-sided");
        let by_message = client.get(key.as_bytes());
        assert!(
            format!("{by_message:?}").contains("WRONGTYPE"),
            "{key} by message: {by_message:?}"
        );
    }
}

#[test]
fn writes_by_message_are_seen_by_resp_clients() {
    let path = socket_path("message");
    let ember = start(&["--shm", &path]);
    let mut client = shm_client(&path);
    let mut resp = Resp::connect(ember.port);
    client.set(b"from:shm", b"hello").unwrap();
    assert_eq!(resp.call(&[b"GET", b"from:shm"]), "hello");
    assert_eq!(one_sided(&mut client, "from:shm").as_deref(), Some("hello"));
    let values = client.mget(&[b"from:shm", b"absent"]).unwrap();
    assert_eq!(values, vec![Some(b"hello".to_vec()), None]);
    assert!(client.delete(b"from:shm").unwrap());
    assert_eq!(resp.call(&[b"EXISTS", b"from:shm"]), ":0");
}

#[test]
fn rdma_without_a_device_says_so_and_serves_tcp() {
    let ember = start(&["--rdma", "yes"]);
    let mut resp = Resp::connect(ember.port);
    assert_eq!(resp.call(&[b"PING"]), "+PONG");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut said = false;
    while Instant::now() < deadline && !said {
        if let Ok(line) = ember.stderr.recv_timeout(Duration::from_millis(100)) {
            said |= line.contains("--rdma")
                && (line.contains("no RDMA device") || line.contains("verbs devices"));
        }
    }
    assert!(said, "ember did not say what --rdma found");
}

/// A value that proves itself: key id, sequence number, and a fill derived from both.
fn self_checking_value(key_id: u64, sequence: u64) -> Vec<u8> {
    let mut out = format!("{key_id:08}:{sequence:012}:").into_bytes();
    let mut x = key_id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ sequence;
    while out.len() < 96 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push(b'a' + (x % 26) as u8);
    }
    out
}

fn check_value(key_id: u64, value: &str) -> Result<u64, String> {
    let sequence = value
        .get(9..21)
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| format!("unparseable value {value:?}"))?;
    if self_checking_value(key_id, sequence) != value.as_bytes() {
        return Err(format!("torn value for key {key_id}: {value:?}"));
    }
    Ok(sequence)
}

#[test]
fn concurrent_resp_writer_and_one_sided_reader_never_see_torn_or_stale_values() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    const KEYS: u64 = 32;
    let seconds: f64 = std::env::var("EMBER_RDMA_STRESS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let path = socket_path("stress");
    let ember = start(&["--shm", &path]);
    let acknowledged: Arc<Vec<AtomicU64>> =
        Arc::new((0..KEYS).map(|_| AtomicU64::new(0)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let mut resp = Resp::connect(ember.port);
    for key_id in 0..KEYS {
        let value = self_checking_value(key_id, 1);
        assert_eq!(
            resp.call(&[b"SET", format!("stress:{key_id}").as_bytes(), &value]),
            "+OK"
        );
        acknowledged[key_id as usize].store(1, Ordering::Release);
    }
    let reader = std::thread::spawn({
        let (acknowledged, stop, path) = (acknowledged.clone(), stop.clone(), path.clone());
        move || -> Result<u64, String> {
            let mut client = shm_client(&path);
            let (mut verified, mut fell_back) = (0, 0);
            let mut key_id = 0;
            let mut value = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                key_id = (key_id + 7) % KEYS;
                let floor = acknowledged[key_id as usize].load(Ordering::Acquire);
                let key = format!("stress:{key_id}");
                // A lookup that gives up (the writer was descheduled mid-publish for longer than
                // the reader's attempts last: common on a loaded two-core machine) falls back to a
                // message GET, as `Client::get_into` does; that value is checked all the same.
                let (found, one_sided) =
                    match client.get_one_sided(key.as_bytes(), &mut value).unwrap() {
                        Lookup::Hit => (true, true),
                        Lookup::Miss => (false, true),
                        Lookup::GaveUp => {
                            fell_back += 1;
                            let found = client.get_by_message(key.as_bytes(), &mut value).unwrap();
                            (found, false)
                        }
                    };
                if found {
                    let text = String::from_utf8(value.clone()).map_err(|e| e.to_string())?;
                    let sequence = check_value(key_id, &text)?;
                    if sequence < floor {
                        return Err(format!(
                            "stale: {key} sequence {sequence} < acknowledged {floor}"
                        ));
                    }
                    verified += u64::from(one_sided);
                }
            }
            eprintln!("{fell_back} lookups gave up and were asked by message");
            Ok(verified)
        }
    });
    let started = Instant::now();
    let mut sequence = 1;
    // At least `seconds`, and on a loaded machine on until 1,000 writes have been acknowledged
    // (a minute at most): the floors asserted below are about coverage, not speed.
    let enough = |sequence: u64| {
        let elapsed = started.elapsed().as_secs_f64();
        (elapsed >= seconds && sequence > 1000) || elapsed >= 60.0
    };
    while !enough(sequence) && !reader.is_finished() {
        sequence += 1;
        let key_id = sequence % KEYS;
        let value = self_checking_value(key_id, sequence);
        assert_eq!(
            resp.call(&[b"SET", format!("stress:{key_id}").as_bytes(), &value]),
            "+OK"
        );
        acknowledged[key_id as usize].store(sequence, Ordering::Release);
    }
    stop.store(true, Ordering::Relaxed);
    let verified = reader
        .join()
        .unwrap()
        .unwrap_or_else(|error| panic!("{error}"));
    eprintln!("{sequence} acknowledged writes, {verified} verified one-sided reads");
    assert!(verified > 1000, "only {verified} verified reads");
    assert!(sequence > 1000, "only {sequence} writes");
}

/// ACLs on the message transport: a session runs as the default user until an AUTH message;
/// then its user's rules limit its messages as they limit a RESP connection, and a wrong
/// password is refused.
#[test]
fn sessions_authenticate_by_message_and_their_user_limits_them() {
    let path = socket_path("acl");
    let ember = start(&["--shm", &path]);
    let mut resp = Resp::connect(ember.port);
    let created = resp.call(&[b"ACL", b"SETUSER", b"reader", b"on", b">pw", b"~*", b"+get"]);
    assert_eq!(created, "+OK");
    let mut client = shm_client(&path);
    client.set(b"acl:k", b"v").unwrap();
    let wrong = client.auth(b"reader", b"nope").unwrap_err();
    assert!(format!("{wrong:?}").contains("WRONGPASS"), "{wrong:?}");
    client.auth(b"reader", b"pw").unwrap();
    let refused = client.set(b"acl:k", b"w").unwrap_err();
    assert!(format!("{refused:?}").contains("NOPERM"), "{refused:?}");
    assert_eq!(client.get(b"acl:k").unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(resp.call(&[b"GET", b"acl:k"]), "v");
}
