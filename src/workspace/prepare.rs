//! Preparing a work branch: the cached clone (cloned once, again if broken), fetch, where the
//! branch starts, and a working tree with nothing left over from an earlier run.

use std::path::{Path, PathBuf};

use git2::build::CheckoutBuilder;
use git2::{
    AutotagOption, ErrorCode, FetchOptions, FetchPrune, Oid, Repository, ResetType, Status,
    StatusOptions,
};

use super::auth::Attempts;
use super::push::remote_head;
use super::{
    BranchStart, Checkout, FETCH_REFSPEC, WorkspaceError, Workspaces, git_error, local_ref, naming,
};
use crate::config::RepoMapping;

impl Workspaces {
    /// The cache directory of a repository URL.
    pub fn clone_path(&self, url: &str) -> PathBuf {
        self.root.join(naming::cache_dir_name(url))
    }

    /// Gets the repository's cached clone up to date and checks out `branch`, clean:
    /// 1. clone once (again if the cache is empty or broken), then fetch with prune;
    /// 2. start the branch from `origin/<branch>` if it exists (keeping local commits strictly
    ///    ahead of it), else from a local branch with unpushed work, else from `origin/<base>`;
    /// 3. hard-reset and remove untracked and ignored files.
    #[tracing::instrument(skip_all, fields(url = %repo.url, branch = %branch))]
    pub fn prepare(&self, repo: &RepoMapping, branch: &str) -> Result<Checkout, WorkspaceError> {
        validate_branch(branch, &repo.base_branch)?;
        let path = self.clone_path(&repo.url);
        let git = self.open_or_clone(&repo.url, &path)?;
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
        self.restore_stopped(&git, branch)?;
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

    /// The cached clone, fetched; cloned afresh if missing, empty, broken or for another URL.
    fn open_or_clone(&self, url: &str, path: &Path) -> Result<Repository, WorkspaceError> {
        if path.exists() {
            match open_cached(path, url) {
                Ok(repo) => {
                    remove_stale_locks(repo.path())?;
                    self.fetch(&repo, url)?;
                    return Ok(repo);
                }
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

    /// Checks that `repo` can be listed with the configured credentials and has its base branch,
    /// without cloning (`journeyman doctor`). Returns the base branch's commit.
    pub fn probe(&self, repo: &crate::config::RepoMapping) -> Result<String, WorkspaceError> {
        let mut remote = git2::Remote::create_detached(repo.url.as_str())
            .map_err(|e| git_error("parse the remote URL", &e))?;
        let attempts = std::rc::Rc::new(std::cell::RefCell::new(Attempts::default()));
        let connection = remote
            .connect_auth(
                git2::Direction::Fetch,
                Some(self.auth.callbacks(attempts.clone())),
                None,
            )
            .map_err(|e| {
                self.auth
                    .transport_error("list", &repo.url, &attempts.borrow(), &e)
            })?;
        let wanted = format!("refs/heads/{}", repo.base_branch);
        let heads = connection
            .list()
            .map_err(|e| git_error("list remote branches", &e))?;
        heads
            .iter()
            .find(|h| h.name() == wanted)
            .map(|h| h.oid().to_string())
            .ok_or_else(|| WorkspaceError::BaseBranchMissing {
                url: repo.url.clone(),
                branch: repo.base_branch.clone(),
            })
    }

    /// Fetches every branch of `origin`, pruning branches deleted there.
    pub(super) fn fetch(&self, repo: &Repository, url: &str) -> Result<(), WorkspaceError> {
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

/// Removes `*.lock` files under `.git/` (refs, packed-refs, config, index) left by a process that was
/// killed mid-write. Safe because a pod's workdir is its own: no other process holds these locks
/// while `prepare` runs. Without this, a pod SIGKILLed during a fetch could never fetch again.
fn remove_stale_locks(git_dir: &Path) -> Result<(), WorkspaceError> {
    let mut stack = vec![git_dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                // Objects are written to temporary names, never locked; skip the big directory.
                if path.file_name().is_some_and(|n| n != "objects") {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "lock") {
                tracing::warn!(path = %path.display(), "removing a stale git lock left by a killed run");
                std::fs::remove_file(&path).map_err(|e| {
                    WorkspaceError::io(format!("remove stale {}", path.display()), e)
                })?;
            }
        }
    }
    Ok(())
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
