//! The worker process: `journeyman run` (the loop) and `journeyman once` (one cycle).
//!
//! Owns the process-level concerns and nothing else: start-up (resolve the board's names, retrying
//! while the board is unreachable, failing fast when it answers "no"), the poll timer with jitter,
//! budgets, health, and shutdown. SIGTERM stops claiming at once; a running task gets
//! `JOURNEYMAN_SHUTDOWN_GRACE` to finish, then its agent is stopped and the claim released with a
//! comment (the executor's `Interrupted` outcome). The process exits 0 after a clean shutdown.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use rand::RngExt;
use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::agent::ClaudeCli;
use crate::board::Policy;
use crate::budget::{Budget, Exhausted};
use crate::config::Config;
use crate::cycle::{Audit, Execute, Outcome, Task, Worker};
use crate::execute::Executor;
use crate::http::{self, Health};
use crate::openproject::{Auth, Client, ClientOptions, ErrorKind};
use crate::snapshot::{BoardReader, Resolved, resolve};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Loop,
    Once,
}

/// The board client from configuration.
pub fn client(config: &Config) -> anyhow::Result<Client> {
    let token = secrecy::SecretString::from(config.openproject_token.expose_secret().to_string());
    let opts = ClientOptions {
        timeout: config.http_timeout,
        ..ClientOptions::default()
    };
    Client::new(&config.openproject_url, Auth::ApiKey(token), opts)
}

/// Resolves the board's names, retrying while the board is unreachable or failing transiently, and
/// giving up at once when it answers with a permanent error (bad token, missing names).
async fn resolve_with_retry(
    client: &Client,
    config: &Config,
    stop: &CancellationToken,
) -> anyhow::Result<Option<Resolved>> {
    let mut delay = Duration::from_secs(1);
    loop {
        match resolve(client, config).await {
            Ok(r) => return Ok(Some(r)),
            Err(e) => {
                let transient = e
                    .chain()
                    .filter_map(|c| c.downcast_ref::<crate::openproject::ApiError>())
                    .any(|a| a.kind().is_transient());
                if !transient {
                    return Err(e);
                }
                warn!(error = format!("{e:#}"), retry_in = ?delay, "the board is not reachable yet");
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return Ok(None),
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(60));
    }
}

/// Wraps the executor to keep health and budget up to date.
struct Tracked<E> {
    inner: E,
    health: Arc<Health>,
}

impl<E: Execute> Execute for Tracked<E> {
    async fn execute(&self, task: Task, audit: Audit, cancel: CancellationToken) -> Outcome {
        self.health.task_started();
        let outcome = self.inner.execute(task, audit, cancel).await;
        self.health.task_finished();
        outcome
    }
}

/// Waits for SIGTERM or SIGINT: cancels `claims` at once, and `task` after `grace` (or at a second
/// signal).
fn watch_signals(
    claims: CancellationToken,
    task: CancellationToken,
    grace: Duration,
) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tokio::spawn(async move {
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        info!(grace = ?grace, "shutdown requested: no new claims; a running task has the grace period to finish");
        claims.cancel();
        tokio::select! {
            _ = tokio::time::sleep(grace) => info!("grace period over: stopping the running task"),
            _ = term.recv() => info!("second signal: stopping the running task now"),
            _ = int.recv() => info!("second signal: stopping the running task now"),
        }
        task.cancel();
    });
    Ok(())
}

/// The decision's policy from configuration. The claim lease is the task timeout plus the shutdown
/// grace plus five minutes: a live pod always writes to its work package within it.
pub fn policy(config: &Config) -> Policy {
    let d = |d: Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
    Policy {
        epic_stale_after: d(config.epic_stale_after),
        claim_lease: d(config.limits.task_timeout
            + config.limits.shutdown_grace
            + Duration::from_secs(300)),
    }
}

fn jittered(interval: Duration) -> Duration {
    let factor: f64 = rand::rng().random_range(0.8..1.2);
    interval.mul_f64(factor)
}

/// Runs the worker until shutdown (or for one cycle).
pub async fn run(config: Config, mode: Mode) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let claims = CancellationToken::new();
    let task = CancellationToken::new();
    watch_signals(claims.clone(), task.clone(), config.limits.shutdown_grace)?;
    let health = Health::new(
        config.poll_interval,
        config.limits.task_timeout + config.limits.shutdown_grace + Duration::from_secs(300),
    );
    let stop_http = CancellationToken::new();
    if mode == Mode::Loop {
        let addr = http::serve(
            config.listen,
            health.clone(),
            http::metrics_handle()?,
            stop_http.clone(),
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
    let client = client(&config)?;
    let Some(resolved) = resolve_with_retry(&client, &config, &claims).await? else {
        info!("shut down before the board was reached");
        return Ok(());
    };
    crate::snapshot::sanity(&resolved)?;
    health.board_ok();
    info!(pod = %config.pod_name, agent_user = %resolved.agent_name, projects = resolved.repos.len(), "board resolved");

    let budget = Arc::new(Mutex::new(Budget::new(
        config.limits.hourly_budget_usd,
        config.limits.daily_budget_usd,
    )));
    let executor = Executor::from_config(ClaudeCli::from_options(&config.agent), &config)
        .with_budget(budget.clone());
    let exec = Arc::new(Tracked {
        inner: executor,
        health: health.clone(),
    });
    let reader = BoardReader::new(client, resolved, config.poll_interval * 10);
    let policy = policy(&config);
    let mut worker = Worker::new(reader, exec, config.pod_name.clone(), policy)
        .with_max_attempts(config.limits.max_attempts);

    let mut paused: Option<Exhausted> = None;
    loop {
        if claims.is_cancelled() {
            break;
        }
        health.tick();
        let now = Utc::now();
        let (exhausted, (hour_left, day_left)) = {
            let b = budget
                .lock()
                .map_err(|_| anyhow::anyhow!("budget lock poisoned"))?;
            (b.exhausted(now), b.remaining(now))
        };
        metrics::gauge!("journeyman_budget_remaining_usd", "window" => "hourly").set(hour_left);
        metrics::gauge!("journeyman_budget_remaining_usd", "window" => "daily").set(day_left);
        health.set_budget_exhausted(exhausted.is_some());
        if exhausted != paused {
            match exhausted {
                Some(which) => warn!(
                    ?which,
                    "spend budget exhausted: not claiming until the window rolls over"
                ),
                None => info!("spend budget available again: claiming resumes"),
            }
            paused = exhausted;
        }
        if exhausted.is_none() {
            match worker.cycle(&claims, &task).await {
                Ok(report) => {
                    health.board_ok();
                    info!(
                        worked = ?report.worked,
                        conflicts = report.conflicts,
                        eligible = report.eligible,
                        requests = report.requests,
                        full_snapshot = report.full_snapshot,
                        "cycle done"
                    );
                    if report.worked.is_some() && !claims.is_cancelled() && mode == Mode::Loop {
                        continue; // more work may be waiting: no need to sleep after a task
                    }
                }
                Err(e) => {
                    let permanent = e
                        .chain()
                        .filter_map(|c| c.downcast_ref::<crate::openproject::ApiError>())
                        .any(|a| {
                            matches!(a.kind(), ErrorKind::Unauthenticated | ErrorKind::Forbidden)
                        });
                    if permanent {
                        error!(
                            error = format!("{e:#}"),
                            "the board refuses this token: stopping"
                        );
                        stop_http.cancel();
                        return Err(e);
                    }
                    warn!(
                        error = format!("{e:#}"),
                        "cycle failed; will retry next cycle"
                    );
                }
            }
        }
        if mode == Mode::Once {
            break;
        }
        tokio::select! {
            _ = claims.cancelled() => break,
            _ = tokio::time::sleep(jittered(config.poll_interval)) => {}
        }
    }
    stop_http.cancel();
    info!(pod = %config.pod_name, "stopped");
    Ok(())
}
