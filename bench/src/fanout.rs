//! `ember-bench fanout`: PUBLISH fan-out to many subscribers.
//!
//! N subscriber connections (RESP2 SUBSCRIBE, each to one of C channels: connection i to
//! channel i mod C) are spread over a few threads, each reading its sockets through one epoll
//! instance; one publisher connection sends M rounds, a round being one PUBLISH to every
//! channel (the C requests of a round written together, then their replies read), every payload
//! carrying the time it was sent. The figures are deliveries per second (messages received by
//! all subscribers, from the first PUBLISH sent to the last message received), the
//! publish-to-receipt latency of every delivery (p50, p99, max) and, given the server's process
//! id, the server's CPU time per delivery (utime + stime from /proc/PID/stat, from just before
//! the first PUBLISH to the last delivery: the subscriptions' set-up is not counted). The run
//! fails when a subscriber misses a message, gets one of another channel, or a message arrives
//! malformed.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::cli::Flags;
use crate::poller::{Interest, Poller};
use crate::procstat;

const HELP: &str = "\
usage: ember-bench fanout [flags]

  --host HOST          server address (127.0.0.1)
  --port PORT          server port (6379)
  --subscribers N      subscriber connections, each subscribed to one channel (10000)
  --channels C         channels; connection i subscribes to channel i mod C (1)
  --threads T          threads reading the subscribers' sockets (4)
  --messages M         rounds published; a round is one PUBLISH per channel, the C requests
                       of a round written together, the next round sent after their replies (20)
  --payload BYTES      message size, at least 16 (64)
  --channel NAME       the channel (fanout); with C > 1 the channels are NAME:0 .. NAME:C-1
  --server-pid PID     the server's process, on this machine: its CPU time per delivery is
                       printed too (utime + stime from /proc/PID/stat, subscriptions excluded)
  --timeout-s S        give up when the deliveries have not all arrived after S seconds (120)
  --json               print the figures as one JSON line too

Prints deliveries/s, publishes/s, publish-to-receipt latency p50/p99/max in microseconds and,
with --server-pid, the server's CPU microseconds per delivery.";

/// What one subscriber thread saw.
struct ThreadFigures {
    received: u64,
    histogram: Histogram<u64>,
    /// Nanoseconds since the run's epoch of the last message received.
    last_ns: u64,
}

/// What every thread of a run shares: the channels, the workload and the meeting points.
struct Run {
    address: String,
    /// Channel names; subscriber connection i listens to `channels[i % channels.len()]`.
    channels: Vec<Vec<u8>>,
    subscribers: usize,
    messages: u64,
    payload: usize,
    epoch: Instant,
    /// Every subscriber thread and the publisher meet here once all subscriptions are
    /// confirmed.
    ready: Barrier,
    stop: AtomicBool,
    timeout: Duration,
}

impl Run {
    /// Subscriber connections on channel `channel` (an index into `channels`).
    fn subscribers_of(&self, channel: usize) -> usize {
        let count = self.channels.len();
        self.subscribers / count + usize::from(channel < self.subscribers % count)
    }
}

/// Runs `ember-bench fanout`.
///
/// # Errors
/// A message for bad flags, a connection or protocol failure, or missing deliveries.
pub fn main(args: &[String]) -> Result<(), String> {
    let flags = Flags::parse(
        args,
        &[
            "host",
            "port",
            "subscribers",
            "channels",
            "threads",
            "messages",
            "payload",
            "channel",
            "server-pid",
            "timeout-s",
        ],
        &["json", "help"],
    )?;
    if flags.switch("help") {
        println!("{HELP}");
        return Ok(());
    }
    let host = flags.text("host").unwrap_or("127.0.0.1").to_string();
    let port: u16 = flags.get_or("port", 6379)?;
    let subscribers: usize = flags.get_or("subscribers", 10_000)?;
    let channel_count: usize = flags.get_or("channels", 1)?;
    let threads: usize = flags.get_or("threads", 4)?;
    let messages: u64 = flags.get_or("messages", 20)?;
    let payload: usize = flags.get_or("payload", 64)?;
    let channel = flags.text("channel").unwrap_or("fanout").to_string();
    let server_pid: Option<u32> = flags.get("server-pid")?;
    let timeout = Duration::from_secs(flags.get_or("timeout-s", 120)?);
    if subscribers == 0 || threads == 0 || messages == 0 || channel_count == 0 {
        return Err(
            "--subscribers, --channels, --threads and --messages must be at least 1".into(),
        );
    }
    if channel_count > subscribers {
        return Err("--channels must not exceed --subscribers (a channel nobody hears)".into());
    }
    if payload < 16 {
        return Err("--payload must be at least 16 (the send time travels in it)".into());
    }
    if let Some(pid) = server_pid {
        procstat::cpu_split_seconds(pid)?;
    }
    let channels = if channel_count == 1 {
        vec![channel.into_bytes()]
    } else {
        (0..channel_count)
            .map(|index| format!("{channel}:{index}").into_bytes())
            .collect()
    };
    let run = Arc::new(Run {
        address: format!("{host}:{port}"),
        channels,
        subscribers,
        messages,
        payload,
        epoch: Instant::now(),
        ready: Barrier::new(threads + 1),
        stop: AtomicBool::new(false),
        timeout,
    });
    let mut handles = Vec::new();
    let mut first = 0;
    for thread in 0..threads {
        let share = subscribers / threads + usize::from(thread < subscribers % threads);
        let run = run.clone();
        handles.push(std::thread::spawn(move || {
            subscriber_thread(&run, first..first + share)
        }));
        first += share;
    }
    let publisher = publish(&run, server_pid);
    if publisher.is_err() {
        run.stop.store(true, Ordering::SeqCst);
    }
    let mut total = Histogram::<u64>::new(3).map_err(|e| e.to_string())?;
    let mut received = 0;
    let mut last_ns = 0;
    let mut failure = None;
    for handle in handles {
        match handle.join() {
            Ok(Ok(figures)) => {
                received += figures.received;
                last_ns = last_ns.max(figures.last_ns);
                total.add(&figures.histogram).map_err(|e| e.to_string())?;
            }
            Ok(Err(message)) => failure = failure.or(Some(message)),
            Err(_) => failure = failure.or(Some("a subscriber thread panicked".to_string())),
        }
    }
    // Read at once: the server has nothing left to do for this run.
    let cpu_after_s = server_pid.map(procstat::cpu_split_seconds).transpose()?;
    let client_after_s = procstat::cpu_seconds(std::process::id())?;
    let machine_after = procstat::machine_ticks()?;
    let published = publisher?;
    if let Some(message) = failure {
        return Err(message);
    }
    let expected = subscribers as u64 * messages;
    if received != expected {
        return Err(format!("{received} deliveries of {expected}"));
    }
    let seconds = (last_ns.saturating_sub(published.first_ns)) as f64 / 1e9;
    let deliveries_per_s = received as f64 / seconds;
    let publishes = messages * channel_count as u64;
    let publishes_per_s =
        publishes as f64 / ((published.end_ns.saturating_sub(published.first_ns)) as f64 / 1e9);
    let p50 = total.value_at_quantile(0.50) as f64 / 1000.0;
    let p99 = total.value_at_quantile(0.99) as f64 / 1000.0;
    let max = total.max() as f64 / 1000.0;
    // (user, system) seconds of the server during the run.
    let server_cpu_s = cpu_after_s
        .zip(published.cpu_before_s)
        .map(|(after, before)| (after.0 - before.0, after.1 - before.1));
    let per_delivery_us = |seconds: f64| seconds * 1e6 / received as f64;
    // This process (publisher and subscribers) over the same window, and the share of all the
    // machine's CPUs that were busy: near 1, the machine, not the server, sets the rate.
    let client_cpu_s = client_after_s - published.client_before_s;
    let machine_busy = (machine_after.0 - published.machine_before.0) as f64
        / (machine_after.1 - published.machine_before.1).max(1) as f64;
    let cpu_text = server_cpu_s.map_or(String::new(), |(user_s, system_s)| {
        format!(
            ", server cpu {:.0} ms ({:.0} user, {:.0} system), {:.3} us/delivery ({:.3} user)",
            (user_s + system_s) * 1e3,
            user_s * 1e3,
            system_s * 1e3,
            per_delivery_us(user_s + system_s),
            per_delivery_us(user_s)
        )
    });
    println!(
        "fanout: {subscribers} subscribers on {channel_count} channel(s), {messages} rounds of \
         {payload} bytes: {deliveries_per_s:.0} deliveries/s, {publishes_per_s:.1} publishes/s, \
         latency p50 {p50:.0} us, p99 {p99:.0} us, max {max:.0} us{cpu_text}, client cpu \
         {:.3} us/delivery, machine {:.0}% busy",
        per_delivery_us(client_cpu_s),
        machine_busy * 100.0
    );
    if flags.switch("json") {
        println!(
            "{}",
            serde_json::json!({
                "subscribers": subscribers,
                "channels": channel_count,
                "messages": messages,
                "payload": payload,
                "deliveries_per_s": deliveries_per_s,
                "publishes_per_s": publishes_per_s,
                "p50_us": p50,
                "p99_us": p99,
                "max_us": max,
                "server_cpu_s": server_cpu_s.map(|(user_s, system_s)| user_s + system_s),
                "server_user_cpu_s": server_cpu_s.map(|(user_s, _)| user_s),
                "server_cpu_us_per_delivery":
                    server_cpu_s.map(|(user_s, system_s)| per_delivery_us(user_s + system_s)),
                "server_user_cpu_us_per_delivery":
                    server_cpu_s.map(|(user_s, _)| per_delivery_us(user_s)),
                "client_cpu_us_per_delivery": per_delivery_us(client_cpu_s),
                "machine_busy": machine_busy,
            })
        );
    }
    Ok(())
}

/// What the publisher saw: when its first request left and its last reply came (ns since the
/// run's epoch), and the server's CPU seconds (user, system), this process's CPU seconds and the
/// machine's (busy, all) ticks just before the first request.
struct Published {
    first_ns: u64,
    end_ns: u64,
    cpu_before_s: Option<(f64, f64)>,
    client_before_s: f64,
    machine_before: (u64, u64),
}

/// The publisher: waits until every subscriber is confirmed, then sends the rounds, each one
/// PUBLISH per channel written together, and checks every reply's count of receivers.
fn publish(run: &Run, server_pid: Option<u32>) -> Result<Published, String> {
    let connected = TcpStream::connect(&run.address);
    // Meet the subscriber threads even when the connection failed, so none waits forever.
    run.ready.wait();
    let mut stream = connected.map_err(|e| format!("publisher: connect {}: {e}", run.address))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let cpu_before_s = server_pid.map(procstat::cpu_split_seconds).transpose()?;
    let client_before_s = procstat::cpu_seconds(std::process::id())?;
    let machine_before = procstat::machine_ticks()?;
    let mut buffer = Vec::new();
    let mut request = Vec::with_capacity(run.channels.len() * (run.payload + 64));
    let mut first_ns = None;
    for _ in 0..run.messages {
        let sent_ns = run.epoch.elapsed().as_nanos() as u64;
        first_ns.get_or_insert(sent_ns);
        let mut body = format!("{sent_ns:016x}").into_bytes();
        body.resize(run.payload, b'.');
        request.clear();
        for channel in &run.channels {
            request.extend_from_slice(b"*3\r\n$7\r\nPUBLISH\r\n");
            bulk(&mut request, channel);
            bulk(&mut request, &body);
        }
        stream.write_all(&request).map_err(|e| e.to_string())?;
        for index in 0..run.channels.len() {
            let reply = read_line(&mut stream, &mut buffer)?;
            let receivers: usize = reply
                .strip_prefix(':')
                .and_then(|count| count.parse().ok())
                .ok_or_else(|| format!("PUBLISH answered {reply:?}"))?;
            let expected = run.subscribers_of(index);
            if receivers != expected {
                return Err(format!(
                    "PUBLISH reached {receivers} subscribers of {expected}"
                ));
            }
        }
    }
    let end_ns = run.epoch.elapsed().as_nanos() as u64;
    Ok(Published {
        first_ns: first_ns.unwrap_or(end_ns),
        end_ns,
        cpu_before_s,
        client_before_s,
        machine_before,
    })
}

/// One line of a reply (without its CRLF), read from a blocking stream; `buffer` keeps what
/// follows it.
fn read_line(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Result<String, String> {
    loop {
        if let Some(end) = buffer.windows(2).position(|pair| pair == b"\r\n") {
            let line = String::from_utf8_lossy(&buffer[..end]).into_owned();
            buffer.drain(..end + 2);
            return Ok(line);
        }
        let mut chunk = [0u8; 4096];
        let read = stream.read(&mut chunk).map_err(|e| e.to_string())?;
        if read == 0 {
            return Err("the server closed the connection".into());
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
}

fn bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(format!("${}\r\n", bytes.len()).as_bytes());
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

/// One subscriber connection's socket, its channel and unread bytes.
struct Subscriber {
    stream: TcpStream,
    /// Index of its channel in [`Run::channels`].
    channel: usize,
    buffer: Vec<u8>,
    received: u64,
}

/// Subscribes the connections numbered `numbers`, meets the publisher, then reads until each
/// connection got one message per round.
fn subscriber_thread(run: &Run, numbers: Range<usize>) -> Result<ThreadFigures, String> {
    let count = numbers.len();
    let subscribed = subscribe_all(run, numbers);
    run.ready.wait();
    let mut subscribers = subscribed?;
    let mut poller = Poller::new().map_err(|e| e.to_string())?;
    for (token, subscriber) in subscribers.iter().enumerate() {
        subscriber
            .stream
            .set_nonblocking(true)
            .map_err(|e| e.to_string())?;
        poller
            .add(subscriber.stream.as_raw_fd(), token as u64, Interest::Read)
            .map_err(|e| e.to_string())?;
    }
    let mut figures = ThreadFigures {
        received: 0,
        histogram: Histogram::new(3).map_err(|e| e.to_string())?,
        last_ns: 0,
    };
    let expected = count as u64 * run.messages;
    let deadline = Instant::now() + run.timeout;
    let mut ready_list = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    while figures.received < expected {
        if run.stop.load(Ordering::Relaxed) {
            return Err("the publisher failed".into());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "timed out with {} of {expected} deliveries on one thread",
                figures.received
            ));
        }
        poller
            .wait(&mut ready_list, 100)
            .map_err(|e| e.to_string())?;
        for readiness in &ready_list {
            let subscriber = &mut subscribers[readiness.token as usize];
            loop {
                match subscriber.stream.read(&mut chunk) {
                    Ok(0) => return Err("the server closed a subscriber's connection".into()),
                    Ok(read) => subscriber.buffer.extend_from_slice(&chunk[..read]),
                    Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(error) => return Err(error.to_string()),
                }
            }
            let now_ns = run.epoch.elapsed().as_nanos() as u64;
            let mut at = 0;
            while let Some((items, next)) = parse_array(&subscriber.buffer, at)? {
                at = next;
                let [kind, channel, body] = items.as_slice() else {
                    return Err(format!("a push of {} elements", items.len()));
                };
                if subscriber.buffer[kind.clone()] != *b"message" {
                    return Err("a push that is not a message".into());
                }
                if subscriber.buffer[channel.clone()] != *run.channels[subscriber.channel] {
                    return Err("a message of a channel the connection did not subscribe to".into());
                }
                if body.len() < 16 {
                    return Err("a message shorter than its send time".into());
                }
                let stamp = std::str::from_utf8(&subscriber.buffer[body.start..body.start + 16])
                    .ok()
                    .and_then(|hex| u64::from_str_radix(hex, 16).ok())
                    .ok_or("a message without its send time")?;
                figures
                    .histogram
                    .record(now_ns.saturating_sub(stamp).max(1))
                    .map_err(|e| e.to_string())?;
                subscriber.received += 1;
                figures.received += 1;
                figures.last_ns = now_ns;
            }
            subscriber.buffer.drain(..at);
            if subscriber.received > run.messages {
                return Err("a subscriber got more messages than were published".into());
            }
        }
    }
    Ok(figures)
}

/// Opens the connections numbered `numbers`, each subscribed to its channel and confirmed.
fn subscribe_all(run: &Run, numbers: Range<usize>) -> Result<Vec<Subscriber>, String> {
    let mut subscribers = Vec::with_capacity(numbers.len());
    let mut request = Vec::new();
    for number in numbers {
        let channel = number % run.channels.len();
        let mut stream = TcpStream::connect(&run.address)
            .map_err(|e| format!("connect {}: {e}", run.address))?;
        request.clear();
        request.extend_from_slice(b"*2\r\n$9\r\nSUBSCRIBE\r\n");
        bulk(&mut request, &run.channels[channel]);
        stream.write_all(&request).map_err(|e| e.to_string())?;
        subscribers.push(Subscriber {
            stream,
            channel,
            buffer: Vec::new(),
            received: 0,
        });
    }
    for subscriber in &mut subscribers {
        let mut chunk = [0u8; 256];
        loop {
            if let Some((items, next)) = parse_array(&subscriber.buffer, 0)? {
                if items.len() != 3 || subscriber.buffer[items[0].clone()] != *b"subscribe" {
                    return Err("SUBSCRIBE was not confirmed".into());
                }
                subscriber.buffer.drain(..next);
                break;
            }
            let read = subscriber
                .stream
                .read(&mut chunk)
                .map_err(|e| e.to_string())?;
            if read == 0 {
                return Err("the server closed a subscriber's connection".into());
            }
            subscriber.buffer.extend_from_slice(&chunk[..read]);
        }
    }
    Ok(subscribers)
}

/// A RESP2 array of bulk strings and integers starting at `buffer[at]`: the byte ranges of its
/// elements (an integer's digits) and the offset past it; `None` when it is not complete yet.
fn parse_array(
    buffer: &[u8],
    at: usize,
) -> Result<Option<(Vec<std::ops::Range<usize>>, usize)>, String> {
    let Some((header, mut at)) = line(buffer, at) else {
        return Ok(None);
    };
    let count = header
        .strip_prefix(b"*")
        .and_then(number)
        .ok_or("a push that is not an array")?;
    let mut items = Vec::with_capacity(count);
    for _ in 0..count {
        let Some((head, next)) = line(buffer, at) else {
            return Ok(None);
        };
        match head.first() {
            Some(b':') => {
                items.push(next - head.len() - 1..next - 2);
                at = next;
            }
            Some(b'$') => {
                let len = number(&head[1..]).ok_or("a malformed bulk length")?;
                if buffer.len() < next + len + 2 {
                    return Ok(None);
                }
                items.push(next..next + len);
                at = next + len + 2;
            }
            _ => return Err("an array element that is not a bulk or an integer".into()),
        }
    }
    Ok(Some((items, at)))
}

/// The line starting at `at` (without CRLF) and the offset past its CRLF.
fn line(buffer: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let rest = buffer.get(at..)?;
    let end = rest.windows(2).position(|pair| pair == b"\r\n")?;
    Some((&rest[..end], at + end + 2))
}

fn number(text: &[u8]) -> Option<usize> {
    std::str::from_utf8(text).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::parse_array;

    #[test]
    fn parses_pushes_and_waits_for_the_rest() {
        let frame = b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n";
        let (items, next) = parse_array(frame, 0).unwrap().unwrap();
        assert_eq!(&frame[items[0].clone()], b"message");
        assert_eq!(&frame[items[2].clone()], b"hello");
        let (items, end) = parse_array(frame, next).unwrap().unwrap();
        assert_eq!(&frame[items[0].clone()], b"subscribe");
        assert_eq!(&frame[items[2].clone()], b"1");
        assert_eq!(end, frame.len());
        for cut in 1..next {
            assert!(
                parse_array(&frame[..cut], 0).unwrap().is_none(),
                "cut at {cut}"
            );
        }
        assert!(parse_array(b"+OK\r\n", 0).is_err());
    }
}
