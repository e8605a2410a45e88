//! Turns an [`Outcome`] into the figures people read: JSON for machines, a markdown table for
//! RESULTS.md and terminals.

use crate::load::{Counts, LoadConfig, Mode, Outcome, Stop};
use hdrhistogram::Histogram;
use serde::Serialize;

/// Latency percentiles of one histogram, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Samples in the histogram.
    pub count: u64,
    /// Mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p99_9_us: f64,
    /// Largest sample.
    pub max_us: f64,
}

impl Percentiles {
    /// Reads the percentiles of a histogram of nanoseconds.
    pub fn of(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Percentiles::default();
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        Percentiles {
            count: histogram.len(),
            mean_us: histogram.mean() / 1000.0,
            p50_us: us(histogram.value_at_quantile(0.50)),
            p90_us: us(histogram.value_at_quantile(0.90)),
            p99_us: us(histogram.value_at_quantile(0.99)),
            p99_9_us: us(histogram.value_at_quantile(0.999)),
            max_us: us(histogram.max()),
        }
    }
}

/// The settings of a run, as reported beside its figures.
#[derive(Clone, Debug, Serialize)]
pub struct Settings {
    /// Server address.
    pub address: String,
    /// `closed`, `open` or `latency`.
    pub mode: &'static str,
    /// Open loop: requests per second in total.
    pub rate_per_s: Option<f64>,
    /// Connections.
    pub connections: usize,
    /// Load threads.
    pub threads: usize,
    /// Requests per batch (closed loop).
    pub pipeline: usize,
    /// Key space.
    pub keys: u64,
    /// Key choice.
    pub distribution: String,
    /// Value bytes.
    pub value_size: usize,
    /// `GET:SET`.
    pub ratio: String,
    /// Measured seconds asked for, when the run was timed.
    pub duration_s: Option<f64>,
    /// Measured requests asked for, when the run was counted.
    pub requests: Option<u64>,
    /// Unmeasured seconds first.
    pub warmup_s: f64,
    /// Every GET was expected to hit.
    pub expect_hits: bool,
    /// Random seed.
    pub seed: u64,
}

impl Settings {
    /// The settings of `config`.
    pub fn of(config: &LoadConfig) -> Self {
        let (mode, rate_per_s) = match config.mode {
            Mode::Closed => ("closed", None),
            Mode::Open { rate_per_s } => ("open", Some(rate_per_s)),
            Mode::Latency => ("latency", None),
        };
        let (duration_s, requests) = match config.stop {
            Stop::Duration(duration) => (Some(duration.as_secs_f64()), None),
            Stop::Requests(count) => (None, Some(count)),
        };
        Settings {
            address: config.address.to_string(),
            mode,
            rate_per_s,
            connections: config.connections,
            threads: config.threads,
            pipeline: config.pipeline,
            keys: config.key_count,
            distribution: config.distribution.to_string(),
            value_size: config.value_size,
            ratio: format!("{}:{}", config.get_weight, config.set_weight),
            duration_s,
            requests,
            warmup_s: config.warmup.as_secs_f64(),
            expect_hits: config.expect_hits,
            seed: config.seed,
        }
    }
}

/// One run's report.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    /// What was asked for.
    pub settings: Settings,
    /// Measured seconds, end of warm-up to last reply.
    pub elapsed_s: f64,
    /// Operations (GET + SET) answered per second.
    pub throughput_per_s: f64,
    /// What happened.
    pub counts: Counts,
    /// Latency of all operations.
    pub latency: Percentiles,
    /// Latency of GETs.
    pub get_latency: Percentiles,
    /// Latency of SETs.
    pub set_latency: Percentiles,
    /// Why this run's figures cannot be trusted; empty when they can.
    pub failures: Vec<String>,
}

impl RunReport {
    /// Builds the report of a finished run.
    pub fn new(config: &LoadConfig, outcome: &Outcome) -> Self {
        RunReport {
            settings: Settings::of(config),
            elapsed_s: outcome.elapsed.as_secs_f64(),
            throughput_per_s: outcome.throughput_per_s(),
            counts: outcome.counts,
            latency: Percentiles::of(&outcome.all_latency_ns()),
            get_latency: Percentiles::of(&outcome.get_latency_ns),
            set_latency: Percentiles::of(&outcome.set_latency_ns),
            failures: outcome.failures(config.expect_hits),
        }
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        // Serialising plain structs of numbers and strings cannot fail.
        serde_json::to_string_pretty(self).expect("report serialises")
    }

    /// The report as a markdown section: settings, counts and one latency row per command.
    pub fn to_markdown(&self) -> String {
        let settings = &self.settings;
        let counts = &self.counts;
        let mut text = String::new();
        let load = match settings.rate_per_s {
            Some(rate) => format!("open loop at {rate:.0} requests/s"),
            None => format!("{} loop, pipeline {}", settings.mode, settings.pipeline),
        };
        text.push_str(&format!(
            "{} against {}: {} connections over {} threads, {} keys ({}), {}-byte values, GET:SET {}\n\n",
            load,
            settings.address,
            settings.connections,
            settings.threads,
            settings.keys,
            settings.distribution,
            settings.value_size,
            settings.ratio
        ));
        text.push_str(
            "| ops/s | ops | GET | SET | hits | misses | errors | wrong values | seconds |\n",
        );
        text.push_str("|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        text.push_str(&format!(
            "| {:.0} | {} | {} | {} | {} | {} | {} | {} | {:.3} |\n\n",
            self.throughput_per_s,
            counts.operations(),
            counts.gets,
            counts.sets,
            counts.hits,
            counts.misses,
            counts.errors + counts.unexpected + counts.unanswered,
            counts.wrong_values,
            self.elapsed_s
        ));
        text.push_str("| latency (us) | count | mean | p50 | p90 | p99 | p99.9 | max |\n");
        text.push_str("|---|---:|---:|---:|---:|---:|---:|---:|\n");
        for (name, percentiles) in [
            ("all", &self.latency),
            ("GET", &self.get_latency),
            ("SET", &self.set_latency),
        ] {
            if percentiles.count == 0 {
                continue;
            }
            text.push_str(&format!(
                "| {name} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |\n",
                percentiles.count,
                percentiles.mean_us,
                percentiles.p50_us,
                percentiles.p90_us,
                percentiles.p99_us,
                percentiles.p99_9_us,
                percentiles.max_us
            ));
        }
        if self.failures.is_empty() {
            text.push_str("\nAll replies checked: no errors, no wrong values.\n");
        } else {
            text.push_str("\n**FAILED**:\n");
            for failure in &self.failures {
                text.push_str(&format!("- {failure}\n"));
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_read_microseconds_from_nanoseconds() {
        let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        for value_ns in 1..=1000u64 {
            histogram.record(value_ns * 1000).unwrap();
        }
        let percentiles = Percentiles::of(&histogram);
        assert_eq!(percentiles.count, 1000);
        assert!((percentiles.p50_us - 500.0).abs() < 1.0, "{percentiles:?}");
        assert!((percentiles.p99_us - 990.0).abs() < 1.0, "{percentiles:?}");
        assert!((percentiles.max_us - 1000.0).abs() < 1.0, "{percentiles:?}");
        assert_eq!(
            Percentiles::of(&Histogram::<u64>::new(3).unwrap()),
            Percentiles::default()
        );
    }
}
