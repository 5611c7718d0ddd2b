//! The bundled board: an in-memory emulator of the OpenProject API v3 subset journeyman uses, served
//! over real HTTP on loopback. Real OpenProject cannot run on CI machines; this can, and it is checked
//! against the upstream spec (tests/it/conformance.rs) so it cannot drift into a private dialect.
//!
//! Used three ways: `journeyman board --listen ADDR` (a person or a script), `journeyman demo`, and
//! tests, through [`start`] and the [`BoardHandle`] it returns (seed data, inspect state and journal,
//! inject faults). It must never be reachable from anything but loopback in the demo and tests.
//!
//! Faults are injected per request, before the router: added latency, 5xx, 429 with `Retry-After`,
//! dropped connections (before or after the write happened), stalls, and malformed bodies.
//!
//! What makes a real instance harder than a friendly stand-in is taught here too, each in its own
//! file with the OpenProject source it follows: a capped `pageSize` (`query.rs`), projects the agent
//! cannot see (`visibility.rs`), workflows per type and role (`workflow.rs`) and the forms that
//! tell them (`form.rs`), the `notify` flag of every write (`notify.rs`), custom field formats and
//! per project and type enablement (`custom_fields.rs`), the relations index (`relations.rs`) and
//! the real, several-KiB work package (`render/work_package.rs`). Defaults are what an instance
//! configured for journeyman does; stricter set-ups are options ([`BoardOptions`], [`BoardHandle`]).

pub mod custom_fields;
mod form;
mod lifecycle;
mod markdown;
pub mod notify;
mod query;
mod relations;
mod render;
mod routes;
pub mod seed;
pub mod state;
mod visibility;
pub mod workflow;
mod workflow_table;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use url::Url;

pub use custom_fields::CfFormat;
pub use notify::{Notification, WriteKind};
pub use state::{
    ADMIN_USER, AGENT_USER, Board, JournalAction, JournalEntry, NewWp, POD_FIELD, Rel, Wp, WpChange,
};
pub use workflow::WorkflowPreset;

/// Largest request body the board accepts.
pub const MAX_BODY: usize = 1024 * 1024;

/// One injected fault.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Answer with this 5xx status and an OpenProject-style error body; nothing is written.
    Status(u16),
    /// 429 TooManyRequests with `Retry-After: secs`; nothing is written.
    RateLimited { retry_after_secs: u64 },
    /// Close the connection without an answer; nothing is written.
    Drop,
    /// Perform the request, then close the connection without sending the answer (a lost response).
    DropAfter,
    /// Wait this long, then close the connection (the client's timeout should fire first).
    Stall(Duration),
    /// Answer 200 with a body that is not valid JSON; nothing is written.
    Malformed,
    /// Just before handling the request, a human edits the work package in its path (its
    /// lockVersion moves), so a claim in flight meets a genuine 409 from the board.
    ConcurrentEdit,
}

/// A scripted fault for the next matching request.
#[derive(Debug, Clone)]
pub struct FaultRule {
    /// Only requests with this method (e.g. "PATCH"); `None` matches all.
    pub method: Option<String>,
    /// Only paths containing this text; `None` matches all.
    pub path_contains: Option<String>,
    pub fault: Fault,
}

/// Random faults, for chaos tests. Rates are fractions of requests (0.0..=1.0).
#[derive(Debug, Clone, Default)]
pub struct FaultConfig {
    pub latency: Duration,
    pub error_rate: f64,
    pub rate_limit_rate: f64,
    pub drop_rate: f64,
    pub seed: u64,
}

struct Faults {
    config: FaultConfig,
    scripted: VecDeque<FaultRule>,
    rng: StdRng,
}

impl Faults {
    fn next(&mut self, method: &str, path: &str) -> Option<Fault> {
        if let Some(pos) = self.scripted.iter().position(|r| {
            r.method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
                && r.path_contains.as_deref().is_none_or(|p| path.contains(p))
        }) {
            return self.scripted.remove(pos).map(|r| r.fault);
        }
        let c = &self.config;
        if c.error_rate + c.rate_limit_rate + c.drop_rate <= 0.0 {
            return None;
        }
        let roll: f64 = self.rng.random();
        if roll < c.error_rate {
            Some(Fault::Status(503))
        } else if roll < c.error_rate + c.rate_limit_rate {
            Some(Fault::RateLimited {
                retry_after_secs: 1,
            })
        } else if roll < c.error_rate + c.rate_limit_rate + c.drop_rate {
            Some(Fault::Drop)
        } else {
            None
        }
    }
}

/// State shared by the server tasks and the handle.
pub struct Shared {
    board: Mutex<Board>,
    faults: Mutex<Faults>,
    requests: AtomicU64,
}

/// How to start a board.
#[derive(Debug, Clone)]
pub struct BoardOptions {
    /// `127.0.0.1:0` picks a free port.
    pub listen: SocketAddr,
    /// The agent bot user's API token.
    pub token: String,
    /// Name of the phase type: "Phase" (older OpenProject) or "Summary task" (newer).
    pub phase_type: String,
    /// Seed the "Agent pod" custom field (a configured instance has it; `false` to test doctor).
    pub pod_field: bool,
    /// The pod field's format: a string field (default) or Long text, which is a Formattable
    /// `{format, raw, html}` on the wire (`custom_fields.rs`).
    pub pod_field_format: CfFormat,
    /// `Setting.apiv3_max_page_size`: larger `pageSize`s are silently capped (default 1000).
    pub max_page_size: u64,
    /// The agent role's workflows (default: every transition allowed; `workflow.rs`).
    pub workflows: WorkflowPreset,
    /// Render unset dates and durations as `null` like the real representer (default: left out,
    /// because the upstream schema rejects `null` there).
    pub render_nulls: bool,
    /// Render work packages' `createdAt` / `updatedAt` in whole seconds, as OpenProject does
    /// (`Behaviour::whole_seconds`; default: milliseconds).
    pub whole_seconds: bool,
}

impl Default for BoardOptions {
    fn default() -> Self {
        BoardOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            token: "journeyman-test-token".into(),
            phase_type: "Phase".into(),
            pod_field: true,
            pod_field_format: CfFormat::String,
            max_page_size: 1000,
            workflows: WorkflowPreset::AllowAll,
            render_nulls: false,
            whole_seconds: false,
        }
    }
}

/// A running board. Dropping the handle stops the server.
pub struct BoardHandle {
    url: Url,
    addr: SocketAddr,
    token: String,
    shared: Arc<Shared>,
    cancel: CancellationToken,
}

impl Drop for BoardHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Starts a board on loopback (or `opts.listen`) and returns once it accepts connections.
pub async fn start(opts: BoardOptions) -> anyhow::Result<BoardHandle> {
    let mut board = Board::seeded(&opts.phase_type);
    board.tokens.insert(opts.token.clone(), AGENT_USER);
    if !opts.pod_field {
        board.custom_fields.clear();
    }
    for cf in &mut board.custom_fields {
        cf.format = opts.pod_field_format;
    }
    board.behaviour.max_page_size = opts.max_page_size;
    board.behaviour.render_nulls = opts.render_nulls;
    board.behaviour.whole_seconds = opts.whole_seconds;
    board.workflows = board.preset_workflows(opts.workflows);
    let shared = Arc::new(Shared {
        board: Mutex::new(board),
        faults: Mutex::new(Faults {
            config: FaultConfig::default(),
            scripted: VecDeque::new(),
            rng: StdRng::seed_from_u64(0),
        }),
        requests: AtomicU64::new(0),
    });
    let listener = TcpListener::bind(opts.listen)
        .await
        .with_context(|| format!("binding the board to {}", opts.listen))?;
    let addr = listener
        .local_addr()
        .context("reading the board's address")?;
    let url = Url::parse(&format!("http://{addr}/")).context("building the board's URL")?;
    let cancel = CancellationToken::new();
    tokio::spawn(serve(listener, shared.clone(), cancel.clone()));
    Ok(BoardHandle {
        url,
        addr,
        token: opts.token,
        shared,
        cancel,
    })
}

async fn serve(listener: TcpListener, shared: Arc<Shared>, cancel: CancellationToken) {
    let router = routes::router(shared.clone());
    let connections = tokio_util::task::TaskTracker::new();
    loop {
        let (stream, _) = tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "board: accept failed");
                    continue;
                }
            },
        };
        let router = router.clone();
        let shared = shared.clone();
        let cancel = cancel.clone();
        connections.spawn(async move {
            let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let router = router.clone();
                let shared = shared.clone();
                async move { handle(router, shared, req).await }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc);
            tokio::select! {
                _ = conn => {}
                _ = cancel.cancelled() => {}
            }
        });
    }
    connections.close();
}

/// Returning an error makes hyper close the connection without an answer: that is how drops work.
async fn handle(
    router: axum::Router,
    shared: Arc<Shared>,
    req: hyper::Request<Incoming>,
) -> Result<axum::response::Response, std::io::Error> {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let (fault, latency) = {
        let mut f = shared
            .faults
            .lock()
            .map_err(|_| std::io::Error::other("fault state poisoned"))?;
        (
            f.next(req.method().as_str(), req.uri().path()),
            f.config.latency,
        )
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let error = |status: u16, identifier: &'static str, message: &str| {
        let e = state::SimError::new(status, identifier, message);
        axum::response::IntoResponse::into_response(e)
    };
    match fault {
        None => Ok(router.oneshot(req.map(Body::new)).await.unwrap_or_else(|never| match never {})),
        Some(Fault::ConcurrentEdit) => {
            let id = req.uri().path().rsplit('/').find_map(|seg| seg.parse::<u64>().ok());
            if let Some(id) = id
                && let Ok(mut board) = shared.board.lock()
            {
                board.touch(ADMIN_USER, id);
            }
            Ok(router.oneshot(req.map(Body::new)).await.unwrap_or_else(|never| match never {}))
        }
        Some(Fault::Status(code)) => Ok(error(code, "InternalServerError", "Service temporarily unavailable (injected fault).")),
        Some(Fault::RateLimited { retry_after_secs }) => {
            let mut resp = error(429, "TooManyRequests", "You have exceeded the rate limit (injected fault).");
            resp.headers_mut().insert(axum::http::header::RETRY_AFTER, retry_after_secs.into());
            Ok(resp)
        }
        Some(Fault::Drop) => Err(std::io::Error::other("connection dropped (injected fault)")),
        Some(Fault::DropAfter) => {
            let _ = router.oneshot(req.map(Body::new)).await;
            Err(std::io::Error::other("response dropped after the write (injected fault)"))
        }
        Some(Fault::Stall(d)) => {
            tokio::time::sleep(d).await;
            Err(std::io::Error::other("stalled (injected fault)"))
        }
        Some(Fault::Malformed) => Ok(axum::response::Response::builder()
            .status(200)
            .header(axum::http::header::CONTENT_TYPE, "application/hal+json")
            .body(Body::from(r#"{"_type": "WorkPackageCollection", "total": 3, "_embedded": {"elements": [{"id": 1,"#))
            .map_err(std::io::Error::other)?),
    }
}

impl BoardHandle {
    /// The base URL (`http://127.0.0.1:PORT/`).
    pub fn url(&self) -> &Url {
        &self.url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The agent bot user's token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Stops the server (also done on drop).
    pub fn shutdown(&self) {
        self.cancel.cancel();
    }

    /// Locks the board for reading or seeding. Do not hold it across an await.
    pub fn board(&self) -> MutexGuard<'_, Board> {
        // A poisoned lock only happens after a panic in a test thread; propagate the panic.
        self.shared.board.lock().expect("board lock poisoned")
    }

    /// HTTP requests received so far (including those answered with an injected fault).
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// Replaces the random fault configuration (the RNG is re-seeded from `config.seed`).
    pub fn set_faults(&self, config: FaultConfig) {
        let mut f = self.shared.faults.lock().expect("fault lock poisoned");
        f.rng = StdRng::seed_from_u64(config.seed);
        f.config = config;
    }

    /// Queues a fault for the next request matching the rule.
    pub fn inject(&self, rule: FaultRule) {
        self.shared
            .faults
            .lock()
            .expect("fault lock poisoned")
            .scripted
            .push_back(rule);
    }

    /// Queues a fault for the next request, whatever it is.
    pub fn inject_next(&self, fault: Fault) {
        self.inject(FaultRule {
            method: None,
            path_contains: None,
            fault,
        });
    }

    /// Adds a token for a new user; `can_write: false` gives a user that gets 403 on writes.
    pub fn add_user(&self, login: &str, token: &str, can_write: bool) -> u64 {
        let mut b = self.board();
        let id = b.users.iter().map(|u| u.id).max().unwrap_or(0) + 1;
        b.users.push(state::UserDef {
            id,
            login: login.into(),
            name: login.into(),
            can_write,
        });
        b.tokens.insert(token.into(), id);
        id
    }

    /// Creates a work package as the admin; names are resolved, panics on unknown names (test seed).
    pub fn create(&self, seed: &seed::SeedWp) -> u64 {
        let mut b = self.board();
        seed::create(&mut b, seed).unwrap_or_else(|e| panic!("seeding {:?}: {e}", seed.subject))
    }

    /// Adds a relation as the admin (`type_` as the API takes it, e.g. "blocks" or "blocked").
    pub fn relate(&self, from: u64, to: u64, type_: &str) -> u64 {
        self.board()
            .relate(ADMIN_USER, from, to, type_, None, None)
            .unwrap_or_else(|e| panic!("relating {from} {type_} {to}: {}", e.message))
    }

    /// Changes a work package's status as the admin (a human's edit), by status name.
    pub fn set_status(&self, id: u64, status: &str) {
        let mut b = self.board();
        let s = b
            .status_named(status)
            .unwrap_or_else(|| panic!("no status {status}"))
            .id;
        let lv = b.wps[&id].lock_version;
        b.update(
            ADMIN_USER,
            id,
            Some(lv),
            WpChange {
                status: Some(s),
                ..Default::default()
            },
        )
        .unwrap_or_else(|e| panic!("{}", e.message));
    }

    /// Sets or clears the pod field as the admin (pinning a ticket).
    pub fn set_pod(&self, id: u64, pod: Option<&str>) {
        let mut b = self.board();
        let lv = b.wps[&id].lock_version;
        let mut change = WpChange::default();
        change.custom.insert(POD_FIELD, pod.map(String::from));
        b.update(ADMIN_USER, id, Some(lv), change)
            .unwrap_or_else(|e| panic!("{}", e.message));
    }

    /// Moves a work package and its descendants to project `identifier` as the admin (a human's
    /// edit; `lifecycle.rs`).
    pub fn move_to_project(&self, id: u64, identifier: &str) {
        let mut b = self.board();
        let project = b
            .project_by_key(identifier)
            .unwrap_or_else(|| panic!("no project {identifier}"))
            .id;
        b.move_to_project(ADMIN_USER, id, project)
            .unwrap_or_else(|e| panic!("{}", e.message));
    }

    /// Deletes a work package with its descendants and their relations as the admin
    /// (`lifecycle.rs`); returns the ids deleted.
    pub fn delete_wp(&self, id: u64) -> Vec<u64> {
        self.board()
            .delete(ADMIN_USER, id)
            .unwrap_or_else(|e| panic!("{}", e.message))
    }

    /// Sets or clears a work package's parent as the admin (a human's edit).
    pub fn set_parent(&self, id: u64, parent: Option<u64>) {
        let mut b = self.board();
        let lv = b.wps[&id].lock_version;
        let change = WpChange {
            parent: Some(parent),
            ..Default::default()
        };
        b.update(ADMIN_USER, id, Some(lv), change)
            .unwrap_or_else(|e| panic!("{}", e.message));
    }

    /// A human's comment on a work package (moves `updatedAt`, not `lockVersion`).
    pub fn comment(&self, id: u64, text: &str) {
        self.board()
            .comment(ADMIN_USER, id, text)
            .unwrap_or_else(|e| panic!("{}", e.message));
    }

    /// Moves the board's clock ahead by `by`: later writes are stamped as if that much time had
    /// passed (tests of time windows, without waiting).
    pub fn advance_clock(&self, by: chrono::Duration) {
        self.board().behaviour.clock_offset += by;
    }

    /// Backdates a work package's `updatedAt` (for stale-Epic tests).
    pub fn set_updated_at(&self, id: u64, at: chrono::DateTime<chrono::Utc>) {
        if let Some(w) = self.board().wps.get_mut(&id) {
            w.updated_at = at;
        }
    }

    /// A copy of one work package.
    pub fn wp(&self, id: u64) -> Wp {
        self.board().wps[&id].clone()
    }

    /// The status name of a work package.
    pub fn status_of(&self, id: u64) -> String {
        let b = self.board();
        b.status(b.wps[&id].status)
            .map(|s| s.name.clone())
            .unwrap_or_default()
    }

    /// The pod field of a work package.
    pub fn pod_of(&self, id: u64) -> Option<String> {
        self.board()
            .wps
            .get(&id)
            .and_then(|w| w.custom.get(&POD_FIELD).cloned())
    }

    /// The comments people and pods wrote on a work package, oldest first. The board's own journal
    /// notes on re-derived ancestors are left out (they are in the HTTP activities).
    pub fn comments(&self, id: u64) -> Vec<String> {
        self.board()
            .activities
            .iter()
            .filter(|a| a.wp == id && !a.automatic)
            .filter_map(|a| a.comment.clone())
            .collect()
    }

    /// The journal of writes so far.
    pub fn journal(&self) -> Vec<JournalEntry> {
        self.board().journal.clone()
    }

    /// Every write so far with its `notify` flag, in order (`notify.rs`).
    pub fn notifications(&self) -> Vec<Notification> {
        self.board().notifications.clone()
    }

    /// Caps every `pageSize` at `n` from now on (`Setting.apiv3_max_page_size`).
    pub fn set_max_page_size(&self, n: u64) {
        self.board().behaviour.max_page_size = n;
    }

    /// Every relation, by id.
    pub fn relations(&self) -> Vec<Rel> {
        self.board().relations.values().cloned().collect()
    }

    /// Deletes a relation as the admin; panics if there is none (test seed). Touches neither end.
    pub fn delete_relation(&self, id: u64) -> Rel {
        self.board()
            .unrelate(ADMIN_USER, id)
            .unwrap_or_else(|e| panic!("deleting relation {id}: {}", e.message))
    }

    /// Adds a project (name = identifier). `visible_to_agent: false` makes it a project the agent
    /// user is no member of: its work packages answer 404 to the agent and are left out of its
    /// lists, and so are relations with an end in it (`visibility.rs`). Seed work packages into it
    /// with `SeedWp::project(identifier)`.
    pub fn add_project(&self, identifier: &str, visible_to_agent: bool) -> u64 {
        let members = (!visible_to_agent).then(std::collections::BTreeSet::new);
        self.board().add_project(identifier, identifier, members)
    }

    /// Makes `user` a member of project `project` (it sees it) or not.
    pub fn set_member(&self, project: u64, user: u64, member: bool) {
        let mut b = self.board();
        let everyone: std::collections::BTreeSet<u64> = b.users.iter().map(|u| u.id).collect();
        let Some(p) = b.projects.iter_mut().find(|p| p.id == project) else {
            panic!("no project {project}");
        };
        let members = p.members.get_or_insert(everyone);
        if member {
            members.insert(user);
        } else {
            members.remove(&user);
        }
    }

    /// Forbids the agent's role every transition into `to_status` for `type_name` (names; panics on
    /// unknown ones). A PATCH doing it answers 422 PropertyConstraintViolation on `status`.
    pub fn forbid_transition(&self, type_name: &str, to_status: &str) {
        let mut b = self.board();
        let (t, s) = type_and_status(&b, type_name, to_status);
        b.forbid_transition(t, s);
    }

    /// Allows the agent's role every transition into `to_status` for `type_name` again.
    pub fn allow_transition(&self, type_name: &str, to_status: &str) {
        let mut b = self.board();
        let (t, s) = type_and_status(&b, type_name, to_status);
        b.allow_transition(t, s);
    }

    /// OpenProject's standard seed workflows for the agent's role (`workflow.rs`): e.g. a Task may
    /// not go to In testing.
    pub fn use_standard_seed_workflows(&self) {
        let mut b = self.board();
        let blocked_may_close = b.workflows.blocked_may_close;
        b.workflows = b.preset_workflows(WorkflowPreset::StandardSeed);
        b.workflows.blocked_may_close = blocked_may_close;
    }

    /// Every transition allowed again (the default).
    pub fn allow_all_transitions(&self) {
        let mut b = self.board();
        let blocked_may_close = b.workflows.blocked_may_close;
        b.workflows = workflow::Workflows::default();
        b.workflows.blocked_may_close = blocked_may_close;
    }

    /// Changes the pod field's format (existing values are kept as its raw text).
    pub fn set_pod_field_format(&self, format: CfFormat) {
        if let Some(cf) = self
            .board()
            .custom_fields
            .iter_mut()
            .find(|c| c.id == POD_FIELD)
        {
            cf.format = format;
        }
    }

    /// Disables the pod field for one project and type: their schema omits it, their work packages
    /// do not render it, and writes of it are ignored, as OpenProject does (`custom_fields.rs`).
    pub fn disable_pod_field_for(&self, project_id: u64, type_name: &str) {
        self.pod_field_for(project_id, type_name, false);
    }

    /// Enables the pod field for one project and type again.
    pub fn enable_pod_field_for(&self, project_id: u64, type_name: &str) {
        self.pod_field_for(project_id, type_name, true);
    }

    fn pod_field_for(&self, project_id: u64, type_name: &str, enabled: bool) {
        let mut b = self.board();
        let t = b
            .type_named(type_name)
            .unwrap_or_else(|| panic!("no type {type_name}"))
            .id;
        if let Some(cf) = b.custom_fields.iter_mut().find(|c| c.id == POD_FIELD) {
            if enabled {
                cf.disabled_for.remove(&(project_id, t));
            } else {
                cf.disabled_for.insert((project_id, t));
            }
        }
    }
}

/// The ids of a type and a status by name; panics on unknown names (test seed).
fn type_and_status(b: &Board, type_name: &str, status: &str) -> (u64, u64) {
    let t = b
        .type_named(type_name)
        .unwrap_or_else(|| panic!("no type {type_name}"))
        .id;
    let s = b
        .status_named(status)
        .unwrap_or_else(|| panic!("no status {status}"))
        .id;
    (t, s)
}
