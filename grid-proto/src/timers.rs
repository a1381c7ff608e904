//! Deadlines of in-flight calls.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// A deadline and the call it belongs to, ordered by deadline, then mux.
type Entry = (Instant, u32);

/// The call deadlines, earliest first (by deadline, then mux).
///
/// Calls opened one after another with the same timeout, the common case,
/// come in order: those go to the back of a sorted queue for O(1) each, and
/// only an entry that sorts before the queue's last one goes to a heap.
/// Taking the earlier of the two fronts gives the order one heap would.
/// Calls tend to end in the order they were opened too, so a call that ends
/// while its entry is the queue's first takes it out at once.
///
/// Other entries of calls that ended are left in place and skipped when they
/// surface; both parts are rebuilt from the live calls when stale entries
/// outnumber them, so memory stays proportional to calls in flight.
#[derive(Debug, Default)]
pub(crate) struct Deadlines {
    /// Entries in ascending order from `head` on; those before it are gone.
    ordered: Vec<Entry>,
    head: usize,
    /// Entries that came out of order.
    heap: BinaryHeap<Reverse<Entry>>,
}

impl Deadlines {
    pub(crate) fn insert(&mut self, deadline: Instant, mux: u32) {
        let entry = (deadline, mux);
        // The queue's last entry is never before `head`: the queue is
        // emptied when `head` reaches its end.
        if self.ordered.last().is_none_or(|last| entry >= *last) {
            self.ordered.push(entry);
        } else {
            self.heap.push(Reverse(entry));
        }
    }

    /// The earliest entry, and whether it is the queue's.
    fn first(&self) -> Option<(Entry, bool)> {
        match (self.ordered.get(self.head), self.heap.peek()) {
            (Some(queued), Some(Reverse(heaped))) if heaped < queued => Some((*heaped, false)),
            (Some(queued), _) => Some((*queued, true)),
            (None, Some(Reverse(heaped))) => Some((*heaped, false)),
            (None, None) => None,
        }
    }

    /// The earliest deadline, possibly of a call that has ended (waking early is harmless).
    pub(crate) fn next(&self) -> Option<Instant> {
        self.first().map(|((at, _), _)| at)
    }

    /// Removes and returns an entry that is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Entry> {
        match self.first()? {
            ((at, _), _) if at > now => None,
            (entry, true) => {
                self.pop_front();
                Some(entry)
            }
            (_, false) => self.heap.pop().map(|Reverse(entry)| entry),
        }
    }

    /// The call of `mux` with `deadline` ended: its entry goes now if it is
    /// the queue's first, else when it surfaces or at the next rebuild.
    pub(crate) fn ended(&mut self, deadline: Instant, mux: u32) {
        if self.ordered.get(self.head) == Some(&(deadline, mux)) {
            self.pop_front();
        }
    }

    fn pop_front(&mut self) {
        self.head += 1;
        if self.head == self.ordered.len() {
            self.ordered.clear();
            self.head = 0;
        } else if self.head >= 64 && self.head >= self.ordered.len() - self.head {
            // The dead front is at least as long as the rest: moving the rest
            // down costs no more than the pops that made the front.
            self.ordered.drain(..self.head);
            self.head = 0;
        }
    }

    /// Whether more than half the entries are stale, with `live_calls` calls
    /// in flight: then [`compact`](Self::compact) is due.
    #[inline]
    pub(crate) fn needs_compaction(&self, live_calls: usize) -> bool {
        self.len() > 2 * live_calls + 64
    }

    /// Rebuilds from the entries `live` keeps.
    pub(crate) fn compact(&mut self, mut live: impl FnMut(&Entry) -> bool) {
        self.ordered.drain(..self.head);
        self.head = 0;
        self.ordered.retain(&mut live);
        let entries = std::mem::take(&mut self.heap).into_vec();
        self.heap = entries.into_iter().filter(|Reverse(e)| live(e)).collect();
    }

    pub(crate) fn clear(&mut self) {
        self.ordered.clear();
        self.head = 0;
        self.heap.clear();
    }

    /// Entries, live or stale.
    pub(crate) fn len(&self) -> usize {
        self.ordered.len() - self.head + self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pops_in_order_and_compacts() {
        let t = Instant::now();
        let mut deadlines = Deadlines::default();
        for i in 0..200u32 {
            deadlines.insert(t + Duration::from_millis(u64::from(200 - i)), i);
        }
        assert_eq!(deadlines.next(), Some(t + Duration::from_millis(1)));
        assert_eq!(deadlines.pop_due(t), None);
        assert_eq!(
            deadlines.pop_due(t + Duration::from_millis(1)).map(|e| e.1),
            Some(199)
        );
        assert!(deadlines.needs_compaction(10));
        deadlines.compact(|&(_, mux)| mux < 10);
        assert!(!deadlines.needs_compaction(10));
        assert_eq!(deadlines.len(), 10);
    }

    #[test]
    fn calls_ending_in_opening_order_leave_nothing_behind() {
        let t = Instant::now();
        let mut deadlines = Deadlines::default();
        let at = |i: u32| t + Duration::from_millis(u64::from(i));
        for i in 0..64 {
            deadlines.insert(at(i), i);
        }
        // 64 in flight; each new call's opening follows the oldest's end.
        for i in 64..100_000 {
            deadlines.ended(at(i - 64), i - 64);
            deadlines.insert(at(i), i);
            assert_eq!(deadlines.len(), 64);
        }
        assert_eq!(deadlines.next(), Some(at(100_000 - 64)));
        assert!(
            deadlines.ordered.capacity() <= 1024,
            "the dead front is kept"
        );
        // An entry that is not the first stays until it surfaces.
        deadlines.ended(at(100_000 - 1), 100_000 - 1);
        assert_eq!(deadlines.len(), 64);
    }

    #[test]
    fn pops_in_the_order_of_one_heap_whatever_the_insertion_order() {
        let t = Instant::now();
        let mut deadlines = Deadlines::default();
        let mut reference = BinaryHeap::new();
        // Mostly ascending, as calls with one timeout come, with equal
        // instants, wrapped muxes and earlier deadlines mixed in.
        let mut state = 0x9e37_79b9_u32;
        let mut clock = 0u64;
        for step in 0..5000u32 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            clock += u64::from(state % 3);
            let at = match state % 7 {
                0 => clock.saturating_sub(u64::from(state % 50)),
                _ => clock,
            };
            let entry = (t + Duration::from_millis(at), state % 97);
            deadlines.insert(entry.0, entry.1);
            reference.push(Reverse(entry));
            if step % 5 == 4 {
                let now = t + Duration::from_millis(clock.saturating_sub(20));
                loop {
                    assert_eq!(deadlines.next(), reference.peek().map(|e| e.0 .0));
                    let expected = match reference.peek() {
                        Some(Reverse(e)) if e.0 <= now => reference.pop().map(|e| e.0),
                        _ => None,
                    };
                    assert_eq!(deadlines.pop_due(now), expected);
                    if expected.is_none() {
                        break;
                    }
                }
            }
            assert_eq!(deadlines.len(), reference.len());
        }
    }
}
