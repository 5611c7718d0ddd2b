//! Typed errors of the OpenProject API, built from the HAL error body (`errorIdentifier`).
//!
//! Callers branch on [`ErrorKind`] (a 409 on a claim means "another pod won", a 401 means "stop and
//! tell a human"); the `Display` form always names the request ("PATCH /api/v3/work_packages/42: 409
//! UpdateConflict: ...") so a log line or an audit comment is enough to find what failed.

use std::fmt;

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
    /// The server answered 2xx with a body we cannot read (malformed JSON, wrong shape).
    Decode,
    /// The answer is larger than the client's `max_body_bytes`: read no further, never retried.
    TooLarge,
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
    /// For a 422: each refused property and why (one for PropertyConstraintViolation, one per
    /// embedded error for MultipleErrors).
    pub refusals: Vec<Refusal>,
}

/// One property a write was refused for (a 422's `_embedded.details.attribute` and message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The property, e.g. `status`; `None` when the board does not say.
    pub attribute: Option<String>,
    pub message: String,
}

impl ApiError {
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn is_conflict(&self) -> bool {
        self.kind == ErrorKind::Conflict
    }

    /// Whether the board refused a write as invalid (422): never retried as is.
    pub fn is_refusal(&self) -> bool {
        self.kind == ErrorKind::Invalid
    }

    /// The refusal of `attribute` (e.g. `status`), if this error holds one.
    pub fn refused(&self, attribute: &str) -> Option<&Refusal> {
        self.refusals
            .iter()
            .find(|r| r.attribute.as_deref() == Some(attribute))
    }

    /// An error found on this side of the request (no status from the server): the connection, the
    /// size limit, or a body that does not decode.
    pub(crate) fn local(kind: ErrorKind, method: &str, path: &str, message: String) -> ApiError {
        ApiError {
            kind,
            method: method.into(),
            path: path.into(),
            status: None,
            identifier: None,
            message,
            refusals: Vec::new(),
        }
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

pub(crate) const URN_PREFIX: &str = "urn:openproject-org:api:v3:errors:";

/// Classifies a non-2xx response from its status and (possibly malformed) body.
///
/// The HAL error body (`_type: "Error"`) has `errorIdentifier` (a string) and `message` (a string,
/// or in a few endpoints an array); each is read on its own, so that one of the wrong type (from a
/// proxy or a newer release) does not lose the other.
pub(crate) fn from_response(method: &str, path: &str, status: u16, body: &[u8]) -> ApiError {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let identifier = parsed
        .as_ref()
        .and_then(|b| b.get("errorIdentifier"))
        .and_then(serde_json::Value::as_str)
        .map(|id| id.strip_prefix(URN_PREFIX).unwrap_or(id).to_string());
    let message = match parsed.as_ref().and_then(|b| b.get("message")) {
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
        _ => String::new(),
    };
    // An empty message says nothing; a huge one (the body may be megabytes) floods logs and
    // audit comments: the body's start says more in the first case, a cut in the second.
    let refusals = parsed.as_ref().map(refusals).unwrap_or_default();
    // MultipleErrors says only "Multiple field constraints have been violated.": the reasons are
    // in `_embedded.errors[]` (API-NOTES section 13).
    let message = if refusals.len() > 1 {
        let reasons: Vec<&str> = refusals.iter().map(|r| r.message.as_str()).collect();
        format!("{message} {}", reasons.join(" "))
    } else {
        message
    };
    let message = if message.trim().is_empty() {
        snippet(body)
    } else {
        bounded(message)
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
        refusals,
    }
}

/// The refused properties of a 422 body: its own `_embedded.details`, or each of
/// `_embedded.errors[]` (MultipleErrors).
fn refusals(body: &serde_json::Value) -> Vec<Refusal> {
    let one = |e: &serde_json::Value| {
        let message = e.get("message").and_then(serde_json::Value::as_str)?;
        let attribute = e
            .pointer("/_embedded/details/attribute")
            .and_then(serde_json::Value::as_str)
            .map(String::from);
        Some(Refusal {
            attribute,
            message: bounded(message.to_string()),
        })
    };
    match body
        .pointer("/_embedded/errors")
        .and_then(serde_json::Value::as_array)
    {
        Some(errors) => errors.iter().take(20).filter_map(one).collect(),
        None if body.pointer("/_embedded/details").is_some() => one(body).into_iter().collect(),
        None => Vec::new(),
    }
}

/// Longest message an [`ApiError`] carries from a response (bytes, before the `...` marker).
pub(crate) const MAX_MESSAGE: usize = 1000;

/// `text` cut to [`MAX_MESSAGE`] bytes at a character boundary, with `...` where it was cut.
pub(crate) fn bounded(mut text: String) -> String {
    if text.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("...");
    }
    text
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
    fn a_refused_property_and_the_reasons_of_multiple_errors_are_read() {
        let one = br#"{"_type":"Error","errorIdentifier":"urn:openproject-org:api:v3:errors:PropertyConstraintViolation","message":"Status is invalid because no valid transition exists from old to new status for the current user's roles.","_embedded":{"details":{"attribute":"status"}}}"#;
        let e = from_response("PATCH", "/api/v3/work_packages/7", 422, one);
        assert!(e.is_refusal());
        let r = e.refused("status").expect("the status was refused");
        assert!(r.message.contains("no valid transition"), "{r:?}");
        let many = br#"{"_type":"Error","errorIdentifier":"urn:openproject-org:api:v3:errors:MultipleErrors","message":"Multiple field constraints have been violated.","_embedded":{"errors":[{"_type":"Error","errorIdentifier":"urn:openproject-org:api:v3:errors:PropertyConstraintViolation","message":"Status is invalid.","_embedded":{"details":{"attribute":"status"}}},{"_type":"Error","errorIdentifier":"urn:openproject-org:api:v3:errors:PropertyConstraintViolation","message":"Assignee is invalid.","_embedded":{"details":{"attribute":"assignee"}}}]}}"#;
        let e = from_response("PATCH", "/api/v3/work_packages/7", 422, many);
        assert_eq!(e.refusals.len(), 2);
        assert!(e.refused("assignee").is_some());
        assert!(
            e.to_string()
                .contains("Status is invalid. Assignee is invalid."),
            "the real reasons are in the message: {e}"
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

/// `from_response` reads bodies from anything between us and the board (proxies, gateways): any
/// status and any bytes give a typed error that names the request, never a panic or a flood.
#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    /// What the kind must be, from the table in the module docs.
    fn expected_kind(status: u16, identifier: Option<&str>) -> ErrorKind {
        match status {
            409 => ErrorKind::Conflict,
            _ if identifier == Some("UpdateConflict") => ErrorKind::Conflict,
            404 => ErrorKind::NotFound,
            401 => ErrorKind::Unauthenticated,
            403 => ErrorKind::Forbidden,
            400 | 406 | 415 => ErrorKind::BadRequest,
            422 => ErrorKind::Invalid,
            429 => ErrorKind::RateLimited,
            500..=599 => ErrorKind::Server,
            _ => ErrorKind::Other,
        }
    }

    fn check(status: u16, body: &[u8]) {
        let e = from_response("GET", "/api/v3/work_packages/7", status, body);
        assert_eq!(e.status, Some(status));
        assert_eq!(e.kind, expected_kind(status, e.identifier.as_deref()));
        let shown = e.to_string();
        assert!(
            shown.starts_with(&format!("GET /api/v3/work_packages/7: {status} ")),
            "{shown}"
        );
        assert!(!e.message.trim().is_empty(), "empty message for {body:?}");
        // Cut messages end with "..."; the lossy snippet may turn each byte into 3.
        assert!(
            e.message.len() <= 3 * MAX_MESSAGE + 3,
            "{} bytes",
            e.message.len()
        );
        if let Some(id) = &e.identifier {
            assert!(!id.starts_with(URN_PREFIX));
        }
    }

    fn message() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<String>().prop_map(Value::from),
            "[ \\t\\n]*".prop_map(Value::from),
            (0..5000usize).prop_map(|n| Value::from("m".repeat(n))),
            proptest::collection::vec(
                prop_oneof![
                    any::<String>().prop_map(Value::from),
                    any::<i64>().prop_map(Value::from),
                    Just(json!({"nested": [1, {"x": null}]})),
                ],
                0..6
            )
            .prop_map(Value::Array),
            any::<f64>().prop_map(Value::from),
            Just(json!({"not": "a string"})),
        ]
    }

    fn identifier() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<String>().prop_map(Value::from),
            "(UpdateConflict|NotFound|InvalidQuery|MissingPermission|Unauthenticated)"
                .prop_map(|id| Value::from(format!("{URN_PREFIX}{id}"))),
            Just(Value::from("UpdateConflict")),
            Just(Value::from(URN_PREFIX)),
            any::<u64>().prop_map(Value::from),
        ]
    }

    proptest! {
        #![proptest_config(crate::fuzz_config(256))]

        #[test]
        fn arbitrary_bytes_with_any_status_give_a_named_typed_error(
            status in any::<u16>(),
            body in proptest::collection::vec(any::<u8>(), 0..600),
        ) {
            check(status, &body);
        }

        #[test]
        fn hal_error_bodies_of_any_shape_give_a_named_typed_error(
            status in prop_oneof![Just(400u16), Just(404), Just(409), Just(422), Just(429), 100u16..600],
            identifier in identifier(),
            message in message(),
            extra in any::<bool>(),
        ) {
            let mut body = json!({"_type": "Error", "errorIdentifier": identifier, "message": message});
            if extra {
                body["_embedded"] = json!({"details": {"attribute": "subject"}});
            }
            let bytes = serde_json::to_vec(&body).unwrap();
            check(status, &bytes);
            let e = from_response("PATCH", "/x", status, &bytes);
            if let Value::String(m) = &message
                && !m.trim().is_empty()
                && m.len() <= MAX_MESSAGE
            {
                prop_assert_eq!(&e.message, m, "a short string message is kept as sent");
            }
        }
    }

    #[test]
    fn a_huge_message_is_cut_at_a_character_boundary() {
        let body = json!({"errorIdentifier": "x", "message": "\u{e9}".repeat(1 << 20)});
        let e = from_response("GET", "/x", 500, &serde_json::to_vec(&body).unwrap());
        assert!(e.message.ends_with("..."));
        assert!(e.message.len() <= MAX_MESSAGE + 3);
    }

    #[test]
    fn an_empty_message_falls_back_to_the_body() {
        let e = from_response(
            "GET",
            "/x",
            404,
            br#"{"errorIdentifier":"NotFound","message":[]}"#,
        );
        assert!(e.message.contains("errorIdentifier"), "{}", e.message);
        assert_eq!(e.identifier.as_deref(), Some("NotFound"));
    }
}
