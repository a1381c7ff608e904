//! Deadlines of in-flight calls.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// A min-heap of `(deadline, mux)`. Entries of calls that ended are left in
/// place and skipped when they surface; the heap is rebuilt from the live calls
/// when stale entries outnumber them, so memory stays proportional to calls in
/// flight and each call costs amortised O(log n).
#[derive(Debug, Default)]
pub(crate) struct Deadlines {
    heap: BinaryHeap<Reverse<(Instant, u32)>>,
}

impl Deadlines {
    pub(crate) fn insert(&mut self, deadline: Instant, mux: u32) {
        self.heap.push(Reverse((deadline, mux)));
    }

    /// The earliest deadline, possibly of a call that has ended (waking early is harmless).
    pub(crate) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Removes and returns an entry that is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, u32)> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse(entry)| entry),
            _ => None,
        }
    }

    /// Rebuilds from `live` when more than half the entries are stale.
    pub(crate) fn compact(&mut self, live_calls: usize, live: impl FnMut(&(Instant, u32)) -> bool) {
        let mut live = live;
        if self.heap.len() > 2 * live_calls + 64 {
            let entries = std::mem::take(&mut self.heap).into_vec();
            self.heap = entries.into_iter().filter(|Reverse(e)| live(e)).collect();
        }
    }

    pub(crate) fn clear(&mut self) {
        self.heap.clear();
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
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
        deadlines.compact(10, |&(_, mux)| mux < 10);
        assert_eq!(deadlines.len(), 10);
    }
}
