//! What the kernel says this process holds: open file descriptors and
//! resident memory, read from `/proc/self` (Linux only).

use std::fs;

/// File descriptors the process holds now: the entries of `/proc/self/fd`,
/// less the one the directory listing itself opens.
pub fn open_fds() -> Result<usize, String> {
    let entries = fs::read_dir("/proc/self/fd").map_err(|e| format!("/proc/self/fd: {e}"))?;
    // The listing's own descriptor is among the entries while it is read.
    Ok(entries.count().saturating_sub(1))
}

/// Resident set size of the process in bytes: the second field of
/// `/proc/self/statm` (pages), times the page size.
pub fn resident_bytes() -> Result<u64, String> {
    let text =
        fs::read_to_string("/proc/self/statm").map_err(|e| format!("/proc/self/statm: {e}"))?;
    let pages = resident_pages(&text)?;
    Ok(pages * page_size())
}

/// The resident page count in the text of `/proc/self/statm`.
fn resident_pages(statm: &str) -> Result<u64, String> {
    statm
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse().ok())
        .ok_or_else(|| format!("/proc/self/statm: unexpected text {statm:?}"))
}

fn page_size() -> u64 {
    // SAFETY: sysconf only reads a system constant.
    #[allow(unsafe_code)]
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|&s| s > 0).unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statm_resident_field() {
        assert_eq!(resident_pages("1000 250 30 5 0 400 0\n"), Ok(250));
        assert!(resident_pages("1000").is_err());
        assert!(resident_pages("").is_err());
    }

    #[test]
    fn counts_descriptors_the_process_opens() {
        // Other tests in this process (a small mesh) may open or close a score meanwhile.
        let before = open_fds().unwrap();
        let files: Vec<fs::File> = (0..64)
            .map(|_| fs::File::open("/proc/self/statm").unwrap())
            .collect();
        let during = open_fds().unwrap();
        assert!(
            (40..=88).contains(&(during - before)),
            "{before} -> {during}"
        );
        drop(files);
        assert!(open_fds().unwrap() + 40 <= during);
        assert!(resident_bytes().unwrap() > 0);
    }
}
