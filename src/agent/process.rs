//! Running one agent process: spawn it in its own process group with a clean environment, capture
//! its output within fixed memory, and stop the whole group on timeout or cancellation.
//!
//! Why this file exists: the agent starts shells, compilers, test runners and whatever else a model
//! decides to run. A timeout that kills only the direct child leaves the rest running (and holding
//! the pipes), and an unbounded read of a chatty child exhausts the pod's memory. Everything that
//! must go right about a child process lives here, once.
//!
//! What it must never do: inherit the worker's environment (it is cleared; the caller passes the
//! allowlisted variables), block on a full pipe, keep more than the capture limits in memory, or
//! return while anything of the process group is still running. Orphans of the group that were
//! re-parented to this process (as PID 1 in a container, or as a subreaper) are reaped as well.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::live::Lines;
use super::report::Exit;

/// How often the group is probed while waiting for it to empty.
const POLL: Duration = Duration::from_millis(25);
/// How long the output readers may take after the group is gone (a process that left the group,
/// e.g. with `setsid`, may still hold a pipe).
const READER_GRACE: Duration = Duration::from_secs(1);

/// How much output is kept. The head of stdout holds the result object in the normal case; the
/// tails keep the end of the stream (the result object, the last error lines) when a child is chatty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureLimits {
    pub stdout_head: usize,
    pub stdout_tail: usize,
    pub stderr_tail: usize,
}

impl Default for CaptureLimits {
    fn default() -> Self {
        CaptureLimits {
            stdout_head: 4 << 20,
            stdout_tail: 1 << 20,
            stderr_tail: 64 << 10,
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    pub program: OsString,
    pub args: Vec<OsString>,
    pub workdir: PathBuf,
    /// The complete environment of the child (it inherits nothing).
    pub env: Vec<(OsString, OsString)>,
    pub timeout: Duration,
    /// Between SIGTERM and SIGKILL to the process group.
    pub kill_grace: Duration,
    pub limits: CaptureLimits,
    /// Where to record the running agent's process group, so a worker restarted after a crash can
    /// kill what this run left behind (see `agent::leftovers`).
    pub group_file: Option<PathBuf>,
}

/// How the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Exited(Exit),
    TimedOut,
    Cancelled,
}

/// A finished run: how it ended and what it printed (within the limits).
#[derive(Debug)]
pub struct Finished {
    pub ending: Ending,
    /// The child's pid, which is also its process group id (gone by the time this is returned).
    pub pid: u32,
    pub stdout: Captured,
    pub stderr: Captured,
}

/// Output kept within fixed memory: the first `head_cap` bytes, and a ring of the last `tail_cap`.
#[derive(Debug, Clone, Default)]
pub struct Captured {
    head: Vec<u8>,
    tail: Vec<u8>,
    head_cap: usize,
    tail_cap: usize,
    total: u64,
}

impl Captured {
    pub fn new(head_cap: usize, tail_cap: usize) -> Self {
        Captured {
            head_cap,
            tail_cap,
            ..Captured::default()
        }
    }

    pub fn push(&mut self, mut chunk: &[u8]) {
        self.total += chunk.len() as u64;
        let room = self.head_cap - self.head.len();
        if room > 0 {
            let n = room.min(chunk.len());
            self.head.extend_from_slice(&chunk[..n]);
            chunk = &chunk[n..];
        }
        if chunk.is_empty() {
            return;
        }
        if chunk.len() >= self.tail_cap {
            self.tail.clear();
            self.tail
                .extend_from_slice(&chunk[chunk.len() - self.tail_cap..]);
            return;
        }
        self.tail.extend_from_slice(chunk);
        // Trim lazily (at twice the cap) so that a stream of small chunks costs amortised O(1).
        if self.tail.len() > 2 * self.tail_cap {
            self.trim();
        }
    }

    fn trim(&mut self) {
        if self.tail.len() > self.tail_cap {
            let excess = self.tail.len() - self.tail_cap;
            self.tail.drain(..excess);
        }
    }

    /// Bytes the stream had in all.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// True if some of the stream was dropped (between the head and the tail).
    pub fn is_truncated(&self) -> bool {
        self.total > (self.head.len() + self.tail.len()) as u64
    }

    /// The whole stream if nothing was dropped; otherwise the tail only (where a final result is).
    pub fn parse_view(&self) -> Vec<u8> {
        if self.is_truncated() {
            self.tail.clone()
        } else {
            [self.head.as_slice(), self.tail.as_slice()].concat()
        }
    }

    /// The last `max` bytes kept, as text (lossy), marked when something before them is missing.
    pub fn tail_text(&self, max: usize) -> String {
        let kept = [self.head.as_slice(), self.tail.as_slice()].concat();
        let from = kept.len().saturating_sub(max);
        let text = String::from_utf8_lossy(&kept[from..]).into_owned();
        if from > 0 || self.is_truncated() {
            format!(
                "[... {} bytes not shown]\n{text}",
                self.total - (kept.len() - from) as u64
            )
        } else {
            text
        }
    }
}

/// Called with each line of the child's stdout as it arrives (without the newline; a line over
/// [`LINE_CAP`] is cut), from the task that reads the pipe: it must not block.
pub type LineSink = Box<dyn FnMut(&[u8]) + Send>;

/// The longest stdout line passed whole to a [`LineSink`].
pub const LINE_CAP: usize = 4 << 20;

/// Runs `spec` to the end, the timeout or `cancel`, whichever comes first, and returns only when
/// the process group is gone. An error means the process could not be started.
pub async fn run(spec: &ProcessSpec, cancel: &CancellationToken) -> std::io::Result<Finished> {
    run_with(spec, cancel, None).await
}

/// [`run`], with every stdout line also passed to `lines` as it arrives.
pub async fn run_with(
    spec: &ProcessSpec,
    cancel: &CancellationToken,
    lines: Option<LineSink>,
) -> std::io::Result<Finished> {
    tracing::debug!(
        program = %spec.program.to_string_lossy(),
        workdir = %spec.workdir.display(),
        env = ?spec.env.iter().map(|(k, _)| k.to_string_lossy()).collect::<Vec<_>>(),
        "spawning agent process"
    );
    let mut child = match &spec.group_file {
        Some(path) => super::leftovers::spawn_recorded(command(spec), path)?,
        None => command(spec).spawn()?,
    };
    // `id()` is `None` only after the child was reaped, and it was not waited on yet.
    let pid = child.id().expect("a freshly spawned child has a pid");
    let pgid = Pid::from_raw(pid as i32);
    let mut guard = GroupGuard(Some(pgid));
    let output = Output::start(&mut child, spec.limits, lines);

    let event = tokio::select! {
        status = child.wait() => Event::Exited(status),
        () = tokio::time::sleep(spec.timeout) => Event::TimedOut,
        () = cancel.cancelled() => Event::Cancelled,
    };
    let ending = match event {
        Event::Exited(status) => {
            let status = status?;
            // The agent is done; anything it left running in its group goes too.
            stop_group(&mut child, pgid, spec.kill_grace, Some(status)).await;
            Ending::Exited(exit_of(status))
        }
        Event::TimedOut => {
            tracing::warn!(pid, timeout = ?spec.timeout, "agent timed out; stopping its process group");
            stop_group(&mut child, pgid, spec.kill_grace, None).await;
            Ending::TimedOut
        }
        Event::Cancelled => {
            tracing::info!(pid, "agent run cancelled; stopping its process group");
            stop_group(&mut child, pgid, spec.kill_grace, None).await;
            Ending::Cancelled
        }
    };
    guard.0 = None;
    if let Some(path) = &spec.group_file {
        super::leftovers::clear(path);
    }
    let (stdout, stderr) = output.finish().await;
    Ok(Finished {
        ending,
        pid,
        stdout,
        stderr,
    })
}

/// What ended the wait for the child.
enum Event {
    Exited(std::io::Result<ExitStatus>),
    TimedOut,
    Cancelled,
}

/// The command for `spec`: its own process group, a cleared environment, no stdin, piped output.
fn command(spec: &ProcessSpec) -> Command {
    let mut command = Command::new(&spec.program);
    command
        .args(&spec.args)
        .current_dir(&spec.workdir)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    command
}

/// The readers of the child's stdout and stderr, running while the child does.
struct Output {
    stdout: Option<tokio::task::JoinHandle<Captured>>,
    stderr: Option<tokio::task::JoinHandle<Captured>>,
    stop: CancellationToken,
}

impl Output {
    /// Starts reading the child's pipes into captures of `limits`.
    fn start(child: &mut Child, limits: CaptureLimits, lines: Option<LineSink>) -> Output {
        let stop = CancellationToken::new();
        let stdout = child.stdout.take().map(|r| {
            let cap = Captured::new(limits.stdout_head, limits.stdout_tail);
            tokio::spawn(capture(r, cap, lines, stop.clone()))
        });
        let stderr = child.stderr.take().map(|r| {
            let cap = Captured::new(0, limits.stderr_tail);
            tokio::spawn(capture(r, cap, None, stop.clone()))
        });
        Output {
            stdout,
            stderr,
            stop,
        }
    }

    /// What was captured, once the readers reach the end of their pipes or [`READER_GRACE`] has
    /// passed (the group is gone by then; only an escaped process can still hold a pipe).
    async fn finish(self) -> (Captured, Captured) {
        let stopper = self.stop.clone();
        let stop_readers = tokio::spawn(async move {
            tokio::time::sleep(READER_GRACE).await;
            stopper.cancel();
        });
        let stdout = join(self.stdout).await;
        let stderr = join(self.stderr).await;
        stop_readers.abort();
        (stdout, stderr)
    }
}

/// SIGTERM to the group, up to `grace` for the leader and the rest of the group to exit, then
/// SIGKILL to whatever is left; reaps the leader (if `status` is not known yet) and re-parented
/// orphans of the group.
async fn stop_group(child: &mut Child, pgid: Pid, grace: Duration, mut status: Option<ExitStatus>) {
    let deadline = Instant::now() + grace;
    if signal_group(pgid, Signal::SIGTERM) {
        loop {
            if status.is_some() && group_is_empty(pgid) {
                break;
            }
            if Instant::now() >= deadline {
                tracing::warn!(
                    pgid = pgid.as_raw(),
                    ?grace,
                    "process group outlived SIGTERM; sending SIGKILL"
                );
                signal_group(pgid, Signal::SIGKILL);
                break;
            }
            if status.is_none() {
                if let Ok(Ok(s)) = tokio::time::timeout(POLL, child.wait()).await {
                    status = Some(s);
                }
            } else {
                tokio::time::sleep(POLL).await;
            }
        }
    }
    if status.is_none() {
        // After SIGKILL the leader is dying; reap it so that no zombie is left.
        if let Err(e) = child.wait().await {
            tracing::error!(pgid = pgid.as_raw(), "cannot reap the agent process: {e}");
        }
    }
    reap_orphans(pgid).await;
}

/// Sends `signal` to the group; false if the group has no process left.
fn signal_group(pgid: Pid, signal: Signal) -> bool {
    match killpg(pgid, signal) {
        Ok(()) => true,
        Err(Errno::ESRCH) => false,
        Err(e) => {
            tracing::error!(pgid = pgid.as_raw(), %signal, "cannot signal the agent's process group: {e}");
            false
        }
    }
}

fn group_is_empty(pgid: Pid) -> bool {
    matches!(killpg(pgid, None), Err(Errno::ESRCH))
}

/// Members of the group that were re-parented to this process (it is PID 1 in a container, or a
/// subreaper) would stay zombies: reap them. Only this group is waited on, so the statuses of other
/// children (tokio's) are never taken. Bounded: after SIGKILL they exit promptly.
async fn reap_orphans(pgid: Pid) {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match waitpid(Pid::from_raw(-pgid.as_raw()), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {
                if Instant::now() >= deadline {
                    tracing::warn!(
                        pgid = pgid.as_raw(),
                        "orphans of the agent's group not reaped yet"
                    );
                    return;
                }
                tokio::time::sleep(POLL).await;
            }
            Ok(reaped) => tracing::debug!(
                pgid = pgid.as_raw(),
                ?reaped,
                "reaped an orphan of the agent"
            ),
            // ECHILD: no child of ours is left in the group (the usual case).
            Err(_) => return,
        }
    }
}

/// If the run is dropped half-way (its task aborted), the group is killed rather than left running.
struct GroupGuard(Option<Pid>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

fn exit_of(status: ExitStatus) -> Exit {
    Exit {
        code: status.code(),
        signal: status.signal(),
    }
}

async fn capture(
    mut reader: impl AsyncRead + Unpin,
    mut kept: Captured,
    mut sink: Option<LineSink>,
    stop: CancellationToken,
) -> Captured {
    let mut buf = vec![0u8; 64 << 10];
    let mut lines = Lines::new(LINE_CAP);
    loop {
        let n = tokio::select! {
            n = reader.read(&mut buf) => n,
            () = stop.cancelled() => break,
        };
        match n {
            Ok(0) => break,
            Ok(n) => {
                kept.push(&buf[..n]);
                if let Some(sink) = sink.as_mut() {
                    lines.feed(&buf[..n], sink);
                }
            }
            Err(e) => {
                tracing::warn!("reading agent output: {e}");
                break;
            }
        }
    }
    if let Some(sink) = sink.as_mut() {
        lines.finish(sink);
    }
    kept.trim();
    kept
}

async fn join(reader: Option<tokio::task::JoinHandle<Captured>>) -> Captured {
    match reader {
        Some(handle) => handle.await.unwrap_or_default(),
        None => Captured::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_keeps_head_and_tail_within_limits() {
        let mut c = Captured::new(4, 6);
        for chunk in [&b"abc"[..], b"defgh", b"ijklmnopqrstuvwxyz"] {
            c.push(chunk);
        }
        c.trim();
        assert_eq!(c.total(), 26);
        assert!(c.is_truncated());
        assert_eq!(c.head, b"abcd");
        assert_eq!(c.tail, b"uvwxyz");
        assert_eq!(c.parse_view(), b"uvwxyz");
        assert_eq!(c.tail_text(3), "[... 23 bytes not shown]\nxyz");
    }

    #[test]
    fn capture_of_a_small_stream_is_the_whole_stream() {
        let mut c = Captured::new(4, 100);
        c.push(b"hello ");
        c.push(b"world");
        c.trim();
        assert!(!c.is_truncated());
        assert_eq!(c.parse_view(), b"hello world");
        assert_eq!(c.tail_text(100), "hello world");
    }

    #[test]
    fn capture_memory_stays_bounded_under_many_small_writes() {
        let mut c = Captured::new(0, 1000);
        for _ in 0..100_000 {
            c.push(b"0123456789");
            assert!(c.tail.len() <= 2 * 1000 + 10);
        }
        c.trim();
        assert_eq!(c.tail.len(), 1000);
        assert_eq!(c.total(), 1_000_000);
    }
}
