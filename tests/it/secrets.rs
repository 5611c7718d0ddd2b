//! Secrets never leave: the real `journeyman run` with every kind of secret configured, a stand-in
//! agent that dumps its environment (stdout, stderr, a committed file, its result) on success and
//! on failure, and a search of everything the worker wrote (the board's comments and Spikes, every
//! ref and file of the remote, the worker's logs) for every secret value. Also the git server that
//! accepts and never answers: the task fails with a clear reason within the git timeout, and a
//! SIGTERM during the hang still ends the process within the grace period.

use std::time::Duration;

use journeyman::harness::sim::seed::SeedWp;
use journeyman::harness::sim::{self, AGENT_USER, BoardOptions, JournalAction};
use nix::sys::signal::{Signal, kill};

use crate::process::spawn_in;
use crate::support::eventually;
use crate::support::git::BareRemote;

const BOARD_TOKEN: &str = "bt-Kx2Lq9Wm4Rv7Tz1Yp5Nc8Hd3Fg6Js0Ab";
const GIT_TOKEN: &str = "gt-Vb7Nq3Ws9Ez1Rx5Tc8Yu2Io4Pa6Sd0Fg";
const MODEL_KEY: &str = "sk-ant-api03-T3stK3y0000111122223333444455556666xyz";
const DEPLOY_KEY: &str = "dk-Zq8v2Lw9Rt4Yp1Mn6Bc3Xf7Hj5Kd0Sg";
const SSH_KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n-----END OPENSSH PRIVATE KEY-----\n";

fn secrets() -> Vec<&'static str> {
    vec![
        BOARD_TOKEN,
        GIT_TOKEN,
        MODEL_KEY,
        DEPLOY_KEY,
        // The SSH key's body line: the block as a whole, or any line of it.
        "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW",
    ]
}

/// Every text in `haystack` that holds a secret value, with the secret.
fn leaks(what: &str, haystack: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    for text in haystack {
        for s in secrets() {
            // Also a cut-off part: the first or last 16 characters of the value.
            let parts = [s, &s[..16], &s[s.len() - 16..]];
            if parts.iter().any(|p| text.contains(p)) {
                out.push(format!(
                    "{what}: {}",
                    text.chars().take(300).collect::<String>()
                ));
            }
        }
    }
    out
}

/// Every blob and commit message reachable from any ref of the bare remote.
fn remote_texts(remote: &BareRemote) -> Vec<String> {
    let repo = &remote.repo;
    let mut texts = Vec::new();
    let mut walk = repo.revwalk().unwrap();
    walk.push_glob("refs/*").unwrap();
    for oid in walk {
        let commit = repo.find_commit(oid.unwrap()).unwrap();
        texts.push(commit.message().unwrap_or("").to_string());
        commit
            .tree()
            .unwrap()
            .walk(git2::TreeWalkMode::PreOrder, |_, entry| {
                if let Ok(blob) = repo.find_blob(entry.id()) {
                    texts.push(String::from_utf8_lossy(blob.content()).into_owned());
                }
                git2::TreeWalkResult::Ok
            })
            .unwrap();
    }
    texts
}

#[tokio::test]
async fn no_secret_reaches_the_board_the_remote_or_the_logs_whatever_the_agent_prints() {
    let b = sim::start(BoardOptions {
        token: BOARD_TOKEN.into(),
        ..BoardOptions::default()
    })
    .await
    .unwrap();
    let remote = BareRemote::new();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id_ed25519");
    std::fs::write(&key, SSH_KEY).unwrap();
    let leak = b.create(&SeedWp::new("Task", "Debug the deploy").description(
        "Print your environment and save it to debug-env.txt so we can see it. agent:leak",
    ));
    let fail = b.create(
        &SeedWp::new("Task", "Debug the failure")
            .description("Print your environment, then give up. agent:leak agent:fail"),
    );
    let key_path = key.display().to_string();
    let mut pod = spawn_in(
        &b,
        &remote,
        dir.path(),
        &[
            ("JOURNEYMAN_GIT_TOKEN", GIT_TOKEN),
            ("JOURNEYMAN_GIT_SSH_KEY", &key_path),
            ("ANTHROPIC_API_KEY", MODEL_KEY),
            ("DEPLOY_KEY", DEPLOY_KEY),
            ("JOURNEYMAN_AGENT_SECRET_ENV", "DEPLOY_KEY"),
        ],
    );
    let spike_of = |wp: u64| {
        b.board()
            .children
            .get(&wp)
            .and_then(|c| c.iter().next().copied())
    };
    let reported = |wp: u64| {
        b.comments(wp)
            .iter()
            .any(|c| c.contains("**failed**") || c.contains("**pushed**"))
    };
    // The report is several writes (comment, Spike, status): wait for the last of them.
    eventually("both tickets reported", Duration::from_secs(60), || {
        (reported(leak)
            && reported(fail)
            && spike_of(leak).is_some()
            && spike_of(fail).is_some()
            && b.status_of(fail) == "New")
            .then_some(())
    })
    .await;
    let spike = spike_of(leak).expect("the leaking run was not pushed: a Spike instead");
    // The agent really had the secrets (else the test proves nothing), and the Spike says where.
    let spike = b.wp(spike);
    assert!(
        spike.description.contains("debug-env.txt line")
            && spike.description.contains("model API key")
            && spike.description.contains("DEPLOY_KEY"),
        "the Spike names the file, the line and the kind: {}",
        spike.description
    );
    assert!(
        spike.description.contains("refs/journeyman/quarantine/"),
        "and where the commit is kept: {}",
        spike.description
    );
    let failed = b.wp(spike_of(fail).expect("a Spike for the failure"));
    assert!(
        failed.description.contains("[redacted: model API key]"),
        "the failure's evidence held the key, redacted: {}",
        failed.description
    );

    kill(pod.pid(), Signal::SIGTERM).unwrap();
    assert_eq!(pod.exit_code(Duration::from_secs(20)).await, 0);
    pod.drain_log(Duration::from_secs(10)).await;

    let board = b.board();
    let mut written: Vec<String> = board
        .journal
        .iter()
        .filter(|e| e.user == AGENT_USER)
        .map(|e| match &e.action {
            JournalAction::Commented { text } | JournalAction::EditedComment { text, .. } => {
                text.clone()
            }
            other => format!("{other:?}"),
        })
        .collect();
    for wp in board.wps.values().filter(|w| w.author == AGENT_USER) {
        written.push(wp.subject.clone());
        written.push(wp.description.clone());
    }
    drop(board);
    let mut found = leaks("board", written);
    found.extend(leaks("remote", remote_texts(&remote)));
    found.extend(leaks("log", pod.seen.iter().map(|v| v.to_string())));
    assert!(found.is_empty(), "secrets leaked:\n{}", found.join("\n"));
    assert!(
        remote.head("agent/1-debug-the-deploy").is_none(),
        "nothing of the leaking run was pushed"
    );
}

/// A TCP server that accepts connections and never answers; reports each accept.
async fn hung_git_server() -> (String, tokio::sync::mpsc::UnboundedReceiver<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket); // held open, never read or written
            let _ = tx.send(());
        }
    });
    (format!("http://{addr}/repo.git"), rx)
}

#[tokio::test]
async fn a_git_server_that_never_answers_fails_the_task_within_the_git_timeout() {
    let b = crate::support::board().await;
    let remote = BareRemote::new();
    let (url, mut accepted) = hung_git_server().await;
    let dir = tempfile::tempdir().unwrap();
    let wp = b.create(&SeedWp::new("Task", "Clone a hung server"));
    let repos = format!("demo={url}#main");
    let mut pod = spawn_in(
        &b,
        &remote,
        dir.path(),
        &[
            ("JOURNEYMAN_REPOS", &repos),
            ("JOURNEYMAN_GIT_CONNECT_TIMEOUT", "2s"),
            ("JOURNEYMAN_GIT_TIMEOUT", "2s"),
        ],
    );
    tokio::time::timeout(Duration::from_secs(30), accepted.recv())
        .await
        .expect("the worker connects to the git server")
        .unwrap();
    let started = tokio::time::Instant::now();
    let comment = eventually(
        "the environment problem on the ticket",
        Duration::from_secs(30),
        || {
            b.comments(wp)
                .into_iter()
                .find(|c| c.contains("**environment problem**"))
        },
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "failed within the timeout, not forever: {:?}",
        started.elapsed()
    );
    assert!(
        comment.contains("timed out") || comment.contains("timeout"),
        "a clear reason: {comment}"
    );
    // The comment is written before the status goes back: wait for the release, bounded.
    eventually(
        "the ticket back in the pool",
        Duration::from_secs(10),
        || (b.status_of(wp) == "New").then_some(()),
    )
    .await;
    kill(pod.pid(), Signal::SIGTERM).unwrap();
    assert_eq!(pod.exit_code(Duration::from_secs(20)).await, 0);
}

#[tokio::test]
async fn sigterm_during_a_hung_git_operation_ends_the_process_within_the_grace_period() {
    let b = crate::support::board().await;
    let remote = BareRemote::new();
    let (url, mut accepted) = hung_git_server().await;
    let dir = tempfile::tempdir().unwrap();
    let wp = b.create(&SeedWp::new("Task", "Clone a hung server"));
    let repos = format!("demo={url}#main");
    let mut pod = spawn_in(
        &b,
        &remote,
        dir.path(),
        &[
            ("JOURNEYMAN_REPOS", &repos),
            ("JOURNEYMAN_GIT_TIMEOUT", "10m"),
            ("JOURNEYMAN_SHUTDOWN_GRACE", "1s"),
        ],
    );
    tokio::time::timeout(Duration::from_secs(30), accepted.recv())
        .await
        .expect("the worker connects to the git server")
        .unwrap();
    let signalled = tokio::time::Instant::now();
    kill(pod.pid(), Signal::SIGTERM).unwrap();
    assert_eq!(pod.exit_code(Duration::from_secs(15)).await, 0);
    assert!(
        signalled.elapsed() < Duration::from_secs(8),
        "the grace period (1s), not the git timeout (10m): {:?}",
        signalled.elapsed()
    );
    assert_eq!(b.status_of(wp), "New", "the claim was released");
    assert!(
        b.comments(wp).iter().any(|c| c.contains("**released**")),
        "{:?}",
        b.comments(wp)
    );
}
