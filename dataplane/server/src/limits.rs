//! Client limits, with Redis 7's rules (networking.c, server.c): the output buffer limits of
//! `client-output-buffer-limit` (`checkClientOutputBufferLimits`), the idle `timeout`
//! (`clientsCronHandleTimeout`), `maxmemory-clients` client eviction (`evictClients`) and the
//! keepalive of `tcp-keepalive` (`anetKeepAlive`).
//!
//! A connection keeps its figures in its handle's [`ClientLimits`]: the bytes of its query
//! buffer and of the replies not yet sent (the whole of a flush that waits for the peer: Ember
//! stops reading a client whose replies wait, where Redis reads on and piles up replies, so
//! the batch in flight stands for that pile). The
//! connection checks its output limit after every command; each shard's [`client_cron`] checks
//! the soft limit of connections whose flush waits (Redis's "enforced when no traffic"), the
//! idle timeout, and client memory. Client memory of all shards adds up in one process-wide
//! total; a shard that finds it over `maxmemory-clients` evicts its own biggest clients until
//! the total is under again (Redis evicts the biggest of the whole server; each shard sees only
//! its own clients, so with several shards the one evicted is the biggest of the shard that
//! noticed first).

use std::cell::Cell;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::client::ClientHandle;
use crate::runtime;
use crate::shard::pubsub::OutputLimit;
use crate::shard::Shard;
use crate::stats::unix_time_ms;

/// How often a shard looks at its clients (Redis's clientsCron runs at `hz`, 10 a second).
const CRON_PERIOD: Duration = Duration::from_millis(100);
/// A connection idle this long gives back its input and reply buffers (Redis: 2 s).
const BUFFER_TRIM_IDLE_MS: u64 = 2_000;

/// What a client costs beyond its buffers (Redis counts its client struct and 16 KiB reply
/// buffer in `tot-mem`; Ember's connection task, parser and reply sink are about as much).
pub const CLIENT_BASE_BYTES: usize = 16 * 1024;

/// What one WATCHed key or one subscription costs a client, about (Redis counts the list node,
/// dictionary entry and key object of each).
pub const STATE_ENTRY_BYTES: usize = 96;

/// Client memory of every connection in the process (bytes), as `maxmemory-clients` counts it.
static CLIENT_MEMORY: AtomicU64 = AtomicU64::new(0);
/// Clients evicted by `maxmemory-clients` (INFO stats `evicted_clients`).
static EVICTED_CLIENTS: AtomicU64 = AtomicU64::new(0);
/// Clients closed for their output buffer limit (logged; Redis 7.0 has no INFO field for it).
static OUTPUT_LIMIT_DISCONNECTIONS: AtomicU64 = AtomicU64::new(0);

/// INFO stats `evicted_clients`.
pub fn evicted_clients() -> u64 {
    EVICTED_CLIENTS.load(Ordering::Relaxed)
}

/// Clients closed for their output buffer limit since start.
pub fn output_limit_disconnections() -> u64 {
    OUTPUT_LIMIT_DISCONNECTIONS.load(Ordering::Relaxed)
}

/// Client memory of the whole process (INFO memory `mem_clients_normal`).
pub fn client_memory() -> u64 {
    CLIENT_MEMORY.load(Ordering::Relaxed)
}

/// `maxmemory-clients`: bytes, or a percentage of `maxmemory`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientMemoryLimit {
    /// No client eviction.
    #[default]
    Off,
    /// This many bytes.
    Bytes(u64),
    /// This percentage of `maxmemory` (no limit while `maxmemory` is 0).
    Percent(u64),
}

impl ClientMemoryLimit {
    /// Reads a value stored by the config (`0`, a byte count, or `N%`).
    pub fn parse(text: &str) -> Option<Self> {
        if let Some(percent) = text.strip_suffix('%') {
            let percent: u64 = percent.parse().ok()?;
            return Some(if percent == 0 {
                Self::Off
            } else {
                Self::Percent(percent)
            });
        }
        let bytes = u64::try_from(crate::config::parse_memory(text)?).ok()?;
        Some(if bytes == 0 {
            Self::Off
        } else {
            Self::Bytes(bytes)
        })
    }

    /// The limit in bytes under `maxmemory`; `None` when there is none.
    pub fn bytes(self, maxmemory: u64) -> Option<u64> {
        match self {
            Self::Off => None,
            Self::Bytes(bytes) => Some(bytes),
            Self::Percent(_) if maxmemory == 0 => None,
            Self::Percent(percent) => Some((maxmemory.saturating_mul(percent) / 100).max(1)),
        }
    }
}

/// Checks a `maxmemory-clients` value and returns the form CONFIG GET shows (bytes, or `N%`).
///
/// # Errors
/// Redis's reason when it is neither.
pub fn canonical_client_memory(value: &str) -> Result<String, String> {
    let error = || "argument must be a memory or percent value".to_string();
    let value = value.trim();
    if let Some(percent) = value.strip_suffix('%') {
        let percent: u64 = percent.parse().map_err(|_| error())?;
        if percent > 100 {
            return Err("percentage argument must be less or equal to 100".into());
        }
        return Ok(format!("{percent}%"));
    }
    let bytes = crate::config::parse_memory(value).ok_or_else(error)?;
    if bytes < 0 {
        return Err(error());
    }
    Ok(bytes.to_string())
}

/// The normal class of a `client-output-buffer-limit` setting (Redis's default: no limit).
pub fn normal_output_limit(setting: &str) -> OutputLimit {
    crate::shard::pubsub::class_limit(setting, "normal").map_or(
        OutputLimit {
            hard_bytes: 0,
            soft_bytes: 0,
            soft_seconds: 0,
        },
        |[hard_bytes, soft_bytes, soft_seconds]| OutputLimit {
            hard_bytes,
            soft_bytes,
            soft_seconds,
        },
    )
}

/// One connection's figures for the limits, in its [`ClientHandle`].
#[derive(Debug, Default)]
pub struct ClientLimits {
    /// Bytes of the query buffer (allocated).
    query_alloc: Cell<usize>,
    /// Bytes received and not yet run (CLIENT LIST's `qbuf`).
    query_len: Cell<usize>,
    /// Replies not yet sent, in bytes (those of a flush that waits for the peer included).
    output_len: Cell<usize>,
    /// Pub/Sub messages queued for the connection and not yet taken by it.
    pushes_len: Cell<usize>,
    /// Arguments of the commands queued since MULTI (CLIENT LIST's `multi-mem`).
    multi_len: Cell<usize>,
    /// What WATCHed keys and subscriptions cost.
    state_len: Cell<usize>,
    /// True while a flush waits for the peer to read.
    flushing: Cell<bool>,
    /// Since when the output has been over the soft limit (ms since the epoch).
    soft_since_ms: Cell<Option<u64>>,
    /// The client's memory as counted in the process total.
    counted: Cell<usize>,
    /// CLIENT NO-EVICT on.
    pub no_evict: Cell<bool>,
    /// A command of the client is running (it may wait for another shard): not idle.
    pub running: Cell<bool>,
}

impl ClientLimits {
    /// CLIENT LIST's `qbuf`.
    pub fn query_len(&self) -> usize {
        self.query_len.get()
    }

    /// Bytes of the query buffer, allocated.
    pub fn query_alloc(&self) -> usize {
        self.query_alloc.get()
    }

    /// CLIENT LIST's `qbuf-free`: the query buffer's room left.
    pub fn query_free(&self) -> usize {
        self.query_alloc.get().saturating_sub(self.query_len.get())
    }

    /// CLIENT LIST's `omem`: replies and Pub/Sub messages not yet sent.
    pub fn output_len(&self) -> usize {
        self.output_len.get() + self.pushes_len.get()
    }

    /// CLIENT LIST's `multi-mem`.
    pub fn multi_len(&self) -> usize {
        self.multi_len.get()
    }

    /// The arguments queued since MULTI take `multi_len` bytes; the client watches
    /// `watched` keys and listens to `subscriptions` channels and patterns.
    pub fn set_held(&self, multi_len: usize, watched: usize, subscriptions: usize) {
        self.multi_len.set(multi_len);
        self.state_len
            .set((watched + subscriptions).saturating_mul(STATE_ENTRY_BYTES));
        self.account(
            self.query_alloc.get(),
            self.query_len.get(),
            self.output_len.get(),
        );
    }

    /// Pub/Sub messages queued for the connection (shard::pubsub).
    pub fn set_pushes_len(&self, pushes_len: usize) {
        self.pushes_len.set(pushes_len);
        self.account(
            self.query_alloc.get(),
            self.query_len.get(),
            self.output_len.get(),
        );
    }

    /// CLIENT LIST's `tot-mem`.
    pub fn memory(&self) -> usize {
        self.counted.get()
    }

    /// Records the connection's buffers (the query buffer's size and the part of it not yet
    /// run, the replies not yet sent) and updates the process's client memory.
    pub fn account(&self, query_alloc: usize, query_len: usize, output_len: usize) {
        self.query_alloc.set(query_alloc);
        self.query_len.set(query_len);
        self.output_len.set(output_len);
        let memory = CLIENT_BASE_BYTES
            + query_alloc
            + output_len
            + self.pushes_len.get()
            + self.multi_len.get()
            + self.state_len.get();
        let counted = self.counted.replace(memory);
        // The shared total is touched only on a change (most requests leave it as it was).
        if memory == counted {
            return;
        }
        if memory > counted {
            CLIENT_MEMORY.fetch_add((memory - counted) as u64, Ordering::Relaxed);
        } else {
            CLIENT_MEMORY.fetch_sub((counted - memory) as u64, Ordering::Relaxed);
        }
    }

    /// The output left to send while a flush waits for the peer (`None` when it is done).
    pub fn flushing(&self, output_len: Option<usize>) {
        self.flushing.set(output_len.is_some());
        self.account(
            self.query_alloc.get(),
            self.query_len.get(),
            output_len.unwrap_or(0),
        );
    }

    /// The connection ended: its memory leaves the total.
    pub fn release(&self) {
        let counted = self.counted.replace(0);
        CLIENT_MEMORY.fetch_sub(counted as u64, Ordering::Relaxed);
    }

    /// Redis's rule: over the hard limit at once, or over the soft limit for longer than its
    /// seconds (continuously: dropping under it starts the clock again).
    /// `now_ms` is read only while the output is over the soft limit (most calls read no
    /// clock).
    fn over(&self, pending: u64, limit: OutputLimit, now_ms: impl FnOnce() -> u64) -> bool {
        if limit.hard_bytes > 0 && pending >= limit.hard_bytes {
            return true;
        }
        if limit.soft_bytes == 0 || pending < limit.soft_bytes {
            self.soft_since_ms.set(None);
            return false;
        }
        let now_ms = now_ms();
        match self.soft_since_ms.get() {
            None => {
                self.soft_since_ms.set(Some(now_ms));
                false
            }
            Some(since_ms) => now_ms.saturating_sub(since_ms) > limit.soft_seconds * 1000,
        }
    }
}

/// The class a client's output limit is taken from: pubsub while it listens to a channel,
/// normal otherwise (Redis's `getClientType`).
fn class_limit(shard: &Shard, handle: &ClientHandle) -> (&'static str, OutputLimit) {
    let config = shard.config.borrow();
    if handle.subscription_counts.get() == [0; 3] {
        ("normal", config.normal_output_limit)
    } else {
        ("pubsub", config.pubsub_output_limit)
    }
}

/// True when `pending` bytes of replies put the client over its class's output limit; the
/// close is counted and logged, as Redis logs "Client ... scheduled to be closed ASAP for
/// overcoming of output buffer limits".
pub fn output_over_limit(shard: &Shard, handle: &ClientHandle, pending: usize) -> bool {
    let (class, limit) = class_limit(shard, handle);
    if limit.hard_bytes == 0 && limit.soft_bytes == 0 {
        return false;
    }
    if !handle.limits.over(pending as u64, limit, unix_time_ms) {
        return false;
    }
    OUTPUT_LIMIT_DISCONNECTIONS.fetch_add(1, Ordering::Relaxed);
    eprintln!(
        "ember: client id={} addr={} closed for overcoming of output buffer limits ({class}: {pending} bytes pending, limit {} {} {})",
        handle.id, handle.addr, limit.hard_bytes, limit.soft_bytes, limit.soft_seconds
    );
    true
}

/// Bytes waiting to be read on socket `fd` (FIONREAD; 0 when it cannot say).
pub fn readable_len(fd: RawFd) -> usize {
    let mut len: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int through the pointer, which is to a local.
    let result = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut len) };
    if result == 0 {
        usize::try_from(len).unwrap_or(0)
    } else {
        0
    }
}

/// Sets SO_KEEPALIVE on an accepted socket, with Redis's timings for `interval` seconds: the
/// first probe after `interval` idle seconds, then every third of it, three probes (0: off).
pub fn set_keepalive(fd: RawFd, interval: u64) {
    if interval == 0 {
        return;
    }
    let interval = i32::try_from(interval).unwrap_or(i32::MAX);
    let set = |level, name, value: i32| {
        // SAFETY: `fd` is the open socket just accepted; the option value is an i32 on the
        // stack, its size passed with it.
        unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                std::ptr::from_ref(&value).cast(),
                std::mem::size_of::<i32>() as libc::socklen_t,
            )
        }
    };
    set(libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1);
    set(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, interval);
    set(
        libc::IPPROTO_TCP,
        libc::TCP_KEEPINTVL,
        (interval / 3).max(1),
    );
    set(libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 3);
}

/// Evicts this shard's biggest evictable clients while the process's client memory is over
/// `maxmemory-clients` (Redis's `evictClients`; clients with CLIENT NO-EVICT are spared).
pub fn evict_clients(shard: &Shard) {
    let limit = {
        let config = shard.config.borrow();
        config.maxmemory_clients.bytes(config.maxmemory)
    };
    let Some(limit) = limit else {
        return;
    };
    if CLIENT_MEMORY.load(Ordering::Relaxed) < limit {
        return;
    }
    let mut candidates: Vec<Rc<ClientHandle>> = shard
        .clients
        .borrow()
        .values()
        .filter(|handle| !handle.limits.no_evict.get() && !handle.killed.get())
        .cloned()
        .collect();
    candidates.sort_by_key(|handle| std::cmp::Reverse(handle.limits.memory()));
    for handle in candidates {
        if CLIENT_MEMORY.load(Ordering::Relaxed) < limit {
            break;
        }
        let memory = handle.limits.memory();
        eprintln!(
            "ember: evicting client id={} addr={} (tot-mem={memory}, maxmemory-clients {limit})",
            handle.id, handle.addr
        );
        EVICTED_CLIENTS.fetch_add(1, Ordering::Relaxed);
        // Out of the total at once, so the next shard to look does not evict for it too.
        handle.limits.release();
        handle.kill();
    }
}

/// A shard's periodic look at its clients: idle `timeout`, the output limit of connections whose
/// flush waits for the peer (Redis enforces the soft limit with no traffic too), and client
/// eviction.
pub async fn client_cron(shard: Rc<Shard>) {
    let mut looked = Instant::now();
    loop {
        runtime::sleep_until_tick(CRON_PERIOD).await;
        // A look that comes late means the shard itself was held (DEBUG SLEEP, a long script):
        // whatever its clients sent meanwhile is still unread, and their last interaction is
        // as old as the stall. Redis reads before its cron runs; here the timer may wake
        // first, so the timeout waits for the next look, when that input has been read.
        let stalled = looked.elapsed() > CRON_PERIOD * 3;
        looked = Instant::now();
        let timeout_ms = if stalled {
            0
        } else {
            shard.config.borrow().timeout_s.saturating_mul(1000)
        };
        let now_ms = unix_time_ms();
        let handles: Vec<Rc<ClientHandle>> = shard.clients.borrow().values().cloned().collect();
        for handle in handles {
            if handle.killed.get() {
                continue;
            }
            // Redis spares blocked clients (their own timeout ends them) and subscribers; a
            // command that waits for another shard is not idleness either.
            let idle_ms = now_ms.saturating_sub(handle.last_interaction_ms.get());
            if timeout_ms > 0
                && idle_ms > timeout_ms
                && !handle.limits.running.get()
                && handle.subscription_counts.get() == [0; 3]
                && !shard.blocking.is_blocked(handle.id)
            {
                eprintln!(
                    "ember: closing idle client id={} addr={} (idle {} s)",
                    handle.id,
                    handle.addr,
                    idle_ms / 1000
                );
                handle.kill();
                continue;
            }
            // Idle for a while with its buffers: the connection gives them back (crate::
            // connection), as Redis frees the query buffer of a client idle for 2 s and shrinks
            // its reply buffer. Not a client stalled behind another shard, which has input.
            if idle_ms > BUFFER_TRIM_IDLE_MS
                && !stalled
                && !handle.limits.running.get()
                && handle.limits.query_alloc() > 0
                && !handle.pushes.trim_asked()
            {
                handle.pushes.ask_trim();
            }
            let waiting = handle.limits.flushing.get() || handle.limits.pushes_len.get() > 0;
            if waiting && output_over_limit(&shard, &handle, handle.limits.output_len()) {
                handle.kill();
            }
        }
        evict_clients(&shard);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_memory_limit_forms() {
        assert_eq!(ClientMemoryLimit::parse("0"), Some(ClientMemoryLimit::Off));
        assert_eq!(
            ClientMemoryLimit::parse("1048576"),
            Some(ClientMemoryLimit::Bytes(1 << 20))
        );
        assert_eq!(
            ClientMemoryLimit::parse("10%"),
            Some(ClientMemoryLimit::Percent(10))
        );
        assert_eq!(ClientMemoryLimit::Percent(10).bytes(0), None);
        assert_eq!(ClientMemoryLimit::Percent(10).bytes(1000), Some(100));
        assert_eq!(canonical_client_memory("1mb").unwrap(), "1048576");
        assert_eq!(canonical_client_memory("5%").unwrap(), "5%");
        assert!(canonical_client_memory("x%").is_err());
        assert!(canonical_client_memory("101%").is_err());
        assert!(canonical_client_memory("-1").is_err());
    }

    #[test]
    fn soft_limit_needs_its_seconds_continuously() {
        let limits = ClientLimits::default();
        let limit = OutputLimit {
            hard_bytes: 1000,
            soft_bytes: 100,
            soft_seconds: 2,
        };
        assert!(limits.over(1000, limit, || 0), "hard limit at once");
        assert!(!limits.over(150, limit, || 10_000));
        assert!(!limits.over(150, limit, || 11_000));
        assert!(!limits.over(50, limit, || 11_500), "under it again");
        assert!(!limits.over(150, limit, || 12_000));
        assert!(!limits.over(150, limit, || 14_000));
        assert!(limits.over(150, limit, || 14_001));
    }
}
