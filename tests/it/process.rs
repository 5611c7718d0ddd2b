//! The real `journeyman run` binary as a child process: health and metrics endpoints scraped over
//! HTTP, structured JSON logs, and shutdown on a real SIGTERM.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use journeyman::harness::sim::BoardHandle;
use journeyman::harness::sim::seed::SeedWp;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use crate::support::git::BareRemote;
use crate::support::{board, eventually};

const BIN: &str = env!("CARGO_BIN_EXE_journeyman");
const SCRIPTED: &str = env!("CARGO_BIN_EXE_journeyman-scripted-agent");

pub(crate) struct Pod {
    child: Child,
    lines: mpsc::UnboundedReceiver<serde_json::Value>,
    pub(crate) seen: Vec<serde_json::Value>,
    _workdir: Option<tempfile::TempDir>,
}

fn spawn(board: &BoardHandle, remote: &BareRemote, extra: &[(&str, &str)]) -> Pod {
    let workdir = tempfile::tempdir().unwrap();
    let mut pod = spawn_in(board, remote, workdir.path(), extra);
    pod._workdir = Some(workdir);
    pod
}

/// Starts `journeyman run` with its HOME and WORKDIR under `dir` (reused across restarts).
pub(crate) fn spawn_in(
    board: &BoardHandle,
    remote: &BareRemote,
    dir: &std::path::Path,
    extra: &[(&str, &str)],
) -> Pod {
    let mut cmd = Command::new(BIN);
    cmd.arg("run")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("JOURNEYMAN_OPENPROJECT_URL", board.url().as_str())
        .env("JOURNEYMAN_OPENPROJECT_TOKEN", board.token())
        .env("JOURNEYMAN_POD_NAME", "pod-proc")
        .env("JOURNEYMAN_REPOS", format!("demo={}#main", remote.url()))
        .env("JOURNEYMAN_WORKDIR", dir.join("work"))
        .env("JOURNEYMAN_ENV_WRAPPER", "none")
        .env("JOURNEYMAN_AGENT_COMMAND", SCRIPTED)
        .env("JOURNEYMAN_AGENT_KILL_GRACE", "300ms")
        .env("JOURNEYMAN_POLL_INTERVAL", "200ms")
        .env("JOURNEYMAN_LISTEN", "127.0.0.1:0")
        .env("JOURNEYMAN_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("journeyman run starts");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let value = serde_json::from_str(&line)
                .unwrap_or_else(|_| serde_json::json!({ "unparsed": line }));
            if tx.send(value).is_err() {
                break;
            }
        }
    });
    Pod {
        child,
        lines: rx,
        seen: vec![],
        _workdir: None,
    }
}

impl Pod {
    /// Waits for a log line matching `pred` (all lines are JSON objects in pods).
    pub(crate) async fn wait_log(
        &mut self,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        if let Some(v) = self.seen.iter().find(|v| pred(v)) {
            return v.clone();
        }
        let deadline = tokio::time::sleep(Duration::from_secs(30));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                line = self.lines.recv() => match line {
                    Some(v) => {
                        self.seen.push(v.clone());
                        if pred(&v) { return v; }
                    }
                    None => panic!("journeyman exited before logging {what}: {:#?}", self.seen),
                },
                _ = &mut deadline => panic!("timed out waiting for {what}: {:#?}", self.seen),
            }
        }
    }

    /// After the process exited: every line it wrote, up to the end of its stderr (the reader task
    /// may still be forwarding the last lines when the exit is seen).
    pub(crate) async fn drain_log(&mut self, within: Duration) {
        let lines = &mut self.lines;
        let seen = &mut self.seen;
        let drained = tokio::time::timeout(within, async {
            while let Some(v) = lines.recv().await {
                seen.push(v);
            }
        })
        .await;
        assert!(drained.is_ok(), "stderr did not end within {within:?}");
    }

    async fn addr(&mut self) -> String {
        let v = self
            .wait_log("the listen address", |v| v.get("addr").is_some())
            .await;
        v["addr"].as_str().unwrap().to_string()
    }

    pub(crate) fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id().expect("running") as i32)
    }

    pub(crate) async fn exit_code(&mut self, within: Duration) -> i32 {
        match tokio::time::timeout(within, self.child.wait()).await {
            Ok(status) => status.unwrap().code().unwrap_or(-1),
            Err(_) => panic!(
                "journeyman did not exit within {within:?}: {:#?}",
                self.seen
            ),
        }
    }
}

async fn get(url: &str) -> (u16, String) {
    let resp = reqwest::get(url).await.expect("GET");
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// Parses Prometheus text into series -> value (comments skipped).
fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

fn sum(m: &BTreeMap<String, f64>, prefix: &str) -> f64 {
    m.iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(_, v)| v)
        .sum()
}

#[tokio::test]
async fn a_running_worker_serves_probes_and_metrics_and_logs_json() {
    let b = board().await;
    let remote = BareRemote::new();
    let wp = b.create(&SeedWp::new("Task", "measured"));
    let mut pod = spawn(&b, &remote, &[]);
    let addr = pod.addr().await;
    eventually("the task to be done", Duration::from_secs(30), || {
        (b.status_of(wp) == "In testing").then_some(())
    })
    .await;
    let (code, body) = get(&format!("http://{addr}/healthz")).await;
    assert_eq!((code, body.as_str()), (200, "ok\n"));
    let (code, body) = get(&format!("http://{addr}/readyz")).await;
    assert_eq!((code, body.as_str()), (200, "ready\n"));
    let (code, text) = get(&format!("http://{addr}/metrics")).await;
    assert_eq!(code, 200);
    let m = parse_metrics(&text);
    assert!(
        m.get(r#"journeyman_tasks_total{outcome="pushed"}"#)
            .copied()
            .unwrap_or(0.0)
            >= 1.0,
        "{text}"
    );
    assert!(
        m.get(r#"journeyman_claims_total{result="won"}"#)
            .copied()
            .unwrap_or(0.0)
            >= 1.0,
        "{text}"
    );
    assert!(sum(&m, "journeyman_cycles_total") >= 1.0, "{text}");
    assert!(
        sum(&m, r#"journeyman_snapshot_reads_total{kind="full"}"#) >= 1.0,
        "{text}"
    );
    assert!(sum(&m, "journeyman_api_requests_total{") >= 3.0, "{text}");
    assert!(
        m.keys()
            .any(|k| k.starts_with("journeyman_api_requests_total{")
                && k.contains(r#"endpoint="/api/v3/work_packages/{id}""#)
                && k.contains(r#"status="200""#)),
        "{text}"
    );
    assert!(m.contains_key("journeyman_eligible_work"), "{text}");
    assert!(
        m.contains_key(r#"journeyman_budget_remaining_usd{window="hourly"}"#),
        "{text}"
    );
    assert!(m.contains_key("journeyman_busy"), "{text}");
    assert!(
        sum(&m, "journeyman_task_duration_seconds_count") >= 1.0,
        "{text}"
    );
    assert!(
        sum(&m, r#"journeyman_tokens_total{direction="output"}"#) > 0.0,
        "{text}"
    );
    assert!(sum(&m, "journeyman_task_cost_usd_sum") > 0.0, "{text}");
    assert!(
        sum(&m, "journeyman_queue_wait_seconds_count") >= 1.0,
        "{text}"
    );
    // Logs are JSON lines with the pod and work package on the task's span.
    let line = pod
        .wait_log("the task's log line", |v| v["message"] == "task finished")
        .await;
    assert_eq!(line["span"]["name"], "work_package", "{line}");
    assert_eq!(line["span"]["wp"].as_u64(), Some(wp), "{line}");
    assert_eq!(line["span"]["pod"], "pod-proc", "{line}");
    assert_eq!(line["outcome"], "pushed", "{line}");
    assert!(
        pod.seen.iter().all(|v| v.get("unparsed").is_none()),
        "every stderr line is JSON: {:#?}",
        pod.seen
    );
    let all = format!("{:?}", pod.seen);
    assert!(!all.contains(b.token()), "the board token is never logged");
    kill(pod.pid(), Signal::SIGTERM).unwrap();
    assert_eq!(pod.exit_code(Duration::from_secs(10)).await, 0);
}

#[tokio::test]
async fn sigterm_while_idle_exits_zero_promptly() {
    let b = board().await;
    let remote = BareRemote::new();
    let mut pod = spawn(&b, &remote, &[]);
    pod.wait_log("the first cycle", |v| {
        v["fields"]["message"] == "cycle done" || v["message"] == "cycle done"
    })
    .await;
    kill(pod.pid(), Signal::SIGTERM).unwrap();
    assert_eq!(pod.exit_code(Duration::from_secs(5)).await, 0);
}

#[tokio::test]
async fn sigterm_during_a_task_releases_the_claim_after_the_grace_period() {
    let b = board().await;
    let remote = BareRemote::new();
    let wp = b.create(&SeedWp::new("Task", "endless").description("agent:hang"));
    let later = b.create(&SeedWp::new("Task", "never claimed").priority("Low"));
    let mut pod = spawn(
        &b,
        &remote,
        &[
            ("JOURNEYMAN_SHUTDOWN_GRACE", "1s"),
            ("JOURNEYMAN_TASK_TIMEOUT", "5m"),
        ],
    );
    eventually("the claim", Duration::from_secs(30), || {
        (b.status_of(wp) == "In progress").then_some(())
    })
    .await;
    eventually("the agent to start", Duration::from_secs(30), || {
        b.comments(wp)
            .iter()
            .any(|c| c.contains("**started**"))
            .then_some(())
    })
    .await;
    kill(pod.pid(), Signal::SIGTERM).unwrap();
    assert_eq!(
        pod.exit_code(Duration::from_secs(20)).await,
        0,
        "clean exit after the grace period"
    );
    assert_eq!(b.status_of(wp), "New", "claim released");
    assert_eq!(b.pod_of(wp), None);
    assert!(
        b.comments(wp).last().unwrap().contains("**released**"),
        "{:?}",
        b.comments(wp)
    );
    assert_eq!(
        b.status_of(later),
        "New",
        "nothing new was claimed after SIGTERM"
    );
    assert!(
        !b.board().children.contains_key(&wp),
        "an interruption is not a failure: no Spike"
    );
    assert_eq!(
        remote.head(&journeyman::workspace::branch_name(wp, "endless")),
        None,
        "nothing half-written was pushed"
    );
}

#[tokio::test]
async fn a_bad_token_fails_at_start_with_a_clear_error() {
    let b = board().await;
    let remote = BareRemote::new();
    let mut pod = spawn(&b, &remote, &[("JOURNEYMAN_OPENPROJECT_TOKEN", "wrong")]);
    let code = pod.exit_code(Duration::from_secs(20)).await;
    assert_ne!(code, 0);
    pod.drain_log(Duration::from_secs(10)).await;
    let all = format!("{:?}", pod.seen);
    assert!(
        all.contains("Unauthenticated") || all.contains("401"),
        "{all}"
    );
}

pub(crate) fn find_file(dir: &std::path::Path, name: &str) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let p = entry.path();
        if p.is_dir() {
            if let Some(found) = find_file(&p, name) {
                return Some(found);
            }
        } else if p.file_name().is_some_and(|n| n == name) {
            return Some(p);
        }
    }
    None
}

/// Alive means: a /proc entry that is not a zombie.
pub(crate) fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                != Some("Z")
        }
        Err(_) => false,
    }
}

#[tokio::test]
async fn a_pod_killed_mid_run_restarts_kills_its_orphaned_agent_and_finishes_the_task_once() {
    let b = board().await;
    let remote = BareRemote::new();
    let wp = b.create(&SeedWp::new("Task", "survives a crash").description("agent:hang-once"));
    let dir = tempfile::tempdir().unwrap();
    let mut first = spawn_in(&b, &remote, dir.path(), &[]);
    let pid_file = eventually("the agent to start", Duration::from_secs(30), || {
        find_file(&dir.path().join("work"), "AGENT_PID")
    })
    .await;
    let agent: i32 = eventually("the agent's pid", Duration::from_secs(10), || {
        std::fs::read_to_string(&pid_file).ok()?.trim().parse().ok()
    })
    .await;
    kill(first.pid(), Signal::SIGKILL).unwrap();
    first.exit_code(Duration::from_secs(10)).await;
    assert!(
        alive(agent),
        "SIGKILL leaves the agent behind: this is what the restart must clean up"
    );
    assert_eq!(
        b.status_of(wp),
        "In progress",
        "still claimed by the dead pod"
    );

    let mut second = spawn_in(&b, &remote, dir.path(), &[]);
    eventually(
        "the orphaned agent to be killed",
        Duration::from_secs(30),
        || (!alive(agent)).then_some(()),
    )
    .await;
    eventually("the task to be finished", Duration::from_secs(60), || {
        (b.status_of(wp) == "In testing").then_some(())
    })
    .await;
    let branch = journeyman::workspace::branch_name(wp, "survives a crash");
    let trailer = format!("Work-package: #{wp}");
    assert_eq!(
        remote
            .log(&branch)
            .iter()
            .filter(|m| m.contains(&trailer))
            .count(),
        1,
        "exactly one commit for the work package"
    );
    assert!(
        b.comments(wp).iter().any(|c| c.contains("**resuming**")),
        "{:?}",
        b.comments(wp)
    );
    assert!(
        !b.board().children.contains_key(&wp),
        "no Spike for a crash that was recovered"
    );
    kill(second.pid(), Signal::SIGTERM).unwrap();
    assert_eq!(second.exit_code(Duration::from_secs(10)).await, 0);
}

#[tokio::test]
async fn an_exhausted_hourly_budget_stops_claiming_and_says_so_in_readyz() {
    let b = board().await;
    let remote = BareRemote::new();
    // The scripted agent reports $0.01 per run: the second run exhausts a $0.015 hourly cap.
    let ids: Vec<u64> = (0..3)
        .map(|i| b.create(&SeedWp::new("Task", &format!("paid {i}"))))
        .collect();
    let mut pod = spawn(
        &b,
        &remote,
        &[
            ("JOURNEYMAN_HOURLY_BUDGET_USD", "0.015"),
            ("JOURNEYMAN_TASK_BUDGET_USD", "0.015"),
        ],
    );
    let addr = pod.addr().await;
    eventually("two tasks done", Duration::from_secs(30), || {
        (ids.iter()
            .filter(|w| b.status_of(**w) == "In testing")
            .count()
            == 2)
            .then_some(())
    })
    .await;
    pod.wait_log("the budget pause", |v| {
        v["message"] == "spend budget exhausted: not claiming until the window rolls over"
    })
    .await;
    let (code, body) = get(&format!("http://{addr}/readyz")).await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("budget"), "{body}");
    let (_, text) = get(&format!("http://{addr}/metrics")).await;
    let m = parse_metrics(&text);
    assert_eq!(
        m.get(r#"journeyman_budget_remaining_usd{window="hourly"}"#)
            .copied(),
        Some(0.0),
        "{text}"
    );
    let third = ids
        .iter()
        .find(|w| b.status_of(**w) == "New")
        .copied()
        .expect("one task left");
    assert!(
        b.comments(third).is_empty(),
        "nothing is said on queued tickets"
    );
    assert_eq!(b.pod_of(third), None, "left queued for other pods");
    kill(pod.pid(), Signal::SIGTERM).unwrap();
    assert_eq!(pod.exit_code(Duration::from_secs(10)).await, 0);
}
