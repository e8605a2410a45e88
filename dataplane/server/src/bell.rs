//! The mesh's bell: how a shard learns that another shard sent it a message when it does not
//! wait inside glommio's loop. glommio wakes a receiving task only in its own loop, and writes a
//! shard's wake-up eventfd only while that shard sleeps inside glommio; the socket ring driver
//! (`io/mod.rs`) sleeps in its own ring instead while traffic flows. So every send on the mesh
//! ([`crate::runtime::MeshSenders`]) also rings the receiver's bell: a count of what each peer
//! sent, which the driver compares with what it noticed each turn (it then wakes the tasks that
//! read the mesh, [`wake_mesh_waiters`]), and, while the shard sleeps in its ring or parks, an
//! eventfd that the ring reads. With `--io-uring no` no shard sleeps outside glommio's loop,
//! and there are no bells (`runtime::run_shards`).

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Waker;

/// Says that a message from another shard is waiting, for a shard that does not wait inside the
/// runtime's own loop (whose channel wake-ups only reach a shard parked in that loop): the
/// shard's socket ring driver checks [`MeshBell::take`] each turn and, before it parks in its own
/// ring, [`MeshBell::sleep`]; while it sleeps there, a sender also writes the bell's eventfd,
/// which the ring reads.
///
/// A message costs its sender one atomic add on a cache line of its own and a read of
/// `sleeping`, which changes only when the receiver sleeps: the count is the news. (A flag
/// beside the counts, set by every send and swapped by every turn of the receiver, was a third
/// and fourth transfer of a cache line between the cores a message: `ring_from` was 6% of two
/// shards' time under pipelined GETs.)
pub struct MeshBell {
    sleeping: Padded<AtomicBool>,
    eventfd: OwnedFd,
    /// Messages each shard sent this one, counted after they are in the channel: the receiver
    /// compares them with what it took to know that a message waits without asking the
    /// channel (glommio's receive registers a waker with its loop each time it finds the
    /// channel empty, and frees them only as messages arrive through that loop).
    sent: Box<[Padded<AtomicU64>]>,
    /// Each peer's count when the receiver last took the news ([`MeshBell::take`]); read and
    /// written by the receiving shard alone (so not padded apart).
    noticed: Box<[AtomicU64]>,
}

/// A value alone on its cache line: the counts are written by one core and read by another.
#[repr(align(64))]
#[derive(Default)]
struct Padded<T>(T);

thread_local! {
    /// This shard's bell (one shard per thread): every shard's bells and this one's index.
    static MESH_BELL: RefCell<Option<(Arc<[MeshBell]>, usize)>> = const { RefCell::new(None) };
    /// The tasks of this shard that wait for another shard's message
    /// ([`crate::runtime::MeshInbox`]): the driver wakes them when the bell rings.
    static MESH_WAITERS: RefCell<Vec<Waker>> = const { RefCell::new(Vec::new()) };
}

/// Notes that the task of `waker` waits for a message of the mesh on this shard.
pub fn wait_for_mesh(waker: &Waker) {
    MESH_WAITERS.with(|waiters| {
        let mut waiters = waiters.borrow_mut();
        // By the task's pointer: `will_wake` also compares the vtable's address, which
        // glommio's clones of a task's waker do not share with the waker its poll gets (the
        // list grew by a waker a poll and overflowed the task's reference count).
        if !waiters.iter().any(|waiting| waiting.data() == waker.data()) {
            waiters.push(waker.clone());
        }
    });
}

/// Wakes this shard's tasks that wait for a message of the mesh, so that they take what the
/// bell announced in the shard's next run of its tasks, with no turn of the runtime's loop
/// (whose own wake-up of a channel's receiver comes only in that turn: an eventfd write and
/// four `io_uring_enter`s a hop, each way). False when no task waited (each is busy, and takes
/// the message when it next looks).
pub fn wake_mesh_waiters() -> bool {
    let mut waiters = MESH_WAITERS.with(|waiters| std::mem::take(&mut *waiters.borrow_mut()));
    let woke = !waiters.is_empty();
    for waker in waiters.drain(..) {
        waker.wake();
    }
    // The list's memory serves the next waits (a wake only schedules its task, so nothing
    // waited meanwhile).
    MESH_WAITERS.with(|list| {
        let mut list = list.borrow_mut();
        if list.is_empty() {
            *list = waiters;
        }
    });
    woke
}

/// Makes `bells[index]` this thread's (this shard's) bell.
pub fn install(bells: Arc<[MeshBell]>, index: usize) {
    MESH_BELL.with(|bell| *bell.borrow_mut() = Some((bells, index)));
}

impl MeshBell {
    /// A silent bell for a shard of a mesh of `shard_count`.
    ///
    /// # Errors
    /// When the kernel refuses an eventfd.
    pub fn new(shard_count: usize) -> io::Result<Self> {
        // Blocking: io_uring answers a read of a non-blocking eventfd with EAGAIN instead of
        // waiting for it.
        // SAFETY: eventfd takes no pointers.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            sleeping: Padded::default(),
            // SAFETY: a new descriptor that nothing else owns.
            eventfd: unsafe { OwnedFd::from_raw_fd(fd) },
            sent: (0..shard_count).map(|_| Padded::default()).collect(),
            noticed: (0..shard_count).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    /// Announces a message that shard `source` put in its channel to the bell's shard.
    pub fn ring_from(&self, source: usize) {
        // Paired with `sleep`: either the sleeper sees this count, or this sees `sleeping`
        // (both sequentially consistent; the add is a full barrier where it matters).
        self.sent[source].0.fetch_add(1, Ordering::SeqCst);
        if self.sleeping.0.load(Ordering::SeqCst) {
            let one = 1u64.to_ne_bytes();
            // SAFETY: writes 8 bytes from `one`, which outlives the call. An eventfd write
            // fails only when the counter would overflow, and then it is nonzero anyway.
            unsafe { libc::write(self.eventfd.as_raw_fd(), one.as_ptr().cast(), one.len()) };
        }
    }

    /// Messages shard `source` put in its channel to the bell's shard so far.
    pub fn sent_by(&self, source: usize) -> u64 {
        self.sent[source].0.load(Ordering::Acquire)
    }

    /// Takes the news that a message arrived since the last take (on the bell's shard).
    pub fn take(&self) -> bool {
        let mut news = false;
        for (sent, noticed) in self.sent.iter().zip(self.noticed.iter()) {
            let count = sent.0.load(Ordering::Acquire);
            if count != noticed.load(Ordering::Relaxed) {
                noticed.store(count, Ordering::Relaxed);
                news = true;
            }
        }
        news
    }

    /// True when a message arrived since the last [`MeshBell::take`] (does not take it).
    pub fn pending(&self) -> bool {
        self.unnoticed(Ordering::Relaxed)
    }

    /// True when some peer's count differs from what the last take noticed.
    fn unnoticed(&self, order: Ordering) -> bool {
        self.sent
            .iter()
            .zip(self.noticed.iter())
            .any(|(sent, noticed)| sent.0.load(order) != noticed.load(Ordering::Relaxed))
    }

    /// Announces that the shard is about to sleep outside the runtime's loop; false (and not
    /// sleeping) when a message is already waiting.
    pub fn sleep(&self) -> bool {
        self.sleeping.0.store(true, Ordering::SeqCst);
        if self.unnoticed(Ordering::SeqCst) {
            self.sleeping.0.store(false, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// The shard woke up.
    pub fn awake(&self) {
        self.sleeping.0.store(false, Ordering::SeqCst);
    }

    /// The eventfd written while the shard sleeps (8-byte counter reads).
    pub fn fd(&self) -> RawFd {
        self.eventfd.as_raw_fd()
    }
}

/// This shard's bell, on a shard started by [`crate::runtime::run_shards`].
pub fn mesh_bell() -> Option<MeshBellRef> {
    MESH_BELL.with(|bell| {
        bell.borrow()
            .as_ref()
            .map(|(bells, index)| MeshBellRef(bells.clone(), *index))
    })
}

/// A shard's handle on its own [`MeshBell`].
pub struct MeshBellRef(Arc<[MeshBell]>, usize);

impl std::ops::Deref for MeshBellRef {
    type Target = MeshBell;

    fn deref(&self) -> &MeshBell {
        &self.0[self.1]
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{RawWaker, RawWakerVTable, Waker};

    use super::{wait_for_mesh, wake_mesh_waiters};

    /// Wakes and live clones of the test's one "task".
    static WAKES: AtomicUsize = AtomicUsize::new(0);
    static LIVE: AtomicUsize = AtomicUsize::new(0);

    // Two tables with the same functions: a clone carries the second, as glommio's clones of a
    // task's waker carry a vtable at another address than the waker a poll gets.
    static FIRST: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop);
    static SECOND: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop);

    unsafe fn clone(data: *const ()) -> RawWaker {
        LIVE.fetch_add(1, Ordering::SeqCst);
        RawWaker::new(data, &SECOND)
    }
    unsafe fn wake(data: *const ()) {
        wake_by_ref(data);
        drop(data);
    }
    unsafe fn wake_by_ref(_: *const ()) {
        WAKES.fetch_add(1, Ordering::SeqCst);
    }
    unsafe fn drop(_: *const ()) {
        LIVE.fetch_sub(1, Ordering::SeqCst);
    }

    #[test]
    fn a_task_waits_for_the_mesh_once_however_often_it_is_polled() {
        static TASK: u8 = 0;
        LIVE.store(1, Ordering::SeqCst);
        // SAFETY: the vtable's functions only count; the data pointer is never read.
        let waker =
            unsafe { Waker::from_raw(RawWaker::new(std::ptr::from_ref(&TASK).cast(), &FIRST)) };
        for _ in 0..1000 {
            wait_for_mesh(&waker);
        }
        assert_eq!(
            LIVE.load(Ordering::SeqCst),
            2,
            "one clone kept, not one a poll"
        );
        assert!(wake_mesh_waiters());
        assert_eq!(WAKES.load(Ordering::SeqCst), 1);
        assert_eq!(LIVE.load(Ordering::SeqCst), 1, "the woken clone is gone");
        assert!(!wake_mesh_waiters(), "nothing waits any more");
        std::mem::drop(waker);
    }
}
