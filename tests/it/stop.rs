//! The board is the off switch: a human who takes the work away while the agent runs stops the
//! run. Real `journeyman run` processes (poll interval 200 ms, kill grace 300 ms), the scripted
//! stand-in agent hanging as a real child process, a real git remote and the bundled board. Each
//! kind of change: the agent is gone within the bound, nothing reaches the remote, the human's
//! values stay as they set them, the comment says what and who, and the pod takes other work next.

use std::path::{Path, PathBuf};
use std::time::Duration;

use journeyman::harness::sim::BoardHandle;
use journeyman::harness::sim::seed::SeedWp;
use journeyman::workspace::branch_name;
use nix::sys::signal::{Signal, kill};

use crate::process::{Pod, alive, find_file, spawn_in};
use crate::support::git::BareRemote;
use crate::support::{board, eventually};

/// Poll interval plus kill grace, with room for a loaded machine: the agent is gone within this.
const BOUND: Duration = Duration::from_secs(10);
const SUBJECT: &str = "Refactor the parser";

struct Running {
    b: BoardHandle,
    remote: BareRemote,
    dir: tempfile::TempDir,
    pod: Pod,
    wp: u64,
    agent: i32,
}

impl Running {
    /// Whether the remote holds any commit for the work package.
    fn pushed(&self) -> bool {
        let branch = branch_name(self.wp, SUBJECT);
        let trailer = format!("Work-package: #{}", self.wp);
        self.remote.head(&branch).is_some()
            && self
                .remote
                .log(&branch)
                .iter()
                .any(|m| m.contains(&trailer))
    }

    /// Waits for the agent to be gone and the stop comment to be on the ticket; returns it.
    async fn stopped(&self) -> String {
        let agent = self.agent;
        eventually("the agent process to be gone", BOUND, || {
            (!alive(agent)).then_some(())
        })
        .await;
        let b = &self.b;
        let wp = self.wp;
        eventually("the stop comment", BOUND, || {
            b.comments(wp)
                .into_iter()
                .find(|c| c.contains("**stopped**"))
        })
        .await
    }

    /// The pod goes on with other work: a fresh ticket is claimed, run and pushed.
    async fn takes_other_work(&self) {
        let next = self.b.create(&SeedWp::new("Task", "Other work"));
        let b = &self.b;
        eventually(
            "the pod to finish other work",
            Duration::from_secs(60),
            || (b.status_of(next) == "In testing").then_some(()),
        )
        .await;
    }

    fn agent_home(&self) -> PathBuf {
        self.dir.path().join("work/agent-home")
    }

    async fn exit(mut self) {
        kill(self.pod.pid(), Signal::SIGTERM).unwrap();
        assert_eq!(self.pod.exit_code(Duration::from_secs(20)).await, 0);
    }
}

/// A pod running the agent on one ticket (`description` holds its markers), under `parent` if any.
async fn running(description: &str, parent: Option<u64>, b: BoardHandle) -> Running {
    running_with(description, parent, b, &[]).await
}

async fn running_with(
    description: &str,
    parent: Option<u64>,
    b: BoardHandle,
    extra: &[(&str, &str)],
) -> Running {
    let remote = BareRemote::new();
    let mut seed = SeedWp::new("Task", SUBJECT).description(description);
    if let Some(p) = parent {
        seed = seed.parent(p);
    }
    let wp = b.create(&seed);
    let dir = tempfile::tempdir().unwrap();
    let pod = spawn_in(&b, &remote, dir.path(), extra);
    let agent = agent_pid(dir.path()).await;
    assert_eq!(b.status_of(wp), "In progress");
    Running {
        b,
        remote,
        dir,
        pod,
        wp,
        agent,
    }
}

async fn agent_pid(dir: &Path) -> i32 {
    let work = dir.join("work");
    let file = eventually("the agent to start", Duration::from_secs(30), || {
        find_file(&work, "AGENT_PID")
    })
    .await;
    eventually("the agent's pid", Duration::from_secs(10), || {
        std::fs::read_to_string(&file).ok()?.trim().parse().ok()
    })
    .await
}

#[tokio::test]
async fn a_status_set_on_hold_stops_the_run_and_stays_as_the_human_set_it() {
    let r = running("agent:hang", None, board().await).await;
    r.b.set_status(r.wp, "On hold");
    let comment = r.stopped().await;
    assert!(
        comment.contains("its status was set to On hold") && comment.contains("OpenProject Admin"),
        "what stopped it and whose change it was: {comment}"
    );
    assert!(
        comment.contains("Nothing was committed or pushed") && comment.contains("checkout is kept"),
        "and what was kept: {comment}"
    );
    r.takes_other_work().await;
    assert_eq!(
        r.b.status_of(r.wp),
        "On hold",
        "the worker never writes the status back"
    );
    assert_eq!(r.b.pod_of(r.wp).as_deref(), Some("pod-proc"));
    assert!(!r.pushed(), "nothing reached the remote");
    r.exit().await;
}

#[tokio::test]
async fn a_cleared_pod_field_stops_the_run() {
    let r = running("agent:hang", None, board().await).await;
    r.b.set_pod(r.wp, None);
    let comment = r.stopped().await;
    assert!(comment.contains("its pod field was cleared"), "{comment}");
    r.takes_other_work().await;
    assert_eq!(r.b.pod_of(r.wp), None, "left as the human set it");
    assert_eq!(r.b.status_of(r.wp), "In progress");
    assert!(!r.pushed());
    r.exit().await;
}

#[tokio::test]
async fn a_pod_field_set_to_another_pod_stops_the_run() {
    let r = running("agent:hang", None, board().await).await;
    r.b.set_pod(r.wp, Some("pod-other"));
    let comment = r.stopped().await;
    assert!(
        comment.contains("its pod field was set to pod-other"),
        "{comment}"
    );
    r.takes_other_work().await;
    assert_eq!(r.b.pod_of(r.wp).as_deref(), Some("pod-other"));
    assert!(!r.pushed());
    r.exit().await;
}

#[tokio::test]
async fn a_deleted_work_package_stops_the_run() {
    let r = running("agent:hang", None, board().await).await;
    r.b.delete_wp(r.wp);
    let agent = r.agent;
    eventually("the agent process to be gone", BOUND, || {
        (!alive(agent)).then_some(())
    })
    .await;
    r.takes_other_work().await;
    assert!(!r.b.board().wps.contains_key(&r.wp), "nothing recreated it");
    assert!(!r.pushed());
    r.exit().await;
}

#[tokio::test]
async fn a_work_package_moved_to_a_project_without_a_repository_stops_the_run() {
    let r = running("agent:hang", None, board().await).await;
    let elsewhere = r.b.add_project("elsewhere", true);
    {
        let mut board = r.b.board();
        board.wps.get_mut(&r.wp).unwrap().project = elsewhere;
        board.touch(journeyman::harness::sim::ADMIN_USER, r.wp);
    }
    let comment = r.stopped().await;
    assert!(comment.contains("which has no repository"), "{comment}");
    r.takes_other_work().await;
    assert_eq!(r.b.board().wps[&r.wp].project, elsewhere);
    assert!(!r.pushed());
    r.exit().await;
}

#[tokio::test]
async fn an_open_spike_a_human_adds_under_it_stops_the_run() {
    let r = running("agent:hang", None, board().await).await;
    let spike = r.b.create(
        &SeedWp::new("Spike", "Is the parser the right place?")
            .parent(r.wp)
            .description("Wait: the grammar changes first."),
    );
    let comment = r.stopped().await;
    assert!(
        comment.contains(&format!("Spike #{spike} was opened under it")),
        "{comment}"
    );
    r.takes_other_work().await;
    assert_eq!(r.b.status_of(spike), "New", "the human's Spike untouched");
    assert_eq!(
        r.b.status_of(r.wp),
        "New",
        "waiting behind the Spike, in the pool"
    );
    assert_eq!(
        r.b.pod_of(r.wp).as_deref(),
        Some("pod-proc"),
        "for this pod and its checkout"
    );
    assert!(!r.pushed());
    r.exit().await;
}

#[tokio::test]
async fn a_stop_comment_returns_the_work_to_this_pod_which_continues_with_the_comment_in_its_history()
 {
    let b = board().await;
    let ada = b.add_user("ada", "ada-token", true);
    let r = running("agent:hang-once", None, b).await;
    r.b.board()
        .comment(
            ada,
            r.wp,
            "@journeyman stop: use the new tokenizer before going on.",
        )
        .unwrap();
    let comment = r.stopped().await;
    assert!(
        comment.contains("a comment asked it to stop") && comment.contains("by ada"),
        "{comment}"
    );
    // Back to the ready status with the pod field kept: this pod takes it again and finishes it.
    let b = &r.b;
    let wp = r.wp;
    eventually("the rerun to finish", Duration::from_secs(60), || {
        (b.status_of(wp) == "In testing").then_some(())
    })
    .await;
    assert!(r.pushed(), "the second run pushed");
    let prompts = std::fs::read_to_string(r.agent_home().join("journeyman-prompts.log")).unwrap();
    let last = prompts.rsplit("=== prompt (resume: ").next().unwrap();
    assert!(
        last.contains("use the new tokenizer before going on."),
        "the stop comment reached the next run: {last}"
    );
    let branch = branch_name(wp, SUBJECT);
    let trailer = format!("Work-package: #{wp}");
    assert_eq!(
        r.remote
            .log(&branch)
            .iter()
            .filter(|m| m.contains(&trailer))
            .count(),
        1,
        "one commit, from the second run"
    );
    r.exit().await;
}

#[tokio::test]
async fn an_epic_given_to_another_pod_stops_its_childs_run_and_returns_the_child_to_the_pool() {
    let b = board().await;
    let epic = b.create(&SeedWp::new("Epic", "Parser rewrite"));
    let r = running("agent:hang", Some(epic), b).await;
    assert_eq!(
        r.b.pod_of(epic).as_deref(),
        Some("pod-proc"),
        "claimed with its child"
    );
    r.b.set_pod(epic, Some("pod-other"));
    let comment = r.stopped().await;
    assert!(
        comment.contains(&format!("Epic #{epic} is no longer this pod's")),
        "{comment}"
    );
    r.takes_other_work().await;
    assert_eq!(
        r.b.pod_of(epic).as_deref(),
        Some("pod-other"),
        "the Epic as the human set it"
    );
    assert_eq!(r.b.status_of(r.wp), "New", "the child is back in the pool");
    assert_eq!(r.b.pod_of(r.wp), None);
    assert!(!r.pushed());
    r.exit().await;
}

#[tokio::test]
async fn a_ticket_that_is_only_commented_on_runs_to_the_end() {
    let b = board().await;
    let ada = b.add_user("ada", "ada-token", true);
    let r = running("agent:hold", None, b).await;
    r.b.board()
        .comment(ada, r.wp, "Note: the parser has a fuzz corpus in tests/.")
        .unwrap();
    // Two more looks by the watcher after the comment: its read of the work package, the trail
    // (the work package changed), and the next read. Only the watcher talks to the board now.
    let seen = r.b.requests();
    let b = &r.b;
    eventually("the watcher to look after the comment", BOUND, || {
        (b.requests() >= seen + 5).then_some(())
    })
    .await;
    assert!(alive(r.agent), "a comment alone does not stop the run");
    std::fs::write(
        r.agent_home().join(format!(".journeyman-release-{}", r.wp)),
        "go on\n",
    )
    .unwrap();
    let wp = r.wp;
    eventually("the run to finish", Duration::from_secs(60), || {
        (b.status_of(wp) == "In testing").then_some(())
    })
    .await;
    assert!(r.pushed());
    assert!(
        !r.b.comments(wp).iter().any(|c| c.contains("**stopped**")),
        "{:?}",
        r.b.comments(wp)
    );
    r.exit().await;
}

#[tokio::test]
async fn sigterm_during_a_board_initiated_stop_still_exits_cleanly() {
    // The agent's child ignores SIGTERM: the stop waits out a 3 s kill grace, and SIGTERM lands
    // in it.
    let mut r = running_with(
        "agent:fork-hang",
        None,
        board().await,
        &[("JOURNEYMAN_AGENT_KILL_GRACE", "3s")],
    )
    .await;
    let child_file = eventually("the agent's child", Duration::from_secs(10), || {
        find_file(&r.dir.path().join("work"), "CHILD_PID")
    })
    .await;
    let child: i32 = eventually("the child's pid", Duration::from_secs(10), || {
        std::fs::read_to_string(&child_file)
            .ok()?
            .trim()
            .parse()
            .ok()
    })
    .await;
    r.b.set_status(r.wp, "Rejected");
    r.pod
        .wait_log("the stop", |v| {
            [&v["message"], &v["fields"]["message"]]
                .iter()
                .any(|m| m.as_str().is_some_and(|m| m.contains("stops the run")))
        })
        .await;
    kill(r.pod.pid(), Signal::SIGTERM).unwrap();
    assert_eq!(r.pod.exit_code(Duration::from_secs(20)).await, 0);
    assert!(!alive(r.agent) && !alive(child), "no process left behind");
    assert_eq!(r.b.status_of(r.wp), "Rejected", "the human's status kept");
    assert!(!r.pushed());
}
