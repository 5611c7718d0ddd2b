//! Request accounting: counters of what a client sent and received (per-cycle costs, benchmarks)
//! and the `journeyman_api_requests_total` metric.
//!
//! Metric labels must stay low-cardinality: an endpoint is named with its ids replaced by `{id}`,
//! never with the ids themselves.

use std::sync::atomic::{AtomicU64, Ordering};

use reqwest::Method;

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

impl RequestStats {
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
        }
    }
}

/// A snapshot of a client's request counters; subtract two to get the cost of an operation.
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

/// Counts one answer (or transport failure) in `journeyman_api_requests_total`.
pub(super) fn record(method: &Method, endpoint: &str, status: &str) {
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
}
