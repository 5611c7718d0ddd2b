//! Git credentials: the only place that exposes the token or the SSH key path to libgit2.
//!
//! Credentials are handed to libgit2 through `RemoteCallbacks::credentials` for one operation at a
//! time. They are never written into `.git/config`, a remote URL, the agent's environment, a log
//! line or an error message. libgit2 calls the callback again after every rejected attempt, so
//! each kind of credential is offered once per operation and then we give up with a clear error.

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;

use git2::{Cred, CredentialType, RemoteCallbacks};
use secrecy::{ExposeSecret, SecretString};

use super::WorkspaceError;

/// The orchestrator's git credentials: an HTTPS token, an SSH private key file, or neither (for
/// public or local remotes).
#[derive(Debug, Clone, Default)]
pub struct GitAuth {
    token: Option<SecretString>,
    ssh_key: Option<PathBuf>,
}

impl GitAuth {
    pub fn new(token: Option<SecretString>, ssh_key: Option<PathBuf>) -> Self {
        GitAuth { token, ssh_key }
    }

    /// No credentials: only remotes that need none will work.
    pub fn none() -> Self {
        GitAuth::default()
    }

    /// Removes the token from text that may have come from libgit2 or a remote, in case a server
    /// ever echoes it back. Defence in depth: we never put the token anywhere it could be echoed.
    pub(crate) fn redact(&self, text: &str) -> String {
        match &self.token {
            Some(token) if !token.expose_secret().is_empty() => {
                text.replace(token.expose_secret(), "[redacted]")
            }
            _ => text.to_string(),
        }
    }

    /// Callbacks for one remote operation, recording in `attempts` what was offered.
    pub(crate) fn callbacks<'a>(&'a self, attempts: Rc<RefCell<Attempts>>) -> RemoteCallbacks<'a> {
        let mut callbacks = RemoteCallbacks::new();
        callbacks.credentials(move |_url, username_from_url, allowed| {
            let mut tried = attempts.borrow_mut();
            self.credential(&mut tried, username_from_url, allowed)
        });
        callbacks
    }

    fn credential(
        &self,
        tried: &mut Attempts,
        username_from_url: Option<&str>,
        allowed: CredentialType,
    ) -> Result<Cred, git2::Error> {
        if allowed.contains(CredentialType::SSH_KEY)
            && let Some(key) = &self.ssh_key
            && !tried.ssh_key
        {
            tried.ssh_key = true;
            return Cred::ssh_key(username_from_url.unwrap_or("git"), None, key, None);
        }
        if allowed.contains(CredentialType::USER_PASS_PLAINTEXT)
            && let Some(token) = &self.token
            && !tried.token
        {
            tried.token = true;
            return Cred::userpass_plaintext(
                username_from_url.unwrap_or("x-access-token"),
                token.expose_secret(),
            );
        }
        // SSH asks for the user name first when the URL carries none.
        if allowed.contains(CredentialType::USERNAME) && !tried.username {
            tried.username = true;
            return Cred::username(username_from_url.unwrap_or("git"));
        }
        let reason = if tried.ssh_key || tried.token {
            "the remote rejected the configured credentials (JOURNEYMAN_GIT_TOKEN or JOURNEYMAN_GIT_SSH_KEY)"
        } else {
            "the remote asks for credentials and none of a kind it accepts are configured \
             (set JOURNEYMAN_GIT_TOKEN for https or JOURNEYMAN_GIT_SSH_KEY for ssh)"
        };
        tried.failure = Some(reason);
        Err(git2::Error::from_str(reason))
    }

    /// Maps a failed clone, fetch or push to a typed error without the token in it.
    pub(crate) fn transport_error(
        &self,
        op: &'static str,
        url: &str,
        attempts: &Attempts,
        error: &git2::Error,
    ) -> WorkspaceError {
        let detail = self.redact(error.message());
        if let Some(reason) = attempts.failure {
            return WorkspaceError::Auth {
                url: url.to_string(),
                detail: reason.to_string(),
            };
        }
        match error.code() {
            git2::ErrorCode::Auth | git2::ErrorCode::Certificate => WorkspaceError::Auth {
                url: url.to_string(),
                detail,
            },
            _ => WorkspaceError::Network {
                op,
                url: url.to_string(),
                detail,
            },
        }
    }
}

/// What the credential callback has offered during one operation.
#[derive(Debug, Default)]
pub(crate) struct Attempts {
    ssh_key: bool,
    token: bool,
    username: bool,
    /// Set when we gave up: why.
    failure: Option<&'static str>,
}
