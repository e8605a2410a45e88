//! MONITOR: a connection in monitor mode receives one line for every command any client runs,
//! on any shard, as Redis 7.2 writes it:
//! `+1700000000.123456 [0 127.0.0.1:52345] "set" "foo" "bar"`.
//!
//! Which commands, and when (as Redis's `call()` feeds its monitors):
//! - every command that runs, failed or not, once: a command refused before it runs (unknown,
//!   wrong arity, no auth, ACL, OOM) and a command queued by MULTI are not shown;
//! - administrative commands (CONFIG, DEBUG, MONITOR itself...) never are;
//! - a command is shown as it starts, so EVAL, EVALSHA and FCALL come before the commands
//!   their script runs (shown as `[db lua]`), and a blocking command once, when it blocks;
//! - EXEC comes after the commands it ran, MULTI before them;
//! - arguments that hold secrets (AUTH's password, HELLO's AUTH, MIGRATE's AUTH...) show as
//!   `(redacted)`, the arguments the slow log redacts.
//!
//! The line is written once, on the shard that runs the command, and appended to the inbox
//! of every shard that has a monitor. An inbox is shared (a mutex), so the lines of all
//! clients take one order there, the order in which their commands started: a client that
//! runs a command on one shard after another client's command on another sees the two lines
//! in that order on every monitor. The shard that owns an inbox moves it to its monitors when
//! it feeds a line itself, and when another shard rings it with a mesh message (once per
//! batch of lines: only when the inbox was empty). While no connection monitors, a command
//! pays one relaxed atomic load.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::{CommandResult, ConnectionCtx, COMMANDS};
use crate::client::{Client, ClientHandle};
use crate::shard::{Shard, ShardRequest};

/// Every shard's monitor count and inbox, shared by all shards.
#[derive(Debug)]
pub struct Watchers {
    inboxes: Vec<Inbox>,
    total: AtomicUsize,
}

#[derive(Debug, Default)]
struct Inbox {
    monitors: AtomicUsize,
    lines: Mutex<Vec<u8>>,
}

impl Watchers {
    /// No monitor on any of `shard_count` shards.
    pub fn new(shard_count: usize) -> Self {
        Self {
            inboxes: (0..shard_count).map(|_| Inbox::default()).collect(),
            total: AtomicUsize::new(0),
        }
    }

    fn count(&self, shard: usize, joined: bool) {
        if joined {
            self.inboxes[shard].monitors.fetch_add(1, Ordering::Relaxed);
            self.total.fetch_add(1, Ordering::Relaxed);
        } else {
            self.inboxes[shard].monitors.fetch_sub(1, Ordering::Relaxed);
            self.total.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// One shard's monitors, and the shards to ring at the next [`flush`].
#[derive(Debug, Default)]
pub struct ShardMonitors {
    clients: RefCell<Vec<Rc<ClientHandle>>>,
    to_ring: RefCell<Vec<usize>>,
}

/// True when some connection, on any shard, is in monitor mode.
#[inline]
pub fn active(shard: &Shard) -> bool {
    shard.shared.monitors.total.load(Ordering::Relaxed) > 0
}

/// MONITOR: this connection receives every command from now on.
pub fn monitor(ctx: &mut ConnectionCtx<'_>, _args: &[&[u8]]) -> CommandResult {
    if ctx.client.hold.is_some() {
        // Inside EXEC or a script, a reply per command is expected (Redis's DENY BLOCKING).
        return Err("ERR MONITOR isn't allowed for DENY BLOCKING client".into());
    }
    if ctx.client.monitor {
        // Redis ignores a second MONITOR, without a reply.
        return Ok(());
    }
    ctx.client.monitor = true;
    // Lines already in the inbox are for the monitors there before this one (or for none).
    deliver(ctx.shard);
    ctx.shard
        .monitors
        .clients
        .borrow_mut()
        .push(ctx.client.handle.clone());
    ctx.shard.shared.monitors.count(ctx.shard.index, true);
    ctx.out.ok();
    Ok(())
}

/// Leaves monitor mode (RESET, or the connection closing).
pub fn stop(shard: &Shard, client: &mut Client) {
    if !std::mem::take(&mut client.monitor) {
        return;
    }
    let id = client.handle.id;
    shard
        .monitors
        .clients
        .borrow_mut()
        .retain(|handle| handle.id != id);
    shard.shared.monitors.count(shard.index, false);
}

/// Shows command `index`, about to run for `client` with `args`, to every monitor: this
/// shard's at once, the others' once [`flush`] rings their shards. The caller checked
/// [`active`].
pub fn feed(shard: &Shard, client: &Client, index: usize, args: &[&[u8]]) {
    let spec = &COMMANDS[index];
    if spec.has(super::CommandFlags::ADMIN) {
        return;
    }
    let secrets = spec
        .secrets
        .map(|secrets| secrets(args))
        .unwrap_or_default();
    let source = if client.script {
        "lua"
    } else {
        client.handle.addr.as_str()
    };
    let mut line = Vec::with_capacity(64 + args.iter().map(|arg| arg.len() + 3).sum::<usize>());
    write_line(&mut line, unix_time_us(), client.db, source, args, &secrets);
    for (target, inbox) in shard.shared.monitors.inboxes.iter().enumerate() {
        if inbox.monitors.load(Ordering::Relaxed) == 0 {
            continue;
        }
        let was_empty = {
            let mut lines = inbox
                .lines
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let was_empty = lines.is_empty();
            lines.extend_from_slice(&line);
            was_empty
        };
        if target == shard.index {
            deliver(shard);
        } else if was_empty {
            shard.monitors.to_ring.borrow_mut().push(target);
        }
    }
}

/// Rings the shards whose inboxes [`feed`] filled since the last flush.
pub async fn flush(shard: &Shard) {
    if shard.monitors.to_ring.borrow().is_empty() {
        return;
    }
    let targets = std::mem::take(&mut *shard.monitors.to_ring.borrow_mut());
    for target in targets {
        shard.notify(target, ShardRequest::Monitor).await;
    }
}

/// Moves this shard's inbox to its monitors; a monitor past its output limit is closed.
pub fn deliver(shard: &Shard) {
    let lines = {
        let inbox = &shard.shared.monitors.inboxes[shard.index];
        let mut lines = inbox
            .lines
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        std::mem::take(&mut *lines)
    };
    if lines.is_empty() {
        return;
    }
    for handle in shard.monitors.clients.borrow().iter() {
        if !handle.pushes.push(|queue| queue.extend_from_slice(&lines)) {
            handle.killed.set(true);
        }
    }
}

fn unix_time_us() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_micros())
}

/// One monitor line: `+SECONDS.MICROS [DB SOURCE] "arg" "arg"...` and CRLF, each argument
/// quoted as Redis's `sdscatrepr` quotes it, secrets as `"(redacted)"`.
fn write_line(
    line: &mut Vec<u8>,
    unix_us: u128,
    db: usize,
    source: &str,
    args: &[&[u8]],
    secrets: &[usize],
) {
    use std::io::Write;
    let _ = write!(
        line,
        "+{}.{:06} [{db} {source}]",
        unix_us / 1_000_000,
        unix_us % 1_000_000
    );
    for (position, arg) in args.iter().enumerate() {
        line.push(b' ');
        if secrets.contains(&position) {
            line.extend_from_slice(b"\"(redacted)\"");
        } else {
            quote(line, arg);
        }
    }
    line.extend_from_slice(b"\r\n");
}

/// `text` in double quotes with `\\`, `\"`, `\n`, `\r`, `\t`, `\a`, `\b` escaped and every
/// other byte outside printable ASCII as `\xHH` (Redis's `sdscatrepr`).
fn quote(line: &mut Vec<u8>, text: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    line.push(b'"');
    for &byte in text {
        match byte {
            b'\\' => line.extend_from_slice(b"\\\\"),
            b'"' => line.extend_from_slice(b"\\\""),
            b'\n' => line.extend_from_slice(b"\\n"),
            b'\r' => line.extend_from_slice(b"\\r"),
            b'\t' => line.extend_from_slice(b"\\t"),
            0x07 => line.extend_from_slice(b"\\a"),
            0x08 => line.extend_from_slice(b"\\b"),
            0x20..=0x7e => line.push(byte),
            _ => line.extend_from_slice(&[
                b'\\',
                b'x',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 15)],
            ]),
        }
    }
    line.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_written_as_redis_writes_them() {
        let mut line = Vec::new();
        let args: [&[u8]; 4] = [
            b"set",
            b"k\"ey",
            b"a\\b\r\n\t\x07\x08",
            b"\x00\xff\x7f caf\xc3\xa9",
        ];
        write_line(
            &mut line,
            1_700_000_000_000_042,
            3,
            "127.0.0.1:5000",
            &args,
            &[],
        );
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "+1700000000.000042 [3 127.0.0.1:5000] \"set\" \"k\\\"ey\" \"a\\\\b\\r\\n\\t\\a\\b\" \"\\x00\\xff\\x7f caf\\xc3\\xa9\"\r\n"
        );
        let mut line = Vec::new();
        let args: [&[u8]; 3] = [b"auth", b"user", b"secret"];
        write_line(&mut line, 5_000_000, 0, "lua", &args, &[1, 2]);
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "+5.000000 [0 lua] \"auth\" \"(redacted)\" \"(redacted)\"\r\n"
        );
    }
}
