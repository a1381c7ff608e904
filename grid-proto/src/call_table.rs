//! The table of calls in flight, keyed by mux id.
//!
//! Mux ids are allocated from a counter (PROTOCOL.md §6.2), so the calls in
//! flight at any moment mostly have neighbouring ids. A vector indexed by the
//! id's low bits then finds a call with one comparison and no hashing; the
//! rare id whose slot is taken by another call (a long-lived stream among
//! many short requests, or ids a hostile peer chose to collide) goes to a
//! hash map beside it. Every lookup costs one slot and at most one hash
//! lookup, whatever the ids.

use rustc_hash::FxHashMap;

/// Slots of a table once it holds a call: few, so that a quiet connection
/// (a call now and then) holds little.
const MIN_SLOTS: usize = 4;

/// Calls by mux id.
#[derive(Debug)]
pub(crate) struct CallTable<T> {
    /// A power of two of slots (or none before the first call); a call sits
    /// in the slot its id's low bits name, or in `overflow`.
    slots: Vec<Option<(u32, T)>>,
    overflow: FxHashMap<u32, T>,
    len: usize,
}

impl<T> Default for CallTable<T> {
    fn default() -> Self {
        CallTable {
            slots: Vec::new(),
            overflow: FxHashMap::default(),
            len: 0,
        }
    }
}

impl<T> CallTable<T> {
    /// Calls held.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The slot `mux` belongs in; `None` while there are no slots.
    fn index(&self, mux: u32) -> Option<usize> {
        // Lossless: usize is at least 32 bits.
        (!self.slots.is_empty()).then(|| mux as usize & (self.slots.len() - 1))
    }

    pub(crate) fn get(&self, mux: &u32) -> Option<&T> {
        if let Some(Some((held, call))) = self.index(*mux).and_then(|i| self.slots.get(i)) {
            if held == mux {
                return Some(call);
            }
        }
        if self.overflow.is_empty() {
            return None;
        }
        self.overflow.get(mux)
    }

    pub(crate) fn get_mut(&mut self, mux: &u32) -> Option<&mut T> {
        let index = self.index(*mux);
        if let Some(Some((held, call))) = index.and_then(|i| self.slots.get_mut(i)) {
            if held == mux {
                return Some(call);
            }
        }
        if self.overflow.is_empty() {
            return None;
        }
        self.overflow.get_mut(mux)
    }

    pub(crate) fn contains_key(&self, mux: &u32) -> bool {
        self.get(mux).is_some()
    }

    /// Holds `call` under `mux`; returns the call it replaces, if any.
    pub(crate) fn insert(&mut self, mux: u32, call: T) -> Option<T> {
        // Grown first, so the slot found below is the one it will be in (a
        // replacement grows the table needlessly at most once).
        if self.len + 1 > self.slots.len() / 2 {
            self.grow();
        }
        let index = mux as usize & (self.slots.len() - 1);
        let overflowed = !self.overflow.is_empty();
        let replaced = match self.slots.get_mut(index) {
            Some(Some((held, old))) if *held == mux => Some(std::mem::replace(old, call)),
            Some(slot @ None) if !overflowed => {
                *slot = Some((mux, call));
                None
            }
            Some(None) => match self.overflow.get_mut(&mux) {
                Some(old) => Some(std::mem::replace(old, call)),
                None => {
                    self.slots[index] = Some((mux, call));
                    None
                }
            },
            _ => self.overflow.insert(mux, call),
        };
        if replaced.is_none() {
            self.len += 1;
        }
        replaced
    }

    /// Puts a call not held yet in its slot, or beside the table if the slot
    /// is taken.
    fn place(&mut self, mux: u32, call: T) {
        match self.index(mux).and_then(|i| self.slots.get_mut(i)) {
            Some(slot @ None) => *slot = Some((mux, call)),
            _ => {
                self.overflow.insert(mux, call);
            }
        }
    }

    /// Doubles the slots, so that they stay at least twice the calls held,
    /// and places every call again: some that overflowed now get a slot.
    fn grow(&mut self) {
        let count = (self.slots.len() * 2).max(MIN_SLOTS);
        let old = std::mem::replace(&mut self.slots, Vec::with_capacity(count));
        self.slots.resize_with(count, || None);
        let overflow = std::mem::take(&mut self.overflow);
        for (mux, call) in old.into_iter().flatten().chain(overflow) {
            self.place(mux, call);
        }
    }

    pub(crate) fn remove(&mut self, mux: &u32) -> Option<T> {
        let index = self.index(*mux);
        let slot = index.and_then(|i| self.slots.get_mut(i));
        let removed = match slot {
            Some(slot) if slot.as_ref().is_some_and(|(held, _)| held == mux) => {
                slot.take().map(|(_, call)| call)
            }
            _ if self.overflow.is_empty() => None,
            _ => self.overflow.remove(mux),
        };
        if removed.is_some() {
            self.len -= 1;
        }
        removed
    }

    /// Gives the slots back to the system if no call is held: called now
    /// and then (on keepalive), so that an idle connection keeps no table
    /// sized for the traffic it once had.
    pub(crate) fn release_if_empty(&mut self) {
        if self.len == 0 {
            *self = CallTable::default();
        }
    }

    /// Every call held, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&u32, &T)> {
        let slotted = self.slots.iter().flatten().map(|(mux, call)| (mux, call));
        slotted.chain(self.overflow.iter())
    }

    /// Takes every call out, in no particular order. The slots are kept for
    /// reuse.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = (u32, T)> + '_ {
        self.len = 0;
        let slotted = self.slots.iter_mut().filter_map(Option::take);
        slotted.chain(self.overflow.drain())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// Runs the same operations on a table and on a `HashMap`, checking that
    /// they agree after each.
    fn check(ops: impl IntoIterator<Item = (bool, u32)>) {
        let mut table = CallTable::default();
        let mut reference = HashMap::new();
        for (step, (insert, mux)) in ops.into_iter().enumerate() {
            if insert {
                assert_eq!(table.insert(mux, step), reference.insert(mux, step));
            } else {
                assert_eq!(table.remove(&mux), reference.remove(&mux));
            }
            assert_eq!(table.len(), reference.len());
            assert_eq!(table.get(&mux), reference.get(&mux));
            assert_eq!(table.contains_key(&mux), reference.contains_key(&mux));
        }
        let mut held: Vec<(u32, usize)> = table.iter().map(|(m, c)| (*m, *c)).collect();
        let mut expected: Vec<(u32, usize)> = reference.iter().map(|(m, c)| (*m, *c)).collect();
        held.sort_unstable();
        expected.sort_unstable();
        assert_eq!(held, expected);
        let mut drained: Vec<(u32, usize)> = table.drain().collect();
        drained.sort_unstable();
        assert_eq!(drained, expected);
        assert!(table.is_empty());
        assert_eq!(table.iter().count(), 0);
        table.release_if_empty();
        assert_eq!(table.slots.capacity(), 0);
    }

    #[test]
    fn a_window_of_sequential_ids_never_collides() {
        let mut table = CallTable::default();
        for mux in 1..10_000u32 {
            table.insert(mux, ());
            if mux > 64 {
                table.remove(&(mux - 64));
            }
            assert!(table.overflow.is_empty());
        }
        assert_eq!(table.len(), 64);
        assert!(table.slots.len() <= 256, "{} slots", table.slots.len());
    }

    #[test]
    fn colliding_ids_agree_with_a_hash_map() {
        // Every id in the same slot whatever the table's size, a long-lived
        // call among short ones, and ids of both namespaces.
        let colliding = (0..300u32).map(|i| (i % 7 != 3, (i % 40) << 16));
        let mixed = (0..3000u32).map(|i| match i % 5 {
            0 => (true, 5),
            1 | 2 => (true, i | 0x8000_0000),
            _ => (false, (i - 2) | 0x8000_0000),
        });
        check(colliding);
        check(mixed);
        check((1..2000u32).map(|i| (i % 3 != 0, i / 2)));
    }
}
