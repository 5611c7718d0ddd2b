//! Every secret value the worker holds, and the one [`Redactor`] built from them at start-up.
//!
//! The board token, the git token (both also from `*_FILE`), the SSH key's contents, the model
//! credentials and the variables of `JOURNEYMAN_AGENT_SECRET_ENV` given to the agent, and the access
//! tokens a `NIX_CONFIG` may carry. Every text the worker writes (comments, Spikes, commit messages,
//! log lines, metric labels) goes through the redactor; every push is scanned for the same values.
//!
//! What it must never do: print a value (this module hands them to the redactor and nowhere else).

use secrecy::ExposeSecret;

use super::Config;
use crate::agent::env::MODEL_CREDENTIALS;
use crate::redact::Redactor;

impl Config {
    /// The kind and value of every secret the worker knows.
    pub fn secrets(&self) -> Vec<(String, String)> {
        let mut out = vec![(
            "board token".to_string(),
            self.openproject_token.expose_secret().to_string(),
        )];
        if let Some(t) = &self.git_token {
            out.push(("git token".into(), t.expose_secret().to_string()));
        }
        if let Some(key) = self
            .git_ssh_key
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
        {
            out.push(("SSH key".into(), key));
        }
        for (name, value) in self.agent.env.iter() {
            let name = name.to_string_lossy();
            let value = value.to_string_lossy();
            if MODEL_CREDENTIALS.contains(&name.as_ref()) {
                out.push(("model API key".into(), value.into_owned()));
            } else if self.agent.secret_env.iter().any(|s| *s == name) {
                out.push((name.into_owned(), value.into_owned()));
            } else if name == "NIX_CONFIG" {
                out.extend(nix_access_tokens(&value).map(|t| ("Nix access token".into(), t)));
            }
        }
        out
    }

    /// The redactor for everything this worker writes.
    pub fn redactor(&self) -> Redactor {
        self.secrets()
            .iter()
            .fold(Redactor::shapes_only(), |r, (kind, value)| {
                r.with(kind, value)
            })
    }
}

/// The tokens of `access-tokens = host=TOKEN host2=TOKEN2` lines in a `NIX_CONFIG`.
fn nix_access_tokens(config: &str) -> impl Iterator<Item = String> + '_ {
    config
        .lines()
        .filter_map(|l| l.trim().strip_prefix("access-tokens"))
        .filter_map(|rest| rest.trim_start().strip_prefix('='))
        .flat_map(str::split_whitespace)
        .filter_map(|pair| pair.split_once('=').map(|(_, t)| t.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nix_access_tokens_are_read_from_their_line() {
        let cfg = "experimental-features = flakes\naccess-tokens = github.com=ghp_x1 gitlab.com=glpat-y2\n";
        assert_eq!(
            nix_access_tokens(cfg).collect::<Vec<_>>(),
            ["ghp_x1", "glpat-y2"]
        );
    }
}
