//! `ember-bench hitratio` end to end: in-process on a small generated trace, and through a real
//! redis-server (started on a free loopback port with a maxmemory policy) in `--server` mode,
//! whose hit ratios must agree with the server's own INFO counters (the tool checks) and land
//! near the in-process simulation of the same policy.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
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

/// Starts redis-server on a free port with `policy`, or returns None (after saying why) when it
/// is missing. `EMBER_REQUIRE_REDIS=1` (CI) turns that skip into a failure.
fn start_redis(policy: &str) -> Option<Redis> {
    let installed = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !installed {
        assert!(
            std::env::var_os("EMBER_REQUIRE_REDIS").is_none(),
            "redis-server is required (EMBER_REQUIRE_REDIS is set) but not installed"
        );
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
            "--maxmemory-policy",
            policy,
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
        // Polling a server that is starting, bounded by the deadline above.
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn scratch_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("ember-hitratio-test-{}-{name}", std::process::id()))
}

/// Runs `ember-bench hitratio` with `args` and returns its JSON rows.
fn hitratio(name: &str, args: &[&str]) -> Vec<serde_json::Value> {
    let json_path = scratch_path(&format!("{name}.json"));
    let output = Command::new(env!("CARGO_BIN_EXE_ember-bench"))
        .arg("hitratio")
        .args(args)
        .arg("--json")
        .arg(&json_path)
        .output()
        .expect("ember-bench runs");
    assert!(
        output.status.success(),
        "{name}: ember-bench hitratio failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(&json_path).expect("JSON written");
    std::fs::remove_file(&json_path).ok();
    serde_json::from_str(&text).expect("JSON parses")
}

fn hit_ratio(row: &serde_json::Value) -> f64 {
    let hits = row["hits"].as_u64().unwrap() as f64;
    let misses = row["misses"].as_u64().unwrap() as f64;
    hits / (hits + misses)
}

/// The trace every test replays: 5000 keys, 50000 Zipf requests, 1 KiB values. Values this
/// big make 10% of the working set (about 600 kB) large against the tens of kilobytes by which
/// Redis's own memory moves during a run (client buffers), which would otherwise decide the
/// number of keys the server holds.
const TRACE: [&str; 10] = [
    "--traces",
    "zipf-1.0",
    "--keys",
    "5000",
    "--requests",
    "50000",
    "--sizes",
    "10,30",
    "--value-size",
    "1024",
];

#[test]
fn in_process_runs_every_policy_at_every_size() {
    let rows = hitratio("in-process", &TRACE);
    assert_eq!(rows.len(), 12 * 2, "12 policies, 2 sizes");
    for row in &rows {
        assert_eq!(
            row["hits"].as_u64().unwrap() + row["misses"].as_u64().unwrap(),
            50_000
        );
        let ratio = hit_ratio(row);
        assert!((0.2..0.95).contains(&ratio), "{row}");
    }
}

#[test]
fn server_mode_against_redis_agrees_with_the_simulation() {
    // Both policies' servers in one run, as bench/RESULTS.md measures: each replays every size,
    // and both get the first one's working-set bytes for keys.
    let policies = ["allkeys-lru", "allkeys-lfu"];
    let mut servers = Vec::new();
    for policy in policies {
        let Some(redis) = start_redis(policy) else {
            return;
        };
        servers.push(redis);
    }
    let addresses: Vec<String> = servers
        .iter()
        .map(|redis| format!("127.0.0.1:{}", redis.port))
        .collect();
    let server_rows = hitratio(
        "servers",
        &[&TRACE[..], &["--server", &addresses.join(",")]].concat(),
    );
    assert_eq!(server_rows.len(), 2 * policies.len(), "2 sizes per server");
    let reference_bytes = server_rows[0]["server_dataset_bytes"].as_u64().unwrap();
    assert!(reference_bytes > 5_000 * 1024, "{}", server_rows[0]);
    for (server_rows, policy) in server_rows.chunks(2).zip(policies) {
        let simulated = hitratio(
            &format!("simulated-{policy}"),
            &[&TRACE[..], &["--policies", policy]].concat(),
        );
        for (server, simulated) in server_rows.iter().zip(&simulated) {
            assert_eq!(server["policy"], format!("redis:{policy}"));
            assert_eq!(server["source"], "server");
            assert_eq!(
                server["dataset_bytes"].as_u64(),
                Some(reference_bytes),
                "every server gets the first one's bytes: {server}"
            );
            assert!(server["evictions"].as_u64().unwrap() > 0, "{server}");
            // Redis's per-key overhead, its clock and its sampling differ from the simulation's,
            // but at the same fraction of the working set the ratios must be close.
            let (real, model) = (hit_ratio(server), hit_ratio(simulated));
            println!(
                "{policy} at {}%: server {real:.3}, simulation {model:.3}",
                server["size_percent"]
            );
            assert!(
                (real - model).abs() < 0.05,
                "{policy} at {}%: server {real:.3}, simulation {model:.3}",
                server["size_percent"]
            );
        }
    }
}
