//! What the scripted agent does to its machine: files in its checkout and home, its sessions and
//! prompt log, hanging, a child that ignores SIGTERM, its environment printed.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use super::CHILD_MODE;

/// 16 MiB of noise on stdout and stderr, interleaved.
pub(super) fn chatter() {
    let line = "scripted agent: chatty log line, chatty log line, chatty log line\n";
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    for _ in 0..(16 << 20) / line.len() {
        let _ = out.write_all(line.as_bytes());
        let _ = err.write_all(line.as_bytes());
    }
}

pub(super) fn write_file(name: &str, text: &str) {
    if let Err(e) = std::fs::write(name, text) {
        eprintln!("scripted agent: cannot write {name}: {e}");
    }
}

pub(super) fn append_file(name: &str, text: &str) {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(name);
    if let Err(e) = file.and_then(|mut f| f.write_all(text.as_bytes())) {
        eprintln!("scripted agent: cannot append to {name}: {e}");
    }
}

/// Writes `AGENT_PID` (so a test can watch this process) and sleeps until killed.
pub(super) fn hang() -> ! {
    write_atomically(Path::new("AGENT_PID"), &std::process::id().to_string());
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Starts this binary again as a child that ignores SIGTERM, and waits until it says so by writing
/// `CHILD_PID`.
pub(super) fn start_child_ignoring_sigterm() -> std::io::Result<()> {
    let exe = std::env::current_exe()?;
    std::process::Command::new(exe)
        .args([CHILD_MODE, "CHILD_PID"])
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !Path::new("CHILD_PID").exists() {
        if Instant::now() > deadline {
            return Err(std::io::Error::other("the child did not start within 10s"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

pub(super) fn child_ignoring_sigterm(pid_file: &str) -> ExitCode {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: installing SIG_IGN runs no handler code; nothing else in this process handles signals.
    if let Err(e) = unsafe { signal(Signal::SIGTERM, SigHandler::SigIgn) } {
        eprintln!("scripted agent child: cannot ignore SIGTERM: {e}");
        return ExitCode::from(2);
    }
    write_atomically(Path::new(pid_file), &std::process::id().to_string());
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

pub(super) fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    if std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .is_err()
    {
        eprintln!("scripted agent: cannot write {}", path.display());
    }
}

/// This process's environment as `NAME=value` lines, sorted.
pub(super) fn environment() -> String {
    let mut vars: Vec<String> = std::env::vars_os()
        .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
        .collect();
    vars.sort();
    vars.join("\n")
}

/// Where a session is kept, as Claude Code keeps its own: under `$HOME/.claude/projects/`.
pub(super) fn session_file(id: &str) -> Option<std::path::PathBuf> {
    let valid = !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let home = std::env::var_os("HOME")?;
    valid.then(|| {
        std::path::PathBuf::from(home)
            .join(".claude/projects/scripted")
            .join(format!("{id}.jsonl"))
    })
}

/// Appends the prompt to `$HOME/journeyman-prompts.log` (tests read what the worker said).
pub(super) fn record_prompt(resume: Option<&str>, prompt: &str) {
    let Some(home) = std::env::var_os("HOME") else {
        return;
    };
    let path = std::path::PathBuf::from(home).join("journeyman-prompts.log");
    let entry = format!(
        "=== prompt (resume: {}) ===\n{prompt}\n=== end ===\n",
        resume.unwrap_or("none")
    );
    let _ = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(entry.as_bytes()));
}

/// `$HOME`, or the temporary directory.
pub(super) fn home() -> std::path::PathBuf {
    std::env::var_os("HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
}
