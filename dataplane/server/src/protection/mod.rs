//! Traffic protection: the state behind rate limiting (`CL.THROTTLE`, `CL.WINDOW`), cache
//! rebuild leases (`GETLEASE`, `SETLEASE`) and live text filters (`FILTER.*`, and PUBLISH to a
//! channel with a filter attached).
//!
//! Rate-limiter state is ordinary keys (strings with a TTL, as redis-cell keeps it), so it lives
//! on the key's shard and needs nothing here but the pure arithmetic ([`gcra`], [`window`]).
//! Leases are per shard ([`Leases`], owned by the shard of the key they guard). Filters are
//! server-wide: the rules live once in [`Registry`], each change compiles a new automaton set
//! and bumps a generation, and every shard swaps its copy in the next time it looks
//! ([`ShardProtection::filters`]), as script registries do with theirs. The counters INFO's
//! `# Protection` section shows are process-wide atomics in [`Counters`].

pub mod filter;
pub mod gcra;
pub mod lease;
pub mod window;

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub use filter::{CompiledFilters, FilterRules};
pub use lease::Leases;

/// Process-wide counters of the protection commands (INFO `# Protection`).
#[derive(Debug, Default)]
pub struct Counters {
    /// CL.THROTTLE calls answered.
    pub throttle_requests: AtomicU64,
    /// CL.THROTTLE calls refused (limited).
    pub throttle_limited: AtomicU64,
    /// CL.WINDOW calls answered.
    pub window_requests: AtomicU64,
    /// CL.WINDOW calls refused (limited).
    pub window_limited: AtomicU64,
    /// Leases handed out by GETLEASE.
    pub leases_granted: AtomicU64,
    /// Leases that ran out before their holder presented them.
    pub leases_expired: AtomicU64,
    /// Leases redeemed by SETLEASE.
    pub leases_fulfilled: AtomicU64,
    /// GETLEASE replies that told the caller to wait for another's rebuild.
    pub lease_waits: AtomicU64,
    /// Texts scanned by a filter (FILTER.CHECK, FILTER.MASK, filtered PUBLISH).
    pub filter_scans: AtomicU64,
    /// Matches found by filters.
    pub filter_hits: AtomicU64,
    /// Messages PUBLISH dropped because a DROP filter matched.
    pub filter_dropped_messages: AtomicU64,
    /// Messages PUBLISH masked because a MASK filter matched.
    pub filter_masked_messages: AtomicU64,
}

/// Adds `count` to `counter`.
pub fn bump(counter: &AtomicU64, count: u64) {
    counter.fetch_add(count, Ordering::Relaxed);
}

impl Counters {
    /// The `# Protection` section's lines, `name:value`, in a fixed order.
    pub fn info_lines(&self) -> Vec<(&'static str, u64)> {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        vec![
            ("throttle_requests", load(&self.throttle_requests)),
            ("throttle_limited", load(&self.throttle_limited)),
            ("window_requests", load(&self.window_requests)),
            ("window_limited", load(&self.window_limited)),
            ("leases_granted", load(&self.leases_granted)),
            ("leases_expired", load(&self.leases_expired)),
            ("leases_fulfilled", load(&self.leases_fulfilled)),
            ("lease_waits", load(&self.lease_waits)),
            ("filter_scans", load(&self.filter_scans)),
            ("filter_hits", load(&self.filter_hits)),
            (
                "filter_dropped_messages",
                load(&self.filter_dropped_messages),
            ),
            ("filter_masked_messages", load(&self.filter_masked_messages)),
        ]
    }
}

/// Process-wide protection state: the counters and the filter rules.
#[derive(Debug, Default)]
pub struct Registry {
    /// INFO's counters.
    pub counters: Counters,
    /// The rules as last changed, and the compiled set every shard swaps in. Only filter
    /// commands (rare, administrative) take the lock; shards read `generation` first.
    rules: Mutex<(FilterRules, Arc<CompiledFilters>)>,
    /// Bumped after every change to `rules`; a shard whose copy is older fetches the new one.
    generation: AtomicU64,
}

impl Registry {
    /// Runs `change` on the rules; when it says it changed them, compiles the new set and
    /// publishes it to every shard (through the generation). Returns what `change` returned.
    pub fn change<R>(&self, change: impl FnOnce(&mut FilterRules) -> (R, bool)) -> R {
        let mut guard = self
            .rules
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let (result, changed) = change(&mut guard.0);
        if changed {
            guard.1 = Arc::new(CompiledFilters::compile(&guard.0));
            self.generation.fetch_add(1, Ordering::Release);
        }
        result
    }

    /// The current compiled set and its generation.
    fn snapshot(&self) -> (u64, Arc<CompiledFilters>) {
        let guard = self
            .rules
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        (self.generation.load(Ordering::Acquire), guard.1.clone())
    }
}

/// One shard's protection state.
pub struct ShardProtection {
    /// The process-wide registry (counters, filter rules).
    pub registry: Arc<Registry>,
    /// Leases of this shard's keys.
    pub leases: RefCell<Leases>,
    /// This shard's copy of the compiled filters and the generation it was taken at.
    filters: RefCell<(u64, Arc<CompiledFilters>)>,
}

impl ShardProtection {
    /// A shard's state over the process-wide `registry`.
    pub fn new(registry: Arc<Registry>) -> Self {
        let snapshot = registry.snapshot();
        Self {
            registry,
            leases: RefCell::new(Leases::with_salt(rand::random())),
            filters: RefCell::new(snapshot),
        }
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.registry.counters
    }

    /// The compiled filters, swapping in the newest set when a rule changed since the last
    /// look (one atomic load when nothing changed).
    pub fn filters(&self) -> Arc<CompiledFilters> {
        let current = self.registry.generation.load(Ordering::Acquire);
        let mut cached = self.filters.borrow_mut();
        if cached.0 != current {
            *cached = self.registry.snapshot();
        }
        cached.1.clone()
    }
}
