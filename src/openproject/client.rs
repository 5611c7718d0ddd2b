//! The OpenProject API v3 client: where requests are sent (the base URL and its paths) and how
//! answers are decoded. The transport sends and retries; the endpoints (`endpoints.rs`) say what
//! each request means.
//!
//! What it must never do: decode an answer without a bound (the transport caps it), quote a huge
//! body in an error (errors carry a snippet), or send a secret: every string of every request body
//! (comments, Spike subjects and descriptions, field values) goes through the worker's redactor.

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

use super::error::{self, ApiError, ErrorKind};
use super::hal::Collection;
use super::options::{Auth, ClientOptions};
use super::stats::StatsSnapshot;
use super::transport::Transport;
use crate::redact::Redactor;

/// The OpenProject API v3 client. Cheap to clone (shares the connection pool and the counters).
#[derive(Clone)]
pub struct Client {
    /// Always ends with `/` so `join("api/v3/...")` keeps any path prefix.
    base: Url,
    transport: Transport,
    redactor: Redactor,
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
        Ok(Client {
            base,
            transport: Transport::new(auth, opts)?,
            redactor: Redactor::shapes_only(),
        })
    }

    /// The secrets every request body is cleaned of (token shapes only by default).
    pub fn with_redactor(mut self, redactor: Redactor) -> Client {
        self.redactor = redactor;
        self
    }

    /// The largest answer this client reads.
    pub fn max_body_bytes(&self) -> usize {
        self.transport.options().max_body_bytes
    }

    /// Which writes notify watchers.
    pub fn notify_policy(&self) -> super::options::NotifyPolicy {
        self.transport.options().notify
    }

    /// The page size list requests use unless a query sets its own.
    pub fn page_size(&self) -> u32 {
        self.transport.options().page_size
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.transport.stats()
    }

    pub(super) fn url(&self, path: &str, query: &[(&str, String)]) -> Url {
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

    /// Sends the request and decodes the JSON of its 2xx answer.
    pub(super) async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<T, ApiError> {
        let path = url.path().to_string();
        let clean = body.map(|b| redact_strings(b, &self.redactor));
        let bytes = self
            .transport
            .send(method.clone(), url, clean.as_ref())
            .await?;
        serde_json::from_slice(&bytes).map_err(|e| decode_error(&method, path, &e, &bytes))
    }

    pub(super) async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, ApiError> {
        self.json(Method::GET, self.url(path, query), None).await
    }

    /// The elements of a collection read in one request (no paging).
    pub(super) async fn elements<T: DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<Vec<T>, ApiError> {
        Ok(self
            .get::<Collection<T>>(path, &[])
            .await?
            .embedded
            .elements)
    }
}

/// `value` with every string in it redacted.
fn redact_strings(value: &Value, redactor: &Redactor) -> Value {
    match value {
        Value::String(s) => Value::String(redactor.redact(s).into_owned()),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| redact_strings(v, redactor)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), redact_strings(v, redactor)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The error for a 2xx answer whose body does not decode.
fn decode_error(method: &Method, path: String, e: &serde_json::Error, bytes: &[u8]) -> ApiError {
    // serde quotes the offending value in full (a wrong-typed 30 MB string): cut it, and keep the
    // position that the cut removed.
    let full = e.to_string();
    let mut reason = error::bounded(full.clone());
    if reason.len() < full.len() {
        reason.push_str(&format!(" at line {} column {}", e.line(), e.column()));
    }
    let message = format!(
        "malformed response body: {reason} (body starts with: {})",
        error::snippet(bytes)
    );
    ApiError::local(ErrorKind::Decode, method.as_str(), &path, message)
}
