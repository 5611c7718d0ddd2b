//! Git workspaces: one cached clone per configured repository, a clean checkout of the work
//! package's branch before the agent runs, and the orchestrator's commit and push after it.
//!
//! Why this module exists: the agent never runs git. Everything that reads from or writes to a
//! remote happens here, done by the orchestrator with git2, so that what reaches the remote is
//! exactly what the orchestrator decided (one branch per work package, never the base branch,
//! author and committer from configuration).
//!
//! What it must never do:
//! - let git credentials leave this module: the token and SSH key are offered to libgit2 through a
//!   callback only (see `auth.rs`), never written to `.git/config`, a remote URL, the agent's
//!   environment, a log line or an error message;
//! - let one task's leftovers leak into the next: every [`Workspaces::prepare`] hard-resets the
//!   branch and removes untracked and ignored files;
//! - lose the orchestrator's own unpushed commits: a pod killed between commit and push finds them
//!   again on the next `prepare` and pushes them;
//! - name a directory after ticket text: cache directories are derived from configured URLs only.
//!
//! Everything here blocks (libgit2 does file and network I/O): call it from
//! `tokio::task::spawn_blocking`, for example through [`Workspaces::run`]. One pod owns its
//! workdir: two processes sharing a root would race on the same clones.

mod auth;
mod error;
mod kept;
mod naming;
mod prepare;
mod push;
mod scan;

use std::path::{Path, PathBuf};
use std::time::Duration;

use git2::{IndexAddOption, Oid, Repository, Signature};

use crate::config::Config;
use crate::redact::Redactor;

pub use auth::GitAuth;
pub use error::{ConflictEvidence, PushEvidence, SecretEvidence, SecretFinding, WorkspaceError};
pub use naming::branch_name;
pub use push::PushOutcome;

use push::{branch_head, remote_head};

/// Everything the remote has, as remote-tracking branches; refs deleted there are pruned here.
const FETCH_REFSPEC: &str = "+refs/heads/*:refs/remotes/origin/*";

/// The commit message of the starter flake.
pub const STARTER_FLAKE_MESSAGE: &str = "Add starter flake.nix for journeyman agents";

/// A minimal flake: an empty dev shell for every system nixpkgs exposes flakes for, so that
/// `nix develop --command ...` works in any repository. Projects replace it with their own.
pub const STARTER_FLAKE: &str = r#"{
  description = "Development shell for journeyman agents (a starter: add the tools this project needs)";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      forAllSystems = nixpkgs.lib.genAttrs nixpkgs.lib.systems.flakeExposed;
    in
    {
      devShells = forAllSystems (system: {
        default = nixpkgs.legacyPackages.${system}.mkShell {
          packages = [ ];
        };
      });
    };
}
"#;

/// Files larger than this are not committed by default (build outputs, dumps); see
/// [`Workspaces::with_max_file_bytes`].
pub const DEFAULT_MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;

/// Sets libgit2's process-wide network timeouts: for connecting, and for a server that stops
/// sending. Without them a hung git server blocks a task forever (a blocking thread cannot be
/// cancelled). Applies to http(s) and ssh remotes, not local ones.
///
/// # Safety
/// libgit2 keeps these in unsynchronized globals: call this once at start-up, before any thread
/// runs git operations (in `main`, before starting the runtime).
pub unsafe fn set_network_timeouts(connect: Duration, idle: Duration) {
    let millis = |d: Duration| i32::try_from(d.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: the caller guarantees no other thread uses libgit2 yet. Setting these options
    // cannot fail (git2 documents the Result as always Ok).
    unsafe {
        let _ = git2::opts::set_server_connect_timeout_in_milliseconds(millis(connect));
        let _ = git2::opts::set_server_timeout_in_milliseconds(millis(idle));
    }
}

/// The clone cache and the orchestrator's git identity. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Workspaces {
    root: PathBuf,
    auth: GitAuth,
    author_name: String,
    author_email: String,
    max_file_bytes: u64,
    /// Cleans commit messages and scans what is pushed.
    redactor: Redactor,
}

/// A prepared work branch in a cached clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    /// The working tree the agent runs in.
    pub path: PathBuf,
    pub repo_url: String,
    pub branch: String,
    pub base_branch: String,
    /// The commit the branch was at when prepared (hex): where the agent starts from.
    pub base_commit: String,
    /// Where that commit came from.
    pub start: BranchStart,
}

/// How [`Workspaces::prepare`] chose the branch's starting point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BranchStart {
    /// New branch from the remote base branch.
    Created,
    /// The branch exists on the remote: continued from there.
    Resumed,
    /// Local commits not yet pushed (a run killed between commit and push): kept.
    KeptUnpushed,
}

/// A commit made by [`Workspaces::commit_all`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The new commit (hex).
    pub commit: String,
    /// Files left out because they exceed the size limit, relative to the checkout.
    pub skipped_large: Vec<String>,
}

impl Workspaces {
    pub fn new(
        root: impl Into<PathBuf>,
        auth: GitAuth,
        author_name: impl Into<String>,
        author_email: impl Into<String>,
    ) -> Self {
        Workspaces {
            root: root.into(),
            auth,
            author_name: author_name.into(),
            author_email: author_email.into(),
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            redactor: Redactor::shapes_only(),
        }
    }

    /// Clones live under `<workdir>/repos`.
    pub fn from_config(config: &Config) -> Self {
        Workspaces::new(
            config.workdir.join("repos"),
            GitAuth::new(config.git_token.clone(), config.git_ssh_key.clone()),
            config.git_author_name.clone(),
            config.git_author_email.clone(),
        )
        .with_redactor(config.redactor())
    }

    /// The secrets that commit messages are cleaned of and pushes are scanned for.
    pub fn with_redactor(mut self, redactor: Redactor) -> Self {
        self.redactor = redactor;
        self
    }

    /// Files larger than `bytes` are left out of commits (and reported in [`Committed`]).
    pub fn with_max_file_bytes(mut self, bytes: u64) -> Self {
        self.max_file_bytes = bytes;
        self
    }

    /// Runs blocking workspace code on tokio's blocking pool.
    pub async fn run<T, F>(&self, f: F) -> Result<T, WorkspaceError>
    where
        F: FnOnce(&Workspaces) -> Result<T, WorkspaceError> + Send + 'static,
        T: Send + 'static,
    {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(&this))
            .await
            .map_err(|e| WorkspaceError::Git {
                context: "workspace task did not complete".into(),
                detail: e.to_string(),
            })?
    }

    /// Commits [`STARTER_FLAKE`] as `flake.nix` if the checkout has none. Returns the commit.
    pub fn ensure_flake(&self, co: &Checkout) -> Result<Option<String>, WorkspaceError> {
        let file = co.path.join("flake.nix");
        if file.symlink_metadata().is_ok() {
            return Ok(None);
        }
        let repo = self.open_checkout(co)?;
        std::fs::write(&file, STARTER_FLAKE)
            .map_err(|e| WorkspaceError::io(format!("write {}", file.display()), e))?;
        let mut index = repo.index().map_err(|e| git_error("open the index", &e))?;
        index
            .add_path(Path::new("flake.nix"))
            .map_err(|e| git_error("stage flake.nix", &e))?;
        let commit = self.commit_index(&repo, &mut index, STARTER_FLAKE_MESSAGE)?;
        tracing::info!(%commit, "committed a starter flake.nix");
        Ok(Some(commit.to_string()))
    }

    /// Stages everything in the working tree (additions, modifications, deletions; ignored files
    /// stay out, and so do files over the size limit) and commits it with `message`. `None` when
    /// nothing changed.
    pub fn commit_all(
        &self,
        co: &Checkout,
        message: &str,
    ) -> Result<Option<Committed>, WorkspaceError> {
        let repo = self.open_checkout(co)?;
        let mut index = repo.index().map_err(|e| git_error("open the index", &e))?;
        let mut skipped = Vec::new();
        let limit = self.max_file_bytes;
        let mut too_large = |path: &Path, _: &[u8]| -> i32 {
            match co.path.join(path).symlink_metadata() {
                Ok(meta) if meta.is_file() && meta.len() > limit => {
                    skipped.push(path.to_string_lossy().into_owned());
                    1 // skip
                }
                _ => 0, // add (or, for a deleted file, remove)
            }
        };
        index
            .add_all(["*"], IndexAddOption::DEFAULT, Some(&mut too_large))
            .map_err(|e| git_error("stage changes", &e))?;
        index
            .update_all(["*"], Some(&mut too_large))
            .map_err(|e| git_error("stage deletions", &e))?;
        skipped.sort();
        skipped.dedup();
        if !skipped.is_empty() {
            tracing::warn!(files = ?skipped, limit, "left files over the size limit out of the commit");
        }
        let tree = index
            .write_tree()
            .map_err(|e| git_error("write the tree", &e))?;
        let head_tree = head_commit(&repo)?.tree_id();
        if tree == head_tree {
            return Ok(None);
        }
        // The message holds the agent's summary: untrusted, and it must not carry a secret.
        let message = self.redactor.redact(message);
        let commit = self.commit_index(&repo, &mut index, &message)?;
        Ok(Some(Committed {
            commit: commit.to_string(),
            skipped_large: skipped,
        }))
    }

    /// Commits on the branch that the remote does not have yet (as of the last fetch), oldest
    /// first: compared with `origin/<branch>`, or with `origin/<base>` if the branch was never
    /// pushed. Each entry is (commit hex, message).
    pub fn unpushed_commits(&self, co: &Checkout) -> Result<Vec<(String, String)>, WorkspaceError> {
        let repo = self.open_checkout(co)?;
        let head = branch_head(&repo, &co.branch)?;
        let upstream = match remote_head(&repo, &co.branch)? {
            Some(oid) => Some(oid),
            None => remote_head(&repo, &co.base_branch)?,
        };
        let walk_err = |e: git2::Error| git_error("walk unpushed commits", &e);
        let mut walk = repo.revwalk().map_err(walk_err)?;
        walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::REVERSE)
            .map_err(walk_err)?;
        walk.push(head).map_err(walk_err)?;
        if let Some(upstream) = upstream {
            walk.hide(upstream).map_err(walk_err)?;
        }
        walk.map(|oid| {
            let oid = oid.map_err(walk_err)?;
            let commit = repo.find_commit(oid).map_err(walk_err)?;
            let message = commit.message().unwrap_or("").trim_end().to_string();
            Ok((oid.to_string(), message))
        })
        .collect()
    }

    /// Commits on the branch that the remote base branch does not have (pushed or not), oldest
    /// first. Used on resume to find work a killed run already committed.
    pub fn branch_commits(&self, co: &Checkout) -> Result<Vec<(String, String)>, WorkspaceError> {
        let repo = self.open_checkout(co)?;
        let head = branch_head(&repo, &co.branch)?;
        let walk_err = |e: git2::Error| git_error("walk branch commits", &e);
        let mut walk = repo.revwalk().map_err(walk_err)?;
        walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::REVERSE)
            .map_err(walk_err)?;
        walk.push(head).map_err(walk_err)?;
        if let Some(base) = remote_head(&repo, &co.base_branch)? {
            walk.hide(base).map_err(walk_err)?;
        }
        walk.map(|oid| {
            let oid = oid.map_err(walk_err)?;
            let commit = repo.find_commit(oid).map_err(walk_err)?;
            Ok((
                oid.to_string(),
                commit.message().unwrap_or("").trim_end().to_string(),
            ))
        })
        .collect()
    }

    fn signature(&self) -> Result<Signature<'static>, WorkspaceError> {
        Signature::now(&self.author_name, &self.author_email)
            .map_err(|e| git_error("build the commit signature", &e))
    }

    /// Writes `index` and commits its tree on HEAD (the checkout's branch).
    fn commit_index(
        &self,
        repo: &Repository,
        index: &mut git2::Index,
        message: &str,
    ) -> Result<Oid, WorkspaceError> {
        index
            .write()
            .map_err(|e| git_error("write the index", &e))?;
        let tree_id = index
            .write_tree()
            .map_err(|e| git_error("write the tree", &e))?;
        let tree = repo
            .find_tree(tree_id)
            .map_err(|e| git_error("read the tree", &e))?;
        let parent = head_commit(repo)?;
        let signature = self.signature()?;
        repo.commit(
            Some("HEAD"),
            &signature,
            &signature,
            message,
            &tree,
            &[&parent],
        )
        .map_err(|e| git_error("commit", &e))
    }

    /// Opens a prepared checkout and checks that HEAD is still its branch.
    fn open_checkout(&self, co: &Checkout) -> Result<Repository, WorkspaceError> {
        let repo = Repository::open(&co.path)
            .map_err(|e| git_error(&format!("open the checkout {}", co.path.display()), &e))?;
        let head = repo
            .head()
            .map_err(|e| git_error("read HEAD of the checkout", &e))?;
        if head.name().ok() != Some(local_ref(&co.branch).as_str()) {
            return Err(WorkspaceError::Git {
                context: format!("checkout {}", co.path.display()),
                detail: format!(
                    "HEAD is `{}`, not the work branch `{}`; prepare it again",
                    head.name().unwrap_or("?"),
                    co.branch
                ),
            });
        }
        drop(head);
        Ok(repo)
    }
}

fn head_commit(repo: &Repository) -> Result<git2::Commit<'_>, WorkspaceError> {
    repo.head()
        .and_then(|h| h.peel_to_commit())
        .map_err(|e| git_error("read the HEAD commit", &e))
}

fn local_ref(branch: &str) -> String {
    format!("refs/heads/{branch}")
}

fn remote_ref(branch: &str) -> String {
    format!("refs/remotes/origin/{branch}")
}

/// A local git failure. Local operations never see credentials, so the message is safe as is.
fn git_error(context: &str, error: &git2::Error) -> WorkspaceError {
    WorkspaceError::Git {
        context: context.to_string(),
        detail: error.message().to_string(),
    }
}
