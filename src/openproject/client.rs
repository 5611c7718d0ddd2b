//! The OpenProject API v3 client: HTTP (reqwest, rustls), authentication, timeouts, retries with
//! backoff and jitter, pagination, bounded response sizes, and request accounting.
//!
//! Retry policy (one place, here): connection errors, timeouts, 429 (honouring `Retry-After`) and 5xx
//! are retried for idempotent requests (GET) only; a connection that was never established is retried
//! for any method, since the server never saw the request. 4xx are never retried. A PATCH is never
//! retried blindly: if its answer was lost the `lockVersion` it carried is spent, and the caller must
//! re-read and re-decide (DESIGN section 1).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use reqwest::{Method, StatusCode, header};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use url::Url;

use super::error::{self, ApiError, ErrorKind};
use super::hal::{self, Collection};

/// How the client authenticates (API-NOTES section 8).
#[derive(Clone)]
pub enum Auth {
    /// HTTP Basic with user name `apikey` and the token as password (works on every release).
    ApiKey(SecretString),
    /// `Authorization: Bearer <token>`.
    Bearer(SecretString),
}

/// Retry schedule for transient failures of idempotent requests.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_retries: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// Upper bound on a server's `Retry-After` that we honour; beyond it we give up rather than stall.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 4,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Whole-request timeout (connect, send, and read the body).
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub retry: RetryPolicy,
    /// Largest response body we read; larger ones are an error, never an out-of-memory.
    pub max_body_bytes: usize,
    /// Page size for list requests (OpenProject's default maximum is 1000).
    pub page_size: u32,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            retry: RetryPolicy::default(),
            max_body_bytes: 32 * 1024 * 1024,
            page_size: 1000,
        }
    }
}

/// Counters of what this client sent and received, for per-cycle accounting and benchmarks.
#[derive(Debug, Default)]
pub struct RequestStats {
    /// HTTP requests sent (each retry counts).
    pub requests: AtomicU64,
    /// Response body bytes received.
    pub bytes: AtomicU64,
    /// Retries performed.
    pub retries: AtomicU64,
}

/// A snapshot of [`RequestStats`]; subtract two to get the cost of an operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub requests: u64,
    pub bytes: u64,
    pub retries: u64,
}

impl std::ops::Sub for StatsSnapshot {
    type Output = StatsSnapshot;
    fn sub(self, o: StatsSnapshot) -> StatsSnapshot {
        StatsSnapshot {
            requests: self.requests - o.requests,
            bytes: self.bytes - o.bytes,
            retries: self.retries - o.retries,
        }
    }
}

/// One filter of a list query: `{"status": {"operator": "o", "values": []}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub name: String,
    pub operator: String,
    pub values: Vec<String>,
}

impl Filter {
    pub fn new(
        name: &str,
        operator: &str,
        values: impl IntoIterator<Item = impl ToString>,
    ) -> Filter {
        Filter {
            name: name.into(),
            operator: operator.into(),
            values: values.into_iter().map(|v| v.to_string()).collect(),
        }
    }

    /// Renders filters as OpenProject's JSON array. An empty slice renders `[]`, which means "no
    /// filter"; omitting the parameter would mean "open work packages only" (API-NOTES section 1).
    pub fn to_json(filters: &[Filter]) -> String {
        Value::Array(
            filters
                .iter()
                .map(|f| json!({ &f.name: { "operator": f.operator, "values": f.values } }))
                .collect(),
        )
        .to_string()
    }
}

/// A work package list query.
#[derive(Debug, Clone, Default)]
pub struct WorkPackageQuery {
    /// Restrict to one project (`/api/v3/projects/{id}/work_packages`).
    pub project: Option<u64>,
    pub filters: Vec<Filter>,
    /// `[["field", "asc"|"desc"], ...]`; empty means the server default (`id asc`).
    pub sort_by: Vec<(String, String)>,
    /// Overrides the client's page size (e.g. 1 for a cheap probe).
    pub page_size: Option<u32>,
}

/// A PATCH of a work package; always carries the `lockVersion` it was decided on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkPackagePatch {
    pub lock_version: u64,
    pub status: Option<u64>,
    /// `Some(None)` unassigns.
    pub assignee: Option<Option<u64>>,
    /// `customFieldN` -> value (`None` clears it).
    pub custom_fields: Vec<(String, Option<String>)>,
}

impl WorkPackagePatch {
    pub fn to_json(&self) -> Value {
        let mut links = Map::new();
        if let Some(status) = self.status {
            links.insert(
                "status".into(),
                json!({ "href": format!("/api/v3/statuses/{status}") }),
            );
        }
        if let Some(assignee) = self.assignee {
            let href = assignee.map(|id| format!("/api/v3/users/{id}"));
            links.insert("assignee".into(), json!({ "href": href }));
        }
        let mut body = Map::new();
        body.insert("lockVersion".into(), json!(self.lock_version));
        for (key, value) in &self.custom_fields {
            body.insert(key.clone(), json!(value));
        }
        if !links.is_empty() {
            body.insert("_links".into(), Value::Object(links));
        }
        Value::Object(body)
    }
}

/// A new work package (used for Spikes).
#[derive(Debug, Clone, PartialEq)]
pub struct NewWorkPackage {
    pub project: u64,
    pub type_id: u64,
    pub subject: String,
    /// Markdown.
    pub description: String,
    pub parent: Option<u64>,
    pub status: Option<u64>,
    pub priority: Option<u64>,
}

/// The OpenProject API v3 client. Cheap to clone (shares the connection pool and the counters).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    /// Always ends with `/` so `join("api/v3/...")` keeps any path prefix.
    base: Url,
    auth: Auth,
    opts: ClientOptions,
    stats: Arc<RequestStats>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

impl Client {
    pub fn new(base: &Url, auth: Auth, opts: ClientOptions) -> anyhow::Result<Client> {
        let mut base = base.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let http = reqwest::Client::builder()
            .timeout(opts.timeout)
            .connect_timeout(opts.connect_timeout)
            .user_agent(concat!("journeyman/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| anyhow::anyhow!("building the HTTP client: {e}"))?;
        Ok(Client {
            http,
            base,
            auth,
            opts,
            stats: Arc::default(),
        })
    }

    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// The largest answer this client reads.
    pub fn max_body_bytes(&self) -> usize {
        self.opts.max_body_bytes
    }

    /// The page size list requests use unless a query sets its own.
    pub fn page_size(&self) -> u32 {
        self.opts.page_size
    }

    pub fn stats(&self) -> StatsSnapshot {
        StatsSnapshot {
            requests: self.stats.requests.load(Ordering::Relaxed),
            bytes: self.stats.bytes.load(Ordering::Relaxed),
            retries: self.stats.retries.load(Ordering::Relaxed),
        }
    }

    fn url(&self, path: &str, query: &[(&str, String)]) -> Url {
        // `path` is one of our own constants with ids interpolated: joining cannot fail.
        let mut url = self
            .base
            .join(path.trim_start_matches('/'))
            .expect("API paths are valid relative URLs");
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        url
    }

    /// Sends one request with the retry policy and returns the body of a 2xx answer.
    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Vec<u8>, ApiError> {
        let path = match url.query() {
            Some(q) if q.len() <= 300 => format!("{}?{}", url.path(), q),
            _ => url.path().to_string(),
        };
        let endpoint = endpoint_label(url.path());
        let idempotent = method == Method::GET || method == Method::HEAD;
        let mut delays = ExponentialBuilder::default()
            .with_min_delay(self.opts.retry.min_delay)
            .with_max_delay(self.opts.retry.max_delay)
            .with_max_times(self.opts.retry.max_retries)
            .with_jitter()
            .build();
        loop {
            let outcome = self.send_once(&method, &url, body, &path, &endpoint).await;
            let (err, retry_after, never_sent) = match outcome {
                Ok(bytes) => return Ok(bytes),
                Err(Attempt {
                    err,
                    retry_after,
                    never_sent,
                }) => (err, retry_after, never_sent),
            };
            let retryable = err.kind.is_transient() && (idempotent || never_sent);
            if !retryable {
                return Err(err);
            }
            let Some(mut delay) = delays.next() else {
                return Err(err);
            };
            if let Some(ra) = retry_after {
                if ra > self.opts.retry.max_retry_after {
                    return Err(err);
                }
                delay = delay.max(ra);
            }
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%method, path = %path, error = %err, ?delay, "retrying API request");
            tokio::time::sleep(delay).await;
        }
    }

    async fn send_once(
        &self,
        method: &Method,
        url: &Url,
        body: Option<&Value>,
        path: &str,
        endpoint: &str,
    ) -> Result<Vec<u8>, Attempt> {
        let mut req = self
            .http
            .request(method.clone(), url.clone())
            .header(header::ACCEPT, "application/hal+json");
        req = match &self.auth {
            Auth::ApiKey(token) => req.basic_auth("apikey", Some(token.expose_secret())),
            Auth::Bearer(token) => req.bearer_auth(token.expose_secret()),
        };
        if let Some(body) = body {
            req = req
                .header(header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let transport = |e: reqwest::Error| {
            let status = if e.is_timeout() {
                "timeout"
            } else {
                "transport"
            };
            record(method, endpoint, status);
            Attempt {
                err: ApiError {
                    kind: ErrorKind::Transport,
                    method: method.to_string(),
                    path: path.to_string(),
                    status: None,
                    identifier: None,
                    message: describe_transport(&e),
                },
                retry_after: None,
                never_sent: e.is_connect(),
            }
        };
        let mut resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        record(method, endpoint, status.as_str());
        let retry_after = parse_retry_after(resp.headers().get(header::RETRY_AFTER));
        if let Some(len) = resp.content_length()
            && len as usize > self.opts.max_body_bytes
        {
            return Err(Attempt::too_large(
                method,
                path,
                format!(
                    "response of {len} bytes exceeds the limit of {} bytes",
                    self.opts.max_body_bytes
                ),
            ));
        }
        let mut bytes = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if bytes.len() + chunk.len() > self.opts.max_body_bytes {
                        return Err(Attempt::too_large(
                            method,
                            path,
                            format!(
                                "response exceeds the limit of {} bytes",
                                self.opts.max_body_bytes
                            ),
                        ));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err(transport(e)),
            }
        }
        self.stats
            .bytes
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        if status.is_success() {
            Ok(bytes)
        } else {
            let err = error::from_response(method.as_str(), path, status.as_u16(), &bytes);
            Err(Attempt {
                err,
                retry_after: retry_after.filter(|_| {
                    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
                }),
                never_sent: false,
            })
        }
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<T, ApiError> {
        let path = url.path().to_string();
        let bytes = self.send(method.clone(), url, body).await?;
        serde_json::from_slice(&bytes).map_err(|e| {
            // serde quotes the offending value in full (a wrong-typed 30 MB string): cut it, and
            // keep the position that the cut removed.
            let full = e.to_string();
            let mut reason = error::bounded(full.clone());
            if reason.len() < full.len() {
                reason.push_str(&format!(" at line {} column {}", e.line(), e.column()));
            }
            ApiError {
                kind: ErrorKind::Decode,
                method: method.to_string(),
                path,
                status: None,
                identifier: None,
                message: format!(
                    "malformed response body: {reason} (body starts with: {})",
                    error::snippet(&bytes)
                ),
            }
        })
    }

    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, ApiError> {
        self.json(Method::GET, self.url(path, query), None).await
    }

    /// `GET /api/v3/users/me`: the agent user behind the token.
    pub async fn me(&self) -> Result<hal::User, ApiError> {
        self.get("api/v3/users/me", &[]).await
    }

    pub async fn statuses(&self) -> Result<Vec<hal::Status>, ApiError> {
        Ok(self
            .get::<Collection<hal::Status>>("api/v3/statuses", &[])
            .await?
            .embedded
            .elements)
    }

    pub async fn types(&self) -> Result<Vec<hal::Type>, ApiError> {
        Ok(self
            .get::<Collection<hal::Type>>("api/v3/types", &[])
            .await?
            .embedded
            .elements)
    }

    pub async fn priorities(&self) -> Result<Vec<hal::Priority>, ApiError> {
        Ok(self
            .get::<Collection<hal::Priority>>("api/v3/priorities", &[])
            .await?
            .embedded
            .elements)
    }

    /// A project by numeric id or identifier (OpenProject accepts both in the path).
    pub async fn project(&self, id_or_identifier: &str) -> Result<hal::Project, ApiError> {
        let segment: String =
            url::form_urlencoded::byte_serialize(id_or_identifier.as_bytes()).collect();
        self.get(&format!("api/v3/projects/{segment}"), &[]).await
    }

    pub async fn work_package(&self, id: u64) -> Result<hal::WorkPackage, ApiError> {
        self.get(&format!("api/v3/work_packages/{id}"), &[]).await
    }

    fn list_query(
        q: &WorkPackageQuery,
        page_size: u32,
        offset: u64,
    ) -> Vec<(&'static str, String)> {
        let mut query = vec![
            ("filters", Filter::to_json(&q.filters)),
            ("pageSize", page_size.to_string()),
            ("offset", offset.to_string()),
        ];
        if !q.sort_by.is_empty() {
            let sort: Vec<[&str; 2]> = q
                .sort_by
                .iter()
                .map(|(f, d)| [f.as_str(), d.as_str()])
                .collect();
            query.push(("sortBy", serde_json::to_string(&sort).unwrap_or_default()));
        }
        query
    }

    fn list_path(q: &WorkPackageQuery) -> String {
        match q.project {
            Some(p) => format!("api/v3/projects/{p}/work_packages"),
            None => "api/v3/work_packages".to_string(),
        }
    }

    /// One page of a work package list (`offset` is the 1-based page number).
    pub async fn work_packages_page(
        &self,
        q: &WorkPackageQuery,
        offset: u64,
    ) -> Result<Collection<hal::WorkPackage>, ApiError> {
        let page_size = q.page_size.unwrap_or(self.opts.page_size);
        self.get(&Self::list_path(q), &Self::list_query(q, page_size, offset))
            .await
    }

    /// All work packages matching the query, reading every page.
    pub async fn work_packages(
        &self,
        q: &WorkPackageQuery,
    ) -> Result<Vec<hal::WorkPackage>, ApiError> {
        let mut all = Vec::new();
        let mut offset = 1;
        loop {
            let page = self.work_packages_page(q, offset).await?;
            let got = page.embedded.elements.len();
            all.extend(page.embedded.elements);
            // Stop on a short or empty page, or once `total` is reached; the board may change between
            // pages, so never loop on `total` alone.
            let page_size = page.page_size.unwrap_or(got as u64).max(1);
            if got == 0 || (got as u64) < page_size || all.len() as u64 >= page.total {
                break;
            }
            offset += 1;
        }
        Ok(all)
    }

    /// `PATCH /api/v3/work_packages/{id}` with the patch's `lockVersion`. A stale or missing
    /// `lockVersion` gives an error of kind [`ErrorKind::Conflict`].
    pub async fn update_work_package(
        &self,
        id: u64,
        patch: &WorkPackagePatch,
    ) -> Result<hal::WorkPackage, ApiError> {
        let url = self.url(&format!("api/v3/work_packages/{id}"), &[]);
        self.json(Method::PATCH, url, Some(&patch.to_json())).await
    }

    /// `POST /api/v3/projects/{id}/work_packages`.
    pub async fn create_work_package(
        &self,
        new: &NewWorkPackage,
    ) -> Result<hal::WorkPackage, ApiError> {
        let mut links = Map::new();
        links.insert(
            "type".into(),
            json!({ "href": format!("/api/v3/types/{}", new.type_id) }),
        );
        if let Some(parent) = new.parent {
            links.insert(
                "parent".into(),
                json!({ "href": format!("/api/v3/work_packages/{parent}") }),
            );
        }
        if let Some(status) = new.status {
            links.insert(
                "status".into(),
                json!({ "href": format!("/api/v3/statuses/{status}") }),
            );
        }
        if let Some(priority) = new.priority {
            links.insert(
                "priority".into(),
                json!({ "href": format!("/api/v3/priorities/{priority}") }),
            );
        }
        let body = json!({
            "subject": new.subject,
            "description": { "format": "markdown", "raw": new.description },
            "_links": links,
        });
        let url = self.url(
            &format!("api/v3/projects/{}/work_packages", new.project),
            &[],
        );
        self.json(Method::POST, url, Some(&body)).await
    }

    /// `POST /api/v3/work_packages/{id}/activities`: a comment (does not bump `lockVersion`).
    pub async fn add_comment(&self, id: u64, markdown: &str) -> Result<hal::Activity, ApiError> {
        let url = self.url(&format!("api/v3/work_packages/{id}/activities"), &[]);
        self.json(
            Method::POST,
            url,
            Some(&json!({ "comment": { "raw": markdown } })),
        )
        .await
    }

    /// `GET /api/v3/work_packages/{id}/activities`.
    pub async fn activities(&self, id: u64) -> Result<Vec<hal::Activity>, ApiError> {
        Ok(self
            .get::<Collection<hal::Activity>>(&format!("api/v3/work_packages/{id}/activities"), &[])
            .await?
            .embedded
            .elements)
    }

    /// `GET /api/v3/relations` with filters, every page.
    pub async fn relations(&self, filters: &[Filter]) -> Result<Vec<hal::Relation>, ApiError> {
        let mut all = Vec::new();
        let mut offset = 1u64;
        loop {
            let query = [
                ("filters", Filter::to_json(filters)),
                ("pageSize", self.opts.page_size.to_string()),
                ("offset", offset.to_string()),
            ];
            let page: Collection<hal::Relation> = self.get("api/v3/relations", &query).await?;
            let got = page.embedded.elements.len();
            all.extend(page.embedded.elements);
            let page_size = page.page_size.unwrap_or(got as u64).max(1);
            if got == 0 || (got as u64) < page_size || all.len() as u64 >= page.total {
                break;
            }
            offset += 1;
        }
        Ok(all)
    }

    /// `GET /api/v3/work_packages/{id}/relations`: the relations of one work package. The snapshot
    /// never reads relations per work package; the benchmark's naive strategy does.
    pub async fn work_package_relations(&self, id: u64) -> Result<Vec<hal::Relation>, ApiError> {
        Ok(self
            .get::<Collection<hal::Relation>>(&format!("api/v3/work_packages/{id}/relations"), &[])
            .await?
            .embedded
            .elements)
    }

    /// All `blocks` relations visible to the user (stored canonically: `from` blocks `to`).
    pub async fn blocks_relations(&self) -> Result<Vec<hal::Relation>, ApiError> {
        self.relations(&[Filter::new("type", "=", ["blocks"])])
            .await
    }

    /// Resolves a custom field's name (e.g. "Agent pod") to its property key (`customField3`) from the
    /// work package schema of a project and type. `None` if the field is not active there.
    pub async fn custom_field_key(
        &self,
        project: u64,
        type_id: u64,
        name: &str,
    ) -> Result<Option<String>, ApiError> {
        let schema: Map<String, Value> = self
            .get(
                &format!("api/v3/work_packages/schemas/{project}-{type_id}"),
                &[],
            )
            .await?;
        Ok(schema
            .iter()
            .filter(|(key, _)| key.starts_with("customField"))
            .find(|(_, field)| field.get("name").and_then(Value::as_str) == Some(name))
            .map(|(key, _)| key.clone()))
    }
}

/// The outcome of one failed attempt, with what the retry loop needs to decide.
struct Attempt {
    err: ApiError,
    retry_after: Option<Duration>,
    /// The connection was never established: safe to retry any method.
    never_sent: bool,
}

impl Attempt {
    fn too_large(method: &Method, path: &str, message: String) -> Attempt {
        Attempt {
            err: ApiError {
                kind: ErrorKind::TooLarge,
                method: method.to_string(),
                path: path.to_string(),
                status: None,
                identifier: None,
                message,
            },
            retry_after: None,
            never_sent: false,
        }
    }
}

fn describe_transport(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "request timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "connection failed"
    };
    // The source chain says why (refused, reset, ...); reqwest's Display alone is often generic.
    let mut detail = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        what.to_string()
    } else {
        format!("{what}: {detail}")
    }
}

/// `Retry-After` as seconds or an HTTP date.
fn parse_retry_after(value: Option<&header::HeaderValue>) -> Option<Duration> {
    let text = value?.to_str().ok()?.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(text).ok()?;
    let secs = (when.timestamp() - chrono::Utc::now().timestamp()).max(0) as u64;
    Some(Duration::from_secs(secs))
}

/// A low-cardinality label for metrics: ids replaced by `{id}`.
pub fn endpoint_label(path: &str) -> String {
    let start = path.find("/api/v3/").unwrap_or(0);
    path[start..]
        .split('/')
        .map(|seg| {
            if !seg.is_empty()
                && (seg.bytes().all(|b| b.is_ascii_digit())
                    || seg.contains('-')
                        && seg
                            .split('-')
                            .all(|p| p.bytes().all(|b| b.is_ascii_digit())))
            {
                "{id}"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn record(method: &Method, endpoint: &str, status: &str) {
    metrics::counter!(
        "journeyman_api_requests_total",
        "method" => method.to_string(),
        "endpoint" => endpoint.to_string(),
        "status" => status.to_string()
    )
    .increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_render_as_openproject_json() {
        assert_eq!(Filter::to_json(&[]), "[]");
        let f = [
            Filter::new("status", "o", Vec::<String>::new()),
            Filter::new("type", "=", [1, 2]),
        ];
        assert_eq!(
            Filter::to_json(&f),
            r#"[{"status":{"operator":"o","values":[]}},{"type":{"operator":"=","values":["1","2"]}}]"#
        );
    }

    #[test]
    fn claim_patch_is_one_body_with_lock_version_links_and_pod_field() {
        let patch = WorkPackagePatch {
            lock_version: 7,
            status: Some(7),
            assignee: Some(Some(3)),
            custom_fields: vec![("customField1".into(), Some("pod-2".into()))],
        };
        assert_eq!(
            patch.to_json(),
            json!({
                "lockVersion": 7,
                "customField1": "pod-2",
                "_links": { "status": {"href": "/api/v3/statuses/7"}, "assignee": {"href": "/api/v3/users/3"} }
            })
        );
        let release = WorkPackagePatch {
            lock_version: 1,
            assignee: Some(None),
            custom_fields: vec![("customField1".into(), None)],
            ..Default::default()
        };
        assert_eq!(release.to_json()["_links"]["assignee"]["href"], Value::Null);
        assert_eq!(release.to_json()["customField1"], Value::Null);
    }

    #[test]
    fn endpoint_labels_have_no_ids() {
        assert_eq!(
            endpoint_label("/api/v3/work_packages/42/activities"),
            "/api/v3/work_packages/{id}/activities"
        );
        assert_eq!(
            endpoint_label("/prefix/api/v3/work_packages/schemas/1-2"),
            "/api/v3/work_packages/schemas/{id}"
        );
        assert_eq!(endpoint_label("/api/v3/users/me"), "/api/v3/users/me");
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let v = header::HeaderValue::from_static("3");
        assert_eq!(parse_retry_after(Some(&v)), Some(Duration::from_secs(3)));
        let past = header::HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT");
        assert_eq!(parse_retry_after(Some(&past)), Some(Duration::ZERO));
        let junk = header::HeaderValue::from_static("soon");
        assert_eq!(parse_retry_after(Some(&junk)), None);
    }
}
