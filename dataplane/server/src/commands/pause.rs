//! CLIENT PAUSE and CLIENT UNPAUSE, as Redis 7: for a while, every client's commands wait
//! (ALL), or only those that write or may propagate (WRITE: write commands, PUBLISH, PFCOUNT,
//! scripts and functions not flagged no-writes, an EXEC that queued any of these). Commands
//! refused before they would run (arity, authentication, ACL) answer at once; a script's and a
//! transaction's own commands are not held. Nothing expires meanwhile: active expiry waits, and
//! a key read past its TTL is answered as absent but stays (`ember_store::keyspace`). The pause is one
//! for the whole server (every shard reads it); a waiting command looks again every few
//! milliseconds, so CLIENT UNPAUSE frees it within [`RECHECK`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use super::{CommandFlags, CommandSpec, Handler, TransactionOp};
use crate::client::Client;
use crate::scripting::ScriptFlags;
use crate::shard::Shard;

/// How often a held command looks at the pause again.
const RECHECK: Duration = Duration::from_millis(2);

/// The server's pause: until when (Unix milliseconds; 0 for none) and whether it holds every
/// command or only writes.
#[derive(Debug, Default)]
pub struct Pause {
    until_ms: AtomicU64,
    all: AtomicBool,
}

impl Pause {
    /// Pauses until `until_ms`. As in Redis, a pause never gets shorter nor milder while it
    /// lasts: the later end and the stricter mode stay. Returns the end.
    pub fn pause(&self, now_ms: u64, until_ms: u64, all: bool) -> u64 {
        let current = self.until_ms.load(Ordering::Acquire);
        if current <= now_ms {
            self.all.store(all, Ordering::Release);
        } else if all {
            self.all.store(true, Ordering::Release);
        }
        self.until_ms
            .fetch_max(until_ms, Ordering::AcqRel)
            .max(until_ms)
    }

    /// Ends the pause.
    pub fn unpause(&self) {
        self.until_ms.store(0, Ordering::Release);
        self.all.store(false, Ordering::Release);
    }

    /// True while a pause lasts (active expiry waits).
    pub fn active(&self, now_ms: u64) -> bool {
        now_ms < self.until_ms.load(Ordering::Acquire)
    }

    /// True when a command that writes (`write`) or not must wait now.
    fn holds(&self, now_ms: u64, write: bool) -> bool {
        self.active(now_ms) && (write || self.all.load(Ordering::Acquire))
    }
}

/// Holds `client`'s command while a pause applies to it; true when it waited (the caller's
/// clock is stale then). Counted among INFO's blocked clients meanwhile, as Redis counts a
/// paused client.
pub async fn wait_if_paused(
    shard: &Shard,
    client: &Client,
    spec: &CommandSpec,
    args: &[&[u8]],
    now_ms: u64,
) -> bool {
    let pause = &shard.shared.pause;
    if !pause.active(now_ms) || client.hold.is_some() || client.script {
        return false;
    }
    let write = may_propagate(shard, client, spec, args);
    if !pause.holds(now_ms, write) {
        return false;
    }
    let blocked = &shard.shared.blocked_clients;
    blocked.fetch_add(1, Ordering::AcqRel);
    while pause.holds(crate::stats::unix_time_ms(), write) {
        crate::runtime::sleep(RECHECK).await;
    }
    blocked.fetch_sub(1, Ordering::AcqRel);
    true
}

/// True when the command writes or may propagate: what CLIENT PAUSE WRITE holds.
fn may_propagate(shard: &Shard, client: &Client, spec: &CommandSpec, args: &[&[u8]]) -> bool {
    if spec.has(CommandFlags::WRITE) {
        return true;
    }
    if propagates(spec) {
        return true;
    }
    let named = |name: &str| spec.name.eq_ignore_ascii_case(name);
    if named("eval") || named("evalsha") || named("fcall") {
        return !script_flags(shard, spec, args).contains(ScriptFlags::NO_WRITES);
    }
    if matches!(spec.handler, Handler::Transaction(TransactionOp::Exec)) {
        return client.multi.as_ref().is_some_and(|queue| {
            queue.iter().any(|queued| {
                let queued: Vec<&[u8]> = queued.iter().map(Vec::as_slice).collect();
                super::lookup(queued[0]).is_some_and(|index| {
                    may_propagate(shard, client, &super::COMMANDS[index], &queued)
                })
            })
        });
    }
    false
}

/// True for the commands that do not write but may propagate, Redis's `may-replicate` ones a
/// script can call: PUBLISH and SPUBLISH (a replica gets the message), PFCOUNT (it may rewrite
/// the sketch's cache).
pub fn propagates(spec: &CommandSpec) -> bool {
    ["publish", "spublish", "pfcount"]
        .iter()
        .any(|name| spec.name.eq_ignore_ascii_case(name))
}

/// The flags of the script EVAL, EVALSHA or FCALL would run (none when it is not known: it
/// may write, and its own error comes once the pause ends).
fn script_flags(shard: &Shard, spec: &CommandSpec, args: &[&[u8]]) -> ScriptFlags {
    let Some(name) = args.get(1).and_then(|arg| std::str::from_utf8(arg).ok()) else {
        return ScriptFlags::empty();
    };
    let registry = &shard.shared.scripts;
    let body = if spec.name.eq_ignore_ascii_case("eval") {
        Some(std::sync::Arc::<str>::from(name))
    } else if spec.name.eq_ignore_ascii_case("evalsha") {
        registry.body(&name.to_ascii_lowercase())
    } else {
        return shard
            .scripting()
            .function(registry, name)
            .map(|compiled| compiled.flags)
            .unwrap_or(ScriptFlags::empty());
    };
    body.and_then(|body| {
        crate::scripting::sandbox::shebang(&body)
            .ok()
            .map(|(flags, _)| flags)
    })
    .unwrap_or(ScriptFlags::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pause_keeps_its_later_end_and_stricter_mode() {
        let pause = Pause::default();
        assert!(!pause.active(1_000));
        pause.pause(1_000, 5_000, false);
        assert!(pause.holds(1_000, true) && !pause.holds(1_000, false));
        pause.pause(1_000, 3_000, true);
        assert!(pause.holds(4_000, false), "ALL applies, to the later end");
        pause.pause(1_000, 2_000, false);
        assert!(
            pause.holds(4_000, false),
            "WRITE does not soften a running ALL"
        );
        assert!(!pause.active(5_000));
        pause.pause(6_000, 7_000, false);
        assert!(
            !pause.holds(6_000, false),
            "a new pause after the last ended has its own mode"
        );
        pause.unpause();
        assert!(!pause.active(6_000));
    }
}
