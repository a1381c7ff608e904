//! Write and read locks, and how many servers must grant each.

use std::fmt;

/// The kind of a lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Exclusive: no other holder, write or read.
    Write,
    /// Shared with other readers, exclusive of writers.
    Read,
}

impl Mode {
    /// How many of `servers` lock servers must grant a lock of this mode.
    ///
    /// As in dsync: a write needs `n/2 + 1`, a strict majority, so two
    /// writes always share a server; a read needs `n - n/2` (half, rounded
    /// up), so a read and a write always share a server (their quorums add
    /// up to `n + 1`). Two reads need not overlap, and a read stays
    /// available with half of the servers down when `n` is even.
    pub fn quorum(self, servers: usize) -> usize {
        match self {
            Mode::Write => servers / 2 + 1,
            Mode::Read => servers - servers / 2,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Write => "write",
            Mode::Read => "read",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorums_intersect_where_they_must() {
        for n in 1..=64 {
            let w = Mode::Write.quorum(n);
            let r = Mode::Read.quorum(n);
            assert!(w <= n && r <= n && r >= 1, "n={n}");
            assert!(2 * w > n, "two writes share a server, n={n}");
            assert!(w + r > n, "a read and a write share a server, n={n}");
        }
        assert_eq!((Mode::Write.quorum(4), Mode::Read.quorum(4)), (3, 2));
        assert_eq!((Mode::Write.quorum(5), Mode::Read.quorum(5)), (3, 3));
        assert_eq!((Mode::Write.quorum(16), Mode::Read.quorum(16)), (9, 8));
    }
}
