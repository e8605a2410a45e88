//! Float buffers that RECOMMEND's inputs are built in, kept by the model between batches.
//!
//! A RECOMMEND chunk of 256 rows of the demo model is 1.7 MB of floats. An allocation that large is a fresh
//! mapping from the allocator, so a new buffer per call page-faulted every page of it again (2.6% of the shard
//! in `perf record` at batch 256, beside the cache misses of writing cold memory). Instead the batch worker gives
//! a RECOMMEND's input buffers back once the model has run them, and the next RECOMMEND builds its inputs in
//! them. The pool holds no more buffers than were out at once, and at most [`POOL_BYTES_MAX`].

use std::cell::RefCell;

use ember_kernels::{Tensor, TensorData};

/// Most bytes one model's pool keeps: the inputs of 16 chunks of 256 demo rows (1.7 MB each), which is two
/// connections' RECOMMENDs of 1024 candidates in flight with room to spare. A buffer that would take the pool
/// past this is freed instead: it served a burst, and keeping it would only hold memory.
pub const POOL_BYTES_MAX: usize = 32 << 20;

/// Free float buffers, smallest capacity first.
#[derive(Default)]
pub struct InputBuffers {
    free: RefCell<Vec<Vec<f32>>>,
}

impl InputBuffers {
    /// An empty buffer with room for at least `len` floats: the smallest free one that fits, else a new one.
    pub fn take(&self, len: usize) -> Vec<f32> {
        let mut free = self.free.borrow_mut();
        match free.iter().position(|buffer| buffer.capacity() >= len) {
            Some(index) => free.remove(index),
            None => Vec::with_capacity(len),
        }
    }

    /// Keeps `buffer` for a later [`InputBuffers::take`], unless the pool is full.
    pub fn give(&self, mut buffer: Vec<f32>) {
        buffer.clear();
        let mut free = self.free.borrow_mut();
        let kept_bytes: usize = free.iter().map(|b| b.capacity() * 4).sum();
        if buffer.capacity() == 0 || kept_bytes + buffer.capacity() * 4 > POOL_BYTES_MAX {
            return;
        }
        let at = free.partition_point(|b| b.capacity() < buffer.capacity());
        free.insert(at, buffer);
    }

    /// Gives back the float buffers of `tensors` (others are dropped).
    pub fn give_tensors(&self, tensors: Vec<Tensor>) {
        for tensor in tensors {
            if let TensorData::Float(buffer) = tensor.into_data() {
                self.give(buffer);
            }
        }
    }

    /// Bytes kept.
    #[cfg(test)]
    fn kept_bytes(&self) -> usize {
        self.free.borrow().iter().map(|b| b.capacity() * 4).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_reuses_the_smallest_buffer_that_fits() {
        let buffers = InputBuffers::default();
        let (small, large) = (buffers.take(10), buffers.take(1000));
        let (small_at, large_at) = (small.as_ptr(), large.as_ptr());
        buffers.give(large);
        buffers.give(small);
        let fits_small = buffers.take(8);
        assert_eq!(
            fits_small.as_ptr(),
            small_at,
            "the small buffer, not the large"
        );
        assert!(fits_small.is_empty());
        let fits_large = buffers.take(500);
        assert_eq!(fits_large.as_ptr(), large_at);
        assert!(
            buffers.take(2000).capacity() >= 2000,
            "none fits: a new one"
        );
        assert_eq!(buffers.kept_bytes(), 0);
    }

    #[test]
    fn the_pool_is_bounded_and_keeps_only_floats() {
        let buffers = InputBuffers::default();
        let quarter = POOL_BYTES_MAX / 4 / 4;
        for _ in 0..6 {
            buffers.give(Vec::with_capacity(quarter));
        }
        assert_eq!(buffers.kept_bytes(), 4 * quarter * 4, "four fit, two freed");
        let buffers = InputBuffers::default();
        buffers.give_tensors(vec![
            Tensor::new(vec![2], TensorData::Float(vec![1.0, 2.0])).unwrap(),
            Tensor::new(vec![2], TensorData::Int64(vec![1, 2])).unwrap(),
        ]);
        assert_eq!(buffers.kept_bytes(), 8);
        assert!(buffers.take(2).is_empty(), "given back cleared");
    }
}
