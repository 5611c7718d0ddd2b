//! Shutdown as one value that every long-lived task holds (in the spirit of mini-redis's
//! `shutdown.rs`), and the process's one signal handler.
//!
//! Three stages, each a [`CancellationToken`]: `claims` (stop claiming: SIGTERM), `tasks` (stop a
//! running agent: the grace period is over, or a second signal), and `finished` (the worker has
//! reported and released everything: the health server may stop). Every task spawned through
//! [`Shutdown::spawn`] is tracked, and [`Shutdown::join`] waits for all of them on the way out, so
//! nothing outlives the process's own shutdown.
//!
//! Must never: be a global, or let a spawned task go unjoined.

use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::info;

/// The shutdown of one worker (a process, or one pod of the demo).
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    claims: CancellationToken,
    tasks: CancellationToken,
    finished: CancellationToken,
    tracker: TaskTracker,
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Cancelled when no new work may be claimed.
    pub fn claims(&self) -> &CancellationToken {
        &self.claims
    }

    /// Cancelled when a running task must stop now.
    pub fn tasks(&self) -> &CancellationToken {
        &self.tasks
    }

    /// Cancelled when the worker is done and its helpers (the health server) may stop.
    pub fn finished(&self) -> &CancellationToken {
        &self.finished
    }

    pub fn stop_claiming(&self) {
        self.claims.cancel();
    }

    /// Stops claiming and stops a running task.
    pub fn stop_now(&self) {
        self.claims.cancel();
        self.tasks.cancel();
    }

    /// Marks the worker done: every stage is over.
    pub fn finish(&self) {
        self.stop_now();
        self.finished.cancel();
    }

    pub fn is_stopping(&self) -> bool {
        self.claims.is_cancelled()
    }

    /// Spawns a task that is joined by [`Shutdown::join`].
    pub fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tracker.spawn(task)
    }

    /// Finishes and waits for every task spawned through this shutdown.
    pub async fn join(&self) {
        self.finish();
        self.tracker.close();
        self.tracker.wait().await;
    }

    /// Drives this shutdown from the process's signals: the first SIGTERM or SIGINT stops
    /// claiming, and a running task gets `grace` to finish (a second signal ends it at once).
    pub fn on_signals(&self, grace: Duration) -> anyhow::Result<()> {
        let mut signals = Signals::new()?;
        let this = self.clone();
        self.spawn(async move {
            tokio::select! {
                _ = signals.recv() => {}
                _ = this.finished.cancelled() => return,
            }
            info!(grace = ?grace, "shutdown requested: no new claims; a running task has the grace period to finish");
            this.stop_claiming();
            tokio::select! {
                _ = tokio::time::sleep(grace) => info!("grace period over: stopping the running task"),
                _ = signals.recv() => info!("second signal: stopping the running task now"),
                _ = this.finished.cancelled() => return,
            }
            this.tasks.cancel();
        });
        Ok(())
    }
}

/// SIGTERM or SIGINT. Listening starts when this is made, so a signal that arrives before anyone
/// awaits it is not lost (and does not kill the process with its default action).
pub struct Signals {
    int: Signal,
    term: Signal,
}

impl Signals {
    pub fn new() -> anyhow::Result<Signals> {
        Ok(Signals {
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
        })
    }

    /// The next SIGTERM or SIGINT.
    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}
