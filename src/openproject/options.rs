//! How a [`Client`](super::Client) is set up: the authentication it sends, its timeouts, its retry
//! schedule and its size limits.
//!
//! Plain data with defaults that fit a pod; the transport reads it, nothing here does I/O.

use std::time::Duration;

use secrecy::SecretString;

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
    /// Which writes ask OpenProject to notify watchers (`notify`, true when absent: API-NOTES
    /// section 13).
    pub notify: NotifyPolicy,
}

/// Whom a write is for: routine bookkeeping, or something a human must act on (a Spike, an
/// escalation, a refused transition, an environment problem).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Notify {
    #[default]
    Routine,
    Human,
}

/// Which writes notify watchers (`JOURNEYMAN_NOTIFY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NotifyPolicy {
    /// Only writes a human must act on (the default).
    #[default]
    Needed,
    /// Every write, as OpenProject does without the parameter.
    All,
    /// No write.
    Never,
}

impl NotifyPolicy {
    /// The `notify` parameter for a write of this kind.
    pub fn notify(self, kind: Notify) -> bool {
        match self {
            NotifyPolicy::Needed => kind == Notify::Human,
            NotifyPolicy::All => true,
            NotifyPolicy::Never => false,
        }
    }
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            retry: RetryPolicy::default(),
            max_body_bytes: 32 * 1024 * 1024,
            page_size: 1000,
            notify: NotifyPolicy::default(),
        }
    }
}
