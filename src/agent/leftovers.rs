//! Agents left behind by a worker that died without cleaning up (SIGKILL, OOM kill).
//!
//! The agent's group (its leader's pid) and its leader's start time are recorded in a file in the
//! workdir while the agent runs. A worker starting on the same workdir kills whatever is left of that
//! group, so a crashed pod never leaves zombie agents editing a checkout behind it. Only processes
//! of that group started no earlier than the recorded leader are touched: a recycled pid or process
//! group id of an unrelated process is never signalled.
//!
//! The record is written by the agent's own process, between the fork and the exec: it exists
//! before the agent runs a single instruction, so a worker killed at any moment after the fork
//! leaves a recorded group. (Written by the worker after the spawn, it left a window in which the
//! agent ran unrecorded: a worker killed then left an orphan nobody would stop.)

use std::ffi::{CStr, CString, OsString};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

/// The process group (field 5) and start time in clock ticks since boot (field 22) of a
/// `/proc/<pid>/stat` line. Allocates nothing: the forked child parses its own with it.
fn parse_stat(stat: &[u8]) -> Option<(i32, u64)> {
    // The command name (field 2) is in parentheses and may contain spaces: parse after the last ')'.
    let close = stat.iter().rposition(|b| *b == b')')?;
    let mut fields = stat
        .get(close + 1..)?
        .split(u8::is_ascii_whitespace)
        .filter(|f| !f.is_empty());
    fn number<T: std::str::FromStr>(f: &[u8]) -> Option<T> {
        std::str::from_utf8(f).ok()?.parse().ok()
    }
    // After the ')' come field 3 (state), 4, then 5; field 22 is 17 further on.
    let group = number(fields.nth(2)?)?;
    Some((group, number(fields.nth(16)?)?))
}

/// The process group and start time of process `pid`.
fn stat(pid: i32) -> Option<(i32, u64)> {
    parse_stat(&std::fs::read(format!("/proc/{pid}/stat")).ok()?)
}

/// Spawns `command` (which makes its child the leader of a new process group) with its group
/// recorded in `path` before the child execs. If the child could not write the record, the
/// worker writes it after the spawn; a record that cannot be written at all is a warning, not a
/// reason not to run the agent.
pub fn spawn_recorded(mut command: Command, path: &Path) -> io::Result<Child> {
    if let Err(e) = record_before_exec(&mut command, path) {
        tracing::warn!(path = %path.display(), "cannot prepare the agent's group record: {e}");
    }
    let child = command.spawn()?;
    // The spawn returned, so the child has exec'd: its own record, if any, is complete.
    let pid = child.id().map(|p| p as i32);
    if let Some(pid) = pid
        && recorded_group(path) != Some(pid)
        && let Err(e) = record(path, pid)
    {
        tracing::warn!(path = %path.display(), "cannot record the agent's process group: {e}");
    }
    Ok(child)
}

/// Makes the child write its own record between the fork and the exec (`pre_exec`).
fn record_before_exec(command: &mut Command, path: &Path) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut tmp = OsString::from(path.as_os_str());
    tmp.push(".tmp");
    let c = |p: &[u8]| CString::new(p).map_err(io::Error::other);
    let (tmp, path) = (c(tmp.as_bytes())?, c(path.as_os_str().as_bytes())?);
    // SAFETY: the closure runs in the forked child of a multi-threaded process, where only
    // async-signal-safe calls are allowed: it allocates nothing, takes no lock and calls only
    // getpid, open, read, write, close and rename. It never fails the spawn.
    unsafe {
        command.pre_exec(move || {
            write_own_record(&tmp, &path);
            Ok(())
        });
    }
    Ok(())
}

/// In the forked child, the leader of its new group: writes `"<pid> <start>\n"` to `tmp`, then
/// renames it to `path` (a reader never sees half a record). Best effort, allocation-free.
fn write_own_record(tmp: &CStr, path: &CStr) {
    let mut stat = [0u8; 1024];
    let Some((_, started)) = read_own(c"/proc/self/stat", &mut stat).and_then(parse_stat) else {
        return;
    };
    let pid = nix::unistd::getpid().as_raw();
    let mut line = [0u8; 48];
    let mut rest = &mut line[..];
    if writeln!(rest, "{pid} {started}").is_err() {
        return;
    }
    let len = 48 - rest.len();
    // SAFETY: plain system calls on NUL-terminated paths and a buffer this function owns.
    unsafe {
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC;
        let fd = libc::open(tmp.as_ptr(), flags, 0o600 as libc::c_uint);
        if fd < 0 {
            return;
        }
        let written = libc::write(fd, line.as_ptr().cast(), len);
        libc::close(fd);
        if written == len as isize {
            libc::rename(tmp.as_ptr(), path.as_ptr());
        }
    }
}

/// Reads up to `buf.len()` bytes of the file at `path` with one `read` (allocation-free).
fn read_own<'a>(path: &CStr, buf: &'a mut [u8]) -> Option<&'a [u8]> {
    // SAFETY: plain system calls on a NUL-terminated path and a buffer the caller owns.
    let n = unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return None;
        }
        let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
        libc::close(fd);
        n
    };
    buf.get(..usize::try_from(n).ok()?)
}

/// The group a record names, if it holds one.
fn recorded_group(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path)
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Records the running agent's group (its leader is `pgid`), from the worker.
fn record(path: &Path, pgid: i32) -> io::Result<()> {
    let (_, started) =
        stat(pgid).ok_or_else(|| io::Error::other(format!("no /proc entry for pid {pgid}")))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, format!("{pgid} {started}\n"))
}

/// Forgets the record (the agent was stopped and reaped).
pub fn clear(path: &Path) {
    let _ = std::fs::remove_file(path);
}

/// Kills what is left of a recorded group with SIGKILL and forgets the record; returns how many
/// processes were signalled.
pub fn kill_recorded(path: &Path) -> usize {
    let Ok(text) = std::fs::read_to_string(path) else {
        return 0;
    };
    let mut parts = text.split_whitespace();
    let (Some(Ok(pgid)), Some(Ok(started))) = (
        parts.next().map(str::parse::<i32>),
        parts.next().map(str::parse::<u64>),
    ) else {
        clear(path);
        return 0;
    };
    let mut killed = 0;
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            if let Some((group, start)) = stat(pid)
                && group == pgid
                && start >= started
                && kill(Pid::from_raw(pid), Signal::SIGKILL).is_ok()
            {
                killed += 1;
            }
        }
    }
    clear(path);
    killed
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record file holding `text`, in a temporary directory that lives as long as the guard.
    fn record_of(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.pgid");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn a_record_of_a_process_that_is_gone_kills_nothing() {
        let (_dir, path) = record_of("999999999 1\n");
        assert_eq!(kill_recorded(&path), 0);
        assert!(!path.exists(), "the record is forgotten");
    }

    #[test]
    fn a_recycled_group_id_of_an_older_process_is_never_signalled() {
        // Our own process group, recorded with a start time in the future: nothing matches.
        let me = std::process::id() as i32;
        let (group, _) = stat(me).unwrap();
        let (_dir, path) = record_of(&format!("{group} {}\n", u64::MAX));
        assert_eq!(kill_recorded(&path), 0);
    }

    #[test]
    fn garbage_records_are_ignored() {
        let (dir, path) = record_of("not a record");
        assert_eq!(kill_recorded(&path), 0);
        assert_eq!(kill_recorded(&dir.path().join("missing")), 0);
    }

    #[test]
    fn a_stat_line_gives_the_group_and_the_start_time_whatever_the_command_name() {
        let line =
            b"4242 (a) b (c)) S 1 4240 4240 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 987654 1 2\n";
        assert_eq!(parse_stat(line), Some((4240, 987654)));
        assert_eq!(parse_stat(b"4242 (cut) S 1 4240"), None);
    }

    /// The record is the child's own, complete when the spawn returns, before the worker does
    /// anything more: a worker killed right after the spawn leaves its agent recorded.
    #[tokio::test]
    async fn the_child_records_its_group_before_it_execs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.pgid");
        let mut command = Command::new("/bin/sh");
        command.args(["-c", "exit 0"]).process_group(0);
        record_before_exec(&mut command, &path).unwrap();
        let mut child = command.spawn().unwrap();
        assert_eq!(recorded_group(&path), child.id().map(|p| p as i32));
        child.wait().await.unwrap();
    }

    /// The agent's first instruction already finds its group recorded: the record is written
    /// between the fork and the exec, so no moment of the run is unrecorded.
    #[tokio::test]
    async fn the_agent_finds_its_own_group_recorded_when_it_starts() {
        use crate::agent::process::{CaptureLimits, ProcessSpec, run};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/agent.pgid");
        let spec = ProcessSpec {
            program: "/bin/sh".into(),
            // Shell builtins only: the record as the agent found it, then its own stat line.
            args: [
                "-c",
                "read -r r < state/agent.pgid; echo \"$r\"; read -r s < /proc/$$/stat; echo \"$s\"",
            ]
            .map(Into::into)
            .into(),
            workdir: dir.path().to_path_buf(),
            env: vec![],
            timeout: std::time::Duration::from_secs(30),
            kill_grace: std::time::Duration::from_millis(100),
            limits: CaptureLimits::default(),
            group_file: Some(path.clone()),
        };
        let finished = run(&spec, &tokio_util::sync::CancellationToken::new())
            .await
            .unwrap();
        let out = String::from_utf8(finished.stdout.parse_view()).unwrap();
        let (record, own_stat) = out.split_once('\n').unwrap();
        let (_, started) = parse_stat(own_stat.as_bytes()).expect("the agent's stat line");
        assert_eq!(record, format!("{} {started}", finished.pid), "{out}");
        assert!(
            !path.exists(),
            "the record is forgotten once the group is gone"
        );
    }
}
