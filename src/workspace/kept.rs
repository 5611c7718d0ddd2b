//! A run stopped from the board keeps its checkout: what the agent changed is saved, never on the
//! work branch and never pushed, under `refs/journeyman/stopped/<branch>`, and the next prepare of
//! that branch on this pod puts it back in the working tree, so the next run continues from it.
//!
//! Why a ref and not the working tree itself: the clone is shared by every task of the pod and
//! `prepare` cleans it, so a tree left as it is would be lost to the next task of another branch.

use git2::{IndexAddOption, Repository};

use super::{Workspaces, git_error, head_commit, local_ref};
use crate::config::RepoMapping;
use crate::workspace::WorkspaceError;

fn kept_ref(branch: &str) -> String {
    format!("refs/journeyman/stopped/{branch}")
}

impl Workspaces {
    /// Saves the working tree of `repo`'s clone, if it is on `branch` and changed, under the kept
    /// ref; the branch and the tree are left as they are. Returns the saved commit.
    pub fn keep_stopped(
        &self,
        repo: &RepoMapping,
        branch: &str,
    ) -> Result<Option<String>, WorkspaceError> {
        let path = self.clone_path(&repo.url);
        let Ok(git) = Repository::open(&path) else {
            return Ok(None);
        };
        let on_branch = git
            .head()
            .ok()
            .and_then(|h| h.name().ok().map(String::from))
            .is_some_and(|name| name == local_ref(branch));
        if !on_branch {
            return Ok(None);
        }
        let mut index = git.index().map_err(|e| git_error("open the index", &e))?;
        index
            .add_all(["*"].iter(), IndexAddOption::DEFAULT, None)
            .and_then(|()| index.update_all(["*"].iter(), None))
            .map_err(|e| git_error("stage the stopped run's changes", &e))?;
        let tree_id = index
            .write_tree()
            .map_err(|e| git_error("write the stopped run's tree", &e))?;
        let head = head_commit(&git)?;
        if head.tree_id() == tree_id {
            return Ok(None);
        }
        let tree = git
            .find_tree(tree_id)
            .map_err(|e| git_error("read the stopped run's tree", &e))?;
        let signature = self.signature()?;
        let oid = git
            .commit(
                Some(&kept_ref(branch)),
                &signature,
                &signature,
                "journeyman: the checkout of a run stopped from the board (never pushed)",
                &tree,
                &[&head],
            )
            .map_err(|e| git_error("keep the stopped run's changes", &e))?;
        tracing::info!(%oid, branch, "kept the checkout of a stopped run");
        Ok(Some(oid.to_string()))
    }

    /// After `prepare` of `branch`: the changes a stopped run kept, back in the working tree (not
    /// committed), and the kept ref removed. Returns whether there were any.
    pub(super) fn restore_stopped(
        &self,
        git: &Repository,
        branch: &str,
    ) -> Result<bool, WorkspaceError> {
        let name = kept_ref(branch);
        let Ok(mut kept) = git.find_reference(&name) else {
            return Ok(false);
        };
        let tree = kept
            .peel_to_tree()
            .map_err(|e| git_error("read the kept checkout", &e))?;
        let mut checkout = git2::build::CheckoutBuilder::new();
        checkout.force();
        git.checkout_tree(tree.as_object(), Some(&mut checkout))
            .map_err(|e| git_error("restore the kept checkout", &e))?;
        // The index follows HEAD again: the restored files are changes, as the agent left them.
        let head_tree = head_commit(git)?
            .tree()
            .map_err(|e| git_error("read HEAD's tree", &e))?;
        let mut index = git.index().map_err(|e| git_error("open the index", &e))?;
        index
            .read_tree(&head_tree)
            .and_then(|()| index.write())
            .map_err(|e| git_error("reset the index", &e))?;
        kept.delete()
            .map_err(|e| git_error("remove the kept checkout's ref", &e))?;
        tracing::info!(branch, "restored the checkout a stopped run kept");
        Ok(true)
    }
}
