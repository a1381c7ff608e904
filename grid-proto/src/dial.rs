//! Which node of a pair opens the connection.
//!
//! Every pair of nodes keeps exactly one connection. If both sides dialled
//! each other, they would race and have to tear one connection down; if
//! neither did, the pair would never talk. So both nodes evaluate the same
//! rule, using nothing but the two node names, and exactly one of them dials.
//!
//! # Wire rule
//!
//! Given two distinct names, let `lo` and `hi` be them ordered bytewise
//! (lexicographic order of their UTF-8 bytes). Compute
//! `SHA-256(lo || 0x00 || hi)`. If the lowest bit of the first digest byte is
//! 0, `lo` dials `hi`; otherwise `hi` dials `lo`. A node never dials itself.
//!
//! A plain "smaller name dials" rule would make the lexicographically first
//! node dial everyone and the last node dial no one, concentrating connection
//! set-up work (and its failures) on a few nodes. Hashing the ordered pair
//! makes each direction a coin flip, so every node dials about half its peers.
//!
//! The `0x00` separator cannot make two different pairs hash the same input
//! unless a name itself contains NUL; even then the rule stays consistent for
//! each pair, because both sides hash identical bytes.

use sha2::{Digest, Sha256};
use std::cmp::Ordering;

/// Returns `true` when the node named `local` must dial the node named
/// `remote`, following the wire rule described in the [module
/// documentation](self).
///
/// The answer depends only on the two names. For distinct names exactly one
/// of `dials(a, b)` and `dials(b, a)` is `true`; for equal names both are
/// `false`.
pub fn dials(local: &str, remote: &str) -> bool {
    let (lo, hi, local_is_lo) = match local.as_bytes().cmp(remote.as_bytes()) {
        Ordering::Less => (local, remote, true),
        Ordering::Greater => (remote, local, false),
        Ordering::Equal => return false,
    };
    let mut hasher = Sha256::new();
    hasher.update(lo.as_bytes());
    hasher.update([0x00]);
    hasher.update(hi.as_bytes());
    let digest = hasher.finalize();
    let lo_dials = digest[0] & 1 == 0;
    lo_dials == local_is_lo
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// Number of peers each node of `names` dials, in the order of `names`.
    fn dial_counts(names: &[String]) -> Vec<usize> {
        names
            .iter()
            .map(|local| names.iter().filter(|remote| dials(local, remote)).count())
            .collect()
    }

    fn assert_spread(label: &str, names: &[String]) {
        let counts = dial_counts(names);
        let min = *counts.iter().min().unwrap();
        let max = *counts.iter().max().unwrap();
        assert!(
            min >= 10,
            "{label}: some node dials fewer than 10 of {} peers (min {min}, max {max}, counts {counts:?})",
            names.len() - 1
        );
    }

    #[test]
    fn known_answer_vectors() {
        // Computed independently (Python hashlib) so that the implementation
        // is checked against the written rule, not only against itself.
        // SHA-256("a\0b") = 59b2..: first byte 0x59 is odd, so "b" dials.
        assert!(!dials("a", "b"));
        assert!(dials("b", "a"));
        // SHA-256("node-0:9000\0node-1:9000") = 0c80..: 0x0c is even, so lo
        // ("node-0:9000") dials.
        assert!(dials("node-0:9000", "node-1:9000"));
        assert!(!dials("node-1:9000", "node-0:9000"));
    }

    #[test]
    fn never_dials_self() {
        for name in ["", "a", "node-0:9000", "10.0.0.1:9000", "ü"] {
            assert!(!dials(name, name), "{name:?} dials itself");
        }
    }

    #[test]
    fn empty_name_is_ordered_first() {
        // The empty string is a legal (if odd) name and must still give
        // exactly one dialler.
        assert_ne!(dials("", "x"), dials("x", ""));
    }

    proptest::proptest! {
        #[test]
        fn antisymmetric(a in ".*", b in ".*") {
            if a == b {
                proptest::prop_assert!(!dials(&a, &b));
            } else {
                proptest::prop_assert_ne!(dials(&a, &b), dials(&b, &a));
            }
        }

        #[test]
        fn antisymmetric_for_near_identical_names(prefix in ".*", x: char, y: char) {
            // Names sharing a long prefix are the realistic case (host:port
            // lists) and exercise the bytewise ordering on the last byte.
            let a = format!("{prefix}{x}");
            let b = format!("{prefix}{y}");
            proptest::prop_assert_eq!(dials(&a, &b) || dials(&b, &a), a != b);
            proptest::prop_assert!(!(dials(&a, &b) && dials(&b, &a)));
        }

        #[test]
        fn self_never_dials(a in ".*") {
            proptest::prop_assert!(!dials(&a, &a));
        }
    }

    #[test]
    fn spread_node_names() {
        let names: Vec<String> = (0..35).map(|i| format!("node-{i}:9000")).collect();
        assert_spread("node-{i}:9000", &names);
    }

    #[test]
    fn spread_ip_names() {
        let names: Vec<String> = (0..35).map(|i| format!("10.0.0.{i}:9000")).collect();
        assert_spread("10.0.0.{i}:9000", &names);
    }

    #[test]
    fn spread_port_names() {
        let names: Vec<String> = (0..35).map(|i| format!("127.0.0.1:{}", 7000 + i)).collect();
        assert_spread("127.0.0.1:{7000+i}", &names);
    }

    #[test]
    fn spread_over_random_clusters() {
        const CLUSTERS: usize = 200;
        const NODES: usize = 35;
        let mut rng = Rng::new(0x6772_6964); // "grid"
                                             // Per-slot totals across clusters. The mean over all nodes of one
                                             // cluster is always exactly (NODES - 1) / 2 by antisymmetry, so the
                                             // informative check is that each individual node position, averaged
                                             // over independent clusters, also sits near half its peers.
        let mut slot_totals = [0usize; NODES];
        let mut grand_total = 0usize;
        for _ in 0..CLUSTERS {
            let names: Vec<String> = (0..NODES)
                .map(|_| {
                    let mut raw = [0u8; 6];
                    rng.fill_bytes(&mut raw);
                    let host: String = raw.iter().map(|b| format!("{b:02x}")).collect();
                    format!("{host}:{}", 1024 + rng.below(64_512))
                })
                .collect();
            let counts = dial_counts(&names);
            for (slot, count) in counts.iter().enumerate() {
                slot_totals[slot] += count;
            }
            grand_total += counts.iter().sum::<usize>();
        }
        let overall = grand_total as f64 / (CLUSTERS * NODES) as f64;
        assert!(
            (15.0..=19.0).contains(&overall),
            "overall average {overall}"
        );
        for (slot, total) in slot_totals.iter().enumerate() {
            let average = *total as f64 / CLUSTERS as f64;
            assert!(
                (15.0..=19.0).contains(&average),
                "node slot {slot}: average dialled count {average}"
            );
        }
    }
}
