//! The bodies of the writes the worker makes: a PATCH of a work package (a claim, a release, a
//! status change) and a new work package (a Spike).
//!
//! Pure: each renders its JSON body. A PATCH always carries the `lockVersion` it was decided on;
//! nothing here may drop or refresh it (DESIGN section 1).

use serde_json::{Map, Value, json};

use super::options::Notify;

/// A PATCH of a work package; always carries the `lockVersion` it was decided on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkPackagePatch {
    pub lock_version: u64,
    pub status: Option<u64>,
    /// `Some(None)` unassigns.
    pub assignee: Option<Option<u64>>,
    /// `customFieldN` -> value (`None` clears it).
    pub custom_fields: Vec<(String, Option<String>)>,
    /// Whether watchers should hear of it (most PATCHes are routine).
    pub notify: Notify,
}

impl WorkPackagePatch {
    pub fn to_json(&self) -> Value {
        let mut links = Map::new();
        if let Some(status) = self.status {
            links.insert("status".into(), href(format!("/api/v3/statuses/{status}")));
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
    pub notify: Notify,
}

impl NewWorkPackage {
    /// The body of `POST /api/v3/projects/{project}/work_packages`.
    pub fn to_json(&self) -> Value {
        let mut links = Map::new();
        links.insert(
            "type".into(),
            href(format!("/api/v3/types/{}", self.type_id)),
        );
        let optional = [
            ("parent", "work_packages", self.parent),
            ("status", "statuses", self.status),
            ("priority", "priorities", self.priority),
        ];
        for (link, collection, id) in optional {
            if let Some(id) = id {
                links.insert(link.into(), href(format!("/api/v3/{collection}/{id}")));
            }
        }
        json!({
            "subject": self.subject,
            "description": { "format": "markdown", "raw": self.description },
            "_links": links,
        })
    }
}

/// A HAL link: `{"href": path}`.
fn href(path: String) -> Value {
    json!({ "href": path })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_patch_is_one_body_with_lock_version_links_and_pod_field() {
        let patch = WorkPackagePatch {
            lock_version: 7,
            status: Some(7),
            assignee: Some(Some(3)),
            custom_fields: vec![("customField1".into(), Some("pod-2".into()))],
            notify: Notify::Routine,
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
    fn new_work_package_links_only_what_is_set() {
        let spike = NewWorkPackage {
            project: 2,
            type_id: 5,
            subject: "Spike: #42".into(),
            description: "evidence".into(),
            parent: Some(42),
            status: None,
            priority: Some(8),
            notify: Notify::Human,
        };
        assert_eq!(
            spike.to_json(),
            json!({
                "subject": "Spike: #42",
                "description": { "format": "markdown", "raw": "evidence" },
                "_links": {
                    "type": {"href": "/api/v3/types/5"},
                    "parent": {"href": "/api/v3/work_packages/42"},
                    "priority": {"href": "/api/v3/priorities/8"}
                }
            })
        );
    }
}
