//! One server's grants: which holders have which lock, until when.
//!
//! Pure state: every method takes the current instant, so the rules are
//! tested without a clock. A grant whose lease has run out counts as gone at
//! once, for granting and refreshing alike, whether or not a sweep has
//! removed it yet.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::mode::Mode;

/// A holder as a server knows it: its node and its id for the acquisition.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HolderId {
    /// The holder's node name.
    pub node: String,
    /// The holder's lock id.
    pub uid: u64,
}

/// A grant as [`LockServer::holders`](crate::LockServer::holders) reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// Who holds it.
    pub holder: HolderId,
    /// In which mode.
    pub mode: Mode,
    /// When the server expires it unless refreshed.
    pub expires: Instant,
}

/// The grants of one lock name: one writer, or readers.
#[derive(Debug)]
enum Holders {
    Write(Entry),
    Read(Vec<Entry>),
}

#[derive(Debug)]
struct Entry {
    holder: HolderId,
    expires: Instant,
}

/// Every grant of one server.
#[derive(Debug, Default)]
pub(crate) struct LockTable {
    names: HashMap<String, Holders>,
}

impl LockTable {
    /// Grants `name` to `holder` in `mode` if nothing conflicting is alive.
    /// Granting again to the same holder and id restarts its lease, so a
    /// repeated call is harmless.
    pub(crate) fn lock(
        &mut self,
        now: Instant,
        name: &str,
        holder: HolderId,
        mode: Mode,
        lease: Duration,
    ) -> bool {
        self.prune(now, name);
        let expires = now + lease;
        match (self.names.get_mut(name), mode) {
            (None, Mode::Write) => {
                let entry = Entry { holder, expires };
                self.names.insert(name.to_string(), Holders::Write(entry));
                true
            }
            (None, Mode::Read) => {
                let entry = Entry { holder, expires };
                self.names
                    .insert(name.to_string(), Holders::Read(vec![entry]));
                true
            }
            (Some(Holders::Write(entry)), Mode::Write) if entry.holder == holder => {
                entry.expires = expires;
                true
            }
            (Some(Holders::Read(readers)), Mode::Read) => {
                match readers.iter_mut().find(|e| e.holder == holder) {
                    Some(entry) => entry.expires = expires,
                    None => readers.push(Entry { holder, expires }),
                }
                true
            }
            (Some(_), _) => false,
        }
    }

    /// Restarts the lease of `holder`'s live grant of `name`; `false` if it
    /// has none.
    pub(crate) fn refresh(
        &mut self,
        now: Instant,
        name: &str,
        holder: &HolderId,
        lease: Duration,
    ) -> bool {
        self.prune(now, name);
        let entry = match self.names.get_mut(name) {
            Some(Holders::Write(entry)) => Some(entry).filter(|e| &e.holder == holder),
            Some(Holders::Read(readers)) => readers.iter_mut().find(|e| &e.holder == holder),
            None => None,
        };
        match entry {
            Some(entry) => {
                entry.expires = now + lease;
                true
            }
            None => false,
        }
    }

    /// Removes `holder`'s grant of `name`; whether it had a live one.
    pub(crate) fn unlock(&mut self, now: Instant, name: &str, holder: &HolderId) -> bool {
        self.prune(now, name);
        let removed = match self.names.get_mut(name) {
            Some(Holders::Write(entry)) if &entry.holder == holder => {
                self.names.remove(name);
                return true;
            }
            Some(Holders::Read(readers)) => {
                let before = readers.len();
                readers.retain(|e| &e.holder != holder);
                before != readers.len()
            }
            _ => false,
        };
        if matches!(self.names.get(name), Some(Holders::Read(r)) if r.is_empty()) {
            self.names.remove(name);
        }
        removed
    }

    /// The live grants of `name`.
    pub(crate) fn grants(&self, now: Instant, name: &str) -> Vec<Grant> {
        let grant = |entry: &Entry, mode| Grant {
            holder: entry.holder.clone(),
            mode,
            expires: entry.expires,
        };
        match self.names.get(name) {
            Some(Holders::Write(entry)) if entry.expires > now => vec![grant(entry, Mode::Write)],
            Some(Holders::Read(readers)) => readers
                .iter()
                .filter(|e| e.expires > now)
                .map(|e| grant(e, Mode::Read))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Drops every expired grant; how many.
    pub(crate) fn sweep(&mut self, now: Instant) -> usize {
        let mut dropped = 0;
        self.names.retain(|_, holders| match holders {
            Holders::Write(entry) => {
                let alive = entry.expires > now;
                dropped += usize::from(!alive);
                alive
            }
            Holders::Read(readers) => {
                let before = readers.len();
                readers.retain(|e| e.expires > now);
                dropped += before - readers.len();
                !readers.is_empty()
            }
        });
        dropped
    }

    /// How many names have a grant, live or not yet swept.
    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }

    /// Drops the expired grants of `name`, so that every decision sees only
    /// live ones.
    fn prune(&mut self, now: Instant, name: &str) {
        let empty = match self.names.get_mut(name) {
            Some(Holders::Write(entry)) => entry.expires <= now,
            Some(Holders::Read(readers)) => {
                readers.retain(|e| e.expires > now);
                readers.is_empty()
            }
            None => false,
        };
        if empty {
            self.names.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_secs(10);

    fn holder(node: &str, uid: u64) -> HolderId {
        HolderId {
            node: node.to_string(),
            uid,
        }
    }

    #[test]
    fn a_write_excludes_everything_and_reads_share() {
        let t0 = Instant::now();
        let mut table = LockTable::default();
        assert!(table.lock(t0, "a", holder("n1", 1), Mode::Write, LEASE));
        assert!(!table.lock(t0, "a", holder("n2", 2), Mode::Write, LEASE));
        assert!(!table.lock(t0, "a", holder("n2", 2), Mode::Read, LEASE));
        assert!(table.lock(t0, "b", holder("n2", 3), Mode::Read, LEASE));
        assert!(table.lock(t0, "b", holder("n3", 4), Mode::Read, LEASE));
        assert!(!table.lock(t0, "b", holder("n1", 5), Mode::Write, LEASE));
        assert_eq!(table.grants(t0, "b").len(), 2);
        // The same id on another node is another holder.
        assert!(!table.lock(t0, "a", holder("n2", 1), Mode::Write, LEASE));
        // Asking again is harmless.
        assert!(table.lock(t0, "a", holder("n1", 1), Mode::Write, LEASE));
    }

    #[test]
    fn a_grant_expires_unless_refreshed() {
        let t0 = Instant::now();
        let mut table = LockTable::default();
        let h = holder("n1", 1);
        assert!(table.lock(t0, "a", h.clone(), Mode::Write, LEASE));
        assert!(table.refresh(t0 + Duration::from_secs(9), "a", &h, LEASE));
        // Refreshed at 9 s: still held at 18 s.
        assert!(!table.lock(
            t0 + Duration::from_secs(18),
            "a",
            holder("n2", 2),
            Mode::Write,
            LEASE
        ));
        // Expired at 19 s exactly, without a sweep: a refresh is refused and
        // another holder is granted.
        let t19 = t0 + Duration::from_secs(19);
        assert!(!table.refresh(t19, "a", &h, LEASE));
        assert!(table.lock(t19, "a", holder("n2", 2), Mode::Write, LEASE));
        assert!(
            !table.refresh(t19, "a", &h, LEASE),
            "an expired grant never comes back"
        );
    }

    #[test]
    fn unlock_removes_only_the_holders_own_grant() {
        let t0 = Instant::now();
        let mut table = LockTable::default();
        assert!(table.lock(t0, "r", holder("n1", 1), Mode::Read, LEASE));
        assert!(table.lock(t0, "r", holder("n2", 2), Mode::Read, LEASE));
        assert!(!table.unlock(t0, "r", &holder("n3", 1)));
        assert!(table.unlock(t0, "r", &holder("n1", 1)));
        assert!(!table.unlock(t0, "r", &holder("n1", 1)));
        assert!(!table.lock(t0, "r", holder("n3", 3), Mode::Write, LEASE));
        assert!(table.unlock(t0, "r", &holder("n2", 2)));
        assert_eq!(table.len(), 0);
        assert!(table.lock(t0, "r", holder("n3", 3), Mode::Write, LEASE));
        assert!(!table.unlock(t0, "r", &holder("n1", 3)));
        assert!(table.unlock(t0, "r", &holder("n3", 3)));
    }

    #[test]
    fn sweep_drops_only_expired_grants() {
        let t0 = Instant::now();
        let mut table = LockTable::default();
        table.lock(t0, "a", holder("n1", 1), Mode::Write, LEASE);
        table.lock(t0, "b", holder("n1", 2), Mode::Read, LEASE);
        table.lock(t0, "b", holder("n2", 3), Mode::Read, LEASE * 2);
        assert_eq!(table.sweep(t0 + LEASE), 2);
        assert_eq!(table.len(), 1);
        assert_eq!(table.grants(t0 + LEASE, "b").len(), 1);
    }
}
