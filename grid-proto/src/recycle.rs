//! Receive buffers for large payloads, handed back by the application when it
//! drops a payload and reused for the next one of a similar size.
//!
//! A connection streaming 64 KiB messages would otherwise allocate and free a
//! 64 KiB buffer per message. The system allocator hands such freed memory
//! back to the kernel at the top of its heap and faults it in again for the
//! next message, which costs more than the copy itself and makes throughput
//! flip between runs depending on the heap's layout.

use std::sync::{Arc, Mutex};

use bytes::Bytes;

/// Payloads at least this large get buffers from the pool; smaller ones are
/// cheap for the allocator and get exact buffers of their own.
pub(crate) const RECYCLE_MIN: usize = 16 * 1024;

/// New buffers' capacities are multiples of this.
const SIZE_STEP: usize = 4096;

/// Most buffers the pool keeps.
const KEEP_BUFFERS: usize = 256;

/// Most bytes of capacity the pool keeps. A stream keeps its whole receive
/// window of payloads alive at once, and calls in flight their requests and
/// answers, so the pool must hold about that much to serve them: a pool too
/// small hands buffers back to the system allocator, which returns them to
/// the kernel and faults fresh pages in for the next ones. The pool holds only
/// buffers that were all in use together a moment before, so it never raises
/// the peak, and it empties once the connection stops taking from it (see
/// [`BufferPool::trim_if_unused`]).
const KEEP_BYTES: usize = 16 * 1024 * 1024;

/// Buffers waiting for reuse. Shared by a connection's decoder and the
/// payloads it handed out, which may be dropped on any thread.
#[derive(Debug, Default)]
pub(crate) struct BufferPool {
    free: Mutex<Free>,
}

#[derive(Debug, Default)]
struct Free {
    buffers: Vec<Vec<u8>>,
    bytes: usize,
    /// A buffer was taken since the last trim.
    used: bool,
}

impl BufferPool {
    pub(crate) fn new() -> Arc<BufferPool> {
        Arc::new(BufferPool::default())
    }

    /// A buffer with room for `len` bytes, and at most twice that, so a small
    /// payload never pins a much larger buffer. A kept buffer comes with up to
    /// `len` of its old bytes, still initialized (to be overwritten), so that
    /// reading into it needs no zeroing.
    pub(crate) fn take(&self, len: usize) -> Vec<u8> {
        let mut free = self.lock();
        free.used = true;
        let fits = free
            .buffers
            .iter()
            .rposition(|buffer| buffer.capacity() >= len && buffer.capacity() / 2 <= len);
        match fits {
            Some(index) => {
                let mut buffer = free.buffers.swap_remove(index);
                free.bytes -= buffer.capacity();
                drop(free);
                buffer.truncate(len);
                buffer
            }
            // Rounded up, so that sizes a little apart (a 64 KiB frame, a
            // message of 64 KiB and a few bytes) share buffers.
            None => Vec::with_capacity(len.next_multiple_of(SIZE_STEP)),
        }
    }

    /// Frees every kept buffer if none was taken since the last call: called
    /// now and then (on keepalive), it returns an idle connection's buffers
    /// to the system.
    pub(crate) fn trim_if_unused(&self) {
        let mut free = self.lock();
        if !std::mem::take(&mut free.used) {
            free.buffers = Vec::new();
            free.bytes = 0;
        }
    }

    /// The filled buffer as a payload that returns it here when dropped.
    pub(crate) fn payload(self: &Arc<BufferPool>, buffer: Vec<u8>) -> Bytes {
        Bytes::from_owner(Recycled {
            buffer,
            pool: self.clone(),
        })
    }

    fn give_back(&self, buffer: Vec<u8>) {
        let mut free = self.lock();
        if free.buffers.len() < KEEP_BUFFERS && free.bytes + buffer.capacity() <= KEEP_BYTES {
            free.bytes += buffer.capacity();
            free.buffers.push(buffer);
        }
    }

    /// Buffers kept for reuse, and their capacity in bytes.
    #[cfg(test)]
    pub(crate) fn kept(&self) -> (usize, usize) {
        let free = self.lock();
        (free.buffers.len(), free.bytes)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Free> {
        // The pool is a cache: a panic elsewhere leaves it valid.
        self.free
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A payload's buffer, on its way back to the pool.
struct Recycled {
    buffer: Vec<u8>,
    pool: Arc<BufferPool>,
}

impl AsRef<[u8]> for Recycled {
    fn as_ref(&self) -> &[u8] {
        &self.buffer
    }
}

impl Drop for Recycled {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.buffer));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_payload_lends_its_buffer_to_the_next() {
        let pool = BufferPool::new();
        let mut buffer = pool.take(64 * 1024);
        buffer.resize(64 * 1024, 7);
        let address = buffer.as_ptr();
        let payload = pool.payload(buffer);
        assert_eq!(&payload[..], &[7u8; 64 * 1024][..]);
        let clone = payload.clone();
        drop(payload);
        assert_eq!(pool.kept().0, 0, "a clone still holds it");
        drop(clone);
        assert_eq!(pool.kept(), (1, 64 * 1024));
        let again = pool.take(40 * 1024);
        assert_eq!(again.as_ptr(), address);
        assert!(again.capacity() >= 40 * 1024 && again.len() <= 40 * 1024);
    }

    #[test]
    fn small_payloads_never_pin_large_buffers_and_the_pool_is_bounded() {
        let pool = BufferPool::new();
        drop(pool.payload(pool.take(256 * 1024)));
        assert_eq!(pool.kept().0, 1);
        // Less than half of the kept buffer: a new, fitting one.
        assert!(pool.take(64 * 1024).capacity() < 256 * 1024);
        let payloads: Vec<Bytes> = (0..200)
            .map(|_| pool.payload(pool.take(128 * 1024)))
            .collect();
        drop(payloads);
        let (buffers, bytes) = pool.kept();
        assert!(
            buffers <= KEEP_BUFFERS && bytes <= KEEP_BYTES,
            "{buffers} {bytes}"
        );
        assert_eq!(bytes, KEEP_BYTES);
    }

    #[test]
    fn an_idle_pool_is_emptied_and_a_busy_one_kept() {
        let pool = BufferPool::new();
        drop(pool.payload(pool.take(64 * 1024)));
        // Taken from since the last trim: kept.
        pool.trim_if_unused();
        assert_eq!(pool.kept().0, 1);
        // Not taken from since: emptied.
        pool.trim_if_unused();
        assert_eq!(pool.kept(), (0, 0));
    }
}
