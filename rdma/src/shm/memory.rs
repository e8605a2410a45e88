//! Shared memory: a memfd mapped into this process, which another process can map by receiving the
//! file descriptor over a Unix socket.
//!
//! Both sides may touch the same bytes at the same time (the server rewrites the read region while a
//! client copies from it), so every access goes through atomic loads and stores: word-sized ones on
//! aligned 8-byte words and byte-sized ones at unaligned edges. On x86-64 and AArch64 these compile
//! to plain moves, and they keep concurrent access defined behaviour in Rust's memory model; torn
//! multi-word reads are expected and caught by the protocol's version and checksum checks.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

use crate::error::{Error, ErrorKind, Result};

/// The largest mapping this crate creates or accepts: bounds what a peer's hello can make us map.
pub const MAPPING_LEN_MAX: usize = 1 << 36;

/// What a peer that receives a memfd may do with the file; [`SharedMemory::seal_for_peers`]
/// enforces it with seals, which bind every holder of the descriptor, the peer included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerAccess {
    /// Read and write the bytes (the rings); never change the file's size.
    ReadWrite,
    /// Read only (the read regions); never write, never change the size. Mappings made before
    /// sealing (ours) stay writable.
    ReadOnly,
}

impl PeerAccess {
    /// The seals. Size: a peer that shrank the file would make our next touch of a page past the
    /// new end SIGBUS, and growing it is never needed. `F_SEAL_FUTURE_WRITE` (Linux 5.1) rather
    /// than `F_SEAL_WRITE`, which cannot be added while our own writable mapping exists.
    /// `F_SEAL_SEAL` last, so that nobody adds or changes seals afterwards.
    fn seals(self) -> libc::c_int {
        let size = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
        match self {
            Self::ReadWrite => size,
            Self::ReadOnly => size | libc::F_SEAL_FUTURE_WRITE,
        }
    }
}

/// A shared, memfd-backed mapping.
#[derive(Debug)]
pub struct SharedMemory {
    fd: OwnedFd,
    base: *mut u8,
    len: usize,
    writable: bool,
}

// SAFETY: the mapping is process-wide memory that lives until `drop`; every access goes through
// atomics, so moving or sharing the handle between threads cannot cause a data race.
unsafe impl Send for SharedMemory {}
// SAFETY: as above: `&SharedMemory` only allows atomic accesses.
unsafe impl Sync for SharedMemory {}

impl SharedMemory {
    /// Creates a zero-filled memfd of `len` bytes (rounded up to 8) named `name`, mapped read-write,
    /// that accepts seals ([`SharedMemory::seal_for_peers`]).
    ///
    /// # Errors
    /// `Config` when `len` is 0 or above [`MAPPING_LEN_MAX`]; `Io` when memfd_create, ftruncate or
    /// mmap fail.
    pub fn create(name: &str, len: usize) -> Result<Self> {
        if len == 0 || len > MAPPING_LEN_MAX {
            return Err(Error::new(
                ErrorKind::Config,
                format!("shared memory length {len} outside 1..={MAPPING_LEN_MAX}"),
            ));
        }
        let len = len.next_multiple_of(8);
        let c_name = std::ffi::CString::new(name.replace('\0', "_"))
            .map_err(|_| Error::new(ErrorKind::Config, "memfd name has a NUL byte"))?;
        // SAFETY: c_name is a valid NUL-terminated string; the flags are documented values.
        let raw = unsafe {
            libc::memfd_create(c_name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING)
        };
        if raw < 0 {
            return Err(Error::last_os("memfd_create"));
        }
        // SAFETY: raw is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: fd is a valid memfd; len fits in off_t because it is at most MAPPING_LEN_MAX.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) } != 0 {
            return Err(Error::last_os("ftruncate memfd"));
        }
        Self::map(fd, len, true)
    }

    /// Maps a memfd received from a peer. `len` is what the peer said; it is checked against the
    /// file's real size so that a lying peer cannot make us touch pages past the end (SIGBUS).
    ///
    /// # Errors
    /// `Protocol` when `len` is 0, above [`MAPPING_LEN_MAX`], not a multiple of 8, or larger than
    /// the file; `Io` when fstat or mmap fail.
    pub fn from_fd(fd: OwnedFd, len: usize, writable: bool) -> Result<Self> {
        if len == 0 || len > MAPPING_LEN_MAX || len % 8 != 0 {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!(
                    "peer's mapping length {len} is 0, above {MAPPING_LEN_MAX} or not 8-aligned"
                ),
            ));
        }
        // SAFETY: stat is plain data; fstat fills it for a valid descriptor.
        let mut stat: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fd is a valid descriptor we own; stat points to writable memory.
        if unsafe { libc::fstat(fd.as_raw_fd(), &mut stat) } != 0 {
            return Err(Error::last_os("fstat received fd"));
        }
        if (stat.st_size as u64) < len as u64 {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!(
                    "peer's mapping length {len} exceeds its file size {}",
                    stat.st_size
                ),
            ));
        }
        Self::map(fd, len, writable)
    }

    fn map(fd: OwnedFd, len: usize, writable: bool) -> Result<Self> {
        let protection = if writable {
            libc::PROT_READ | libc::PROT_WRITE
        } else {
            libc::PROT_READ
        };
        // SAFETY: a fresh shared mapping of a descriptor whose file is at least len bytes long;
        // the kernel picks the address, so no existing memory is replaced.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                protection,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(Error::last_os("mmap"));
        }
        Ok(Self {
            fd,
            base: base.cast(),
            len,
            writable,
        })
    }

    /// Seals the file before its descriptor goes to a peer, so that the peer can do no more than
    /// `access` says, whatever it does with the descriptor (a mapping of its own, `ftruncate`,
    /// `write`, reopening it through `/proc`). Sealing again with the same access is a no-op.
    ///
    /// # Errors
    /// `Io` when the file does not accept seals (not made by [`SharedMemory::create`]) or the
    /// kernel lacks `F_SEAL_FUTURE_WRITE` (before Linux 5.1); `Config` when the file was already
    /// sealed for another access.
    pub fn seal_for_peers(&self, access: PeerAccess) -> Result<()> {
        let wanted = access.seals();
        // SAFETY: F_GET_SEALS on a valid descriptor reads the file's seals; no memory is passed.
        let current = unsafe { libc::fcntl(self.fd.as_raw_fd(), libc::F_GET_SEALS) };
        if current < 0 {
            return Err(Error::last_os("fcntl(F_GET_SEALS)"));
        }
        if current == wanted {
            return Ok(());
        }
        if current & libc::F_SEAL_SEAL != 0 {
            return Err(Error::new(
                ErrorKind::Config,
                format!("memfd already sealed with {current:#x}, not {wanted:#x}"),
            ));
        }
        // SAFETY: F_ADD_SEALS on a valid descriptor with a seal bit set; no memory is passed.
        if unsafe { libc::fcntl(self.fd.as_raw_fd(), libc::F_ADD_SEALS, wanted) } != 0 {
            return Err(Error::last_os("fcntl(F_ADD_SEALS)"));
        }
        Ok(())
    }

    /// The mapping's length in bytes (a multiple of 8).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is empty (never true: creation refuses length 0).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The memfd, to hand to a peer.
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The mapping's start address (for registering it with a verbs device).
    pub fn base(&self) -> *mut u8 {
        self.base
    }

    fn word(&self, offset: usize) -> &AtomicU64 {
        assert!(
            offset % 8 == 0 && offset + 8 <= self.len,
            "word offset {offset}"
        );
        // SAFETY: offset is 8-aligned and in bounds (asserted), the base is page-aligned, and the
        // mapping lives as long as &self.
        unsafe { &*self.base.add(offset).cast::<AtomicU64>() }
    }

    fn word32(&self, offset: usize) -> &AtomicU32 {
        assert!(
            offset % 4 == 0 && offset + 4 <= self.len,
            "u32 offset {offset}"
        );
        // SAFETY: 4-aligned and in bounds (asserted); the mapping lives as long as &self.
        unsafe { &*self.base.add(offset).cast::<AtomicU32>() }
    }

    fn byte(&self, offset: usize) -> &AtomicU8 {
        assert!(offset < self.len, "byte offset {offset}");
        // SAFETY: in bounds (asserted); the mapping lives as long as &self.
        unsafe { &*self.base.add(offset).cast::<AtomicU8>() }
    }

    /// Atomically loads the 8-byte word at `offset` (8-aligned, in bounds: asserted).
    pub fn load_u64(&self, offset: usize, order: Ordering) -> u64 {
        self.word(offset).load(order)
    }

    /// Atomically stores the 8-byte word at `offset`. Panics on a read-only mapping.
    pub fn store_u64(&self, offset: usize, value: u64, order: Ordering) {
        assert!(self.writable, "store into a read-only mapping");
        self.word(offset).store(value, order)
    }

    /// Atomically loads the 4-byte word at `offset` (4-aligned, in bounds: asserted).
    pub fn load_u32(&self, offset: usize, order: Ordering) -> u32 {
        self.word32(offset).load(order)
    }

    /// The 4-byte atomic at `offset`, for futex-style waits and compare-exchange.
    pub fn atomic_u32(&self, offset: usize) -> &AtomicU32 {
        self.word32(offset)
    }

    /// The 8-byte atomic at `offset`.
    pub fn atomic_u64(&self, offset: usize) -> &AtomicU64 {
        self.word(offset)
    }

    /// Copies `into.len()` bytes starting at `offset` out of the mapping: the shm provider's READ.
    /// Concurrent writers may make the copy torn; it is never undefined behaviour.
    ///
    /// # Errors
    /// `Protocol` when the range is outside the mapping (a peer's offset must never panic us).
    pub fn read(&self, offset: usize, into: &mut [u8]) -> Result<()> {
        let end = offset.checked_add(into.len());
        if end.is_none_or(|end| end > self.len) {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!(
                    "read of {} bytes at {offset} outside mapping of {}",
                    into.len(),
                    self.len
                ),
            ));
        }
        let mut done = 0;
        while done < into.len() && (offset + done) % 8 != 0 {
            into[done] = self.byte(offset + done).load(Ordering::Relaxed);
            done += 1;
        }
        while into.len() - done >= 8 {
            let word = self.word(offset + done).load(Ordering::Relaxed);
            into[done..done + 8].copy_from_slice(&word.to_le_bytes());
            done += 8;
        }
        while done < into.len() {
            into[done] = self.byte(offset + done).load(Ordering::Relaxed);
            done += 1;
        }
        std::sync::atomic::fence(Ordering::Acquire);
        Ok(())
    }

    /// Copies `bytes` into the mapping at `offset` with relaxed atomic stores; the caller publishes
    /// them with a later release store. Panics when out of bounds or read-only (callers own the
    /// layout, so that is a bug, not input).
    pub fn write(&self, offset: usize, bytes: &[u8]) {
        assert!(self.writable, "write into a read-only mapping");
        assert!(offset + bytes.len() <= self.len, "write outside mapping");
        let mut done = 0;
        while done < bytes.len() && (offset + done) % 8 != 0 {
            self.byte(offset + done)
                .store(bytes[done], Ordering::Relaxed);
            done += 1;
        }
        while bytes.len() - done >= 8 {
            let mut word = [0u8; 8];
            word.copy_from_slice(&bytes[done..done + 8]);
            self.word(offset + done)
                .store(u64::from_le_bytes(word), Ordering::Relaxed);
            done += 8;
        }
        while done < bytes.len() {
            self.byte(offset + done)
                .store(bytes[done], Ordering::Relaxed);
            done += 1;
        }
    }
}

impl Drop for SharedMemory {
    fn drop(&mut self) {
        // SAFETY: base/len are exactly what mmap returned; no reference into the mapping outlives
        // self because every accessor borrows self.
        unsafe {
            libc::munmap(self.base.cast(), self.len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_read_unaligned_ranges() {
        let memory = SharedMemory::create("t", 64).unwrap();
        let bytes: Vec<u8> = (0..40).collect();
        for start in 0..8 {
            memory.write(start, &bytes);
            let mut back = vec![0u8; 40];
            memory.read(start, &mut back).unwrap();
            assert_eq!(back, bytes, "start {start}");
        }
    }

    #[test]
    fn out_of_range_read_is_an_error() {
        let memory = SharedMemory::create("t", 64).unwrap();
        let mut buffer = [0u8; 16];
        assert_eq!(
            memory.read(56, &mut buffer).unwrap_err().kind(),
            ErrorKind::Protocol
        );
        assert_eq!(
            memory.read(usize::MAX, &mut buffer).unwrap_err().kind(),
            ErrorKind::Protocol
        );
    }

    #[test]
    fn received_length_is_checked_against_the_file() {
        let memory = SharedMemory::create("t", 4096).unwrap();
        // SAFETY: dup of a valid descriptor returns a fresh one we own.
        let dup = unsafe { OwnedFd::from_raw_fd(libc::dup(memory.raw_fd())) };
        assert_eq!(
            SharedMemory::from_fd(dup, 8192, false).unwrap_err().kind(),
            ErrorKind::Protocol
        );
        // SAFETY: as above.
        let dup = unsafe { OwnedFd::from_raw_fd(libc::dup(memory.raw_fd())) };
        let view = SharedMemory::from_fd(dup, 4096, false).unwrap();
        memory.write(8, b"shared!!");
        let mut back = [0u8; 8];
        view.read(8, &mut back).unwrap();
        assert_eq!(&back, b"shared!!");
    }
}
