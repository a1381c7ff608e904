//! What the driver does after a round: a pure function of what the round did
//! and found, so that every way of stopping or going on is testable without
//! a socket.

/// Rounds of read/dispatch/write in one poll before yielding to other tasks.
/// Few, so that a connection saturated by a bulk stream does not keep the
/// tasks of small calls on the same thread waiting behind it for many
/// rounds of reading and dispatching. Not fewer: below this, a small call's
/// tail latency under a bulk stream on the same thread grows again, from
/// the extra trips through the scheduler.
pub(super) const ROUNDS_PER_POLL: usize = 4;

/// What one round did and found, in plain values.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Round {
    /// Rounds run in this poll, this one included.
    pub(super) rounds: usize,
    /// The round moved the connection on: input fed, the socket closed, bytes
    /// written, or the close's flush deadline expired.
    pub(super) progressed: bool,
    /// The socket holds the driver's waker: it had nothing to read.
    pub(super) socket_waiting: bool,
    /// All the protocol's output was taken.
    pub(super) output_taken: bool,
    /// Nothing waits to be written (or nothing can be: the socket failed).
    pub(super) writes_done: bool,
    /// Incoming calls were dispatched but not yet started.
    pub(super) calls_left: bool,
    /// The protocol's timer expired when armed.
    pub(super) timer_expired: bool,
    /// A waiting caller was handed its answer.
    pub(super) answered: bool,
    /// Calls are still in flight, besides any answered in this round.
    pub(super) others_in_flight: bool,
    /// The handshake completed in this round.
    pub(super) connected: bool,
    /// The connection has closed and its final frames are being flushed.
    pub(super) closing: bool,
    /// The time allowed for that flush has passed.
    pub(super) flush_deadline_passed: bool,
}

/// What the driver does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Next {
    /// Another round. If `park_if_socket_idle`, the connection and timer
    /// already hold the driver's waker: should the socket have nothing to
    /// read either, the driver parks without looking under the lock.
    Round { park_if_socket_idle: bool },
    /// Every source of work holds the driver's waker: return `Pending`.
    Park,
    /// Work is left, but other tasks run first: wake itself, return `Pending`.
    Yield,
    /// Report the completed handshake.
    Connected,
    /// Close the socket and report the closed connection.
    Close,
}

/// Decides what follows a round.
pub(super) fn decide(round: &Round) -> Next {
    // The protocol reports `Connected` once per connection, and it is
    // reported before the close that may follow in the same round.
    if round.connected {
        return Next::Connected;
    }
    // The final frames (Close, Reject) go out before the socket closes,
    // unless the socket failed or the peer stopped reading: then they wait
    // for the flush deadline, never forever.
    if round.closing && (round.writes_done || round.flush_deadline_passed) {
        return Next::Close;
    }
    if round.answered && round.progressed && round.others_in_flight {
        // A caller's answer arrived while other calls (a bulk stream) keep
        // this driver busy: let the caller run now, not after the driver has
        // worked through more of their input. With nothing else in flight
        // there is nothing to get ahead of, and the extra poll would only add
        // to the call's latency.
        return Next::Yield;
    }
    if !round.progressed && !round.timer_expired {
        return Next::Park;
    }
    let settled =
        round.output_taken && round.writes_done && !round.timer_expired && !round.calls_left;
    if settled && round.socket_waiting {
        // Every source of work (socket, connection, timer) holds this task's
        // waker: another round would only find that out again.
        return Next::Park;
    }
    if round.rounds >= ROUNDS_PER_POLL {
        return Next::Yield;
    }
    Next::Round {
        park_if_socket_idle: settled,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A round that read input and wrote everything it produced.
    fn busy() -> Round {
        Round {
            rounds: 1,
            progressed: true,
            output_taken: true,
            writes_done: true,
            ..Round::default()
        }
    }

    #[test]
    fn nothing_happened_parks() {
        let round = Round {
            rounds: 1,
            socket_waiting: true,
            output_taken: true,
            writes_done: true,
            ..Round::default()
        };
        assert_eq!(decide(&round), Next::Park);
        // Even with output left over: the socket's waker brings it back.
        let full = Round {
            output_taken: false,
            writes_done: false,
            ..round
        };
        assert_eq!(decide(&full), Next::Park);
    }

    #[test]
    fn an_expired_timer_runs_another_round() {
        let round = Round {
            rounds: 1,
            socket_waiting: true,
            output_taken: true,
            writes_done: true,
            timer_expired: true,
            ..Round::default()
        };
        assert_eq!(
            decide(&round),
            Next::Round {
                park_if_socket_idle: false
            }
        );
    }

    #[test]
    fn progress_with_everything_waiting_parks() {
        let round = Round {
            socket_waiting: true,
            ..busy()
        };
        assert_eq!(decide(&round), Next::Park);
    }

    #[test]
    fn progress_after_a_read_looks_at_the_socket_once_more() {
        assert_eq!(
            decide(&busy()),
            Next::Round {
                park_if_socket_idle: true
            }
        );
    }

    #[test]
    fn work_left_runs_another_full_round() {
        for round in [
            Round {
                output_taken: false,
                ..busy()
            },
            Round {
                writes_done: false,
                ..busy()
            },
            Round {
                calls_left: true,
                ..busy()
            },
            Round {
                socket_waiting: true,
                calls_left: true,
                ..busy()
            },
        ] {
            assert_eq!(
                decide(&round),
                Next::Round {
                    park_if_socket_idle: false
                },
                "{round:?}"
            );
        }
    }

    #[test]
    fn yields_after_the_last_round() {
        for rounds in 1..ROUNDS_PER_POLL {
            let round = Round { rounds, ..busy() };
            assert!(matches!(decide(&round), Next::Round { .. }));
        }
        let round = Round {
            rounds: ROUNDS_PER_POLL,
            ..busy()
        };
        assert_eq!(decide(&round), Next::Yield);
        // Parking does not wait for the rounds to run out.
        let idle = Round {
            rounds: ROUNDS_PER_POLL,
            progressed: false,
            ..busy()
        };
        assert_eq!(decide(&idle), Next::Park);
    }

    #[test]
    fn an_answer_yields_only_while_other_calls_are_in_flight() {
        let alone = Round {
            answered: true,
            ..busy()
        };
        assert!(matches!(decide(&alone), Next::Round { .. }));
        let busy_connection = Round {
            others_in_flight: true,
            ..alone
        };
        assert_eq!(decide(&busy_connection), Next::Yield);
        let nothing_done = Round {
            progressed: false,
            ..busy_connection
        };
        assert_eq!(decide(&nothing_done), Next::Park);
    }

    #[test]
    fn connected_is_reported_before_anything_else() {
        let round = Round {
            connected: true,
            closing: true,
            flush_deadline_passed: true,
            answered: true,
            others_in_flight: true,
            ..busy()
        };
        assert_eq!(decide(&round), Next::Connected);
    }

    #[test]
    fn closing_waits_for_the_final_frames() {
        let flushing = Round {
            closing: true,
            writes_done: false,
            ..busy()
        };
        assert!(matches!(decide(&flushing), Next::Round { .. }));
        let idle = Round {
            progressed: false,
            ..flushing
        };
        assert_eq!(decide(&idle), Next::Park);
        let flushed = Round {
            writes_done: true,
            ..idle
        };
        assert_eq!(decide(&flushed), Next::Close);
        let late = Round {
            flush_deadline_passed: true,
            ..idle
        };
        assert_eq!(decide(&late), Next::Close);
    }
}
