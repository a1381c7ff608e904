//! Protocol tests driven by the in-memory `Pair` simulator.

mod batches;
mod bounds;
mod handshake;
mod lifecycle;
mod limits;
mod props;
mod regressions;
mod requests;
mod streams;
mod write_stall;
