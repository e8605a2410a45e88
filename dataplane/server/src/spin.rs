//! Busy polling (`--busy-poll-us N`, N > 0): while a shard has had traffic in the last N microseconds, its
//! connections learn that a socket became readable from one non-blocking `epoll_wait` per spin of the shard,
//! instead of from an io_uring poll completion.
//!
//! Why: an io_uring poll completes through task work that the kernel must deliver to the shard's thread. When
//! that thread is spinning in user space, the kernel interrupts it with an inter-processor interrupt, which on
//! a virtual machine costs tens of microseconds (measured: a spinning glommio shard answered a one-connection
//! GET in 32 us at the median, slower than the 23 us of a parked one). epoll's readiness callback only links
//! the socket into the ready list, in the context of the sender, so a spinning `epoll_wait(.., 0)` sees it as
//! soon as the data is queued: the same path the busy-polling echo floor takes.
//!
//! When no socket has been ready for N microseconds, the spinner stops, every waiting connection goes back to
//! the runtime's own readiness (io_uring), and the shard may park. The next data to arrive wakes the spinner.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

thread_local! {
    /// Set when work in another task queue is waiting (a queued inference batch): the spinner stops polling in
    /// place and hands the shard back at once. One shard per thread, so a thread-local is the shard's.
    static HAND_BACK: Cell<bool> = const { Cell::new(false) };
}

/// Asks this thread's spinner, if it is spinning in place, to hand the shard back to the runtime now, so
/// that work waiting in another task queue runs without waiting out a spin slice.
pub fn hand_back_soon() {
    HAND_BACK.with(|flag| flag.set(true));
}

/// True when [`hand_back_soon`] was asked and not yet taken.
pub(crate) fn hand_back_asked() -> bool {
    HAND_BACK.with(Cell::get)
}

/// Takes the request made by [`hand_back_soon`], if any: for the io_uring driver, which spins in place of this
/// spinner under `--io-uring yes`.
pub(crate) fn take_hand_back() -> bool {
    HAND_BACK.with(|flag| flag.replace(false))
}

/// One shard's epoll set and the connections waiting on it.
pub struct Spinner {
    epoll: OwnedFd,
    /// Waiting connections by token (a slot is reused once its connection closes).
    slots: RefCell<Vec<Slot>>,
    free: RefCell<Vec<usize>>,
    spinning: Cell<bool>,
    last_ready: Cell<Instant>,
    idle_after: Duration,
    /// The spin task, while it waits for [`Spinner::wake`].
    task: RefCell<Option<Waker>>,
    /// `epoll_wait` calls made so far: a blocking fence waits for the next one (see
    /// [`Spinner::polls`]).
    polls: Cell<u64>,
}

#[derive(Default)]
struct Slot {
    ready: bool,
    waker: Option<Waker>,
}

/// Events taken from the kernel per `epoll_wait`.
const EVENTS_MAX: usize = 256;
/// Longest the spin task polls epoll in place. Each turn of the runtime's own loop costs an io_uring
/// submission (its preemption timer: 3 to 5 us here, and 40% of a spinning shard when the spinner handed back
/// after every `epoll_wait`), and a request that arrives during that turn waits for it. So the spinner hands
/// the shard back to the runtime only after a slice without traffic, when the client is likely thinking, or
/// after [`HAND_BACK_MAX`] of continuous traffic; in between it only yields to the connections it woke.
const SPIN_SLICE: Duration = Duration::from_micros(20);
/// Longest the runtime's loop (timers, io_uring completions, messages from other shards) waits under
/// continuous traffic.
const HAND_BACK_MAX: Duration = Duration::from_micros(100);
/// Pause that hands the runtime one turn of its loop.
const SPIN_PAUSE: Duration = Duration::from_micros(1);

impl Spinner {
    /// A spinner that stops after `idle_after` without a ready socket.
    ///
    /// # Errors
    /// When the kernel refuses an epoll instance.
    pub fn new(idle_after: Duration) -> io::Result<Self> {
        // SAFETY: epoll_create1 takes no pointers.
        let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epoll < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            // SAFETY: a new descriptor that nothing else owns; OwnedFd closes it once, on drop.
            epoll: unsafe { OwnedFd::from_raw_fd(epoll) },
            slots: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
            spinning: Cell::new(false),
            last_ready: Cell::new(Instant::now()),
            idle_after,
            task: RefCell::new(None),
            polls: Cell::new(0),
        })
    }

    /// Adds socket `fd` (edge-triggered: an event for every arrival after the socket was drained) and returns
    /// its token.
    ///
    /// # Errors
    /// When epoll refuses the descriptor.
    pub fn register(&self, fd: RawFd) -> io::Result<usize> {
        let token = match self.free.borrow_mut().pop() {
            Some(token) => token,
            None => {
                let mut slots = self.slots.borrow_mut();
                slots.push(Slot::default());
                slots.len() - 1
            }
        };
        self.slots.borrow_mut()[token] = Slot::default();
        let mut event = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
            u64: token as u64,
        };
        // SAFETY: `event` outlives the call; the kernel copies it.
        if unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event) }
            < 0
        {
            self.free.borrow_mut().push(token);
            return Err(io::Error::last_os_error());
        }
        Ok(token)
    }

    /// Removes socket `fd` registered as `token`, before the socket closes.
    pub fn unregister(&self, fd: RawFd, token: usize) {
        // SAFETY: no event pointer is needed for EPOLL_CTL_DEL.
        unsafe {
            libc::epoll_ctl(
                self.epoll.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                fd,
                std::ptr::null_mut(),
            );
        }
        self.slots.borrow_mut()[token] = Slot::default();
        self.free.borrow_mut().push(token);
    }

    /// True while the spinner runs: waiting connections should wait on [`Spinner::readable`].
    pub fn spinning(&self) -> bool {
        self.spinning.get()
    }

    /// Starts spinning (data arrived through the runtime's own readiness while the spinner slept).
    pub fn wake(&self) {
        self.last_ready.set(Instant::now());
        if !self.spinning.replace(true) {
            if let Some(task) = self.task.borrow_mut().take() {
                task.wake();
            }
        }
    }

    /// Waits until `token`'s socket may have data, or until the spinner stops (the caller then checks the
    /// socket and, if it is empty, waits through the runtime instead).
    pub async fn readable(&self, token: usize) {
        poll_fn(|cx| {
            let mut slots = self.slots.borrow_mut();
            let slot = &mut slots[token];
            if slot.ready || !self.spinning.get() {
                slot.ready = false;
                slot.waker = None;
                return Poll::Ready(());
            }
            slot.waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await;
    }

    /// How many times the spinner has asked the kernel for ready sockets: once this moved past a value read
    /// earlier, every socket that had data then has had its connection woken.
    pub fn polls(&self) -> u64 {
        self.polls.get()
    }

    /// Collects ready sockets without blocking and wakes their connections; true when any was ready.
    fn poll_once(&self, events: &mut [libc::epoll_event]) -> bool {
        // SAFETY: `events` is a valid buffer of `events.len()` entries for the kernel to fill.
        let count = unsafe {
            libc::epoll_wait(
                self.epoll.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as i32,
                0,
            )
        };
        self.polls.set(self.polls.get() + 1);
        if count <= 0 {
            return false;
        }
        let mut slots = self.slots.borrow_mut();
        for event in &events[..count as usize] {
            if let Some(slot) = slots.get_mut(event.u64 as usize) {
                slot.ready = true;
                if let Some(waker) = slot.waker.take() {
                    waker.wake();
                }
            }
        }
        true
    }

    /// Stops spinning: every waiting connection returns to the runtime's readiness.
    fn stop(&self) {
        self.spinning.set(false);
        for slot in self.slots.borrow_mut().iter_mut() {
            if let Some(waker) = slot.waker.take() {
                waker.wake();
            }
        }
    }

    /// The spin task of a shard: runs until the shard ends.
    pub async fn run(self: Rc<Self>) {
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; EVENTS_MAX];
        self.wake();
        let mut handed_back = Instant::now();
        loop {
            if !self.spinning.get() {
                poll_fn(|cx| {
                    if self.spinning.get() {
                        return Poll::Ready(());
                    }
                    *self.task.borrow_mut() = Some(cx.waker().clone());
                    Poll::Pending
                })
                .await;
            }
            let slice_start = Instant::now();
            let mut ready = self.poll_once(&mut events);
            while !ready && slice_start.elapsed() < SPIN_SLICE && !HAND_BACK.with(Cell::get) {
                std::hint::spin_loop();
                ready = self.poll_once(&mut events);
            }
            let others_waiting = HAND_BACK.with(|flag| flag.replace(false));
            if ready {
                self.last_ready.set(Instant::now());
            } else if self.last_ready.get().elapsed() > self.idle_after {
                self.stop();
                continue;
            }
            if !ready || others_waiting || handed_back.elapsed() > HAND_BACK_MAX {
                crate::runtime::sleep(SPIN_PAUSE).await;
                handed_back = Instant::now();
            } else {
                crate::runtime::yield_now().await;
            }
        }
    }
}
