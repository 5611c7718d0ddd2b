//! Real git remotes for tests: bare repositories in temp dirs, reached over `file://`, seeded with
//! one commit on `main`. "Someone else pushes" is simulated by committing straight into the bare
//! repository.

use std::path::{Path, PathBuf};

use git2::{Oid, Repository, Signature};
use journeyman::config::RepoMapping;
use tempfile::TempDir;

/// The files of the seed commit on `main`.
pub const SEED_FILES: &[(&str, &str)] = &[
    ("README.md", "# demo\n"),
    (".gitignore", "target/\n*.log\n"),
    ("src.txt", "line one\nline two\nline three\n"),
];

/// A bare remote with `main` seeded.
pub struct BareRemote {
    _dir: TempDir,
    pub path: PathBuf,
    pub repo: Repository,
}

impl BareRemote {
    pub fn new() -> BareRemote {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("remote.git");
        let repo = Repository::init_bare(&path).expect("init bare remote");
        repo.set_head("refs/heads/main").expect("HEAD -> main");
        let remote = BareRemote {
            _dir: dir,
            path,
            repo,
        };
        for (name, content) in SEED_FILES {
            remote.commit_file("main", name, content, &format!("seed {name}"));
        }
        remote
    }

    pub fn url(&self) -> String {
        format!("file://{}", self.path.display())
    }

    pub fn mapping(&self) -> RepoMapping {
        RepoMapping {
            project: "demo".into(),
            url: self.url(),
            base_branch: "main".into(),
        }
    }

    /// The head of `branch`, if it exists.
    pub fn head(&self, branch: &str) -> Option<Oid> {
        self.repo
            .refname_to_id(&format!("refs/heads/{branch}"))
            .ok()
    }

    /// Commits `path` (top-level) with `content` on top of `branch` (created if missing, from
    /// nothing), as "Someone Else".
    pub fn commit_file(&self, branch: &str, path: &str, content: &str, message: &str) -> Oid {
        let parent = self
            .head(branch)
            .map(|oid| self.repo.find_commit(oid).unwrap());
        let base_tree = parent.as_ref().map(|c| c.tree().unwrap());
        let mut builder = self.repo.treebuilder(base_tree.as_ref()).unwrap();
        let blob = self.repo.blob(content.as_bytes()).unwrap();
        builder.insert(path, blob, 0o100644).unwrap();
        let tree = self.repo.find_tree(builder.write().unwrap()).unwrap();
        let sig = Signature::now("Someone Else", "else@example.com").unwrap();
        let parents: Vec<_> = parent.iter().collect();
        self.repo
            .commit(
                Some(&format!("refs/heads/{branch}")),
                &sig,
                &sig,
                message,
                &tree,
                &parents,
            )
            .unwrap()
    }

    /// The content of a top-level file on `branch`.
    pub fn read_file(&self, branch: &str, path: &str) -> Option<String> {
        let commit = self.repo.find_commit(self.head(branch)?).ok()?;
        let entry = commit.tree().ok()?.get_path(Path::new(path)).ok()?;
        let blob = self.repo.find_blob(entry.id()).ok()?;
        Some(String::from_utf8_lossy(blob.content()).into_owned())
    }

    /// Commit messages on `branch`, newest first.
    pub fn log(&self, branch: &str) -> Vec<String> {
        let mut walk = self.repo.revwalk().unwrap();
        walk.push(self.head(branch).expect("branch exists"))
            .unwrap();
        walk.map(|oid| {
            let c = self.repo.find_commit(oid.unwrap()).unwrap();
            c.message().unwrap().trim_end().to_string()
        })
        .collect()
    }
}
