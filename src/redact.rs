//! The redactor: every text that leaves the worker passes through one, so that no secret reaches the
//! board, a commit, a pushed file, a log line or a metric label, whatever the agent prints or writes.
//!
//! Built once at start-up from every secret value the worker knows (the model API key and the other
//! secret variables passed to the agent, the board token, the git token, the contents of `*_FILE`
//! secrets) plus well-known token shapes (Anthropic, OpenAI, GitHub, GitLab, AWS access keys, Slack,
//! JWTs, private key blocks, `Authorization:` headers). A known value is found anywhere in a text, and
//! so is a part of one that a line end cut off (at least [`MIN_PART`] characters of its start at the
//! end of a line, or of its end at the start of one). Each hit reads `[redacted: <kind>]`.
//!
//! Must never: print, log or store a secret value itself (its `Debug` shows kinds and lengths only),
//! or change text that holds no secret.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, OnceLock};

use regex::Regex;

/// The shortest part of a known value that is redacted on its own (a value cut at a line end).
pub const MIN_PART: usize = 8;

/// Known values shorter than this are not redacted: they would match ordinary words.
pub const MIN_SECRET: usize = 6;

/// One secret value the worker holds, and what to call it.
#[derive(Clone)]
struct Known {
    kind: String,
    value: String,
}

/// Redacts known secret values and token shapes. Cheap to clone.
#[derive(Clone, Default)]
pub struct Redactor {
    known: Arc<Vec<Known>>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kinds: Vec<String> = self
            .known
            .iter()
            .map(|k| format!("{} ({} chars)", k.kind, k.value.chars().count()))
            .collect();
        f.debug_struct("Redactor").field("known", &kinds).finish()
    }
}

/// A token shape: its kind and pattern.
struct Shape {
    kind: &'static str,
    re: Regex,
}

fn shapes() -> &'static [Shape] {
    static SHAPES: OnceLock<Vec<Shape>> = OnceLock::new();
    SHAPES.get_or_init(|| {
        [
            (
                "private key",
                r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?s:.*?)(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\z)",
            ),
            (
                "authorization header",
                r"(?i)\b(?:proxy-)?authorization\s*[:=]\s*(?:(?:basic|bearer|token|digest)\s+)?[^\s,;]+",
            ),
            ("Anthropic key", r"\bsk-ant-[A-Za-z0-9_\-]{16,}"),
            ("OpenAI key", r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}"),
            ("GitHub token", r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})"),
            ("GitLab token", r"\bgl(?:pat|dt|ptt|rt)-[A-Za-z0-9_\-]{20,}"),
            ("AWS access key", r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[A-Z0-9]{16}\b"),
            ("Slack token", r"\bxox[abposr]-[A-Za-z0-9\-]{10,}"),
            ("JWT", r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"),
        ]
        .into_iter()
        .map(|(kind, pattern)| Shape {
            kind,
            // The patterns are constants, tested below; a bad one is a bug caught by every test.
            re: Regex::new(pattern).expect("valid redaction pattern"),
        })
        .collect()
    })
}

fn mark(kind: &str) -> String {
    format!("[redacted: {kind}]")
}

/// The kinds of the marks in a redacted text.
fn marks(text: &str) -> impl Iterator<Item = &str> {
    text.split("[redacted: ")
        .skip(1)
        .filter_map(|rest| rest.split_once(']').map(|(kind, _)| kind))
}

/// The line where a multi-line secret of `kind` begins (private key blocks): 1 if unknown.
fn first_line_of(text: &str, kind: &str) -> usize {
    let needle = if kind == "private key" {
        "-----BEGIN"
    } else {
        ""
    };
    text.lines()
        .position(|l| !needle.is_empty() && l.contains(needle))
        .map_or(1, |i| i + 1)
}

impl Redactor {
    /// A redactor for the token shapes only.
    pub fn shapes_only() -> Redactor {
        Redactor::default()
    }

    /// Adds a known secret value (ignored when empty or shorter than [`MIN_SECRET`]; surrounding
    /// whitespace does not count). The longest values are matched first.
    pub fn with(mut self, kind: &str, value: &str) -> Redactor {
        let value = value.trim();
        if value.chars().count() < MIN_SECRET {
            return self;
        }
        let known = Arc::make_mut(&mut self.known);
        if !known.iter().any(|k| k.value == value) {
            known.push(Known {
                kind: kind.to_string(),
                value: value.to_string(),
            });
            known.sort_by_key(|k| std::cmp::Reverse(k.value.len()));
        }
        self
    }

    /// The text with every secret replaced; borrowed when there was none.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for k in self.known.iter() {
            if out.contains(k.value.as_str()) {
                out = Cow::Owned(out.replace(k.value.as_str(), &mark(&k.kind)));
            }
        }
        if let Some(cut) = self.parts(&out) {
            out = Cow::Owned(cut);
        }
        for shape in shapes() {
            if let Cow::Owned(s) = shape.re.replace_all(&out, mark(shape.kind).as_str()) {
                out = Cow::Owned(s);
            }
        }
        out
    }

    /// Where `text` holds secrets: each (1-based line, kind). A secret cut across lines is found on
    /// each of its lines.
    pub fn findings(&self, text: &str) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if let Cow::Owned(redacted) = self.redact(line) {
                for kind in marks(&redacted).filter(|k| !line.contains(&mark(k))) {
                    out.push((i + 1, kind.to_string()));
                }
            }
        }
        // A block over several lines (a private key) is found by its first line only when scanned
        // whole: scan the text once more and place such kinds on the line where they start.
        if let Cow::Owned(whole) = self.redact(text) {
            let seen: Vec<&str> = out.iter().map(|(_, k)| k.as_str()).collect();
            let missing: Vec<String> = marks(&whole)
                .filter(|k| !seen.contains(k) && !text.contains(&mark(k)))
                .map(String::from)
                .collect();
            out.extend(missing.into_iter().map(|k| (first_line_of(text, &k), k)));
        }
        out
    }

    /// The text with the cut-off parts of known values redacted, if it holds any: the last word of
    /// a line that ends with a value's first [`MIN_PART`]+ characters, or the first word of a line
    /// that begins with its last ones.
    fn parts(&self, text: &str) -> Option<String> {
        if self.known.is_empty() {
            return None;
        }
        let mut out = String::with_capacity(text.len());
        let mut changed = false;
        let mut rest = text;
        let mut line_start = true;
        while !rest.is_empty() {
            let word_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let (word, tail) = rest.split_at(word_end);
            let space_end = tail
                .find(|c: char| !c.is_whitespace())
                .unwrap_or(tail.len());
            let space = &tail[..space_end];
            let line_end = space.contains('\n') || space_end == tail.len();
            match self.cut_word(word, line_start, line_end) {
                Some(w) => {
                    out.push_str(&w);
                    changed = true;
                }
                None => out.push_str(word),
            }
            out.push_str(space);
            line_start = space.contains('\n');
            rest = &tail[space_end..];
        }
        changed.then_some(out)
    }

    fn cut_word(&self, word: &str, line_start: bool, line_end: bool) -> Option<String> {
        if word.len() < MIN_PART || !(line_start || line_end) {
            return None;
        }
        for k in self.known.iter() {
            // The line ends with the start of the value (it goes on after the line end).
            if line_end && let Some(i) = overlap_start(word, &k.value) {
                return Some(format!("{}{}", &word[..i], mark(&k.kind)));
            }
            // The line begins with the end of the value (it began before the line end).
            if line_start && let Some(i) = overlap_end(word, &k.value) {
                return Some(format!("{}{}", mark(&k.kind), &word[i..]));
            }
        }
        None
    }
}

/// The byte index in `word` where a suffix of it of at least [`MIN_PART`] characters begins that
/// is a proper prefix of `value`.
fn overlap_start(word: &str, value: &str) -> Option<usize> {
    word.char_indices().map(|(i, _)| i).find(|&i| {
        let suffix = &word[i..];
        suffix.chars().count() >= MIN_PART
            && suffix.len() < value.len()
            && value.starts_with(suffix)
    })
}

/// The byte index in `word` where a prefix of it of at least [`MIN_PART`] characters ends that is
/// a proper suffix of `value`.
fn overlap_end(word: &str, value: &str) -> Option<usize> {
    let ends: Vec<usize> = word
        .char_indices()
        .map(|(i, _)| i)
        .skip(1)
        .chain([word.len()])
        .collect();
    ends.into_iter().rev().find(|&i| {
        let prefix = &word[..i];
        prefix.chars().count() >= MIN_PART && prefix.len() < value.len() && value.ends_with(prefix)
    })
}

#[cfg(test)]
mod tests;
