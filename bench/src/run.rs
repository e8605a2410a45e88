//! `ember-bench run`: one load run against one server, reported as markdown and/or JSON.

use crate::cli::{self, Flags};
use crate::load::{self, LoadConfig, Mode, Stop};
use crate::report::RunReport;
use crate::workload::KeyDistribution;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// Usage text of `ember-bench run`.
pub const USAGE: &str = "\
ember-bench run [flags]: drive one Redis-protocol server and report throughput and latency

  --host HOST           server host (default 127.0.0.1)
  --port PORT           server port (default 6379)
  --connections N       connections in total (default 50)
  --threads N           load threads; connections are shared among them (default 1)
  --pipeline N          requests per batch in closed loop (default 1)
  --keys N              key space key:000000000000.. (default 100000)
  --distribution D      uniform or zipf (default uniform)
  --zipf-exponent S     Zipf skew, above 0 and below 1 (default 0.99)
  --value-size BYTES    value size of SET and of preloaded keys (default 16)
  --ratio GET:SET       mix of GET and SET (default 9:1)
  --duration-s SECONDS  measured time (default 5), or
  --requests N          measured requests
  --warmup-s SECONDS    unmeasured time first (default 0)
  --rate OPS_PER_S      open loop at this total arrival rate, latency from the due time
  --latency             one connection, one request at a time, client spinning on its socket
  --preload             SET every key first; implies --expect-hits
  --expect-hits         fail the run on any GET miss
  --seed N              random seed (default 1)
  --cpus LIST           pin load threads to these CPUs, e.g. 1 or 2,3
  --spin                poll sockets without sleeping (default in open-loop and latency modes)
  --json PATH|-         write the JSON report to PATH (- for stdout)
  --markdown PATH|-     write the markdown report to PATH (- for stdout, the default)
  --no-progress         no progress bar

Every reply is checked: SET must answer +OK; GET must return exactly the value ember-bench
writes for that key at --value-size. Any error, wrong value, unanswered request (or miss with
--expect-hits) makes the run exit with status 1.";

const VALUED: &[&str] = &[
    "host",
    "port",
    "connections",
    "threads",
    "pipeline",
    "keys",
    "distribution",
    "zipf-exponent",
    "value-size",
    "ratio",
    "duration-s",
    "requests",
    "warmup-s",
    "rate",
    "seed",
    "cpus",
    "json",
    "markdown",
];

const SWITCHES: &[&str] = &[
    "latency",
    "preload",
    "expect-hits",
    "spin",
    "no-progress",
    "help",
];

/// Entry point of `ember-bench run`.
///
/// # Errors
/// Returns a message for a bad command line, a server that cannot be reached, or a run whose
/// replies were wrong (the report is written first).
pub fn main(args: &[String]) -> Result<(), String> {
    let flags = Flags::parse(args, VALUED, SWITCHES)?;
    if flags.switch("help") {
        println!("{USAGE}");
        return Ok(());
    }
    let config = config_from_flags(&flags)?;
    if flags.switch("preload") {
        load::preload(config.address, config.key_count, config.value_size)?;
    }
    let outcome = load::run(&config)?;
    let report = RunReport::new(&config, &outcome);
    if let Some(path) = flags.text("json") {
        write_output(path, &report.to_json())?;
    }
    write_output(flags.text("markdown").unwrap_or("-"), &report.to_markdown())?;
    if report.failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the run failed its checks: {}",
            report.failures.join("; ")
        ))
    }
}

fn write_output(path: &str, text: &str) -> Result<(), String> {
    if path == "-" {
        println!("{text}");
        return Ok(());
    }
    std::fs::write(path, text).map_err(|error| format!("cannot write {path}: {error}"))
}

/// Reads a `GET:SET` ratio such as `9:1`.
///
/// # Errors
/// Returns a message when the text is not two integers separated by a colon, or both are 0.
pub fn parse_ratio(text: &str) -> Result<(u32, u32), String> {
    let bad = || format!("--ratio: '{text}' is not GET:SET, e.g. 9:1 or 1:0");
    let (get, set) = text.split_once(':').ok_or_else(bad)?;
    let get = get.trim().parse::<u32>().map_err(|_| bad())?;
    let set = set.trim().parse::<u32>().map_err(|_| bad())?;
    if get == 0 && set == 0 {
        return Err("--ratio: 0:0 sends nothing".to_string());
    }
    if get.checked_add(set).is_none() {
        return Err(bad());
    }
    Ok((get, set))
}

fn seconds(flags: &Flags, name: &str, default: f64) -> Result<Duration, String> {
    let value = flags.get_or(name, default)?;
    if !(value.is_finite() && (0.0..=86_400.0).contains(&value)) {
        return Err(format!(
            "--{name}: {value} is not a number of seconds between 0 and 86400"
        ));
    }
    Ok(Duration::from_secs_f64(value))
}

fn config_from_flags(flags: &Flags) -> Result<LoadConfig, String> {
    let host = flags.text("host").unwrap_or("127.0.0.1");
    let port: u16 = flags.get_or("port", 6379)?;
    let address: SocketAddr = (host, port)
        .to_socket_addrs()
        .map_err(|error| format!("cannot resolve {host}: {error}"))?
        .next()
        .ok_or_else(|| format!("{host} has no address"))?;
    let distribution = match flags.text("distribution").unwrap_or("uniform") {
        "uniform" => KeyDistribution::Uniform,
        "zipf" => KeyDistribution::Zipf {
            exponent: flags.get_or("zipf-exponent", 0.99)?,
        },
        other => return Err(format!("--distribution: '{other}' is not uniform or zipf")),
    };
    let (get_weight, set_weight) = parse_ratio(flags.text("ratio").unwrap_or("9:1"))?;
    let stop = match (flags.get::<u64>("requests")?, flags.text("duration-s")) {
        (Some(_), Some(_)) => return Err("give --duration-s or --requests, not both".to_string()),
        (Some(count), None) => Stop::Requests(count),
        (None, _) => Stop::Duration(seconds(flags, "duration-s", 5.0)?),
    };
    let latency = flags.switch("latency");
    let mode = match (latency, flags.get::<f64>("rate")?) {
        (true, Some(_)) => {
            return Err("--latency and --rate are different modes: give one".to_string())
        }
        (true, None) => Mode::Latency,
        (false, Some(rate_per_s)) => Mode::Open { rate_per_s },
        (false, None) => Mode::Closed,
    };
    let (default_connections, default_pipeline) = if latency { (1, 1) } else { (50, 1) };
    let cpus = match flags.text("cpus") {
        Some(text) => cli::parse_cpu_list(text)?,
        None => Vec::new(),
    };
    let config = LoadConfig {
        address,
        connections: flags.get_or("connections", default_connections)?,
        threads: flags.get_or("threads", 1)?,
        pipeline: flags.get_or("pipeline", default_pipeline)?,
        key_count: flags.get_or("keys", 100_000)?,
        distribution,
        value_size: flags.get_or("value-size", 16)?,
        get_weight,
        set_weight,
        stop,
        mode,
        warmup: seconds(flags, "warmup-s", 0.0)?,
        expect_hits: flags.switch("expect-hits") || flags.switch("preload"),
        seed: flags.get_or("seed", 1)?,
        cpus,
        spin: flags.switch("spin") || mode != Mode::Closed,
        progress: !flags.switch("no-progress"),
    };
    load::validate(&config)?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ratios() {
        assert_eq!(parse_ratio("9:1"), Ok((9, 1)));
        assert_eq!(parse_ratio("1:0"), Ok((1, 0)));
        assert_eq!(parse_ratio("0:1"), Ok((0, 1)));
        for bad in ["0:0", "9", "a:b", "1:-1", "4294967295:1"] {
            assert!(parse_ratio(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn refuses_conflicting_flags() {
        let words = |text: &str| {
            text.split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        let cases = [
            "--duration-s 1 --requests 5",
            "--latency --rate 100",
            "--latency --connections 2",
            "--distribution pareto",
            "--distribution zipf --zipf-exponent 1.2",
            "--connections 0",
            "--pipeline 5000",
            "--duration-s -1",
            "--rate 0",
            "--pipeline 4096 --value-size 1048576",
            "--rate 1e-300",
            "--rate nan",
            "--keys 0",
            "--threads 3 --connections 2",
        ];
        for line in cases {
            let flags = Flags::parse(&words(line), VALUED, SWITCHES).unwrap();
            assert!(config_from_flags(&flags).is_err(), "{line}");
        }
        let flags = Flags::parse(&words("--latency --port 7000"), VALUED, SWITCHES).unwrap();
        let config = config_from_flags(&flags).unwrap();
        assert_eq!(
            (config.connections, config.pipeline, config.mode),
            (1, 1, Mode::Latency)
        );
        assert!(config.spin);
    }
}
