//! `ember-bench ceiling-server`: what a server that does no work reaches on this machine.
//!
//! A RESP server that stores nothing: every request gets a fixed reply of the right shape (GET a
//! bulk of `--value-size` bytes, MGET an array of them, SET and MSET `+OK`, EVALSHA and the
//! counters an integer). Each of its `--threads` threads runs the loop Redis runs (one
//! `epoll_wait`, one `read` per readable connection, then one `write` per connection with
//! replies) on a listener of its own (`SO_REUSEPORT`, so the kernel spreads the connections).
//! No hash, no lookup, no hop between threads: the rest of a request's cost is the sockets',
//! the kernel's and the client's. A real server can pass it only where the client is the limit
//! and the server makes the client's side cheaper (replies that arrive in larger batches, or a
//! server that never sleeps, so the client's sends wake no one: `--spin yes`). Accepts (and
//! ignores) Ember's and Redis's other flags, so the bench scripts start it where they start a
//! server.
//!
//! With `--io-uring yes` each thread runs a ring instead: a receive in flight on every
//! connection, the sends that a turn's replies need queued behind them, and one
//! `io_uring_enter` a turn that submits them all and waits for the next completion (the fewest
//! system calls a loop can make).
//!
//!   ember-bench ceiling-server --port 7000 [--threads N] [--value-size 3] [--bind 127.0.0.1]
//!                              [--io-uring yes] [--spin yes]
//!
//! `--spin yes` (epoll only) never sleeps: a client's send then has no thread to wake, the
//! cheapest a server can make the client's side (and a whole core spent on it).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};

const USAGE: &str = "usage: ember-bench ceiling-server --port P [--threads N] [--value-size B] \
                     [--bind ADDRESS] [--io-uring yes|no] [--spin yes|no] \
                     (other flags are accepted and ignored)";

/// Bytes one `read` takes at most (Redis reads 16 KiB; a larger read never costs more calls).
const READ_SIZE: usize = 64 * 1024;

struct Settings {
    port: u16,
    threads: usize,
    bind: String,
    /// GET's reply, encoded once.
    bulk: Vec<u8>,
    value_size: usize,
    ring: bool,
    spin: bool,
}

fn parse(args: &[String]) -> Result<Settings, String> {
    let mut port = None;
    let mut threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut bind = "127.0.0.1".to_string();
    let mut value_size = 3usize;
    let mut ring = false;
    let mut spin = false;
    let mut index = 0;
    while index < args.len() {
        let flag = args[index].as_str();
        let value = args.get(index + 1).filter(|next| !next.starts_with("--"));
        let number = |what: &str| -> Result<usize, String> {
            value
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{what} needs a number\n{USAGE}"))
        };
        match flag {
            "--port" => port = Some(number("--port")? as u16),
            "--threads" => threads = number("--threads")?.max(1),
            "--value-size" => value_size = number("--value-size")?,
            "--bind" => bind = value.cloned().unwrap_or(bind),
            "--io-uring" => ring = value.is_some_and(|v| v == "yes"),
            "--spin" => spin = value.is_some_and(|v| v == "yes"),
            "--help" | "-h" => return Err(USAGE.to_string()),
            _ if !flag.starts_with("--") => return Err(format!("unexpected '{flag}'\n{USAGE}")),
            _ => {}
        }
        index += if value.is_some() { 2 } else { 1 };
    }
    let port = port.ok_or_else(|| format!("--port is required\n{USAGE}"))?;
    Ok(Settings {
        port,
        threads,
        bind,
        bulk: encode_bulk(&vec![b'x'; value_size]),
        value_size,
        ring,
        spin,
    })
}

/// Runs the server until the process is killed.
pub fn main(args: &[String]) -> Result<(), String> {
    let settings = parse(args)?;
    let address: std::net::SocketAddrV4 = format!("{}:{}", settings.bind, settings.port)
        .parse()
        .map_err(|error| format!("--bind: {error}"))?;
    let listeners = (0..settings.threads)
        .map(|_| reuse_port_listener(address))
        .collect::<io::Result<Vec<_>>>()
        .map_err(|error| format!("cannot listen on {address}: {error}"))?;
    eprintln!(
        "ceiling-server: {} thread(s) on {address}, GET replies {} bytes, {}",
        settings.threads,
        settings.value_size,
        if settings.ring { "io_uring" } else { "epoll" }
    );
    std::thread::scope(|scope| {
        for (index, listener) in listeners.into_iter().enumerate() {
            let bulk = &settings.bulk;
            let ring = settings.ring;
            let spin = settings.spin;
            std::thread::Builder::new()
                .name(format!("ceiling-{index}"))
                .spawn_scoped(scope, move || {
                    let served = if ring {
                        serve_ring(listener, bulk)
                    } else {
                        serve(listener, bulk, spin)
                    };
                    if let Err(error) = served {
                        eprintln!("ceiling-server thread {index}: {error}");
                        std::process::exit(1);
                    }
                })
                .expect("spawn a server thread");
        }
    });
    Ok(())
}

/// A non-blocking listener with `SO_REUSEPORT`, so every thread accepts on the same port.
fn reuse_port_listener(address: std::net::SocketAddrV4) -> io::Result<TcpListener> {
    // SAFETY: plain socket calls on a descriptor this function owns until it is wrapped.
    unsafe {
        let fd = libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        );
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let listener = TcpListener::from_raw_fd(fd);
        let one: libc::c_int = 1;
        for option in [libc::SO_REUSEADDR, libc::SO_REUSEPORT] {
            let set = libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                option,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
            if set != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        let sockaddr = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: address.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*address.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        let bound = libc::bind(
            fd,
            (&sockaddr as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        if bound != 0 || libc::listen(fd, 1024) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(listener)
    }
}

struct Connection {
    stream: TcpStream,
    input: Vec<u8>,
    output: Vec<u8>,
    /// Registered for writability: the last write left replies unsent.
    waiting_to_write: bool,
}

/// One thread's loop: accept, read, answer, write, as Redis's event loop does; with `spin` it
/// never sleeps (`epoll_wait` with no timeout), so a client's send never has a sleeping
/// thread to wake.
fn serve(listener: TcpListener, bulk: &[u8], spin: bool) -> io::Result<()> {
    // SAFETY: epoll calls on descriptors this thread owns; `events` outlives each wait.
    let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if epoll < 0 {
        return Err(io::Error::last_os_error());
    }
    let listener_fd = listener.as_raw_fd();
    control(
        epoll,
        libc::EPOLL_CTL_ADD,
        listener_fd,
        libc::EPOLLIN as u32,
    )?;
    let mut connections: HashMap<RawFd, Connection> = HashMap::new();
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let mut buffer = vec![0u8; READ_SIZE];
    let mut pending_writes: Vec<RawFd> = Vec::new();
    let timeout = if spin { 0 } else { -1 };
    loop {
        // SAFETY: see above.
        let ready =
            unsafe { libc::epoll_wait(epoll, events.as_mut_ptr(), events.len() as i32, timeout) };
        if ready < 0 {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(error);
        }
        for event in &events[..ready as usize] {
            let fd = event.u64 as RawFd;
            if fd == listener_fd {
                while let Ok((stream, _)) = listener.accept() {
                    stream.set_nonblocking(true)?;
                    stream.set_nodelay(true)?;
                    let fd = stream.as_raw_fd();
                    control(epoll, libc::EPOLL_CTL_ADD, fd, libc::EPOLLIN as u32)?;
                    connections.insert(
                        fd,
                        Connection {
                            stream,
                            input: Vec::new(),
                            output: Vec::new(),
                            waiting_to_write: false,
                        },
                    );
                }
                continue;
            }
            let Some(connection) = connections.get_mut(&fd) else {
                continue;
            };
            let mut open = true;
            if event.events & libc::EPOLLIN as u32 != 0 {
                match connection.stream.read(&mut buffer) {
                    Ok(0) => open = false,
                    Ok(read) => {
                        connection.input.extend_from_slice(&buffer[..read]);
                        let used = answer(&connection.input, &mut connection.output, bulk);
                        connection.input.drain(..used);
                    }
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => open = false,
                }
            }
            if !open {
                // Closing the only descriptor of a socket takes it out of the epoll set.
                connections.remove(&fd);
            } else if !connection.output.is_empty()
                && (!connection.waiting_to_write || event.events & libc::EPOLLOUT as u32 != 0)
            {
                pending_writes.push(fd);
            }
        }
        // Redis's `beforeSleep`: every connection's replies are written after all reads.
        for fd in pending_writes.drain(..) {
            let Some(connection) = connections.get_mut(&fd) else {
                continue;
            };
            let mut open = true;
            match connection.stream.write(&connection.output) {
                Ok(written) => {
                    connection.output.drain(..written);
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => open = false,
            }
            let pending = !connection.output.is_empty();
            if open && pending != connection.waiting_to_write {
                let interest =
                    libc::EPOLLIN as u32 | if pending { libc::EPOLLOUT as u32 } else { 0 };
                control(epoll, libc::EPOLL_CTL_MOD, fd, interest)?;
                connection.waiting_to_write = pending;
            }
            if !open {
                connections.remove(&fd);
            }
        }
    }
}

fn control(epoll: RawFd, operation: libc::c_int, fd: RawFd, interest: u32) -> io::Result<()> {
    let mut event = libc::epoll_event {
        events: interest,
        u64: fd as u64,
    };
    // SAFETY: `event` lives across the call; the kernel copies it.
    if unsafe { libc::epoll_ctl(epoll, operation, fd, &mut event) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// What a completion finished, in the low bits of its user data (the connection's slot above).
const ACCEPT: u64 = 0;
const RECEIVE: u64 = 1;
const SEND: u64 = 2;

struct RingConnection {
    stream: TcpStream,
    /// The receive's buffer: boxed, so it stays put while the kernel fills it.
    buffer: Box<[u8]>,
    input: Vec<u8>,
    /// Replies not yet handed to a send.
    output: Vec<u8>,
    /// The bytes of the send in flight (not touched until it completes).
    sending: Vec<u8>,
    in_flight: bool,
    receiving: bool,
    closed: bool,
}

/// One thread's ring loop (`--io-uring yes`).
fn serve_ring(listener: TcpListener, bulk: &[u8]) -> io::Result<()> {
    use io_uring::{opcode, types, IoUring};
    let mut ring: IoUring = IoUring::builder()
        .setup_single_issuer()
        .setup_coop_taskrun()
        .build(4096)?;
    let listener_fd = types::Fd(listener.as_raw_fd());
    let mut slots: Vec<Option<RingConnection>> = Vec::new();
    let mut queued: Vec<io_uring::squeue::Entry> = Vec::new();
    let accept = || {
        opcode::Accept::new(listener_fd, std::ptr::null_mut(), std::ptr::null_mut())
            .build()
            .user_data(ACCEPT)
    };
    queued.push(accept());
    let receive = |slot: usize, connection: &mut RingConnection| {
        connection.receiving = true;
        opcode::Recv::new(
            types::Fd(connection.stream.as_raw_fd()),
            connection.buffer.as_mut_ptr(),
            connection.buffer.len() as u32,
        )
        .build()
        .user_data((slot as u64) << 2 | RECEIVE)
    };
    let send = |slot: usize, connection: &mut RingConnection| {
        std::mem::swap(&mut connection.sending, &mut connection.output);
        connection.in_flight = true;
        opcode::Send::new(
            types::Fd(connection.stream.as_raw_fd()),
            connection.sending.as_ptr(),
            connection.sending.len() as u32,
        )
        .build()
        .user_data((slot as u64) << 2 | SEND)
    };
    loop {
        for entry in queued.drain(..) {
            // SAFETY: every buffer an entry names lives in its connection until the entry
            // completes (a closed connection is dropped only when neither its receive nor its
            // send is in flight).
            while unsafe { ring.submission().push(&entry) }.is_err() {
                ring.submit()?;
            }
        }
        match ring.submit_and_wait(1) {
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        }
        // The completions are read in place: the loop below only queues entries for the next
        // turn, it never touches the ring.
        for entry in ring.completion() {
            let (data, result) = (entry.user_data(), entry.result());
            let slot = (data >> 2) as usize;
            match data & 3 {
                ACCEPT => {
                    queued.push(accept());
                    if result < 0 {
                        continue;
                    }
                    // SAFETY: the kernel gave this thread a new descriptor it now owns.
                    let stream = unsafe { TcpStream::from_raw_fd(result) };
                    stream.set_nodelay(true)?;
                    let mut connection = RingConnection {
                        stream,
                        buffer: vec![0u8; READ_SIZE].into_boxed_slice(),
                        input: Vec::new(),
                        output: Vec::new(),
                        sending: Vec::new(),
                        in_flight: false,
                        receiving: false,
                        closed: false,
                    };
                    let slot = match slots.iter().position(Option::is_none) {
                        Some(free) => free,
                        None => {
                            slots.push(None);
                            slots.len() - 1
                        }
                    };
                    queued.push(receive(slot, &mut connection));
                    slots[slot] = Some(connection);
                }
                RECEIVE => {
                    let Some(connection) = slots[slot].as_mut() else {
                        continue;
                    };
                    connection.receiving = false;
                    if result <= 0 || connection.closed {
                        connection.closed = true;
                    } else {
                        let read = result as usize;
                        connection
                            .input
                            .extend_from_slice(&connection.buffer[..read]);
                        let used = answer(&connection.input, &mut connection.output, bulk);
                        connection.input.drain(..used);
                        queued.push(receive(slot, connection));
                        if !connection.in_flight && !connection.output.is_empty() {
                            queued.push(send(slot, connection));
                        }
                    }
                }
                _ => {
                    let Some(connection) = slots[slot].as_mut() else {
                        continue;
                    };
                    connection.in_flight = false;
                    if result < 0 {
                        connection.closed = true;
                    } else {
                        connection.sending.drain(..result as usize);
                        if !connection.sending.is_empty() {
                            // A short send: the rest goes first, then what came meanwhile.
                            let rest = std::mem::take(&mut connection.sending);
                            let newer = std::mem::replace(&mut connection.output, rest);
                            connection.output.extend_from_slice(&newer);
                        }
                        if !connection.closed && !connection.output.is_empty() {
                            queued.push(send(slot, connection));
                        }
                    }
                }
            }
            if slots[slot]
                .as_ref()
                .is_some_and(|c| c.closed && !c.in_flight && !c.receiving)
                && data & 3 != ACCEPT
            {
                slots[slot] = None;
            }
        }
    }
}

/// Answers every whole request at the start of `input` into `output`; returns the bytes used.
fn answer(input: &[u8], output: &mut Vec<u8>, bulk: &[u8]) -> usize {
    let mut used = 0;
    while let Some((name, count, length)) = request(&input[used..]) {
        reply(name, count, output, bulk);
        used += length;
    }
    used
}

/// The first whole RESP request of `input`: its command name, argument count (the name
/// included) and length in bytes; `None` until it has all arrived.
fn request(input: &[u8]) -> Option<(&[u8], usize, usize)> {
    let (count, mut at) = line_number(input, b'*')?;
    let mut name: &[u8] = &[];
    for index in 0..count {
        let (length, start) = line_number(&input[at..], b'$')?;
        let start = at + start;
        let end = start + length;
        if input.len() < end + 2 {
            return None;
        }
        if index == 0 {
            name = &input[start..end];
        }
        at = end + 2;
    }
    Some((name, count, at))
}

/// `<marker><digits>\r\n` at the start of `input`: the number and the bytes it took.
fn line_number(input: &[u8], marker: u8) -> Option<(usize, usize)> {
    if input.first() != Some(&marker) {
        return None;
    }
    let end = input.iter().position(|&byte| byte == b'\r')?;
    if input.get(end + 1) != Some(&b'\n') {
        return None;
    }
    let number = std::str::from_utf8(&input[1..end]).ok()?.parse().ok()?;
    Some((number, end + 2))
}

/// A value as a RESP bulk string, encoded once at start: every GET copies these bytes.
fn encode_bulk(value: &[u8]) -> Vec<u8> {
    let mut bulk = format!("${}\r\n", value.len()).into_bytes();
    bulk.extend_from_slice(value);
    bulk.extend_from_slice(b"\r\n");
    bulk
}

/// Appends the reply to one request, allocating nothing but `output`'s growth (a ceiling that
/// allocated per request would charge that to the sockets).
fn reply(name: &[u8], count: usize, output: &mut Vec<u8>, bulk: &[u8]) {
    let named = |names: &[&[u8]]| names.iter().any(|n| n.eq_ignore_ascii_case(name));
    if named(&[b"GET", b"LPOP", b"RPOP", b"HGET"]) {
        output.extend_from_slice(bulk);
    } else if named(&[b"MGET"]) {
        // Writing to a Vec cannot fail.
        let _ = write!(output, "*{}\r\n", count - 1);
        for _ in 1..count {
            output.extend_from_slice(bulk);
        }
    } else if named(&[b"PING"]) {
        output.extend_from_slice(b"+PONG\r\n");
    } else if named(&[b"CONFIG"]) {
        // redis-benchmark asks for `save` and `appendonly` at start: both off.
        output.extend_from_slice(b"*2\r\n$4\r\nsave\r\n$0\r\n\r\n");
    } else if named(&[
        b"EVALSHA", b"EVAL", b"INCR", b"LPUSH", b"RPUSH", b"HSET", b"SADD", b"ZADD", b"DEL",
        b"PUBLISH",
    ]) {
        output.extend_from_slice(b":1\r\n");
    } else {
        output.extend_from_slice(b"+OK\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_whole_requests_and_waits_for_the_rest() {
        let mut output = Vec::new();
        let input: &[u8] = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n\
            *3\r\n$4\r\nMGET\r\n$1\r\na\r\n$1\r\nb\r\n*1\r\n$4\r\nPI";
        let used = answer(input, &mut output, &encode_bulk(b"vvv"));
        assert_eq!(output, b"$3\r\nvvv\r\n*2\r\n$3\r\nvvv\r\n$3\r\nvvv\r\n");
        assert_eq!(&input[used..], b"*1\r\n$4\r\nPI");
    }

    #[test]
    fn ignores_the_servers_other_flags() {
        let args: Vec<String> = [
            "--port",
            "7000",
            "--busy-poll-us",
            "0",
            "--save",
            "",
            "--threads",
            "2",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let settings = parse(&args).unwrap();
        assert_eq!((settings.port, settings.threads), (7000, 2));
    }
}
