//! Protocol tests driven by the in-memory `Pair` simulator.

mod handshake;
mod props;
mod requests;
