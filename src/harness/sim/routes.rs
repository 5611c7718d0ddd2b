//! The bundled board's HTTP surface (axum): authentication, request parsing and the error bodies.
//! All state changes go through [`Board`]'s methods, under one lock, so every write is atomic.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Map, Value, json};

use super::Shared;
use super::form;
use super::notify::notify_param;
use super::query::{self, Query as WpQuery};
use super::relations;
use super::render;
use super::state::{Board, NewWp, SimError, WpChange};

type Params = Query<HashMap<String, String>>;

/// The authenticated user of a request.
#[derive(Clone, Copy)]
struct Caller(u64);

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/v3", get(root))
        .route("/api/v3/users/{id}", get(user))
        .route("/api/v3/statuses", get(statuses))
        .route("/api/v3/statuses/{id}", get(status))
        .route("/api/v3/types", get(types))
        .route("/api/v3/types/{id}", get(type_))
        .route("/api/v3/priorities", get(priorities))
        .route("/api/v3/priorities/{id}", get(priority))
        .route("/api/v3/projects", get(projects))
        .route("/api/v3/projects/{id}", get(project))
        .route("/api/v3/projects/{id}/types", get(project_types))
        .route(
            "/api/v3/projects/{id}/work_packages",
            get(project_work_packages).post(create_in_project),
        )
        .route(
            "/api/v3/projects/{id}/work_packages/form",
            post(create_form_in_project),
        )
        .route(
            "/api/v3/work_packages",
            get(work_packages).post(create_work_package),
        )
        .route("/api/v3/work_packages/form", post(create_form))
        .route("/api/v3/work_packages/schemas/{key}", get(schema))
        .route(
            "/api/v3/work_packages/{id}",
            get(work_package).patch(update_work_package),
        )
        .route("/api/v3/work_packages/{id}/form", post(update_form))
        .route(
            "/api/v3/work_packages/{id}/activities",
            get(activities).post(add_comment),
        )
        .route(
            "/api/v3/work_packages/{id}/relations",
            get(wp_relations).post(create_relation),
        )
        .route(
            "/api/v3/activities/{id}",
            get(activity).patch(edit_activity),
        )
        .route("/api/v3/relations", get(relations))
        .route(
            "/api/v3/relations/{id}",
            get(relation).delete(delete_relation),
        )
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(shared.clone(), authenticate))
        .with_state(shared)
}

fn hal(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/hal+json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

fn ok(body: Value) -> Response {
    hal(StatusCode::OK, body)
}

impl IntoResponse for SimError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        hal(status, render::error(&self))
    }
}

type Result<T, E = SimError> = std::result::Result<T, E>;

/// A write refused before it reaches the board: an OpenProject error body, or the plain-text
/// answer OpenProject gives to a body without a Content-Type.
enum Refused {
    Error(SimError),
    MissingContentType,
}

impl From<SimError> for Refused {
    fn from(e: SimError) -> Refused {
        Refused::Error(e)
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::Error(e) => e.into_response(),
            Refused::MissingContentType => (
                StatusCode::NOT_ACCEPTABLE,
                [(header::CONTENT_TYPE, "text/plain")],
                "Missing content-type header",
            )
                .into_response(),
        }
    }
}

async fn authenticate(State(shared): State<Arc<Shared>>, mut req: Request, next: Next) -> Response {
    let user =
        token_of(req.headers()).and_then(|t| shared.board.lock().ok()?.tokens.get(&t).copied());
    match user {
        Some(u) => {
            req.extensions_mut().insert(Caller(u));
            next.run(req).await
        }
        None => {
            let e = SimError::new(
                401,
                "Unauthenticated",
                "You need to be authenticated to access this resource.",
            );
            let mut resp = e.into_response();
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Basic realm=\"OpenProject API\""),
            );
            resp
        }
    }
}

/// The token from `Authorization: Basic base64(apikey:TOKEN)` or `Authorization: Bearer TOKEN`.
fn token_of(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    if let Some(b) = value.strip_prefix("Basic ") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, token) = text.split_once(':')?;
        return (user == "apikey").then(|| token.to_string());
    }
    value.strip_prefix("Bearer ").map(|t| t.trim().to_string())
}

fn caller(req_ext: &axum::http::Extensions) -> u64 {
    req_ext.get::<Caller>().map(|c| c.0).unwrap_or(0)
}

fn id(raw: &str) -> Result<u64> {
    raw.parse().map_err(|_| SimError::not_found())
}

/// Locks the board. A poisoned lock means a handler panicked mid-write: answer 500, like a server bug.
fn board(shared: &Shared) -> Result<std::sync::MutexGuard<'_, Board>> {
    shared.board.lock().map_err(|_| {
        SimError::new(
            500,
            "InternalServerError",
            "An internal error has occurred.",
        )
    })
}

async fn not_found() -> Response {
    SimError::not_found().into_response()
}

async fn root() -> Response {
    ok(json!({
        "_type": "Root", "instanceName": "journeyman bundled board", "coreVersion": "bundled",
        "_links": {
            "self": { "href": "/api/v3" },
            "user": { "href": "/api/v3/users/me" },
            "workPackages": { "href": "/api/v3/work_packages" },
            "statuses": { "href": "/api/v3/statuses" },
            "types": { "href": "/api/v3/types" },
            "priorities": { "href": "/api/v3/priorities" },
        },
    }))
}

async fn user(
    State(s): State<Arc<Shared>>,
    Path(raw): Path<String>,
    req: Request,
) -> Result<Response> {
    let b = board(&s)?;
    let uid = if raw == "me" {
        caller(req.extensions())
    } else {
        id(&raw)?
    };
    let u = b.user(uid).ok_or_else(SimError::not_found)?;
    Ok(ok(render::user(u, b.created_at())))
}

/// Every item of one kind, as a collection at `path`.
fn all(s: &Shared, path: &str, items: impl Fn(&Board) -> Vec<Value>) -> Result<Response> {
    let b = board(s)?;
    Ok(ok(render::collection(path, items(&b))))
}

/// One item of one kind by its id; 404 if there is none.
fn one(s: &Shared, raw: &str, item: impl Fn(&Board, u64) -> Option<Value>) -> Result<Response> {
    let b = board(s)?;
    let id = id(raw)?;
    item(&b, id).map(ok).ok_or_else(SimError::not_found)
}

async fn statuses(State(s): State<Arc<Shared>>) -> Result<Response> {
    all(&s, "/api/v3/statuses", |b| {
        b.statuses.iter().map(render::status).collect()
    })
}

async fn status(State(s): State<Arc<Shared>>, Path(raw): Path<String>) -> Result<Response> {
    one(&s, &raw, |b, id| b.status(id).map(render::status))
}

/// Every type (each project has them all).
fn all_types(b: &Board) -> Vec<Value> {
    b.types
        .iter()
        .map(|t| render::type_(t, b.created_at()))
        .collect()
}

async fn types(State(s): State<Arc<Shared>>) -> Result<Response> {
    all(&s, "/api/v3/types", all_types)
}

/// The project `raw` (id or identifier) if `user` sees it, else 404.
fn visible_project<'b>(b: &'b Board, user: u64, raw: &str) -> Result<&'b super::state::ProjectDef> {
    b.project_by_key(raw)
        .filter(|p| b.project_visible(user, p.id))
        .ok_or_else(SimError::not_found)
}

async fn project_types(
    State(s): State<Arc<Shared>>,
    Path(raw): Path<String>,
    req: Request,
) -> Result<Response> {
    let b = board(&s)?;
    let p = visible_project(&b, caller(req.extensions()), &raw)?;
    let path = format!("/api/v3/projects/{}/types", p.id);
    Ok(ok(render::collection(&path, all_types(&b))))
}

async fn type_(State(s): State<Arc<Shared>>, Path(raw): Path<String>) -> Result<Response> {
    one(&s, &raw, |b, id| {
        b.type_(id).map(|t| render::type_(t, b.created_at()))
    })
}

async fn priorities(State(s): State<Arc<Shared>>) -> Result<Response> {
    all(&s, "/api/v3/priorities", |b| {
        b.priorities.iter().map(render::priority).collect()
    })
}

async fn priority(State(s): State<Arc<Shared>>, Path(raw): Path<String>) -> Result<Response> {
    one(&s, &raw, |b, id| b.priority(id).map(render::priority))
}

async fn projects(State(s): State<Arc<Shared>>, req: Request) -> Result<Response> {
    let b = board(&s)?;
    let user = caller(req.extensions());
    let elements: Vec<Value> = b
        .projects
        .iter()
        .filter(|p| b.project_visible(user, p.id))
        .map(|p| render::project(p, b.created_at()))
        .collect();
    let total = elements.len() as u64;
    Ok(ok(render::paged_collection(
        "Collection",
        "/api/v3/projects",
        "",
        elements,
        total,
        1,
        total.max(1),
    )))
}

async fn project(
    State(s): State<Arc<Shared>>,
    Path(raw): Path<String>,
    req: Request,
) -> Result<Response> {
    let b = board(&s)?;
    let p = visible_project(&b, caller(req.extensions()), &raw)?;
    Ok(ok(render::project(p, b.created_at())))
}

async fn schema(
    State(s): State<Arc<Shared>>,
    Path(key): Path<String>,
    req: Request,
) -> Result<Response> {
    let b = board(&s)?;
    let (p, t) = key.split_once('-').ok_or_else(SimError::not_found)?;
    let (p, t) = (id(p)?, id(t)?);
    if !b.project_visible(caller(req.extensions()), p) || b.type_(t).is_none() {
        return Err(SimError::not_found());
    }
    Ok(ok(render::schema(&b, p, t, None)))
}

/// The query string as given, minus paging (for the collection's links).
fn base_query(params: &HashMap<String, String>) -> String {
    let mut keys: Vec<&String> = params
        .keys()
        .filter(|k| *k != "offset" && *k != "pageSize")
        .collect();
    keys.sort();
    keys.iter()
        .map(|k| {
            format!(
                "{}={}",
                k,
                url::form_urlencoded::byte_serialize(params[*k].as_bytes()).collect::<String>()
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The page a list request asks for, `(size, offset)`, within the board's limits.
fn page(b: &Board, params: &HashMap<String, String>) -> Result<(u64, u64)> {
    query::page(
        params.get("pageSize").map(String::as_str),
        params.get("offset").map(String::as_str),
        b.behaviour.default_page_size,
        b.behaviour.max_page_size,
    )
}

/// One page of `hits` as a collection of type `type_` at `self_path`, with links that keep the
/// request's other parameters.
fn paged_body<T>(
    type_: &str,
    self_path: &str,
    params: &HashMap<String, String>,
    hits: &[T],
    (size, offset): (u64, u64),
    show: impl Fn(&T) -> Value,
) -> Value {
    let elements = hits
        .iter()
        .skip(query::first_index(offset, size))
        .take(size as usize)
        .map(show)
        .collect();
    render::paged_collection(
        type_,
        self_path,
        &base_query(params),
        elements,
        hits.len() as u64,
        offset,
        size,
    )
}

/// The links a work package collection adds to a plain one
/// (`lib/api/v3/work_packages/work_package_collection_representer.rb`).
fn work_package_collection_links(
    body: &mut Value,
    hits: &[&super::state::Wp],
    project: Option<u64>,
) {
    let links = &mut body["_links"];
    links["editWorkPackage"] = json!({ "href": "/api/v3/work_packages/{work_package_id}/form", "method": "post", "templated": true });
    let (form, create) = match project {
        Some(p) => (
            format!("/api/v3/projects/{p}/work_packages/form"),
            format!("/api/v3/projects/{p}/work_packages"),
        ),
        None => (
            "/api/v3/work_packages/form".into(),
            "/api/v3/work_packages".into(),
        ),
    };
    links["createWorkPackage"] = json!({ "href": form, "method": "post" });
    links["createWorkPackageImmediate"] = json!({ "href": create, "method": "post" });
    if !hits.is_empty() {
        let mut pairs: Vec<String> = hits
            .iter()
            .map(|w| format!("{}-{}", w.project, w.type_id))
            .collect();
        pairs.sort();
        pairs.dedup();
        let filters = url::form_urlencoded::byte_serialize(
            json!([{ "id": { "operator": "=", "values": pairs } }])
                .to_string()
                .as_bytes(),
        )
        .collect::<String>();
        links["schemas"] =
            json!({ "href": format!("/api/v3/work_packages/schemas?filters={filters}") });
    }
}

fn list(
    s: &Shared,
    user: u64,
    project: Option<u64>,
    params: &HashMap<String, String>,
    self_path: &str,
) -> Result<Response> {
    let b = board(s)?;
    let filters = query::parse_filters(params.get("filters").map(String::as_str))?;
    let q = WpQuery::compile_in(&b, &filters, user, project)?;
    let sort = query::parse_sort(params.get("sortBy").map(String::as_str))?;
    let page = page(&b, params)?;
    let mut hits: Vec<_> = b
        .wps
        .values()
        .filter(|w| {
            project.is_none_or(|p| w.project == p)
                && b.project_visible(user, w.project)
                && q.matches(&b, w)
        })
        .collect();
    query::sort(&b, &mut hits, &sort);
    let mut body = paged_body(
        "WorkPackageCollection",
        self_path,
        params,
        &hits,
        page,
        |w| render::work_package(&b, w, user, false),
    );
    work_package_collection_links(&mut body, &hits, project);
    Ok(ok(body))
}

async fn work_packages(
    State(s): State<Arc<Shared>>,
    Query(params): Params,
    req: Request,
) -> Result<Response> {
    list(
        &s,
        caller(req.extensions()),
        None,
        &params,
        "/api/v3/work_packages",
    )
}

async fn project_work_packages(
    State(s): State<Arc<Shared>>,
    Path(raw): Path<String>,
    Query(params): Params,
    req: Request,
) -> Result<Response> {
    let user = caller(req.extensions());
    let pid = visible_project(&*board(&s)?, user, &raw)?.id;
    list(
        &s,
        user,
        Some(pid),
        &params,
        &format!("/api/v3/projects/{pid}/work_packages"),
    )
}

async fn work_package(
    State(s): State<Arc<Shared>>,
    Path(raw): Path<String>,
    req: Request,
) -> Result<Response> {
    let b = board(&s)?;
    let user = caller(req.extensions());
    let wp = b.visible_wp(user, id(&raw)?)?;
    Ok(ok(render::work_package(&b, wp, user, true)))
}

/// The caller of a write and its body (at most [`super::MAX_BODY`] bytes).
async fn caller_and_body(req: Request) -> Result<(u64, Bytes)> {
    let user = caller(req.extensions());
    let body = axum::body::to_bytes(req.into_body(), super::MAX_BODY)
        .await
        .map_err(|_| SimError::bad_body("The request body is too large."))?;
    Ok((user, body))
}

/// A write to one work package (a PATCH, a comment, a relation), read in OpenProject's order: the
/// body (at most [`super::MAX_BODY`] bytes), the id in the path, then the Content-Type and the JSON
/// object.
struct WpWrite {
    user: u64,
    wp: u64,
    body: Map<String, Value>,
    /// The query string (for `notify`).
    params: HashMap<String, String>,
}

impl FromRequest<Arc<Shared>> for WpWrite {
    type Rejection = Response;

    async fn from_request(req: Request, state: &Arc<Shared>) -> Result<WpWrite, Response> {
        let (mut parts, body) = req.into_parts();
        let Path(raw) = Path::<String>::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let headers = parts.headers.clone();
        let params = query_params(parts.uri.query());
        let read = async {
            let (user, bytes) = caller_and_body(Request::from_parts(parts, body)).await?;
            let wp = id(&raw)?;
            let body = json_object(&headers, &bytes)?;
            Ok::<_, Refused>(WpWrite {
                user,
                wp,
                body,
                params,
            })
        };
        read.await.map_err(IntoResponse::into_response)
    }
}

/// A query string as a map (the last value of a repeated key wins).
fn query_params(query: Option<&str>) -> HashMap<String, String> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// Checks Content-Type and parses a single JSON object, as OpenProject does.
fn json_object(headers: &HeaderMap, body: &Bytes) -> Result<Map<String, Value>, Refused> {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return Err(Refused::MissingContentType);
    };
    let mime = ct.split(';').next().unwrap_or("").trim();
    if mime != "application/json" && mime != "application/hal+json" {
        return Err(SimError::new(
            415,
            "TypeNotSupported",
            format!("Expected CONTENT-TYPE to be (application/json) but got ({mime})."),
        )
        .into());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(SimError::bad_body("The request body was not a single JSON object.").into()),
    }
}

/// The `_links` object of a body (empty if there is none).
fn links_of(body: &Map<String, Value>) -> &Map<String, Value> {
    static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);
    body.get("_links")
        .and_then(Value::as_object)
        .unwrap_or(&EMPTY)
}

/// 404 unless the work package exists and `user` sees it.
fn require_wp(b: &Board, user: u64, wp: u64) -> Result<()> {
    b.visible_wp(user, wp).map(|_| ())
}

/// The id of a link `{"href": "/api/v3/<kind>/<id>"}`; `Ok(None)` for `{"href": null}`.
fn link_id(links: &Map<String, Value>, name: &str, kind: &str) -> Result<Option<Option<u64>>> {
    let Some(link) = links.get(name) else {
        return Ok(None);
    };
    let mismatch = || SimError {
        attribute: Some(name.to_string()),
        ..SimError::new(
            422,
            "ResourceTypeMismatch",
            format!("Expected a link to a resource of type {kind} for {name}."),
        )
    };
    match link.get("href") {
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(href)) => {
            let prefix = format!("/api/v3/{kind}/");
            let rest = href
                .find(&prefix)
                .map(|i| &href[i + prefix.len()..])
                .ok_or_else(mismatch)?;
            rest.parse::<u64>()
                .map(|id| Some(Some(id)))
                .map_err(|_| mismatch())
        }
        _ => Err(mismatch()),
    }
}

/// The `customFieldN` properties of a body, parsed by each field's format (`custom_fields.rs`).
/// A key naming no field is not a property of OpenProject's representer: ignored, like any unknown
/// property.
fn custom_fields(b: &Board, body: &Map<String, Value>) -> Result<BTreeMap<u64, Option<String>>> {
    let mut out = BTreeMap::new();
    for (key, value) in body {
        let Some(n) = key.strip_prefix("customField") else {
            continue;
        };
        let Some(cf) = n
            .parse::<u64>()
            .ok()
            .and_then(|id| b.custom_fields.iter().find(|c| c.id == id))
        else {
            continue;
        };
        let v = cf.parse(value).map_err(|expected| SimError {
            attribute: Some(key.clone()),
            ..SimError::new(
                422,
                "PropertyFormatError",
                format!("{key} must be {expected}."),
            )
        })?;
        out.insert(cf.id, v);
    }
    Ok(out)
}

fn description(body: &Map<String, Value>) -> Result<Option<String>> {
    match body.get("description") {
        None => Ok(None),
        Some(Value::Object(d)) => match d.get("raw") {
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Null) | None => Ok(Some(String::new())),
            _ => Err(SimError::violation(
                "description",
                "Description is invalid.",
            )),
        },
        _ => Err(SimError::violation(
            "description",
            "Description is invalid.",
        )),
    }
}

fn parse_change(b: &Board, body: &Map<String, Value>) -> Result<(Option<u64>, WpChange)> {
    for ro in [
        "id",
        "createdAt",
        "updatedAt",
        "derivedStartDate",
        "derivedDueDate",
        "derivedEstimatedTime",
        "spentTime",
    ] {
        if body.contains_key(ro) {
            return Err(SimError::read_only(ro));
        }
    }
    let lock_version = body
        .get("lockVersion")
        .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()));
    let links = links_of(body);
    let subject = match body.get("subject") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(SimError::violation("subject", "Subject is invalid.")),
    };
    let change = WpChange {
        status: link_id(links, "status", "statuses")?
            .map(|s| s.ok_or_else(|| SimError::violation("status", "Status can't be blank.")))
            .transpose()?,
        assignee: link_id(links, "assignee", "users")?,
        priority: link_id(links, "priority", "priorities")?
            .map(|p| p.ok_or_else(|| SimError::violation("priority", "Priority can't be blank.")))
            .transpose()?,
        type_id: link_id(links, "type", "types")?
            .map(|t| t.ok_or_else(|| SimError::violation("type", "Type can't be blank.")))
            .transpose()?,
        parent: link_id(links, "parent", "work_packages")?,
        subject,
        description: description(body)?,
        custom: custom_fields(b, body)?,
    };
    Ok((lock_version, change))
}

async fn update_work_package(State(s): State<Arc<Shared>>, w: WpWrite) -> Result<Response> {
    let mut b = board(&s)?;
    require_wp(&b, w.user, w.wp)?;
    let (lock_version, change) = parse_change(&b, &w.body)?;
    b.update_notifying(w.user, w.wp, lock_version, change, notify_param(&w.params))?;
    Ok(ok(render::work_package(&b, &b.wps[&w.wp], w.user, true)))
}

/// `POST /api/v3/work_packages/{id}/form`: what the PATCH would do, without doing it (`form.rs`).
async fn update_form(State(s): State<Arc<Shared>>, w: WpWrite) -> Result<Response> {
    let b = board(&s)?;
    require_wp(&b, w.user, w.wp)?;
    let (lock_version, change) = parse_change(&b, &w.body)?;
    Ok(ok(form::update_form(
        &b,
        w.user,
        w.wp,
        lock_version,
        &change,
    )?))
}

/// What to create, read from a POST body (`project` from the path, else from `_links.project`).
fn parse_new(b: &Board, project: Option<u64>, map: &Map<String, Value>) -> Result<NewWp> {
    let links = links_of(map);
    let project = match project {
        Some(p) => p,
        None => link_id(links, "project", "projects")?
            .flatten()
            .ok_or_else(|| SimError::violation("project", "Project can't be blank."))?,
    };
    let subject = map
        .get("subject")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let custom = custom_fields(b, map)?
        .into_iter()
        .filter_map(|(k, v)| Some((k, v?)))
        .collect();
    Ok(NewWp {
        project,
        type_id: link_id(links, "type", "types")?.flatten(),
        status: link_id(links, "status", "statuses")?.flatten(),
        priority: link_id(links, "priority", "priorities")?.flatten(),
        subject,
        description: description(map)?.unwrap_or_default(),
        parent: link_id(links, "parent", "work_packages")?.flatten(),
        assignee: link_id(links, "assignee", "users")?.flatten(),
        custom,
    })
}

fn create(
    s: &Shared,
    user: u64,
    project: Option<u64>,
    headers: &HeaderMap,
    body: &Bytes,
    notify: bool,
) -> Result<Response, Refused> {
    let map = json_object(headers, body)?;
    let mut b = board(s)?;
    let new = parse_new(&b, project, &map)?;
    let id = b.create_notifying(user, new, notify)?;
    Ok(hal(
        StatusCode::CREATED,
        render::work_package(&b, &b.wps[&id], user, true),
    ))
}

/// The create forms: `POST /api/v3/projects/{id}/work_packages/form` (`project` given) and
/// `POST /api/v3/work_packages/form` (`_links.project` in the body).
fn create_form_for(
    s: &Shared,
    user: u64,
    project: Option<u64>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, Refused> {
    let map = json_object(headers, body)?;
    let b = board(s)?;
    let new = parse_new(&b, project, &map)?;
    Ok(ok(form::create_form(&b, user, &new, project.is_some())?))
}

async fn create_form_in_project(
    State(s): State<Arc<Shared>>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    req: Request,
) -> Result<Response, Refused> {
    let (user, body) = caller_and_body(req).await?;
    let pid = visible_project(&*board(&s)?, user, &raw)
        .map_err(|_| SimError::new(404, "NotFound", "The specified project does not exist."))?
        .id;
    create_form_for(&s, user, Some(pid), &headers, &body)
}

async fn create_form(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    req: Request,
) -> Result<Response, Refused> {
    let (user, body) = caller_and_body(req).await?;
    create_form_for(&s, user, None, &headers, &body)
}

async fn create_in_project(
    State(s): State<Arc<Shared>>,
    Path(raw): Path<String>,
    Query(params): Params,
    headers: HeaderMap,
    req: Request,
) -> Result<Response, Refused> {
    let (user, body) = caller_and_body(req).await?;
    let pid = visible_project(&*board(&s)?, user, &raw)
        .map_err(|_| SimError::new(404, "NotFound", "The specified project does not exist."))?
        .id;
    create(&s, user, Some(pid), &headers, &body, notify_param(&params))
}

async fn create_work_package(
    State(s): State<Arc<Shared>>,
    Query(params): Params,
    headers: HeaderMap,
    req: Request,
) -> Result<Response, Refused> {
    let (user, body) = caller_and_body(req).await?;
    create(&s, user, None, &headers, &body, notify_param(&params))
}

/// A collection under one work package (`/api/v3/work_packages/{id}/{what}`); 404 if the work
/// package does not exist.
fn wp_collection(
    s: &Shared,
    user: u64,
    raw: &str,
    what: &str,
    elements: impl Fn(&Board, u64) -> Vec<Value>,
) -> Result<Response> {
    let b = board(s)?;
    let wp = id(raw)?;
    require_wp(&b, user, wp)?;
    Ok(ok(render::collection(
        &format!("/api/v3/work_packages/{wp}/{what}"),
        elements(&b, wp),
    )))
}

/// `GET /api/v3/work_packages/{id}/activities`: unpaginated, as OpenProject's
/// `ActivityCollectionRepresenter` (`lib/api/v3/activities/activity_collection_representer.rb`,
/// an `UnpaginatedCollection`): `pageSize` does not apply.
async fn activities(
    State(s): State<Arc<Shared>>,
    Path(raw): Path<String>,
    req: Request,
) -> Result<Response> {
    wp_collection(&s, caller(req.extensions()), &raw, "activities", |b, wp| {
        b.activities
            .iter()
            .filter(|a| a.wp == wp)
            .map(|a| render::activity(b, a))
            .collect()
    })
}

async fn add_comment(State(s): State<Arc<Shared>>, w: WpWrite) -> Result<Response> {
    let text = w
        .body
        .get("comment")
        .and_then(|c| c.get("raw"))
        .and_then(Value::as_str)
        .ok_or_else(|| SimError::violation("comment", "Comment can't be blank."))?;
    let mut b = board(&s)?;
    let act = b.comment_notifying(w.user, w.wp, text, notify_param(&w.params))?;
    let a = b
        .activities
        .iter()
        .find(|a| a.id == act)
        .ok_or_else(SimError::not_found)?;
    Ok(hal(StatusCode::CREATED, render::activity(&b, a)))
}

/// `GET /api/v3/activities/{id}`: 404 unless its work package is visible.
async fn activity(
    State(s): State<Arc<Shared>>,
    Path(raw): Path<String>,
    req: Request,
) -> Result<Response> {
    let user = caller(req.extensions());
    let b = board(&s)?;
    let a = b.visible_activity(user, id(&raw)?)?;
    Ok(ok(render::activity(&b, a)))
}

/// `PATCH /api/v3/activities/{id}`. OpenProject's source declares the body as
/// `requires :comment, type: String` (`lib/api/v3/activities/activities_api.rb`), and its request
/// spec sends `{"comment": "..."}`; the published docs show `{"comment": {"raw": "..."}}`. Both are
/// taken; anything else is the 400 a missing parameter gets.
async fn edit_activity(State(s): State<Arc<Shared>>, w: WpWrite) -> Result<Response> {
    let text = match w.body.get("comment") {
        Some(Value::String(t)) => t.clone(),
        Some(c) if c.get("raw").and_then(Value::as_str).is_some() => {
            c["raw"].as_str().unwrap_or_default().to_string()
        }
        _ => {
            return Err(SimError::new(
                400,
                "InvalidRequestBody",
                "comment is missing, comment is invalid",
            ));
        }
    };
    let mut b = board(&s)?;
    b.edit_comment(w.user, w.wp, &text)?;
    let a = b.visible_activity(w.user, w.wp)?;
    Ok(ok(render::activity(&b, a)))
}

async fn wp_relations(
    State(s): State<Arc<Shared>>,
    Path(raw): Path<String>,
    req: Request,
) -> Result<Response> {
    let user = caller(req.extensions());
    wp_collection(&s, user, &raw, "relations", |b, wp| {
        b.relations
            .values()
            .filter(|r| (r.from == wp || r.to == wp) && b.relation_visible(user, r))
            .map(|r| render::relation(b, r))
            .collect()
    })
}

async fn create_relation(State(s): State<Arc<Shared>>, w: WpWrite) -> Result<Response> {
    let mut b = board(&s)?;
    require_wp(&b, w.user, w.wp)?;
    let map = &w.body;
    let type_ = map
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("relates")
        .to_string();
    let links = links_of(map);
    let to = link_id(links, "to", "work_packages")?
        .flatten()
        .ok_or_else(|| SimError::violation("to", "Related work package can't be blank."))?;
    let desc = map
        .get("description")
        .and_then(Value::as_str)
        .map(String::from);
    let lag = map.get("lag").and_then(Value::as_i64);
    let rid = b.relate(w.user, w.wp, to, &type_, desc, lag)?;
    Ok(hal(
        StatusCode::CREATED,
        render::relation(&b, &b.relations[&rid]),
    ))
}

/// `GET /api/v3/relations`: filtered, sorted, visible to the caller, paginated (`relations.rs`).
async fn relations(
    State(s): State<Arc<Shared>>,
    Query(params): Params,
    req: Request,
) -> Result<Response> {
    let b = board(&s)?;
    let user = caller(req.extensions());
    let hits = relations::index(
        &b,
        user,
        params.get("filters").map(String::as_str),
        params.get("sortBy").map(String::as_str),
    )?;
    let page = page(&b, &params).map_err(|e| SimError {
        message_as_list: true,
        ..e
    })?;
    Ok(ok(paged_body(
        "Collection",
        "/api/v3/relations",
        &params,
        &hits,
        page,
        |r| render::relation(&b, r),
    )))
}

async fn relation(
    State(s): State<Arc<Shared>>,
    Path(raw): Path<String>,
    req: Request,
) -> Result<Response> {
    let b = board(&s)?;
    let user = caller(req.extensions());
    let r = b
        .relations
        .get(&id(&raw)?)
        .filter(|r| b.relation_visible(user, r))
        .ok_or_else(SimError::not_found)?;
    Ok(ok(render::relation(&b, r)))
}

/// `DELETE /api/v3/relations/{id}`: 204, and neither end is touched.
async fn delete_relation(
    State(s): State<Arc<Shared>>,
    Path(raw): Path<String>,
    req: Request,
) -> Result<Response> {
    let mut b = board(&s)?;
    b.unrelate(caller(req.extensions()), id(&raw)?)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
