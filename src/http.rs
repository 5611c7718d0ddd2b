//! The worker's HTTP side: `/healthz` (liveness), `/readyz` (readiness) and `/metrics` (Prometheus).
//!
//! Liveness means "the loop is not wedged": it ticked recently, or it is inside a task that has not
//! overrun its timeout plus the shutdown grace. Readiness means "this pod can take work": the board
//! answered recently and the spend budget is not exhausted. Never exposes configuration or secrets.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::time::Instant;

use crate::redact::Redactor;

/// What the loop reports about itself; read by the probes.
pub struct Health {
    started: Instant,
    /// Milliseconds since `started` of the last loop tick (0 = never).
    last_tick: AtomicU64,
    /// Milliseconds since `started` of the last successful board read (0 = never).
    board_ok: AtomicU64,
    /// Milliseconds since `started` when the running task began (0 = idle).
    task_started: AtomicU64,
    budget_exhausted: AtomicBool,
    /// How stale a tick or a board read may be.
    staleness: Duration,
    /// How long a task may run before liveness fails.
    task_limit: Duration,
}

impl Health {
    pub fn new(poll_interval: Duration, task_limit: Duration) -> Arc<Health> {
        Arc::new(Health {
            started: Instant::now(),
            last_tick: AtomicU64::new(0),
            board_ok: AtomicU64::new(0),
            task_started: AtomicU64::new(0),
            budget_exhausted: AtomicBool::new(false),
            staleness: poll_interval * 3 + Duration::from_secs(60),
            task_limit,
        })
    }

    fn now_ms(&self) -> u64 {
        (self.started.elapsed().as_millis() as u64).max(1)
    }

    pub fn tick(&self) {
        self.last_tick.store(self.now_ms(), Ordering::Relaxed);
    }
    pub fn board_ok(&self) {
        self.board_ok.store(self.now_ms(), Ordering::Relaxed);
    }
    pub fn task_started(&self) {
        self.task_started.store(self.now_ms(), Ordering::Relaxed);
        metrics::gauge!("journeyman_busy").set(1.0);
    }
    pub fn task_finished(&self) {
        self.task_started.store(0, Ordering::Relaxed);
        metrics::gauge!("journeyman_busy").set(0.0);
    }
    pub fn set_budget_exhausted(&self, exhausted: bool) {
        self.budget_exhausted.store(exhausted, Ordering::Relaxed);
    }

    fn age(&self, at: &AtomicU64) -> Option<Duration> {
        match at.load(Ordering::Relaxed) {
            0 => None,
            t => Some(Duration::from_millis(self.now_ms().saturating_sub(t))),
        }
    }

    /// `Ok` if alive, else why not.
    pub fn live(&self) -> Result<(), String> {
        if let Some(running) = self.age(&self.task_started) {
            return if running <= self.task_limit {
                Ok(())
            } else {
                Err(format!(
                    "a task has run for {running:?}, over {:?}",
                    self.task_limit
                ))
            };
        }
        match self.age(&self.last_tick) {
            None if self.started.elapsed() < self.staleness => Ok(()),
            None => Err("the loop never ticked".into()),
            Some(age) if age <= self.staleness => Ok(()),
            Some(age) => Err(format!("the loop last ticked {age:?} ago")),
        }
    }

    /// `Ok` if ready for work, else why not.
    pub fn ready(&self) -> Result<(), String> {
        if self.budget_exhausted.load(Ordering::Relaxed) {
            return Err("the spend budget is exhausted until the window rolls over".into());
        }
        match self.age(&self.board_ok) {
            None => Err("the board has not been reached yet".into()),
            Some(age) if age <= self.staleness => Ok(()),
            Some(age) => Err(format!("the board was last reached {age:?} ago")),
        }
    }
}

/// Installs the Prometheus recorder once per process and returns its handle.
pub fn metrics_handle() -> anyhow::Result<PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    let seconds = [
        0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0,
    ];
    let usd = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0];
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &seconds)
        .context("histogram buckets")?
        .set_buckets_for_metric(Matcher::Suffix("_usd".into()), &usd)
        .context("histogram buckets")?
        .build_recorder();
    let handle = recorder.handle();
    if metrics::set_global_recorder(recorder).is_err() {
        // Another recorder was installed first (only in tests that run several workers).
        return HANDLE
            .get()
            .cloned()
            .context("a different metrics recorder is installed");
    }
    let _ = HANDLE.set(handle.clone());
    Ok(HANDLE.get().cloned().unwrap_or(handle))
}

#[derive(Clone)]
struct AppState {
    health: Arc<Health>,
    metrics: PrometheusHandle,
    /// Metric labels can carry text from outside (an endpoint, an error kind): cleaned like a log.
    redactor: Redactor,
}

pub fn router(health: Arc<Health>, metrics: PrometheusHandle, redactor: Redactor) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(AppState {
            health,
            metrics,
            redactor,
        })
}

async fn healthz(State(s): State<AppState>) -> impl IntoResponse {
    probe(s.health.live(), "ok", "not live")
}

async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    probe(s.health.ready(), "ready", "not ready")
}

/// A probe's answer: 200 with `ok`, or 503 with `not` and the reason.
fn probe(check: Result<(), String>, ok: &str, not: &str) -> (StatusCode, String) {
    match check {
        Ok(()) => (StatusCode::OK, format!("{ok}\n")),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{not}: {why}\n")),
    }
}

async fn metrics_text(State(s): State<AppState>) -> impl IntoResponse {
    s.metrics.run_upkeep();
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        s.redactor.redact(&s.metrics.render()).into_owned(),
    )
}

/// Serves the probes and metrics until `stop` fires. Returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    health: Arc<Health>,
    metrics: PrometheusHandle,
    redactor: Redactor,
    shutdown: &crate::shutdown::Shutdown,
) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding JOURNEYMAN_LISTEN={addr}"))?;
    let bound = listener.local_addr()?;
    let app = router(health, metrics, redactor);
    // Probes keep answering during the shutdown grace: the server stops when the worker is done.
    let stop = shutdown.finished().clone();
    shutdown.spawn(async move {
        let stopped = async move { stop.cancelled().await };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stopped)
            .await
        {
            tracing::error!(error = %e, "health and metrics server stopped");
        }
    });
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get(router: Router, path: &str) -> (StatusCode, String) {
        let resp = router
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn metric_labels_are_redacted() {
        let handle = metrics_handle().unwrap();
        let secret = "X9metricsLabelSecret0123456789";
        metrics::counter!("journeyman_test_labels_total", "reason" => format!("token {secret}"))
            .increment(1);
        let health = Health::new(Duration::from_secs(1), Duration::from_secs(60));
        let redactor = Redactor::shapes_only().with("board token", secret);
        let (status, body) = get(router(health, handle, redactor), "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("journeyman_test_labels_total"), "{body}");
        assert!(!body.contains(secret), "{body}");
        assert!(body.contains("[redacted: board token]"), "{body}");
    }

    #[tokio::test]
    async fn probes_follow_the_loop_and_the_board() {
        let health = Health::new(Duration::from_secs(1), Duration::from_secs(60));
        let handle = metrics_handle().unwrap();
        let app = || router(health.clone(), handle.clone(), Redactor::shapes_only());
        assert_eq!(
            get(app(), "/healthz").await.0,
            StatusCode::OK,
            "alive while starting"
        );
        let (status, body) = get(app(), "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("board has not been reached"), "{body}");
        health.tick();
        health.board_ok();
        assert_eq!(get(app(), "/readyz").await.0, StatusCode::OK);
        health.set_budget_exhausted(true);
        let (status, body) = get(app(), "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("budget"), "{body}");
        assert_eq!(
            get(app(), "/healthz").await.0,
            StatusCode::OK,
            "an exhausted budget is not a reason to restart"
        );
    }

    #[test]
    fn liveness_fails_when_a_task_overruns() {
        let health = Health::new(Duration::from_secs(1), Duration::ZERO);
        health.task_started();
        // task_limit is zero: any measurable runtime is an overrun.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while health.live().is_ok() {
            assert!(
                std::time::Instant::now() < deadline,
                "liveness never failed"
            );
            std::thread::yield_now();
        }
        health.task_finished();
        health.tick();
        assert!(health.live().is_ok());
    }
}
