//! What the lock service's tests share: a cluster on loopback, a partition,
//! and a checker of mutual exclusion.

#![allow(dead_code)]

pub(crate) mod checker;
pub(crate) mod cluster;
pub(crate) mod partition;
