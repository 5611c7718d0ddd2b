//! The demo's pods: each configured exactly as a deployed pod would be (from `JOURNEYMAN_*`
//! variables on top of this process's own, through [`Config::from_vars`], so the demo cannot use a
//! setting a real pod could not), wired from the same parts (board reader, executor, Claude CLI
//! runner), and looped as a tokio task instead of a process.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::agent::ClaudeCli;
use crate::config::Config;
use crate::cycle::Worker;
use crate::execute::Executor;
use crate::openproject::{Auth, Client, ClientOptions};
use crate::snapshot::{BoardReader, resolve};

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

/// One pod: a worker and its poll interval.
pub(super) struct Pod {
    worker: Worker<Executor<ClaudeCli>>,
    poll: Duration,
}

impl Pod {
    /// Configures pod `name` with its API token and resolves the board's names, as at start-up.
    pub async fn new(env: &PodEnv<'_>, name: &str, token: &str) -> anyhow::Result<Pod> {
        let config = config(env, name, token)?;
        let client = Client::new(
            env.board_url,
            Auth::ApiKey(SecretString::from(token.to_string())),
            ClientOptions {
                timeout: Duration::from_secs(10),
                ..ClientOptions::default()
            },
        )?;
        let resolved = resolve(&client, &config)
            .await
            .with_context(|| format!("{name}: resolving board names"))?;
        let reader = BoardReader::new(client, resolved, Duration::from_secs(5));
        let exec = Arc::new(Executor::from_config(
            ClaudeCli::from_options(&config.agent),
            &config,
        ));
        let policy = crate::run::policy(&config);
        Ok(Pod {
            worker: Worker::new(reader, exec, name.to_string(), policy)
                .with_max_attempts(config.limits.max_attempts),
            poll: config.poll_interval,
        })
    }

    /// Cycles; after a cycle that found nothing, waits for the next poll. Stops claiming when
    /// `claims` is cancelled; `tasks` stops a running agent.
    pub async fn run(mut self, claims: CancellationToken, tasks: CancellationToken) {
        while !claims.is_cancelled() {
            match self.worker.cycle(&claims, &tasks).await {
                Ok(r) if r.worked.is_some() || r.released_epic.is_some() => continue,
                Ok(_) => {}
                Err(e) => tracing::error!(error = format!("{e:#}"), "cycle failed"),
            }
            tokio::select! {
                _ = claims.cancelled() => break,
                _ = tokio::time::sleep(self.poll) => {}
            }
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
