//! The one error type of the workspace: typed where the caller branches (escalate as an
//! environment problem, or report a conflict with evidence on the ticket).
//!
//! Every message built here has already been through [`super::auth::GitAuth::redact`]: no variant
//! can carry a credential.

use std::fmt;

/// What went wrong with a git workspace. [`WorkspaceError::is_environment`] separates failures of
/// the pod's surroundings (credentials, network, configuration, disk) from conflicts with other
/// people's work on the branch, which need a human decision about the work itself.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// The remote refused our credentials, or none were configured for it.
    #[error("git authentication for {url} failed: {detail}")]
    Auth { url: String, detail: String },

    /// Clone, fetch or push could not talk to the remote (unreachable, not a repository, ...).
    #[error("cannot {op} {url}: {detail}")]
    Network {
        op: &'static str,
        url: String,
        detail: String,
    },

    /// The configured base branch does not exist on the remote.
    #[error(
        "base branch `{branch}` does not exist on {url}: create it there or fix the branch in JOURNEYMAN_REPOS"
    )]
    BaseBranchMissing { url: String, branch: String },

    /// The work branch name is not a valid git branch, or is the base branch itself.
    #[error("`{branch}` cannot be used as a work branch: {reason}")]
    InvalidBranch {
        branch: String,
        reason: &'static str,
    },

    /// The remote refused the push, even after one fetch-and-rebase when that applied.
    #[error("{0}")]
    PushRejected(Box<PushEvidence>),

    /// Our commits do not rebase cleanly onto what someone else pushed to the branch.
    #[error("{0}")]
    RebaseConflict(Box<ConflictEvidence>),

    /// The commits to push hold a secret: nothing was pushed, they are kept in quarantine.
    #[error("{0}")]
    SecretFound(Box<SecretEvidence>),

    /// A local file operation failed.
    #[error("{context}: {error}")]
    Io {
        context: String,
        error: std::io::Error,
    },

    /// A local git operation failed (corrupt object, locked index, ...).
    #[error("{context}: {detail}")]
    Git { context: String, detail: String },
}

impl WorkspaceError {
    /// True for failures that are not about the work on the branch: credentials, network,
    /// configuration (missing base branch, bad branch name), local disk or repository state. The
    /// caller escalates these as an operator problem rather than as a failed attempt at the ticket.
    /// A rejected push or a rebase conflict is about the branch's content: false.
    pub fn is_environment(&self) -> bool {
        !matches!(
            self,
            WorkspaceError::PushRejected(_)
                | WorkspaceError::RebaseConflict(_)
                | WorkspaceError::SecretFound(_)
        )
    }

    pub(crate) fn io(context: impl Into<String>, error: std::io::Error) -> Self {
        WorkspaceError::Io {
            context: context.into(),
            error,
        }
    }
}

/// Why a push was refused, with the heads a human needs to sort it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushEvidence {
    pub url: String,
    pub branch: String,
    /// The remote branch head as last fetched (None if the branch does not exist there).
    pub remote_head: Option<String>,
    /// Our local branch head, unchanged by the failed push.
    pub our_head: String,
    /// The head we tried to push after rebasing, if a rebase happened.
    pub rebased_head: Option<String>,
    /// The remote's or libgit2's reason.
    pub reason: String,
}

impl fmt::Display for PushEvidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "push of `{}` to {} rejected: {} (our head {}, remote head {}",
            self.branch,
            self.url,
            self.reason,
            self.our_head,
            self.remote_head.as_deref().unwrap_or("absent"),
        )?;
        if let Some(rebased) = &self.rebased_head {
            write!(f, ", rebased head {rebased}")?;
        }
        write!(f, ")")
    }
}

/// A rebase of our commits onto the remote branch that stopped on conflicts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConflictEvidence {
    pub url: String,
    pub branch: String,
    /// The remote branch head we tried to rebase onto.
    pub remote_head: String,
    /// Our local branch head, left as it was.
    pub our_head: String,
    /// The commit of ours that did not apply.
    pub conflicting_commit: String,
    /// Paths with conflicts, sorted.
    pub paths: Vec<String>,
}

impl fmt::Display for ConflictEvidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "someone else pushed to `{}` on {} and our commit {} conflicts with theirs in {} \
             (our head {}, remote head {}); the local branch is unchanged",
            self.branch,
            self.url,
            self.conflicting_commit,
            self.paths.join(", "),
            self.our_head,
            self.remote_head,
        )
    }
}

/// Where the scan before a push found secrets (never the values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretEvidence {
    pub branch: String,
    /// Our head, which was not pushed.
    pub commit: String,
    /// The ref on this pod that keeps the commits for inspection.
    pub quarantine: String,
    pub findings: Vec<SecretFinding>,
}

/// One secret in the content to push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretFinding {
    /// The file (relative to the repository), or `commit message of <id>`.
    pub file: String,
    /// 1-based.
    pub line: usize,
    pub kind: String,
}

impl fmt::Display for SecretEvidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let places: Vec<String> = self
            .findings
            .iter()
            .take(10)
            .map(|s| format!("{} line {} ({})", s.file, s.line, s.kind))
            .collect();
        write!(
            f,
            "the commits to push on `{}` hold {} secret(s): {}{}; nothing was pushed, the commits are kept on this pod as `{}` for a human to inspect",
            self.branch,
            self.findings.len(),
            places.join(", "),
            if self.findings.len() > 10 {
                ", ..."
            } else {
                ""
            },
            self.quarantine
        )
    }
}
