//! What the worker asks the board, one method per endpoint: users, statuses, types, priorities,
//! projects, work packages (read, list, update, create), activities, relations and schemas.
//!
//! Each method names its path and its answer's wire type; sending, retrying and decoding are the
//! client's. Lists are read page by page until a short page, never by trusting `total` alone.

use std::future::Future;

use reqwest::Method;
use serde_json::{Map, Value, json};

use super::client::Client;
use super::error::ApiError;
use super::hal::{self, Collection};
use super::options::Notify;
use super::query::{Filter, WorkPackageQuery, list_params};
use super::write::{NewWorkPackage, WorkPackagePatch};

impl Client {
    /// `notify=true|false` for a write of this kind, by the client's policy (OpenProject notifies
    /// every watcher of every write without it).
    fn notify_param(&self, kind: Notify) -> (&'static str, String) {
        ("notify", self.notify_policy().notify(kind).to_string())
    }

    /// `GET /api/v3/users/me`: the agent user behind the token.
    pub async fn me(&self) -> Result<hal::User, ApiError> {
        self.get("api/v3/users/me", &[]).await
    }

    pub async fn statuses(&self) -> Result<Vec<hal::Status>, ApiError> {
        self.elements("api/v3/statuses").await
    }

    pub async fn types(&self) -> Result<Vec<hal::Type>, ApiError> {
        self.elements("api/v3/types").await
    }

    pub async fn priorities(&self) -> Result<Vec<hal::Priority>, ApiError> {
        self.elements("api/v3/priorities").await
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

    /// One page of a work package list (`offset` is the 1-based page number).
    pub async fn work_packages_page(
        &self,
        q: &WorkPackageQuery,
        offset: u64,
    ) -> Result<Collection<hal::WorkPackage>, ApiError> {
        let page_size = q.page_size.unwrap_or(self.page_size());
        self.get(&q.path(), &q.params(page_size, offset)).await
    }

    /// All work packages matching the query, reading every page.
    pub async fn work_packages(
        &self,
        q: &WorkPackageQuery,
    ) -> Result<Vec<hal::WorkPackage>, ApiError> {
        every_page(|offset| self.work_packages_page(q, offset)).await
    }

    /// `PATCH /api/v3/work_packages/{id}` with the patch's `lockVersion`. A stale or missing
    /// `lockVersion` gives an error of kind [`ErrorKind::Conflict`](super::ErrorKind::Conflict).
    pub async fn update_work_package(
        &self,
        id: u64,
        patch: &WorkPackagePatch,
    ) -> Result<hal::WorkPackage, ApiError> {
        let url = self.url(
            &format!("api/v3/work_packages/{id}"),
            &[self.notify_param(patch.notify)],
        );
        self.json(Method::PATCH, url, Some(&patch.to_json())).await
    }

    /// `POST /api/v3/projects/{id}/work_packages`.
    pub async fn create_work_package(
        &self,
        new: &NewWorkPackage,
    ) -> Result<hal::WorkPackage, ApiError> {
        let url = self.url(
            &format!("api/v3/projects/{}/work_packages", new.project),
            &[self.notify_param(new.notify)],
        );
        self.json(Method::POST, url, Some(&new.to_json())).await
    }

    /// `POST /api/v3/work_packages/{id}/activities`: a comment (does not bump `lockVersion`).
    pub async fn add_comment(
        &self,
        id: u64,
        markdown: &str,
        notify: Notify,
    ) -> Result<hal::Activity, ApiError> {
        let url = self.url(
            &format!("api/v3/work_packages/{id}/activities"),
            &[self.notify_param(notify)],
        );
        self.json(
            Method::POST,
            url,
            Some(&json!({ "comment": { "raw": markdown } })),
        )
        .await
    }

    /// `PATCH /api/v3/activities/{id}`: edits a comment this user wrote, in place. The body is
    /// `{"comment": "<markdown>"}`, the shape OpenProject's source declares (`requires :comment,
    /// type: String` in `lib/api/v3/activities/activities_api.rb`) and its request spec sends. Edits
    /// notify nobody and touch neither the work package's `lockVersion` nor its `updatedAt`.
    pub async fn edit_comment(
        &self,
        activity: u64,
        markdown: &str,
    ) -> Result<hal::Activity, ApiError> {
        let url = self.url(&format!("api/v3/activities/{activity}"), &[]);
        self.json(Method::PATCH, url, Some(&json!({ "comment": markdown })))
            .await
    }

    /// `GET /api/v3/work_packages/{id}/activities`.
    pub async fn activities(&self, id: u64) -> Result<Vec<hal::Activity>, ApiError> {
        self.elements(&format!("api/v3/work_packages/{id}/activities"))
            .await
    }

    /// `GET /api/v3/relations` with filters, every page.
    pub async fn relations(&self, filters: &[Filter]) -> Result<Vec<hal::Relation>, ApiError> {
        every_page(|offset| async move {
            let query = list_params(filters, &[], self.page_size(), offset);
            self.get("api/v3/relations", &query).await
        })
        .await
    }

    /// One page of `GET /api/v3/relations` with filters and sorting (the change probe reads the
    /// newest `blocks` relation and the total: relations never touch work packages).
    pub async fn relations_page(
        &self,
        filters: &[Filter],
        sort_by: &[(String, String)],
        page_size: u32,
        offset: u64,
    ) -> Result<Collection<hal::Relation>, ApiError> {
        let query = list_params(filters, sort_by, page_size, offset);
        self.get("api/v3/relations", &query).await
    }

    /// `GET /api/v3/work_packages/{id}/relations`: the relations of one work package. The snapshot
    /// never reads relations per work package; the benchmark's naive strategy does.
    pub async fn work_package_relations(&self, id: u64) -> Result<Vec<hal::Relation>, ApiError> {
        self.elements(&format!("api/v3/work_packages/{id}/relations"))
            .await
    }

    /// All `blocks` relations visible to the user (stored canonically: `from` blocks `to`).
    pub async fn blocks_relations(&self) -> Result<Vec<hal::Relation>, ApiError> {
        self.relations(&[Filter::new("type", "=", ["blocks"])])
            .await
    }

    /// The statuses this user may set on a new work package of `type_id` in `project` (the create
    /// form's `_embedded.schema.status._links.allowedValues`: the role's workflow from the type's
    /// default status).
    pub async fn allowed_statuses_for_new(
        &self,
        project: u64,
        type_id: u64,
    ) -> Result<Vec<u64>, ApiError> {
        let url = self.url(
            &format!("api/v3/projects/{project}/work_packages/form"),
            &[],
        );
        let body = json!({ "_links": { "type": { "href": format!("/api/v3/types/{type_id}") } } });
        let form: Value = self.json(Method::POST, url, Some(&body)).await?;
        Ok(allowed_statuses(&form))
    }

    /// The statuses this user may set on work package `id` from its current status (its update
    /// form's schema; the form checks `lockVersion` like the update itself).
    pub async fn allowed_statuses(&self, id: u64, lock_version: u64) -> Result<Vec<u64>, ApiError> {
        let url = self.url(&format!("api/v3/work_packages/{id}/form"), &[]);
        let body = json!({ "lockVersion": lock_version });
        let form: Value = self.json(Method::POST, url, Some(&body)).await?;
        Ok(allowed_statuses(&form))
    }

    /// Resolves a custom field's name (e.g. "Agent pod") to its property key (`customField3`) from the
    /// work package schema of a project and type. `None` if the field is not active there.
    pub async fn custom_field_key(
        &self,
        project: u64,
        type_id: u64,
        name: &str,
    ) -> Result<Option<String>, ApiError> {
        Ok(self
            .custom_field(project, type_id, name)
            .await?
            .map(|(key, _)| key))
    }

    /// A custom field of the work package schema of a project and type: its property key and its
    /// schema `type` (`String` for a string field; a Long text field is `Formattable`, an object
    /// on the wire: API-NOTES section 13). `None` if the field is not active there.
    pub async fn custom_field(
        &self,
        project: u64,
        type_id: u64,
        name: &str,
    ) -> Result<Option<(String, String)>, ApiError> {
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
            .map(|(key, field)| {
                let ty = field.get("type").and_then(Value::as_str).unwrap_or("");
                (key.clone(), ty.to_string())
            }))
    }
}

/// The ids of a form's `_embedded.schema.status._links.allowedValues`.
fn allowed_statuses(form: &Value) -> Vec<u64> {
    form.pointer("/_embedded/schema/status/_links/allowedValues")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.get("href").and_then(Value::as_str))
        .filter_map(hal::id_from_href)
        .collect()
}

/// Every element of a list, reading `page(offset)` for offsets 1, 2, ... Stops on a short or empty
/// page, or once `total` is reached; the board may change between pages, so never loops on `total`
/// alone.
async fn every_page<T, F, Fut>(mut page: F) -> Result<Vec<T>, ApiError>
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = Result<Collection<T>, ApiError>>,
{
    let mut all = Vec::new();
    let mut offset = 1;
    loop {
        let page = page(offset).await?;
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
