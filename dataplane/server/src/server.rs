//! Start-up: the shards, each with its listeners, its mesh receivers and its expiry task.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::ClientHandle;
use crate::config::Config;
use crate::runtime::{self, MeshReceiver, MeshSenders, TcpListener};
use crate::shard::{MeshMessage, Shard, Shared};
use crate::stats::unix_time_ms;

/// Messages waiting in the channel between two shards; past that they wait in the sender's
/// overflow queue (`shard::Mesh`), and nothing that sends ever waits.
const MESH_CHANNEL_CAPACITY: usize = 4096;
/// How often the mesh watchdog looks for requests that waited too long: a tenth of a second
/// keeps a stalled shard's callers waiting at most that much beyond the timeout.
const MESH_WATCHDOG_PERIOD: Duration = Duration::from_millis(100);
/// Longest shard 0 waits for the other shards' listeners before it announces "ready".
const LISTEN_WAIT_MAX: Duration = Duration::from_secs(5);
/// Share of the background task queue (expiry) against the connections' 1000.
const BACKGROUND_SHARES: usize = 100;
/// Keys the active expiry removes between two checks of its time budget.
const EXPIRE_KEYS_PER_SLICE: usize = 64;
/// Time one expiry tick may spend: Redis's slow cycle blocks its thread for 25 ms of every
/// 100 ms; Ember's ticks are 2 ms, and a tick that runs out of budget rests
/// ([`expire_rest`]) so that expiry keeps to Redis's share of the shard's time, instead of
/// waiting a whole period. `active-expire-effort` raises both ([`expire_budget`]).
const EXPIRE_BUDGET: Duration = Duration::from_millis(2);

/// Percent of a shard's time the active expiry takes while keys stay due, at
/// `active-expire-effort` `effort` (1..=10): Redis's `ACTIVE_EXPIRE_CYCLE_SLOW_TIME_PERC`, 25,
/// plus 2 points per effort step above 1 (expire.c).
fn expire_share_percent(effort: i64) -> u32 {
    25 + 2 * (effort.clamp(1, 10) as u32 - 1)
}

/// How long the expiry rests after a tick that ran out of budget having taken `spent`, so that
/// it takes at most [`expire_share_percent`] of the shard's time and requests get the rest.
/// Resting 1 ms per 2 ms of work (as before) let a storm of 10 million keys expiring together
/// take two thirds of each shard, and clients waiting on a tick fell seconds behind
/// (bench/scripts/expiry-storm.py; docs/session-notes/2026-12-03e/expiry.md).
fn expire_rest(effort: i64, spent: Duration) -> Duration {
    let share = expire_share_percent(effort);
    (spent * (100 - share) / share).max(Duration::from_millis(1))
}

/// One expiry tick's time budget at `active-expire-effort` `effort` (1..=10): Redis adds 2
/// points to its 25% CPU share per effort step above 1 (expire.c), so effort 10 allows 43/25 of
/// effort 1's budget. The work stays bounded per tick whatever the effort.
fn expire_budget(effort: i64) -> Duration {
    let steps = effort.clamp(1, 10) as u32 - 1;
    EXPIRE_BUDGET * (25 + 2 * steps) / 25
}
/// Hash keys with field TTLs one tick visits, and fields it looks at in each: like the key
/// slice, a bound on one tick's work (Redis 7.4 bounds its field pass by a count too).
const FIELD_EXPIRE_KEYS_PER_TICK: usize = 64;
const FIELD_EXPIRE_FIELDS_PER_KEY: usize = 64;

/// Runs Ember with `config` until SHUTDOWN.
///
/// # Errors
/// When a shard cannot start or an address cannot be bound.
pub fn run(config: Config) -> std::io::Result<()> {
    let cpus = shard_cpus(&config.server_cpulist)?;
    let shard_count = match config.threads {
        0 if cpus.is_empty() => online_cpus().len().max(1),
        0 => cpus.len(),
        threads => threads,
    };
    let hardware = crate::hardware_summary();
    let started_at_s = unix_time_ms() / 1000;
    let persistence = crate::persistence::Persistence::new(started_at_s);
    crate::persistence::read_at_start(&config, &persistence, shard_count)
        .map_err(std::io::Error::other)?;
    let shared = Arc::new(Shared {
        connected_clients: AtomicUsize::new(0),
        next_client_id: AtomicU64::new(1),
        started_at_s,
        persistence,
        port: AtomicUsize::new(0),
        listening: AtomicUsize::new(0),
        shard_count,
        hardware,
        multi_writes: Default::default(),
        scripts: Arc::new(crate::scripting::Registry::new()),
        acl: crate::commands::acl::Users::from_config(&config).map_err(|error| {
            std::io::Error::other(format!("Aborting startup because of ACL errors: {error}"))
        })?,
        blocked_clients: Default::default(),
        pause: Default::default(),
        registrations_in_flight: (0..shard_count).map(|_| AtomicUsize::new(0)).collect(),
        shard_keys: (0..shard_count).map(|_| AtomicUsize::new(0)).collect(),
        shard_net_bytes: (0..shard_count)
            .map(|_| crate::memory::PublishedCount::default())
            .collect(),
        tracking_clients: Default::default(),
        gone_redirect_targets: Default::default(),
        tracking_keys: Default::default(),
        tracking_items: Default::default(),
        protection: Default::default(),
        tier_versions: crate::shard::local_tier::Versions::new(shard_count),
        monitors: crate::commands::monitor::Watchers::new(shard_count),
    });
    // Recorded again once every shard listens (`shard_main`); a figure before then.
    crate::memory::GAUGE.record_startup();
    exit_when_a_shard_panics();
    eprintln!(
        "ember {}: {} shard(s), busy-poll {} us, hardware: {}",
        env!("CARGO_PKG_VERSION"),
        shard_count,
        config.busy_poll_us,
        shared.hardware
    );
    for (name, value, why) in config.settings_without_effect() {
        eprintln!("ember: '{name} {value}' has no effect: {why}");
    }
    let busy_poll = Duration::from_micros(config.busy_poll_us);
    let bind_failed = Arc::new(AtomicBool::new(false));
    let failed = bind_failed.clone();
    let rdma = crate::rdma::prepare(&config, shard_count)?;
    // One acceptor for every shard's TLS connections, replaced by CONFIG SET (crate::tls).
    let tls = match crate::tls::acceptor(&config).map_err(std::io::Error::other)? {
        Some(acceptor) => {
            crate::tls::install(Some(acceptor));
            true
        }
        None => false,
    };
    claim_ports(&config, tls)?;
    // With `save` points, a termination signal saves first (shard 0's persistence timer keeps
    // this in step with CONFIG SET).
    runtime::defer_termination(crate::persistence::has_save_points(&config));
    runtime::stop_listening_on_termination();
    runtime::run_shards(
        shard_count,
        &cpus,
        busy_poll,
        MESH_CHANNEL_CAPACITY,
        // Only a shard's socket ring driver reads the bells.
        config.io_uring,
        move |index, senders, receivers| {
            let config = config.clone();
            let shared = shared.clone();
            let failed = failed.clone();
            let rdma = rdma.clone();
            async move {
                if let Err(error) =
                    shard_main(index, config, shared.clone(), rdma, tls, senders, receivers).await
                {
                    eprintln!("ember: shard {index}: {error}");
                    failed.store(true, Ordering::SeqCst);
                    std::process::exit(1);
                }
            }
        },
    )?;
    if bind_failed.load(Ordering::SeqCst) {
        return Err(std::io::Error::other("a shard failed"));
    }
    Ok(())
}

/// Refuses to start, as Redis does, when another server listens on a configured address
/// ([`runtime::claim`]): before any shard binds, so that the shards' own listeners are not
/// taken for another server's.
fn claim_ports(config: &Config, tls: bool) -> std::io::Result<()> {
    let plain = config.bind.iter().map(|a| (*a, config.port));
    let tls_port = config.integer("tls-port") as u16;
    let secure = config.bind.iter().filter(|_| tls).map(|a| (*a, tls_port));
    let metrics = config
        .bind
        .first()
        .map(|a| (*a, config.metrics_port))
        .into_iter();
    for (address, port) in plain.chain(secure).chain(metrics) {
        if port != 0 {
            runtime::claim(SocketAddr::new(address, port)).map_err(|error| {
                std::io::Error::other(format!("cannot listen on {address}:{port}: {error}"))
            })?;
        }
    }
    Ok(())
}

/// A shard that panics ends the process, loudly: its keys, clients and held locks cannot be
/// taken over by another shard, and a process that serves some slots and hangs the others'
/// callers is worse than one that stops (Redis crashes with a report on its panics too).
fn exit_when_a_shard_panics() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        let thread = std::thread::current();
        if let Some(name) = thread
            .name()
            .filter(|name| name.starts_with("ember-shard-"))
        {
            eprintln!("ember: {name} panicked; exiting");
            std::process::exit(1);
        }
    }));
}

/// The CPUs to pin the shards to: `server_cpulist` when it names CPUs this process may run on,
/// nothing (no pinning) when it is empty.
fn shard_cpus(cpulist: &[usize]) -> std::io::Result<Vec<usize>> {
    let online = online_cpus();
    match cpulist.iter().find(|cpu| !online.contains(cpu)) {
        Some(cpu) => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "server_cpulist names CPU {cpu}, which this process may not run on (it may use {})",
                online
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        )),
        None => Ok(cpulist.to_vec()),
    }
}

fn online_cpus() -> Vec<usize> {
    // SAFETY: sched_getaffinity writes at most size_of::<cpu_set_t>() bytes into `set`, which
    // is a zeroed cpu_set_t owned by this frame.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
            .collect()
    }
}

async fn shard_main(
    index: usize,
    config: Config,
    shared: Arc<Shared>,
    rdma: Option<Arc<crate::rdma::Setup>>,
    tls: bool,
    senders: MeshSenders<MeshMessage>,
    receivers: Vec<(usize, MeshReceiver<MeshMessage>)>,
) -> std::io::Result<()> {
    let bind = config.bind.clone();
    let configured_port = config.port;
    let shard = Rc::new(Shard::new(index, config, shared.clone(), senders));
    if shard.offload_sim {
        // Built here, on the shard's own thread: a Verilated model never moves between threads.
        let simulated = ember_fpga::offload::SimulatedOffload::new()
            .map_err(|error| std::io::Error::other(format!("--offload sim: {error}")))?;
        *shard.offload.borrow_mut() = Box::new(simulated);
        if index == 0 {
            eprintln!(
                "ember: key slots are computed by the simulated slot_hash module (--offload sim)"
            );
        }
    }
    if let Some(setup) = &rdma {
        crate::rdma::start_shard(&shard, setup)?;
    }
    runtime::spawn(crate::shard::mesh::overflow_loop(shard.clone()));
    for (peer, receiver) in receivers {
        runtime::spawn(crate::commands::remote::serve_peer(
            shard.clone(),
            peer,
            receiver,
        ));
    }
    let background = runtime::background_queue("background", BACKGROUND_SHARES);
    runtime::spawn_into(expire_loop(shard.clone()), background);
    runtime::spawn_into(mesh_watchdog(shard.clone()), background);
    runtime::spawn(crate::shard::local_tier::run(shard.clone()));
    runtime::spawn_into(crate::limits::client_cron(shard.clone()), background);
    // In the default queue: under a write flood, eviction must keep pace with the writers.
    runtime::spawn(crate::memory::evict_loop(shard.clone()));
    let (io_uring, busy_poll_us) = {
        let config = shard.config.borrow();
        (config.io_uring, config.busy_poll_us)
    };
    // With the shard's ring, its driver does the busy polling; the epoll spinner serves only
    // the runtime's own sockets.
    if !(io_uring && crate::io::start(index, Duration::from_micros(busy_poll_us))) {
        if let Some(spin) = &shard.spin {
            runtime::spawn(spin.clone().run());
        }
    }
    // Models and demo embeddings load before the port opens, so the first RECOMMEND finds them.
    crate::inference::start(&shard).map_err(std::io::Error::other)?;
    // So does the snapshot read at start (after the observers, which see its keys arrive).
    crate::persistence::load_into_shard(&shard).map_err(std::io::Error::other)?;
    crate::aof::shard_loaded();
    // The append-only file replays on shard 0 with every shard running and none listening.
    if index == 0 {
        crate::aof::start(&shard)
            .await
            .map_err(|error| std::io::Error::other(format!("append-only file: {error}")))?;
        runtime::spawn_into(crate::persistence::cron(shard.clone()), background);
    } else {
        crate::aof::wait_for_load().await;
    }

    // With a TLS port, port 0 means no plain port (as in Redis); without, any free port.
    let tls_port = shard.config.borrow().integer("tls-port") as u16;
    // Bounded by the parameter's range (0 to i32::MAX).
    let backlog = shard.config.borrow().integer("tcp-backlog") as i32;
    let plain = configured_port != 0 || !tls;
    // Shard 0 binds first, so that a configured port 0 becomes one port every shard shares.
    let port = if index == 0 || !plain {
        configured_port
    } else {
        loop {
            let port = shared.port.load(Ordering::Acquire);
            if port != 0 {
                break port as u16;
            }
            runtime::sleep(Duration::from_millis(1)).await;
        }
    };
    let mut listeners = Vec::new();
    let mut port = port;
    for address in bind.iter().filter(|_| plain) {
        let (listener, fd) =
            runtime::listen(SocketAddr::new(*address, port), backlog).map_err(|error| {
                std::io::Error::other(format!("cannot listen on {address}:{port}: {error}"))
            })?;
        crate::io::watch_listener(fd);
        port = listener.local_addr().map(|a| a.port()).unwrap_or(port);
        listeners.push((listener, fd, false));
    }
    for address in bind.iter().filter(|_| tls) {
        let (listener, fd) = runtime::listen(SocketAddr::new(*address, tls_port), backlog)
            .map_err(|error| {
                std::io::Error::other(format!("cannot listen on {address}:{tls_port}: {error}"))
            })?;
        crate::io::watch_listener(fd);
        listeners.push((listener, fd, true));
    }
    shared.listening.fetch_add(1, Ordering::AcqRel);
    if index == 0 && plain {
        // The other shards bind the port shard 0 got (port 0) or the same port.
        shared.port.store(usize::from(port), Ordering::Release);
    }
    if index == 0 {
        // Until every shard listens, the kernel hands every new connection to the shards that
        // do, and a connection never moves: the first clients (a pool opened at start, a test)
        // would all sit on shard 0. A shard that fails to bind ends the process; the wait is
        // bounded anyway.
        let deadline = Instant::now() + LISTEN_WAIT_MAX;
        while shared.listening.load(Ordering::Acquire) < shared.shard_count
            && Instant::now() < deadline
        {
            runtime::sleep(Duration::from_millis(1)).await;
        }
        // Start-up memory (Redis's `used_memory_startup`) is what the server holds before its
        // first client: the shards' tables, rings and channels too, or an empty server reports
        // them (2.4 MB with two shards) as its dataset.
        crate::memory::GAUGE.record_startup();
    }
    if index == 0 && tls {
        let addresses: Vec<String> = bind
            .iter()
            .map(|a| SocketAddr::new(*a, tls_port).to_string())
            .collect();
        println!(
            "ember: ready to accept TLS connections on {}",
            addresses.join(" ")
        );
    }
    if index == 0 && plain {
        let addresses: Vec<String> = bind
            .iter()
            .map(|a| SocketAddr::new(*a, port).to_string())
            .collect();
        // Tests and scripts wait for this line.
        println!(
            "ember: ready to accept connections on {}",
            addresses.join(" ")
        );
    }
    let metrics_port = shard.config.borrow().metrics_port;
    if index == 0 && metrics_port != 0 {
        let address = SocketAddr::new(bind[0], metrics_port);
        let (listener, _) = runtime::listen(address, backlog).map_err(|error| {
            std::io::Error::other(format!("cannot listen for metrics on {address}: {error}"))
        })?;
        let bound = listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or(metrics_port);
        println!(
            "ember: metrics on http://{}/metrics",
            SocketAddr::new(bind[0], bound)
        );
        runtime::spawn_into(crate::metrics::serve(shard.clone(), listener), background);
    }
    let accepts: Vec<_> = listeners
        .into_iter()
        .map(|(listener, fd, tls)| runtime::spawn(accept_loop(shard.clone(), listener, fd, tls)))
        .collect();
    // Its timers and accept loops now wake it (runtime::run_shards stops interrupting it).
    runtime::mark_started();
    for accept in accepts {
        accept.await;
    }
    Ok(())
}

/// Accepts the connections of one listener; `tls` for a listener on `tls-port`.
async fn accept_loop(shard: Rc<Shard>, listener: TcpListener, fd: RawFd, tls: bool) {
    // The listener is non-blocking while this task accepts its connections itself.
    let mut accept_here = runtime::set_nonblocking(fd, true).is_ok();
    // A listener bound to one address gives every connection that local address (CLIENT
    // LIST's laddr), with no `getsockname` each; one bound to every address asks each socket.
    let bound = listener
        .local_addr()
        .ok()
        .filter(|address| !address.ip().is_unspecified())
        .map(|address| address.to_string());
    loop {
        let stream = match accept(&listener, fd, &mut accept_here).await {
            Ok(stream) => stream,
            Err(_) if runtime::listening_stopped() => return,
            Err(error) => {
                eprintln!("ember: accept failed: {error}");
                runtime::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let keepalive = shard.config.borrow().tcp_keepalive_s;
        crate::limits::set_keepalive(std::os::fd::AsRawFd::as_raw_fd(&stream), keepalive);
        let shared = &shard.shared;
        shard
            .stats
            .connections_received
            .set(shard.stats.connections_received.get() + 1);
        let maxclients = shard.config.borrow().maxclients;
        if shared.connected_clients.fetch_add(1, Ordering::AcqRel) >= maxclients {
            shared.connected_clients.fetch_sub(1, Ordering::AcqRel);
            shard
                .stats
                .rejected_connections
                .set(shard.stats.rejected_connections.get() + 1);
            runtime::spawn(async move {
                let mut stream = stream;
                use crate::runtime::AsyncWriteExt;
                // Before its handshake a TLS client could not read the error: it is only closed.
                if !tls {
                    let _ = stream
                        .write_all(b"-ERR max number of clients reached\r\n")
                        .await;
                }
                let _ = stream.close().await;
            });
            continue;
        }
        let peer = stream.peer_addr().ok();
        let handle = Rc::new(ClientHandle::new(
            shared.next_client_id.fetch_add(1, Ordering::Relaxed),
            peer.map(|a| a.to_string()).unwrap_or_default(),
            bound.clone().unwrap_or_else(|| {
                stream
                    .local_addr()
                    .map(|a| a.to_string())
                    .unwrap_or_default()
            }),
            std::os::fd::AsRawFd::as_raw_fd(&stream),
        ));
        shard.clients.borrow_mut().insert(handle.id, handle.clone());
        let shard = shard.clone();
        runtime::spawn(async move {
            let id = handle.id;
            if let Some(stream) = admit(&shard, stream, tls, peer).await {
                crate::connection::serve(shard.clone(), stream, handle).await;
            }
            if let Some(handle) = shard.clients.borrow_mut().remove(&id) {
                crate::commands::tracking::note_gone(&shard, &handle);
            }
            shard
                .shared
                .connected_clients
                .fetch_sub(1, Ordering::AcqRel);
        });
    }
}

/// The next connection of `listener` (descriptor `fd`). While `accept_here`, taken with one
/// `accept4` (the new socket close-on-exec), and when none waits, after the shard's ring saw
/// the listener readable: the ring's poll wakes this task in the turn that reaps it. Through
/// the runtime's accept otherwise (no ring, or the ring stopped watching the listener), which
/// costs a turn of the runtime's loop and three `fcntl`s per connection (it makes the listener
/// non-blocking around a plain `accept`): 1 in 5 system calls of a connection that sends one
/// command, and its first reply waited for that turn.
async fn accept(
    listener: &TcpListener,
    fd: RawFd,
    accept_here: &mut bool,
) -> std::io::Result<runtime::TcpStream> {
    while *accept_here {
        // SAFETY: accept4 on the listener's descriptor, with no address wanted (null pointers).
        let accepted = unsafe {
            libc::accept4(
                fd,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC,
            )
        };
        if accepted >= 0 {
            // SAFETY: `accepted` is a connected socket that nothing else owns; the stream closes
            // it.
            return Ok(unsafe {
                <runtime::TcpStream as std::os::fd::FromRawFd>::from_raw_fd(accepted)
            });
        }
        let error = std::io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::EAGAIN) => {}
            // A connection reset before it was accepted, or a signal: the next one.
            Some(libc::ECONNABORTED | libc::EINTR) => continue,
            _ => return Err(error),
        }
        if !crate::io::listener_readable(fd).await {
            // Blocking again, as the runtime's accept expects its listener.
            let _ = runtime::set_nonblocking(fd, false);
            *accept_here = false;
        }
    }
    listener
        .accept()
        .await
        .map_err(|error| std::io::Error::other(error.to_string()))
}

/// What a new connection goes through before its first request: the TLS handshake on
/// `tls-port` (a failure closes this connection alone, with a log line), then protected mode.
/// `None` when the connection was closed.
async fn admit(
    shard: &Shard,
    stream: runtime::TcpStream,
    tls: bool,
    peer: Option<SocketAddr>,
) -> Option<crate::tls::Stream> {
    let acceptor = if tls { crate::tls::current() } else { None };
    let mut stream = match acceptor {
        None => crate::tls::Stream::Plain(stream),
        Some(acceptor) => match crate::tls::handshake(&acceptor, stream).await {
            Ok(stream) => stream,
            Err(error) => {
                let peer = peer.map(|peer| peer.to_string()).unwrap_or_default();
                eprintln!("ember: error accepting a client connection from {peer}: TLS handshake: {error}");
                return None;
            }
        },
    };
    if protected_mode_denies(shard, peer) {
        use crate::runtime::AsyncWriteExt;
        shard
            .stats
            .rejected_connections
            .set(shard.stats.rejected_connections.get() + 1);
        let _ = stream.write_all(PROTECTED_MODE_DENIED.as_bytes()).await;
        let _ = stream.flush().await;
        let _ = stream.close().await;
        return None;
    }
    Some(stream)
}

/// The error a client that protected mode turns away reads before the connection closes, in
/// Redis's words (clients and operators match them).
const PROTECTED_MODE_DENIED: &str = concat!(
    "-DENIED Redis is running in protected mode because protected mode is enabled and no ",
    "password is set for the default user. In this mode connections are only accepted from ",
    "the loopback interface. If you want to connect from external computers to Redis you may ",
    "adopt one of the following solutions: 1) Just disable protected mode sending the command ",
    "'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from ",
    "the same host the server is running, however MAKE SURE Redis is not publicly accessible ",
    "from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) ",
    "Alternatively you can just disable the protected mode by editing the Redis configuration ",
    "file, and setting the protected mode option to 'no', and then restarting the server. 3) ",
    "If you started the server manually just for testing, restart it with the ",
    "'--protected-mode no' option. 4) Setup a an authentication password for the default ",
    "user. NOTE: You only need to do one of the above things in order for the server to start ",
    "accepting connections from the outside.\r\n"
);

/// Redis's protected mode: with `protected-mode yes` and no password for the default user,
/// only clients on the loopback interface are served, whatever the bound addresses.
fn protected_mode_denies(shard: &Shard, peer: Option<SocketAddr>) -> bool {
    let config = shard.config.borrow();
    if config.value("protected-mode") != "yes" || !config.requirepass.is_empty() {
        return false;
    }
    !peer.is_some_and(|peer| is_loopback_client(peer.ip()))
}

/// Redis 7.0's loopback clients: 127.0.0.1 and ::1 exactly (an IPv4 client of a dual-stack
/// socket counts as its IPv4 address). Redis 7.2 widened this to all of 127.0.0.0/8.
fn is_loopback_client(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(ip) => ip == Ipv4Addr::LOCALHOST,
        IpAddr::V6(ip) => ip == Ipv6Addr::LOCALHOST,
    }
}

/// Answers with an error every request to another shard that has waited longer than
/// `shard-reply-timeout-ms`, so a shard that stops answering never hangs its callers.
async fn mesh_watchdog(shard: Rc<Shard>) {
    loop {
        let timeout_ms = shard.config.borrow().shard_reply_timeout_ms;
        if timeout_ms > 0 {
            shard.mesh.expire_overdue(Duration::from_millis(timeout_ms));
        }
        runtime::sleep_until_tick(MESH_WATCHDOG_PERIOD).await;
    }
}

/// Active expiry: `hz` times a second, remove keys whose TTL passed, within a time budget.
async fn expire_loop(shard: Rc<Shard>) {
    loop {
        let period = Duration::from_millis(1000 / shard.config.borrow().hz.max(1));
        if crate::commands::server::admin::cron_paused() {
            // DEBUG PAUSE-CRON 1: no expiry, no tracking table trim, as Redis's paused cron.
            runtime::sleep_until_tick(period).await;
            continue;
        }
        let effort = shard.config.borrow().integer("active-expire-effort");
        let budget = expire_budget(effort);
        let started = Instant::now();
        let mut budget_spent = false;
        loop {
            // Nothing expires actively while CLIENT PAUSE lasts, as in Redis, nor after DEBUG
            // SET-ACTIVE-EXPIRE 0.
            if shard.gate.blocks(None)
                || shard.shared.pause.active(unix_time_ms())
                || !crate::commands::server::admin::active_expire_enabled()
            {
                break;
            }
            let removed = shard
                .keyspace
                .borrow_mut()
                .expire_cycle(unix_time_ms(), EXPIRE_KEYS_PER_SLICE);
            if removed < EXPIRE_KEYS_PER_SLICE {
                shard.keyspace.borrow_mut().expire_fields_cycle(
                    unix_time_ms(),
                    FIELD_EXPIRE_KEYS_PER_TICK,
                    FIELD_EXPIRE_FIELDS_PER_KEY,
                );
                break;
            }
            if started.elapsed() >= budget {
                budget_spent = true;
                break;
            }
        }
        // `expired` keyspace events of the keys removed, to every shard's subscribers.
        crate::commands::notify::publish_expired(
            &mut shard.keyspace.borrow_mut(),
            &shard.pubsub,
            &shard.config.borrow(),
            unix_time_ms(),
        );
        if shard.pubsub.has_forwards() {
            crate::commands::pubsub::forward_events(&shard).await;
        }
        // Invalidations of the keys removed (and the tracking table's bound, which CONFIG SET
        // may have lowered), to every tracking client.
        crate::commands::tracking::collect(&shard);
        if shard.tracking.has_pending() {
            crate::commands::tracking::flush(&shard).await;
        }
        let elapsed_ms = started.elapsed().as_millis() as u64;
        let threshold = shard.config.borrow().latency_monitor_threshold_ms;
        shard
            .stats
            .latency_sample("expire-cycle", elapsed_ms, threshold);
        if budget_spent {
            runtime::sleep(expire_rest(effort, started.elapsed())).await;
        } else {
            runtime::sleep_until_tick(period).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_clients_are_redis_7_0s() {
        for local in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
            assert!(is_loopback_client(local.parse().unwrap()), "{local}");
        }
        for outside in ["127.0.0.2", "10.0.0.1", "::ffff:127.0.0.2", "fe80::1"] {
            assert!(!is_loopback_client(outside.parse().unwrap()), "{outside}");
        }
    }

    #[test]
    fn expire_rest_keeps_expiry_to_its_share() {
        let cases: &[(&str, i64, u64, u64)] = &[
            ("effort 1: 25%, 2 ms of work then 6 of rest", 1, 2000, 6000),
            ("effort 10: 43%", 10, 3440, 4560),
            ("out of range is effort 10", 99, 3440, 4560),
            ("a short tick still rests 1 ms", 1, 100, 1000),
        ];
        for &(name, effort, spent_us, rest_us) in cases {
            let rest = expire_rest(effort, Duration::from_micros(spent_us));
            assert_eq!(rest.as_micros() as u64, rest_us, "{name}");
            let share = spent_us * 100 / (spent_us + rest_us);
            assert!(
                share <= u64::from(expire_share_percent(effort)),
                "{name}: {share}%"
            );
        }
    }

    #[test]
    fn expire_budget_grows_with_effort_and_stays_bounded() {
        let cases: &[(&str, i64, u64)] = &[
            ("effort 1 is the base budget", 1, 2000),
            ("effort 2 adds 2 points of 25", 2, 2160),
            ("effort 10", 10, 3440),
            ("below the range is effort 1", 0, 2000),
            ("above the range is effort 10", 99, 3440),
        ];
        for &(name, effort, expected_us) in cases {
            assert_eq!(
                expire_budget(effort).as_micros() as u64,
                expected_us,
                "{name}"
            );
        }
    }
}
