//! The provided-buffer ring of one shard: a pool of equal buffers that the kernel picks from as data
//! arrives on any connection (multishot receive), so that no connection keeps a buffer of its own
//! while it waits.
//!
//! Every buffer is in exactly one of two places: given to the kernel (published in the ring, or
//! picked by a receive whose completion has not been reaped yet), or held by Ember (reported by a
//! completion and not yet given back). [`ProvidedBuffers`] tracks each buffer's place and asserts
//! every move, so a buffer given back twice, or read after it was given back, stops the shard
//! instead of corrupting another connection's bytes.

use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;

/// Where a buffer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Published in the ring (or picked by the kernel and not yet reported).
    Kernel,
    /// Reported by a completion; Ember reads it and gives it back.
    Held,
}

/// A page-aligned anonymous mapping, unmapped on drop.
struct Mapping {
    address: *mut u8,
    len: usize,
}

impl Mapping {
    fn new(len: usize) -> io::Result<Self> {
        // SAFETY: an anonymous private mapping; no file and no fixed address are involved.
        let address = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if address == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            address: address.cast(),
            len,
        })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `address` and `len` are exactly what mmap returned and was asked for.
        unsafe {
            libc::munmap(self.address.cast(), self.len);
        }
    }
}

/// One shard's provided buffers and the ring that publishes them to the kernel.
pub struct ProvidedBuffers {
    /// The ring of `count` entries the kernel reads (page aligned, as the kernel requires).
    entries: Mapping,
    /// `count` buffers of `buffer_len` bytes each, buffer `id` at `id * buffer_len`.
    memory: Mapping,
    count: u16,
    buffer_len: usize,
    /// Ember's producer index; the kernel sees it once [`ProvidedBuffers::publish`] stores it.
    tail: u16,
    place: Vec<Place>,
    held_count: usize,
}

impl ProvidedBuffers {
    /// `count` buffers (a power of two, at most 32768, as the kernel requires) of `buffer_len`
    /// bytes, all initially meant for the kernel: call [`ProvidedBuffers::publish`] once the
    /// ring is registered.
    ///
    /// # Errors
    /// When memory for the ring or the buffers cannot be mapped.
    pub fn new(count: u16, buffer_len: usize) -> io::Result<Self> {
        assert!(
            count.is_power_of_two(),
            "buffer count {count} is a power of two"
        );
        assert!(
            count <= 1 << 15,
            "the kernel takes at most 32768 provided buffers"
        );
        assert!(buffer_len > 0 && u32::try_from(buffer_len).is_ok());
        let entries = Mapping::new(usize::from(count) * std::mem::size_of::<BufRingEntry>())?;
        let memory = Mapping::new(usize::from(count) * buffer_len)?;
        let mut buffers = Self {
            entries,
            memory,
            count,
            buffer_len,
            tail: 0,
            place: vec![Place::Held; usize::from(count)],
            held_count: usize::from(count),
        };
        for id in 0..count {
            buffers.give_back(id);
        }
        Ok(buffers)
    }

    /// Address of the entries, for registration with the ring.
    pub fn ring_address(&self) -> u64 {
        self.entries.address as u64
    }

    /// Entries in the ring.
    pub fn count(&self) -> u16 {
        self.count
    }

    /// Bytes per buffer.
    pub fn buffer_len(&self) -> usize {
        self.buffer_len
    }

    /// Buffers the kernel may still fill.
    pub fn kernel_count(&self) -> usize {
        usize::from(self.count) - self.held_count
    }

    /// Records that a completion reported buffer `id`: Ember holds it until it is given back.
    pub fn take(&mut self, id: u16) {
        let place = &mut self.place[usize::from(id)];
        assert_eq!(*place, Place::Kernel, "buffer {id} reported twice");
        *place = Place::Held;
        self.held_count += 1;
        assert!(self.held_count <= usize::from(self.count));
    }

    /// The first `len` bytes of held buffer `id`.
    pub fn bytes(&self, id: u16, len: usize) -> &[u8] {
        assert_eq!(
            self.place[usize::from(id)],
            Place::Held,
            "buffer {id} read while the kernel owns it"
        );
        assert!(len <= self.buffer_len);
        // SAFETY: buffer `id` lies inside the mapping (id < count), Ember holds it, so the kernel
        // does not write it until it is given back, and the returned slice borrows `self`.
        unsafe {
            std::slice::from_raw_parts(
                self.memory.address.add(usize::from(id) * self.buffer_len),
                len,
            )
        }
    }

    /// Gives held buffer `id` back to the kernel (visible to it at the next publish).
    pub fn give_back(&mut self, id: u16) {
        let place = &mut self.place[usize::from(id)];
        assert_eq!(*place, Place::Held, "buffer {id} given back twice");
        *place = Place::Kernel;
        assert!(self.held_count > 0);
        self.held_count -= 1;
        let index = usize::from(self.tail & (self.count - 1));
        // SAFETY: `index` < count, inside the entries mapping. The kernel only reads entries
        // between its head and the published tail; this one is past the published tail (every
        // buffer is either held or behind the tail, and this one was held), so the kernel does
        // not read it while it is written.
        unsafe {
            let entry = &mut *self.entries.address.cast::<BufRingEntry>().add(index);
            entry.set_addr(self.memory.address.add(usize::from(id) * self.buffer_len) as u64);
            entry.set_len(self.buffer_len as u32);
            entry.set_bid(id);
        }
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes every buffer given back so far visible to the kernel.
    pub fn publish(&self) {
        // SAFETY: the tail field lies in the first entry of the mapping, which lives as long as
        // `self`; the kernel reads it concurrently, hence the atomic release store (the entries
        // written before are visible to the kernel before the new tail).
        unsafe {
            let tail = BufRingEntry::tail(self.entries.address.cast::<BufRingEntry>()) as *mut u16;
            (*tail.cast::<AtomicU16>()).store(self.tail, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_move_between_kernel_and_ember() {
        let mut buffers = ProvidedBuffers::new(4, 64).expect("map");
        assert_eq!(buffers.kernel_count(), 4);
        buffers.take(2);
        buffers.take(0);
        assert_eq!(buffers.kernel_count(), 2);
        assert_eq!(buffers.bytes(2, 64).len(), 64);
        buffers.give_back(2);
        buffers.give_back(0);
        buffers.publish();
        assert_eq!(buffers.kernel_count(), 4);
        // Four initial entries and two returns: the tail wrapped past the ring's size.
        assert_eq!(buffers.tail, 6);
    }

    #[test]
    #[should_panic(expected = "given back twice")]
    fn a_buffer_given_back_twice_stops() {
        let mut buffers = ProvidedBuffers::new(2, 64).expect("map");
        buffers.take(1);
        buffers.give_back(1);
        buffers.give_back(1);
    }

    #[test]
    #[should_panic(expected = "while the kernel owns it")]
    fn reading_a_buffer_the_kernel_owns_stops() {
        let buffers = ProvidedBuffers::new(2, 64).expect("map");
        let _ = buffers.bytes(0, 1);
    }
}
