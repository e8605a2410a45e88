//! The mesh's bell: how a shard learns that another shard sent it a message when it does not
//! wait inside glommio's loop. glommio wakes a receiving task only in its own loop, and writes a
//! shard's wake-up eventfd only while that shard sleeps inside glommio; the socket ring driver
//! (`io/mod.rs`) sleeps in its own ring instead while traffic flows. So every send on the mesh
//! ([`crate::runtime::MeshSenders`]) also rings the receiver's bell: a flag the driver checks
//! each turn (it then hands the shard to glommio's loop, which delivers the message), and, while
//! the driver sleeps in its ring, an eventfd that the ring reads. With `--io-uring no` no shard
//! sleeps outside glommio's loop, and there are no bells (`runtime::run_shards`).

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Says that a message from another shard is waiting, for a shard that does not wait inside the
/// runtime's own loop (whose channel wake-ups only reach a shard parked in that loop): the
/// shard's socket ring driver checks [`MeshBell::take`] each turn and, before it parks in its own
/// ring, [`MeshBell::sleep`]; while it sleeps there, a sender also writes the bell's eventfd,
/// which the ring reads.
pub struct MeshBell {
    pending: AtomicBool,
    sleeping: AtomicBool,
    eventfd: OwnedFd,
}

thread_local! {
    /// This shard's bell (one shard per thread): every shard's bells and this one's index.
    static MESH_BELL: RefCell<Option<(Arc<[MeshBell]>, usize)>> = const { RefCell::new(None) };
}

/// Makes `bells[index]` this thread's (this shard's) bell.
pub fn install(bells: Arc<[MeshBell]>, index: usize) {
    MESH_BELL.with(|bell| *bell.borrow_mut() = Some((bells, index)));
}

impl MeshBell {
    /// A silent bell.
    ///
    /// # Errors
    /// When the kernel refuses an eventfd.
    pub fn new() -> io::Result<Self> {
        // Blocking: io_uring answers a read of a non-blocking eventfd with EAGAIN instead of
        // waiting for it.
        // SAFETY: eventfd takes no pointers.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            pending: AtomicBool::new(false),
            sleeping: AtomicBool::new(false),
            // SAFETY: a new descriptor that nothing else owns.
            eventfd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Announces a message (sent already) to the bell's shard.
    pub fn ring(&self) {
        // Paired with `sleep`: either the sleeper sees `pending`, or this sees `sleeping`.
        self.pending.store(true, Ordering::SeqCst);
        if self.sleeping.load(Ordering::SeqCst) {
            let one = 1u64.to_ne_bytes();
            // SAFETY: writes 8 bytes from `one`, which outlives the call. An eventfd write
            // fails only when the counter would overflow, and then it is nonzero anyway.
            unsafe { libc::write(self.eventfd.as_raw_fd(), one.as_ptr().cast(), one.len()) };
        }
    }

    /// Takes the news that a message arrived since the last take.
    pub fn take(&self) -> bool {
        self.pending.load(Ordering::Relaxed) && self.pending.swap(false, Ordering::AcqRel)
    }

    /// True when a message arrived since the last [`MeshBell::take`] (does not take it).
    pub fn pending(&self) -> bool {
        self.pending.load(Ordering::Relaxed)
    }

    /// Announces that the shard is about to sleep outside the runtime's loop; false (and not
    /// sleeping) when a message is already waiting.
    pub fn sleep(&self) -> bool {
        self.sleeping.store(true, Ordering::SeqCst);
        if self.pending.load(Ordering::SeqCst) {
            self.sleeping.store(false, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// The shard woke up.
    pub fn awake(&self) {
        self.sleeping.store(false, Ordering::SeqCst);
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
