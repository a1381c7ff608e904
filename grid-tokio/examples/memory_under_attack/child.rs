//! The node under attack as the attacking process sees it: a child process
//! started from this same executable, its accounting read from its stdout and
//! its resident memory from `/proc/<pid>/status`.

use std::error::Error;
use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::victim;

/// Bytes the node accounts to the attacker's connection, one category each.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Accounted {
    /// Everything queued for the attacker and not yet handed to the socket.
    pub(crate) outbound: usize,
    /// Of that, control frames (pongs, refusals, credits).
    pub(crate) control: usize,
    /// Payloads of the attacker's calls that handlers still hold.
    pub(crate) held: usize,
    /// Received and not yet consumed: partial messages, unread stream data.
    pub(crate) buffered: usize,
    /// The attacker's calls in flight.
    pub(crate) calls: usize,
    /// The attacker's calls refused with `Overloaded` so far.
    pub(crate) refused: u64,
}

impl Accounted {
    fn max(self, other: Accounted) -> Accounted {
        Accounted {
            outbound: self.outbound.max(other.outbound),
            control: self.control.max(other.control),
            held: self.held.max(other.held),
            buffered: self.buffered.max(other.buffered),
            calls: self.calls.max(other.calls),
            refused: self.refused.max(other.refused),
        }
    }
}

/// What the node reported so far.
#[derive(Clone, Debug, Default)]
pub(crate) struct View {
    /// The attacker's connection is up now.
    pub(crate) connected: bool,
    /// When the node first reported it down after it had been up.
    pub(crate) disconnected_at: Option<Instant>,
    /// The largest figures reported while the connection was up.
    pub(crate) peak: Accounted,
    /// The latest figures.
    pub(crate) latest: Accounted,
    /// The node's log lines.
    pub(crate) log: Vec<String>,
}

/// The node's resident memory, in bytes.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Rss {
    /// Now (`VmRSS`).
    pub(crate) now: u64,
    /// The most since the process started (`VmHWM`).
    pub(crate) peak: u64,
}

/// A running node under attack.
pub(crate) struct Victim {
    process: Child,
    /// Closing it ends the node.
    stdin: Option<ChildStdin>,
    /// The address the node listens on (also its name).
    pub(crate) addr: String,
    /// The peer name the attacker claims.
    pub(crate) attacker: String,
    view: Arc<Mutex<View>>,
}

impl Victim {
    /// Starts a node in a child process and waits until it listens.
    pub(crate) fn start() -> Result<Victim, Box<dyn Error>> {
        let mut process = Command::new(std::env::current_exe()?)
            .arg(victim::ARG)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = process.stdin.take();
        let mut lines = BufReader::new(process.stdout.take().ok_or("no stdout")?).lines();
        let ready = lines.next().ok_or("the node exited before it listened")??;
        let mut words = ready.split_whitespace().skip(1);
        let (Some(addr), Some(attacker)) = (words.next(), words.next()) else {
            return Err(format!("unexpected first line from the node: {ready}").into());
        };
        let view = Arc::new(Mutex::new(View::default()));
        let seen = view.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let mut view = seen.lock().unwrap_or_else(|p| p.into_inner());
                record(&mut view, &line);
            }
        });
        Ok(Victim {
            process,
            stdin,
            addr: addr.to_string(),
            attacker: attacker.to_string(),
            view,
        })
    }

    /// What the node reported so far.
    pub(crate) fn view(&self) -> View {
        self.view.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The node's resident memory now and at its peak.
    pub(crate) fn rss(&self) -> Result<Rss, Box<dyn Error>> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.process.id()))?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kib| kib.parse::<u64>().ok())
                .map(|kib| kib * 1024)
                .ok_or_else(|| format!("no {name} in /proc/{}/status", self.process.id()))
        };
        Ok(Rss {
            now: field("VmRSS:")?,
            peak: field("VmHWM:")?,
        })
    }

    /// Waits until the node reports the attacker's connection down, at most
    /// `timeout`; when it went down, if it did.
    pub(crate) async fn disconnected(&self, timeout: Duration) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(at) = self.view().disconnected_at {
                return Some(at);
            }
            if Instant::now() >= deadline {
                return None;
            }
            // The node's reports are lines on a pipe, not events to await.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until `condition` holds for the node's latest figures, at most
    /// `timeout`; whether it did.
    pub(crate) async fn reports(
        &self,
        timeout: Duration,
        condition: impl Fn(&Accounted) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if condition(&self.view().latest) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    /// Ends the node: closes its stdin, and kills it if it does not exit.
    pub(crate) fn stop(mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.process.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Takes one line of the node's output into `view`.
fn record(view: &mut View, line: &str) {
    let mut words = line.split_whitespace();
    match words.next() {
        Some("stats") => {
            let numbers: Vec<u64> = words.filter_map(|w| w.parse().ok()).collect();
            let [connected, outbound, control, held, buffered, calls, refused] = numbers[..] else {
                return;
            };
            let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
            let latest = Accounted {
                outbound: size(outbound),
                control: size(control),
                held: size(held),
                buffered: size(buffered),
                calls: size(calls),
                refused,
            };
            let connected = connected == 1;
            if connected {
                view.peak = view.peak.max(latest);
            } else if view.connected && view.disconnected_at.is_none() {
                view.disconnected_at = Some(Instant::now());
            }
            view.connected = connected;
            view.latest = latest;
        }
        Some("log") => view.log.push(line.to_string()),
        _ => {}
    }
}
