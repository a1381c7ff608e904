//! The handshake's payloads (PROTOCOL.md §5) and the dial rule (§14.1),
//! written from the specification: `Hello`, the HMAC proof, and which side of
//! a pair dials.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// Role byte of the side that dialed.
pub(super) const DIALER: u8 = 0;
/// Role byte of the side that accepted.
pub(super) const ACCEPTOR: u8 = 1;

/// A `Hello` payload's fields (§5.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Hello {
    pub(super) role: u8,
    pub(super) instance: u64,
    pub(super) nonce: [u8; 32],
    pub(super) max_frame_size: u32,
    pub(super) max_message_size: u32,
    pub(super) max_incoming_calls: u32,
    pub(super) max_incoming_streams: u32,
    pub(super) name: String,
}

impl Hello {
    /// A dialer's `Hello` with generous limits and a nonce drawn from `seed`.
    pub(super) fn dialer(name: &str, seed: u64) -> Hello {
        let mut hash = Sha256::new();
        hash.update(b"hostile nonce");
        hash.update(seed.to_le_bytes());
        Hello {
            role: DIALER,
            instance: seed,
            nonce: hash.finalize().into(),
            max_frame_size: 1 << 20,
            max_message_size: 64 << 20,
            max_incoming_calls: 4096,
            max_incoming_streams: 1024,
            name: name.to_string(),
        }
    }

    /// The payload bytes, exactly as sent and as proofs cover them.
    pub(super) fn encode(&self) -> Vec<u8> {
        let name = self.name.as_bytes();
        let mut out = Vec::with_capacity(66 + name.len());
        out.extend_from_slice(b"GRID");
        out.extend_from_slice(&2u16.to_le_bytes());
        out.push(self.role);
        out.push(0);
        out.extend_from_slice(&self.instance.to_le_bytes());
        out.extend_from_slice(&self.nonce);
        for limit in [
            self.max_frame_size,
            self.max_message_size,
            self.max_incoming_calls,
            self.max_incoming_streams,
        ] {
            out.extend_from_slice(&limit.to_le_bytes());
        }
        out.extend_from_slice(&u16::try_from(name.len()).unwrap_or(u16::MAX).to_le_bytes());
        out.extend_from_slice(name);
        out
    }

    /// Reads a `Hello` payload, with the checks a receiver must make.
    pub(super) fn decode(payload: &[u8]) -> Result<Hello, String> {
        if payload.len() < 66 {
            return Err(format!("Hello of {} bytes, under 66", payload.len()));
        }
        if &payload[..4] != b"GRID" {
            return Err("Hello without the GRID magic".into());
        }
        let u16_at = |at: usize| u16::from_le_bytes([payload[at], payload[at + 1]]);
        let u32_at = |at: usize| {
            u32::from_le_bytes([
                payload[at],
                payload[at + 1],
                payload[at + 2],
                payload[at + 3],
            ])
        };
        if u16_at(4) != 2 {
            return Err(format!("Hello of version {}", u16_at(4)));
        }
        let name_len = usize::from(u16_at(64));
        if payload.len() != 66 + name_len {
            return Err(format!(
                "Hello of {} bytes for a name of {name_len}",
                payload.len()
            ));
        }
        let mut instance = [0u8; 8];
        instance.copy_from_slice(&payload[8..16]);
        let mut nonce = [0u8; 32];
        nonce.copy_from_slice(&payload[16..48]);
        Ok(Hello {
            role: payload[6],
            instance: u64::from_le_bytes(instance),
            nonce,
            max_frame_size: u32_at(48),
            max_message_size: u32_at(52),
            max_incoming_calls: u32_at(56),
            max_incoming_streams: u32_at(60),
            name: String::from_utf8(payload[66..].to_vec())
                .map_err(|_| "Hello with a name that is not UTF-8".to_string())?,
        })
    }
}

/// `proof(prover_role, prover_hello, verifier_hello)` of §5.2, keyed with
/// `secret`.
pub(super) fn proof(
    secret: &[u8],
    prover_role: u8,
    prover_hello: &[u8],
    verifier_hello: &[u8],
) -> [u8; 32] {
    // HMAC takes keys of any length, so this cannot fail; an empty key keeps a
    // test helper from panicking if that ever changed.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
        .or_else(|_| <Hmac<Sha256> as KeyInit>::new_from_slice(&[]))
        .unwrap_or_else(|_| unreachable!("HMAC accepts an empty key"));
    mac.update(b"grid/1 auth");
    mac.update(&[prover_role]);
    mac.update(&(prover_hello.len() as u64).to_le_bytes());
    mac.update(prover_hello);
    mac.update(verifier_hello);
    mac.finalize().into_bytes().into()
}

/// Whether node `from` is the one that dials `to` (§14.1).
pub(super) fn dials(from: &str, to: &str) -> bool {
    let (lo, hi) = if from.as_bytes() < to.as_bytes() {
        (from, to)
    } else {
        (to, from)
    };
    let mut hash = Sha256::new();
    hash.update(lo.as_bytes());
    hash.update([0u8]);
    hash.update(hi.as_bytes());
    let low_bit_set = hash.finalize()[0] & 1 == 1;
    (from == lo) != low_bit_set && from != to
}

/// The first name `prefix-N` that dials `to`: a node name the victim accepts
/// connections from rather than dialing.
pub fn dialing_name(prefix: &str, to: &str) -> String {
    (0u32..)
        .map(|n| format!("{prefix}-{n}"))
        .find(|name| dials(name, to))
        .unwrap_or_else(|| unreachable!("half of all names dial any given node"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text
            .bytes()
            .filter(u8::is_ascii_hexdigit)
            .map(|d| char::from(d).to_digit(16).unwrap_or(0) as u8)
            .collect();
        digits
            .chunks(2)
            .map(|pair| pair[0] << 4 | pair[1])
            .collect()
    }

    /// The test vector of PROTOCOL.md §15.2.
    #[test]
    fn proofs_match_the_specification_vector() {
        let dialer = hex("47524944 0200 00 00 0100000000000000
             1bbbcd3fbc6b84e2282ca3429c973085e46aa5518ad8ce48f9990ae528dbfe6e
             00000100 00000001 00100000 00040000 0100 61");
        let acceptor = hex("47524944 0200 01 00 0200000000000000
             03a1a25df7af3df1d1d51ab8fb59f9129df9c4370d3451c1f35a68706b7cd46a
             00000100 00000001 00100000 00040000 0100 62");
        assert_eq!(Hello::decode(&dialer).unwrap().encode(), dialer);
        assert_eq!(Hello::decode(&acceptor).unwrap().name, "b");
        assert_eq!(
            proof(b"secret", DIALER, &dialer, &acceptor).to_vec(),
            hex("08c9acce2133703c74f5136b27af0e5087e7e09d5fea68b1a75f79eae2f83b73")
        );
        assert_eq!(
            proof(b"secret", ACCEPTOR, &acceptor, &dialer).to_vec(),
            hex("3ec5b10b64208874ae1917e70c4fe48dcd7f3b560a357cd9277f8bafcff7df42")
        );
    }

    /// The dial rule's test vectors of §14.1.
    #[test]
    fn dial_rule_matches_the_specification_vectors() {
        assert!(dials("b", "a") && !dials("a", "b"));
        assert!(dials("node-0:9000", "node-1:9000") && !dials("node-1:9000", "node-0:9000"));
        assert!(dials(&dialing_name("x", "node-0:9000"), "node-0:9000"));
    }
}
