//! The HAL+JSON shapes the worker reads from OpenProject, parsed leniently (unknown fields ignored,
//! optional links tolerated) because OpenProject adds fields between releases.
//!
//! These are wire types only. The bundled board (`sim`) renders its JSON independently, so the two
//! cannot drift together into a private dialect: both are checked against the upstream spec instead.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};

/// A HAL link. Unset single links are rendered by OpenProject as `{"href": null}`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Link {
    #[serde(default)]
    pub href: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
}

impl Link {
    /// The numeric id at the end of the href (`/api/v3/statuses/7` -> 7).
    pub fn id(&self) -> Option<u64> {
        self.href.as_deref().and_then(id_from_href)
    }
}

/// The id at the end of an API path, if it is numeric.
pub fn id_from_href(href: &str) -> Option<u64> {
    href.trim_end_matches('/').rsplit('/').next()?.parse().ok()
}

/// `{format, raw, html}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Formattable {
    #[serde(default)]
    pub raw: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Collection<T> {
    pub total: u64,
    pub count: u64,
    #[serde(rename = "pageSize", default)]
    pub page_size: Option<u64>,
    #[serde(default)]
    pub offset: Option<u64>,
    #[serde(rename = "_embedded")]
    pub embedded: Embedded<T>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Embedded<T> {
    pub elements: Vec<T>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WorkPackage {
    pub id: u64,
    #[serde(rename = "lockVersion")]
    pub lock_version: u64,
    pub subject: String,
    #[serde(default)]
    pub description: Option<Formattable>,
    #[serde(rename = "createdAt", default)]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(rename = "updatedAt")]
    pub updated_at: DateTime<Utc>,
    #[serde(rename = "_links")]
    pub links: WorkPackageLinks,
    /// Everything else, notably `customFieldN` properties of string custom fields.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl WorkPackage {
    /// The value of a string custom field (`customField3`), `None` when unset or empty.
    pub fn custom_string(&self, key: &str) -> Option<&str> {
        match self.other.get(key) {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.as_str()),
            _ => None,
        }
    }

    pub fn description_raw(&self) -> &str {
        self.description
            .as_ref()
            .and_then(|d| d.raw.as_deref())
            .unwrap_or("")
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct WorkPackageLinks {
    pub status: Link,
    #[serde(rename = "type")]
    pub type_: Link,
    pub priority: Link,
    pub project: Link,
    #[serde(default)]
    pub assignee: Option<Link>,
    #[serde(default)]
    pub parent: Option<Link>,
    #[serde(default)]
    pub ancestors: Vec<Link>,
    #[serde(default)]
    pub children: Vec<Link>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Status {
    pub id: u64,
    pub name: String,
    #[serde(rename = "isClosed", default)]
    pub is_closed: bool,
    #[serde(rename = "isDefault", default)]
    pub is_default: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Type {
    pub id: u64,
    pub name: String,
    #[serde(rename = "isMilestone", default)]
    pub is_milestone: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Priority {
    pub id: u64,
    pub name: String,
    #[serde(default)]
    pub position: u64,
    #[serde(rename = "isDefault", default)]
    pub is_default: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub id: u64,
    pub name: String,
    #[serde(default)]
    pub login: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Project {
    pub id: u64,
    pub identifier: String,
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Relation {
    pub id: u64,
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(rename = "_links")]
    pub links: RelationLinks,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RelationLinks {
    pub from: Link,
    pub to: Link,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Activity {
    pub id: u64,
    #[serde(rename = "_type")]
    pub type_: String,
    #[serde(default)]
    pub comment: Option<Formattable>,
    #[serde(rename = "createdAt", default)]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(rename = "_links", default)]
    pub links: ActivityLinks,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ActivityLinks {
    #[serde(default)]
    pub user: Option<Link>,
}

impl Activity {
    pub fn comment_raw(&self) -> &str {
        self.comment
            .as_ref()
            .and_then(|c| c.raw.as_deref())
            .unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_from_hrefs() {
        assert_eq!(id_from_href("/api/v3/statuses/7"), Some(7));
        assert_eq!(
            id_from_href("https://op.example.com/sub/api/v3/work_packages/42/"),
            Some(42)
        );
        assert_eq!(id_from_href("/api/v3/users/me"), None);
        assert_eq!(Link::default().id(), None);
    }

    #[test]
    fn work_package_parses_leniently_with_custom_fields() {
        let wp: WorkPackage = serde_json::from_value(serde_json::json!({
            "_type": "WorkPackage", "id": 5, "lockVersion": 2, "subject": "s",
            "updatedAt": "2026-01-01T00:00:00Z", "someFutureField": {"x": 1},
            "customField3": "pod-1", "customField4": "",
            "_links": {
                "status": {"href": "/api/v3/statuses/1", "title": "New"},
                "type": {"href": "/api/v3/types/1"}, "priority": {"href": "/api/v3/priorities/8"},
                "project": {"href": "/api/v3/projects/1"}, "assignee": {"href": null},
                "ancestors": [{"href": "/api/v3/work_packages/1"}]
            }
        }))
        .unwrap();
        assert_eq!(wp.custom_string("customField3"), Some("pod-1"));
        assert_eq!(wp.custom_string("customField4"), None);
        assert_eq!(wp.links.assignee.as_ref().unwrap().id(), None);
        assert_eq!(wp.links.ancestors[0].id(), Some(1));
        assert_eq!(wp.description_raw(), "");
    }
}
