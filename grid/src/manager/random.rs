//! The node's randomness: its instance id, backoff jitter and handshake
//! nonces all come from here, so one place decides where it comes from.

use std::time::Instant;

/// A random `u64`, e.g. an instance id or a backoff seed.
pub(super) fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    fill_random(&mut bytes);
    u64::from_le_bytes(bytes)
}

/// Fills `buf` with OS randomness.
pub(super) fn fill_random(buf: &mut [u8]) {
    if getrandom::fill(buf).is_err() {
        // No OS randomness is a broken platform; fall back to hashing time and
        // address so the node still starts, with weaker nonces.
        use std::hash::{BuildHasher, RandomState};
        for (i, chunk) in buf.chunks_mut(8).enumerate() {
            let value = RandomState::new().hash_one((Instant::now(), i, chunk.as_ptr() as usize));
            let bytes = value.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}
