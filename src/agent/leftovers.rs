//! Agents left behind by a worker that died without cleaning up (SIGKILL, OOM kill).
//!
//! The runner records the agent's process group and its leader's start time in a file in the
//! workdir while the agent runs. A worker starting on the same workdir kills whatever is left of that
//! group, so a crashed pod never leaves zombie agents editing a checkout behind it. Only processes
//! of that group started no earlier than the recorded leader are touched: a recycled pid or process
//! group id of an unrelated process is never signalled.

use std::io;
use std::path::Path;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The start time of a process in clock ticks since boot (`/proc/<pid>/stat`, field 22), and its
/// process group (field 5).
fn stat(pid: i32) -> Option<(i32, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: parse after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): field 5 is index 2, field 22 is index 19.
    Some((fields.get(2)?.parse().ok()?, fields.get(19)?.parse().ok()?))
}

/// Records the running agent's group (its leader is `pgid`).
pub fn record(path: &Path, pgid: i32) -> io::Result<()> {
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
}
