//! Command-line options of the mesh scale benchmark.

use std::time::Duration;

/// The subcommand's name.
pub const COMMAND: &str = "mesh-scale";

/// What `--help` prints.
pub const USAGE: &str = "\
usage: grid-benches mesh-scale [--nodes 8,32,128] [--quick] [--one N]

A full mesh of N grid-tokio nodes in one process, on loopback, default
settings, one tokio runtime with 2 worker threads: the time until every pair
is connected, file descriptors, resident and allocated memory per idle
connection, then one all-to-all round of 32 B echo calls (a task per call).
Each size runs in a fresh process of its own, so that one size's freed
memory does not hide the next one's growth. Progress goes to stderr; the
table and one `mesh-scale-row` line per size go to stdout.

  --nodes LIST    comma-separated node counts, each at least 2
                  (default 8,32,128)
  --quick         8 nodes only, shorter idle wait (for CI)
  --one N         run N nodes in this process and print its row only
                  (what each size's process runs)
";

/// Parsed command line.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// Node counts to run, in order.
    pub nodes: Vec<usize>,
    /// `--quick` was given.
    pub quick: bool,
    /// `--one N`: run this one size here instead of a process per size.
    pub one: Option<usize>,
}

impl Options {
    /// Parses the arguments after the program name (the first is
    /// [`COMMAND`]). `Ok(None)` for `--help`.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Option<Options>, String> {
        let mut args = args.into_iter();
        match args.next().as_deref() {
            Some(COMMAND) => {}
            Some(other) => return Err(format!("unknown command {other:?}")),
            None => return Err(format!("missing command: {COMMAND}")),
        }
        let mut nodes = None;
        let mut quick = false;
        let mut one = None;
        while let Some(arg) = args.next() {
            let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
            match arg.as_str() {
                "--nodes" => nodes = Some(node_counts(&value("--nodes")?)?),
                "--quick" => quick = true,
                "--one" => one = Some(node_count(&value("--one")?)?),
                "--help" | "-h" => return Ok(None),
                other => return Err(format!("unknown option {other:?}")),
            }
        }
        let nodes = match (nodes, quick) {
            (Some(nodes), _) => nodes,
            (None, true) => vec![8],
            (None, false) => vec![8, 32, 128],
        };
        Ok(Some(Options { nodes, quick, one }))
    }

    /// How long the mesh stays idle after connecting before memory is read:
    /// long enough for connections' handshake leftovers to be freed.
    pub fn settle(&self) -> Duration {
        if self.quick {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(1)
        }
    }
}

fn node_counts(text: &str) -> Result<Vec<usize>, String> {
    text.split(',')
        .map(|count| node_count(count.trim()))
        .collect()
}

fn node_count(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(count) if (2..=10_000).contains(&count) => Ok(count),
        _ => Err(format!("{text:?} is not a node count from 2 to 10000")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Options>, String> {
        Options::parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn default_quick_and_chosen_sizes() {
        let full = parse(&["mesh-scale"]).unwrap().unwrap();
        assert_eq!(full.nodes, vec![8, 32, 128]);
        assert_eq!(full.one, None);
        let quick = parse(&["mesh-scale", "--quick"]).unwrap().unwrap();
        assert_eq!(quick.nodes, vec![8]);
        assert!(quick.settle() < full.settle());
        let chosen = parse(&["mesh-scale", "--nodes", "4, 16"]).unwrap().unwrap();
        assert_eq!(chosen.nodes, vec![4, 16]);
        let one = parse(&["mesh-scale", "--one", "32"]).unwrap().unwrap();
        assert_eq!(one.one, Some(32));
    }

    #[test]
    fn bad_arguments_are_refused() {
        assert!(parse(&["--help"]).is_err());
        assert!(parse(&["mesh-scale", "--help"]).unwrap().is_none());
        assert!(parse(&["mesh-scale", "--nodes"]).is_err());
        assert!(parse(&["mesh-scale", "--nodes", "1"]).is_err());
        assert!(parse(&["mesh-scale", "--nodes", "8,x"]).is_err());
        assert!(parse(&["mesh-scale", "--one", "0"]).is_err());
        assert!(parse(&["mesh-scale", "--bogus"]).is_err());
        assert!(parse(&["compare"]).is_err());
    }
}
