//! Sending one request to the board: authentication, the retry schedule, bounded reads of the
//! answer, and the accounting of every attempt.
//!
//! Retry policy (one place, here): connection errors, timeouts, 429 (honouring `Retry-After`) and 5xx
//! are retried for idempotent requests (GET) only; a connection that was never established is retried
//! for any method, since the server never saw the request. 4xx are never retried. A PATCH is never
//! retried blindly: if its answer was lost the `lockVersion` it carried is spent, and the caller must
//! re-read and re-decide (DESIGN section 1).
//!
//! What it must never do: read more of an answer than `max_body_bytes`, or know what an endpoint
//! means (that is the client's part); it returns the bytes of a 2xx answer or a typed error.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use reqwest::{Method, StatusCode, header};
use secrecy::ExposeSecret;
use serde_json::Value;
use url::Url;

use super::error::{self, ApiError, ErrorKind};
use super::options::{Auth, ClientOptions};
use super::stats::{RequestStats, StatsSnapshot, endpoint_label, record};

/// The HTTP side of a client. Cheap to clone (shares the connection pool and the counters).
#[derive(Clone)]
pub(super) struct Transport {
    http: reqwest::Client,
    auth: Auth,
    opts: ClientOptions,
    stats: Arc<RequestStats>,
}

impl Transport {
    pub(super) fn new(auth: Auth, opts: ClientOptions) -> anyhow::Result<Transport> {
        let http = reqwest::Client::builder()
            .timeout(opts.timeout)
            .connect_timeout(opts.connect_timeout)
            .user_agent(concat!("journeyman/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| anyhow::anyhow!("building the HTTP client: {e}"))?;
        Ok(Transport {
            http,
            auth,
            opts,
            stats: Arc::default(),
        })
    }

    pub(super) fn options(&self) -> &ClientOptions {
        &self.opts
    }

    pub(super) fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// Sends one request with the retry policy and returns the body of a 2xx answer.
    pub(super) async fn send(
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
            let failed = match self.send_once(&method, &url, body, &path, &endpoint).await {
                Ok(bytes) => return Ok(bytes),
                Err(failed) => failed,
            };
            let max_retry_after = self.opts.retry.max_retry_after;
            let Some(delay) = retry_delay(&failed, idempotent, || delays.next(), max_retry_after)
            else {
                return Err(failed.err);
            };
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%method, path = %path, error = %failed.err, ?delay, "retrying API request");
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
        let transport = |e: reqwest::Error| {
            let status = if e.is_timeout() {
                "timeout"
            } else {
                "transport"
            };
            record(method, endpoint, status);
            Attempt::transport(method, path, &e)
        };
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let mut resp = self
            .request(method, url, body)
            .send()
            .await
            .map_err(transport)?;
        let status = resp.status();
        record(method, endpoint, status.as_str());
        let retry_after = parse_retry_after(resp.headers().get(header::RETRY_AFTER));
        let bytes = match read_bounded(&mut resp, self.opts.max_body_bytes).await {
            Ok(bytes) => bytes,
            Err(Unread::TooLarge(message)) => {
                return Err(Attempt::too_large(method, path, message));
            }
            Err(Unread::Transport(e)) => return Err(transport(e)),
        };
        self.stats
            .bytes
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        if !status.is_success() {
            return Err(refused(method, path, status, retry_after, &bytes));
        }
        Ok(bytes)
    }

    /// The request with the HAL `Accept` header, the credentials and the JSON body, if any.
    fn request(&self, method: &Method, url: &Url, body: Option<&Value>) -> reqwest::RequestBuilder {
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
        req
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
    fn transport(method: &Method, path: &str, e: &reqwest::Error) -> Attempt {
        Attempt {
            err: ApiError::local(
                ErrorKind::Transport,
                method.as_str(),
                path,
                describe_transport(e),
            ),
            retry_after: None,
            never_sent: e.is_connect(),
        }
    }

    fn too_large(method: &Method, path: &str, message: String) -> Attempt {
        Attempt {
            err: ApiError::local(ErrorKind::TooLarge, method.as_str(), path, message),
            retry_after: None,
            never_sent: false,
        }
    }
}

/// How long to wait before trying again after `failed`, or `None` to give up with its error.
/// `next_backoff` is asked only when the failure is worth retrying at all.
fn retry_delay(
    failed: &Attempt,
    idempotent: bool,
    next_backoff: impl FnOnce() -> Option<Duration>,
    max_retry_after: Duration,
) -> Option<Duration> {
    let retryable = failed.err.kind.is_transient() && (idempotent || failed.never_sent);
    if !retryable {
        return None;
    }
    let delay = next_backoff()?;
    match failed.retry_after {
        Some(ra) if ra > max_retry_after => None,
        Some(ra) => Some(delay.max(ra)),
        None => Some(delay),
    }
}

/// Why an answer's body was not read.
enum Unread {
    /// Larger than the limit (announced, or found while reading): the message says which.
    TooLarge(String),
    Transport(reqwest::Error),
}

/// Reads the body of `resp`, never more than `max` bytes of it.
async fn read_bounded(resp: &mut reqwest::Response, max: usize) -> Result<Vec<u8>, Unread> {
    if let Some(len) = resp.content_length()
        && len as usize > max
    {
        return Err(Unread::TooLarge(format!(
            "response of {len} bytes exceeds the limit of {max} bytes"
        )));
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(Unread::Transport)? {
        if bytes.len() + chunk.len() > max {
            return Err(Unread::TooLarge(format!(
                "response exceeds the limit of {max} bytes"
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// The failure of a non-2xx answer: its typed error, with the `Retry-After` that counts (only on
/// 429 and 5xx).
fn refused(
    method: &Method,
    path: &str,
    status: StatusCode,
    retry_after: Option<Duration>,
    bytes: &[u8],
) -> Attempt {
    Attempt {
        err: error::from_response(method.as_str(), path, status.as_u16(), bytes),
        retry_after: retry_after
            .filter(|_| status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()),
        never_sent: false,
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

#[cfg(test)]
mod tests {
    use super::*;

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
