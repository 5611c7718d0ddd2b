use super::*;

/// The real CLI's output, read at test time (not copied) so the test follows the checked sample.
fn real_sample() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/claude-code/result-2.1.330.json"
    );
    let fallback = "/work/shared/claude-code/result-2.1.330.json";
    std::fs::read_to_string(path)
        .or_else(|_| std::fs::read_to_string(fallback))
        .expect("the real result sample in shared/claude-code")
}

fn ok_exit() -> Exit {
    Exit {
        code: Some(0),
        signal: None,
    }
}

#[allow(clippy::result_large_err)]
fn judge_ok(stdout: &str) -> Result<AgentReport, AgentFailure> {
    judge(
        ok_exit(),
        stdout.as_bytes(),
        false,
        String::new(),
        String::new(),
    )
}

#[test]
fn real_sample_parses_every_field() {
    let r = parse(&real_sample()).unwrap();
    assert_eq!(
        r,
        AgentReport {
            session_id: Some("7f3337b9-902b-41d8-8e2f-160546d0592a".into()),
            num_turns: 2,
            input_tokens: 24,
            output_tokens: 14,
            cache_read_tokens: 0,
            cache_creation_tokens: 0,
            cost_usd: 0.000376,
            duration_ms: 212,
            subtype: "success".into(),
            is_error: false,
            result: "Done.".into(),
        }
    );
    assert!(judge_ok(&real_sample()).is_ok());
}

#[test]
fn the_real_clis_stream_ends_in_a_result_that_is_read() {
    let stream = include_str!("../live/stream-2.1.330.jsonl");
    let r = judge_ok(stream).unwrap();
    assert_eq!(
        r.session_id.as_deref(),
        Some("4c436429-25ab-4e5a-aafb-c4cf76e5d2a3")
    );
    assert_eq!((r.input_tokens, r.output_tokens), (24, 14));
    assert_eq!(r.cost_usd, 0.000376);
}

#[test]
fn the_real_clis_own_budget_stop_is_a_failure_that_says_so() {
    // `claude -p ... --output-format stream-json --verbose --max-budget-usd 0.0001`, offline.
    let stream = include_str!("../live/stream-budget-2.1.330.jsonl");
    let exit = Exit {
        code: Some(1),
        signal: None,
    };
    let f = judge(exit, stream.as_bytes(), false, String::new(), String::new()).unwrap_err();
    assert!(
        f.reason().contains(
            "stopped at its own cost budget (--max-budget-usd): Reached maximum budget ($0.0001)"
        ),
        "{}",
        f.reason()
    );
    assert!(
        f.report().is_some_and(|r| r.cost_usd > 0.0),
        "its spend is kept"
    );
}

#[test]
fn real_sample_after_log_lines_and_compacted_still_parses() {
    let compact: Value = serde_json::from_str(&real_sample()).unwrap();
    let text = format!(
        "Starting claude...\n{{\"type\":\"system\",\"subtype\":\"init\"}}\nwarning: {{not json\n{}\n",
        serde_json::to_string(&compact).unwrap()
    );
    assert_eq!(
        parse(&text).unwrap().session_id,
        parse(&real_sample()).unwrap().session_id
    );
    let text = format!("npm notice: update available\n{}", real_sample());
    assert_eq!(parse(&text).unwrap().num_turns, 2);
}

#[test]
fn the_last_result_object_wins() {
    let text = concat!(
        r#"{"type":"result","subtype":"success","num_turns":1,"session_id":"first"}"#,
        "\n",
        r#"{"type":"assistant"}"#,
        "\n",
        r#"{"type":"result","subtype":"success","num_turns":2,"session_id":"second"}"#,
        "\n",
        r#"{"type":"log","msg":"bye"}"#,
    );
    assert_eq!(parse(text).unwrap().session_id.as_deref(), Some("second"));
}

#[test]
fn older_cost_field_and_missing_optionals_are_tolerated() {
    let r = parse(r#"{"type":"result","subtype":"success","cost_usd":0.25}"#).unwrap();
    assert_eq!(r.cost_usd, 0.25);
    assert_eq!(r.session_id, None);
    assert_eq!((r.num_turns, r.input_tokens, r.duration_ms), (0, 0, 0));
    let r = parse(
        r#"{"type":"result","subtype":"success","total_cost_usd":1.5,"cost_usd":9,
            "usage":{"input_tokens":3.0,"output_tokens":"lots","cache_read_input_tokens":5,
            "cache_creation_input_tokens":6},"num_turns":-1,"future_field":{"x":[1]}}"#,
    )
    .unwrap();
    assert_eq!(r.cost_usd, 1.5);
    assert_eq!(
        (
            r.input_tokens,
            r.output_tokens,
            r.cache_read_tokens,
            r.cache_creation_tokens
        ),
        (3, 0, 5, 6)
    );
    assert_eq!(r.num_turns, 0);
}

#[test]
fn is_error_true_is_a_reported_failure_with_the_report() {
    let text = real_sample().replace("\"is_error\": false", "\"is_error\": true");
    assert_ne!(text, real_sample(), "sample layout changed; fix the test");
    let e = judge_ok(&text).unwrap_err();
    assert!(matches!(&e, AgentFailure::Reported { subtype, .. } if subtype == "success"));
    assert_eq!(e.report().unwrap().cost_usd, 0.000376);
    assert!(e.reason().contains("Done."), "{}", e.reason());
}

#[test]
fn error_subtypes_are_failures_named_in_the_reason() {
    let cases = [
        (
            r#"{"type":"result","subtype":"error_max_turns","is_error":true,"num_turns":50}"#,
            "turn limit after 50 turns",
        ),
        (
            r#"{"type":"result","subtype":"error_during_execution","is_error":true,"result":"boom\nmore"}"#,
            "during execution: boom",
        ),
        (
            r#"{"type":"result","subtype":"error_new_kind","is_error":false}"#,
            "unknown subtype `error_new_kind`",
        ),
    ];
    for (text, needle) in cases {
        let e = judge_ok(text).unwrap_err();
        assert!(
            e.reason().contains(needle),
            "`{}` lacks `{needle}`",
            e.reason()
        );
        assert!(!e.reason().contains('\n'));
        assert!(e.report().is_some());
    }
}

#[test]
fn nonzero_exit_fails_even_with_a_success_object_and_keeps_its_cost() {
    let exit = Exit {
        code: Some(1),
        signal: None,
    };
    let e = judge(
        exit,
        real_sample().as_bytes(),
        false,
        String::new(),
        "oops".into(),
    )
    .unwrap_err();
    assert!(matches!(e, AgentFailure::Exited { code: Some(1), .. }));
    assert_eq!(e.report().unwrap().cost_usd, 0.000376);
    let exit = Exit {
        code: None,
        signal: Some(9),
    };
    let e = judge(exit, b"", false, String::new(), String::new()).unwrap_err();
    assert!(e.reason().contains("signal 9"), "{}", e.reason());
    assert!(e.report().is_none());
}

#[test]
fn nonzero_exit_with_an_error_result_reports_the_result_and_the_code() {
    let exit = Exit {
        code: Some(1),
        signal: None,
    };
    let text = r#"{"type":"result","subtype":"error_max_turns","is_error":true,"num_turns":3}"#;
    let e = judge(exit, text.as_bytes(), false, String::new(), String::new()).unwrap_err();
    assert!(matches!(e, AgentFailure::Reported { .. }));
    assert_eq!(
        e.reason(),
        "the agent stopped at the turn limit after 3 turns (exit code 1)"
    );
}

#[test]
fn unparsable_output_says_why() {
    let cases: [(&str, &str); 6] = [
        ("", "stdout is empty"),
        ("  \n\t\n", "stdout is empty"),
        ("Error: something broke\n", "no JSON object"),
        (
            r#"{"type":"assistant","message":{}}"#,
            "1 other JSON values",
        ),
        (r#"{"type":"result","subtype":"succ"#, "EOF while parsing"),
        (r#"{"type":"result","is_error":false}"#, "no `subtype`"),
    ];
    for (text, needle) in cases {
        let e = judge_ok(text).unwrap_err();
        assert!(
            matches!(e, AgentFailure::Unparsable { .. }),
            "{text:?} gave {e:?}"
        );
        assert!(
            e.reason().contains(needle),
            "`{}` lacks `{needle}`",
            e.reason()
        );
    }
}

#[test]
fn truncated_real_sample_is_unparsable_and_says_it_was_cut() {
    let sample = real_sample();
    let cut = &sample[..sample.len() / 2];
    let e = judge(
        ok_exit(),
        cut.as_bytes(),
        true,
        String::new(),
        String::new(),
    )
    .unwrap_err();
    assert!(matches!(e, AgentFailure::Unparsable { .. }));
    assert!(e.reason().contains("EOF while parsing"), "{}", e.reason());
    assert!(e.reason().contains("capture limit"), "{}", e.reason());
}

#[test]
fn huge_output_parses_in_linear_time() {
    // 4 MB of stream-json noise and pretty-printed nesting before the result: must stay fast.
    let mut text = String::new();
    while text.len() < 4 << 20 {
        text.push_str("{\"type\":\"assistant\",\"message\":{\"content\":[1,2,3]}}\n");
        text.push_str("{\n  \"deep\": [\n{\"x\": 1},\n");
    }
    text.push('\n');
    text.push_str(&real_sample());
    let started = std::time::Instant::now();
    assert_eq!(parse(&text).unwrap().num_turns, 2);
    let big_result = format!(
        r#"{{"type":"result","subtype":"success","result":"{}"}}"#,
        "x".repeat(8 << 20)
    );
    assert_eq!(parse(&big_result).unwrap().result.len(), 8 << 20);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}
