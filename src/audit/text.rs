//! The text rules every worker comment follows: its prefix, and free text as one bounded line.

/// Every comment of the worker starts with this.
pub const PREFIX: &str = "journeyman: ";

/// The longest reason kept in an event (longer ones are cut and marked with `...`).
pub const REASON_CHARS: usize = 300;

/// One bounded line: the first line of `text`, tabs and carriage returns as spaces, at most
/// [`REASON_CHARS`] characters (then `...`).
pub fn one_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("").replace(['\r', '\t'], " ");
    truncate(&line, REASON_CHARS)
}

/// At most `max` characters, then `...`.
pub fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}
