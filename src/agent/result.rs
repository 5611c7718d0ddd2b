//! Reading the agent's verdict: the CLI's stdout and exit status in, a report or a failure out.
//!
//! Why this file exists: `claude -p --output-format json` ends with one JSON object of
//! `"type": "result"` (session id, turns, tokens, cost, the error flag). Everything the worker does
//! next (push or escalate, spend the budget) hangs on reading it right, and its shape changes
//! between releases, so the reading is pure, lenient and tested against a real sample
//! (`shared/claude-code/result-2.1.330.json`).
//!
//! What it must never do: call a run a success without a result object whose `subtype` is
//! `success` and whose `is_error` is not true, or drop the cost of a failed run that reported one.

use serde_json::Value;

use super::failure::AgentFailure;
use super::report::{AgentReport, Exit};

/// Why stdout holds no usable result object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("stdout is empty")]
    Empty,
    #[error(
        "no JSON object with \"type\": \"result\" in {bytes} bytes of stdout ({values} other JSON values){}",
        last_error.as_ref().map(|e| format!("; last parse error: {e}")).unwrap_or_default()
    )]
    NoResult {
        bytes: usize,
        values: usize,
        last_error: Option<String>,
    },
    #[error("the result object has no `subtype`")]
    NoSubtype,
}

/// The report in the LAST JSON object of `"type": "result"` in `stdout`. Leading and trailing log
/// lines and other JSON values (stream-json events) are skipped; unknown fields are ignored and
/// missing optional ones read as zero or empty.
pub fn parse(stdout: &str) -> Result<AgentReport, ParseError> {
    if stdout.trim().is_empty() {
        return Err(ParseError::Empty);
    }
    let object = find_last_result(stdout)?;
    report_from(&object)
}

/// The verdict on a finished process: its exit, its stdout (as much as was kept) and whether stdout
/// was cut. A result object is read even after a non-zero exit so that the cost is never lost.
// A run ends once; the size of the error does not matter here.
#[allow(clippy::result_large_err)]
pub fn judge(
    exit: Exit,
    stdout: &[u8],
    stdout_truncated: bool,
    stdout_tail: String,
    stderr_tail: String,
) -> Result<AgentReport, AgentFailure> {
    let text = String::from_utf8_lossy(stdout);
    let parsed = parse(&text);
    if !exit.success() {
        // The CLI exits non-zero after printing an error result: its message says more than the code.
        if let Some(report) = parsed.as_ref().ok().filter(|r| is_failure(r)) {
            let code = exit.code.map_or("none".to_string(), |c| c.to_string());
            return Err(AgentFailure::Reported {
                subtype: report.subtype.clone(),
                message: format!("{} (exit code {code})", failure_message(report)),
                report: report.clone(),
            });
        }
        return Err(AgentFailure::Exited {
            code: exit.code,
            signal: exit.signal,
            stderr_tail,
            report: parsed.ok(),
        });
    }
    let report = match parsed {
        Ok(report) => report,
        Err(e) => {
            let mut reason = e.to_string();
            if stdout_truncated {
                reason.push_str(" (stdout exceeded the capture limit and was cut)");
            }
            return Err(AgentFailure::Unparsable {
                reason,
                stdout_tail,
                stderr_tail,
            });
        }
    };
    if is_failure(&report) {
        let message = failure_message(&report);
        return Err(AgentFailure::Reported {
            subtype: report.subtype.clone(),
            message,
            report,
        });
    }
    Ok(report)
}

fn is_failure(report: &AgentReport) -> bool {
    report.is_error || report.subtype != "success"
}

/// One line saying why a reported run failed.
fn failure_message(report: &AgentReport) -> String {
    let detail = first_line(&report.result);
    match report.subtype.as_str() {
        "success" => format!("the agent reported an error: {detail}"),
        "error_max_turns" => format!(
            "the agent stopped at the turn limit after {} turns",
            report.num_turns
        ),
        "error_during_execution" => format!("the agent failed during execution: {detail}"),
        "error_max_budget_usd" => {
            format!("the agent stopped at its own cost budget (--max-budget-usd): {detail}")
        }
        other => format!("the agent ended with unknown subtype `{other}`: {detail}"),
    }
}

fn first_line(text: &str) -> String {
    const MAX: usize = 200;
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    if line.is_empty() {
        return "(no message)".into();
    }
    match line.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line.to_string(),
    }
}

/// Scans from the end: candidate starts are line starts beginning with `{` (a pretty-printed object
/// indents its inner lines, a stream-json line is one object), plus the first non-blank character.
/// The first candidate from the end whose JSON stream holds a result object wins. Usually that is
/// the very last candidate, so the cost is one parse of the result object.
///
/// Each candidate's stream is read up to the next candidate only, so every byte is parsed once:
/// linear time for any stdout (megabytes of stream-json events and no result object, as a killed
/// run leaves; or unclosed objects on every line, which would otherwise each be read on to
/// serde_json's recursion limit). The price: a JSON value that goes on past a line beginning with
/// `{` is not read, and no JSON printer writes one (nested lines are indented).
fn find_last_result(text: &str) -> Result<Value, ParseError> {
    let first = text.len() - text.trim_start().len();
    let mut starts: Vec<usize> = text
        .match_indices('\n')
        .map(|(i, _)| i + 1)
        .filter(|&i| text[i..].starts_with('{'))
        .collect();
    if !starts.contains(&first) {
        starts.insert(0, first);
    }
    let mut values = 0;
    let mut last_error = None;
    for (i, &start) in starts.iter().enumerate().rev() {
        let end = starts.get(i + 1).copied().unwrap_or(text.len());
        let mut found = None;
        let stream = serde_json::Deserializer::from_str(&text[start..end]).into_iter::<Value>();
        for value in stream {
            match value {
                Ok(v) if v.get("type").and_then(Value::as_str) == Some("result") => found = Some(v),
                Ok(_) => values += 1,
                Err(e) => {
                    // Scanning backwards, the first error seen is the one nearest the end: for a
                    // result object cut short, that is the one that explains it.
                    last_error.get_or_insert_with(|| e.to_string());
                    break;
                }
            }
        }
        if let Some(v) = found {
            return Ok(v);
        }
    }
    Err(ParseError::NoResult {
        bytes: text.len(),
        values,
        last_error,
    })
}

fn report_from(v: &Value) -> Result<AgentReport, ParseError> {
    let subtype = v
        .get("subtype")
        .and_then(Value::as_str)
        .ok_or(ParseError::NoSubtype)?
        .to_string();
    let usage = v.get("usage").cloned().unwrap_or(Value::Null);
    let cost = ["total_cost_usd", "cost_usd"]
        .iter()
        .find_map(|k| v.get(k).and_then(Value::as_f64))
        .filter(|c| c.is_finite() && *c >= 0.0)
        .unwrap_or(0.0);
    Ok(AgentReport {
        session_id: v
            .get("session_id")
            .and_then(Value::as_str)
            .map(String::from),
        num_turns: u32::try_from(count(v, "num_turns")).unwrap_or(u32::MAX),
        input_tokens: count(&usage, "input_tokens"),
        output_tokens: count(&usage, "output_tokens"),
        cache_read_tokens: count(&usage, "cache_read_input_tokens"),
        cache_creation_tokens: count(&usage, "cache_creation_input_tokens"),
        cost_usd: cost,
        duration_ms: count(v, "duration_ms"),
        is_error: v.get("is_error").and_then(Value::as_bool).unwrap_or(false),
        // A run the CLI ended itself (its budget, its turn cap) may say why in `errors` instead.
        result: v
            .get("result")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty())
            .map(String::from)
            .or_else(|| {
                let errors = v.get("errors")?.as_array()?;
                let lines: Vec<&str> = errors.iter().filter_map(Value::as_str).collect();
                (!lines.is_empty()).then(|| lines.join("\n"))
            })
            .unwrap_or_default(),
        subtype,
    })
}

/// A non-negative whole number, also when written as a float (`12.0`); 0 when absent or wrong.
fn count(v: &Value, key: &str) -> u64 {
    match v.get(key) {
        Some(n) => n
            .as_u64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite() && *f >= 0.0)
                    .map(|f| f as u64)
            })
            .unwrap_or(0),
        None => 0,
    }
}

#[cfg(test)]
mod tests;
