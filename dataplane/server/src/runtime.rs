//! The runtime seam: the only module that names glommio. Shards, listeners, streams, channels,
//! timers and task queues are reached through these few functions and types, so another
//! thread-per-core runtime can replace glommio by rewriting this file alone.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{LocalExecutorBuilder, Placement};

use crate::bell::MeshBell;

pub use futures_lite::{AsyncReadExt, AsyncWriteExt};
pub use glommio::net::{TcpListener, TcpStream};
pub use glommio::task::JoinHandle as Task;
pub use glommio::TaskQueueHandle;

/// Messages between shards travel over a full mesh of bounded single-producer channels. With
/// bells (socket rings on), every message sent also rings the receiving shard's [`MeshBell`]
/// (for a shard that sleeps outside glommio's loop, in its socket ring).
pub struct MeshSenders<T: Send> {
    senders: glommio::channels::channel_mesh::Senders<T>,
    bells: Option<Arc<[MeshBell]>>,
    /// The sending shard.
    index: usize,
}

impl<T: Send> MeshSenders<T> {
    /// Sends `message` to shard `target`, waiting while its channel is full.
    ///
    /// # Errors
    /// When the channel is closed (the peer is shutting down) or `target` is this shard.
    pub async fn send_to(&self, target: usize, message: T) -> glommio::Result<(), T> {
        let sent = self.senders.send_to(target, message).await;
        if let (Ok(()), Some(bells)) = (&sent, &self.bells) {
            bells[target].ring_from(self.index);
        }
        sent
    }

    /// Sends `message` to shard `target` if its channel has room (the mesh's non-waiting send,
    /// as glommio's `Senders` has it).
    ///
    /// # Errors
    /// When the channel is full or closed, or `target` is this shard.
    #[inline]
    pub fn try_send_to(&self, target: usize, message: T) -> glommio::Result<(), T> {
        let sent = self.senders.try_send_to(target, message);
        if let (Ok(()), Some(bells)) = (&sent, &self.bells) {
            bells[target].ring_from(self.index);
        }
        sent
    }
}

/// The receiving side of the mesh, one stream per peer.
pub type MeshReceiver<T> = glommio::channels::shared_channel::ConnectedReceiver<T>;

/// What shard `peer` sends this one: its channel of the mesh, and the messages taken so far.
///
/// On a shard whose socket driver reads the mesh's bell ([`crate::io::reads_bell`]), the task
/// waits for the bell, and the driver wakes it ([`crate::bell::wake_mesh_waiters`]) in the
/// turn that sees the bell rung, with no turn of glommio's loop (which wakes a channel's
/// receiver only in its own turn: an eventfd write and four `io_uring_enter`s, on each side of
/// every hop). Only the bell's count of messages sent says whether one waits: glommio's
/// receive, asked of an empty channel, leaves a waker with its loop every time (freed only as
/// messages come through that loop), so it is asked only for a message that is there.
pub struct MeshInbox<T: Send> {
    receiver: MeshReceiver<T>,
    peer: usize,
    taken: u64,
    bell: Option<crate::bell::MeshBellRef>,
}

impl<T: Send> MeshInbox<T> {
    /// The inbox of `receiver`, the channel from shard `peer`; on the shard's own thread.
    pub fn new(receiver: MeshReceiver<T>, peer: usize) -> Self {
        Self {
            receiver,
            peer,
            taken: 0,
            bell: crate::bell::mesh_bell(),
        }
    }

    /// The next message; `None` once the peer is gone.
    pub async fn next(&mut self) -> Option<T> {
        let bell = self.bell.as_ref().filter(|bell| {
            counted_message_waits(bell.sent_by(self.peer), self.taken) || crate::io::reads_bell()
        });
        let Some(bell) = bell else {
            let message = self.receiver.recv().await;
            self.taken += u64::from(message.is_some());
            return message;
        };
        let (receiver, peer, taken) = (&self.receiver, self.peer, &mut self.taken);
        std::future::poll_fn(|context| {
            let mut received = std::pin::pin!(receiver.recv());
            if !counted_message_waits(bell.sent_by(peer), *taken) {
                if !crate::io::reads_bell() {
                    // The bell's read failed meanwhile: glommio's own wake-up, from here on.
                    let polled = received.as_mut().poll(context);
                    *taken += u64::from(matches!(polled, std::task::Poll::Ready(Some(_))));
                    return polled;
                }
                crate::bell::wait_for_mesh(context.waker());
                // Counted after the wait was noted: a message counted later rings the bell.
                if !counted_message_waits(bell.sent_by(peer), *taken) {
                    return std::task::Poll::Pending;
                }
            }
            // In the channel before it was counted: the receive takes it at once.
            let mut noop = std::task::Context::from_waker(std::task::Waker::noop());
            match received.as_mut().poll(&mut noop) {
                std::task::Poll::Ready(message) => {
                    *taken += 1;
                    std::task::Poll::Ready(message)
                }
                std::task::Poll::Pending => {
                    // Not reached (one sender per channel, counted after its send, and a
                    // count not ahead of what was taken); looks again at the next run of the
                    // shard's tasks rather than at a bell.
                    context.waker().wake_by_ref();
                    std::task::Poll::Pending
                }
            }
        })
        .await
    }
}

/// True when the bell counted a message from the peer that the inbox has not taken yet, so
/// one is in the channel.
///
/// What was taken may run ahead of the count: a receive through glommio's own wake-up (a
/// shard whose driver does not read the bell yet, at start-up) takes a message that its
/// sender has pushed and not yet counted, since the count follows the push. Until the count
/// catches up no counted message waits. Taken for one (`!=`), that state had the receiver
/// poll the empty channel again at once: while the sender was preempted between its push and
/// its count (shards not pinned, sharing a core), the receiver spun tens of thousands of
/// times, and glommio kept a waker for each of those polls in a list that never shrinks
/// (a 1 MB block held for good in `used_memory`, bench/RESULTS.md, thirty-fourth session).
fn counted_message_waits(sent: u64, taken: u64) -> bool {
    sent > taken
}

/// How long a shard may take to start before the main thread interrupts its sleep, and how
/// often it does so again until every shard has started ([`kick_until_started`]).
const START_KICK_PERIOD: Duration = Duration::from_millis(20);
/// The signal that interrupts a starting shard's sleep: ignored by default and unused
/// otherwise (no socket of Ember asks for out-of-band data signals).
const START_KICK_SIGNAL: libc::c_int = libc::SIGURG;
/// Prefix of every shard thread's name (glommio adds `-<executor id>`).
const SHARD_THREAD_PREFIX: &str = "ember-shard-";
/// The memory glommio registers with its ring for storage (DMA) I/O, per shard: its least.
/// Ember's sockets read into its own ring's provided buffers (crate::io, mapped apart from the
/// allocator) and Ember does no DMA file I/O, so glommio's default, 10 MiB taken from the
/// allocator at start, went unused while counting in `used_memory`: a server with two shards
/// reported 23 MB with no key (Redis: under 1 MB), and a `maxmemory` of 20 MB was exceeded
/// before the first write. Anything past this still works, from the allocator.
const GLOMMIO_IO_MEMORY: usize = 64 << 10;

/// One shard's place in the count of shards that have started or ended: counted when dropped,
/// so a shard whose executor could not be created, or that panicked or ended, counts too.
struct StartCount(Arc<AtomicUsize>);

impl Drop for StartCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

thread_local! {
    /// This shard's [`StartCount`], until [`mark_started`] drops it; set by [`run_shards`].
    static STARTED: RefCell<Option<StartCount>> = const { RefCell::new(None) };
}

/// Says that this shard has started: its periodic tasks run and its listeners accept, so a
/// lost wake-up of the runtime no longer needs the main thread ([`run_shards`]). Once per
/// shard; later calls do nothing.
pub fn mark_started() {
    drop(STARTED.with(|cell| cell.borrow_mut().take()));
}

/// Starts `shard_count` executors, shard `i` pinned to CPU `cpus[i % cpus.len()]` (none pinned
/// when `cpus` is empty), each spinning `busy_poll` before it parks, runs
/// `shard_main(index, senders, receivers)` on each, and waits for all of them to finish.
/// `mesh_bells`: give each shard a [`MeshBell`] that every message to it rings (only a shard
/// that sleeps in its socket ring reads it).
///
/// Until every shard has called [`mark_started`] (or ended, or failed to start), the main
/// thread interrupts the shards' sleeps every [`START_KICK_PERIOD`] ([`kick_until_started`]):
/// glommio 0.9 can put an executor to sleep while it still has a task to run, and at start-up
/// nothing else would wake it.
///
/// # Errors
/// When an executor cannot be created (no such CPU, io_uring refused by the kernel).
pub fn run_shards<T, F, Fut>(
    shard_count: usize,
    cpus: &[usize],
    busy_poll: Duration,
    channel_capacity: usize,
    mesh_bells: bool,
    shard_main: F,
) -> io::Result<()>
where
    T: Send + 'static,
    F: Fn(usize, MeshSenders<T>, Vec<(usize, MeshReceiver<T>)>) -> Fut + Send + Clone + 'static,
    Fut: Future<Output = ()> + 'static,
{
    assert!(shard_count > 0, "at least one shard");
    let mesh: MeshBuilder<T, _> = MeshBuilder::full(shard_count, channel_capacity);
    let bells: Option<Arc<[MeshBell]>> = if mesh_bells {
        let bells = (0..shard_count)
            .map(|_| MeshBell::new(shard_count))
            .collect::<io::Result<Vec<_>>>()?;
        Some(bells.into())
    } else {
        None
    };
    let started = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::with_capacity(shard_count);
    for index in 0..shard_count {
        let placement = if cpus.is_empty() {
            Placement::Unbound
        } else {
            Placement::Fixed(cpus[index % cpus.len()])
        };
        let mesh = mesh.clone();
        let shard_main = shard_main.clone();
        let bells = bells.clone();
        let count = StartCount(started.clone());
        let handle = LocalExecutorBuilder::new(placement)
            .name(&format!("{SHARD_THREAD_PREFIX}{index}"))
            .spin_before_park(busy_poll)
            .io_memory(GLOMMIO_IO_MEMORY)
            .spawn(move || async move {
                STARTED.with(|cell| *cell.borrow_mut() = Some(count));
                let (senders, mut receivers) = mesh.join().await.expect("mesh join");
                let peer = senders.peer_id();
                if let Some(bells) = &bells {
                    crate::bell::install(bells.clone(), peer);
                }
                let senders = MeshSenders {
                    senders,
                    bells,
                    index: peer,
                };
                shard_main(peer, senders, receivers.streams()).await;
                mark_started();
            })
            .map_err(|error| io::Error::other(format!("cannot start shard {index}: {error}")))?;
        handles.push(handle);
    }
    kick_until_started(&started, shard_count);
    for handle in handles {
        handle
            .join()
            .map_err(|error| io::Error::other(format!("shard failed: {error}")))?;
    }
    Ok(())
}

/// Interrupts the sleep of every shard thread every [`START_KICK_PERIOD`] until `shard_count`
/// shards have started.
///
/// Why: glommio 0.9's loop (`LocalExecutor::run`) treats "the preemption timer had already
/// fired when I came to run the task queues" as "nothing to run": `run_task_queues` returns
/// false without running the runnable tasks, the executor spins `spin_before_park`, and then
/// sleeps in its ring until an I/O completion, a timer or another executor's notification.
/// Once a shard runs, its periodic tasks (mesh watchdog, expiry) end such a sleep within their
/// period. During start-up a shard has none, and its peer is waiting for it (the mesh join), so
/// it slept for ever: ember did not finish starting (the session note of 2026-12-03e/ring.md
/// has the reproduction: about 10% of starts on a machine with twice as many runnable
/// threads as cores, with or without `--io-uring`). A signal ends that sleep: glommio takes an
/// interrupted `io_uring_enter` wait as a wake-up (`intr_ok`) and runs its task queues. The
/// handler does nothing and restarts other system calls (SA_RESTART).
fn kick_until_started(started: &AtomicUsize, shard_count: usize) {
    static HANDLER: Once = Once::new();
    HANDLER.call_once(|| {
        extern "C" fn ignore(_: libc::c_int) {}
        // SAFETY: a zeroed sigaction with a handler that touches nothing, installed once.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = ignore as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(START_KICK_SIGNAL, &action, std::ptr::null_mut());
        }
    });
    let mut kicked_at = Instant::now();
    while started.load(Ordering::SeqCst) < shard_count {
        std::thread::sleep(Duration::from_millis(1));
        if kicked_at.elapsed() < START_KICK_PERIOD {
            continue;
        }
        kicked_at = Instant::now();
        // SAFETY: getpid takes no arguments.
        let pid = unsafe { libc::getpid() };
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return;
        };
        for task in tasks.flatten() {
            let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            let Some(tid) = task
                .file_name()
                .to_str()
                .and_then(|t| t.parse::<i32>().ok())
            else {
                continue;
            };
            if name.starts_with(SHARD_THREAD_PREFIX) {
                // SAFETY: tgkill takes no pointers; a thread that just ended is ESRCH, ignored.
                unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, START_KICK_SIGNAL) };
            }
        }
    }
}

/// Makes descriptor `fd` non-blocking (or blocking again).
///
/// # Errors
/// When `fcntl` refuses (a closed descriptor).
pub fn set_nonblocking(fd: RawFd, nonblocking: bool) -> io::Result<()> {
    // SAFETY: fcntl with F_GETFL and F_SETFL takes no pointers.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    let wanted = if nonblocking {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    // SAFETY: as above.
    if wanted != flags && unsafe { libc::fcntl(fd, libc::F_SETFL, wanted) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Binds a listener with SO_REUSEPORT, so every shard can bind the same address; with its
/// descriptor, which stays open as long as the listener (to watch it in the shard's ring).
/// SO_REUSEADDR as well, as Redis sets it: a restart binds past the last run's connections in
/// TIME_WAIT, and [`claim`] sees a listener here as taken.
///
/// # Errors
/// When the address is in use by another program or cannot be bound.
pub fn listen(address: SocketAddr, backlog: i32) -> io::Result<(TcpListener, RawFd)> {
    // As glommio's own `TcpListener::bind`, which does not show its descriptor.
    let socket = reusable_socket(address)?;
    socket.set_reuse_port(true)?;
    socket.bind(&address.into())?;
    socket.listen(backlog)?;
    let fd = socket.into_raw_fd();
    remember_listener(fd);
    // SAFETY: `fd` is a bound, listening socket that nothing else owns; the listener closes it.
    Ok((unsafe { TcpListener::from_raw_fd(fd) }, fd))
}

/// A TCP socket for `address`'s family with SO_REUSEADDR, not bound yet.
fn reusable_socket(address: SocketAddr) -> io::Result<socket2::Socket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    Ok(socket)
}

/// How long [`claim`] waits for a listener of a server that just stopped to go.
const CLAIM_WAIT: Duration = Duration::from_secs(1);

/// Checks that no socket listens on `address` (nor on a wildcard address of its port) before
/// the shards bind it: SO_REUSEPORT lets any program of the same user join a port, so a second
/// server started on a port in use would not fail as Redis does ("Address already in use") but
/// silently take part of its connections. The check binds a plain SO_REUSEADDR socket, which
/// the kernel refuses beside a listener and allows beside connections in TIME_WAIT. A listener
/// of a server killed a moment ago can outlive its process while its io_uring is torn down, so
/// a refusal is tried again for up to [`CLAIM_WAIT`]. Two servers started at the same instant
/// can both pass the check.
///
/// # Errors
/// When the address stays in use, or cannot be bound.
pub fn claim(address: SocketAddr) -> io::Result<()> {
    let deadline = Instant::now() + CLAIM_WAIT;
    loop {
        let socket = reusable_socket(address)?;
        match socket.bind(&address.into()) {
            Ok(()) => return Ok(()),
            Err(error) if error.kind() == io::ErrorKind::AddrInUse => {
                if Instant::now() >= deadline {
                    return Err(error);
                }
            }
            Err(error) => return Err(error),
        }
        drop(socket);
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Listening sockets of the process (-1: free), for [`stop_listening`] to read from a signal
/// handler.
static LISTENERS: [AtomicI32; 64] = [const { AtomicI32::new(-1) }; 64];

/// Keeps `fd` in the first free slot of [`LISTENERS`] (past 64 listeners, the others are not
/// taken off their ports early).
fn remember_listener(fd: RawFd) {
    LISTENERS.iter().any(|slot| {
        slot.compare_exchange(-1, fd, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    });
}

/// Takes the process's listeners off their ports (`shutdown`, which unhashes a listening
/// socket at once, where `close` waits for every io_uring accept or poll that holds it), so
/// that a server started next on the same port gets every connection: until then the kernel
/// shares them out between the old listeners and the new. Async-signal-safe.
pub fn stop_listening() {
    LISTENING_STOPPED.store(true, Ordering::Release);
    for slot in &LISTENERS {
        let fd = slot.load(Ordering::Acquire);
        if fd >= 0 {
            // SAFETY: shutdown takes no pointers; a descriptor closed since is EBADF, ignored.
            unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
        }
    }
}

/// Set by [`stop_listening`]: the listeners' accepts fail from then on, and that is no news.
static LISTENING_STOPPED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// True once [`stop_listening`] ran (the server is ending).
pub fn listening_stopped() -> bool {
    LISTENING_STOPPED.load(Ordering::Acquire)
}

/// Set while `save` points are set ([`defer_termination`]): the first SIGTERM or SIGINT then
/// only asks for a save before the exit ([`termination_requested`]).
static DEFER_TERMINATION: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static TERMINATION_REQUESTED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// With `on`, the next termination signal is left to the server (it saves, then exits: see
/// `persistence::cron`) instead of ending the process; a second one ends it anyway.
pub fn defer_termination(on: bool) {
    DEFER_TERMINATION.store(on, Ordering::Release);
}

/// True once a deferred termination signal came.
pub fn termination_requested() -> bool {
    TERMINATION_REQUESTED.load(Ordering::Acquire)
}

/// SIGTERM and SIGINT end the process by the signal, after [`stop_listening`]; with `save`
/// points set, the first one asks for the save Redis makes before it exits
/// ([`defer_termination`]).
pub fn stop_listening_on_termination() {
    extern "C" fn on_signal(signal: libc::c_int) {
        if DEFER_TERMINATION.load(Ordering::Acquire)
            && !TERMINATION_REQUESTED.swap(true, Ordering::AcqRel)
        {
            return; // Atomics are async-signal-safe; the server's timer does the rest.
        }
        stop_listening();
        // SAFETY: signal and raise are async-signal-safe; the default action ends the process.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
            libc::raise(signal);
        }
    }
    for signal in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: a zeroed sigaction with an async-signal-safe handler.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// Makes the calling thread a helper beside the shards: a thread started from a shard inherits
/// its pin to that shard's core and would take turns with it there (a BGSAVE writer's CRC and
/// writes held a shard's requests up to 12 ms); this lets it run on any core, at nice 10, so
/// the shards win when they compete for one.
pub fn as_helper_thread() {
    // SAFETY: a zeroed cpu_set_t filled by CPU_SET, passed by pointer with its size; the
    // kernel keeps only the CPUs this process may use. setpriority and gettid take no pointers.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for cpu in 0..libc::CPU_SETSIZE as usize {
            libc::CPU_SET(cpu, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 10);
    }
}

/// Runs `future` on this shard's current task queue.
pub fn spawn<T: 'static>(future: impl Future<Output = T> + 'static) -> Task<T> {
    glommio::spawn_local(future).detach()
}

/// Runs `future` on task queue `queue` of this shard.
pub fn spawn_into<T: 'static>(
    future: impl Future<Output = T> + 'static,
    queue: TaskQueueHandle,
) -> Task<T> {
    glommio::spawn_local_into(future, queue)
        .expect("task queue exists")
        .detach()
}

/// A task queue for background work (expiry, metrics, inference) with `shares` relative to
/// the default queue's 1000, so cache requests keep their latency.
pub fn background_queue(name: &str, shares: usize) -> TaskQueueHandle {
    glommio::executor().create_task_queue(
        glommio::Shares::Static(shares),
        glommio::Latency::NotImportant,
        name,
    )
}

/// Lets other task queues run if this task has used its time slice (between slices of a long batch).
pub async fn yield_if_needed() {
    glommio::yield_if_needed().await;
}

/// Lets the other runnable tasks of this task queue run first, without a turn of the runtime's I/O loop.
pub async fn yield_now() {
    futures_lite::future::yield_now().await;
}

/// Sleeps without blocking the shard.
pub async fn sleep(duration: Duration) {
    glommio::timer::sleep(duration).await;
}

/// The instant periodic tasks count their periods from (the first use).
static TICK_EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

/// The first multiple of `period` since the process's tick epoch that is later than now.
/// Periodic tasks wake on these ticks, so those of one period (or of periods that divide each
/// other) wake an idle shard together, once, instead of once each at their own phase.
pub fn next_tick(period: Duration) -> Instant {
    let epoch = *TICK_EPOCH.get_or_init(Instant::now);
    let period_ns = period.as_nanos().max(1);
    let ticks = Instant::now().saturating_duration_since(epoch).as_nanos() / period_ns + 1;
    epoch + Duration::from_nanos(u64::try_from(ticks * period_ns).unwrap_or(u64::MAX))
}

/// Sleeps until the [`next_tick`] of `period`.
pub async fn sleep_until_tick(period: Duration) {
    let due = next_tick(period);
    sleep(due.saturating_duration_since(Instant::now())).await;
}

/// Time this shard's executor spent running tasks (its busy time).
pub fn busy_time() -> Duration {
    glommio::executor().executor_stats().executor_runtime()
}

/// An eventfd that the runtime's reactor can wait on, so that a shard parked inside the
/// runtime's own io_uring wakes when another ring (the shard's socket ring, which signals the
/// eventfd when it has work) needs it.
///
/// The wait is a read of the eventfd submitted to glommio's main ring, the one glommio sleeps
/// on: glommio offers no wait on an arbitrary descriptor's readiness, but it does read any file
/// through io_uring, and a read of an empty eventfd completes when the eventfd is signalled.
/// The eventfd is therefore blocking (io_uring would answer a non-blocking one with EAGAIN);
/// [`Doorbell::drain`] empties it without blocking.
pub struct Doorbell {
    file: glommio::io::BufferedFile,
    fd: RawFd,
}

/// Bytes of an eventfd's counter.
const EVENTFD_COUNTER_LEN: usize = 8;

impl Doorbell {
    /// A new, silent doorbell.
    ///
    /// # Errors
    /// When the kernel refuses an eventfd.
    pub fn new() -> io::Result<Rc<Self>> {
        // SAFETY: eventfd takes no pointers.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new descriptor that nothing else owns; the file closes it on drop.
        let file = unsafe { glommio::io::BufferedFile::from_raw_fd(fd) };
        debug_assert_eq!(file.as_raw_fd(), fd);
        Ok(Rc::new(Self { file, fd }))
    }

    /// The eventfd, to register with a ring.
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// Completes once the doorbell has rung (at once if it rang since the last wait or drain),
    /// and silences it.
    ///
    /// # Errors
    /// When the runtime's read of the eventfd fails.
    pub async fn rung(self: Rc<Self>) -> io::Result<()> {
        self.file
            .read_at(0, EVENTFD_COUNTER_LEN)
            .await
            .map(drop)
            .map_err(|error| io::Error::other(error.to_string()))
    }

    /// Silences the doorbell without waiting (one `preadv2` with RWF_NOWAIT), so that the next
    /// wait sleeps until it rings again instead of waking for a ring already answered.
    pub fn drain(&self) {
        let mut counter = [0u8; EVENTFD_COUNTER_LEN];
        let iovec = libc::iovec {
            iov_base: counter.as_mut_ptr().cast(),
            iov_len: counter.len(),
        };
        // SAFETY: one iovec pointing at `counter`, which outlives the call. An empty eventfd
        // answers EAGAIN (RWF_NOWAIT), a kernel without RWF_NOWAIT for eventfds EOPNOTSUPP:
        // both leave the doorbell as it was, which only costs a spurious wake.
        unsafe {
            libc::preadv2(self.fd, &iovec, 1, -1, libc::RWF_NOWAIT);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::counted_message_waits;

    #[test]
    fn a_message_taken_before_it_was_counted_leaves_nothing_waiting() {
        // Taken through glommio's wake-up before its sender counted it.
        assert!(!counted_message_waits(0, 1));
        assert!(!counted_message_waits(3, 3));
        assert!(counted_message_waits(4, 3));
    }
}
