//! Records when clients rely on their locks and finds overlaps that mutual
//! exclusion forbids: a write with any other hold of the same name.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use grid_lock::Mode;

/// Holds currently relied on, and every violation seen.
#[derive(Clone, Default)]
pub(crate) struct Checker {
    inner: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    /// Per name: the writers and the readers relying on it now.
    held: HashMap<String, (usize, usize)>,
    violations: Vec<String>,
    holds: usize,
    most_readers: usize,
}

impl Checker {
    /// `client` starts relying on `name` in `mode`.
    pub(crate) fn enter(&self, client: &str, name: &str, mode: Mode) {
        let mut state = self.inner.lock().unwrap();
        state.holds += 1;
        let (writers, readers) = state.held.get(name).copied().unwrap_or((0, 0));
        let conflict = match mode {
            Mode::Write => writers + readers > 0,
            Mode::Read => writers > 0,
        };
        if conflict {
            state.violations.push(format!(
                "{client} took {mode} lock {name:?} while {writers} writers and {readers} readers held it"
            ));
        }
        let entry = state.held.entry(name.to_string()).or_default();
        match mode {
            Mode::Write => entry.0 += 1,
            Mode::Read => entry.1 += 1,
        }
        let readers = entry.1;
        state.most_readers = state.most_readers.max(readers);
    }

    /// `client` stops relying on `name`.
    pub(crate) fn exit(&self, name: &str, mode: Mode) {
        let mut state = self.inner.lock().unwrap();
        let entry = state.held.get_mut(name).expect("exit without enter");
        match mode {
            Mode::Write => entry.0 -= 1,
            Mode::Read => entry.1 -= 1,
        }
    }

    /// Panics with every violation seen, if any.
    pub(crate) fn assert_exclusive(&self) {
        let state = self.inner.lock().unwrap();
        assert!(
            state.violations.is_empty(),
            "mutual exclusion violated:\n{}",
            state.violations.join("\n")
        );
    }

    /// How many holds were recorded.
    pub(crate) fn holds(&self) -> usize {
        self.inner.lock().unwrap().holds
    }

    /// The most readers that held one name at once.
    pub(crate) fn most_readers(&self) -> usize {
        self.inner.lock().unwrap().most_readers
    }
}
