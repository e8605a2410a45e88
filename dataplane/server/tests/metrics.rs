//! The Prometheus endpoint, scraped by a real Prometheus server (Debian's package) on loopback,
//! and the series read back through Prometheus's HTTP API.

mod common;

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, http_get, Ember};

/// Kills the child by pid when dropped, so a failing test leaves nothing running.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        line.strip_prefix(series)
            .and_then(|rest| rest.trim().parse().ok())
    })
}

#[test]
fn prometheus_scrapes_ember() {
    let metrics_port = free_port();
    let ember = Ember::start_with(&[
        "--threads",
        "2",
        "--metrics-port",
        &metrics_port.to_string(),
    ]);
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", ember.port)).unwrap();
    let mut connection = client.get_connection().unwrap();
    for i in 0..7 {
        let _: () = redis::cmd("SET")
            .arg(format!("key:{i}"))
            .arg(i)
            .query(&mut connection)
            .unwrap();
    }
    for i in 0..10 {
        let _: Option<String> = redis::cmd("GET")
            .arg(format!("key:{i}"))
            .query(&mut connection)
            .unwrap();
    }

    let exposition = http_get(metrics_port, "/metrics");
    assert!(exposition.starts_with("HTTP/1.1 200 OK"), "{exposition}");
    assert_eq!(
        sample(&exposition, "ember_commands_total{command=\"set\"}"),
        Some(7.0)
    );
    assert_eq!(
        sample(&exposition, "ember_commands_total{command=\"get\"}"),
        Some(10.0)
    );
    assert_eq!(sample(&exposition, "ember_keyspace_hits_total"), Some(7.0));
    assert_eq!(
        sample(&exposition, "ember_keyspace_misses_total"),
        Some(3.0)
    );
    assert_eq!(sample(&exposition, "ember_keys{db=\"0\"}"), Some(7.0));
    assert_eq!(
        sample(
            &exposition,
            "ember_command_duration_seconds_count{command=\"get\"}"
        ),
        Some(10.0)
    );
    assert!(exposition.contains("ember_shard_busy_seconds_total{shard=\"1\"}"));
    // The GPU embedding cache's figures are there at zero where no RECOMMEND ran on the native backend.
    for name in [
        "ember_gpu_cache_hits_total",
        "ember_gpu_cache_misses_total",
        "ember_gpu_cache_resident_bytes",
        "ember_gpu_cache_capacity_bytes",
        "ember_gpu_cache_hit_ratio",
        "ember_gpu_slot_calls_total",
        "ember_gpu_slot_fallbacks_total",
    ] {
        assert_eq!(sample(&exposition, name), Some(0.0), "{name}");
    }
    assert!(http_get(metrics_port, "/nope").starts_with("HTTP/1.1 404"));

    let Ok(prometheus_binary) = which("prometheus") else {
        eprintln!("skipped the Prometheus half: no `prometheus` binary (make test installs Debian's package)");
        return;
    };
    let directory = std::env::temp_dir().join(format!("ember-prometheus-{}", std::process::id()));
    std::fs::create_dir_all(&directory).unwrap();
    let config_path = directory.join("prometheus.yml");
    std::fs::write(
        &config_path,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: ember\n    static_configs:\n      - targets: ['127.0.0.1:{metrics_port}']\n"
        ),
    )
    .unwrap();
    let web_port = free_port();
    let _prometheus = Running(
        Command::new(prometheus_binary)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                directory.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{web_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );
    // ember_commands_total{command="set"}, URL-encoded.
    let query = "/api/v1/query?query=ember_commands_total%7Bcommand%3D%22set%22%7D";
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = String::new();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        if TcpStream::connect(("127.0.0.1", web_port)).is_err() {
            continue;
        }
        last = http_get(web_port, query);
        if last.contains("\"job\":\"ember\"") {
            assert!(
                last.contains(",\"7\"]"),
                "Prometheus read back the wrong value: {last}"
            );
            let _ = std::fs::remove_dir_all(&directory);
            return;
        }
    }
    let _ = std::fs::remove_dir_all(&directory);
    panic!("Prometheus never returned the ember series; last answer: {last}");
}

fn which(binary: &str) -> Result<std::path::PathBuf, ()> {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(binary))
                .find(|path| path.is_file())
        })
        .ok_or(())
}
