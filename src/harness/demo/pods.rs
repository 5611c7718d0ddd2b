//! The demo's pods: each configured exactly as a deployed pod would be (from `JOURNEYMAN_*`
//! variables on top of this process's own, through [`Config::from_vars`], so the demo cannot use a
//! setting a real pod could not), wired by [`crate::pod`] exactly as `journeyman run` wires one,
//! and run by the same poll loop (budgets included) as a tokio task instead of a process.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use url::Url;

use crate::agent::ClaudeCli;
use crate::config::Config;
use crate::cycle::Worker;
use crate::execute::Executor;
use crate::pod::{self, Loop, Mode, Tracked};
use crate::shutdown::Shutdown;

/// Where a pod works and with what.
pub(super) struct PodEnv<'a> {
    pub board_url: &'a Url,
    /// `JOURNEYMAN_REPOS`.
    pub repos: String,
    /// The pod's own directory (clone cache and checkouts) is made below this.
    pub workdir: &'a Path,
    pub agent_command: String,
    pub task_timeout: &'a str,
}

/// One pod: its worker and its loop, as `journeyman run` wires them.
pub(super) struct Pod {
    worker: Worker<Tracked<Executor<ClaudeCli>>>,
    lp: Loop,
}

impl Pod {
    /// Configures pod `name` with its API token and resolves the board's names, as at start-up.
    pub async fn new(env: &PodEnv<'_>, name: &str, token: &str) -> anyhow::Result<Pod> {
        let config = config(env, name, token)?;
        let (client, resolved) = pod::connect(&config, None)
            .await
            .with_context(|| format!("{name}: resolving board names"))?
            .context("connect without a shutdown always answers")?;
        let budget = pod::budget(&config);
        let health = pod::health(&config);
        let exec = Arc::new(Tracked {
            inner: pod::executor(&config, budget.clone()),
            health: health.clone(),
        });
        Ok(Pod {
            worker: pod::worker(&config, client, resolved, exec),
            lp: Loop {
                poll_interval: config.poll_interval,
                budget,
                health,
                mode: Mode::Loop,
            },
        })
    }

    /// The production poll loop until `shutdown` stops claiming.
    pub async fn run(mut self, shutdown: Shutdown) {
        if let Err(e) = pod::poll(&mut self.worker, &self.lp, &shutdown).await {
            tracing::error!(error = format!("{e:#}"), "pod stopped");
        }
    }
}

/// The pod's configuration, as its environment would give it.
fn config(env: &PodEnv<'_>, pod: &str, token: &str) -> anyhow::Result<Config> {
    let vars = [
        ("JOURNEYMAN_OPENPROJECT_URL", env.board_url.to_string()),
        ("JOURNEYMAN_OPENPROJECT_TOKEN", token.to_string()),
        ("JOURNEYMAN_POD_NAME", pod.to_string()),
        ("JOURNEYMAN_REPOS", env.repos.clone()),
        (
            "JOURNEYMAN_WORKDIR",
            env.workdir.join(pod).display().to_string(),
        ),
        ("JOURNEYMAN_ENV_WRAPPER", "none".into()),
        ("JOURNEYMAN_AGENT_COMMAND", env.agent_command.clone()),
        ("JOURNEYMAN_TASK_TIMEOUT", env.task_timeout.into()),
        ("JOURNEYMAN_AGENT_KILL_GRACE", "1s".into()),
        ("JOURNEYMAN_POLL_INTERVAL", "200ms".into()),
        ("JOURNEYMAN_GIT_AUTHOR_NAME", format!("journeyman {pod}")),
        (
            "JOURNEYMAN_GIT_AUTHOR_EMAIL",
            format!("{pod}@journeyman.invalid"),
        ),
    ];
    // Underneath, this process's own variables (PATH, HOME, a model key), as a pod has its own.
    let inherited = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| !k.starts_with(crate::config::PREFIX));
    let vars = vars.into_iter().map(|(k, v)| (k.to_string(), v));
    Config::from_vars(inherited.chain(vars)).with_context(|| format!("configuring {pod}"))
}
