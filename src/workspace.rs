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
mod naming;
mod push;

use std::path::{Path, PathBuf};

use git2::build::CheckoutBuilder;
use git2::{
    AutotagOption, ErrorCode, FetchOptions, FetchPrune, IndexAddOption, Oid, Repository, ResetType,
    Signature, Status, StatusOptions,
};

use crate::config::{Config, RepoMapping};

pub use auth::GitAuth;
pub use error::{ConflictEvidence, PushEvidence, WorkspaceError};
pub use naming::branch_name;
pub use push::PushOutcome;

use auth::Attempts;
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

/// The clone cache and the orchestrator's git identity. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Workspaces {
    root: PathBuf,
    auth: GitAuth,
    author_name: String,
    author_email: String,
    max_file_bytes: u64,
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

    /// The cache directory of a repository URL.
    pub fn clone_path(&self, url: &str) -> PathBuf {
        self.root.join(naming::cache_dir_name(url))
    }

    /// Gets the repository's cached clone up to date and checks out `branch`, clean:
    /// 1. clone once (again if the cache is empty or broken), then fetch with prune;
    /// 2. start the branch from `origin/<branch>` if it exists (keeping local commits strictly
    ///    ahead of it), else from a local branch with unpushed work, else from `origin/<base>`;
    /// 3. hard-reset and remove untracked and ignored files.
    #[tracing::instrument(skip_all, fields(url = %repo.url, branch))]
    pub fn prepare(&self, repo: &RepoMapping, branch: &str) -> Result<Checkout, WorkspaceError> {
        validate_branch(branch, &repo.base_branch)?;
        let path = self.clone_path(&repo.url);
        let git = self.open_or_clone(&repo.url, &path)?;
        self.fetch(&git, &repo.url)?;
        let base = remote_head(&git, &repo.base_branch)?.ok_or_else(|| {
            WorkspaceError::BaseBranchMissing {
                url: repo.url.clone(),
                branch: repo.base_branch.clone(),
            }
        })?;
        let (start_at, start) = choose_start(&git, branch, base)?;
        git.reference(&local_ref(branch), start_at, true, "journeyman: prepare")
            .map_err(|e| git_error(&format!("set branch `{branch}`"), &e))?;
        clean_checkout(&git, branch, start_at)?;
        tracing::info!(commit = %start_at, ?start, "workspace prepared");
        Ok(Checkout {
            path,
            repo_url: repo.url.clone(),
            branch: branch.to_string(),
            base_branch: repo.base_branch.clone(),
            base_commit: start_at.to_string(),
            start,
        })
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
        let commit = self.commit_index(&repo, &mut index, message)?;
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

    /// The cached clone, cloned afresh if missing, empty, broken or for another URL.
    fn open_or_clone(&self, url: &str, path: &Path) -> Result<Repository, WorkspaceError> {
        if path.exists() {
            match open_cached(path, url) {
                Ok(repo) => return Ok(repo),
                Err(reason) => {
                    tracing::warn!(path = %path.display(), %reason, "cached clone unusable; cloning again");
                    std::fs::remove_dir_all(path).map_err(|e| {
                        WorkspaceError::io(format!("remove broken clone {}", path.display()), e)
                    })?;
                }
            }
        }
        self.clone_into(url, path)
    }

    /// Clones into a scratch directory and renames it into place, so a clone killed halfway is
    /// never mistaken for a good one.
    fn clone_into(&self, url: &str, path: &Path) -> Result<Repository, WorkspaceError> {
        let scratch = path.with_extension("cloning");
        if scratch.exists() {
            std::fs::remove_dir_all(&scratch).map_err(|e| {
                WorkspaceError::io(format!("remove unfinished clone {}", scratch.display()), e)
            })?;
        }
        std::fs::create_dir_all(&scratch)
            .map_err(|e| WorkspaceError::io(format!("create {}", scratch.display()), e))?;
        let repo = Repository::init(&scratch)
            .map_err(|e| git_error(&format!("init {}", scratch.display()), &e))?;
        repo.remote("origin", url)
            .map_err(|e| git_error("add remote `origin`", &e))?;
        if let Err(e) = self.fetch(&repo, url) {
            drop(repo);
            let _ = std::fs::remove_dir_all(&scratch);
            return Err(match e {
                WorkspaceError::Network { url, detail, .. } => WorkspaceError::Network {
                    op: "clone",
                    url,
                    detail,
                },
                other => other,
            });
        }
        drop(repo);
        std::fs::rename(&scratch, path).map_err(|e| {
            WorkspaceError::io(format!("move the new clone to {}", path.display()), e)
        })?;
        tracing::info!(path = %path.display(), "cloned");
        Repository::open(path).map_err(|e| git_error("open the new clone", &e))
    }

    /// Fetches every branch of `origin`, pruning branches deleted there.
    fn fetch(&self, repo: &Repository, url: &str) -> Result<(), WorkspaceError> {
        let mut remote = repo
            .find_remote("origin")
            .map_err(|e| git_error("find remote `origin`", &e))?;
        let attempts = std::rc::Rc::new(std::cell::RefCell::new(Attempts::default()));
        let mut options = FetchOptions::new();
        options
            .remote_callbacks(self.auth.callbacks(attempts.clone()))
            .prune(FetchPrune::On)
            .download_tags(AutotagOption::Auto);
        remote
            .fetch(
                &[FETCH_REFSPEC],
                Some(&mut options),
                Some("journeyman: fetch"),
            )
            .map_err(|e| {
                self.auth
                    .transport_error("fetch from", url, &attempts.borrow(), &e)
            })
    }
}

/// Opens a cached clone if it is a usable, non-bare repository whose `origin` is `url`.
fn open_cached(path: &Path, url: &str) -> Result<Repository, String> {
    let repo = Repository::open(path).map_err(|e| e.message().to_string())?;
    if repo.is_bare() {
        return Err("it is a bare repository".into());
    }
    let remote = repo
        .find_remote("origin")
        .map_err(|e| e.message().to_string())?;
    if remote.url().ok() != Some(url) {
        return Err("its origin is another URL".into());
    }
    drop(remote);
    Ok(repo)
}

/// Where the work branch starts: see [`Workspaces::prepare`].
fn choose_start(
    repo: &Repository,
    branch: &str,
    base: Oid,
) -> Result<(Oid, BranchStart), WorkspaceError> {
    let local = match repo.refname_to_id(&local_ref(branch)) {
        Ok(oid) => Some(oid),
        Err(e) if e.code() == ErrorCode::NotFound => None,
        Err(e) => return Err(git_error(&format!("read branch `{branch}`"), &e)),
    };
    let descends = |a: Oid, b: Oid| {
        repo.graph_descendant_of(a, b)
            .map_err(|e| git_error("compare commits", &e))
    };
    let remote = remote_head(repo, branch)?;
    Ok(match (local, remote) {
        (Some(local), Some(remote)) if descends(local, remote)? => {
            (local, BranchStart::KeptUnpushed)
        }
        (Some(local), Some(remote)) => {
            if local != remote && !descends(remote, local)? {
                // Diverged: our unpushed commits and someone else's. The remote wins; ours stay
                // reachable under refs/journeyman/abandoned for a human.
                let keep = format!("refs/journeyman/abandoned/{branch}/{local}");
                tracing::warn!(%local, %remote, keep = %keep, "local branch diverged from the remote; resuming from the remote");
                repo.reference(&keep, local, true, "journeyman: diverged from origin")
                    .map_err(|e| git_error("keep the diverged local branch", &e))?;
            }
            (remote, BranchStart::Resumed)
        }
        (None, Some(remote)) => (remote, BranchStart::Resumed),
        // Never pushed: keep it unless everything on it is already in the base branch.
        (Some(local), None) if local != base && !descends(base, local)? => {
            (local, BranchStart::KeptUnpushed)
        }
        (_, None) => (base, BranchStart::Created),
    })
}

/// Checks out `branch` at `at` and removes everything else from the working tree: changes,
/// untracked and ignored files, a stale index lock and any unfinished merge or rebase state.
fn clean_checkout(repo: &Repository, branch: &str, at: Oid) -> Result<(), WorkspaceError> {
    let lock = repo.path().join("index.lock");
    if lock.exists() {
        std::fs::remove_file(&lock)
            .map_err(|e| WorkspaceError::io(format!("remove stale {}", lock.display()), e))?;
    }
    repo.cleanup_state()
        .map_err(|e| git_error("clean up an unfinished operation", &e))?;
    repo.set_head(&local_ref(branch))
        .map_err(|e| git_error(&format!("check out `{branch}`"), &e))?;
    let commit = repo
        .find_commit(at)
        .map_err(|e| git_error("find the branch head", &e))?;
    let mut checkout = CheckoutBuilder::new();
    checkout.force().remove_untracked(true).remove_ignored(true);
    repo.reset(commit.as_object(), ResetType::Hard, Some(&mut checkout))
        .map_err(|e| git_error(&format!("reset `{branch}`"), &e))?;
    remove_leftovers(repo)
}

/// Deletes whatever the reset left behind (libgit2 keeps, for example, nested repositories).
fn remove_leftovers(repo: &Repository) -> Result<(), WorkspaceError> {
    let workdir = repo.workdir().ok_or_else(|| WorkspaceError::Git {
        context: "clean the checkout".into(),
        detail: "the clone has no working tree".into(),
    })?;
    let mut options = StatusOptions::new();
    options
        .include_untracked(true)
        .include_ignored(true)
        .recurse_untracked_dirs(false)
        .recurse_ignored_dirs(false);
    let statuses = repo
        .statuses(Some(&mut options))
        .map_err(|e| git_error("list leftover files", &e))?;
    for entry in statuses.iter() {
        let Ok(rel) = entry.path() else { continue };
        if !entry.status().intersects(Status::WT_NEW | Status::IGNORED) {
            return Err(WorkspaceError::Git {
                context: "clean the checkout".into(),
                detail: format!("`{rel}` still differs from the branch after a hard reset"),
            });
        }
        let path = workdir.join(rel.trim_end_matches('/'));
        let meta = match path.symlink_metadata() {
            Ok(meta) => meta,
            Err(_) => continue,
        };
        let removed = if meta.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed
            .map_err(|e| WorkspaceError::io(format!("remove leftover {}", path.display()), e))?;
    }
    Ok(())
}

fn validate_branch(branch: &str, base_branch: &str) -> Result<(), WorkspaceError> {
    let invalid = |reason| WorkspaceError::InvalidBranch {
        branch: branch.to_string(),
        reason,
    };
    if !git2::Reference::is_valid_name(&local_ref(branch)) {
        return Err(invalid("not a valid git branch name"));
    }
    if branch == base_branch {
        return Err(invalid(
            "it is the base branch, which the orchestrator never pushes to",
        ));
    }
    Ok(())
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
