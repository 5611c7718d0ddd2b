//! The run while it happens: the real worker and executor, the scripted stand-in agent streaming
//! `stream-json` as a real child process (the real CLI's shape, usage repeated per content block),
//! a real git remote and the bundled board. Plan and progress on the ticket; each live budget
//! (cost, turns, stall) stopping the run with its figures; the agent's own budget stop; live spend
//! in the pod's windows.

use std::time::Duration;

use journeyman::audit::{Event, ItemState, parse};
use journeyman::harness::sim::seed::SeedWp;
use journeyman::harness::sim::{AGENT_USER, JournalAction};
use journeyman::task::{FailureKind, Outcome};

use crate::execution::{Rig, rig_with};

/// The comments of a work package, with the volatile parts (commits, sessions, ids, times)
/// replaced, so a run's trail compares as text.
fn trail(rig: &Rig, wp: u64) -> Vec<String> {
    let remote = rig.remote.url();
    rig.board
        .comments(wp)
        .into_iter()
        .map(|c| {
            normalise(
                &c.replace(&remote, "<remote>")
                    .replace(&format!("#{wp}"), "#<wp>"),
            )
        })
        .map(|c| c.replace(&format!("agent/{wp}-"), "agent/<wp>-"))
        .collect()
}

fn normalise(text: &str) -> String {
    let hex = regex::Regex::new(r"\b[0-9a-f]{7,40}\b").unwrap();
    let session = regex::Regex::new(r"session `[^`]+`").unwrap();
    let secs = regex::Regex::new(r"\d+\.\d+s\b").unwrap();
    let cost = regex::Regex::new(r"\$\d+\.\d{4}").unwrap();
    let text = hex.replace_all(text, "<sha>");
    let text = session.replace_all(&text, "session `<id>`");
    let text = secs.replace_all(&text, "<s>s");
    cost.replace_all(&text, "$<usd>").into_owned()
}

fn failed(outcome: &Option<Outcome>) -> (FailureKind, String) {
    match outcome {
        Some(Outcome::Failed { kind, reason, .. }) => (*kind, reason.clone()),
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn the_plan_is_posted_once_and_one_progress_comment_is_edited_in_place() {
    let mut rig = rig_with("60s", &[("JOURNEYMAN_PROGRESS_EVERY", "200ms")]).await;
    let wp = rig.board.create(
        &SeedWp::new("Task", "Tidy the parser").description("agent:plan agent:step-ms=350"),
    );
    let report = rig.cycle().await;
    assert!(
        matches!(report.outcome, Some(Outcome::Pushed { .. })),
        "{:?}",
        report.outcome
    );
    let comments = rig.board.comments(wp);
    let plans: Vec<_> = comments
        .iter()
        .filter_map(|c| match parse(c) {
            Some(Event::Plan { items, .. }) => Some(items),
            _ => None,
        })
        .collect();
    assert_eq!(plans.len(), 1, "one plan per run: {comments:#?}");
    let texts: Vec<_> = plans[0].iter().map(|i| i.text.as_str()).collect();
    assert_eq!(texts, ["Read the code", "Make the change", "Run the tests"]);
    assert_eq!(plans[0][0].state, ItemState::InProgress);
    let progress: Vec<_> = comments
        .iter()
        .filter_map(|c| match parse(c) {
            Some(Event::Progress(p)) => Some(p),
            _ => None,
        })
        .collect();
    assert_eq!(progress.len(), 1, "ONE progress comment: {comments:#?}");
    let p = &progress[0];
    assert!(p.turns >= 3, "{p:?}");
    assert!(p.files_changed >= 1, "{p:?}");
    assert!(p.cost_usd > 0.0, "{p:?}");
    let test = p.last_test.as_ref().expect("a test command");
    assert_eq!(test.command, "cargo test");
    // Edited in place: the board's journal holds the edits of that one comment, by the agent user.
    let board = rig.board.board();
    let edits: Vec<u64> = board
        .journal
        .iter()
        .filter(|e| e.wp == wp && e.user == AGENT_USER)
        .filter_map(|e| match e.action {
            JournalAction::EditedComment { activity, .. } => Some(activity),
            _ => None,
        })
        .collect();
    assert!(edits.len() >= 2, "checkpoints: {edits:?}");
    assert!(
        edits.windows(2).all(|w| w[0] == w[1]),
        "always the same comment"
    );
    // Routine: neither the plan, the progress nor its edits notify anyone.
    let notified: Vec<_> = board
        .notifications
        .iter()
        .filter(|n| n.wp == wp && n.notify && n.user == AGENT_USER)
        .collect();
    assert!(notified.is_empty(), "{notified:?}");
    drop(board);
    // The trail of a run, as a human reads it on the ticket (progress shown at its last edit).
    let trail = trail(&rig, wp);
    let expected_start = [
        "journeyman: **starting** on pod `pod-0`. Next: prepare a branch for #<wp> in `<remote>` (base `main`), run the agent, then commit and push.",
        "journeyman: **started** on pod `pod-0`: repository `<remote>`, branch `agent/<wp>-tidy-the-parser`, base commit `<sha>`.",
        "journeyman: pod `pod-0` **plan** (the agent's todo list; progress follows in one comment, edited in place):\n- [ ] **now:** Read the code\n- [ ] Make the change\n- [ ] Run the tests",
    ];
    let got = trail;
    for (i, want) in expected_start.iter().enumerate() {
        assert_eq!(got[i], *want, "comment {i} of {got:#?}");
    }
    let last_progress = got
        .iter()
        .find(|c| c.contains("**progress**"))
        .expect("the progress comment");
    let shape = regex::Regex::new(
        r"^journeyman: pod `pod-0` \*\*progress\*\* of the run \(edited in place, at most once per update interval\):\n- elapsed: 0 min\n- turns: \d+\n- tokens: \d+ input / \d+ output\n- cost so far: \$<usd> \(estimated\)\n- files changed: \d+\n- last test: `cargo test`, exit code (0|101)\n- now: (step \d of 3: .+|no plan item in progress)\n- new comments since the run began: 0 \(the next run reads them\)$",
    )
    .unwrap();
    assert!(shape.is_match(last_progress), "{last_progress}");
    let tail: Vec<&String> = got.iter().rev().take(2).collect();
    assert!(
        tail[1].starts_with("journeyman: execution **complete**: session `<id>`")
            && tail[0].starts_with("journeyman: **pushed** `<sha>` to branch `agent/"),
        "then usage and the push: {got:#?}"
    );
}

#[tokio::test]
async fn a_run_crossing_its_cost_budget_is_stopped_live_with_the_figures() {
    let mut rig = rig_with("60s", &[("JOURNEYMAN_TASK_BUDGET_USD", "1")]).await;
    // $0.50 a turn at the worker's price (the agent's own figure is a fifth of that): the worker
    // stops it after its third turn, long before the agent's own --max-budget-usd 1.00 would.
    let wp = rig.board.create(
        &SeedWp::new("Task", "Spend freely")
            .description("agent:spend=0.5 agent:turns=20 agent:step-ms=200"),
    );
    let started = std::time::Instant::now();
    let report = rig.cycle().await;
    let (kind, reason) = failed(&report.outcome);
    assert_eq!(kind, FailureKind::Agent);
    assert!(
        reason.contains("crossed its cost budget")
            && reason.contains("against $1.00 (JOURNEYMAN_TASK_BUDGET_USD=$1.00)"),
        "{reason}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "stopped on the spot, not after 20 turns: {:?}",
        started.elapsed()
    );
    let spike = rig.spike_of(wp);
    assert!(
        spike.description.contains("spent before the stop"),
        "the figures: {}",
        spike.description
    );
    assert!(
        rig.remote
            .head(&journeyman::workspace::branch_name(wp, "Spend freely"))
            .is_none()
    );
    // What it spent counts in the pod's windows.
    let (hour, _) = rig.budget.lock().unwrap().remaining(chrono::Utc::now());
    assert!(
        hour < 20.0 - 1.0,
        "the stopped run's live spend is recorded: {hour}"
    );
    assert_eq!(rig.board.status_of(wp), "New");
}

#[tokio::test]
async fn the_agents_own_budget_stop_is_a_failure_that_says_so() {
    // A price table cheaper than the agent's own: its --max-budget-usd stops it first.
    let mut rig = rig_with(
        "60s",
        &[
            ("JOURNEYMAN_TASK_BUDGET_USD", "1"),
            ("JOURNEYMAN_MODEL_PRICES", "scripted=0.1/0.5"),
        ],
    )
    .await;
    let wp = rig.board.create(
        &SeedWp::new("Task", "Spend on its own").description("agent:spend=0.5 agent:turns=30"),
    );
    let (_, reason) = failed(&rig.cycle().await.outcome);
    assert!(
        reason.contains("stopped at its own cost budget (--max-budget-usd)")
            && reason.contains("Reached maximum budget ($1)"),
        "{reason}"
    );
    assert!(
        rig.board
            .comments(wp)
            .iter()
            .any(|c| c.contains("agent run **failed**")),
        "its usage is on the ticket"
    );
}

#[tokio::test]
async fn a_cli_that_ignores_its_turn_cap_is_stopped_at_the_cap() {
    let mut rig = rig_with("60s", &[("JOURNEYMAN_MAX_TURNS", "3")]).await;
    rig.board.create(
        &SeedWp::new("Task", "Loop forever")
            .description("agent:ignore-max-turns agent:step-ms=300"),
    );
    let (_, reason) = failed(&rig.cycle().await.outcome);
    assert!(
        reason.contains("crossed its turn budget: 4 turns against JOURNEYMAN_MAX_TURNS=3"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_stalled_run_is_stopped_after_the_stall_budget_not_the_timeout() {
    let mut rig = rig_with("120s", &[("JOURNEYMAN_STALL_TIMEOUT", "1s")]).await;
    rig.board
        .create(&SeedWp::new("Task", "Think forever").description("agent:hang"));
    let started = std::time::Instant::now();
    let (_, reason) = failed(&rig.cycle().await.outcome);
    assert!(
        reason.contains("the run stalled: no tool call and no change in the checkout for 1s (JOURNEYMAN_STALL_TIMEOUT=1s)"),
        "{reason}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "long before the 120s timeout: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_run_that_edits_files_without_tool_calls_in_its_stream_is_not_stalled() {
    let mut rig = rig_with("60s", &[("JOURNEYMAN_STALL_TIMEOUT", "1s")]).await;
    rig.board.create(
        &SeedWp::new("Task", "Edit quietly").description("agent:quiet-edits agent:quiet-ms=3000"),
    );
    let report = rig.cycle().await;
    assert!(
        matches!(report.outcome, Some(Outcome::Pushed { .. })),
        "{:?}",
        report.outcome
    );
}

#[tokio::test]
async fn live_spend_counts_in_the_pods_hourly_window_while_the_run_goes_on() {
    let mut rig = rig_with("60s", &[]).await;
    let wp = rig.board.create(
        &SeedWp::new("Task", "Spend slowly")
            .description("agent:spend=0.4 agent:turns=6 agent:step-ms=300"),
    );
    let budget = rig.budget.clone();
    let (hour_before, _) = budget.lock().unwrap().remaining(chrono::Utc::now());
    let watch = async {
        crate::support::eventually("live spend in the window", Duration::from_secs(30), || {
            let (hour, _) = budget.lock().unwrap().remaining(chrono::Utc::now());
            (hour < hour_before - 0.5).then_some(hour)
        })
        .await
    };
    let (report, during) = tokio::join!(rig.cycle(), watch);
    assert!(
        matches!(report.outcome, Some(Outcome::Pushed { .. })),
        "{:?}",
        report.outcome
    );
    assert!(during < hour_before, "{during}");
    // Once recorded, the run's own reported cost replaces the live figure.
    let (after, _) = budget.lock().unwrap().remaining(chrono::Utc::now());
    let reported: f64 = 0.01 + 6.0 * 0.4 / 5.0;
    assert!(
        (hour_before - after - reported).abs() < 1e-6,
        "recorded {} instead of the live estimate: {after}",
        hour_before - after
    );
    assert_eq!(rig.board.status_of(wp), "In testing");
}

#[tokio::test]
async fn work_pinned_to_a_busy_pod_is_told_once_that_it_is_queued_and_taken_next() {
    let mut rig = rig_with("60s", &[("JOURNEYMAN_POLL_INTERVAL", "100ms")]).await;
    let busy = rig
        .board
        .create(&SeedWp::new("Task", "Long work").description("agent:hold"));
    let home = rig.config.workdir.join("agent-home");
    let work = rig.config.workdir.clone();
    let never = tokio_util::sync::CancellationToken::new();
    let Rig { board, worker, .. } = &mut rig;
    let board: &journeyman::harness::sim::BoardHandle = board;
    let human = async {
        crate::support::eventually("the agent to start", Duration::from_secs(30), || {
            crate::process::find_file(&work, "AGENT_PID")
        })
        .await;
        let pinned = board.create(&SeedWp::new("Task", "Pinned work").pod("pod-0"));
        let queued = |b: &journeyman::harness::sim::BoardHandle| {
            b.comments(pinned)
                .iter()
                .filter(|c| c.contains("**queued**"))
                .count()
        };
        let said =
            crate::support::eventually("the queued comment", Duration::from_secs(30), || {
                board
                    .comments(pinned)
                    .into_iter()
                    .find(|c| c.contains("**queued**"))
            })
            .await;
        // Several more ticks of the watcher: still said once.
        let seen = board.requests();
        crate::support::eventually("more ticks", Duration::from_secs(30), || {
            (board.requests() >= seen + 8).then_some(())
        })
        .await;
        assert_eq!(queued(board), 1, "said once, not every tick");
        std::fs::write(home.join(format!(".journeyman-release-{busy}")), "go\n").unwrap();
        (pinned, said)
    };
    let run = async { worker.cycle(&never, &never).await.expect("cycle") };
    let (first, (pinned, said)) = tokio::join!(run, human);
    assert_eq!(
        said,
        format!(
            "journeyman: pod `pod-0` is busy with #{busy}: this work package, pinned to it, is **queued** behind it and starts when that is done."
        )
    );
    assert_eq!(first.worked, Some(busy));
    let next = rig.cycle().await;
    assert_eq!(next.worked, Some(pinned), "the pinned work is next");
    assert_eq!(rig.board.status_of(pinned), "In testing");
}
