//! The answers of one round of calls to every lock server, counted.

use std::fmt;

use crate::locker::Answer;
use crate::wire::Refusal;

/// How the lock servers answered one round of lock, refresh or unlock calls.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Lock servers asked.
    pub servers: usize,
    /// Answers needed for the round to succeed.
    pub needed: usize,
    /// Servers that granted, refreshed or released.
    pub done: usize,
    /// Servers where another holder has the lock.
    pub held: usize,
    /// Servers that had no such grant (on refresh: expired or forgotten).
    pub not_held: usize,
    /// Servers that started less than a lease ago and grant nothing yet.
    pub starting: usize,
    /// Servers that refused the lease as zero or too long.
    pub bad_lease: usize,
    /// Servers that did not answer.
    pub unreachable: usize,
    /// The last call error seen, for the message.
    pub last_error: Option<grid::Error>,
}

impl Tally {
    pub(crate) fn new(servers: usize, needed: usize) -> Tally {
        Tally {
            servers,
            needed,
            ..Tally::default()
        }
    }

    pub(crate) fn count<T>(&mut self, answer: Answer<T>) -> Option<T> {
        match answer {
            Answer::Done(value) => {
                self.done += 1;
                return Some(value);
            }
            Answer::Refused(Refusal::Held) => self.held += 1,
            Answer::Refused(Refusal::NotHeld) => self.not_held += 1,
            Answer::Refused(Refusal::Starting) => self.starting += 1,
            Answer::Refused(Refusal::BadLease { .. }) => self.bad_lease += 1,
            Answer::Unreachable(error) => {
                self.unreachable += 1;
                self.last_error = Some(error);
            }
        }
        None
    }

    /// Whether enough servers did as asked.
    pub fn succeeded(&self) -> bool {
        self.done >= self.needed
    }

    /// Whether enough servers answered at all for the round to have been
    /// able to succeed.
    pub fn quorum_reachable(&self) -> bool {
        self.servers - self.unreachable >= self.needed
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {} lock servers did it, {} needed",
            self.done, self.servers, self.needed
        )?;
        let parts = [
            (self.held, "held by another holder"),
            (self.not_held, "no such grant"),
            (self.starting, "starting up"),
            (self.bad_lease, "lease refused"),
        ];
        for (count, what) in parts {
            if count > 0 {
                write!(f, "; {count} {what}")?;
            }
        }
        if self.unreachable > 0 {
            write!(f, "; {} unreachable", self.unreachable)?;
            if let Some(error) = &self.last_error {
                write!(f, " ({error})")?;
            }
        }
        Ok(())
    }
}
