//! Whether a mesh fits under the process's file descriptor limit.
//!
//! In one process a mesh of N nodes holds both ends of every connection: N
//! listeners plus N(N-1) sockets (N = 128: 16 384). The soft limit is raised
//! to the hard one when that makes a size fit; a size that does not fit even
//! then is skipped with the reason, rather than failing half-connected.

// getrlimit and setrlimit are the only way to read and raise the limit.
#![allow(unsafe_code)]

/// Descriptors a run needs besides the mesh's own: the runtime's epoll and
/// wake-up descriptors, stdio, the pipes to the parent, and a margin for a
/// connection that is replaced while the mesh forms.
pub const SPARE_FDS: u64 = 64;

/// Descriptors a mesh of `nodes` nodes holds once connected: one listener
/// per node, and both ends of each of the N(N-1)/2 connections.
pub fn mesh_fds(nodes: usize) -> u64 {
    let nodes = nodes as u64;
    nodes.saturating_add(nodes.saturating_mul(nodes.saturating_sub(1)))
}

/// The soft and hard limits on open file descriptors (`ulimit -n`, `-Hn`).
pub fn limits() -> Result<(u64, u64), String> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given.
    let status = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    if status != 0 {
        return Err(format!("getrlimit: {}", std::io::Error::last_os_error()));
    }
    Ok((limit.rlim_cur, limit.rlim_max))
}

/// Sets the soft limit to `soft` (at most the hard limit `hard`).
fn set_soft_limit(soft: u64, hard: u64) -> Result<(), String> {
    let limit = libc::rlimit {
        rlim_cur: soft.min(hard),
        rlim_max: hard,
    };
    // SAFETY: setrlimit only reads the struct it is given.
    let status = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    if status != 0 {
        return Err(format!("setrlimit: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Whether a mesh of `nodes` nodes fits, with `open` descriptors already
/// held: `Ok(())` if it does (after raising the soft limit if needed), or
/// the reason it cannot.
pub fn ensure_fits(nodes: usize, open: u64) -> Result<(), String> {
    let needed = open
        .saturating_add(mesh_fds(nodes))
        .saturating_add(SPARE_FDS);
    let (soft, hard) = limits()?;
    if needed <= soft {
        return Ok(());
    }
    if needed > hard {
        return Err(format!(
            "{nodes} nodes need about {needed} file descriptors ({} for the mesh, \
             {open} open, {SPARE_FDS} spare); the limit is {hard} (ulimit -Hn)",
            mesh_fds(nodes)
        ));
    }
    set_soft_limit(needed, hard).map_err(|e| {
        format!("{nodes} nodes need {needed} file descriptors, above the soft limit {soft}: {e}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mesh_needs_both_ends_of_every_pair() {
        assert_eq!(mesh_fds(2), 2 + 2);
        assert_eq!(mesh_fds(8), 8 + 56);
        assert_eq!(mesh_fds(128), 128 + 2 * 8128);
    }

    #[test]
    fn a_mesh_beyond_the_hard_limit_is_refused() {
        let (_, hard) = limits().unwrap();
        // Nodes whose sockets alone exceed any limit this test can meet.
        let nodes = (hard as f64).sqrt() as usize + 2;
        let reason = ensure_fits(nodes, 10).unwrap_err();
        assert!(reason.contains("file descriptors"), "{reason}");
        assert!(ensure_fits(2, 10).is_ok());
    }
}
