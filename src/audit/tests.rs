//! The audit trail's protocol: exact texts (what a human reads), round trips (what the worker reads
//! back), and the counting rules over a trail.

use proptest::prelude::*;

use super::*;

fn sample_events() -> Vec<(Event, &'static str)> {
    vec![
        (
            Event::Starting {
                pod: "pod-0".into(),
                owner: 4,
                repo: "file:///r.git".into(),
                base: "main".into(),
            },
            "journeyman: **starting** on pod `pod-0`. Next: prepare a branch for #4 in `file:///r.git` (base `main`), run the agent, then commit and push.",
        ),
        (
            Event::Resuming {
                pod: "pod-0".into(),
            },
            "journeyman: pod `pod-0` restarted and is **resuming** this work package.",
        ),
        (
            Event::TookOver {
                pod: "b".into(),
                from: "a".into(),
                lease: "35m".into(),
                epic: false,
            },
            "journeyman: pod `b` **took over** this work package from pod `a`, which showed no activity for 35m (longer than a task may run).",
        ),
        (
            Event::TookOver {
                pod: "b".into(),
                from: "a".into(),
                lease: "35m".into(),
                epic: true,
            },
            "journeyman: pod `b` **took over** this Epic from pod `a`, which showed no activity for 35m.",
        ),
        (
            Event::Started {
                pod: "p".into(),
                repo: "r".into(),
                branch: "agent/1-x".into(),
                base_commit: "abc".into(),
            },
            "journeyman: **started** on pod `p`: repository `r`, branch `agent/1-x`, base commit `abc`.",
        ),
        (
            Event::PushingUnpushed {
                commit: "abc".into(),
            },
            "journeyman: found commit `abc` for this work package from an interrupted run; pushing it instead of running the agent again.",
        ),
        (
            Event::AlreadyPushed {
                commit: "abc".into(),
                branch: "agent/1-x".into(),
            },
            "journeyman: commit `abc` for this work package is already on `agent/1-x`; reporting it instead of running the agent again.",
        ),
        (
            Event::Usage(Usage::new(
                RunEnd::Complete,
                Some("s-1"),
                2,
                (200, 40),
                0.01,
                0.04,
            )),
            "journeyman: execution **complete**: session `s-1`, 2 turns, 200 input / 40 output tokens, $0.0100, 0.0s.",
        ),
        (
            Event::Usage(Usage::new(
                RunEnd::Failed,
                None,
                1,
                (100, 20),
                1.23456,
                12.34,
            )),
            "journeyman: agent run **failed**: session `unknown`, 1 turns, 100 input / 20 output tokens, $1.2346, 12.3s.",
        ),
        (
            Event::SkippedLarge {
                files: vec!["big.bin".into(), "dump.sql".into()],
            },
            "journeyman: left out files over the size limit: big.bin, dump.sql",
        ),
        (
            Event::Pushed {
                commit: "abc".into(),
                branch: "agent/1-x".into(),
            },
            "journeyman: **pushed** `abc` to branch `agent/1-x`. Status set to done for review.",
        ),
        (
            Event::EnvironmentProblem {
                pod: "p".into(),
                reason: "cannot clone".into(),
                question: Question::ReachRepository,
            },
            "journeyman: **environment problem** on pod `p`: cannot clone. This is not the ticket's fault: it goes back to the pool without a Spike, and this pod pauses claiming. Question for a human: can this pod reach the repository in JOURNEYMAN_REPOS from its network?",
        ),
        (
            Event::Failed {
                pod: "p".into(),
                reason: "boom".into(),
                spike: 9,
            },
            "journeyman: **failed** on pod `p`: boom. Filed Spike #9; this work package returns to the pool once the Spike is closed.",
        ),
        (
            Event::Escalated {
                pod: "p".into(),
                reason: "boom".into(),
                spike: 9,
            },
            "journeyman: **escalated** on pod `p`: boom. Filed Spike #9; this work package returns to the pool once the Spike is closed.",
        ),
        (
            Event::Released {
                pod: "p".into(),
                reason: "the pod is shutting down".into(),
            },
            "journeyman: pod `p` **released** this work package: the pod is shutting down.",
        ),
        (
            Event::EpicStale {
                pod: "p".into(),
                previous: "q".into(),
                stale_after: "2h".into(),
            },
            "journeyman: **released** this Epic (was owned by pod `q`): nothing below it is In progress and it saw no activity for 2h. Any pod may take it now. (pod `p`)",
        ),
        (
            Event::EpicFinished { pod: "p".into() },
            "journeyman: every open work package below this Epic is done; pod `p` releases it. The status is left for a human to review and close.",
        ),
        (
            Event::EpicPaused { pod: "p".into() },
            "journeyman: pod `p` **released** this Epic: it paused after an environment problem, and another pod may continue.",
        ),
        (
            Event::EpicGivenBack {
                pod: "p".into(),
                child: 7,
            },
            "journeyman: pod `p` **released** this Epic again: it lost the claim on #7 to another pod, and nothing else below it is eligible for this pod.",
        ),
    ]
}

#[test]
fn every_event_reads_as_on_the_board_and_parses_back() {
    for (event, text) in sample_events() {
        assert_eq!(event.render(), text);
        assert_eq!(parse(text), Some(event), "{text}");
    }
}

#[test]
fn human_text_is_not_an_event() {
    for text in [
        "",
        "looks good to me",
        "I think journeyman: **failed** on pod `a` is wrong",
        "journeyman: please retry",
        "journeyman: **failed** on pod `a`: x",
        "journeyman: **failed** on pod `a b`: x. Filed Spike #1; this work package returns to the pool once the Spike is closed.",
        "journeyman: **failed** on pod `a`: x. Filed Spike #one; this work package returns to the pool once the Spike is closed.",
        "journeyman: pod `p` restarted and is **resuming** this work package. (and more)",
    ] {
        assert_eq!(parse(text), None, "{text}");
    }
}

#[test]
fn the_outcome_a_run_reported_counts_until_the_next_start() {
    let r = |v: &[String]| History::from_comments(v.iter().map(String::as_str)).reported_outcome();
    let starting = Event::Starting {
        pod: "a".into(),
        owner: 1,
        repo: "file:///r.git".into(),
        base: "main".into(),
    }
    .render();
    let pushed = Event::Pushed {
        commit: "c".repeat(40),
        branch: "agent/1-x".into(),
    }
    .render();
    let failed = Event::Failed {
        pod: "a".into(),
        reason: "x".into(),
        spike: 2,
    }
    .render();
    let resuming = Event::Resuming { pod: "a".into() }.render();
    assert_eq!(r(&[]), None);
    assert_eq!(
        r(std::slice::from_ref(&starting)),
        None,
        "a run that died reported nothing"
    );
    assert_eq!(r(&[starting.clone(), pushed.clone()]), Some(true));
    assert_eq!(r(&[starting.clone(), failed.clone()]), Some(false));
    assert_eq!(
        r(&[starting.clone(), failed.clone(), resuming.clone()]),
        None,
        "a later start begins a run of its own"
    );
    assert_eq!(
        r(&[starting, failed, resuming, pushed, "a human comment".into()]),
        Some(true)
    );
}

#[test]
fn failed_attempts_count_failures_and_dead_runs_since_the_last_escalation() {
    let c = |v: &[&str]| History::from_comments(v.iter().copied()).failed_attempts();
    let failed = |pod: &str| {
        Event::Failed {
            pod: pod.into(),
            reason: "x".into(),
            spike: 1,
        }
        .render()
    };
    let escalated = Event::Escalated {
        pod: "a".into(),
        reason: "y".into(),
        spike: 2,
    }
    .render();
    assert_eq!(c(&[]), 0);
    assert_eq!(c(&[&failed("a"), "a human comment", &failed("b")]), 2);
    let resuming = Event::Resuming { pod: "a".into() }.render();
    assert_eq!(c(&[&resuming]), 1, "a resume means a run died");
    let took = |epic| {
        Event::TookOver {
            pod: "b".into(),
            from: "a".into(),
            lease: "1h".into(),
            epic,
        }
        .render()
    };
    assert_eq!(c(&[&took(false)]), 1);
    assert_eq!(
        c(&[&took(true)]),
        0,
        "taking over the Epic is not an attempt at it"
    );
    let usage = Event::Usage(Usage::new(RunEnd::Failed, Some("x"), 1, (1, 1), 0.0, 0.0)).render();
    assert_eq!(
        c(&[&usage]),
        0,
        "the usage line of a failed run is not an attempt"
    );
    assert_eq!(c(&[&failed("a"), &escalated, &failed("a")]), 1);
    assert_eq!(
        c(&["I think journeyman: **failed** on pod `a` is wrong"]),
        0,
        "only the worker's own comments count"
    );
}

#[test]
fn a_history_knows_which_events_are_already_posted() {
    let pushed = Event::Pushed {
        commit: "abc".into(),
        branch: "b".into(),
    };
    let h = History::from_comments([pushed.render().as_str(), "hello"]);
    assert!(h.has(&pushed));
    assert!(!h.has(&Event::Pushed {
        commit: "def".into(),
        branch: "b".into()
    }));
    assert_eq!(h.entries[1].said, Said::Human("hello".into()));
}

#[test]
fn the_boards_own_notes_are_nobodys_words() {
    let h = History::from_comments([
        "_Updated automatically by changing values within child work package #7_",
        "_Updated automatically by me, said mallory_\nand more",
    ]);
    assert!(matches!(h.entries[0].said, Said::Board(_)));
    assert!(
        matches!(h.entries[1].said, Said::Human(_)),
        "only the board's one-line note"
    );
    assert!(
        conversation(1, &h, &[], &[], false)
            .iter()
            .all(|i| !i.body.contains("child work package #7"))
    );
}

/// A trail of `(seconds, author, text)` comments, stamped from a fixed origin.
fn stamped(comments: &[(i64, &str, &str)]) -> History {
    let t0 = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
    History {
        entries: comments
            .iter()
            .map(|(s, who, text)| Entry {
                at: Some(t0 + chrono::Duration::seconds(*s)),
                author: Some(who.to_string()),
                said: History::from_comments([*text]).entries.remove(0).said,
            })
            .collect(),
    }
}

#[test]
fn an_answer_counts_from_the_moment_the_spike_was_filed() {
    let t0 = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
    let at = |s: i64| t0 + chrono::Duration::seconds(s);
    let failed = |spike: u64| {
        Event::Failed {
            pod: "p".into(),
            reason: "no credentials".into(),
            spike,
        }
        .render()
    };
    let (f7, f8) = (failed(7), failed(8));
    // The Spike #7 is filed at 10 s; the owner answers at 11 s, before the worker's comment at
    // 12 s that names the Spike.
    let raced = stamped(&[
        (1, "ada", "@journeyman an old remark"),
        (11, "owner", "@journeyman build the wheel only"),
        (12, "bot", &f7),
    ]);
    assert_eq!(
        raced.answer("@journeyman", Some((7, at(10)))),
        Some("owner".into())
    );
    assert_eq!(
        raced.answer("@journeyman", None),
        None,
        "without the Spike's filing time, only what follows the failure counts"
    );
    assert_eq!(
        raced.answer("@journeyman", Some((8, at(10)))),
        None,
        "the filing time of another Spike than the failure names does not count"
    );
    assert_eq!(
        raced.answer("@journeyman", Some((7, at(20)))),
        None,
        "nothing since the Spike was filed"
    );
    let after = stamped(&[(12, "bot", &f8), (13, "ada", "@journeyman go on")]);
    assert_eq!(after.answer("@journeyman", None), Some("ada".into()));
    assert_eq!(
        after.answer("@journeyman", Some((8, at(10)))),
        Some("ada".into())
    );
    let unmentioned = stamped(&[(11, "owner", "thanks"), (12, "bot", &f8)]);
    assert_eq!(unmentioned.answer("@journeyman", Some((8, at(10)))), None);
}

#[test]
fn reasons_are_one_bounded_line() {
    let long = format!("first\tline\r\nsecond {}", "x".repeat(1000));
    let line = one_line(&long);
    assert_eq!(line, "first line");
    let line = one_line(&"é".repeat(1000));
    assert_eq!(line.chars().count(), REASON_CHARS + 3);
    assert!(line.ends_with("..."));
}

fn name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._-]{1,20}"
}

/// A normalised reason: any one line, as `one_line` leaves it.
fn reason() -> impl Strategy<Value = String> {
    any::<String>().prop_map(|s| one_line(&s))
}

/// Free text that may hold the fixed phrases themselves.
fn tricky() -> impl Strategy<Value = String> {
    prop_oneof![
        reason(),
        Just(
            ". Filed Spike #3; this work package returns to the pool once the Spike is closed."
                .to_string()
        ),
        Just("`: repository `x`, branch `y".to_string()),
        Just("` (base `".to_string()),
        Just(".".to_string()),
    ]
    .prop_map(|s| one_line(&s))
}

fn progress() -> impl Strategy<Value = Progress> {
    (
        (
            name(),
            any::<u32>(),
            any::<u32>(),
            any::<(u64, u64)>(),
            0.0..1000.0f64,
            any::<u32>(),
        ),
        proptest::option::of((tricky(), proptest::option::of(-5i32..300), any::<bool>())),
        proptest::option::of((reason(), 0usize..40, 0usize..40)),
        any::<u32>(),
    )
        .prop_map(
            |((pod, minutes, turns, tokens, cost, files), test, now, new_comments)| {
                Progress {
                    pod,
                    minutes: u64::from(minutes),
                    turns,
                    input_tokens: tokens.0,
                    output_tokens: tokens.1,
                    cost_usd: cost,
                    files_changed: u64::from(files),
                    last_test: test.map(|(command, exit, failed)| TestRun {
                        command,
                        exit,
                        failed,
                    }),
                    now,
                    new_comments,
                }
                .normalised()
            },
        )
}

fn question() -> impl Strategy<Value = Question> {
    proptest::sample::select(Question::ALL.to_vec())
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        (name(), any::<u64>(), tricky(), name()).prop_map(|(pod, owner, repo, base)| {
            Event::Starting {
                pod,
                owner,
                repo,
                base,
            }
        }),
        name().prop_map(|pod| Event::Resuming { pod }),
        (name(), "[A-Za-z .-]{1,30}", tricky()).prop_map(|(pod, by, first_line)| Event::Rework {
            pod,
            by,
            first_line
        }),
        (name(), name(), tricky(), any::<bool>()).prop_map(|(pod, from, lease, epic)| {
            Event::TookOver {
                pod,
                from,
                lease,
                epic,
            }
        }),
        (name(), tricky(), "[a-z0-9/._-]{1,20}", name()).prop_map(
            |(pod, repo, branch, base_commit)| Event::Started {
                pod,
                repo,
                branch,
                base_commit
            }
        ),
        name().prop_map(|commit| Event::PushingUnpushed { commit }),
        name().prop_map(|session| Event::Resumed { session }),
        (0u32..100000, name()).prop_map(|(tenths, lock)| Event::EnvironmentReady {
            seconds: f64::from(tenths) / 10.0,
            lock
        }),
        (name(), tricky()).prop_map(|(session, why)| Event::FreshSession { session, why }),
        (name(), tricky()).prop_map(|(commit, branch)| Event::AlreadyPushed { commit, branch }),
        (
            any::<bool>(),
            name(),
            any::<u32>(),
            any::<(u64, u64)>(),
            0.0..1000.0f64,
            0.0..100000.0f64
        )
            .prop_map(|(ok, s, turns, tokens, cost, secs)| {
                let end = if ok { RunEnd::Complete } else { RunEnd::Failed };
                Event::Usage(Usage::new(end, Some(&s), turns, tokens, cost, secs))
            }),
        proptest::collection::vec("[a-z0-9/._-]{1,12}", 1..4)
            .prop_map(|files| Event::SkippedLarge { files }),
        (name(), tricky()).prop_map(|(commit, branch)| Event::Pushed { commit, branch }),
        (name(), tricky(), question()).prop_map(|(pod, reason, question)| {
            Event::EnvironmentProblem {
                pod,
                reason,
                question,
            }
        }),
        (name(), tricky(), any::<u64>()).prop_map(|(pod, reason, spike)| Event::Failed {
            pod,
            reason,
            spike
        }),
        (name(), tricky(), any::<u64>()).prop_map(|(pod, reason, spike)| Event::Escalated {
            pod,
            reason,
            spike
        }),
        (name(), tricky()).prop_map(|(pod, reason)| Event::Released { pod, reason }),
        (name(), name(), tricky()).prop_map(|(pod, previous, stale_after)| Event::EpicStale {
            pod,
            previous,
            stale_after
        }),
        name().prop_map(|pod| Event::EpicFinished { pod }),
        name().prop_map(|pod| Event::EpicPaused { pod }),
        (name(), any::<u64>()).prop_map(|(pod, child)| Event::EpicGivenBack { pod, child }),
        (name(), tricky(), any::<u64>()).prop_map(|(pod, by, wp)| Event::SpikeAnswered {
            pod,
            by,
            wp
        }),
        (name(), proptest::collection::vec((reason(), 0u8..3), 0..6)).prop_map(|(pod, items)| {
            let items = items
                .iter()
                .map(|(t, s)| {
                    PlanItem::new(t, ["pending", "in_progress", "completed"][*s as usize])
                })
                .collect();
            Event::Plan { pod, items }
        }),
        progress().prop_map(Event::Progress),
        (name(), any::<u64>()).prop_map(|(pod, behind)| Event::Queued { pod, behind }),
        (
            name(),
            "[a-z ]{1,30}",
            "[a-zA-Z #0-9]{1,30}",
            "[a-z ,;()]{0,60}"
        )
            .prop_map(|(pod, what, by, after)| Event::Stopped {
                pod,
                what,
                by,
                after
            }),
        (name(), "[a-z ]{1,30}", tricky(), "[a-zA-Z ,=<>]{1,40}").prop_map(
            |(pod, what, reason, fix)| Event::Refused {
                pod,
                what,
                reason,
                fix
            }
        ),
    ]
}

proptest! {
    #![proptest_config(crate::fuzz_config(512))]

    #[test]
    fn every_rendered_event_parses_back_to_itself(e in event()) {
        prop_assert_eq!(parse(&e.render()), Some(e));
    }

    #[test]
    fn parse_never_panics_and_text_without_the_prefix_is_human(text in any::<String>()) {
        let parsed = parse(&text);
        if !text.starts_with(PREFIX) {
            prop_assert_eq!(parsed, None);
        }
    }

    #[test]
    fn a_parsed_comment_renders_back_to_the_same_text(e in event(), cut in 0usize..400) {
        // Any prefix of a real comment either is not an event or is one that renders to itself.
        let text = e.render();
        let end = text.char_indices().nth(cut).map_or(text.len(), |(i, _)| i);
        if let Some(p) = parse(&text[..end]) {
            prop_assert_eq!(p.render(), &text[..end]);
        }
    }
}
