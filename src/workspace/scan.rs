//! Nothing secret is pushed: before every push, the content the push would publish (each unpushed
//! commit's added and changed text files, and its message) is scanned for the worker's secret values
//! and well-known token shapes, with the same [`Redactor`](crate::redact::Redactor) that cleans what
//! the worker writes.
//!
//! On a hit nothing is pushed: the commits are kept on the pod under
//! `refs/journeyman/quarantine/<branch>/<commit>` for a human to inspect, the work branch goes back
//! to what the remote has, and the error names each file, line and kind of secret, never the value.
//! There is no escape hatch: a false positive is fixed by a human in the repository.

use git2::{Delta, Oid, Repository, Sort};

use super::error::{SecretEvidence, SecretFinding};
use super::push::{branch_head, remote_head};
use super::{Checkout, WorkspaceError, Workspaces, git_error, local_ref};

/// Files larger than this are not scanned (they are data, not text a model wrote).
pub const SCAN_MAX_FILE_BYTES: usize = 1024 * 1024;

impl Workspaces {
    /// Scans what a push of the checkout's branch would publish; on a hit, quarantines it.
    pub(super) fn scan_before_push(
        &self,
        repo: &Repository,
        co: &Checkout,
    ) -> Result<(), WorkspaceError> {
        let ours = branch_head(repo, &co.branch)?;
        let published = match remote_head(repo, &co.branch)? {
            Some(theirs) => Some(theirs),
            None => remote_head(repo, &co.base_branch)?,
        };
        let findings = self.findings(repo, ours, published)?;
        if findings.is_empty() {
            return Ok(());
        }
        let quarantine = format!("refs/journeyman/quarantine/{}/{ours}", co.branch);
        repo.reference(
            &quarantine,
            ours,
            true,
            "journeyman: secret found, not pushed",
        )
        .map_err(|e| git_error("keep the commit in quarantine", &e))?;
        if let Some(back) = published {
            self.reset_branch(repo, co, back)?;
        }
        tracing::warn!(%quarantine, findings = findings.len(), "secrets in the commits to push: not pushed");
        Err(WorkspaceError::SecretFound(Box::new(SecretEvidence {
            branch: co.branch.clone(),
            commit: ours.to_string(),
            quarantine,
            findings,
        })))
    }

    /// Every secret in the commits from `ours` back to `published` (exclusive).
    fn findings(
        &self,
        repo: &Repository,
        ours: Oid,
        published: Option<Oid>,
    ) -> Result<Vec<SecretFinding>, WorkspaceError> {
        let mut walk = repo
            .revwalk()
            .map_err(|e| git_error("walk the commits to push", &e))?;
        walk.set_sorting(Sort::TOPOLOGICAL | Sort::REVERSE)
            .and_then(|()| walk.push(ours))
            .map_err(|e| git_error("walk the commits to push", &e))?;
        if let Some(p) = published {
            walk.hide(p)
                .map_err(|e| git_error("walk the commits to push", &e))?;
        }
        let mut out = Vec::new();
        for oid in walk {
            let oid = oid.map_err(|e| git_error("walk the commits to push", &e))?;
            self.scan_commit(repo, oid, &mut out)?;
        }
        Ok(out)
    }

    fn scan_commit(
        &self,
        repo: &Repository,
        oid: Oid,
        out: &mut Vec<SecretFinding>,
    ) -> Result<(), WorkspaceError> {
        let commit = repo
            .find_commit(oid)
            .map_err(|e| git_error("read a commit to push", &e))?;
        let short = oid.to_string()[..12].to_string();
        self.scan_text(
            &format!("commit message of {short}"),
            commit.message().unwrap_or(""),
            out,
        );
        let tree = commit
            .tree()
            .map_err(|e| git_error("read a commit's tree", &e))?;
        let parent_tree = match commit.parent(0) {
            Ok(p) => Some(
                p.tree()
                    .map_err(|e| git_error("read a commit's tree", &e))?,
            ),
            Err(_) => None,
        };
        let diff = repo
            .diff_tree_to_tree(parent_tree.as_ref(), Some(&tree), None)
            .map_err(|e| git_error("diff a commit to push", &e))?;
        for delta in diff.deltas() {
            if !matches!(
                delta.status(),
                Delta::Added | Delta::Modified | Delta::Renamed | Delta::Copied
            ) {
                continue;
            }
            let file = delta.new_file();
            let path = file
                .path()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            let Ok(blob) = repo.find_blob(file.id()) else {
                continue;
            };
            if blob.is_binary() || blob.size() > SCAN_MAX_FILE_BYTES {
                continue;
            }
            self.scan_text(&path, &String::from_utf8_lossy(blob.content()), out);
        }
        Ok(())
    }

    fn scan_text(&self, file: &str, text: &str, out: &mut Vec<SecretFinding>) {
        for (line, kind) in self.redactor.findings(text) {
            out.push(SecretFinding {
                file: file.to_string(),
                line,
                kind,
            });
        }
    }

    /// Points the local work branch (and the checkout) at `to`.
    fn reset_branch(
        &self,
        repo: &Repository,
        co: &Checkout,
        to: Oid,
    ) -> Result<(), WorkspaceError> {
        let target = repo
            .find_object(to, None)
            .map_err(|e| git_error("find the published head", &e))?;
        repo.reset(&target, git2::ResetType::Hard, None)
            .map_err(|e| git_error("reset the work branch", &e))?;
        repo.reference(&local_ref(&co.branch), to, true, "journeyman: quarantined")
            .map_err(|e| git_error("reset the work branch", &e))?;
        Ok(())
    }
}
