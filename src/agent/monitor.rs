//! The agent's process, watched while it runs: every stdout line goes into [`Live`], and a
//! ticker checks the run's budgets (cost, turns, stall) and publishes what the run has done so far.
//! A run that crosses a budget is stopped on the spot, its whole process group, as a timeout is.
//!
//! Why this file exists: budgets that are checked when the run ends fail open. The reading of the
//! stream is pure (`live`); this is the clock and the process around it.
//!
//! What it must never do: block the pipe reader (the sink only updates the state under a short
//! lock), or let a stall pass unnoticed while the agent edits files without calling tools (a change
//! in the checkout counts as a sign of work, found by a fingerprint taken only once the stream has
//! been quiet for the whole stall budget).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::live::{Breach, Budgets, Live, Prices, breach};
use super::process::{self, Finished, ProcessSpec};

/// Where the run's progress is published (the executor turns it into the ticket's progress
/// comment and the pod's live spend).
pub type LiveSender = Arc<tokio::sync::watch::Sender<Live>>;

/// How often budgets are checked and progress is published.
pub const TICK: Duration = Duration::from_millis(250);
/// Most directory entries a checkout fingerprint looks at.
const MAX_ENTRIES: usize = 200_000;

/// What the run is held to and where its progress goes.
#[derive(Clone)]
pub struct Watch {
    pub prices: Prices,
    pub budgets: Budgets,
    pub progress: Option<LiveSender>,
}

/// A finished, watched run: the process's end, the budget it crossed (if that ended it) and
/// what the stream showed.
pub struct Watched {
    pub finished: Finished,
    pub breach: Option<Breach>,
    pub live: Live,
}

/// The last sign of work: a tool call in the stream, or a change in the checkout. Pure, with the
/// clock (time since the run began) and the fingerprint passed in.
#[derive(Debug, Clone, Copy)]
pub struct Signs {
    last: Duration,
    fingerprint: u64,
}

impl Signs {
    pub fn new(fingerprint: u64) -> Signs {
        Signs {
            last: Duration::ZERO,
            fingerprint,
        }
    }

    /// How long the run has been quiet at `now`, given its last tool call. Once that reaches
    /// `stall`, the checkout is looked at (`fingerprint`): a change is a sign of work.
    pub fn quiet(
        &mut self,
        now: Duration,
        last_tool_at: Duration,
        stall: Duration,
        fingerprint: impl FnOnce() -> u64,
    ) -> Duration {
        self.last = self.last.max(last_tool_at);
        if now.saturating_sub(self.last) >= stall {
            let f = fingerprint();
            if f != self.fingerprint {
                self.fingerprint = f;
                self.last = now;
            }
        }
        now.saturating_sub(self.last)
    }
}

/// Runs `spec` under `watch` until it ends, `cancel` fires or a budget is crossed.
pub async fn run(
    spec: &ProcessSpec,
    cancel: &CancellationToken,
    watch: &Watch,
) -> std::io::Result<Watched> {
    let live = Arc::new(Mutex::new(Live::default()));
    let started = Instant::now();
    let sink = {
        let live = live.clone();
        Box::new(move |line: &[u8]| {
            if let Ok(mut l) = live.lock() {
                l.observe(line, started.elapsed());
            }
        })
    };
    let stop = cancel.child_token();
    let done = CancellationToken::new();
    let run = async {
        let finished = process::run_with(spec, &stop, Some(sink)).await;
        done.cancel();
        finished
    };
    let ticker = async {
        let workdir = spec.workdir.clone();
        let mut signs = Signs::new(fingerprint_blocking(&workdir).await);
        let mut interval = tokio::time::interval(TICK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = done.cancelled() => return None,
                _ = interval.tick() => {}
            }
            let now = started.elapsed();
            let seen = live.lock().map(|l| l.clone()).unwrap_or_default();
            let stalled =
                now.saturating_sub(seen.last_tool_at.max(signs.last)) >= watch.budgets.stall;
            let fp = if stalled {
                Some(fingerprint_blocking(&workdir).await)
            } else {
                None
            };
            let current = signs.fingerprint;
            let quiet = signs.quiet(now, seen.last_tool_at, watch.budgets.stall, || {
                fp.unwrap_or(current)
            });
            let crossed = breach(&seen, &watch.prices, &watch.budgets, quiet);
            if let Some(tx) = &watch.progress {
                tx.send_replace(seen);
            }
            if let Some(b) = crossed {
                tracing::warn!(
                    budget = b.label(),
                    "{b}; stopping the agent's process group"
                );
                metrics::counter!("journeyman_budget_stops_total", "budget" => b.label())
                    .increment(1);
                stop.cancel();
                return Some(b);
            }
        }
    };
    let (finished, breach) = tokio::join!(run, ticker);
    let finished = finished?;
    let live = live.lock().map(|l| l.clone()).unwrap_or_default();
    if let Some(tx) = &watch.progress {
        tx.send_replace(live.clone());
    }
    Ok(Watched {
        finished,
        breach,
        live,
    })
}

async fn fingerprint_blocking(dir: &Path) -> u64 {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || fingerprint(&dir))
        .await
        .unwrap_or(0)
}

/// A hash of every file's path, size and modification time under `dir` (`.git` left out),
/// over at most [`MAX_ENTRIES`] entries.
pub fn fingerprint(dir: &Path) -> u64 {
    let mut h = DefaultHasher::new();
    let mut stack = vec![dir.to_path_buf()];
    let mut seen = 0usize;
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for e in entries {
            seen += 1;
            if seen > MAX_ENTRIES {
                return h.finish();
            }
            if e.file_name() == ".git" {
                continue;
            }
            let Ok(meta) = e.metadata() else { continue };
            e.path().hash(&mut h);
            if meta.is_dir() {
                stack.push(e.path());
            } else {
                meta.len().hash(&mut h);
                meta.modified().ok().hash(&mut h);
            }
        }
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STALL: Duration = Duration::from_secs(600);

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn tool_calls_keep_the_run_alive_and_the_checkout_is_looked_at_only_once_quiet() {
        let mut signs = Signs::new(1);
        let looked = std::cell::Cell::new(0);
        let look = || {
            looked.set(looked.get() + 1);
            1
        };
        assert_eq!(signs.quiet(s(300), s(0), STALL, look), s(300));
        assert_eq!(signs.quiet(s(700), s(650), STALL, look), s(50));
        assert_eq!(
            looked.get(),
            0,
            "not quiet for the stall budget yet: no walk of the checkout"
        );
        assert_eq!(signs.quiet(s(1250), s(650), STALL, look), s(600));
        assert_eq!(looked.get(), 1);
    }

    #[test]
    fn a_change_in_the_checkout_is_a_sign_of_work() {
        let mut signs = Signs::new(1);
        assert_eq!(
            signs.quiet(s(600), s(0), STALL, || 2),
            s(0),
            "edited without a tool call in the stream"
        );
        assert_eq!(signs.quiet(s(1100), s(0), STALL, || 2), s(500));
        assert_eq!(
            signs.quiet(s(1200), s(0), STALL, || 2),
            s(600),
            "quiet again: a stall"
        );
    }

    #[test]
    fn the_fingerprint_sees_a_file_change_but_not_git() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), "one").unwrap();
        std::fs::create_dir(dir.path().join(".git")).unwrap();
        let before = fingerprint(dir.path());
        std::fs::write(dir.path().join(".git/index"), "x").unwrap();
        assert_eq!(fingerprint(dir.path()), before);
        std::fs::write(dir.path().join("a.txt"), "one, two").unwrap();
        assert_ne!(fingerprint(dir.path()), before);
    }
}
