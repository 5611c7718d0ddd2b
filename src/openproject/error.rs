//! Typed errors of the OpenProject API, built from the HAL error body (`errorIdentifier`).
//!
//! Callers branch on [`ErrorKind`] (a 409 on a claim means "another pod won", a 401 means "stop and
//! tell a human"); the `Display` form always names the request ("PATCH /api/v3/work_packages/42: 409
//! UpdateConflict: ...") so a log line or an audit comment is enough to find what failed.

use std::fmt;

use serde::Deserialize;

/// What went wrong, at the level a caller decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// 409 UpdateConflict: a stale or missing `lockVersion`, or a duplicate relation.
    Conflict,
    /// 404 NotFound (OpenProject also answers 404 for resources the user may not see).
    NotFound,
    /// 401 Unauthenticated: the token is missing, wrong or revoked.
    Unauthenticated,
    /// 403 MissingPermission.
    Forbidden,
    /// 400 InvalidQuery / InvalidRequestBody: a bug in this client, never retried.
    BadRequest,
    /// 422 PropertyConstraintViolation and friends: the write was understood and refused.
    Invalid,
    /// 429 TooManyRequests, after the retries allowed for the request.
    RateLimited,
    /// 5xx, after the retries allowed for the request.
    Server,
    /// Connection refused or dropped, or the request timed out, after the retries allowed.
    Transport,
    /// The server answered 2xx with a body we cannot read (malformed JSON, wrong shape, too large).
    Decode,
    /// Any other status.
    Other,
}

impl ErrorKind {
    /// Worth trying again later (the request itself was fine).
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorKind::RateLimited | ErrorKind::Server | ErrorKind::Transport
        )
    }
}

/// An error from one API request.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub method: String,
    /// The request path (and query), without the host.
    pub path: String,
    pub status: Option<u16>,
    /// The short identifier, e.g. `UpdateConflict` (the URN prefix stripped).
    pub identifier: Option<String>,
    pub message: String,
}

impl ApiError {
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn is_conflict(&self) -> bool {
        self.kind == ErrorKind::Conflict
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: ", self.method, self.path)?;
        if let Some(status) = self.status {
            write!(f, "{status} ")?;
        }
        if let Some(id) = &self.identifier {
            write!(f, "{id}: ")?;
        }
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for ApiError {}

/// The HAL error body (`_type: "Error"`). `message` is a string, or in a few endpoints an array.
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(rename = "errorIdentifier")]
    pub error_identifier: Option<String>,
    pub message: Option<serde_json::Value>,
}

pub(crate) const URN_PREFIX: &str = "urn:openproject-org:api:v3:errors:";

/// Classifies a non-2xx response from its status and (possibly malformed) body.
pub(crate) fn from_response(method: &str, path: &str, status: u16, body: &[u8]) -> ApiError {
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let identifier = parsed
        .as_ref()
        .and_then(|b| b.error_identifier.as_deref())
        .map(|id| id.strip_prefix(URN_PREFIX).unwrap_or(id).to_string());
    let message = match parsed.as_ref().and_then(|b| b.message.as_ref()) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => snippet(body),
    };
    let kind = match (status, identifier.as_deref()) {
        (409, _) | (_, Some("UpdateConflict")) => ErrorKind::Conflict,
        (404, _) => ErrorKind::NotFound,
        (401, _) => ErrorKind::Unauthenticated,
        (403, _) => ErrorKind::Forbidden,
        (400, _) | (406, _) | (415, _) => ErrorKind::BadRequest,
        (422, _) => ErrorKind::Invalid,
        (429, _) => ErrorKind::RateLimited,
        (500..=599, _) => ErrorKind::Server,
        _ => ErrorKind::Other,
    };
    ApiError {
        kind,
        method: method.into(),
        path: path.into(),
        status: Some(status),
        identifier,
        message,
    }
}

/// The start of a body, for evidence in an error message (never the whole of a huge body).
pub(crate) fn snippet(body: &[u8]) -> String {
    const MAX: usize = 200;
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX)]);
    let text = text.trim();
    if text.is_empty() {
        "(empty body)".to_string()
    } else if body.len() > MAX {
        format!("{text}...")
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_body_is_typed_and_named() {
        let body = br#"{"_type":"Error","errorIdentifier":"urn:openproject-org:api:v3:errors:UpdateConflict","message":"Could not update the resource because of conflicting modifications."}"#;
        let e = from_response("PATCH", "/api/v3/work_packages/42", 409, body);
        assert_eq!(e.kind(), ErrorKind::Conflict);
        assert_eq!(
            e.to_string(),
            "PATCH /api/v3/work_packages/42: 409 UpdateConflict: Could not update the resource because of conflicting modifications."
        );
    }

    #[test]
    fn array_messages_and_non_json_bodies() {
        let e = from_response("GET", "/api/v3/relations", 400, br#"{"_type":"Error","errorIdentifier":"urn:openproject-org:api:v3:errors:InvalidQuery","message":["Filters Type filter has invalid values."]}"#);
        assert_eq!(e.kind(), ErrorKind::BadRequest);
        assert!(
            e.to_string()
                .ends_with("InvalidQuery: Filters Type filter has invalid values.")
        );
        let e = from_response("GET", "/x", 502, b"<html>Bad Gateway</html>");
        assert_eq!(e.kind(), ErrorKind::Server);
        assert!(e.to_string().contains("Bad Gateway"));
        assert!(e.kind().is_transient());
    }
}
