//! One client connection: read what arrived, run every whole request in it, write all their
//! replies with one send. Requests never allocate a frame: arguments are slices of the input
//! buffer (up to 16 of them on the stack).

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;

use ember_resp::{Limits, Protocol, ReplySink, RequestParser};
use smallvec::SmallVec;

use crate::client::{Client, ClientHandle, CommandClock};
use crate::commands::exec::{execute, prefetch_ahead, Pipeline};
use crate::commands::pubsub;
use crate::runtime::{AsyncReadExt, AsyncWriteExt};
use crate::shard::Shard;
use crate::spin::Spinner;
use crate::stats::unix_time_ms;
use crate::tls::Stream;

/// Input buffer a connection starts with; it grows for large requests and shrinks back after.
const INPUT_BUFFER_LEN: usize = 16 * 1024;
/// Pending output above which replies are written before the rest of a batch runs, so a long
/// pipeline of large replies never holds more than about this much per connection.
const OUTPUT_FLUSH_LEN: usize = 1024 * 1024;
/// Input buffers larger than this are released once empty (a pipeline of large writes grows
/// one; kept, it counted against `maxmemory` for as long as the connection lived).
const INPUT_BUFFER_KEEP_LEN: usize = 32 * 1024;

/// Serves one accepted connection (past its TLS handshake on `tls-port`) until it closes.
pub async fn serve(shard: Rc<Shard>, stream: Stream, handle: Rc<ClientHandle>) {
    let authenticated = shard.shared.acl.starts_authenticated(&shard);
    let mut client = Client::new(handle.clone(), authenticated);
    let bulk_len_max = shard.config.borrow().proto_max_bulk_len;
    let mut parser = RequestParser::new(Limits {
        bulk_len_max,
        ..Limits::default()
    });
    // Reads ahead of `parser` to prefetch the keys of a batch's next requests.
    let mut lookahead = RequestParser::new(*parser.limits());
    let mut input = vec![0u8; INPUT_BUFFER_LEN];
    let (mut start, mut end) = (0usize, 0usize);
    let mut out = ReplySink::resp(Vec::with_capacity(INPUT_BUFFER_LEN), Protocol::Resp2);
    let mut pipeline = Pipeline::default();
    // Commands queued since MULTI whose arguments are counted in the client's memory, and
    // their bytes (counted as they are queued, so a long transaction costs no rescans); the
    // WATCHed keys and subscriptions counted.
    let (mut multi_counted, mut multi_bytes) = (0usize, 0usize);
    let mut held_counted = (0usize, 0usize);
    let fd = stream.as_raw_fd();
    let mut stream = Wire::new(&shard, stream);
    let mut spin = shard
        .spin
        .as_ref()
        .filter(|_| stream.ring.is_none() && !stream.stream.is_tls())
        .and_then(|spinner| {
            let token = spinner.register(fd).ok()?;
            Some(SpinRead {
                spinner: spinner.as_ref(),
                token,
                drained: false,
            })
        });
    'connection: loop {
        // Taken whatever the state, so that an ask the connection cannot follow (a request half
        // read) does not keep waking it.
        let trim = handle.pushes.take_trim();
        if start == end {
            (start, end) = (0, 0);
            if input.len() > INPUT_BUFFER_KEEP_LEN {
                input = vec![0u8; INPUT_BUFFER_LEN];
            }
            parser.release_large();
            lookahead.release_large();
            if trim && out.pending_len() == 0 {
                // Idle for a while (crate::limits's cron asked): the input and reply buffers
                // go, as Redis frees an idle client's query buffer, and come back with the
                // next request. An idle connection held 40 KB, Redis's 8 KB.
                input = Vec::new();
                *out.bytes_mut() = Vec::new();
                if let Some(ring) = &stream.ring {
                    ring.drop_spare();
                }
            }
        }
        // Room for what the pending request still needs, or at least one more byte (a trimmed
        // buffer is taken back once input comes).
        let pending_len_wanted = parser.needed_len().max(end - start + 1);
        if !input.is_empty() && start + pending_len_wanted > input.len() {
            input.copy_within(start..end, 0);
            (start, end) = (0, end - start);
            if pending_len_wanted > input.len() {
                // Read here, so a CONFIG SET applies to connections already open, as in Redis.
                let query_buffer_limit = shard.config.borrow().client_query_buffer_limit;
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
                // Or at once to what has arrived already, so a large argument is read in one
                // go and its memory counted when it lands (as Redis reads a big argument).
                let needed_len = parser.needed_len();
                let grown = if needed_len >= pending_len_wanted {
                    let arrived = end - start + crate::limits::readable_len(fd);
                    needed_len.min((input.len() * 2).max(arrived))
                } else {
                    input.len() * 2 // Length not known yet (a header still arriving).
                }
                .min(query_buffer_limit);
                input.resize(grown, 0);
            }
        }
        handle
            .limits
            .account(input.len(), end - start, out.pending_len());
        pubsub::attach_socket(&client, stream.ring.as_ref());
        let next = if input.is_empty() {
            // Trimmed: waits for the next bytes with a small buffer of its own.
            let mut probe = [0u8; 512];
            let read = read_some(&mut stream, fd, spin.as_mut(), &mut probe);
            let next = pubsub::next_input(&client, read).await;
            if let Some(Ok(read @ 1..)) = next {
                input = vec![0u8; INPUT_BUFFER_LEN];
                input[..read].copy_from_slice(&probe[..read]);
            }
            next
        } else {
            let read = read_some(&mut stream, fd, spin.as_mut(), &mut input[end..]);
            pubsub::next_input(&client, read).await
        };
        let read = match next {
            Some(Ok(0) | Err(_)) => break,
            Some(Ok(read)) => read,
            None => {
                // Messages were published to this subscriber while it waited.
                pubsub::take_pushes(&client, &mut out);
                if !flush(&shard, &handle, &mut stream, out.bytes_mut()).await
                    || handle.killed.get()
                {
                    break;
                }
                continue;
            }
        };
        end += read;
        if let Some(ring) = &stream.ring {
            // The batch's replies go into the buffer sent last, not a second one.
            ring.reclaim_spare(out.bytes_mut());
        }
        let now_ms = unix_time_ms();
        handle.last_interaction_ms.set(now_ms);
        handle
            .limits
            .account(input.len(), end - start, out.pending_len());
        crate::limits::evict_clients(&shard);
        if handle.killed.get() {
            break;
        }
        shard
            .stats
            .net_input_bytes
            .set(shard.stats.net_input_bytes.get() + read as u64);
        // The batch's commands run one after the other: each one's end is the next one's start.
        client.command_clock = CommandClock::Fresh;
        // Until the batch's last reply is in: its commands may wait for other shards.
        handle.limits.running.set(true);
        // Requests before this offset had their keys prefetched.
        let mut prefetched_to = start;
        loop {
            if start >= prefetched_to {
                prefetched_to =
                    start + prefetch_ahead(&shard, &client, &mut lookahead, &input[start..end]);
            }
            match parser.parse(&input[start..end]) {
                Ok(Some(consumed)) => {
                    let request = parser.args(&input[start..end]);
                    if !request.is_empty() {
                        pubsub::take_pushes(&client, &mut out);
                        // Filled in place: `collect` builds the 264-byte vector apart and
                        // moves it (1.8% of a shard's time under pipelined LPOPs).
                        let mut args: SmallVec<[&[u8]; 16]> = SmallVec::new();
                        args.extend(request.iter());
                        // A command that may block sends the batch's earlier replies first, as
                        // Redis sends a client's pending replies before the client waits: Bull's
                        // workers pipeline several BRPOPLPUSH on one connection, and a job
                        // handed to the first must reach them without waiting for the others'
                        // timeouts. So does any command while CLIENT PAUSE may hold it.
                        if (out.pending_len() > 0 || !pipeline.is_idle())
                            && (crate::commands::may_block(args[0])
                                || shard.shared.pause.active(now_ms))
                        {
                            pipeline.drain(&shard, &mut out).await;
                            if !flush(&shard, &handle, &mut stream, out.bytes_mut()).await {
                                break 'connection;
                            }
                            client.command_clock.restart();
                        }
                        // CLIENT REPLY OFF or SKIP: the reply is cut from the output, so no
                        // reply of this command may still be on its way.
                        client.reply_skip_current = std::mem::take(&mut client.reply_skip_next);
                        let was_off = client.reply_off;
                        let kept_len = if was_off || client.reply_skip_current {
                            pipeline.drain(&shard, &mut out).await;
                            client.command_clock.restart();
                            Some(out.pending_len())
                        } else {
                            None
                        };
                        let pipeline = kept_len.is_none().then_some(&mut pipeline);
                        execute(&shard, &mut client, &args, now_ms, &mut out, pipeline).await;
                        if let Some(kept_len) = kept_len {
                            // (Un)subscribe confirmations are pushes, which Redis
                            // delivers even with replies off.
                            let skipping = std::mem::take(&mut client.reply_skip_current);
                            if (skipping || (was_off && client.reply_off))
                                && !is_subscription_command(args[0])
                            {
                                out.bytes_mut().truncate(kept_len);
                            }
                        }
                        let queued = client.multi.as_deref().unwrap_or_default();
                        let held = (
                            client.watched.len(),
                            handle.subscription_counts.get().iter().sum(),
                        );
                        if queued.len() != multi_counted || held != held_counted {
                            if queued.len() < multi_counted {
                                (multi_counted, multi_bytes) = (0, 0);
                            }
                            for command in &queued[multi_counted..] {
                                multi_bytes += command.iter().map(Vec::len).sum::<usize>();
                            }
                            multi_counted = queued.len();
                            held_counted = held;
                            handle.limits.set_held(multi_bytes, held.0, held.1);
                            crate::limits::evict_clients(&shard);
                        }
                        crate::commands::tracking::after_request(&client, &args);
                        if std::mem::take(&mut client.tracking_reset) {
                            crate::commands::tracking::disable(&shard, &handle).await;
                            client.command_clock.restart();
                        }
                    }
                    start += consumed;
                    if client.close_after_reply || handle.killed.get() {
                        break;
                    }
                    // Over the output buffer limit: closed with nothing more sent, as Redis
                    // drops the replies of a client it closes for its limit.
                    if crate::limits::output_over_limit(&shard, &handle, out.pending_len()) {
                        pipeline.drain(&shard, &mut out).await;
                        break 'connection;
                    }
                    if out.pending_len() >= OUTPUT_FLUSH_LEN {
                        pipeline.drain(&shard, &mut out).await;
                        if !flush(&shard, &handle, &mut stream, out.bytes_mut()).await {
                            break 'connection;
                        }
                        client.command_clock.restart();
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    pipeline.drain(&shard, &mut out).await;
                    out.error(&error.redis_message());
                    shard.stats.record_error(&error.redis_message());
                    flush(&shard, &handle, &mut stream, out.bytes_mut()).await;
                    break 'connection;
                }
            }
        }
        pipeline.drain(&shard, &mut out).await;
        handle.limits.running.set(false);
        pubsub::take_pushes(&client, &mut out);
        if crate::limits::output_over_limit(&shard, &handle, out.pending_len()) {
            break;
        }
        if !flush(&shard, &handle, &mut stream, out.bytes_mut()).await
            || client.close_after_reply
            || handle.killed.get()
        {
            break;
        }
    }
    if let Some(spin) = spin {
        spin.spinner.unregister(fd, spin.token);
    }
    handle.limits.release();
    pubsub::unsubscribe_all(&shard, &mut client);
    crate::commands::monitor::stop(&shard, &mut client);
    crate::commands::tracking::disable(&shard, &handle).await;
    let _ = stream.close().await;
}

/// A connection's socket: on its shard's io_uring when the shard has one (`--io-uring yes`),
/// otherwise (and always for TLS) the runtime's own stream.
struct Wire {
    stream: Stream,
    ring: Option<crate::io::Socket>,
}

impl Wire {
    fn new(shard: &Shard, stream: Stream) -> Self {
        let ring = if shard.config.borrow().io_uring && !stream.is_tls() {
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
/// failure shows at the next flush. Until the send completes, its whole length counts as the
/// client's pending output for its shard's output limit checks: Ember stops reading a client
/// whose replies wait, so the part the kernel took is all that stands for the replies Redis
/// would go on piling up.
async fn flush(shard: &Shard, handle: &ClientHandle, stream: &mut Wire, out: &mut Vec<u8>) -> bool {
    if out.is_empty() {
        return true;
    }
    // The writes these replies acknowledge reach the append-only file first.
    crate::aof::before_reply().await;
    let len = out.len();
    let written = match &stream.ring {
        Some(ring) => {
            handle.limits.flushing(Some(len));
            ring.send(out).await.is_ok()
        }
        None => {
            let mut sent = 0;
            let mut failed = false;
            handle.limits.flushing(Some(len));
            while sent < len {
                match stream.stream.write(&out[sent..]).await {
                    Ok(0) | Err(_) => {
                        failed = true;
                        break;
                    }
                    Ok(written) => sent += written,
                }
                if sent < len {
                    handle.last_interaction_ms.set(unix_time_ms());
                }
            }
            // The flush sends what TLS still holds (a plain socket holds nothing).
            !failed && stream.stream.flush().await.is_ok()
        }
    };
    handle.limits.flushing(None);
    shard
        .stats
        .net_output_bytes
        .set(shard.stats.net_output_bytes.get() + len as u64);
    out.clear();
    if out.capacity() > crate::io::REPLY_BUFFER_KEEP_LEN {
        out.shrink_to(crate::io::REPLY_BUFFER_KEEP_LEN);
    }
    written
}

/// True for the commands whose replies are (un)subscribe confirmations.
fn is_subscription_command(name: &[u8]) -> bool {
    [
        "subscribe",
        "psubscribe",
        "ssubscribe",
        "unsubscribe",
        "punsubscribe",
        "sunsubscribe",
    ]
    .iter()
    .any(|command| name.eq_ignore_ascii_case(command.as_bytes()))
}
