//! The agent's environment: an allowlist, applied to a parent environment, with a denylist that wins,
//! and [`AgentEnv`], the parent environment the worker captured for its agent at start-up.
//!
//! Why this file exists: the agent runs model-written shell commands. Whatever is in its environment
//! can end up in a commit, a log or a web request, so it gets only what it needs to work (a `PATH`, a
//! `HOME`, the model API key, Nix's variables) and never the worker's own secrets. The policy is a
//! pure function so it can be tested exhaustively; `process.rs` applies it after `env_clear()`.
//! Nothing here reads the process environment: configuration captures the variables that may pass
//! ([`AgentEnv::capture`], in `Config::from_vars`), and the runner filters them again at each run.
//!
//! What it must never do: let a `JOURNEYMAN_*` variable, the board token or a git credential through,
//! whatever the operator lists in `JOURNEYMAN_AGENT_ENV` (configuration rejects such names with a
//! clear error; this filter drops them again so that no other caller can get it wrong).

use std::ffi::{OsStr, OsString};
use std::fmt;

/// Variables passed by name.
const ALLOWED: &[&str] = &[
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "TERM",
    "USER",
    "TMPDIR",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_MODEL",
    "DISABLE_TELEMETRY",
    "DISABLE_AUTOUPDATER",
];

/// Variables passed by prefix: Claude Code's own settings, Nix (`nix develop` needs `NIX_PATH`,
/// `NIX_SSL_CERT_FILE`, `NIX_REMOTE`, ...) and the XDG base directories.
const ALLOWED_PREFIXES: &[&str] = &["CLAUDE_CODE_", "NIX_", "XDG_"];

/// Model credentials: the only secret-looking names that may pass (and only when allowed).
pub const MODEL_CREDENTIALS: &[&str] = &[
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "CLAUDE_CODE_OAUTH_TOKEN",
];

/// Prefixes that never pass: the worker's own configuration (board token, git token) and git's and
/// ssh's credential plumbing (`GIT_ASKPASS`, `GIT_SSH_COMMAND`, `GIT_CONFIG_*`, `SSH_AUTH_SOCK`).
const NEVER_PREFIXES: &[&str] = &["JOURNEYMAN_", "GIT_", "SSH_", "OPENPROJECT_"];

/// Substrings that mark a credential (`GITHUB_TOKEN`, `GH_TOKEN`, `AWS_SECRET_ACCESS_KEY`, ...).
const NEVER_SUBSTRINGS: &[&str] = &[
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "ASKPASS",
    "CREDENTIAL",
];

/// True if `name` must never reach the agent, even when an operator lists it.
pub fn is_never_passed(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    if MODEL_CREDENTIALS.contains(&upper.as_str()) {
        return false;
    }
    NEVER_PREFIXES.iter().any(|p| upper.starts_with(p))
        || NEVER_SUBSTRINGS.iter().any(|s| upper.contains(s))
}

/// True if `name` is on the built-in allowlist.
pub fn is_allowed_by_default(name: &str) -> bool {
    ALLOWED.contains(&name) || ALLOWED_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// A plausible environment variable name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// True if a variable of this name may reach the agent: on the built-in allowlist or listed in
/// `extra`, and not denied. (Its value may still keep it out: see [`agent_env`].)
pub fn may_pass(name: &str, extra: &[String]) -> bool {
    !is_never_passed(name) && (is_allowed_by_default(name) || extra.iter().any(|e| e == name))
}

/// The variables the agent is started from, captured once from the worker's environment.
///
/// [`capture`](Self::capture) keeps only the variables whose names may pass, so this holds every
/// value of the worker's environment that can reach the agent (the model API key among them) and
/// nothing else the worker holds. Whatever it holds, the runner filters it through [`agent_env`] at
/// each run. Its `Debug` shows names only, never values.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AgentEnv {
    vars: Vec<(OsString, OsString)>,
}

impl AgentEnv {
    /// The variables of `parent` whose names [`may_pass`] (with `extra`), in the parent's order.
    pub fn capture<I, K, V>(parent: I, extra: &[String]) -> AgentEnv
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<OsString>,
        V: Into<OsString>,
    {
        parent
            .into_iter()
            .map(|(name, value)| (name.into(), value.into()))
            .filter(|(name, _)| name.to_str().is_some_and(|n| may_pass(n, extra)))
            .collect()
    }

    /// Every variable held, name and value, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&OsStr, &OsStr)> {
        self.vars
            .iter()
            .map(|(k, v)| (k.as_os_str(), v.as_os_str()))
    }

    /// The value of `name`, if held.
    pub fn get(&self, name: &str) -> Option<&OsStr> {
        self.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
    }
}

/// Holds the variables as given, unfiltered (tests inject a parent environment this way).
impl FromIterator<(OsString, OsString)> for AgentEnv {
    fn from_iter<I: IntoIterator<Item = (OsString, OsString)>>(vars: I) -> Self {
        AgentEnv {
            vars: vars.into_iter().collect(),
        }
    }
}

impl fmt::Debug for AgentEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.vars.iter().map(|(k, _)| k))
            .finish()
    }
}

/// The agent's environment: the variables of `parent` that are allowed (by default or because they
/// are in `extra`) and not denied, in the parent's order.
pub fn agent_env<I>(parent: I, extra: &[String]) -> Vec<(OsString, OsString)>
where
    I: IntoIterator<Item = (OsString, OsString)>,
{
    parent
        .into_iter()
        .filter(|(name, value)| passes(name, value, extra))
        .collect()
}

fn passes(name: &OsStr, value: &OsStr, extra: &[String]) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    if !may_pass(name, extra) {
        return false;
    }
    // `NIX_CONFIG` may carry `access-tokens = github.com=...` for private flake inputs.
    if name == "NIX_CONFIG" && value.to_string_lossy().contains("access-tokens") {
        tracing::warn!("NIX_CONFIG carries access-tokens; not passed to the agent");
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(parent: &[(&str, &str)], extra: &[&str]) -> Vec<String> {
        let parent = parent
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        agent_env(parent, &extra)
            .into_iter()
            .map(|(k, _)| k.into_string().unwrap())
            .collect()
    }

    #[test]
    fn allowlist_passes_only_what_the_agent_needs() {
        let parent = [
            ("PATH", "/bin"),
            ("HOME", "/home/a"),
            ("ANTHROPIC_API_KEY", "k"),
            ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),
            ("NIX_PATH", "nixpkgs=x"),
            ("XDG_CACHE_HOME", "/c"),
            ("EDITOR", "vi"),
            ("RUST_LOG", "debug"),
            ("KUBERNETES_SERVICE_HOST", "10.0.0.1"),
        ];
        assert_eq!(
            names(&parent, &[]),
            [
                "PATH",
                "HOME",
                "ANTHROPIC_API_KEY",
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC",
                "NIX_PATH",
                "XDG_CACHE_HOME"
            ]
        );
        assert_eq!(names(&parent, &["RUST_LOG"]).last().unwrap(), "RUST_LOG");
    }

    #[test]
    fn credentials_never_pass_even_when_listed() {
        let secrets = [
            ("JOURNEYMAN_OPENPROJECT_TOKEN", "board"),
            ("JOURNEYMAN_GIT_TOKEN", "git"),
            ("JOURNEYMAN_POD_NAME", "pod-0"),
            ("GIT_ASKPASS", "/bin/askpass"),
            ("GIT_SSH_COMMAND", "ssh -i key"),
            ("GITHUB_TOKEN", "ghp"),
            ("GH_TOKEN", "ghp"),
            ("SSH_AUTH_SOCK", "/tmp/agent"),
            ("AWS_SECRET_ACCESS_KEY", "aws"),
            ("CLAUDE_CODE_FAKE_PASSWORD", "x"),
        ];
        let listed: Vec<&str> = secrets.iter().map(|(k, _)| *k).collect();
        assert_eq!(names(&secrets, &listed), Vec::<String>::new());
    }

    #[test]
    fn model_credentials_pass_when_allowed() {
        let parent = [
            ("ANTHROPIC_AUTH_TOKEN", "t"),
            ("CLAUDE_CODE_OAUTH_TOKEN", "o"),
        ];
        assert_eq!(names(&parent, &[]), ["CLAUDE_CODE_OAUTH_TOKEN"]);
        assert_eq!(
            names(&parent, &["ANTHROPIC_AUTH_TOKEN"]),
            ["ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN"]
        );
    }

    #[test]
    fn nix_config_with_access_tokens_is_dropped() {
        let parent = [("NIX_CONFIG", "access-tokens = github.com=ghp_x")];
        assert!(names(&parent, &[]).is_empty());
        let parent = [("NIX_CONFIG", "experimental-features = nix-command flakes")];
        assert_eq!(names(&parent, &[]), ["NIX_CONFIG"]);
    }

    #[test]
    fn capture_keeps_what_may_pass_and_debug_shows_no_values() {
        let parent = [
            ("PATH", "/bin"),
            ("ANTHROPIC_API_KEY", "sk-model-key"),
            ("RUST_LOG", "debug"),
            ("EDITOR", "vi"),
            ("JOURNEYMAN_OPENPROJECT_TOKEN", "board"),
            ("GITHUB_TOKEN", "ghp"),
        ];
        let extra = ["RUST_LOG".to_string(), "GITHUB_TOKEN".to_string()];
        let env = AgentEnv::capture(parent, &extra);
        let held: Vec<_> = env.iter().map(|(k, _)| k.to_str().unwrap()).collect();
        assert_eq!(held, ["PATH", "ANTHROPIC_API_KEY", "RUST_LOG"]);
        assert_eq!(env.get("PATH"), Some(OsStr::new("/bin")));
        assert_eq!(env.get("EDITOR"), None);
        let debug = format!("{env:?}");
        assert!(debug.contains("ANTHROPIC_API_KEY"), "{debug}");
        assert!(
            !debug.contains("sk-model-key"),
            "Debug must not print values: {debug}"
        );
    }

    #[test]
    fn names_are_checked() {
        assert!(is_valid_name("RUST_LOG"));
        assert!(is_valid_name("_X1"));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("1X"));
        assert!(!is_valid_name("A-B"));
        assert!(!is_valid_name("A=B"));
    }
}
