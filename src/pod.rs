//! One pod, wired from its configuration, and the poll loop that drives it.
//!
//! Why this file exists: a pod in a test, in the demo or in the benchmark must be the pod that
//! runs in production, so there is one way to build one ([`connect`], [`worker`], [`executor`])
//! and one loop that runs it ([`poll`]): the poll timer with jitter, the spend budgets, health and
//! shutdown. `run` adds the process around it (signals, the health server, leftovers of a killed
//! run); the demo runs several of these loops in one process.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use rand::RngExt;
use secrecy::ExposeSecret;
use tracing::{error, info, warn};

use crate::agent::ClaudeCli;
use crate::audit::Audit;
use crate::board::Policy;
use crate::budget::{Budget, Exhausted};
use crate::config::Config;
use crate::cycle::Worker;
use crate::execute::Executor;
use crate::http::Health;
use crate::openproject::{ApiError, Auth, Client, ClientOptions, ErrorKind};
use crate::shutdown::Shutdown;
use crate::snapshot::{BoardReader, Resolved, resolve};
use crate::task::{Execute, Outcome, Task};

/// The board client from configuration.
pub fn client(config: &Config) -> anyhow::Result<Client> {
    let token = secrecy::SecretString::from(config.openproject_token.expose_secret().to_string());
    let opts = ClientOptions {
        timeout: config.http_timeout,
        notify: config.notify,
        ..ClientOptions::default()
    };
    Ok(
        Client::new(&config.openproject_url, Auth::ApiKey(token), opts)?
            .with_redactor(config.redactor()),
    )
}

/// The decision's policy from configuration.
pub fn policy(config: &Config) -> Policy {
    Policy::new(
        config.epic_stale_after,
        config.limits.task_timeout,
        config.limits.shutdown_grace,
        config.limits.max_attempts,
    )
    .with_mention(&config.mention)
}

/// The board client and its resolved names. With a `shutdown`, retries while the board is
/// unreachable or failing transiently (`None` if shut down meanwhile); a permanent error (bad
/// token, missing names) fails at once.
pub async fn connect(
    config: &Config,
    shutdown: Option<&Shutdown>,
) -> anyhow::Result<Option<(Client, Resolved)>> {
    let client = client(config)?;
    let mut delay = Duration::from_secs(1);
    loop {
        match resolve(&client, config).await {
            Ok(r) => {
                crate::snapshot::sanity(&r)?;
                return Ok(Some((client, r)));
            }
            Err(e) => {
                let Some(shutdown) = shutdown.filter(|_| api_error_is(&e, ErrorKind::is_transient))
                else {
                    return Err(e);
                };
                warn!(error = format!("{e:#}"), retry_in = ?delay, "the board is not reachable yet");
                tokio::select! {
                    _ = shutdown.claims().cancelled() => return Ok(None),
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
        delay = (delay * 2).min(Duration::from_secs(60));
    }
}

fn api_error_is(e: &anyhow::Error, pred: impl Fn(ErrorKind) -> bool) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<ApiError>())
        .any(|a| pred(a.kind()))
}

/// The worker of this pod with the given executor. Everything it writes on the board is cleaned of
/// the pod's secrets; the snapshot is read in full at least every `full_read_every`.
pub fn worker<E: Execute>(
    config: &Config,
    client: Client,
    resolved: Resolved,
    exec: Arc<E>,
) -> Worker<E> {
    let client = client.with_redactor(config.redactor());
    let reader = BoardReader::new(client, resolved, config.full_read_every);
    Worker::new(reader, exec, config.pod_name.clone(), policy(config))
        .with_watch_every(config.poll_interval)
}

/// The real executor: the Claude CLI as configured, the pod's workspaces, its spend windows.
pub fn executor(config: &Config, budget: Arc<Mutex<Budget>>) -> Executor<ClaudeCli> {
    Executor::from_config(ClaudeCli::from_options(&config.agent), config).with_budget(budget)
}

/// The pod's spend windows, from configuration.
pub fn budget(config: &Config) -> Arc<Mutex<Budget>> {
    Arc::new(Mutex::new(Budget::new(
        config.limits.hourly_budget_usd,
        config.limits.daily_budget_usd,
    )))
}

/// The health of a pod from configuration: a loop tick is due every poll interval, a task may
/// run for up to the claim lease.
pub fn health(config: &Config) -> Arc<Health> {
    Health::new(config.poll_interval, policy(config).claim_lease_std())
}

/// Wraps an executor to keep health up to date.
pub struct Tracked<E> {
    pub inner: E,
    pub health: Arc<Health>,
}

impl<E: Execute> Execute for Tracked<E> {
    async fn execute(
        &self,
        task: Task,
        audit: Audit,
        cancel: tokio_util::sync::CancellationToken,
    ) -> Outcome {
        self.health.task_started();
        let outcome = self.inner.execute(task, audit, cancel).await;
        self.health.task_finished();
        outcome
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Until shutdown.
    Loop,
    /// One cycle.
    Once,
}

/// What the poll loop needs besides the worker.
pub struct Loop {
    pub poll_interval: Duration,
    pub budget: Arc<Mutex<Budget>>,
    pub health: Arc<Health>,
    pub mode: Mode,
}

/// Cycles until shutdown (or once): a cycle that did something is followed at once by the next,
/// an idle one by the jittered poll interval. No claims while a spend window is exhausted. Ends
/// with an error only when the board refuses the token.
pub async fn poll<E: Execute>(
    worker: &mut Worker<E>,
    lp: &Loop,
    shutdown: &Shutdown,
) -> anyhow::Result<()> {
    let mut exhausted_before: Option<Exhausted> = None;
    while !shutdown.is_stopping() {
        lp.health.tick();
        let exhausted = budget_check(lp)?;
        if exhausted != exhausted_before {
            match exhausted {
                Some(which) => warn!(
                    ?which,
                    "spend budget exhausted: not claiming until the window rolls over"
                ),
                None => info!("spend budget available again: claiming resumes"),
            }
            exhausted_before = exhausted;
        }
        if exhausted.is_none() {
            let busy = cycle(worker, lp, shutdown).await?;
            if busy && lp.mode == Mode::Loop {
                continue; // more work may be waiting: no need to sleep after a task
            }
        }
        if lp.mode == Mode::Once {
            break;
        }
        tokio::select! {
            _ = shutdown.claims().cancelled() => break,
            _ = tokio::time::sleep(jittered(lp.poll_interval)) => {}
        }
    }
    Ok(())
}

/// One cycle with its logging; `Ok(true)` if it did something. A cycle that fails is retried
/// next time, unless the board refuses the token.
async fn cycle<E: Execute>(
    worker: &mut Worker<E>,
    lp: &Loop,
    shutdown: &Shutdown,
) -> anyhow::Result<bool> {
    match worker.cycle(shutdown.claims(), shutdown.tasks()).await {
        Ok(report) => {
            lp.health.board_ok();
            info!(
                worked = ?report.worked,
                escalated = ?report.escalated,
                conflicts = report.conflicts,
                eligible = report.eligible,
                requests = report.requests,
                full_snapshot = report.full_snapshot,
                "cycle done"
            );
            Ok(report.busy() && !shutdown.is_stopping())
        }
        Err(e) => {
            let refused = api_error_is(&e, |k| {
                matches!(k, ErrorKind::Unauthenticated | ErrorKind::Forbidden)
            });
            if refused {
                error!(
                    error = format!("{e:#}"),
                    "the board refuses this token: stopping"
                );
                return Err(e);
            }
            warn!(
                error = format!("{e:#}"),
                "cycle failed; will retry next cycle"
            );
            Ok(false)
        }
    }
}

/// Publishes the budget's remaining amounts and says whether a window is exhausted.
fn budget_check(lp: &Loop) -> anyhow::Result<Option<Exhausted>> {
    let now = Utc::now();
    let (exhausted, (hour_left, day_left)) = {
        let b = lp
            .budget
            .lock()
            .map_err(|_| anyhow::anyhow!("budget lock poisoned"))?;
        (b.exhausted(now), b.remaining(now))
    };
    metrics::gauge!("journeyman_budget_remaining_usd", "window" => "hourly").set(hour_left);
    metrics::gauge!("journeyman_budget_remaining_usd", "window" => "daily").set(day_left);
    lp.health.set_budget_exhausted(exhausted.is_some());
    Ok(exhausted)
}

fn jittered(interval: Duration) -> Duration {
    let factor: f64 = rand::rng().random_range(0.8..1.2);
    interval.mul_f64(factor)
}
