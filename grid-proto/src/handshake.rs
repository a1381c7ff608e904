//! The handshake: both sides send `Hello`, then each proves knowledge of the
//! cluster secret with an HMAC over both `Hello`s, so a proof is bound to both
//! fresh nonces and to the prover's role and cannot be replayed or reflected.

use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::config::{Config, Limits, Role};

/// Protocol version spoken by this implementation.
pub const PROTOCOL_VERSION: u16 = 2;

/// First bytes of every `Hello` payload, so that a non-grid peer is told apart
/// from a grid peer of another version.
pub(crate) const MAGIC: [u8; 4] = *b"GRID";

/// Largest payload of any handshake frame. The frame limit during the
/// handshake, so an unauthenticated peer cannot make this side buffer more.
pub(crate) const MAX_HANDSHAKE_FRAME: u32 = 1024;

/// Longest node name, in bytes.
pub const MAX_NODE_NAME: usize = 255;

/// Length of an `Auth` proof.
pub(crate) const PROOF_LEN: usize = 32;

const FIXED_HELLO_LEN: usize = 66;
const PROOF_LABEL: &[u8] = b"grid/1 auth";

/// What the peer said about itself in its `Hello`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer's node name.
    pub node_name: String,
    /// The peer's instance id: changes when the peer process restarts.
    pub instance_id: u64,
    /// The peer's limits that bound what this side may send it.
    pub limits: PeerLimits,
}

/// The subset of the peer's [`Limits`] announced in its `Hello`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerLimits {
    /// Largest frame payload the peer accepts.
    pub max_frame_size: u32,
    /// Largest message the peer accepts.
    pub max_message_size: u32,
    /// Most concurrent calls the peer accepts from this side.
    pub max_incoming_calls: u32,
    /// Most concurrent streams the peer accepts from this side.
    pub max_incoming_streams: u32,
}

impl From<&Limits> for PeerLimits {
    fn from(limits: &Limits) -> Self {
        PeerLimits {
            max_frame_size: limits.max_frame_size,
            max_message_size: limits.max_message_size,
            max_incoming_calls: limits.max_incoming_calls,
            max_incoming_streams: limits.max_incoming_streams,
        }
    }
}

fn role_byte(role: Role) -> u8 {
    match role {
        Role::Dialer => 0,
        Role::Acceptor => 1,
    }
}

/// The nonce a connection sends, derived from its seed.
fn nonce(seed: &[u8; 32]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"grid/1 nonce");
    hasher.update(seed);
    hasher.finalize().into()
}

/// Encodes this side's `Hello` payload.
pub(crate) fn encode_hello(config: &Config) -> Bytes {
    let name = truncate_utf8(&config.node_name, MAX_NODE_NAME).as_bytes();
    let limits = PeerLimits::from(&config.limits);
    let mut out = Vec::with_capacity(FIXED_HELLO_LEN + name.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
    out.push(role_byte(config.role));
    out.push(0);
    out.extend_from_slice(&config.instance_id.to_le_bytes());
    out.extend_from_slice(&nonce(&config.seed));
    out.extend_from_slice(&limits.max_frame_size.to_le_bytes());
    out.extend_from_slice(&limits.max_message_size.to_le_bytes());
    out.extend_from_slice(&limits.max_incoming_calls.to_le_bytes());
    out.extend_from_slice(&limits.max_incoming_streams.to_le_bytes());
    // Lossless: the name was truncated to 255 bytes above.
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.extend_from_slice(name);
    Bytes::from(out)
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
pub(crate) fn truncate_utf8(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let raw = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(raw.try_into().ok()?))
}

/// Parses and checks the peer's `Hello`. The error is the readable reason sent
/// back in a `Reject`.
pub(crate) fn decode_hello(payload: &[u8], config: &Config) -> Result<PeerInfo, String> {
    if payload.len() < FIXED_HELLO_LEN {
        return Err(format!("hello too short ({} bytes)", payload.len()));
    }
    if payload[..4] != MAGIC {
        return Err("not a grid peer (bad magic)".to_string());
    }
    let version = u16::from_le_bytes([payload[4], payload[5]]);
    if version != PROTOCOL_VERSION {
        return Err(format!(
            "protocol version mismatch: this side speaks {PROTOCOL_VERSION}, peer speaks {version}"
        ));
    }
    let peer_role = payload[6];
    if peer_role > 1 {
        return Err(format!("peer claims unknown role {peer_role}"));
    }
    if peer_role == role_byte(config.role) {
        return Err(format!(
            "role conflict: both sides claim to be the {}",
            if peer_role == 0 { "dialer" } else { "acceptor" }
        ));
    }
    let mut instance = [0u8; 8];
    instance.copy_from_slice(&payload[8..16]);
    let limits = PeerLimits {
        max_frame_size: u32_at(payload, 48).unwrap_or(0),
        max_message_size: u32_at(payload, 52).unwrap_or(0),
        max_incoming_calls: u32_at(payload, 56).unwrap_or(0),
        max_incoming_streams: u32_at(payload, 60).unwrap_or(0),
    };
    if limits.max_frame_size < 256 {
        return Err(format!(
            "peer's maximum frame size {} is below the minimum of 256",
            limits.max_frame_size
        ));
    }
    let name_len = usize::from(u16::from_le_bytes([payload[64], payload[65]]));
    let name = payload
        .get(FIXED_HELLO_LEN..)
        .filter(|rest| rest.len() == name_len && name_len <= MAX_NODE_NAME)
        .ok_or_else(|| "hello has a malformed node name".to_string())?;
    let node_name = std::str::from_utf8(name)
        .map_err(|_| "peer's node name is not UTF-8".to_string())?
        .to_string();
    if let Some(expected) = &config.expected_peer {
        if *expected != node_name {
            return Err(format!(
                "wrong peer: expected {expected:?}, reached {node_name:?}"
            ));
        }
    }
    if node_name == config.node_name {
        return Err(format!("peer claims this node's own name {node_name:?}"));
    }
    Ok(PeerInfo {
        node_name,
        instance_id: u64::from_le_bytes(instance),
        limits,
    })
}

fn proof_mac(
    secret: &[u8],
    prover: Role,
    prover_hello: &[u8],
    verifier_hello: &[u8],
) -> Hmac<Sha256> {
    // HMAC accepts keys of any length; the error branch is unreachable but is
    // handled by falling back to an empty key rather than panicking.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| <Hmac<Sha256> as KeyInit>::new_from_slice(&[]).expect("empty key"));
    mac.update(PROOF_LABEL);
    mac.update(&[role_byte(prover)]);
    mac.update(&(prover_hello.len() as u64).to_le_bytes());
    mac.update(prover_hello);
    mac.update(verifier_hello);
    mac
}

/// This side's proof, sent in its `Auth`.
pub(crate) fn proof(config: &Config, own_hello: &[u8], peer_hello: &[u8]) -> [u8; PROOF_LEN] {
    proof_mac(&config.secret, config.role, own_hello, peer_hello)
        .finalize()
        .into_bytes()
        .into()
}

/// Checks the peer's proof in constant time.
pub(crate) fn verify(
    config: &Config,
    peer_proof: &[u8],
    own_hello: &[u8],
    peer_hello: &[u8],
) -> bool {
    let peer_role = match config.role {
        Role::Dialer => Role::Acceptor,
        Role::Acceptor => Role::Dialer,
    };
    proof_mac(&config.secret, peer_role, peer_hello, own_hello)
        .verify_slice(peer_proof)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(name: &str, role: Role, seed: u8, secret: &[u8]) -> Config {
        Config::new(name, 7, secret.to_vec(), role, [seed; 32])
    }

    #[test]
    fn proofs_verify_only_with_the_same_secret_and_transcript() {
        let a = config("a", Role::Dialer, 1, b"secret");
        let b = config("b", Role::Acceptor, 2, b"secret");
        let (hello_a, hello_b) = (encode_hello(&a), encode_hello(&b));
        assert_eq!(decode_hello(&hello_b, &a).unwrap().node_name, "b");
        assert_eq!(decode_hello(&hello_a, &b).unwrap().node_name, "a");
        let proof_a = proof(&a, &hello_a, &hello_b);
        assert!(verify(&b, &proof_a, &hello_b, &hello_a));
        // A reflected proof (b's own, sent back to it) fails.
        let proof_b = proof(&b, &hello_b, &hello_a);
        assert!(!verify(&b, &proof_b, &hello_b, &hello_a));
        // A replay against a fresh nonce fails.
        let b_again = config("b", Role::Acceptor, 3, b"secret");
        let hello_b_again = encode_hello(&b_again);
        assert!(!verify(&b_again, &proof_a, &hello_b_again, &hello_a));
        // Another secret fails.
        let wrong = config("b", Role::Acceptor, 2, b"other");
        assert!(!verify(&wrong, &proof_a, &hello_b, &hello_a));
    }

    #[test]
    fn bad_hellos_give_readable_reasons() {
        let a = config("a", Role::Dialer, 1, b"s");
        let mut b = config("b", Role::Acceptor, 2, b"s");
        let hello_b = encode_hello(&b);
        let mut bad = hello_b.to_vec();
        bad[4] = 9;
        assert!(decode_hello(&bad, &a)
            .unwrap_err()
            .contains("version mismatch"));
        bad = hello_b.to_vec();
        bad[0] = b'X';
        assert!(decode_hello(&bad, &a).unwrap_err().contains("magic"));
        assert!(decode_hello(&hello_b[..20], &a)
            .unwrap_err()
            .contains("short"));
        let mut expecting = a.clone();
        expecting.expected_peer = Some("c".into());
        assert!(decode_hello(&hello_b, &expecting)
            .unwrap_err()
            .contains("wrong peer"));
        b.role = Role::Dialer;
        assert!(decode_hello(&encode_hello(&b), &a)
            .unwrap_err()
            .contains("role conflict"));
        let mut truncated = hello_b.to_vec();
        truncated.pop();
        assert!(decode_hello(&truncated, &a)
            .unwrap_err()
            .contains("node name"));
    }
}
