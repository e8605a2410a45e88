//! Socket I/O through io_uring, batched per shard (`--io-uring yes`).
//!
//! Each shard has one ring ([`ring::Ring`]), created on the shard's own thread, and one driver
//! task that turns it: every connection has a multishot receive into the shard's provided
//! buffers, and every connection's replies wait in the submission queue until the driver's next
//! enter submits them all, and reaps what arrived, with one `io_uring_enter`. That enter comes
//! after the connections it woke have run (the driver yields to them), so the sends of all the
//! requests that arrived together leave together; when nothing else has arrived by then, the
//! same enter also sleeps until the next request (the sends complete silently when they leave
//! whole: see `ring.rs`), so a burst of requests costs one system call.
//!
//! Waiting: glommio keeps the executors, task queues and timers, and each turn of its loop costs a
//! few system calls (it re-arms its preemption timer). So while traffic flows, the driver keeps
//! the shard: when a turn finds nothing to do it sleeps in the shard's own ring (one
//! `io_uring_enter` that data on any connection ends) and hands the shard to glommio's loop only
//! when a listener that the runtime accepts from has a connection, when another shard's message
//! comes while the ring has work of its own, or at least every [`HAND_BACK_MAX`] (timers, the
//! other task queues). Another shard's message reaches a shard asleep in its ring through the
//! mesh's bell ([`crate::bell::MeshBell`]), an eventfd the ring reads, and the driver wakes the
//! tasks that wait for the mesh itself ([`crate::bell::wake_mesh_waiters`]): glommio's loop
//! would wake them only in its own turn, which cost each hop between shards an eventfd write
//! and four `io_uring_enter`s on each side. A new connection reaches it through a multishot
//! poll of each listener ([`watch_listener`]), which wakes the shard's accept task in the same
//! turn ([`listener_readable`]; the task accepts with `accept4` itself), so that it is accepted
//! at once, before requests sent later on older connections, and without a turn of the
//! runtime's loop. After
//! [`IDLE_PARK_AFTER`] without traffic the driver parks inside glommio instead: the ring
//! announces new work on an eventfd (registered with the ring while the shard parks only, as
//! the kernel writes it for every burst), and the driver waits on that eventfd through the
//! runtime ([`crate::runtime::Doorbell`]), so a parked shard wakes when
//! data arrives on any of its connections, and glommio wakes it for everything else. The ring's
//! task work is cooperative (see `ring.rs` for why not deferred): arriving data wakes a sleeping
//! shard, whose next system call runs the work and so writes the eventfd, but never interrupts
//! a running one.
//!
//! With `--busy-poll-us N` the driver spins on the ring's shared memory for N microseconds
//! after the last progress before it parks, instead of the epoll spinner; it spins with
//! `sched_yield`, so a thread that wants the core (a client, another shard) gets it at once.

mod buffers;
mod ring;

/// The largest reply buffer a connection keeps once its replies are written, as Redis keeps a
/// 16 KiB reply buffer per client and frees the rest once written: a socket keeps no larger
/// sent buffer for the next replies (ring.rs), and a connection writing without the ring
/// shrinks its own to this (crate::connection).
pub const REPLY_BUFFER_KEEP_LEN: usize = 16 * 1024;

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::io;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use crate::bell::{self, MeshBellRef};
use crate::runtime::{self, Doorbell};
use ring::TaskRun;
use ring::{Ring, SocketId};

/// Bytes per provided buffer: what Redis reads per `read` (PROTO_IOBUF_LEN, 16 KiB). A pipeline
/// of 16 small commands (about 600 bytes) arrives in one buffer; a large value takes one
/// completion per 16 KiB, copied out at once by its connection.
const BUFFER_LEN: usize = 16 * 1024;
/// Provided buffers per shard (4 MiB of memory at 16 KiB each): more than one per connection of
/// a busy benchmark (50 to 200 clients), since a buffer is held only from the turn that reaps it
/// until its connection runs. When they run out, receives stop without losing data (the bytes
/// wait in the socket) and every held buffer is copied out so the receives can be armed again.
const BUFFER_COUNT: u16 = 256;
/// Longest the driver keeps the shard from the runtime's own loop (timers, the other task
/// queues) while traffic flows or while it sleeps in its own ring. Each turn of that loop costs
/// a few system calls (the runtime re-arms its preemption timer), so it is not taken per
/// request; messages from other shards and new connections do not wait for it (the driver wakes
/// the mesh's readers when their [`MeshBell`] rings, the listener's poll wakes the accept task;
/// either wakes the shard from its own ring).
const HAND_BACK_MAX: Duration = Duration::from_micros(500);
/// After this long without traffic the driver parks inside the runtime's loop (woken by the
/// ring through the doorbell, by another shard, a timer or an accept), instead of sleeping in
/// its own ring between hand-backs.
const IDLE_PARK_AFTER: Duration = Duration::from_millis(2);
/// Longest one spin on the ring's shared memory lasts (busy polling only) before the other
/// tasks of the shard get a turn.
const SPIN_SLICE: Duration = Duration::from_micros(20);
/// Wait between polls of the ring if the doorbell failed (the shard then polls instead of
/// parking; it does not stop serving).
const DOORBELL_FAILED_POLL: Duration = Duration::from_millis(1);

/// The shard's ring and the task that turns it.
struct Driver {
    ring: Ring,
    doorbell: Rc<Doorbell>,
    /// The runtime's wait on the doorbell; kept across parks when the driver was kicked awake
    /// before it completed (one wait in flight at most).
    waiting: RefCell<Option<Pin<Box<dyn Future<Output = io::Result<()>>>>>>,
    parked: Cell<bool>,
    kicked: Cell<bool>,
    waker: RefCell<Option<Waker>>,
    doorbell_failed: Cell<bool>,
    busy_poll: Duration,
    /// Other shards' news for this one; `None` outside [`runtime::run_shards`] (no mesh).
    bell: Option<MeshBellRef>,
}

/// What a turn of the driver learnt besides its sockets ([`Driver::take_news`]).
struct News {
    /// The runtime's loop has work of the driver's concern: the driver hands the shard to it.
    runtime_work: bool,
    /// Tasks that wait for another shard's message were woken: the driver yields before it
    /// sleeps.
    woke: bool,
}

enum ShardRing {
    Unset,
    Ready(Rc<Driver>),
    Unavailable,
}

thread_local! {
    /// This shard's ring: one shard per thread, so a thread-local is the shard's.
    static SHARD_RING: RefCell<ShardRing> = const { RefCell::new(ShardRing::Unset) };
}

/// Creates this shard's ring and starts its driver; spinning up to `busy_poll` after the last
/// progress before parking. False (after saying why on stderr, for shard 0) when the kernel
/// refuses, and connections then use the runtime's own sockets.
pub fn start(shard_index: usize, busy_poll: Duration) -> bool {
    let created = Doorbell::new().and_then(|doorbell| {
        let ring = Ring::new(BUFFER_COUNT, BUFFER_LEN, doorbell.fd())?;
        Ok(Rc::new(Driver {
            ring,
            doorbell,
            waiting: RefCell::new(None),
            parked: Cell::new(false),
            kicked: Cell::new(false),
            waker: RefCell::new(None),
            doorbell_failed: Cell::new(false),
            busy_poll,
            bell: bell::mesh_bell(),
        }))
    });
    let driver = match created {
        Ok(driver) => driver,
        Err(error) => {
            if shard_index == 0 {
                eprintln!(
                    "ember: io_uring socket I/O unavailable ({error}); using the runtime's sockets"
                );
            }
            SHARD_RING.with(|cell| *cell.borrow_mut() = ShardRing::Unavailable);
            return false;
        }
    };
    if shard_index == 0 {
        let task_run = match driver.ring.task_run() {
            TaskRun::SingleIssuer => "single issuer, cooperative task work",
            TaskRun::Shared => "cooperative task work",
        };
        eprintln!(
            "ember: socket I/O through io_uring ({task_run}, {BUFFER_COUNT} provided buffers of {} KiB per shard)",
            BUFFER_LEN / 1024
        );
    }
    if let Some(bell) = &driver.bell {
        driver.ring.watch_bell(bell.fd());
    }
    SHARD_RING.with(|cell| *cell.borrow_mut() = ShardRing::Ready(driver.clone()));
    runtime::spawn(drive(driver));
    true
}

impl Driver {
    /// True when a sleep in the ring would wake for every message of another shard and every
    /// new connection: the ring reads this shard's bell (or there is no mesh) and polls every
    /// listener.
    fn may_sleep_in_ring(&self) -> bool {
        (self.bell.is_none() || self.ring.bell_watched()) && self.ring.listeners_watched()
    }

    /// Sleeps in the ring for up to `timeout`, unless another shard's message is waiting.
    fn sleep_in_ring(&self, timeout: Duration) {
        if timeout.is_zero() {
            return;
        }
        match &self.bell {
            Some(bell) => {
                if bell.sleep() {
                    self.ring.wait(timeout);
                    bell.awake();
                } else {
                    // The runtime's loop comes next: the replies queued so far leave first.
                    self.ring.submit();
                }
            }
            None => self.ring.wait(timeout),
        }
    }

    /// Takes the news of the ring and the bell. Another shard's message wakes this shard's
    /// tasks that wait for the mesh ([`bell::wake_mesh_waiters`]), which then run at the
    /// driver's next yield; it also hands the shard to the runtime's loop when none waited,
    /// and while the ring has work of its own (under load, as before the direct wake: three
    /// runs of `default-config.sh` had pipelined requests 3-9% slower without the hand-back,
    /// bench/RESULTS.md), as a connection that the runtime accepts does.
    fn take_news(&self) -> News {
        let connection = self.ring.take_connection();
        let message = self.bell.as_ref().is_some_and(|bell| bell.take());
        let woke = message && bell::wake_mesh_waiters();
        News {
            runtime_work: connection || (message && (!woke || self.ring.has_work())),
            woke,
        }
    }

    /// Hands the shard to the runtime for one turn of its loop (timers, messages from other
    /// shards, accepts, other task queues): rings the doorbell and waits for it, and the
    /// runtime's read of it completes within that turn, with no timer and no sleep.
    async fn hand_back(&self) {
        // The replies queued so far leave before the runtime's turn.
        self.ring.submit();
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from `one`, which outlives the call.
        unsafe { libc::write(self.doorbell.fd(), one.as_ptr().cast(), one.len()) };
        // Not ended by a kick: the runtime's turn must happen.
        self.wait_doorbell(false).await;
    }

    /// Wakes the driver if it is parked (work was queued outside its turn).
    fn kick(&self) {
        if self.parked.get() && !self.kicked.replace(true) {
            if let Some(waker) = self.waker.borrow_mut().take() {
                waker.wake();
            }
        }
    }

    /// Parks: waits until the ring has work (announced on the doorbell) or a connection kicks.
    /// False when the ring had work already, and the driver did not wait (nor hand the shard
    /// to the runtime).
    async fn park(&self) -> bool {
        // Parked too, the shard learns of another shard's message from its bell (the ring's
        // read of the bell's eventfd announces it on the doorbell): the tasks that wait for
        // the mesh wait for the bell alone (`runtime::MeshInbox`).
        if let Some(bell) = &self.bell {
            if !self.ring.bell_watched() {
                // The bell's read failed: the tasks that wait for the mesh go back to the
                // runtime's own wake-ups, which reach a parked shard.
                if bell::wake_mesh_waiters() {
                    return false;
                }
            } else if !bell.sleep() {
                return false;
            }
        }
        if let Err(error) = self.ring.announce(true) {
            eprintln!("ember: io_uring doorbell failed ({error}); the shard polls");
            self.doorbell_failed.set(true);
        }
        self.doorbell.drain();
        // Checked after the drain: work announced before it shows in the ring's flags, work
        // announced after it rings the doorbell again.
        let parked = !self.ring.has_work();
        if parked {
            self.wait_doorbell(true).await;
        }
        if let Some(bell) = &self.bell {
            bell.awake();
        }
        // Left announcing if this fails: that costs an eventfd write per burst of requests,
        // and the next park tries again.
        let _ = self.ring.announce(false);
        parked
    }

    /// Waits for the doorbell, or (when `kickable`) for a connection's kick.
    async fn wait_doorbell(&self, kickable: bool) {
        if self.doorbell_failed.get() {
            runtime::sleep(DOORBELL_FAILED_POLL).await;
            return;
        }
        self.parked.set(kickable);
        poll_fn(|cx| {
            if kickable && self.kicked.replace(false) {
                return Poll::Ready(());
            }
            let mut waiting = self.waiting.borrow_mut();
            let wait = waiting.get_or_insert_with(|| Box::pin(self.doorbell.clone().rung()));
            match wait.as_mut().poll(cx) {
                Poll::Ready(result) => {
                    *waiting = None;
                    if let Err(error) = result {
                        eprintln!("ember: io_uring doorbell failed ({error}); the shard polls");
                        self.doorbell_failed.set(true);
                    }
                    Poll::Ready(())
                }
                Poll::Pending => {
                    *self.waker.borrow_mut() = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await;
        self.parked.set(false);
        self.kicked.set(false);
    }
}

/// The driver task of a shard: runs until the shard ends.
///
/// Each turn reaps what arrived, entering the kernel only when it has work for the shard. After
/// a turn that woke connections, the driver yields so they run (and queue their replies). The
/// runtime's own loop gets a turn when another shard sent a message while the ring has work of
/// its own or no task waited for it (before the next socket turn when the message was already
/// waiting; otherwise the driver wakes the mesh's readers itself), when a listener that the
/// runtime accepts from has a connection, when inference asks
/// ([`crate::spin::hand_back_soon`]), and otherwise at least every [`HAND_BACK_MAX`]. When a
/// turn finds nothing: with busy polling the driver submits the replies and spins on the ring's
/// shared memory (politely, with `sched_yield`); then it submits them and sleeps in its own ring
/// in one `io_uring_enter` (which a socket, a new connection or another shard's message ends)
/// until the next hand-back is due; after [`IDLE_PARK_AFTER`] without traffic it parks inside
/// the runtime's loop.
async fn drive(driver: Rc<Driver>) {
    let mut handed_back = Instant::now();
    let mut progressed = handed_back;
    // Whether the driver already yielded once since its last turn with work: the tasks woken
    // during that turn have then run, and the shard may sleep.
    let mut yielded_idle = false;
    // When the driver last let the shard's other tasks run (the time read at the top of that
    // iteration), and whether they, with the turn before, kept the shard longer than a
    // hand-back allows (a long command). One clock read per iteration measures both.
    let mut paused_at: Option<Instant> = None;
    let mut tasks_ran_long = false;
    loop {
        let mut now = Instant::now();
        if let Some(paused_at) = paused_at.take() {
            tasks_ran_long = now - paused_at >= HAND_BACK_MAX;
        }
        // Another shard's message (or a new connection) that is already waiting is taken
        // before this turn reaps socket data: a request forwarded here by
        // another shard then runs before a later request of a local client, as in glommio's
        // own loop, which handles its channels before its rings. Not after a long command:
        // timers are due then too, and the clients that sent meanwhile are read first, as
        // Redis reads its clients before its cron (an idle timeout must not close a client
        // whose request waited for that command).
        let news = if tasks_ran_long {
            None
        } else {
            Some(driver.take_news())
        };
        if news.as_ref().is_some_and(|news| news.woke) {
            // The tasks that take another shard's messages run at the next yield, before the
            // connections this turn wakes (a request forwarded here runs before a later
            // request of a local client, as below).
            yielded_idle = false;
        }
        if news.is_some_and(|news| news.runtime_work) {
            driver.hand_back().await;
            let after = Instant::now();
            tasks_ran_long = after - now >= HAND_BACK_MAX;
            (handed_back, now) = (after, after);
            // The runtime's turn may have woken tasks queued behind the driver (the receiver
            // of another shard's message, woken in the same turn as the driver): they run
            // before the shard sleeps. Without this yield a shard that had been idle could sleep
            // in its ring with the message unserved until the next hand-back, up to 500 us.
            yielded_idle = false;
        }
        // Enters the kernel only when it has work for the shard; the replies queued by the
        // connections leave with the next sleep in the ring, in the same enter.
        let worked = driver.ring.reap() > 0;
        if worked {
            progressed = now;
            yielded_idle = false;
        }
        let news = driver.take_news();
        if news.woke {
            yielded_idle = false;
        }
        if news.runtime_work || crate::spin::take_hand_back() || now - handed_back >= HAND_BACK_MAX
        {
            driver.hand_back().await;
            (handed_back, paused_at) = (now, Some(now));
            yielded_idle = false; // As above: what the runtime's turn woke runs first.
            continue;
        }
        if worked || !yielded_idle || crate::shard::mesh::take_reply_woke_task() {
            // The connections just woken run now and queue their replies (also those woken
            // by a reply from another shard, which its receiver task delivered after the
            // driver's last yield: without this, a shard could sleep with a client's reply
            // unsent until the next hand-back, up to 500 us later).
            yielded_idle = !worked;
            runtime::yield_now().await;
            paused_at = Some(now);
            continue;
        }
        // Two quiet turns in a row: every task woken by the last completions has run.
        let idle = now - progressed;
        if idle < driver.busy_poll {
            driver.ring.submit();
            let slice_start = Instant::now();
            while !driver.ring.has_work()
                && !driver.bell.as_ref().is_some_and(|bell| bell.pending())
                && slice_start.elapsed() < SPIN_SLICE
                && !crate::spin::hand_back_asked()
            {
                // Spins politely: the shard keeps polling while its core has nothing else to
                // run, and gives the core at once to a thread that wants it (a client, another
                // shard). With the shards on every core and clients beside them (2 shards and
                // redis-benchmark on 2 cores), a plain spin took the CPU they needed: a shard
                // waiting for another shard's reply spun while that shard and the client
                // waited for a core (MSET of 8 keys: 15.9 to 12.1 us of server CPU each).
                // SAFETY: sched_yield takes no arguments.
                unsafe { libc::sched_yield() };
            }
            runtime::yield_now().await;
            paused_at = Some(now);
            continue;
        }
        if driver.ring.confirm_wanted() {
            // A connection waits for its send to leave, which the kernel has not taken yet
            // (an enter refused for a moment): the next turn submits it again.
            runtime::yield_now().await;
            paused_at = Some(now);
            continue;
        }
        if idle < IDLE_PARK_AFTER && driver.may_sleep_in_ring() {
            // Submits the queued replies and sleeps in one enter: their sends complete
            // silently when they leave whole (quick sends), so only new data wakes it.
            let until = (handed_back + HAND_BACK_MAX).min(progressed + IDLE_PARK_AFTER);
            driver.sleep_in_ring(until.saturating_duration_since(now));
            continue;
        }
        driver.ring.submit();
        tasks_ran_long = false;
        if driver.park().await {
            handed_back = Instant::now();
        } else {
            // The ring had work after all: the next idle turn yields before anything else.
            yielded_idle = false;
        }
    }
}

/// Watches listening socket `fd` in this shard's ring, when the shard has one: a connection
/// waiting to be accepted then ends the driver's sleep in the ring, and the driver hands the
/// shard to the runtime's loop, which accepts it, at its next turn (instead of at the next
/// periodic hand-back, up to [`HAND_BACK_MAX`] later). `fd` stays open as long as the shard.
pub fn watch_listener(fd: RawFd) {
    SHARD_RING.with(|cell| {
        if let ShardRing::Ready(driver) = &*cell.borrow() {
            driver.ring.watch_listener(fd);
            driver.kick();
        }
    });
}

/// True when this shard's driver reads the mesh's bell: it wakes the tasks that wait for
/// another shard's message itself ([`crate::runtime::MeshInbox`]), whether it sleeps in its
/// ring or parks in the runtime's loop.
pub fn reads_bell() -> bool {
    shard_driver().is_some_and(|driver| driver.bell.is_some() && driver.ring.bell_watched())
}

/// Starts an `fdatasync` of `file` in this shard's ring ([`ring::Ring::start_sync`]): the
/// shard goes on serving while the kernel's worker syncs, and `done` runs with the outcome in
/// the driver's turn that reaps it. Gives `done` back, not started, when the shard has no ring
/// or a sync is already in flight in it.
pub fn start_sync(
    file: std::fs::File,
    done: Box<dyn FnOnce(io::Result<()>)>,
) -> Result<(), Box<dyn FnOnce(io::Result<()>)>> {
    let Some(driver) = shard_driver() else {
        return Err(done);
    };
    driver.ring.start_sync(file, done)?;
    driver.kick();
    Ok(())
}

/// This shard's ring driver, when it has one.
fn shard_driver() -> Option<Rc<Driver>> {
    SHARD_RING.with(|cell| match &*cell.borrow() {
        ShardRing::Ready(driver) => Some(driver.clone()),
        _ => None,
    })
}

/// Waits until listening socket `fd`, watched in this shard's ring ([`watch_listener`]), may
/// have a connection to accept, for a task that accepts from `fd` itself: the ring's poll then
/// wakes that task directly, in the turn that reaps it, instead of handing the shard to the
/// runtime's loop to accept. True when it may (a spurious wake-up costs one accept that finds
/// nothing); false at once when the ring does not watch `fd` (no ring, or its poll failed),
/// and the caller accepts through the runtime.
pub async fn listener_readable(fd: RawFd) -> bool {
    let Some(driver) = shard_driver() else {
        return false;
    };
    poll_fn(|cx| match driver.ring.poll_listener(fd, cx) {
        None => Poll::Ready(false),
        Some(true) => Poll::Ready(true),
        Some(false) => Poll::Pending,
    })
    .await
}

/// A connection's socket on its shard's ring.
pub struct Socket {
    driver: Rc<Driver>,
    id: SocketId,
    closed: bool,
}

impl Socket {
    /// Puts connected socket `fd` on this shard's ring; `None` when the shard has none.
    pub fn open(fd: RawFd) -> Option<Self> {
        let driver = shard_driver()?;
        let id = driver.ring.open(fd);
        driver.kick();
        Some(Self {
            driver,
            id,
            closed: false,
        })
    }

    /// Reads what has arrived into `buf` (at least one byte, or 0 at end of stream).
    ///
    /// # Errors
    /// The receive's error (a reset connection).
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| {
            let result = self.driver.ring.try_read(self.id, buf, Some(cx.waker()));
            // Taking bytes may let a paused receive be armed again.
            self.driver.kick();
            match result {
                Some(result) => Poll::Ready(result),
                None => Poll::Pending,
            }
        })
        .await
    }

    /// Takes the socket's spare reply buffer into `out` when `out` is empty and smaller
    /// ([`ring::Ring::reclaim_spare`]): a connection calls it before each batch.
    pub fn reclaim_spare(&self, out: &mut Vec<u8>) {
        self.driver.ring.reclaim_spare(self.id, out);
    }

    /// Frees the socket's spare reply buffer: the connection has been idle and gives its
    /// buffers back (crate::connection).
    pub fn drop_spare(&self) {
        self.driver.ring.drop_spare(self.id);
    }

    /// Queues all of `out` to be sent at the driver's next turn and leaves an empty buffer in
    /// its place; waits first for the previous send, so at most one is in flight.
    ///
    /// # Errors
    /// When an earlier send failed (the peer is gone).
    pub async fn send(&self, out: &mut Vec<u8>) -> io::Result<()> {
        poll_fn(|cx| {
            let result = self.driver.ring.try_send(self.id, out, Some(cx.waker()));
            self.driver.kick();
            match result {
                Some(result) => Poll::Ready(result),
                None => Poll::Pending,
            }
        })
        .await
    }

    /// A handle through which others on this shard may send on the socket while its
    /// connection waits (see [`SocketRef::send_copy`]).
    pub fn share(&self) -> SocketRef {
        SocketRef {
            driver: self.driver.clone(),
            id: self.id,
        }
    }

    /// Waits for the last send to leave, then takes the socket off the ring. The descriptor
    /// may be closed afterwards.
    pub async fn close(mut self) {
        poll_fn(|cx| {
            if self.driver.ring.sending(self.id, Some(cx.waker())) {
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await;
        self.closed = true;
        self.driver.ring.close(self.id);
        self.driver.kick();
    }
}

/// A connection's socket as another task of its shard sees it: Pub/Sub delivery hands a
/// message straight to the ring with it, without waking the connection's task (one wake-up and
/// one poll of that task per subscriber and message otherwise).
///
/// Only valid while its [`Socket`] is open: the holder uses it only while the connection's
/// task is parked waiting for input, which it is not once it leaves to close the socket.
#[derive(Clone)]
pub struct SocketRef {
    driver: Rc<Driver>,
    id: SocketId,
}

impl std::fmt::Debug for SocketRef {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_tuple("SocketRef").field(&self.id).finish()
    }
}

impl SocketRef {
    /// Queues a copy of `bytes` for the driver's next turn when the socket has no send in
    /// flight (and no failed one): true when queued, false when the caller must hand the bytes
    /// to the connection instead (they would otherwise overtake its earlier output, or wait
    /// behind a peer that does not read).
    pub fn send_copy(&self, bytes: &[u8]) -> bool {
        let queued = self.driver.ring.send_copy(self.id, bytes);
        if queued {
            self.driver.kick();
        }
        queued
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        if !self.closed {
            // A connection task ended without `close`: the ring lets go of the socket once
            // the kernel is done with it.
            self.driver.ring.close(self.id);
            self.driver.kick();
        }
    }
}
