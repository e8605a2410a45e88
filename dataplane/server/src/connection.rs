//! One client connection: read what arrived, run every whole request in it, write all their
//! replies with one send. Requests never allocate a frame: arguments are slices of the input
//! buffer (up to 16 of them on the stack).

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::time::Instant;

use ember_resp::{encode, Limits, RequestParser};
use smallvec::SmallVec;

use crate::client::{Client, ClientHandle};
use crate::commands::{self, ConnectionCtx, Handler, COMMANDS};
use crate::dispatch::{self, Route};
use crate::runtime::{AsyncReadExt, AsyncWriteExt, TcpStream};
use crate::shard::Shard;
use crate::spin::Spinner;
use crate::stats::unix_time_ms;

/// Input buffer a connection starts with; it grows for large requests and shrinks back after.
const INPUT_BUFFER_LEN: usize = 16 * 1024;
/// Pending output above which replies are written before the rest of a batch runs, so a long
/// pipeline of large replies never holds more than about this much per connection.
const OUTPUT_FLUSH_LEN: usize = 1024 * 1024;
/// Input buffers larger than this are released once empty.
const INPUT_BUFFER_KEEP_LEN: usize = 1024 * 1024;

/// Serves one accepted connection until it closes.
pub async fn serve(shard: Rc<Shard>, stream: TcpStream, handle: Rc<ClientHandle>) {
    let authenticated = shard.config.borrow().requirepass.is_empty();
    let mut client = Client::new(handle.clone(), authenticated);
    let (bulk_len_max, query_buffer_limit) = {
        let config = shard.config.borrow();
        (config.proto_max_bulk_len, config.client_query_buffer_limit)
    };
    let mut parser = RequestParser::new(Limits {
        bulk_len_max,
        ..Limits::default()
    });
    let mut input = vec![0u8; INPUT_BUFFER_LEN];
    let (mut start, mut end) = (0usize, 0usize);
    let mut out: Vec<u8> = Vec::with_capacity(INPUT_BUFFER_LEN);
    let fd = stream.as_raw_fd();
    let mut stream = Wire::new(&shard, stream);
    let mut spin = shard
        .spin
        .as_ref()
        .filter(|_| stream.ring.is_none())
        .and_then(|spinner| {
            let token = spinner.register(fd).ok()?;
            Some(SpinRead {
                spinner: spinner.as_ref(),
                token,
                drained: false,
            })
        });
    'connection: loop {
        if start == end {
            (start, end) = (0, 0);
            if input.len() > INPUT_BUFFER_KEEP_LEN {
                input = vec![0u8; INPUT_BUFFER_LEN];
            }
        }
        // Room for what the pending request still needs, or at least one more byte.
        let pending_len_wanted = parser.needed_len().max(end - start + 1);
        if start + pending_len_wanted > input.len() {
            input.copy_within(start..end, 0);
            (start, end) = (0, end - start);
            if pending_len_wanted > input.len() {
                if pending_len_wanted > query_buffer_limit {
                    eprintln!(
                        "ember: closing client {} ({}): query buffer limit reached",
                        handle.id, handle.addr
                    );
                    break;
                }
                // Grow by doubling toward what the request needs, never to an announced
                // length at once: the buffer is zero-filled, so sizing it from a bulk header
                // would commit up to proto-max-bulk-len of memory per client for a few bytes
                // sent. Memory stays within twice what actually arrived.
                let needed_len = parser.needed_len();
                let grown = if needed_len >= pending_len_wanted {
                    needed_len.min(input.len() * 2)
                } else {
                    input.len() * 2 // Length not known yet (a header still arriving).
                }
                .min(query_buffer_limit);
                input.resize(grown, 0);
            }
        }
        let read = match read_some(&mut stream, fd, spin.as_mut(), &mut input[end..]).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        end += read;
        shard
            .stats
            .net_input_bytes
            .set(shard.stats.net_input_bytes.get() + read as u64);
        let now_ms = unix_time_ms();
        loop {
            match parser.parse(&input[start..end]) {
                Ok(Some(consumed)) => {
                    let request = parser.args(&input[start..end]);
                    if !request.is_empty() {
                        let args: SmallVec<[&[u8]; 16]> = request.iter().collect();
                        execute(&shard, &mut client, &args, now_ms, &mut out).await;
                    }
                    start += consumed;
                    if client.close_after_reply || handle.killed.get() {
                        break;
                    }
                    if out.len() >= OUTPUT_FLUSH_LEN && !flush(&shard, &mut stream, &mut out).await
                    {
                        break 'connection;
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    encode::error(&mut out, &error.redis_message());
                    shard.stats.record_error(&error.redis_message());
                    flush(&shard, &mut stream, &mut out).await;
                    break 'connection;
                }
            }
        }
        if !flush(&shard, &mut stream, &mut out).await
            || client.close_after_reply
            || handle.killed.get()
        {
            break;
        }
    }
    if let Some(spin) = spin {
        spin.spinner.unregister(fd, spin.token);
    }
    let _ = stream.close().await;
}

/// A connection's socket: on its shard's io_uring when the shard has one (`--io-uring yes`),
/// otherwise the runtime's own stream.
struct Wire {
    stream: TcpStream,
    ring: Option<crate::io::Socket>,
}

impl Wire {
    fn new(shard: &Shard, stream: TcpStream) -> Self {
        let ring = if shard.config.borrow().io_uring {
            crate::io::Socket::open(stream.as_raw_fd())
        } else {
            None
        };
        Self { stream, ring }
    }

    /// Sends what is still queued, then closes the socket.
    async fn close(mut self) -> io::Result<()> {
        if let Some(ring) = self.ring.take() {
            ring.close().await;
        }
        self.stream.close().await
    }
}

/// A connection's place in its shard's busy polling.
struct SpinRead<'a> {
    spinner: &'a Spinner,
    token: usize,
    /// The last read took everything that had arrived (it returned less than it could hold), so any later
    /// arrival raises an epoll edge: the next read may wait for the spinner without trying the socket first.
    drained: bool,
}

/// Reads what has arrived (at least one byte, or 0 at end of stream). With busy polling on and the shard's
/// spinner running, waits for the spinner's word that the socket is readable; otherwise waits through the
/// runtime, and wakes the spinner when data comes. On the shard's io_uring, takes what its multishot receive
/// has gathered.
async fn read_some(
    stream: &mut Wire,
    fd: RawFd,
    spin: Option<&mut SpinRead<'_>>,
    buf: &mut [u8],
) -> io::Result<usize> {
    if let Some(ring) = &stream.ring {
        return ring.read(buf).await;
    }
    let stream = &mut stream.stream;
    let Some(spin) = spin else {
        return stream.read(buf).await;
    };
    loop {
        if spin.drained && spin.spinner.spinning() {
            // Saves the recv that would only say EAGAIN (a system call per request).
            spin.spinner.readable(spin.token).await;
        }
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
        let read =
            unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
        if read >= 0 {
            let read = read as usize;
            spin.drained = read > 0 && read < buf.len();
            return Ok(read);
        }
        let error = io::Error::last_os_error();
        match error.kind() {
            io::ErrorKind::WouldBlock => {}
            io::ErrorKind::Interrupted => continue,
            _ => return Err(error),
        }
        if spin.spinner.spinning() {
            spin.drained = true;
            continue;
        }
        spin.drained = false;
        let read = stream.read(buf).await?;
        spin.spinner.wake();
        return Ok(read);
    }
}

/// Writes pending replies in one send; false when the peer is gone. On the shard's io_uring, the
/// send joins the others of the driver's next turn (`out` is swapped for an empty buffer), and a
/// failure shows at the next flush.
async fn flush(shard: &Shard, stream: &mut Wire, out: &mut Vec<u8>) -> bool {
    if out.is_empty() {
        return true;
    }
    let len = out.len();
    let written = match &stream.ring {
        Some(ring) => ring.send(out).await.is_ok(),
        None => stream.stream.write_all(out).await.is_ok(),
    };
    shard
        .stats
        .net_output_bytes
        .set(shard.stats.net_output_bytes.get() + len as u64);
    out.clear();
    if out.capacity() > OUTPUT_FLUSH_LEN * 2 {
        out.shrink_to(INPUT_BUFFER_LEN);
    }
    written
}

/// Commands that run at once inside MULTI instead of being queued.
const NOT_QUEUED: &[&str] = &["exec", "discard", "multi", "quit", "reset"];

/// Runs one request and appends its reply to `out` (also for the shm/verbs message path).
pub(crate) async fn execute(
    shard: &Rc<Shard>,
    client: &mut Client,
    args: &[&[u8]],
    now_ms: u64,
    out: &mut Vec<u8>,
) {
    let started = Instant::now();
    client.handle.last_interaction_ms.set(now_ms);
    let Some(index) = commands::lookup(args[0]) else {
        client.multi_failed |= client.multi.is_some();
        reply_error(shard, out, &commands::unknown_command_message(args));
        return;
    };
    let spec = &COMMANDS[index];
    client.handle.last_command.set(spec.name);
    if !commands::arity_ok(spec.arity, args.len()) {
        client.multi_failed |= client.multi.is_some();
        shard.stats.record_rejected(index);
        reply_error(shard, out, &commands::arity_message(spec.name));
        return;
    }
    if !client.authenticated && !spec.no_auth {
        shard.stats.record_rejected(index);
        reply_error(shard, out, commands::errors::NOAUTH);
        return;
    }
    if spec.name == "watch" {
        if client.multi.is_some() {
            reply_error(shard, out, "ERR WATCH inside MULTI is not allowed");
        } else {
            watch(shard, client, args, now_ms).await;
            encode::ok(out);
        }
        record(shard, client, index, args, started, client.multi.is_some());
        return;
    }
    if let Some(queue) = client.multi.as_mut() {
        if !NOT_QUEUED.contains(&spec.name) {
            queue.push(args.iter().map(|arg| arg.to_vec()).collect());
            encode::simple(out, b"QUEUED");
            return;
        }
        if spec.name == "exec" {
            exec(shard, client, now_ms, out).await;
            record(shard, client, index, args, started, false);
            return;
        }
    }
    let reply_start = out.len();
    let result = match spec.handler {
        Handler::Keyspace(handler) => match dispatch::route(shard, spec, args) {
            Route::Local => {
                if shard.gate.blocks(client.hold) {
                    shard.gate.enter(client.hold).await;
                }
                dispatch::run_local(
                    shard,
                    handler,
                    client.db,
                    client.protocol,
                    client.no_touch,
                    now_ms,
                    args,
                    out,
                )
            }
            route => {
                dispatch::run_elsewhere(shard, client, spec, route, args, now_ms, out).await;
                Ok(())
            }
        },
        Handler::Connection(handler) => handler(&mut ConnectionCtx { client, shard, out }, args),
        Handler::Cluster(op) => crate::cluster::run(op, shard, client, args, out).await,
        Handler::Inference(op) => crate::commands::ai::run(op, shard, client, args, out).await,
    };
    let failed = match result {
        Err(error) => {
            encode::error(out, &error.0);
            true
        }
        Ok(()) => out.get(reply_start) == Some(&b'-'),
    };
    if failed {
        let line_end = out[reply_start..]
            .iter()
            .position(|&b| b == b'\r')
            .map_or(out.len(), |p| reply_start + p);
        shard
            .stats
            .record_error(&String::from_utf8_lossy(&out[reply_start + 1..line_end]));
    }
    record(shard, client, index, args, started, failed);
}

/// EXEC: every shard is held (in ascending order, as every multi-shard operation takes them)
/// while the queued commands run, so no other client sees the transaction half done.
async fn exec(shard: &Rc<Shard>, client: &mut Client, now_ms: u64, out: &mut Vec<u8>) {
    let queue = client.multi.take().unwrap_or_default();
    // EXEC forgets the watched keys whatever happens, as Redis does.
    let watched = std::mem::take(&mut client.watched);
    if std::mem::take(&mut client.multi_failed) {
        reply_error(
            shard,
            out,
            "EXECABORT Transaction discarded because of previous errors.",
        );
        return;
    }
    let shards: std::collections::BTreeSet<usize> = (0..shard.count()).collect();
    let token = shard.new_hold_token();
    dispatch::hold_all(shard, &shards, token).await;
    if !dispatch::versions_unchanged(shard, &watched, now_ms).await {
        dispatch::release_all(shard, &shards, token).await;
        encode::null_array(out, client.protocol);
        return;
    }
    client.hold = Some(token);
    encode::array_len(out, queue.len());
    for queued in &queue {
        let args: SmallVec<[&[u8]; 16]> = queued.iter().map(Vec::as_slice).collect();
        Box::pin(execute(shard, client, &args, now_ms, out)).await;
    }
    client.hold = None;
    dispatch::release_all(shard, &shards, token).await;
}

/// WATCH key [key ...]: remembers each key's entry version, asked of the shard that owns it.
async fn watch(shard: &Rc<Shard>, client: &mut Client, args: &[&[u8]], now_ms: u64) {
    let keys = &args[1..];
    let versions = dispatch::versions(shard, client.db, keys, now_ms).await;
    for (key, version) in keys.iter().zip(versions) {
        client.watched.push((client.db, key.to_vec(), version));
    }
}

/// Counts one run of command `index` in the statistics, the slow log and the latency monitor.
fn record(
    shard: &Shard,
    client: &Client,
    index: usize,
    args: &[&[u8]],
    started: Instant,
    failed: bool,
) {
    let elapsed_us = started.elapsed().as_micros() as u64;
    shard.stats.record_call(index, elapsed_us, failed);
    let config = shard.config.borrow();
    if config.slowlog_log_slower_than_us >= 0
        && elapsed_us >= config.slowlog_log_slower_than_us as u64
    {
        let name = client.handle.name.borrow().clone();
        shard.stats.slowlog_push(
            args,
            elapsed_us,
            &client.handle.addr,
            &name,
            config.slowlog_max_len,
        );
    }
    shard.stats.latency_sample(
        "command",
        elapsed_us / 1000,
        config.latency_monitor_threshold_ms,
    );
}

fn reply_error(shard: &Shard, out: &mut Vec<u8>, message: &str) {
    encode::error(out, message);
    shard.stats.record_error(message);
}
