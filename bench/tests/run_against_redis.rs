//! Smoke tests of `ember-bench run` against a real redis-server started on a free loopback port.
//! They check the counts the report gives, and that a run with wrong replies fails.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Redis {
    child: Child,
    port: u16,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn redis_installed() -> bool {
    Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Starts redis-server on a free port, or returns None (after saying why) when it is missing.
fn start_redis() -> Option<Redis> {
    if !redis_installed() {
        eprintln!("skipped: redis-server is not installed (Debian package redis-server; `make test` installs it)");
        return None;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server starts");
    let redis = Redis { child, port };
    let start = Instant::now();
    loop {
        if let Ok(mut stream) = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))) {
            stream.write_all(b"PING\r\n").unwrap();
            let mut reply = [0u8; 7];
            if stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n" {
                return Some(redis);
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "redis-server did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn scratch_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("ember-bench-test-{}-{name}", std::process::id()))
}

/// Runs `ember-bench run` with `args`, returning its exit output and its JSON report.
fn bench_run(port: u16, name: &str, args: &[&str]) -> (Output, serde_json::Value) {
    let json_path = scratch_path(&format!("{name}.json"));
    let output = Command::new(env!("CARGO_BIN_EXE_ember-bench"))
        .arg("run")
        .args(["--port", &port.to_string(), "--no-progress", "--json"])
        .arg(&json_path)
        .args(args)
        .output()
        .expect("ember-bench runs");
    let text = std::fs::read_to_string(&json_path).unwrap_or_else(|error| {
        panic!(
            "no JSON report ({error}); stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let _ = std::fs::remove_file(&json_path);
    (
        output,
        serde_json::from_str(&text).expect("valid JSON report"),
    )
}

fn count(report: &serde_json::Value, name: &str) -> u64 {
    report["counts"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no count {name} in {report}"))
}

#[test]
fn closed_loop_counts_every_request_and_checks_every_value() {
    let Some(redis) = start_redis() else { return };
    let args = [
        "--preload",
        "--keys",
        "1000",
        "--connections",
        "4",
        "--pipeline",
        "8",
        "--requests",
        "20000",
        "--ratio",
        "1:1",
        "--seed",
        "5",
    ];
    let (output, report) = bench_run(redis.port, "closed", &args);
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (gets, sets) = (count(&report, "gets"), count(&report, "sets"));
    assert_eq!(gets + sets, 20_000, "{report}");
    // 1:1 over 20000 draws with seed 5: both well represented.
    assert!(gets > 9_000 && sets > 9_000, "{report}");
    assert_eq!(count(&report, "hits"), gets, "preloaded: every GET hits");
    for name in [
        "misses",
        "errors",
        "wrong_values",
        "unexpected",
        "unanswered",
    ] {
        assert_eq!(count(&report, name), 0, "{name}: {report}");
    }
    assert_eq!(report["latency"]["count"].as_u64(), Some(20_000));
    assert!(report["throughput_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(report["failures"].as_array().map(Vec::len), Some(0));
    let markdown = String::from_utf8_lossy(&output.stdout);
    assert!(
        markdown.contains("| ops/s |") && markdown.contains("no errors"),
        "{markdown}"
    );
}

#[test]
fn open_loop_and_latency_modes_send_what_they_promise() {
    let Some(redis) = start_redis() else { return };
    // 4000 requests/s for 0.5 s: 2000 requests are due, all of them sent and answered.
    let args = [
        "--preload",
        "--keys",
        "100",
        "--connections",
        "4",
        "--rate",
        "4000",
        "--duration-s",
        "0.5",
    ];
    let (output, report) = bench_run(redis.port, "open", &args);
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let operations = count(&report, "gets") + count(&report, "sets");
    assert!(
        (1_990..=2_010).contains(&operations),
        "{operations} operations: {report}"
    );
    assert_eq!(report["settings"]["mode"], "open");

    let args = [
        "--keys",
        "100",
        "--latency",
        "--requests",
        "2000",
        "--ratio",
        "1:0",
        "--expect-hits",
    ];
    let (output, report) = bench_run(redis.port, "latency", &args);
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(count(&report, "gets"), 2000);
    assert_eq!(report["settings"]["connections"], 1);
    let p50_us = report["latency"]["p50_us"].as_f64().unwrap();
    assert!(p50_us > 0.0 && p50_us < 100_000.0, "p50 {p50_us} us");
}

#[test]
fn wrong_values_and_misses_fail_the_run() {
    let Some(redis) = start_redis() else { return };
    // Nothing preloaded: every GET misses, which --expect-hits turns into a failure.
    let args = [
        "--keys",
        "10",
        "--requests",
        "100",
        "--ratio",
        "1:0",
        "--expect-hits",
    ];
    let (output, report) = bench_run(redis.port, "misses", &args);
    assert_eq!(
        output.status.code(),
        Some(1),
        "a run of misses must fail: {report}"
    );
    assert_eq!(count(&report, "misses"), 100);
    assert!(String::from_utf8_lossy(&output.stderr).contains("misses"));

    // key 0 holds bytes that are not its pattern: every GET of it is a wrong value.
    let mut stream = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], redis.port))).unwrap();
    stream
        .write_all(b"SET key:000000000000 0000000000009999\r\n")
        .unwrap();
    let mut reply = [0u8; 5];
    stream.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"+OK\r\n");
    let args = ["--keys", "1", "--requests", "50", "--ratio", "1:0"];
    let (output, report) = bench_run(redis.port, "wrong", &args);
    assert_eq!(
        output.status.code(),
        Some(1),
        "a run of wrong values must fail: {report}"
    );
    assert_eq!(count(&report, "wrong_values"), 50);
    assert!(report["failures"]
        .as_array()
        .is_some_and(|failures| !failures.is_empty()));
}
