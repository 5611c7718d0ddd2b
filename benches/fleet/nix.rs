//! Section 6: entering a Nix dev shell as the worker does before every agent run (`nix develop
//! --command true` in a git checkout, through `Agent::enter_environment`: process group, the
//! agent's environment), for the offline flake of the Nix tests (`tests/fixtures/nix/`).
//!
//! Cold: the first entry after the flake changed (a commit that changes a variable of the shell):
//! a new source in the store, a new evaluation, the shell's environment built. Warm: the same
//! flake again (Nix's evaluation cache and the built environment reused). Skipped, with a line,
//! where Nix is not installed.

use std::ffi::OsString;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow};
use journeyman::agent::{Agent, ClaudeCli, EnvWrapper};
use tokio_util::sync::CancellationToken;

use crate::common::{Plan, ms, percentile};

const FLAKE: &str = include_str!("../../tests/fixtures/nix/offline-flake.nix");
const NIX_CONFIG: &str = include_str!("../../scripts/lib/nix-offline.conf");
const TIMEOUT: Duration = Duration::from_secs(120);

pub async fn run(plan: &Plan) -> anyhow::Result<()> {
    println!("## 6. Entering a Nix dev shell (`nix develop --command true`, offline flake)\n");
    let version = std::process::Command::new("nix").arg("--version").output();
    let Some(version) = version.ok().filter(|o| o.status.success()) else {
        println!("Skipped: nix is not installed (scripts/test installs it).\n");
        return Ok(());
    };
    let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
    println!(
        "{version}, single-user, settings of `scripts/lib/nix-offline.conf`. The flake has no inputs; its dev shell is a plain derivation (`tests/fixtures/nix/offline-flake.nix`), so this is Nix's own cost: copying the checkout to the store, evaluating, building the shell's environment, starting bash. A shell built from nixpkgs adds the evaluation of nixpkgs and, cold, its downloads (not measured here: that needs GitHub and a binary cache).\n"
    );
    let dir = tempfile::tempdir()?;
    let checkout = dir.path().join("checkout");
    let repo = git2::Repository::init(&checkout)?;
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp)?;
    let cli = ClaudeCli::new("true")
        .with_wrapper(EnvWrapper::default())
        .with_env(environment(&dir.path().join("home"), &tmp));
    let cancel = CancellationToken::new();
    let enter = || async {
        cli.enter_environment(&checkout, TIMEOUT, &cancel)
            .await
            .map_err(|e| anyhow!("nix develop failed: {}\n{}", e.reason(), e.evidence()))?
            .ok_or_else(|| anyhow!("the default wrapper is `nix develop --command`"))
    };
    let mut cold = Vec::with_capacity(plan.nix_cold);
    for i in 0..plan.nix_cold {
        commit_flake(&repo, &checkout, &format!("bench-{}-{i}", nanos()))?;
        cold.push(enter().await?);
    }
    let mut warm = Vec::with_capacity(plan.nix_warm);
    for _ in 0..plan.nix_warm {
        warm.push(enter().await?);
    }
    println!("| start | runs | median | min | max |");
    println!("|---|---:|---:|---:|---:|");
    for (name, mut samples) in [("cold (flake changed)", cold), ("warm (same flake)", warm)] {
        samples.sort();
        println!(
            "| {name} | {} | {} | {} | {} |",
            samples.len(),
            ms(percentile(&samples, 50.0)),
            ms(samples[0]),
            ms(samples[samples.len() - 1])
        );
    }
    let left = std::fs::read_dir(&tmp)?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("nix-shell."))
        .count();
    println!(
        "\n{left} `$TMPDIR/nix-shell.*` directories were left behind by {} entries (Nix execs the command, so nothing removes the shell's temporary directory).\n",
        plan.nix_cold + plan.nix_warm
    );
    Ok(())
}

/// What the agent's environment would hold: `PATH`, a `HOME` of its own, the offline settings,
/// a `TMPDIR` of the bench's.
fn environment(home: &Path, tmp: &Path) -> Vec<(OsString, OsString)> {
    let mut env = vec![
        ("HOME".into(), home.as_os_str().to_owned()),
        ("NIX_CONFIG".into(), NIX_CONFIG.into()),
        ("TMPDIR".into(), tmp.as_os_str().to_owned()),
    ];
    if let Some(path) = std::env::var_os("PATH") {
        env.push(("PATH".into(), path));
    }
    env
}

/// Commits the offline flake with `marker` as its shell's variable: a new source for Nix.
fn commit_flake(repo: &git2::Repository, checkout: &Path, marker: &str) -> anyhow::Result<()> {
    std::fs::write(
        checkout.join("flake.nix"),
        FLAKE.replace("@MARKER@", marker),
    )
    .context("writing flake.nix")?;
    let mut index = repo.index()?;
    index.add_path(Path::new("flake.nix"))?;
    index.write()?;
    let tree = repo.find_tree(index.write_tree()?)?;
    let sig = git2::Signature::now("Bench", "bench@example.com")?;
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<_> = parent.iter().collect();
    repo.commit(Some("HEAD"), &sig, &sig, marker, &tree, &parents)?;
    Ok(())
}

fn nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}
