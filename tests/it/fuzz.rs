//! Fuzz tests of the parsers that read untrusted input, through the public API (docs/fuzzing.md):
//! HAL+JSON from the board, the conversion of work packages for the decision, the bundled board's
//! query parameters (over HTTP) and seed files, and the agent's output. Each property says what
//! must hold for ANY input: no panic, bounded time, and either a sane value or a clear error.
//!
//! Parsers private to their module are fuzzed next to their code, in a `mod fuzz` there:
//! `openproject/error.rs` (error bodies), `sim/query.rs` (filters, sorting, paging as functions),
//! `agent/prompt.rs` (ticket text into the prompt).
//!
//! Case counts are sized for CI (the whole suite in well under 30 s); `PROPTEST_CASES=N` runs more.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use journeyman::agent::result::{self, ParseError};
use journeyman::agent::{AgentFailure, Exit};
use journeyman::harness::sim::seed::SeedFile;
use journeyman::harness::sim::{self, Board, BoardOptions};
use journeyman::openproject::hal::{self, Collection, WorkPackage};
use journeyman::snapshot;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Map, Value, json};

/// `cases` by default; `PROPTEST_CASES=N` overrides it (proptest's own variable).
fn config(cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(cases);
    Config {
        cases,
        ..Config::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Generators.

/// Keys the parsers look for, so that random documents reach past the first missing field.
const KEYS: &[&str] = &[
    "_type",
    "id",
    "lockVersion",
    "subject",
    "description",
    "raw",
    "createdAt",
    "updatedAt",
    "_links",
    "status",
    "type",
    "priority",
    "project",
    "assignee",
    "parent",
    "ancestors",
    "children",
    "href",
    "title",
    "_embedded",
    "elements",
    "total",
    "count",
    "pageSize",
    "offset",
    "from",
    "to",
    "comment",
    "user",
    "customField3",
    "name",
    "isClosed",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(KEYS).prop_map(String::from),
        1 => any::<String>(),
    ]
}

/// Scalars, including the edges of every numeric type and strings that look like what is expected.
fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop::sample::select(vec![0u64, 1, u64::MAX]).prop_map(Value::from),
        Just(json!(-1)),
        Just(json!(1.5)),
        any::<String>().prop_map(Value::from),
        prop::sample::select(vec![
            "/api/v3/statuses/1",
            "/api/v3/work_packages/18446744073709551615",
            "/api/v3/work_packages/18446744073709551616",
            "/api/v3/types/-1",
            "/api/v3/users/me",
            "/",
            "",
            "2026-01-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "+262143-12-31T23:59:59Z",
            "NaN",
        ])
        .prop_map(Value::from),
    ]
}

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

// ---------------------------------------------------------------------------------------------
// (a) HAL+JSON from the board.

/// Every HAL shape the client reads from `bytes`; returns the error messages. Never panics, and
/// every error says where (line and column) or which field.
fn decode_all(bytes: &[u8]) -> Vec<String> {
    fn one<T: serde::de::DeserializeOwned>(bytes: &[u8], errors: &mut Vec<String>) {
        if let Err(e) = serde_json::from_slice::<T>(bytes) {
            errors.push(e.to_string());
        }
    }
    let mut errors = Vec::new();
    one::<WorkPackage>(bytes, &mut errors);
    one::<Collection<WorkPackage>>(bytes, &mut errors);
    one::<Collection<hal::Relation>>(bytes, &mut errors);
    one::<Collection<hal::Activity>>(bytes, &mut errors);
    one::<Collection<hal::Status>>(bytes, &mut errors);
    one::<Collection<hal::Type>>(bytes, &mut errors);
    one::<Collection<hal::Priority>>(bytes, &mut errors);
    one::<hal::User>(bytes, &mut errors);
    one::<hal::Project>(bytes, &mut errors);
    one::<hal::Activity>(bytes, &mut errors);
    for e in &errors {
        assert!(
            e.contains(" at line ") || e.contains('`'),
            "an error that says neither where nor which field: {e}"
        );
    }
    errors
}

/// The upstream spec's own work package example: a real OpenProject document.
fn spec_work_package() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/openproject/spec/docs/api/apiv3/components/schemas/work_package_model.yml"
    );
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading {path} (shared/ must sit beside the repo): {e}"));
    let yaml: serde_yaml::Value = serde_yaml::from_str(&text).expect("the spec is YAML");
    let mut example: Value = serde_json::to_value(&yaml["example"]).expect("YAML as JSON");
    // The example leaves out `lockVersion`, which every real answer carries, and the custom field
    // that ours always has.
    example["lockVersion"] = json!(3);
    example["customField3"] = json!("pod-1");
    example
}

/// Field `name` of a struct in the document. serde's derived structs also accept a JSON array, read
/// by position (`"status": ["/api/v3/statuses/7"]` is that link): the parser is that lenient, and
/// OpenProject never sends one, so the oracle reads the array the same way.
fn field<'a>(v: &'a Value, name: &str, position: usize) -> &'a Value {
    match v {
        Value::Array(a) => a.get(position).unwrap_or(&Value::Null),
        v => &v[name],
    }
}

/// A parsed work package is sane: every value is the one in the document (as any JSON reader
/// sees it), never a default in place of a value that was there, and it converts for the decision.
fn assert_sane(doc: &Value, wp: &WorkPackage) {
    assert_eq!(Some(wp.id), doc["id"].as_u64());
    assert_eq!(Some(wp.lock_version), doc["lockVersion"].as_u64());
    assert_eq!(Some(wp.subject.as_str()), doc["subject"].as_str());
    let updated: DateTime<Utc> = serde_json::from_value(doc["updatedAt"].clone()).unwrap();
    assert_eq!(wp.updated_at, updated);
    assert_eq!(
        wp.description_raw(),
        field(&doc["description"], "raw", 0).as_str().unwrap_or("")
    );
    let links = &doc["_links"];
    let href =
        |name: &str, position: usize| field(field(links, name, position), "href", 0).as_str();
    assert_eq!(wp.links.status.href.as_deref(), href("status", 0));
    assert_eq!(wp.links.type_.href.as_deref(), href("type", 1));
    assert_eq!(wp.links.priority.href.as_deref(), href("priority", 2));
    assert_eq!(wp.links.project.href.as_deref(), href("project", 3));
    assert_eq!(
        wp.links.ancestors.len(),
        field(links, "ancestors", 6).as_array().map_or(0, Vec::len)
    );
    assert_eq!(
        wp.custom_string("customField3"),
        doc["customField3"]
            .as_str()
            .filter(|s| !s.trim().is_empty())
    );
    assert_item(wp);
}

/// `snapshot::item` never panics; it keeps a work package exactly when its type, status and
/// project links have numeric ids, and then every field agrees with the work package.
fn assert_item(wp: &WorkPackage) {
    let l = &wp.links;
    let item = snapshot::item(wp, "customField3");
    let required = (l.type_.id(), l.status.id(), l.project.id());
    match (&item, required) {
        (Some(i), (Some(t), Some(s), Some(p))) => {
            assert_eq!((i.id, i.lock_version), (wp.id, wp.lock_version));
            assert_eq!((i.type_id, i.status, i.project), (t, s, p));
            assert_eq!(i.priority, l.priority.id().unwrap_or(0));
            let ancestors: Vec<u64> = l.ancestors.iter().filter_map(hal::Link::id).collect();
            assert_eq!(i.ancestors, ancestors);
            assert_eq!(i.updated_at, wp.updated_at);
            if let Some(pod) = &i.pod {
                assert!(!pod.is_empty() && pod.trim() == pod, "pod {pod:?}");
            }
        }
        (None, (t, s, p)) => assert!(t.is_none() || s.is_none() || p.is_none()),
        (Some(_), _) => panic!("kept a work package without type, status or project id"),
    }
}

/// One edit of a document: where (an index into its paths) and what.
#[derive(Debug, Clone)]
enum Edit {
    Drop,
    Retype(Value),
    Duplicate(Value),
}

fn edit() -> impl Strategy<Value = (prop::sample::Index, Edit)> {
    (
        any::<prop::sample::Index>(),
        prop_oneof![
            1 => Just(Edit::Drop),
            2 => leaf().prop_map(Edit::Retype),
            1 => json_value().prop_map(Edit::Retype),
            1 => leaf().prop_map(Edit::Duplicate),
        ],
    )
}

/// Paths (object keys and array indexes) of every value below the root.
fn paths(v: &Value, prefix: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
    let children: Vec<(Value, &Value)> = match v {
        Value::Object(m) => m.iter().map(|(k, c)| (json!(k), c)).collect(),
        Value::Array(a) => a.iter().enumerate().map(|(i, c)| (json!(i), c)).collect(),
        _ => return,
    };
    for (seg, child) in children {
        prefix.push(seg);
        out.push(prefix.clone());
        paths(child, prefix, out);
        prefix.pop();
    }
}

fn parent_mut<'a>(root: &'a mut Value, path: &[Value]) -> &'a mut Value {
    path[..path.len() - 1]
        .iter()
        .fold(root, |v, seg| match seg {
            Value::String(k) => &mut v[k.as_str()],
            Value::Number(i) => &mut v[i.as_u64().unwrap() as usize],
            _ => unreachable!(),
        })
}

/// Applies one edit at `path`. A duplicated key only exists as text: it is returned instead.
fn apply(doc: &mut Value, path: &[Value], edit: &Edit) -> Option<Value> {
    let last = path.last().unwrap();
    match (edit, parent_mut(doc, path), last) {
        (Edit::Drop, Value::Object(m), Value::String(k)) => {
            m.remove(k);
        }
        (Edit::Drop, Value::Array(a), Value::Number(i)) => {
            a.remove(i.as_u64().unwrap() as usize);
        }
        (Edit::Retype(new), Value::Object(m), Value::String(k)) => {
            m.insert(k.clone(), new.clone());
        }
        (Edit::Retype(new), Value::Array(a), Value::Number(i)) => {
            a[i.as_u64().unwrap() as usize] = new.clone();
        }
        (Edit::Duplicate(second), Value::Object(_), Value::String(_)) => {
            return Some(second.clone());
        }
        _ => {}
    }
    None
}

/// `doc` as text, with the key at `path` given a second time, as `second`, at the end of its object.
fn with_duplicate(mut doc: Value, path: &[Value], second: &Value) -> String {
    const MARK: &str = "\u{0}duplicate-here\u{0}";
    let Some(Value::String(key)) = path.last() else {
        unreachable!("duplicates are only made of object keys")
    };
    let parent = parent_mut(&mut doc, path);
    let Value::Object(object) = std::mem::replace(parent, json!(MARK)) else {
        unreachable!("the parent of a key is an object")
    };
    let mut text = Value::Object(object).to_string();
    text.pop();
    if text.len() > 1 {
        text.push(',');
    }
    text.push_str(&format!("{}:{second}}}", json!(key)));
    doc.to_string().replace(&json!(MARK).to_string(), &text)
}

/// Applies the edits, each at a path picked by its index; returns the document's text.
fn mutate(mut doc: Value, edits: &[(prop::sample::Index, Edit)]) -> String {
    for (at, edit) in edits {
        let mut all = Vec::new();
        paths(&doc, &mut Vec::new(), &mut all);
        if all.is_empty() {
            break;
        }
        let path = &all[at.index(all.len())];
        if let Some(second) = apply(&mut doc, path, edit) {
            return with_duplicate(doc, path, &second);
        }
    }
    doc.to_string()
}

#[test]
fn arbitrary_bytes_into_every_hal_shape_are_clear_errors() {
    TestRunner::new(config(512))
        .run(&prop::collection::vec(any::<u8>(), 0..512), |bytes| {
            decode_all(&bytes);
            Ok(())
        })
        .unwrap();
}

#[test]
fn arbitrary_json_into_every_hal_shape_is_parsed_sanely_or_a_clear_error() {
    TestRunner::new(config(512))
        .run(&json_value(), |doc| {
            let bytes = serde_json::to_vec(&doc).unwrap();
            decode_all(&bytes);
            if let Ok(wp) = serde_json::from_slice::<WorkPackage>(&bytes) {
                assert_sane(&doc, &wp);
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn mutated_real_work_packages_are_parsed_sanely_or_a_clear_error() {
    let base = spec_work_package();
    let wp: WorkPackage = serde_json::from_value(base.clone()).expect("the spec example parses");
    assert_sane(&base, &wp);
    TestRunner::new(config(512))
        .run(&prop::collection::vec(edit(), 1..4), |edits| {
            let text = mutate(base.clone(), &edits);
            // What any JSON reader sees (a duplicated key: the last one).
            let doc: Value = serde_json::from_str(&text).expect("still JSON");
            match serde_json::from_str::<WorkPackage>(&text) {
                Ok(wp) => assert_sane(&doc, &wp),
                Err(e) => {
                    let e = e.to_string();
                    assert!(e.contains(" at line ") || e.contains('`'), "{e}");
                }
            }
            // A page holding the same work package twice: the same verdict for the page.
            let page =
                format!(r#"{{"total":2,"count":2,"_embedded":{{"elements":[{text},{text}]}}}}"#);
            let single = serde_json::from_str::<WorkPackage>(&text).is_ok();
            let paged = serde_json::from_str::<Collection<WorkPackage>>(&page);
            assert_eq!(paged.is_ok(), single, "{paged:?}");
            Ok(())
        })
        .unwrap();
}

/// Every key of the work package and of its links, duplicated with another value: either rejected,
/// or read as every other JSON reader reads it (the last one), never the first for some fields.
#[test]
fn duplicated_keys_in_a_work_package_are_read_as_json_readers_read_them() {
    let base = spec_work_package();
    let mut all = Vec::new();
    paths(&base, &mut Vec::new(), &mut all);
    let seconds = [
        json!(7),
        json!("7"),
        json!(null),
        json!({"href": "/api/v3/statuses/9"}),
        json!("2030-01-01T00:00:00Z"),
    ];
    let mut checked = 0;
    for path in all
        .iter()
        .filter(|p| p.len() <= 3 && p.last().unwrap().is_string())
    {
        for second in &seconds {
            let text = with_duplicate(base.clone(), path, second);
            let doc: Value = serde_json::from_str(&text).unwrap();
            if let Ok(wp) = serde_json::from_str::<WorkPackage>(&text) {
                assert_sane(&doc, &wp);
            }
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} duplicates checked");
}

proptest! {
    #![proptest_config(config(512))]

    /// (e) Work packages with links of any shape convert for the decision, or are left out.
    #[test]
    fn any_work_package_converts_for_the_decision_or_is_left_out(
        id in any::<u64>(),
        lock_version in any::<u64>(),
        subject in any::<String>(),
        hrefs in prop::collection::vec(prop::option::of(href()), 4),
        ancestors in prop::collection::vec(prop::option::of(href()), 0..4),
        pod in prop::option::of(json_value()),
    ) {
        let link = |h: &Option<String>| hal::Link { href: h.clone(), title: None };
        let mut other = Map::new();
        if let Some(pod) = pod {
            other.insert("customField3".into(), pod);
        }
        let wp = WorkPackage {
            id,
            lock_version,
            subject,
            description: None,
            created_at: None,
            updated_at: Utc::now(),
            links: hal::WorkPackageLinks {
                status: link(&hrefs[0]),
                type_: link(&hrefs[1]),
                priority: link(&hrefs[2]),
                project: link(&hrefs[3]),
                assignee: None,
                parent: None,
                ancestors: ancestors.iter().map(link).collect(),
                children: vec![],
            },
            other,
        };
        assert_item(&wp);
    }
}

fn href() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u64>().prop_map(|n| format!("/api/v3/statuses/{n}")),
        any::<u64>().prop_map(|n| format!("https://op.example/sub/api/v3/types/{n}/")),
        any::<String>(),
        "[0-9+/ -]{0,24}",
    ]
}

// ---------------------------------------------------------------------------------------------
// (d) The bundled board's query parameters, over HTTP: a panicking handler would drop the
// connection instead of answering, so every answer must be a page or a 400 InvalidQuery.

fn query_param() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![
        any::<String>(),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        prop::sample::select(vec![
            "[]",
            "-1",
            "0",
            "18446744073709551615",
            "[[\"id\",\"desc\"]]",
            "[[\"updatedAt\",\"asc\"],[\"priority\",\"desc\"]]",
            r#"[{"status":{"operator":"o","values":[]}}]"#,
            r#"[{"type":{"operator":"=","values":["blocks"]}}]"#,
            r#"[{"updatedAt":{"operator":">t-","values":["9223372036854775807"]}}]"#,
            r#"[{"createdAt":{"operator":"<>d","values":["+262143-12-31",""]}}]"#,
            r#"[{"id":{"operator":"=","values":["18446744073709551616"]}}]"#,
        ])
        .prop_map(String::from),
    ])
}

#[test]
fn the_boards_list_endpoints_answer_any_query_with_a_page_or_invalid_query() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let board = rt.block_on(sim::start(BoardOptions::default())).unwrap();
    for i in 0..3 {
        board.create(&sim::seed::SeedWp::new("Task", &format!("wp {i}")));
    }
    board.relate(1, 2, "blocks");
    let http = reqwest::Client::new();
    let endpoints = [
        "api/v3/work_packages",
        "api/v3/projects/1/work_packages",
        "api/v3/relations",
    ];
    let params = (
        prop::sample::select(endpoints.to_vec()),
        [query_param(), query_param(), query_param(), query_param()],
    );
    TestRunner::new(config(256))
        .run(
            &params,
            |(endpoint, [filters, sort_by, page_size, offset])| {
                let mut url = board.url().join(endpoint).unwrap();
                for (k, v) in [
                    ("filters", &filters),
                    ("sortBy", &sort_by),
                    ("pageSize", &page_size),
                    ("offset", &offset),
                ] {
                    if let Some(v) = v {
                        url.query_pairs_mut().append_pair(k, v);
                    }
                }
                let (status, body) = rt.block_on(async {
                    let resp = http
                        .get(url.clone())
                        .basic_auth("apikey", Some(board.token()))
                        .send()
                        .await
                        .unwrap_or_else(|e| panic!("no answer to {url}: {e}"));
                    (resp.status().as_u16(), resp.bytes().await.unwrap())
                });
                let body: Value = serde_json::from_slice(&body).expect("a JSON body");
                match status {
                    200 => {
                        let page: Collection<Value> = serde_json::from_value(body).unwrap();
                        let size = page.page_size.expect("a page size");
                        prop_assert!(page.count <= size && page.count <= page.total);
                        prop_assert_eq!(page.count as usize, page.embedded.elements.len());
                    }
                    400 => prop_assert_eq!(
                        body["errorIdentifier"].as_str(),
                        Some("urn:openproject-org:api:v3:errors:InvalidQuery"),
                        "{}",
                        body
                    ),
                    other => prop_assert!(false, "{other} for {url}: {body}"),
                }
                Ok(())
            },
        )
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// Seed files (`journeyman board --seed FILE`).

fn seed_entry() -> impl Strategy<Value = Value> {
    let name = |known: Vec<&'static str>| {
        prop_oneof![
            3 => prop::sample::select(known).prop_map(String::from),
            1 => any::<String>(),
        ]
    };
    let key = prop::sample::select(vec!["a", "b", "c", "d"]).prop_map(String::from);
    (
        prop::option::of(key.clone()),
        any::<String>(),
        prop::option::of(name(vec![
            "Task",
            "Epic",
            "Bug",
            "Phase",
            "Spike",
            "User story",
        ])),
        prop::option::of(name(vec!["New", "In progress", "Closed", "Rejected"])),
        prop::option::of(name(vec!["Low", "Normal", "High", "Immediate"])),
        prop::option::of(name(vec!["demo", "other"])),
        prop::option::of(key.clone()),
        prop::collection::vec(key, 0..3),
        prop::option::of(any::<String>()),
    )
        .prop_map(
            |(key, subject, type_, status, priority, project, parent, blocked_by, pod)| {
                let mut e = Map::new();
                e.insert("subject".into(), subject.into());
                for (k, v) in [
                    ("key", key),
                    ("type", type_),
                    ("status", status),
                    ("priority", priority),
                    ("project", project),
                    ("parent", parent),
                    ("pod", pod),
                ] {
                    if let Some(v) = v {
                        e.insert(k.into(), v.into());
                    }
                }
                e.insert("blocked_by".into(), json!(blocked_by));
                Value::Object(e)
            },
        )
}

#[test]
fn arbitrary_seed_text_is_a_seed_file_or_a_named_error() {
    TestRunner::new(config(256))
        .run(
            &prop_oneof![any::<String>(), json_value().prop_map(|v| v.to_string())],
            |text| {
                if let Err(e) = SeedFile::parse(&text) {
                    prop_assert!(e.starts_with("seed file: "), "{e}");
                }
                Ok(())
            },
        )
        .unwrap();
}

#[test]
fn any_seed_file_loads_whole_or_fails_naming_the_entry() {
    let file = (
        prop::collection::vec(seed_entry(), 0..8),
        prop::collection::vec(
            ("[a-z]{1,8}", any::<String>()).prop_map(|(i, n)| json!({"identifier": i, "name": n})),
            0..2,
        ),
    );
    TestRunner::new(config(256))
        .run(&file, |(work_packages, projects)| {
            let text = json!({"projects": projects, "work_packages": work_packages}).to_string();
            let seed = SeedFile::parse(&text).expect("well-formed seed files parse");
            let mut board = Board::seeded("Phase");
            let before = board.wps.len();
            match seed.apply(&mut board) {
                Ok(keys) => {
                    prop_assert_eq!(board.wps.len(), before + work_packages.len());
                    for id in keys.values() {
                        prop_assert!(board.wps.contains_key(id));
                    }
                }
                Err(e) => prop_assert!(e.contains('`'), "an error that names nothing: {e}"),
            }
            Ok(())
        })
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// (b) The agent's output.

/// One line of stdout, and the session id if it is a complete result object.
#[derive(Debug, Clone)]
enum Line {
    Log(String),
    Event(Value),
    Result {
        session: u32,
        pretty: bool,
    },
    /// A result object cut short, with a control character where it was cut (never valid JSON).
    Cut(usize),
}

fn result_object(session: u32) -> Value {
    json!({"type": "result", "subtype": "success", "is_error": false, "num_turns": 1,
           "session_id": session.to_string(), "total_cost_usd": 0.01, "result": "done"})
}

impl Line {
    fn text(&self) -> String {
        match self {
            Line::Log(s) => s.clone(),
            Line::Event(v) => v.to_string(),
            Line::Result { session, pretty } => {
                let v = result_object(*session);
                if *pretty {
                    serde_json::to_string_pretty(&v).unwrap()
                } else {
                    v.to_string()
                }
            }
            Line::Cut(at) => {
                let full = result_object(0).to_string();
                let mut at = (*at % full.len()).max(1);
                while !full.is_char_boundary(at) {
                    at -= 1;
                }
                format!("{}\u{1}", &full[..at])
            }
        }
    }
}

fn line() -> impl Strategy<Value = Line> {
    prop_oneof![
        3 => "[^\n]{0,80}".prop_map(Line::Log),
        2 => json_value()
            .prop_filter("not a result", |v| v.get("type") != Some(&json!("result")))
            .prop_map(Line::Event),
        1 => (any::<u32>(), any::<bool>()).prop_map(|(session, pretty)| Line::Result { session, pretty }),
        1 => any::<usize>().prop_map(Line::Cut),
    ]
}

fn exit() -> impl Strategy<Value = Exit> {
    prop_oneof![
        Just(Exit {
            code: Some(0),
            signal: None
        }),
        any::<i32>().prop_map(|c| Exit {
            code: Some(c),
            signal: None
        }),
        (1..32i32).prop_map(|s| Exit {
            code: None,
            signal: Some(s)
        }),
    ]
}

/// `judge` never panics, and it calls a run a success only with a clean exit and a result object
/// that says success; a failure always gives a reason.
fn check_judge(exit: Exit, stdout: &[u8], truncated: bool) {
    match result::judge(exit, stdout, truncated, String::new(), String::new()) {
        Ok(r) => {
            assert!(exit.success());
            assert!(r.subtype == "success" && !r.is_error);
            assert!(r.cost_usd.is_finite() && r.cost_usd >= 0.0);
        }
        Err(e) => {
            assert!(!e.reason().trim().is_empty());
            if let Some(r) = e.report() {
                assert!(r.cost_usd.is_finite() && r.cost_usd >= 0.0);
            }
            if matches!(e, AgentFailure::Unparsable { .. }) {
                assert!(exit.success(), "an unclean exit is reported as such");
            }
        }
    }
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn arbitrary_stdout_is_judged_without_panic(
        exit in exit(),
        stdout in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..1024),
            prop::collection::vec(line(), 0..12)
                .prop_map(|ls| ls.iter().map(Line::text).collect::<Vec<_>>().join("\n").into_bytes()),
        ],
        truncated in any::<bool>(),
    ) {
        check_judge(exit, &stdout, truncated);
    }

    #[test]
    fn the_last_complete_result_object_wins_among_any_other_lines(
        lines in prop::collection::vec(line(), 0..16),
    ) {
        let text = lines.iter().map(Line::text).collect::<Vec<_>>().join("\n");
        let last = lines.iter().rev().find_map(|l| match l {
            Line::Result { session, .. } => Some(session.to_string()),
            _ => None,
        });
        match (result::parse(&text), last) {
            (Ok(r), Some(session)) => prop_assert_eq!(r.session_id, Some(session)),
            (Err(ParseError::Empty), None) => prop_assert!(text.trim().is_empty()),
            (Err(ParseError::NoResult { bytes, .. }), None) => prop_assert_eq!(bytes, text.len()),
            (got, want) => prop_assert!(false, "got {:?}, want session {:?} in:\n{}", got, want, text),
        }
    }

    #[test]
    fn result_fields_of_any_type_or_size_read_as_sane_numbers(
        fields in prop::collection::vec(
            (
                prop::sample::select(vec!["num_turns", "total_cost_usd", "cost_usd", "duration_ms",
                    "is_error", "session_id", "result", "usage", "subtype"]),
                prop_oneof![
                    json_value().prop_map(|v| v.to_string()),
                    prop::sample::select(vec!["1e400", "-1e400", "18446744073709551616",
                        "1.7976931348623157e308", "-0", "0.0", "1e-400", "4294967296", "NaN",
                        "Infinity", "\"NaN\"", "\"Infinity\"", "\"-1\"", "-1", "1e19",
                        "{\"input_tokens\":1e30,\"output_tokens\":-5}", "[]", "\"success\""])
                        .prop_map(String::from),
                ],
            ),
            0..6,
        ),
    ) {
        let body: Vec<String> = fields.iter().map(|(k, v)| format!("{}:{v}", json!(k))).collect();
        let text = format!(r#"{{"type":"result","subtype":"success",{}}}"#, body.join(","))
            .replace(",}", "}");
        check_judge(Exit { code: Some(0), signal: None }, text.as_bytes(), false);
        if let Ok(r) = result::parse(&text) {
            prop_assert!(r.cost_usd.is_finite() && r.cost_usd >= 0.0);
            // What serde_json reads, as a count: the value when it is a whole number, else 0.
            let doc: Value = serde_json::from_str(&text).unwrap();
            if let Some(n) = doc["duration_ms"].as_u64() {
                prop_assert_eq!(r.duration_ms, n);
            }
            if doc["total_cost_usd"].is_null() && doc["cost_usd"].is_null() {
                prop_assert_eq!(r.cost_usd, 0.0);
            }
        }
    }
}

/// Gives the time `f` took, failing if it took longer than `limit` (a hang shows as a failure
/// in the suite's time, never as a stuck CI run only because the limit is generous).
fn timed<T>(what: &str, limit: Duration, f: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let out = f();
    let took = started.elapsed();
    assert!(took < limit, "{what} took {took:?} (limit {limit:?})");
    out
}

#[test]
fn deeply_nested_json_is_an_error_in_bounded_time_not_a_stack_overflow() {
    let depth = 200_000;
    let cases = [
        ("[".repeat(depth), "recursion limit exceeded"),
        (
            format!("{}{}", "[".repeat(depth), "]".repeat(depth)),
            "recursion limit exceeded",
        ),
        ("{\"a\":".repeat(depth), "recursion limit exceeded"),
        // One unclosed object per line: each line is a candidate, read to its end only.
        ("{\"a\":\n".repeat(depth), "EOF while parsing"),
        (
            format!(
                "{{\"type\":\"result\",\"subtype\":\"success\",\"usage\":{}1{}}}",
                "[".repeat(depth),
                "]".repeat(depth)
            ),
            "recursion limit exceeded",
        ),
    ];
    for (text, needle) in cases {
        let e = timed("parsing deep nesting", Duration::from_secs(5), || {
            result::parse(&text).unwrap_err()
        });
        assert!(matches!(e, ParseError::NoResult { .. }), "{e}");
        assert!(e.to_string().contains(needle), "{e}");
        check_judge(
            Exit {
                code: Some(0),
                signal: None,
            },
            text.as_bytes(),
            false,
        );
    }
}

/// A run killed mid-way leaves megabytes of stream-json events and no result object. Reading it
/// used to start one JSON stream per line and read each to the end: quadratic, hours for 5 MB.
#[test]
fn stream_json_without_a_result_object_is_read_in_linear_time() {
    let event = "{\"type\":\"assistant\",\"message\":{\"content\":[]}}\n";
    // The capture limits keep at most 4 MB of head and 1 MB of tail.
    let lines = (5 << 20) / event.len();
    let text = event.repeat(lines);
    let e = timed("reading 5 MB of events", Duration::from_secs(10), || {
        result::parse(&text).unwrap_err()
    });
    match e {
        ParseError::NoResult { values, .. } => {
            assert_eq!(values, lines, "each event is counted once")
        }
        other => panic!("{other}"),
    }
}
