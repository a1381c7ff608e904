//! The global observer: every interval in which a client relied on a lock,
//! in the simulation's virtual time, and the overlaps mutual exclusion
//! forbids.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use grid_lock::Mode;

/// One client's reliance on one lock, from its first successful check to the
/// end of its last step (or its node's crash).
#[derive(Clone, Debug)]
struct Hold {
    client: String,
    node: usize,
    name: String,
    mode: Mode,
    from: Duration,
    until: Option<Duration>,
}

/// Records holds from every host; the simulation runs on one thread, so the
/// order of records is the order of virtual events.
#[derive(Clone, Default)]
pub(crate) struct Observer {
    holds: Arc<Mutex<Vec<Hold>>>,
}

/// Virtual time since the simulation started, as every host sees it.
pub(crate) fn now() -> Duration {
    turmoil::sim_elapsed().expect("inside the simulation")
}

impl Hold {
    fn describe(&self) -> String {
        format!(
            "{} (node {}) {} lock {:?} from {:?} until {:?}",
            self.client, self.node, self.mode, self.name, self.from, self.until
        )
    }
}

impl Observer {
    /// `client` on `node` starts relying on `name`; the hold's id.
    pub(crate) fn enter(&self, client: &str, node: usize, name: &str, mode: Mode) -> usize {
        let mut holds = self.holds.lock().unwrap();
        holds.push(Hold {
            client: client.to_string(),
            node,
            name: name.to_string(),
            mode,
            from: now(),
            until: None,
        });
        holds.len() - 1
    }

    /// The hold `id` ends now.
    pub(crate) fn exit(&self, id: usize) {
        self.holds.lock().unwrap()[id].until = Some(now());
    }

    /// Node `node` crashed at `at`: its clients rely on nothing from then on.
    pub(crate) fn crashed(&self, node: usize, at: Duration) {
        for hold in self.holds.lock().unwrap().iter_mut() {
            if hold.node == node && hold.until.is_none() {
                hold.until = Some(at);
            }
        }
    }

    /// Every hold, described, in the order they began.
    pub(crate) fn describe_all(&self) -> Vec<String> {
        self.holds
            .lock()
            .unwrap()
            .iter()
            .map(|h| h.describe())
            .collect()
    }

    /// How many holds were recorded.
    pub(crate) fn holds(&self) -> usize {
        self.holds.lock().unwrap().len()
    }

    /// Every pair of holds of one name that overlapped in virtual time where
    /// one of them was a write; a hold still open counts until `end`.
    pub(crate) fn violations(&self, end: Duration) -> Vec<String> {
        let holds = self.holds.lock().unwrap();
        let mut found = Vec::new();
        for (i, a) in holds.iter().enumerate() {
            for b in &holds[i + 1..] {
                let conflicting = a.mode == Mode::Write || b.mode == Mode::Write;
                let overlap = a.from < b.until.unwrap_or(end) && b.from < a.until.unwrap_or(end);
                if a.name == b.name && conflicting && overlap {
                    found.push(format!("{} overlaps {}", a.describe(), b.describe()));
                }
            }
        }
        found
    }
}

#[test]
fn overlapping_writes_are_found_and_shared_reads_are_not() {
    let observer = Observer::default();
    let hold = |client: &str, mode, from, until| Hold {
        client: client.to_string(),
        node: 0,
        name: "n".to_string(),
        mode,
        from: Duration::from_millis(from),
        until: Some(Duration::from_millis(until)),
    };
    observer.holds.lock().unwrap().extend([
        hold("r1", Mode::Read, 0, 10),
        hold("r2", Mode::Read, 5, 15),
        hold("w1", Mode::Write, 15, 20),
    ]);
    assert!(observer.violations(Duration::MAX).is_empty());
    observer
        .holds
        .lock()
        .unwrap()
        .push(hold("w2", Mode::Write, 19, 30));
    assert_eq!(observer.violations(Duration::MAX).len(), 1);
}
