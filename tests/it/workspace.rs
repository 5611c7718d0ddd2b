//! Git workspaces against real git: bare remotes in temp dirs over `file://` (and one tiny HTTP
//! server that only ever answers 401), never the network.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::mpsc;

use base64::Engine;
use git2::{Reference, Repository, StatusOptions};
use journeyman::config::RepoMapping;
use journeyman::workspace::{
    BranchStart, Checkout, GitAuth, STARTER_FLAKE, STARTER_FLAKE_MESSAGE, WorkspaceError,
    Workspaces, branch_name,
};
use proptest::prelude::*;
use secrecy::SecretString;
use tempfile::TempDir;

use crate::support::git::BareRemote;

const BRANCH: &str = "agent/42-fix-the-thing";
const AUTHOR: &str = "Journeyman Bot";
const EMAIL: &str = "bot@example.com";
const TOKEN: &str = "ghp_TopSecretTokenValue1234567890";

/// One pod's clone cache: its own root, no credentials.
fn pod() -> (TempDir, Workspaces) {
    pod_with(GitAuth::none())
}

fn pod_with(auth: GitAuth) -> (TempDir, Workspaces) {
    let root = tempfile::tempdir().expect("temp dir");
    let ws = Workspaces::new(root.path().join("repos"), auth, AUTHOR, EMAIL);
    (root, ws)
}

fn write(co: &Checkout, rel: &str, content: &str) {
    let path = co.path.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

fn read(co: &Checkout, rel: &str) -> Option<String> {
    std::fs::read_to_string(co.path.join(rel)).ok()
}

fn open(co: &Checkout) -> Repository {
    Repository::open(&co.path).unwrap()
}

fn head(co: &Checkout) -> String {
    open(co)
        .refname_to_id(&format!("refs/heads/{}", co.branch))
        .unwrap()
        .to_string()
}

/// Everything `git status --ignored` would list.
fn dirty_paths(co: &Checkout) -> Vec<String> {
    let repo = open(co);
    let mut opts = StatusOptions::new();
    opts.include_untracked(true).include_ignored(true);
    let statuses = repo.statuses(Some(&mut opts)).unwrap();
    statuses
        .iter()
        .map(|e| e.path().unwrap().to_string())
        .collect()
}

fn commit_and_push(ws: &Workspaces, co: &Checkout, rel: &str, content: &str) -> String {
    write(co, rel, content);
    let committed = ws
        .commit_all(co, &format!("change {rel}"))
        .unwrap()
        .expect("a change");
    let pushed = ws.push(co).unwrap();
    assert_eq!(pushed.commit, committed.commit);
    committed.commit
}

#[test]
fn first_prepare_clones_and_branches_from_the_base_branch() {
    let remote = BareRemote::new();
    let (_root, ws) = pod();
    let co = ws.prepare(&remote.mapping(), BRANCH).unwrap();

    let main = remote.head("main").unwrap().to_string();
    assert_eq!(co.start, BranchStart::Created);
    assert_eq!(co.base_commit, main);
    assert_eq!(head(&co), main);
    assert_eq!(co.path, ws.clone_path(&remote.url()));
    assert_eq!(
        open(&co).head().unwrap().name().unwrap(),
        format!("refs/heads/{BRANCH}")
    );
    assert_eq!(read(&co, "README.md").as_deref(), Some("# demo\n"));
    assert!(
        remote.head(BRANCH).is_none(),
        "prepare must not push anything"
    );
}

#[test]
fn prepare_resumes_a_branch_pushed_by_another_pod_and_follows_later_remote_commits() {
    let remote = BareRemote::new();
    let (_a, pod_a) = pod();
    let co_a = pod_a.prepare(&remote.mapping(), BRANCH).unwrap();
    let pushed = commit_and_push(&pod_a, &co_a, "work.txt", "from pod a\n");

    let (_b, pod_b) = pod();
    let co_b = pod_b.prepare(&remote.mapping(), BRANCH).unwrap();
    assert_eq!(co_b.start, BranchStart::Resumed);
    assert_eq!(co_b.base_commit, pushed);
    assert_eq!(read(&co_b, "work.txt").as_deref(), Some("from pod a\n"));

    // Someone else adds to the branch; pod a's next prepare fast-forwards to it.
    let theirs = remote.commit_file(BRANCH, "review.txt", "fixup\n", "review fixup");
    let again = pod_a.prepare(&remote.mapping(), BRANCH).unwrap();
    assert_eq!(again.start, BranchStart::Resumed);
    assert_eq!(again.base_commit, theirs.to_string());
    assert_eq!(read(&again, "review.txt").as_deref(), Some("fixup\n"));
}

#[test]
fn prepare_removes_untracked_modified_deleted_and_ignored_leftovers() {
    let remote = BareRemote::new();
    let (_root, ws) = pod();
    let co = ws.prepare(&remote.mapping(), BRANCH).unwrap();

    write(&co, "notes.txt", "untracked\n");
    write(&co, "README.md", "modified by a killed run\n");
    std::fs::remove_file(co.path.join("src.txt")).unwrap();
    write(&co, "target/debug/out.bin", "ignored build output");
    write(&co, "run.log", "ignored log");
    write(&co, "scratch/deep/file.txt", "untracked dir");
    Repository::init(co.path.join("nested")).unwrap();
    write(&co, "nested/inner.txt", "a repository the agent made");
    std::fs::write(co.path.join(".git/index.lock"), "").unwrap();
    assert!(!dirty_paths(&co).is_empty());

    let co = ws.prepare(&remote.mapping(), BRANCH).unwrap();
    assert_eq!(dirty_paths(&co), Vec::<String>::new());
    assert_eq!(read(&co, "README.md").as_deref(), Some("# demo\n"));
    assert!(read(&co, "src.txt").is_some(), "deleted file restored");
    for gone in ["notes.txt", "target", "run.log", "scratch", "nested"] {
        assert!(!co.path.join(gone).exists(), "{gone} survived prepare");
    }
}

#[test]
fn starter_flake_is_committed_once_when_missing() {
    let remote = BareRemote::new();
    let (_root, ws) = pod();
    let co = ws.prepare(&remote.mapping(), BRANCH).unwrap();

    let commit = ws.ensure_flake(&co).unwrap().expect("flake committed");
    assert_eq!(head(&co), commit);
    let repo = open(&co);
    let c = repo.find_commit(commit.parse().unwrap()).unwrap();
    assert_eq!(c.message().unwrap(), STARTER_FLAKE_MESSAGE);
    assert_eq!(c.author().name().unwrap(), AUTHOR);
    assert_eq!(c.parent_count(), 1);
    assert_eq!(read(&co, "flake.nix").as_deref(), Some(STARTER_FLAKE));
    assert!(c.tree().unwrap().get_name("flake.nix").is_some());
    assert_eq!(dirty_paths(&co), Vec::<String>::new());

    assert_eq!(
        ws.ensure_flake(&co).unwrap(),
        None,
        "second call commits again"
    );
}

#[test]
fn existing_flake_is_left_alone() {
    let remote = BareRemote::new();
    remote.commit_file("main", "flake.nix", "{ outputs = _: {}; }\n", "own flake");
    let (_root, ws) = pod();
    let co = ws.prepare(&remote.mapping(), BRANCH).unwrap();

    assert_eq!(ws.ensure_flake(&co).unwrap(), None);
    assert_eq!(head(&co), co.base_commit);
    assert_eq!(
        read(&co, "flake.nix").as_deref(),
        Some("{ outputs = _: {}; }\n")
    );
}

#[test]
fn commit_all_returns_none_when_nothing_but_ignored_files_changed() {
    let remote = BareRemote::new();
    let (_root, ws) = pod();
    let co = ws.prepare(&remote.mapping(), BRANCH).unwrap();
    assert_eq!(ws.commit_all(&co, "nothing").unwrap(), None);

    write(&co, "target/out.bin", "ignored");
    write(&co, "debug.log", "ignored");
    assert_eq!(ws.commit_all(&co, "still nothing").unwrap(), None);
    assert_eq!(head(&co), co.base_commit);
}

#[test]
fn commit_all_records_additions_modifications_and_deletions_with_configured_identity() {
    let remote = BareRemote::new();
    let (_root, ws) = pod();
    let co = ws.prepare(&remote.mapping(), BRANCH).unwrap();

    write(&co, "new/added.txt", "added\n");
    write(&co, ".config/hidden.toml", "x = 1\n");
    write(&co, "README.md", "# changed\n");
    std::fs::remove_file(co.path.join("src.txt")).unwrap();
    write(&co, "build.log", "ignored, stays out");
    let committed = ws
        .commit_all(&co, "Fix the thing (#42)\n\nDetails.")
        .unwrap()
        .expect("changes committed");
    assert!(committed.skipped_large.is_empty());

    let repo = open(&co);
    let c = repo.find_commit(committed.commit.parse().unwrap()).unwrap();
    assert_eq!(c.message().unwrap(), "Fix the thing (#42)\n\nDetails.");
    for sig in [c.author(), c.committer()] {
        assert_eq!(sig.name().unwrap(), AUTHOR);
        assert_eq!(sig.email().unwrap(), EMAIL);
    }
    assert_eq!(c.parent_id(0).unwrap().to_string(), co.base_commit);
    let tree = c.tree().unwrap();
    assert!(tree.get_path(Path::new("new/added.txt")).is_ok());
    assert!(tree.get_path(Path::new(".config/hidden.toml")).is_ok());
    assert!(tree.get_name("src.txt").is_none(), "deletion committed");
    assert!(
        tree.get_name("build.log").is_none(),
        "ignored file committed"
    );
    let readme = tree
        .get_name("README.md")
        .unwrap()
        .to_object(&repo)
        .unwrap();
    assert_eq!(readme.as_blob().unwrap().content(), b"# changed\n");
    assert_eq!(head(&co), committed.commit);

    assert_eq!(ws.commit_all(&co, "again").unwrap(), None);
}

#[test]
fn commit_all_leaves_out_files_over_the_size_limit() {
    let remote = BareRemote::new();
    let (_root, ws) = pod();
    let ws = ws.with_max_file_bytes(100);
    let co = ws.prepare(&remote.mapping(), BRANCH).unwrap();

    write(&co, "big.bin", &"x".repeat(1000));
    write(&co, "small.txt", "small\n");
    let committed = ws.commit_all(&co, "add files").unwrap().unwrap();
    assert_eq!(committed.skipped_large, vec!["big.bin".to_string()]);
    let repo = open(&co);
    let tree = repo
        .find_commit(committed.commit.parse().unwrap())
        .unwrap()
        .tree()
        .unwrap();
    assert!(tree.get_name("small.txt").is_some());
    assert!(tree.get_name("big.bin").is_none());
}

#[test]
fn push_publishes_the_branch_and_leaves_main_alone() {
    let remote = BareRemote::new();
    let main = remote.head("main");
    let (_root, ws) = pod();
    let co = ws.prepare(&remote.mapping(), BRANCH).unwrap();
    write(&co, "feature.txt", "done\n");
    let committed = ws.commit_all(&co, "Add feature").unwrap().unwrap();

    let outcome = ws.push(&co).unwrap();
    assert_eq!(outcome.commit, committed.commit);
    assert_eq!(outcome.rebased_onto, None);
    assert_eq!(remote.head(BRANCH).unwrap().to_string(), committed.commit);
    assert_eq!(
        remote.read_file(BRANCH, "feature.txt").as_deref(),
        Some("done\n")
    );
    assert_eq!(remote.head("main"), main);
    assert_eq!(ws.unpushed_commits(&co).unwrap(), vec![]);
}

#[test]
fn push_after_a_non_conflicting_concurrent_push_rebases_and_pushes() {
    let remote = BareRemote::new();
    let (_root, ws) = pod();
    let co = ws.prepare(&remote.mapping(), BRANCH).unwrap();
    commit_and_push(&ws, &co, "ours-1.txt", "one\n");
    let theirs = remote.commit_file(BRANCH, "theirs.txt", "theirs\n", "their change");

    write(&co, "ours-2.txt", "two\n");
    let ours = ws.commit_all(&co, "our second change").unwrap().unwrap();
    let outcome = ws.push(&co).unwrap();

    assert_eq!(outcome.rebased_onto, Some(theirs.to_string()));
    assert_ne!(outcome.commit, ours.commit, "the commit was rewritten");
    assert_eq!(remote.head(BRANCH).unwrap().to_string(), outcome.commit);
    assert_eq!(
        remote.log(BRANCH)[..3],
        ["our second change", "their change", "change ours-1.txt"]
    );
    for file in ["ours-1.txt", "theirs.txt", "ours-2.txt"] {
        assert!(remote.read_file(BRANCH, file).is_some(), "{file} missing");
    }
    assert_eq!(head(&co), outcome.commit, "local branch follows the push");
    assert_eq!(read(&co, "theirs.txt").as_deref(), Some("theirs\n"));
    let repo = open(&co);
    let rebased = repo.find_commit(outcome.commit.parse().unwrap()).unwrap();
    assert_eq!(rebased.author().name().unwrap(), AUTHOR);
}

#[test]
fn conflicting_concurrent_push_is_reported_with_evidence_and_nothing_moves() {
    let remote = BareRemote::new();
    let (_root, ws) = pod();
    let co = ws.prepare(&remote.mapping(), BRANCH).unwrap();
    commit_and_push(&ws, &co, "src.txt", "line one\nline TWO\nline three\n");
    let theirs = remote.commit_file(BRANCH, "src.txt", "rewritten entirely\n", "their rewrite");

    write(&co, "src.txt", "line one\nline 2!\nline three\n");
    let ours = ws.commit_all(&co, "our edit").unwrap().unwrap().commit;
    let err = ws.push(&co).unwrap_err();

    let WorkspaceError::RebaseConflict(evidence) = &err else {
        panic!("expected a rebase conflict, got {err:?}");
    };
    assert_eq!(evidence.paths, vec!["src.txt".to_string()]);
    assert_eq!(evidence.remote_head, theirs.to_string());
    assert_eq!(evidence.our_head, ours);
    assert_eq!(evidence.conflicting_commit, ours);
    assert!(!err.is_environment());
    assert!(err.to_string().contains("src.txt"), "{err}");
    assert_eq!(remote.head(BRANCH), Some(theirs), "remote untouched");
    assert_eq!(head(&co), ours, "local branch untouched");
    assert_eq!(
        read(&co, "src.txt").as_deref(),
        Some("line one\nline 2!\nline three\n")
    );
    assert_eq!(dirty_paths(&co), Vec::<String>::new());
    assert!(
        !co.path.join(".git/rebase-merge").exists(),
        "no rebase left in progress"
    );
}

/// Makes the remote refuse updates of `branch`: a held ref lock, which libgit2's local transport
/// reports per ref through `push_update_reference`, as a server-side refusal would be.
fn lock_remote_branch(remote: &BareRemote, branch: &str) {
    let lock = remote.path.join(format!("refs/heads/{branch}.lock"));
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    std::fs::write(lock, "").unwrap();
}

#[test]
fn push_refused_by_the_remote_is_reported_with_evidence() {
    let remote = BareRemote::new();
    let (_root, ws) = pod();
    let co = ws.prepare(&remote.mapping(), BRANCH).unwrap();
    write(&co, "x.txt", "x\n");
    let ours = ws.commit_all(&co, "x").unwrap().unwrap().commit;
    lock_remote_branch(&remote, BRANCH);

    let err = ws.push(&co).unwrap_err();
    let WorkspaceError::PushRejected(evidence) = &err else {
        panic!("expected a rejected push, got {err:?}");
    };
    assert_eq!(evidence.our_head, ours);
    assert_eq!(evidence.remote_head, None);
    assert_eq!(evidence.rebased_head, None);
    assert!(!evidence.reason.is_empty());
    assert!(err.to_string().contains(&ours), "{err}");
    assert_eq!(remote.head(BRANCH), None);
    assert_eq!(ws.unpushed_commits(&co).unwrap().len(), 1);
}

#[test]
fn refused_second_push_after_rebase_leaves_the_local_branch_as_it_was() {
    let remote = BareRemote::new();
    let (_root, ws) = pod();
    let co = ws.prepare(&remote.mapping(), BRANCH).unwrap();
    commit_and_push(&ws, &co, "one.txt", "1\n");
    let theirs = remote.commit_file(BRANCH, "theirs.txt", "t\n", "theirs");
    write(&co, "two.txt", "2\n");
    let ours = ws.commit_all(&co, "two").unwrap().unwrap().commit;
    lock_remote_branch(&remote, BRANCH);

    let err = ws.push(&co).unwrap_err();
    let WorkspaceError::PushRejected(evidence) = &err else {
        panic!("expected a rejected push, got {err:?}");
    };
    assert_eq!(evidence.remote_head, Some(theirs.to_string()));
    assert_eq!(evidence.our_head, ours);
    let rebased = evidence.rebased_head.clone().expect("a rebase was tried");
    assert_ne!(rebased, ours);
    assert_eq!(remote.head(BRANCH), Some(theirs), "remote untouched");
    assert_eq!(head(&co), ours, "local branch untouched");
    assert!(read(&co, "theirs.txt").is_none(), "working tree untouched");
    assert!(
        open(&co).find_reference("refs/journeyman/rebased").is_err(),
        "temporary push ref removed"
    );
}

#[test]
fn missing_base_branch_is_a_clear_environment_error() {
    let remote = BareRemote::new();
    let (_root, ws) = pod();
    let mapping = RepoMapping {
        base_branch: "develop".into(),
        ..remote.mapping()
    };
    let err = ws.prepare(&mapping, BRANCH).unwrap_err();
    assert!(
        matches!(&err, WorkspaceError::BaseBranchMissing { branch, .. } if branch == "develop"),
        "{err:?}"
    );
    assert!(err.is_environment());
    let text = err.to_string();
    assert!(
        text.contains("`develop`") && text.contains("JOURNEYMAN_REPOS"),
        "{text}"
    );
}

#[test]
fn unreachable_remote_is_a_network_environment_error_and_leaves_no_half_clone() {
    let (_root, ws) = pod();
    let mapping = RepoMapping {
        project: "demo".into(),
        url: "file:///nonexistent/journeyman/remote.git".into(),
        base_branch: "main".into(),
    };
    let err = ws.prepare(&mapping, BRANCH).unwrap_err();
    assert!(
        matches!(err, WorkspaceError::Network { op: "clone", .. }),
        "{err:?}"
    );
    assert!(err.is_environment());
    let path = ws.clone_path(&mapping.url);
    assert!(!path.exists() && !path.with_extension("cloning").exists());
}

#[test]
fn work_branch_must_be_valid_and_not_the_base_branch() {
    let remote = BareRemote::new();
    let (_root, ws) = pod();
    for bad in ["main", "agent/..", "bad name", "x.lock"] {
        let err = ws.prepare(&remote.mapping(), bad).unwrap_err();
        assert!(
            matches!(err, WorkspaceError::InvalidBranch { .. }),
            "{bad}: {err:?}"
        );
    }
    assert!(
        !ws.clone_path(&remote.url()).exists(),
        "checked before touching the cache"
    );
}

#[test]
fn empty_or_corrupt_cache_directory_is_recloned() {
    let remote = BareRemote::new();
    let (_root, ws) = pod();
    let first = ws.prepare(&remote.mapping(), BRANCH).unwrap();
    let path = first.path.clone();

    type Corrupt = fn(&Path);
    let corruptions: [(&str, Corrupt); 3] = [
        ("empty directory", |p| {
            std::fs::remove_dir_all(p).unwrap();
            std::fs::create_dir(p).unwrap();
        }),
        ("objects deleted", |p| {
            std::fs::remove_dir_all(p.join(".git/objects")).unwrap();
        }),
        ("junk .git file", |p| {
            std::fs::remove_dir_all(p.join(".git")).unwrap();
            std::fs::write(p.join(".git"), "not a repository").unwrap();
        }),
    ];
    for (what, corrupt) in corruptions {
        corrupt(&path);
        std::fs::create_dir_all(path.with_extension("cloning")).unwrap();
        let co = ws
            .prepare(&remote.mapping(), BRANCH)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(co.path, path, "{what}");
        assert_eq!(
            head(&co),
            remote.head("main").unwrap().to_string(),
            "{what}"
        );
        assert_eq!(
            read(&co, "README.md").as_deref(),
            Some("# demo\n"),
            "{what}"
        );
        assert!(!path.with_extension("cloning").exists(), "{what}");
    }
}

#[test]
fn token_never_reaches_git_config_files_or_error_text() {
    let remote = BareRemote::new();
    let auth = GitAuth::new(Some(SecretString::from(TOKEN)), None);
    let (_root, ws) = pod_with(auth);
    assert!(!format!("{ws:?}").contains(TOKEN));

    let co = ws.prepare(&remote.mapping(), BRANCH).unwrap();
    commit_and_push(&ws, &co, "a.txt", "a\n");
    remote.commit_file(BRANCH, "b.txt", "b\n", "theirs");
    commit_and_push_rebased(&ws, &co);
    ws.prepare(&remote.mapping(), BRANCH).unwrap();

    let config = std::fs::read_to_string(co.path.join(".git/config")).unwrap();
    assert!(config.contains(&remote.url()), "{config}");
    assert_no_token_under(&co.path.join(".git"));

    let errors = [
        ws.prepare(
            &RepoMapping {
                base_branch: "develop".into(),
                ..remote.mapping()
            },
            BRANCH,
        )
        .unwrap_err(),
        ws.prepare(
            &RepoMapping {
                url: "file:///nonexistent/remote.git".into(),
                ..remote.mapping()
            },
            BRANCH,
        )
        .unwrap_err(),
    ];
    for err in errors {
        assert!(!err.to_string().contains(TOKEN), "{err}");
        assert!(!format!("{err:?}").contains(TOKEN), "{err:?}");
    }
}

fn commit_and_push_rebased(ws: &Workspaces, co: &Checkout) {
    write(co, "c.txt", "c\n");
    ws.commit_all(co, "c").unwrap().unwrap();
    assert!(ws.push(co).unwrap().rebased_onto.is_some());
}

/// Fails if any file under `dir` contains the token.
fn assert_no_token_under(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            assert_no_token_under(&path);
        } else {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()),
                "token found in {}",
                path.display()
            );
        }
    }
}

/// An HTTP "git server" that answers every request with 401 and reports each request's
/// Authorization header.
fn always_unauthorized() -> (String, mpsc::Receiver<Option<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut authorization = None;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("authorization")
                {
                    authorization = Some(value.trim().to_string());
                }
            }
            // Reported before answering, so the client has seen every report once it gives up.
            let _ = tx.send(authorization);
            let _ = stream.write_all(
                b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\n\
                  Content-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    (format!("http://{addr}/org/repo.git"), rx)
}

#[test]
fn rejected_http_credentials_give_up_after_one_attempt_without_leaking_the_token() {
    let (url, requests) = always_unauthorized();
    let (_root, ws) = pod_with(GitAuth::new(Some(SecretString::from(TOKEN)), None));
    let mapping = RepoMapping {
        project: "demo".into(),
        url: url.clone(),
        base_branch: "main".into(),
    };
    let err = ws.prepare(&mapping, BRANCH).unwrap_err();

    assert!(matches!(err, WorkspaceError::Auth { .. }), "{err:?}");
    assert!(err.is_environment());
    assert!(
        err.to_string()
            .contains("rejected the configured credentials"),
        "{err}"
    );
    assert!(!err.to_string().contains(TOKEN) && !format!("{err:?}").contains(TOKEN));
    let seen: Vec<Option<String>> = requests.try_iter().collect();
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{TOKEN}"))
    );
    assert_eq!(
        seen.iter()
            .filter(|a| a.as_deref() == Some(&expected))
            .count(),
        1,
        "the token is offered exactly once: {seen:?}"
    );
    assert!(seen.len() <= 3, "credential loop: {} requests", seen.len());
    assert!(!ws.clone_path(&url).exists());
}

#[test]
fn http_remote_without_configured_credentials_fails_with_what_to_set() {
    let (url, _requests) = always_unauthorized();
    let (_root, ws) = pod();
    let mapping = RepoMapping {
        project: "demo".into(),
        url,
        base_branch: "main".into(),
    };
    let err = ws.prepare(&mapping, BRANCH).unwrap_err();
    assert!(matches!(err, WorkspaceError::Auth { .. }), "{err:?}");
    assert!(err.to_string().contains("JOURNEYMAN_GIT_TOKEN"), "{err}");
}

#[test]
fn unpushed_commit_on_a_never_pushed_branch_survives_a_fresh_prepare_and_is_pushed() {
    let remote = BareRemote::new();
    let (root, ws) = pod();
    let co = ws.prepare(&remote.mapping(), BRANCH).unwrap();
    write(&co, "work.txt", "done before the pod was killed\n");
    let committed = ws.commit_all(&co, "the work").unwrap().unwrap().commit;
    drop(ws); // the pod dies here, before pushing

    let ws = Workspaces::new(root.path().join("repos"), GitAuth::none(), AUTHOR, EMAIL);
    let co = ws.prepare(&remote.mapping(), BRANCH).unwrap();
    assert_eq!(co.start, BranchStart::KeptUnpushed);
    assert_eq!(head(&co), committed);
    assert_eq!(
        ws.unpushed_commits(&co).unwrap(),
        vec![(committed.clone(), "the work".to_string())]
    );
    assert_eq!(ws.push(&co).unwrap().commit, committed);
    assert_eq!(remote.head(BRANCH).unwrap().to_string(), committed);
    assert_eq!(ws.unpushed_commits(&co).unwrap(), vec![]);
}

#[test]
fn unpushed_commits_ahead_of_a_pushed_branch_survive_a_fresh_prepare_and_are_pushed() {
    let remote = BareRemote::new();
    let (root, ws) = pod();
    let co = ws.prepare(&remote.mapping(), BRANCH).unwrap();
    commit_and_push(&ws, &co, "one.txt", "1\n");
    write(&co, "two.txt", "2\n");
    let second = ws.commit_all(&co, "second").unwrap().unwrap().commit;
    write(&co, "three.txt", "3\n");
    let third = ws.commit_all(&co, "third").unwrap().unwrap().commit;
    drop(ws);

    let ws = Workspaces::new(root.path().join("repos"), GitAuth::none(), AUTHOR, EMAIL);
    let co = ws.prepare(&remote.mapping(), BRANCH).unwrap();
    assert_eq!(co.start, BranchStart::KeptUnpushed);
    let unpushed = ws.unpushed_commits(&co).unwrap();
    assert_eq!(
        unpushed,
        vec![(second, "second".into()), (third.clone(), "third".into())]
    );
    ws.push(&co).unwrap();
    assert_eq!(remote.head(BRANCH).unwrap().to_string(), third);
}

#[test]
fn diverged_local_commits_yield_to_the_remote_but_stay_reachable() {
    let remote = BareRemote::new();
    let (_root, ws) = pod();
    let co = ws.prepare(&remote.mapping(), BRANCH).unwrap();
    commit_and_push(&ws, &co, "one.txt", "1\n");
    write(&co, "local.txt", "unpushed\n");
    let local = ws.commit_all(&co, "unpushed").unwrap().unwrap().commit;
    let theirs = remote.commit_file(BRANCH, "theirs.txt", "t\n", "theirs");

    let co = ws.prepare(&remote.mapping(), BRANCH).unwrap();
    assert_eq!(co.start, BranchStart::Resumed);
    assert_eq!(head(&co), theirs.to_string());
    let kept = format!("refs/journeyman/abandoned/{BRANCH}/{local}");
    assert_eq!(open(&co).refname_to_id(&kept).unwrap().to_string(), local);
}

#[test]
fn branch_merged_and_deleted_on_the_remote_starts_again_from_base() {
    let remote = BareRemote::new();
    let (_root, ws) = pod();
    let co = ws.prepare(&remote.mapping(), BRANCH).unwrap();
    let pushed = commit_and_push(&ws, &co, "one.txt", "1\n");
    // A human fast-forwards main to the branch and deletes the branch.
    remote
        .repo
        .reference("refs/heads/main", pushed.parse().unwrap(), true, "merge")
        .unwrap();
    remote
        .repo
        .find_reference(&format!("refs/heads/{BRANCH}"))
        .unwrap()
        .delete()
        .unwrap();
    let main = remote.commit_file("main", "later.txt", "later\n", "later on main");

    let co = ws.prepare(&remote.mapping(), BRANCH).unwrap();
    assert_eq!(co.start, BranchStart::Created);
    assert_eq!(head(&co), main.to_string());
}

#[tokio::test]
async fn async_run_prepares_on_the_blocking_pool() {
    let remote = BareRemote::new();
    let (_root, ws) = pod();
    let mapping = remote.mapping();
    let co = ws
        .run(move |ws| ws.prepare(&mapping, BRANCH))
        .await
        .unwrap();
    assert_eq!(co.base_commit, remote.head("main").unwrap().to_string());
}

#[test]
fn branch_name_examples() {
    assert_eq!(branch_name(42, "Fix login bug"), "agent/42-fix-login-bug");
    assert_eq!(branch_name(7, "日本語"), "agent/7");
    assert_eq!(
        branch_name(8, "--Refs/heads/main.lock"),
        "agent/8-refs-heads-main-lock"
    );
}

proptest! {
    #[test]
    fn branch_name_is_always_a_valid_branch_for_any_subject(
        id in any::<u64>(),
        subject in prop_oneof![any::<String>(), "[-./~^:?*\\[\\\\@{} \t\na-zA-Z0-9]{0,120}"],
    ) {
        let name = branch_name(id, &subject);
        prop_assert!(Reference::is_valid_name(&format!("refs/heads/{name}")), "{name:?}");
        let prefix = format!("agent/{id}");
        prop_assert!(name.starts_with(&prefix), "{}", name);
        prop_assert!(name.len() <= prefix.len() + 41, "{}", name);
        prop_assert!(name[6..].chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
        prop_assert!(!name.ends_with('-') && !name.contains("--"), "{}", name);
    }
}

#[test]
fn stale_git_locks_left_by_a_killed_fetch_do_not_block_the_next_prepare() {
    let remote = BareRemote::new();
    let (_root, ws) = pod();
    let co = ws.prepare(&remote.mapping(), BRANCH).unwrap();
    let git = co.path.join(".git");
    // What a SIGKILL during a fetch leaves behind.
    std::fs::create_dir_all(git.join("refs/remotes/origin/agent")).unwrap();
    std::fs::write(git.join("refs/remotes/origin/agent/33-x.lock"), "").unwrap();
    std::fs::write(git.join("refs/remotes/origin/main.lock"), "").unwrap();
    std::fs::write(git.join("packed-refs.lock"), "").unwrap();
    remote.commit_file("main", "later.txt", "later\n", "a later commit on main");
    ws.prepare(&remote.mapping(), "agent/43-next")
        .expect("prepare clears the stale locks and fetches");
    assert!(!git.join("refs/remotes/origin/main.lock").exists());
    let repo = open(&co);
    let fetched = repo.refname_to_id("refs/remotes/origin/main").unwrap();
    assert_eq!(Some(fetched), remote.head("main"), "the fetch went through");
}

const KEY: &str = "X9pushScanKeyValue0123456789abcdef";

fn pod_with_secret() -> (TempDir, Workspaces) {
    let (dir, ws) = pod();
    let ws =
        ws.with_redactor(journeyman::redact::Redactor::shapes_only().with("model API key", KEY));
    (dir, ws)
}

#[test]
fn a_push_holding_a_secret_is_refused_named_and_quarantined_and_the_next_run_starts_clean() {
    let remote = BareRemote::new();
    let (_dir, ws) = pod_with_secret();
    let co = ws.prepare(&remote.mapping(), BRANCH).unwrap();
    write(&co, "notes.txt", "fine\n");
    write(
        &co,
        "debug-env.txt",
        &format!("PATH=/bin\nANTHROPIC_API_KEY={KEY}\n"),
    );
    write(
        &co,
        "token.txt",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789\n",
    );
    let committed = ws.commit_all(&co, "debug").unwrap().expect("a change");
    let err = ws.push(&co).unwrap_err();
    let WorkspaceError::SecretFound(evidence) = &err else {
        panic!("expected a secret refusal, got {err:?}");
    };
    let places: Vec<(String, usize, String)> = evidence
        .findings
        .iter()
        .map(|f| (f.file.clone(), f.line, f.kind.clone()))
        .collect();
    assert_eq!(
        places,
        [
            ("debug-env.txt".to_string(), 2, "model API key".to_string()),
            ("token.txt".to_string(), 1, "GitHub token".to_string())
        ]
    );
    let text = err.to_string();
    assert!(
        text.contains("debug-env.txt line 2 (model API key)"),
        "{text}"
    );
    assert!(
        !text.contains(KEY) && !format!("{err:?}").contains(KEY),
        "never the value"
    );
    assert!(!err.is_environment(), "a Spike, not an environment problem");
    assert_eq!(remote.head(BRANCH), None, "nothing was pushed");
    let repo = open(&co);
    let kept = repo.refname_to_id(&evidence.quarantine).unwrap();
    assert_eq!(
        kept.to_string(),
        committed.commit,
        "the commit is kept for inspection"
    );
    assert_ne!(
        head(&co),
        committed.commit,
        "the work branch no longer holds it"
    );
    drop(repo);
    let again = ws.prepare(&remote.mapping(), BRANCH).unwrap();
    assert_ne!(
        again.start,
        BranchStart::KeptUnpushed,
        "the next run does not resume it"
    );
    assert!(read(&again, "debug-env.txt").is_none());
}

#[test]
fn commit_messages_are_cleaned_of_secrets() {
    let remote = BareRemote::new();
    let (_dir, ws) = pod_with_secret();
    let co = ws.prepare(&remote.mapping(), BRANCH).unwrap();
    write(&co, "a.txt", "a\n");
    let committed = ws
        .commit_all(&co, &format!("Done. The key was {KEY}."))
        .unwrap()
        .unwrap();
    let repo = open(&co);
    let message = repo
        .find_commit(git2::Oid::from_str(&committed.commit).unwrap())
        .unwrap()
        .message()
        .unwrap()
        .to_string();
    assert_eq!(message, "Done. The key was [redacted: model API key].");
    drop(repo);
    ws.push(&co).expect("a clean commit is pushed");
}

#[test]
fn a_stopped_runs_checkout_is_kept_across_other_tasks_and_restored_uncommitted_never_pushed() {
    let remote = BareRemote::new();
    let (_root, ws) = pod();
    let co = ws.prepare(&remote.mapping(), BRANCH).unwrap();
    write(&co, "src/parser.rs", "half done\n");
    write(&co, "README.md", "# demo, edited\n");
    let kept = ws
        .keep_stopped(&remote.mapping(), BRANCH)
        .unwrap()
        .expect("a change to keep");
    let stopped_ref = format!("refs/journeyman/stopped/{BRANCH}");
    assert_eq!(
        open(&co).refname_to_id(&stopped_ref).unwrap().to_string(),
        kept
    );
    // Another task of this pod cleans the shared clone in between.
    let other = ws.prepare(&remote.mapping(), "agent/7-other-work").unwrap();
    assert_eq!(read(&other, "src/parser.rs"), None);

    let back = ws.prepare(&remote.mapping(), BRANCH).unwrap();
    assert_eq!(read(&back, "src/parser.rs").as_deref(), Some("half done\n"));
    assert_eq!(
        read(&back, "README.md").as_deref(),
        Some("# demo, edited\n")
    );
    assert_eq!(
        head(&back),
        remote.head("main").unwrap().to_string(),
        "restored as changes, not as a commit"
    );
    assert!(
        ["README.md", "src/"]
            .iter()
            .all(|p| dirty_paths(&back).contains(&p.to_string())),
        "{:?}",
        dirty_paths(&back)
    );
    assert!(
        open(&back).find_reference(&stopped_ref).is_err(),
        "the kept ref is used up"
    );
    assert!(remote.head(BRANCH).is_none(), "nothing was pushed");
    // A third prepare starts clean again: the kept changes were given back once.
    write(&back, "src/parser.rs", "x\n");
    let again = ws.prepare(&remote.mapping(), BRANCH).unwrap();
    assert_eq!(read(&again, "src/parser.rs"), None);
}

#[test]
fn keeping_an_unchanged_checkout_or_another_branch_keeps_nothing() {
    let remote = BareRemote::new();
    let (_root, ws) = pod();
    let _co = ws.prepare(&remote.mapping(), BRANCH).unwrap();
    assert_eq!(ws.keep_stopped(&remote.mapping(), BRANCH).unwrap(), None);
    assert_eq!(
        ws.keep_stopped(&remote.mapping(), "agent/9-not-checked-out")
            .unwrap(),
        None
    );
}
