//! Publishing a work branch: push, and when someone else pushed to the same branch meanwhile,
//! fetch, rebase our commits onto theirs in memory and push once more. A failed attempt leaves the
//! local branch and working tree exactly as they were, and says why with both heads.

use std::cell::RefCell;
use std::rc::Rc;

use git2::{ErrorCode, Oid, PushOptions, RebaseOptions, Repository};

use super::auth::Attempts;
use super::error::{ConflictEvidence, PushEvidence};
use super::{Checkout, WorkspaceError, Workspaces, git_error, local_ref, remote_ref};

/// A temporary ref holding the rebased head while it is pushed, so the local branch only moves
/// once the remote has accepted it.
const REBASED_REF: &str = "refs/journeyman/rebased";

/// A successful push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushOutcome {
    /// The commit the remote branch now points at (hex).
    pub commit: String,
    /// The remote head our commits were rebased onto, when someone else had pushed to the branch.
    pub rebased_onto: Option<String>,
}

/// How the remote answered one push.
enum Answer {
    Accepted,
    /// Not a fast-forward: someone else pushed first.
    NonFastForward(String),
    /// Refused for another reason (protected branch, hook, ...).
    Refused(String),
}

impl Workspaces {
    /// Pushes the checkout's branch to `origin`, after scanning what it would publish for secrets
    /// (see `scan.rs`). If the remote branch moved on, fetches, rebases our commits onto it (only
    /// if that applies without conflicts) and pushes again, once.
    #[tracing::instrument(skip_all, fields(branch = %co.branch))]
    pub fn push(&self, co: &Checkout) -> Result<PushOutcome, WorkspaceError> {
        let repo = self.open_checkout(co)?;
        self.scan_before_push(&repo, co)?;
        let ours = branch_head(&repo, &co.branch)?;
        let refspec = format!("{0}:{0}", local_ref(&co.branch));
        let reason = match self.push_refspec(&repo, co, &refspec)? {
            Answer::Accepted => {
                tracing::info!(commit = %ours, "pushed");
                return Ok(PushOutcome {
                    commit: ours.to_string(),
                    rebased_onto: None,
                });
            }
            Answer::Refused(reason) => {
                return Err(self.rejected(&repo, co, ours, None, reason));
            }
            Answer::NonFastForward(reason) => reason,
        };
        tracing::info!(%reason, "push was not a fast-forward; fetching and rebasing once");
        self.fetch(&repo, &co.repo_url)?;
        let Some(theirs) = remote_head(&repo, &co.branch)? else {
            return Err(self.rejected(&repo, co, ours, None, reason));
        };
        let rebased = self.rebase_in_memory(&repo, co, ours, theirs)?;
        let set = |oid| {
            repo.reference(REBASED_REF, oid, true, "journeyman: rebased for push")
                .map_err(|e| git_error("create the temporary push ref", &e))
        };
        set(rebased)?;
        let answer = self.push_refspec(
            &repo,
            co,
            &format!("{REBASED_REF}:{}", local_ref(&co.branch)),
        );
        let _ = repo
            .find_reference(REBASED_REF)
            .and_then(|mut r| r.delete());
        match answer? {
            Answer::Accepted => {
                self.move_branch(&repo, co, rebased)?;
                tracing::info!(commit = %rebased, onto = %theirs, "pushed after rebase");
                Ok(PushOutcome {
                    commit: rebased.to_string(),
                    rebased_onto: Some(theirs.to_string()),
                })
            }
            Answer::NonFastForward(reason) | Answer::Refused(reason) => {
                Err(self.rejected(&repo, co, ours, Some(rebased), reason))
            }
        }
    }

    /// One push of `refspec`; rejections come back as an [`Answer`], transport failures as errors.
    fn push_refspec(
        &self,
        repo: &Repository,
        co: &Checkout,
        refspec: &str,
    ) -> Result<Answer, WorkspaceError> {
        let mut remote = repo
            .find_remote("origin")
            .map_err(|e| git_error("find remote `origin`", &e))?;
        let attempts = Rc::new(RefCell::new(Attempts::default()));
        let statuses: Rc<RefCell<Vec<String>>> = Rc::default();
        let mut callbacks = self.auth.callbacks(attempts.clone());
        let seen = statuses.clone();
        // libgit2 reports a per-ref refusal by the server here, not always as an error.
        callbacks.push_update_reference(move |_refname, status| {
            if let Some(status) = status {
                seen.borrow_mut().push(status.to_string());
            }
            Ok(())
        });
        let mut options = PushOptions::new();
        options.remote_callbacks(callbacks);
        match remote.push(&[refspec], Some(&mut options)) {
            Ok(()) => {}
            Err(e) if e.code() == ErrorCode::NotFastForward => {
                return Ok(Answer::NonFastForward(self.auth.redact(e.message())));
            }
            Err(e) => {
                return Err(self.auth.transport_error(
                    "push to",
                    &co.repo_url,
                    &attempts.borrow(),
                    &e,
                ));
            }
        }
        let refusals = statuses.borrow();
        Ok(match refusals.first() {
            None => Answer::Accepted,
            Some(status) => {
                let reason = self.auth.redact(status);
                let lower = reason.to_ascii_lowercase();
                if lower.contains("non-fast-forward") || lower.contains("fetch first") {
                    Answer::NonFastForward(reason)
                } else {
                    Answer::Refused(reason)
                }
            }
        })
    }

    /// Replays the commits of `ours` that `theirs` lacks onto `theirs`, without touching the working
    /// tree, HEAD or the branch. Returns the new head, or the conflict with its paths.
    fn rebase_in_memory(
        &self,
        repo: &Repository,
        co: &Checkout,
        ours: Oid,
        theirs: Oid,
    ) -> Result<Oid, WorkspaceError> {
        let annotated = |oid| {
            repo.find_annotated_commit(oid)
                .map_err(|e| git_error("look up a commit to rebase", &e))
        };
        let (branch, upstream) = (annotated(ours)?, annotated(theirs)?);
        let mut options = RebaseOptions::new();
        options.inmemory(true);
        let mut rebase = repo
            .rebase(Some(&branch), Some(&upstream), None, Some(&mut options))
            .map_err(|e| git_error("start rebase", &e))?;
        let committer = self.signature()?;
        let mut head = theirs;
        while let Some(op) = rebase.next() {
            let op = op.map_err(|e| git_error("apply a commit during rebase", &e))?;
            let index = rebase
                .inmemory_index()
                .map_err(|e| git_error("read the rebase index", &e))?;
            if index.has_conflicts() {
                let paths = conflict_paths(&index)?;
                let _ = rebase.abort();
                return Err(WorkspaceError::RebaseConflict(Box::new(ConflictEvidence {
                    url: co.repo_url.clone(),
                    branch: co.branch.clone(),
                    remote_head: theirs.to_string(),
                    our_head: ours.to_string(),
                    conflicting_commit: op.id().to_string(),
                    paths,
                })));
            }
            match rebase.commit(None, &committer, None) {
                Ok(oid) => head = oid,
                // Our change is already upstream: nothing to replay for this commit.
                Err(e) if e.code() == ErrorCode::Applied => {}
                Err(e) => {
                    let _ = rebase.abort();
                    return Err(git_error("commit during rebase", &e));
                }
            }
        }
        rebase
            .finish(None)
            .map_err(|e| git_error("finish rebase", &e))?;
        Ok(head)
    }

    /// Moves the checked-out branch to the pushed head `to`. The push already succeeded, so a
    /// working tree that cannot follow (changes that were never committed) is only a warning: the
    /// next `prepare` resets it anyway.
    fn move_branch(&self, repo: &Repository, co: &Checkout, to: Oid) -> Result<(), WorkspaceError> {
        let commit = repo
            .find_commit(to)
            .map_err(|e| git_error("find the pushed commit", &e))?;
        let mut safe = git2::build::CheckoutBuilder::new();
        safe.safe();
        if let Err(e) = repo.checkout_tree(commit.as_object(), Some(&mut safe)) {
            tracing::warn!(error = %e.message(), "working tree did not follow the rebased branch");
        }
        repo.reference(
            &local_ref(&co.branch),
            to,
            true,
            "journeyman: pushed after rebase",
        )
        .map_err(|e| git_error("move the branch to the rebased head", &e))?;
        Ok(())
    }

    fn rejected(
        &self,
        repo: &Repository,
        co: &Checkout,
        ours: Oid,
        rebased: Option<Oid>,
        reason: String,
    ) -> WorkspaceError {
        let remote_head = remote_head(repo, &co.branch).ok().flatten();
        WorkspaceError::PushRejected(Box::new(PushEvidence {
            url: co.repo_url.clone(),
            branch: co.branch.clone(),
            remote_head: remote_head.map(|o| o.to_string()),
            our_head: ours.to_string(),
            rebased_head: rebased.map(|o| o.to_string()),
            reason,
        }))
    }
}

pub(super) fn branch_head(repo: &Repository, branch: &str) -> Result<Oid, WorkspaceError> {
    repo.refname_to_id(&local_ref(branch))
        .map_err(|e| git_error(&format!("read branch `{branch}`"), &e))
}

/// The remote-tracking head of `branch` as of the last fetch.
pub(super) fn remote_head(repo: &Repository, branch: &str) -> Result<Option<Oid>, WorkspaceError> {
    match repo.refname_to_id(&remote_ref(branch)) {
        Ok(oid) => Ok(Some(oid)),
        Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
        Err(e) => Err(git_error(&format!("read `origin/{branch}`"), &e)),
    }
}

fn conflict_paths(index: &git2::Index) -> Result<Vec<String>, WorkspaceError> {
    let conflicts = index
        .conflicts()
        .map_err(|e| git_error("list rebase conflicts", &e))?;
    let mut paths = Vec::new();
    for conflict in conflicts {
        let conflict = conflict.map_err(|e| git_error("read a rebase conflict", &e))?;
        if let Some(entry) = conflict.our.or(conflict.their).or(conflict.ancestor) {
            paths.push(String::from_utf8_lossy(&entry.path).into_owned());
        }
    }
    paths.sort();
    paths.dedup();
    Ok(paths)
}
