//! An owning pointer in six bytes, for the keyspace's table buckets.
//!
//! A segment's bucket holds one pointer to the key's slot and hashbrown's control byte. With a
//! `Box` that is 9 bytes a bucket; user-space addresses on the 64-bit targets Ember runs on
//! (x86-64 with 4-level paging: 47 bits; aarch64 with 48-bit virtual addresses) fit in 48 bits,
//! so the pointer's two high bytes are always zero and the bucket can drop them: 7 bytes. At
//! a million keys that is about 4 bytes a key (the table's allocations then land in jemalloc's
//! size classes a step lower: a segment of 1,024 buckets takes 8 KiB instead of 10 KiB).
//!
//! A kernel with 5-level paging hands out addresses above 2^47 only to a process that asks for
//! them with an `mmap` hint, which jemalloc does not do; [`PackedBox::new`] checks each address
//! all the same and stops the process rather than truncate one.

use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

/// Bytes of an address that are kept.
const ADDRESS_LEN: usize = 6;

/// Bits of an address that are kept.
const ADDRESS_BITS: u32 = 8 * ADDRESS_LEN as u32;

/// A `Box<T>` stored in [`ADDRESS_LEN`] bytes with an alignment of 1, so a table of them has no
/// padding. It owns its `T` as a `Box` does: dropping it drops the `T` and frees its memory.
pub(super) struct PackedBox<T> {
    address: [u8; ADDRESS_LEN],
    /// Owns a `T` (drop check, auto traits: `Send` and `Sync` exactly when `Box<T>` is).
    owned: PhantomData<T>,
}

impl<T> PackedBox<T> {
    /// Moves `value` to the heap.
    ///
    /// # Panics
    /// When the allocator returns an address of more than 48 bits (see the module's notes).
    pub(super) fn new(value: T) -> Self {
        // The zero-sized case would hand out a dangling address that need not be canonical;
        // the keyspace never boxes one.
        const {
            assert!(
                std::mem::size_of::<T>() > 0,
                "PackedBox of a zero-sized type"
            )
        };
        let address = Box::into_raw(Box::new(value)) as usize as u64;
        assert!(
            address >> ADDRESS_BITS == 0,
            "heap address {address:#x} does not fit in {ADDRESS_BITS} bits"
        );
        let bytes = address.to_le_bytes();
        let mut packed = [0u8; ADDRESS_LEN];
        packed.copy_from_slice(&bytes[..ADDRESS_LEN]);
        Self {
            address: packed,
            owned: PhantomData,
        }
    }

    fn pointer(&self) -> NonNull<T> {
        let mut bytes = [0u8; 8];
        bytes[..ADDRESS_LEN].copy_from_slice(&self.address);
        let address = u64::from_le_bytes(bytes) as usize;
        // `new` stored a `Box`'s address, which is never null, and kept every bit of it.
        NonNull::new(address as *mut T).expect("a box's address is not null")
    }

    /// The value, back on the stack; its memory is freed.
    pub(super) fn into_inner(self) -> T {
        let pointer = self.pointer();
        std::mem::forget(self);
        // SAFETY: `pointer` is the address `Box::into_raw` returned in `new`, whole (every bit
        // above the kept ones was zero), and `self`, its only owner, was just forgotten, so the
        // box is rebuilt exactly once and its drop does not run twice.
        *unsafe { Box::from_raw(pointer.as_ptr()) }
    }
}

impl<T> Deref for PackedBox<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the address is a live `Box<T>`'s (see `into_inner`) owned by `self`, so the
        // `T` is valid and initialized for as long as `self` is borrowed, and no `&mut` to it
        // exists while `&self` does.
        unsafe { self.pointer().as_ref() }
    }
}

impl<T> DerefMut for PackedBox<T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` is the only way to the `T`, so the reference is
        // unique for as long as it lives.
        unsafe { self.pointer().as_mut() }
    }
}

impl<T> Drop for PackedBox<T> {
    fn drop(&mut self) {
        // SAFETY: the address is a live `Box<T>`'s owned by `self` (see `into_inner`), and this
        // is its only drop, so the box is rebuilt and freed once.
        drop(unsafe { Box::from_raw(self.pointer().as_ptr()) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    /// Counts its drops, so the tests see every value dropped exactly once.
    struct Counted {
        drops: Rc<Cell<usize>>,
        payload: [u64; 4],
    }

    impl Drop for Counted {
        fn drop(&mut self) {
            self.drops.set(self.drops.get() + 1);
        }
    }

    #[test]
    fn six_bytes_without_padding() {
        assert_eq!(std::mem::size_of::<PackedBox<[u64; 8]>>(), ADDRESS_LEN);
        assert_eq!(std::mem::align_of::<PackedBox<[u64; 8]>>(), 1);
    }

    #[test]
    fn reads_writes_and_drops_once() {
        let drops = Rc::new(Cell::new(0));
        /// Uses a box one way; returns the payload when it took the value back out.
        type UseBox = fn(PackedBox<Counted>) -> Option<[u64; 4]>;
        let cases: &[(&str, UseBox)] = &[
            ("dropped in place", |boxed| {
                drop(boxed);
                None
            }),
            ("taken back out", |boxed| {
                let value = boxed.into_inner();
                Some(value.payload)
            }),
            ("changed in place, then dropped", |mut boxed| {
                boxed.payload[3] = 99;
                assert_eq!(boxed.payload, [1, 2, 3, 99]);
                None
            }),
        ];
        for (index, (name, use_box)) in cases.iter().enumerate() {
            let boxed = PackedBox::new(Counted {
                drops: Rc::clone(&drops),
                payload: [1, 2, 3, 4],
            });
            assert_eq!(boxed.payload, [1, 2, 3, 4], "{name}");
            let taken = use_box(boxed);
            assert_eq!(drops.get(), index + 1, "{name}: dropped exactly once");
            if let Some(payload) = taken {
                assert_eq!(payload, [1, 2, 3, 4], "{name}");
            }
        }
    }

    #[test]
    fn many_boxes_keep_their_values() {
        // Enough allocations to span several of jemalloc's (or the system allocator's) slabs and
        // chunks, so addresses with all six bytes in use are exercised.
        let boxes: Vec<PackedBox<(u64, [u8; 40])>> = (0..100_000u64)
            .map(|i| PackedBox::new((i, [i as u8; 40])))
            .collect();
        for (i, boxed) in boxes.iter().enumerate() {
            assert_eq!(boxed.0, i as u64);
            assert_eq!(boxed.1, [i as u8; 40]);
        }
        let mut total = 0;
        for boxed in boxes {
            total += boxed.into_inner().0;
        }
        assert_eq!(total, 100_000 * 99_999 / 2);
    }
}
