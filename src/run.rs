//! The worker process: `journeyman run` (the loop) and `journeyman once` (one cycle).
//!
//! Owns the process-level concerns and nothing else: agents left behind by a killed run of this
//! pod, the health server, signals, start-up (the board's names, retried while the board is
//! unreachable), and the way out. SIGTERM stops claiming at once; a running task gets
//! `JOURNEYMAN_SHUTDOWN_GRACE` to finish, then its agent is stopped and the claim released with a
//! comment (the executor's `Interrupted` outcome). The process exits 0 after a clean shutdown,
//! once every task it spawned has ended. The pod itself is wired and looped by [`crate::pod`].

use std::sync::Arc;

use tracing::{info, warn};

use crate::config::Config;
use crate::http;
use crate::pod::{self, Loop};
use crate::shutdown::Shutdown;

use crate::pod::Mode;

/// Runs the worker until shutdown (or for one cycle).
pub async fn run(config: Config, mode: Mode) -> anyhow::Result<()> {
    let shutdown = Shutdown::new();
    shutdown.on_signals(config.limits.shutdown_grace)?;
    let result = serve(&config, mode, &shutdown).await;
    shutdown.join().await;
    info!(pod = %config.pod_name, "stopped");
    result
}

async fn serve(config: &Config, mode: Mode, shutdown: &Shutdown) -> anyhow::Result<()> {
    let health = pod::health(config);
    if mode == Mode::Loop {
        let addr = http::serve(
            config.listen,
            health.clone(),
            http::metrics_handle()?,
            config.redactor(),
            shutdown,
        )
        .await?;
        info!(%addr, pod = %config.pod_name, "serving /healthz, /readyz and /metrics");
    }

    let group_file = config.agent.group_file.as_deref();
    let leftovers = group_file.map_or(0, crate::agent::leftovers::kill_recorded);
    if leftovers > 0 {
        warn!(
            killed = leftovers,
            "killed agent processes left behind by a previous run of this pod"
        );
    }
    let Some((client, resolved)) = pod::connect(config, Some(shutdown)).await? else {
        info!("shut down before the board was reached");
        return Ok(());
    };
    health.board_ok();
    info!(pod = %config.pod_name, agent_user = %resolved.agent_name, projects = resolved.repos.len(), "board resolved");

    let budget = pod::budget(config);
    let exec = Arc::new(pod::Tracked {
        inner: pod::executor(config, budget.clone()),
        health: health.clone(),
    });
    let mut worker = pod::worker(config, client, resolved, exec);
    let lp = Loop {
        poll_interval: config.poll_interval,
        budget,
        health,
        mode,
    };
    pod::poll(&mut worker, &lp, shutdown).await
}
