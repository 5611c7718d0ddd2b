//! `journeyman demo` as a user runs it: the real binary as a child process, judged by what it
//! prints. The timeline must tell the cycle's story in the right order (the Bug first, the pinned
//! ticket on its pod, a Spike for the failing task, nothing under the Phase before it opens,
//! nothing blocked before its blocker is closed), and the demo must leave no temporary files.
//! Each run gets its own TMPDIR, which must be empty afterwards.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const JOURNEYMAN: &str = env!("CARGO_BIN_EXE_journeyman");
const SEED: &str = include_str!("../../examples/demo-seed.json");
/// Far above the demo's own deadline (60s), so a hang is reported by the demo itself first.
const TIMEOUT: Duration = Duration::from_secs(120);

/// The subject of the seed entry with `key`.
fn subject(key: &str) -> String {
    let seed: Value = serde_json::from_str(SEED).expect("the seed is JSON");
    seed["work_packages"]
        .as_array()
        .expect("work_packages")
        .iter()
        .find(|wp| wp["key"] == key)
        .and_then(|wp| wp["subject"].as_str())
        .unwrap_or_else(|| panic!("no seed entry `{key}`"))
        .to_string()
}

/// `journeyman demo ARGS` with a private TMPDIR and the scripted agent (no real model).
fn demo(tmp: &Path, exe: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(exe);
    cmd.arg("demo")
        .args(args)
        .env("TMPDIR", tmp)
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("RUST_LOG")
        .kill_on_drop(true);
    cmd
}

async fn run(mut cmd: Command) -> Output {
    tokio::time::timeout(TIMEOUT, cmd.output())
        .await
        .expect("journeyman demo finishes in time")
        .expect("journeyman demo starts")
}

fn assert_empty(dir: &Path) {
    let left: Vec<_> = std::fs::read_dir(dir)
        .expect("TMPDIR readable")
        .map(|e| e.map(|e| e.path()))
        .collect();
    assert!(left.is_empty(), "the demo left files behind: {left:?}");
}

/// The lines of one section of the output: after the line `start`, up to the next empty line.
fn section<'a>(out: &'a str, start: &str) -> Vec<&'a str> {
    out.lines()
        .skip_while(|l| !l.starts_with(start))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .collect()
}

/// A claim in the timeline: its line number, the pod and the work package id.
#[derive(Debug)]
struct Claim {
    at: usize,
    pod: String,
    id: u64,
}

fn claim_of(timeline: &[&str], subject: &str) -> Claim {
    let quoted = format!("\"{subject}\"");
    let (at, line) = timeline
        .iter()
        .enumerate()
        .find(|(_, l)| l.contains(" claimed ") && l.contains(&quoted))
        .unwrap_or_else(|| {
            panic!(
                "no claim of {quoted} in the timeline:\n{}",
                timeline.join("\n")
            )
        });
    let words: Vec<&str> = line.split_whitespace().collect();
    let id = line
        .split(" #")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no id in `{line}`"));
    Claim {
        at,
        pod: words[1].to_string(),
        id,
    }
}

fn line_of(timeline: &[&str], needle: &str) -> usize {
    timeline
        .iter()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no `{needle}` in the timeline:\n{}", timeline.join("\n")))
}

#[tokio::test]
async fn the_demo_tells_the_whole_cycle_in_order_and_leaves_no_temp_files() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(demo(tmp.path(), JOURNEYMAN, &[])).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("scripted stand-in"),
        "says which agent: {stdout}"
    );
    let timeline = section(&stdout, "Timeline");
    let all = timeline.join("\n");

    // Bugs jump the queue: the Bug is filed last, yet it is the first thing claimed.
    let first_claim = timeline
        .iter()
        .find(|l| l.contains(" claimed "))
        .expect("claims");
    assert!(
        first_claim.contains("claimed Bug #") && first_claim.contains(&subject("bug")),
        "first claim: {first_claim}\n{all}"
    );

    let pinned = claim_of(&timeline, &subject("pinned"));
    assert_eq!(
        pinned.pod, "demo-pod-2",
        "the pinned ticket goes to its pod\n{all}"
    );

    let fails = claim_of(&timeline, &subject("fails"));
    let spike = line_of(&timeline, "filed Spike #");
    assert!(
        timeline[spike].contains(&format!(" for #{}:", fails.id)),
        "the Spike is filed for the failing task: {}\n{all}",
        timeline[spike]
    );
    line_of(
        &timeline,
        &format!("put Task #{} back in the pool", fails.id),
    );

    // The conversation: the product owner answers on the ticket, the fleet closes its Spike, and
    // the retry resumes the session with the answer; the reviewer sends the README task back once
    // and the same pod reworks it.
    let answered = line_of(&timeline, "@journeyman There are no PyPI credentials");
    let spike_closed = line_of(&timeline, "closed this Spike: owner answered it on #");
    assert!(answered < spike_closed, "{all}");
    let retried = timeline
        .iter()
        .rposition(|l| l.contains(&format!("claimed Task #{} ", fails.id)))
        .unwrap();
    assert!(
        retried > spike_closed,
        "the ticket re-entered the pool after the answer\n{all}"
    );
    let readme = claim_of(&timeline, &subject("readme"));
    let sent_back = line_of(&timeline, "Please show --shout in the README");
    let rework = line_of(&timeline, "picks up rework requested by reviewer");
    assert!(sent_back < rework, "{all}");
    assert!(
        timeline[rework].contains(&readme.pod),
        "the rework goes back to the pod that did the work: {}\n{all}",
        timeline[rework]
    );

    let opened = line_of(&timeline, "opened Phase #");
    for key in ["version", "changelog"] {
        let c = claim_of(&timeline, &subject(key));
        assert!(
            c.at > opened,
            "{key} (#{}) claimed before its Phase opened\n{all}",
            c.id
        );
    }

    let blocker = claim_of(&timeline, &subject("options"));
    let blocker_closed = line_of(
        &timeline,
        &format!("closed Task #{} \"{}\"", blocker.id, subject("options")),
    );
    let blocked = claim_of(&timeline, &subject("shout"));
    assert!(
        blocked.at > blocker_closed,
        "the blocked task was claimed before its blocker was closed\n{all}"
    );

    let board = section(&stdout, "Board");
    let row = |id: u64| {
        board
            .iter()
            .find(|r| r.trim_start().starts_with(&format!("#{id} ")))
            .unwrap_or_else(|| panic!("no row #{id} in\n{}", board.join("\n")))
            .to_string()
    };
    assert!(row(pinned.id).contains("Closed") && row(pinned.id).ends_with("demo-pod-2"));
    assert!(
        row(fails.id).contains("Closed"),
        "answered, retried, reviewed: {}",
        row(fails.id)
    );
    let remote = section(&stdout, "Remote");
    assert!(
        remote
            .iter()
            .any(|l| l.contains(&format!("#{})", pinned.id))),
        "the pinned ticket's commit is on the remote:\n{}",
        remote.join("\n")
    );
    assert!(stdout.contains("\ndone in "), "{stdout}");
    assert_empty(tmp.path());
}

#[tokio::test]
async fn with_keep_the_board_answers_until_interrupted_then_everything_is_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = demo(tmp.path(), JOURNEYMAN, &["--keep", "--pods", "2"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("journeyman demo starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut url = None;
    let mut token = None;
    let read = tokio::time::timeout(TIMEOUT, async {
        while let Some(line) = lines.next_line().await.expect("stdout") {
            if let Some(u) = line.strip_prefix("The board keeps running (--keep) at ") {
                url = Some(u.trim().to_string());
            }
            if let Some(t) = line.trim().strip_prefix("token: ") {
                token = Some(t.to_string());
            }
            if line.starts_with("Press Ctrl-C") {
                break;
            }
        }
    })
    .await;
    read.expect("the demo prints the board's address in time");
    let (url, token) = (url.expect("URL printed"), token.expect("token printed"));

    let resp = reqwest::Client::new()
        .get(format!("{url}api/v3/work_packages"))
        .query(&[("filters", "[]")])
        .basic_auth("apikey", Some(&token))
        .send()
        .await
        .expect("the kept board answers");
    assert_eq!(resp.status(), 200);
    let body = resp.text().await.unwrap();
    assert!(body.contains(&subject("pinned")), "{body}");

    let pid = nix::unistd::Pid::from_raw(child.id().expect("running") as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let status = tokio::time::timeout(TIMEOUT, child.wait())
        .await
        .expect("exits after Ctrl-C")
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert_empty(tmp.path());
}

#[tokio::test]
async fn a_lone_journeyman_binary_runs_the_demo_with_its_built_in_stand_in() {
    let tmp = tempfile::tempdir().unwrap();
    let lonely = tempfile::tempdir().unwrap();
    let exe = lonely.path().join("journeyman");
    std::fs::copy(JOURNEYMAN, &exe).unwrap();
    let out = run(demo(tmp.path(), exe.to_str().unwrap(), &[])).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("pushed"), "{stdout}");
    assert_empty(tmp.path());
}

#[tokio::test]
async fn zero_pods_is_refused_with_the_flag_named() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(demo(tmp.path(), JOURNEYMAN, &["--pods", "0"])).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--pods"));
}
