//! The demo's git remote: a local bare repository holding a tiny Python program on `main`, which the
//! pods clone, branch and push to over `file://`, exactly as they would with a hosted repository.
//! After the run, [`branches`] lists what the pods pushed.
//!
//! Blocking (libgit2): call from `spawn_blocking`.

use std::path::Path;

use anyhow::Context;
use git2::{Oid, Repository, Signature};

/// The program the demo's tickets talk about, committed to `main`.
const FILES: &[(&str, &str)] = &[
    (
        "README.md",
        "# greet\n\nSays hello. The project of `journeyman demo`: its tickets ask for changes to \
         this program.\n\n```sh\npython3 greet.py Ada   # Hello, Ada!\npython3 -m unittest\n```\n",
    ),
    (
        "greet.py",
        r#"#!/usr/bin/env python3
"""greet: says hello to someone."""

import sys


def greet(name):
    return f"Hello, {name}!"


def main(argv):
    name = argv[1] if len(argv) > 1 else "world"
    print(greet(name))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
"#,
    ),
    (
        "test_greet.py",
        r#"import unittest

from greet import greet


class GreetTest(unittest.TestCase):
    def test_greets_by_name(self):
        self.assertEqual(greet("Ada"), "Hello, Ada!")


if __name__ == "__main__":
    unittest.main()
"#,
    ),
];

/// The base branch of the demo repository.
pub const BASE_BRANCH: &str = "main";

/// Creates a bare repository at `path` with the program committed on `main`.
pub fn create(path: &Path) -> anyhow::Result<()> {
    let repo = Repository::init_bare(path)
        .with_context(|| format!("creating the bare repository {}", path.display()))?;
    repo.set_head(&format!("refs/heads/{BASE_BRANCH}"))
        .context("pointing HEAD at main")?;
    let mut tree = repo.treebuilder(None).context("building the first tree")?;
    for (name, content) in FILES {
        let blob = repo
            .blob(content.as_bytes())
            .with_context(|| format!("writing {name}"))?;
        tree.insert(name, blob, 0o100644)
            .with_context(|| format!("adding {name}"))?;
    }
    let tree = repo
        .find_tree(tree.write().context("writing the first tree")?)
        .context("reading the first tree back")?;
    let sig = Signature::now("A Human", "human@example.com").context("making a signature")?;
    repo.commit(
        Some(&format!("refs/heads/{BASE_BRANCH}")),
        &sig,
        &sig,
        "greet: say hello\n",
        &tree,
        &[],
    )
    .context("committing the program to main")?;
    Ok(())
}

/// One branch of the remote and its commits (newest first): on `main` all of them, on other
/// branches those not on `main`.
#[derive(Debug, Clone, PartialEq)]
pub struct Branch {
    pub name: String,
    /// Short id and summary line.
    pub commits: Vec<(String, String)>,
}

/// Every branch of the bare repository at `path`, `main` first, then by name.
pub fn branches(path: &Path) -> anyhow::Result<Vec<Branch>> {
    let repo = Repository::open_bare(path)
        .with_context(|| format!("opening the demo remote {}", path.display()))?;
    let main = repo
        .refname_to_id(&format!("refs/heads/{BASE_BRANCH}"))
        .context("reading main")?;
    let mut out = Vec::new();
    for r in repo
        .branches(Some(git2::BranchType::Local))
        .context("listing branches")?
    {
        let (branch, _) = r.context("reading a branch")?;
        let Some(name) = branch.name().ok().flatten().map(String::from) else {
            continue;
        };
        let Some(head) = branch.get().target() else {
            continue;
        };
        let hide = (name != BASE_BRANCH).then_some(main);
        out.push(Branch {
            commits: commits(&repo, head, hide)?,
            name,
        });
    }
    out.sort_by(|a, b| (a.name != BASE_BRANCH, &a.name).cmp(&(b.name != BASE_BRANCH, &b.name)));
    Ok(out)
}

fn commits(
    repo: &Repository,
    head: Oid,
    hide: Option<Oid>,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut walk = repo.revwalk().context("walking history")?;
    walk.set_sorting(git2::Sort::TOPOLOGICAL)
        .context("sorting history")?;
    walk.push(head).context("walking history")?;
    if let Some(h) = hide {
        walk.hide(h).context("walking history")?;
    }
    let mut out = Vec::new();
    for oid in walk {
        let c = repo
            .find_commit(oid.context("walking history")?)
            .context("reading a commit")?;
        let id = c.id().to_string();
        out.push((
            id[..7].to_string(),
            c.summary().ok().flatten().unwrap_or("").to_string(),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_remote_starts_with_the_program_on_main_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("greet.git");
        create(&path).unwrap();
        let b = branches(&path).unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].name, "main");
        assert_eq!(b[0].commits.len(), 1);
        assert_eq!(b[0].commits[0].1, "greet: say hello");
        let repo = Repository::open_bare(&path).unwrap();
        let tree = repo
            .find_commit(repo.refname_to_id("refs/heads/main").unwrap())
            .unwrap()
            .tree()
            .unwrap();
        assert!(tree.get_name("greet.py").is_some() && tree.get_name("README.md").is_some());
    }
}
