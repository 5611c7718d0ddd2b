use proptest::prelude::*;
use serde_json::json;

use super::*;

/// The real CLI's stream (2.1.330, offline against the stand-in Messages API): init, a `Write`
/// tool call, its result, the closing text, the result object.
const SAMPLE: &str = include_str!("stream-2.1.330.jsonl");

fn feed(live: &mut Live, events: &[serde_json::Value], at: Duration) -> Observed {
    let mut seen = Observed::default();
    for e in events {
        let o = live.observe(e.to_string().as_bytes(), at);
        seen.tool_call |= o.tool_call;
        seen.plan |= o.plan;
    }
    seen
}

fn assistant(
    id: &str,
    model: &str,
    usage: serde_json::Value,
    content: serde_json::Value,
) -> serde_json::Value {
    json!({"type": "assistant", "parent_tool_use_id": null,
           "message": {"id": id, "model": model, "content": content, "usage": usage}})
}

fn tokens(input: u64, output: u64) -> serde_json::Value {
    json!({"input_tokens": input, "output_tokens": output})
}

#[test]
fn the_real_clis_stream_is_read() {
    let mut live = Live::default();
    for line in SAMPLE.lines() {
        live.observe(line.as_bytes(), Duration::from_secs(1));
    }
    assert_eq!(
        live.session_id.as_deref(),
        Some("4c436429-25ab-4e5a-aafb-c4cf76e5d2a3")
    );
    assert_eq!(live.tool_calls, 1);
    assert_eq!(
        live.files().collect::<Vec<_>>(),
        ["/tmp/cc-try/wd/hello.txt"]
    );
    assert!(live.finished);
    assert_eq!(live.skipped_lines, 0);
    // The stand-in names both replies `msg_1`: one message, its usage once.
    assert_eq!(
        live.tokens(),
        Tokens {
            input: 12,
            output: 7,
            ..Tokens::default()
        }
    );
    assert_eq!(live.turns(), 1);
}

#[test]
fn a_messages_usage_repeated_on_each_content_block_is_counted_once() {
    let mut live = Live::default();
    let model = "claude-sonnet-4-5";
    feed(
        &mut live,
        &[
            assistant(
                "m1",
                model,
                tokens(1000, 10),
                json!([{"type": "text", "text": "Let me look."}]),
            ),
            assistant(
                "m1",
                model,
                tokens(1000, 200),
                json!([{"type": "tool_use", "id": "t1", "name": "Read", "input": {}}]),
            ),
            assistant(
                "m2",
                model,
                tokens(3000, 100),
                json!([{"type": "text", "text": "Done."}]),
            ),
        ],
        Duration::ZERO,
    );
    assert_eq!(live.turns(), 2);
    assert_eq!(
        live.tokens(),
        Tokens {
            input: 4000,
            output: 300,
            ..Tokens::default()
        }
    );
    let cost = live.cost_usd(&Prices::default());
    let expected = (4000.0 * 3.0 + 300.0 * 15.0) / 1e6;
    assert!((cost - expected).abs() < 1e-12, "{cost} vs {expected}");
}

#[test]
fn sub_agents_messages_cost_money_but_are_not_turns() {
    let mut live = Live::default();
    let mut sub = assistant("s1", "claude-haiku-4-5", tokens(1_000_000, 0), json!([]));
    sub["parent_tool_use_id"] = json!("toolu_9");
    feed(&mut live, &[sub], Duration::ZERO);
    assert_eq!(live.turns(), 0);
    assert!((live.cost_usd(&Prices::default()) - 1.0).abs() < 1e-9);
}

#[test]
fn cache_tokens_are_priced_with_their_multipliers() {
    let mut live = Live::default();
    let usage =
        json!({"cache_read_input_tokens": 1_000_000, "cache_creation_input_tokens": 1_000_000});
    feed(
        &mut live,
        &[assistant("m", "claude-sonnet-4", usage, json!([]))],
        Duration::ZERO,
    );
    // 0.1 x 3 + 1.25 x 3
    assert!((live.cost_usd(&Prices::default()) - 4.05).abs() < 1e-9);
}

#[test]
fn an_unknown_model_is_priced_at_the_dearest_entry_never_free() {
    let prices = Prices::parse("sonnet=3/15, haiku=1/5").unwrap();
    assert_eq!(
        prices.of("claude-sonnet-4-5"),
        Price {
            input: 3.0,
            output: 15.0
        }
    );
    assert_eq!(
        prices.of("Claude-HAIKU-4"),
        Price {
            input: 1.0,
            output: 5.0
        }
    );
    assert_eq!(
        prices.of("some-new-model"),
        Price {
            input: 3.0,
            output: 15.0
        }
    );
}

#[test]
fn a_bad_price_table_says_what_is_wrong() {
    for (text, says) in [
        ("", "empty"),
        ("opus", "model=input/output"),
        ("opus=15", "input/output"),
        ("opus=x/75", "not a price"),
        ("opus=-1/75", "not a price"),
    ] {
        let err = Prices::parse(text).unwrap_err();
        assert!(err.contains(says), "{text}: {err}");
    }
}

#[test]
fn the_todo_list_is_the_plan_and_its_item_in_progress_the_current_step() {
    let mut live = Live::default();
    let todo = |todos: serde_json::Value| {
        assistant(
            "p",
            "m",
            tokens(1, 1),
            json!([{"type": "tool_use", "id": "t", "name": "TodoWrite", "input": {"todos": todos}}]),
        )
    };
    let first = feed(
        &mut live,
        &[todo(json!([
            {"content": "Read the parser", "status": "in_progress", "activeForm": "Reading"},
            {"content": "Fix the bug", "status": "pending"},
        ]))],
        Duration::from_secs(3),
    );
    assert!(first.plan && first.tool_call);
    assert_eq!(live.todos.len(), 2);
    assert_eq!(live.current_todo().unwrap().text, "Read the parser");
    assert_eq!(live.last_tool_at, Duration::from_secs(3));
    let same = feed(
        &mut live,
        &[todo(json!([
            {"content": "Read the parser", "status": "in_progress"},
            {"content": "Fix the bug", "status": "pending"},
        ]))],
        Duration::from_secs(4),
    );
    assert!(!same.plan, "the same list again is no change");
    feed(
        &mut live,
        &[todo(json!([
            {"content": "Read the parser", "status": "completed"},
            {"content": "Fix the bug", "status": "in_progress"},
        ]))],
        Duration::from_secs(5),
    );
    assert_eq!(live.current_todo().unwrap().text, "Fix the bug");
}

fn bash(id: &str, command: &str) -> serde_json::Value {
    assistant(
        &format!("m-{id}"),
        "m",
        tokens(1, 1),
        json!([{"type": "tool_use", "id": id, "name": "Bash", "input": {"command": command}}]),
    )
}

fn bash_result(id: &str, is_error: bool, content: serde_json::Value) -> serde_json::Value {
    json!({"type": "user", "message": {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": id, "is_error": is_error, "content": content}]}})
}

#[test]
fn the_last_test_command_and_its_exit_code_are_kept_over_later_other_commands() {
    let mut live = Live::default();
    feed(
        &mut live,
        &[
            bash("t1", "cargo test --all"),
            bash_result("t1", true, json!("Exit code 101\nerror: test failed")),
        ],
        Duration::ZERO,
    );
    let last = live.last_test.clone().unwrap();
    assert_eq!(
        (last.command.as_str(), last.exit, last.failed),
        ("cargo test --all", Some(101), Some(true))
    );
    feed(
        &mut live,
        &[
            bash("t2", "ls src"),
            bash_result("t2", false, json!("main.rs")),
        ],
        Duration::ZERO,
    );
    assert_eq!(
        live.last_test.as_ref().unwrap().command,
        "cargo test --all",
        "a test run outranks ls"
    );
    feed(
        &mut live,
        &[
            bash("t3", "pytest -q"),
            bash_result("t3", false, json!([{"type": "text", "text": "3 passed"}])),
        ],
        Duration::ZERO,
    );
    let last = live.last_test.clone().unwrap();
    assert_eq!(
        (last.command.as_str(), last.exit, last.failed),
        ("pytest -q", Some(0), Some(false))
    );
}

#[test]
fn without_any_test_command_the_last_command_is_shown() {
    let mut live = Live::default();
    feed(
        &mut live,
        &[bash("a", "ls"), bash_result("a", false, json!("x"))],
        Duration::ZERO,
    );
    feed(
        &mut live,
        &[
            bash("b", "make build"),
            bash_result("b", true, json!("boom")),
        ],
        Duration::ZERO,
    );
    let last = live.last_test.unwrap();
    assert_eq!(
        (last.command.as_str(), last.exit, last.failed),
        ("make build", None, Some(true))
    );
}

#[test]
fn files_are_counted_once_each_and_kept_within_the_cap() {
    let mut live = Live::default();
    for i in 0..150 {
        let write = json!([{"type": "tool_use", "id": format!("w{i}"), "name": "Write", "input": {"file_path": format!("f{}.rs", i % 120)}}]);
        feed(
            &mut live,
            &[assistant(&format!("m{i}"), "m", tokens(0, 0), write)],
            Duration::ZERO,
        );
    }
    assert_eq!(live.files_changed, 120);
    assert_eq!(live.files().count(), MAX_ITEMS);
}

#[test]
fn log_lines_and_unknown_events_are_skipped() {
    let mut live = Live::default();
    let seen = live.observe(b"[info] starting up", Duration::ZERO);
    assert_eq!(seen, Observed::default());
    live.observe(br#"{"type": "stream_event", "event": {}}"#, Duration::ZERO);
    live.observe(b"   ", Duration::ZERO);
    assert_eq!(live.skipped_lines, 1);
    assert_eq!(live.turns(), 0);
}

fn budgets() -> Budgets {
    Budgets {
        cost_usd: 1.0,
        cost_named: "JOURNEYMAN_TASK_BUDGET_USD=$1.00".into(),
        max_turns: 3,
        stall: Duration::from_secs(600),
    }
}

#[test]
fn each_budget_is_crossed_with_its_figures() {
    let prices = Prices::parse("m=1/1").unwrap();
    let mut live = Live::default();
    assert_eq!(
        breach(&live, &prices, &budgets(), Duration::from_secs(599)),
        None
    );
    let stall = breach(&live, &prices, &budgets(), Duration::from_secs(600)).unwrap();
    assert_eq!(stall.label(), "stall");
    assert!(stall.to_string().contains("for 600s"), "{stall}");
    for i in 0..4 {
        feed(
            &mut live,
            &[assistant(&format!("t{i}"), "m", tokens(0, 0), json!([]))],
            Duration::ZERO,
        );
    }
    let turns = breach(&live, &prices, &budgets(), Duration::ZERO).unwrap();
    assert_eq!(turns, Breach::Turns { turns: 4, max: 3 });
    feed(
        &mut live,
        &[assistant("big", "m", tokens(600_000, 500_000), json!([]))],
        Duration::ZERO,
    );
    let cost = breach(&live, &prices, &budgets(), Duration::ZERO).unwrap();
    assert_eq!(cost.label(), "cost", "cost comes first");
    assert!(
        cost.to_string().contains("$1.1000 spent")
            && cost.to_string().contains("TASK_BUDGET_USD=$1.00"),
        "{cost}"
    );
}

#[test]
fn lines_are_split_across_chunks_and_an_overlong_line_is_cut() {
    let mut lines = Lines::new(8);
    let mut out = Vec::new();
    let mut each = |l: &[u8]| out.push(String::from_utf8_lossy(l).into_owned());
    lines.feed(b"ab", &mut each);
    lines.feed(b"c\n0123456789abcdef\nxy", &mut each);
    lines.finish(&mut each);
    assert_eq!(out, ["abc", "01234567", "xy"]);
}

proptest! {
    #[test]
    fn lines_do_not_depend_on_how_the_stream_is_chunked(
        text in "[a-z\n]{0,200}",
        cuts in proptest::collection::vec(0usize..200, 0..10),
    ) {
        let bytes = text.as_bytes();
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
        cuts.sort_unstable();
        let mut lines = Lines::new(1 << 10);
        let mut got = Vec::new();
        let mut each = |l: &[u8]| got.push(l.to_vec());
        let mut at = 0;
        for c in cuts.into_iter().chain([bytes.len()]) {
            lines.feed(&bytes[at..c], &mut each);
            at = c;
        }
        lines.finish(&mut each);
        let mut want: Vec<Vec<u8>> = text.split('\n').map(|l| l.as_bytes().to_vec()).collect();
        if want.last().is_some_and(Vec::is_empty) {
            want.pop();
        }
        prop_assert_eq!(got, want);
    }

    #[test]
    fn any_line_is_read_without_panicking_and_spend_never_goes_down(
        lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..20),
        usages in proptest::collection::vec((0u64..1_000_000, 0u64..1_000_000, 0usize..4), 0..20),
    ) {
        let mut live = Live::default();
        let prices = Prices::default();
        let mut last = 0.0;
        for l in &lines {
            live.observe(l, Duration::ZERO);
        }
        for (i, o, id) in usages {
            let event = assistant(&format!("m{id}"), "claude-sonnet", tokens(i, o), json!([]));
            live.observe(event.to_string().as_bytes(), Duration::ZERO);
            let now = live.cost_usd(&prices);
            prop_assert!(now >= last);
            last = now;
        }
    }
}
