//! Filters, sorting and pagination of the bundled board, as OpenProject documents them
//! (API-NOTES section 1): filters are AND-ed, an omitted `filters` means "open only", `[]` means no
//! filter, `offset` is a 1-based page number, `pageSize` is clamped to the maximum (`-1` = maximum).
//! Anything the board does not support is a 400 InvalidQuery, never silently ignored: a client that
//! depends on an unsupported filter must find out here, not in production.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::state::{Board, SimError, Wp};

/// One parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub name: String,
    pub operator: String,
    pub values: Vec<String>,
}

/// Parses the `filters` parameter. `None` (parameter absent) gives OpenProject's default filter.
pub fn parse_filters(raw: Option<&str>) -> Result<Vec<Filter>, SimError> {
    let Some(raw) = raw else {
        return Ok(vec![Filter {
            name: "status".into(),
            operator: "o".into(),
            values: vec![],
        }]);
    };
    let parsed: Value = serde_json::from_str(raw)
        .map_err(|_| SimError::invalid_query("Filters is not a valid JSON array."))?;
    let Value::Array(items) = parsed else {
        return Err(SimError::invalid_query(
            "Filters is not a valid JSON array.",
        ));
    };
    let mut filters = Vec::new();
    for item in items {
        let Value::Object(map) = item else {
            return Err(SimError::invalid_query(
                "Filters Invalid filter does not exist.",
            ));
        };
        for (name, spec) in map {
            let operator = spec
                .get("operator")
                .and_then(Value::as_str)
                .filter(|o| !o.is_empty())
                .ok_or_else(|| {
                    SimError::invalid_query(format!(
                        "Filters {} Operator can't be blank.",
                        human(&name)
                    ))
                })?
                .to_string();
            let values = match spec.get("values") {
                None | Some(Value::Null) => vec![],
                Some(Value::Array(vs)) => vs
                    .iter()
                    .map(|v| match v {
                        Value::String(s) => Ok(s.clone()),
                        Value::Number(n) => Ok(n.to_string()),
                        _ => Err(SimError::invalid_query(format!(
                            "Filters {} filter has invalid values.",
                            human(&name)
                        ))),
                    })
                    .collect::<Result<_, _>>()?,
                Some(_) => {
                    return Err(SimError::invalid_query(format!(
                        "Filters {} filter has invalid values.",
                        human(&name)
                    )));
                }
            };
            filters.push(Filter {
                name,
                operator,
                values,
            });
        }
    }
    Ok(filters)
}

fn human(name: &str) -> String {
    let mut c = name.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// The kind of a work package filter, after name normalisation.
#[derive(Debug, Clone, PartialEq)]
enum Field {
    Status,
    Type,
    Assignee,
    Parent,
    Project,
    Priority,
    Id,
    UpdatedAt,
    CreatedAt,
    Subject,
    SubjectOrId,
    Custom(u64),
    /// `blocked = [X]`: work packages blocked by X.
    Blocked,
    /// `blocks = [X]`: work packages that block X.
    Blocks,
}

fn field(name: &str, board: &Board) -> Result<Field, SimError> {
    Ok(match name {
        "status" | "status_id" => Field::Status,
        "type" | "type_id" => Field::Type,
        "assignee" | "assigned_to" | "assigned_to_id" => Field::Assignee,
        "parent" => Field::Parent,
        "project" | "project_id" => Field::Project,
        "priority" | "priority_id" => Field::Priority,
        "id" => Field::Id,
        "updatedAt" | "updated_at" => Field::UpdatedAt,
        "createdAt" | "created_at" => Field::CreatedAt,
        "subject" => Field::Subject,
        "subjectOrId" | "subject_or_id" => Field::SubjectOrId,
        "blocked" => Field::Blocked,
        "blocks" => Field::Blocks,
        other => match other
            .strip_prefix("customField")
            .or_else(|| other.strip_prefix("cf_"))
            .map(str::parse::<u64>)
        {
            Some(Ok(id)) if board.custom_fields.iter().any(|c| c.id == id) => Field::Custom(id),
            _ => {
                return Err(SimError::invalid_query(format!(
                    "Filters {} filter does not exist.",
                    human(other)
                )));
            }
        },
    })
}

fn allowed_operators(field: &Field) -> &'static [&'static str] {
    match field {
        Field::Status => &["o", "c", "=", "!", "*"],
        Field::Type | Field::Project | Field::Priority | Field::Id => &["=", "!"],
        Field::Assignee | Field::Parent => &["=", "!", "*", "!*"],
        Field::UpdatedAt | Field::CreatedAt => &["<>d", ">t-", "<t-", "t-", "=d", "t", "w"],
        Field::Subject => &["~", "!~"],
        Field::SubjectOrId => &["**"],
        Field::Custom(_) => &["=", "!", "*", "!*", "~", "!~"],
        Field::Blocked | Field::Blocks => &["=", "!"],
    }
}

/// A filter ready to evaluate, with relation look-ups precomputed once per query.
#[derive(Debug)]
struct Compiled {
    field: Field,
    operator: String,
    values: Vec<String>,
    ids: BTreeSet<u64>,
    range: (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
}

/// A compiled work package query: evaluate with [`Query::matches`].
#[derive(Debug)]
pub struct Query {
    filters: Vec<Compiled>,
    user: u64,
}

impl Query {
    #[cfg(test)]
    pub fn compile(board: &Board, filters: &[Filter], user: u64) -> Result<Query, SimError> {
        Query::compile_in(board, filters, user, None)
    }

    /// Compiles `filters` for `user`'s list of `project` (`None`: the global list). The `id`,
    /// `parent`, `blocks` and `blocked` filters accept only work packages `user` sees (in `project`):
    /// OpenProject's `FilterForWpMixin` with the `HugeList` strategy (`visibility.rs`).
    pub fn compile_in(
        board: &Board,
        filters: &[Filter],
        user: u64,
        project: Option<u64>,
    ) -> Result<Query, SimError> {
        let mut compiled = Vec::new();
        for f in filters {
            let field = field(&f.name, board)?;
            if !allowed_operators(&field).contains(&f.operator.as_str()) {
                return Err(SimError::invalid_query(format!(
                    "Filters {} Operator is not set to one of the allowed values.",
                    human(&f.name)
                )));
            }
            let needs_values = matches!(
                f.operator.as_str(),
                "=" | "!" | "~" | "!~" | "**" | "<>d" | ">t-" | "<t-" | "t-" | "=d"
            );
            if needs_values && f.values.is_empty() {
                return Err(SimError::invalid_query(format!(
                    "Filters {} filter has invalid values.",
                    human(&f.name)
                )));
            }
            let invalid = || {
                SimError::invalid_query(format!(
                    "Filters {} filter has invalid values.",
                    human(&f.name)
                ))
            };
            let numeric = matches!(
                field,
                Field::Status
                    | Field::Type
                    | Field::Project
                    | Field::Priority
                    | Field::Id
                    | Field::Parent
                    | Field::Blocked
                    | Field::Blocks
            );
            let mut ids = BTreeSet::new();
            if numeric && matches!(f.operator.as_str(), "=" | "!") {
                for v in &f.values {
                    ids.insert(v.parse::<u64>().map_err(|_| invalid())?);
                }
                if matches!(
                    field,
                    Field::Id | Field::Parent | Field::Blocked | Field::Blocks
                ) {
                    board.check_wp_filter_ids(user, project, &f.name, &ids)?;
                }
            }
            if field == Field::Assignee && matches!(f.operator.as_str(), "=" | "!") {
                for v in &f.values {
                    ids.insert(if v == "me" {
                        user
                    } else {
                        v.parse::<u64>().map_err(|_| invalid())?
                    });
                }
            }
            // Relation filters: replace the target ids by the set of matching work packages.
            if matches!(field, Field::Blocked | Field::Blocks) {
                let targets = std::mem::take(&mut ids);
                for r in board.relations.values().filter(|r| r.type_ == "blocks") {
                    match field {
                        Field::Blocked if targets.contains(&r.from) => ids.insert(r.to),
                        Field::Blocks if targets.contains(&r.to) => ids.insert(r.from),
                        _ => false,
                    };
                }
            }
            let mut range = (None, None);
            if matches!(field, Field::UpdatedAt | Field::CreatedAt) {
                range = date_range(&f.operator, &f.values, board.now()).ok_or_else(invalid)?;
            }
            compiled.push(Compiled {
                field,
                operator: f.operator.clone(),
                values: f.values.clone(),
                ids,
                range,
            });
        }
        Ok(Query {
            filters: compiled,
            user,
        })
    }

    pub fn matches(&self, board: &Board, wp: &Wp) -> bool {
        self.filters.iter().all(|f| f.matches(board, wp, self.user))
    }
}

impl Compiled {
    fn matches(&self, board: &Board, wp: &Wp, _user: u64) -> bool {
        let op = self.operator.as_str();
        let in_set = |v: Option<u64>| match op {
            "=" => v.is_some_and(|v| self.ids.contains(&v)),
            "!" => !v.is_some_and(|v| self.ids.contains(&v)),
            "*" => v.is_some(),
            "!*" => v.is_none(),
            _ => false,
        };
        match &self.field {
            Field::Status => match op {
                "o" => !board.is_closed(wp),
                "c" => board.is_closed(wp),
                "*" => true,
                _ => in_set(Some(wp.status)),
            },
            Field::Type => in_set(Some(wp.type_id)),
            Field::Project => in_set(Some(wp.project)),
            Field::Priority => in_set(Some(wp.priority)),
            Field::Id => in_set(Some(wp.id)),
            Field::Assignee => in_set(wp.assignee),
            Field::Parent => in_set(wp.parent),
            Field::Blocked | Field::Blocks => in_set(Some(wp.id)),
            Field::UpdatedAt => in_range(self.range, wp.updated_at),
            Field::CreatedAt => in_range(self.range, wp.created_at),
            Field::Subject => {
                let hit = self
                    .values
                    .iter()
                    .any(|v| wp.subject.to_lowercase().contains(&v.to_lowercase()));
                if op == "~" { hit } else { !hit }
            }
            Field::SubjectOrId => self.values.iter().any(|v| {
                wp.subject.to_lowercase().contains(&v.to_lowercase())
                    || v.trim_start_matches('#') == wp.id.to_string()
            }),
            Field::Custom(id) => {
                let value = wp.custom.get(id).map(String::as_str);
                match op {
                    "=" => value.is_some_and(|v| self.values.iter().any(|x| x == v)),
                    "!" => !value.is_some_and(|v| self.values.iter().any(|x| x == v)),
                    "*" => value.is_some(),
                    "!*" => value.is_none(),
                    "~" => {
                        value.is_some_and(|v| self.values.iter().any(|x| v.contains(x.as_str())))
                    }
                    "!~" => {
                        !value.is_some_and(|v| self.values.iter().any(|x| v.contains(x.as_str())))
                    }
                    _ => false,
                }
            }
        }
    }
}

fn in_range(range: (Option<DateTime<Utc>>, Option<DateTime<Utc>>), t: DateTime<Utc>) -> bool {
    range.0.is_none_or(|from| t >= from) && range.1.is_none_or(|to| t <= to)
}

/// A date interval; either end may be open.
type Span = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// Date filters on `updatedAt` / `createdAt` (`:datetime_past`, i.e.
/// `app/models/queries/filters/strategies/date_time_past.rb`): `<>d` takes two values, each an ISO
/// 8601 date-time, a date (midnight UTC) or empty (no bound), compared inclusively with the stored
/// time at full precision (`app/models/queries/operators/between_date_time.rb`, `DateTime.parse`
/// of each value, and `datetime_range_clauses.rb`: `>=` and `<=`). It is the only operator that
/// takes a precise instant: the relative ones (`>t-`, `<t-`, `t-`) take a number of days, and `=d`
/// is the 24 hours from its value (`on_date_time.rb`).
fn date_range(op: &str, values: &[String], now: DateTime<Utc>) -> Option<Span> {
    // Checked: a client may send any number of days, and an out-of-range one is a 400, not a panic.
    let ago = |v: &String| {
        let days = chrono::Duration::try_days(v.parse::<i64>().ok()?)?;
        now.checked_sub_signed(days)
    };
    let half_day = chrono::Duration::hours(12);
    match op {
        "<>d" => {
            let bound = |v: Option<&String>| match v.filter(|v| !v.is_empty()) {
                Some(v) => parse_time(v).map(Some),
                None => Some(None),
            };
            let from = bound(values.first())?;
            let to = bound(values.get(1))?;
            Some((from, to))
        }
        "=d" => {
            let from = parse_time(values.first()?)?;
            Some((
                Some(from),
                from.checked_add_signed(chrono::Duration::hours(24)),
            ))
        }
        ">t-" => Some((Some(ago(values.first()?)?), None)),
        "<t-" => Some((None, Some(ago(values.first()?)?))),
        "t-" => {
            let d = ago(values.first()?)?;
            Some((
                Some(d.checked_sub_signed(half_day)?),
                Some(d.checked_add_signed(half_day)?),
            ))
        }
        "t" => Some((Some(now - chrono::Duration::days(1)), None)),
        "w" => Some((Some(now - chrono::Duration::days(7)), None)),
        _ => None,
    }
}

/// An ISO 8601 date-time, or a date at midnight UTC (as Ruby's `DateTime.parse`).
fn parse_time(v: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Some(t.with_timezone(&Utc));
    }
    let date = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc())
}

/// A sort key.
#[derive(Debug, Clone, PartialEq)]
pub struct Sort {
    pub field: String,
    pub descending: bool,
}

/// Parses `sortBy=[["field","asc"],...]` for work packages; default `[["id","asc"]]`.
pub fn parse_sort(raw: Option<&str>) -> Result<Vec<Sort>, SimError> {
    parse_sort_by(raw, |field| match field {
        "id" | "priority" | "subject" | "status" | "type" | "parent" => Some(field.into()),
        "updatedAt" | "updated_at" => Some("updatedAt".into()),
        "createdAt" | "created_at" => Some("createdAt".into()),
        _ => None,
    })
}

/// Parses `sortBy` for any collection: `sortable` names the field a sort key stands for, `None`
/// when the collection cannot be sorted by it (a 400 naming it, as OpenProject answers).
pub fn parse_sort_by(
    raw: Option<&str>,
    sortable: impl Fn(&str) -> Option<String>,
) -> Result<Vec<Sort>, SimError> {
    let Some(raw) = raw else {
        return Ok(vec![Sort {
            field: "id".into(),
            descending: false,
        }]);
    };
    let invalid = || {
        SimError::invalid_query("Sort by is not a valid JSON array of [field, direction] pairs.")
    };
    let parsed: Vec<Vec<String>> = serde_json::from_str(raw).map_err(|_| invalid())?;
    parsed
        .into_iter()
        .map(|pair| {
            let [field, dir] = <[String; 2]>::try_from(pair).map_err(|_| invalid())?;
            let Some(field) = sortable(&field) else {
                return Err(SimError::invalid_query(format!(
                    "Sort by {} is not sortable.",
                    human(&field)
                )));
            };
            let descending = match dir.as_str() {
                "asc" => false,
                "desc" => true,
                _ => {
                    return Err(SimError::invalid_query(format!(
                        "Sort by direction `{dir}` is not one of asc, desc."
                    )));
                }
            };
            Ok(Sort { field, descending })
        })
        .collect()
}

/// Sorts work packages; `id asc` always breaks ties so pages are stable.
pub fn sort(board: &Board, wps: &mut [&Wp], keys: &[Sort]) {
    wps.sort_by(|a, b| {
        for key in keys {
            let ord = match key.field.as_str() {
                "id" => a.id.cmp(&b.id),
                "priority" => {
                    let pa = board.priority(a.priority).map(|p| p.position).unwrap_or(0);
                    let pb = board.priority(b.priority).map(|p| p.position).unwrap_or(0);
                    pa.cmp(&pb)
                }
                "subject" => a.subject.cmp(&b.subject),
                "status" => a.status.cmp(&b.status),
                "type" => a.type_id.cmp(&b.type_id),
                "parent" => a.parent.cmp(&b.parent),
                "updatedAt" => a.updated_at.cmp(&b.updated_at),
                "createdAt" => a.created_at.cmp(&b.created_at),
                _ => std::cmp::Ordering::Equal,
            };
            let ord = if key.descending { ord.reverse() } else { ord };
            if ord.is_ne() {
                return ord;
            }
        }
        a.id.cmp(&b.id)
    });
}

/// The index of the first element of page `offset` (1-based) of `size` elements. Saturating: a
/// client may ask for any page, and a page past the end is empty, not an overflow.
pub fn first_index(offset: u64, size: u64) -> usize {
    usize::try_from(offset.saturating_sub(1).saturating_mul(size)).unwrap_or(usize::MAX)
}

/// Resolves `pageSize` and `offset` (page number) as OpenProject does.
pub fn page(
    page_size: Option<&str>,
    offset: Option<&str>,
    default: u64,
    max: u64,
) -> Result<(u64, u64), SimError> {
    let size = match page_size {
        None => default.min(max),
        Some(s) => match s.parse::<i64>() {
            Ok(-1) => max,
            Ok(n) if n >= 0 => (n as u64).min(max),
            _ => {
                return Err(SimError::invalid_query(
                    "Page size must be a non-negative integer.",
                ));
            }
        },
    };
    let offset = match offset {
        None => 1,
        Some(s) => match s.parse::<u64>() {
            Ok(n) if n >= 1 => n,
            Ok(_) => 1,
            Err(_) => {
                return Err(SimError::invalid_query(
                    "Offset must be a positive integer.",
                ));
            }
        },
    };
    Ok((size, offset))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::sim::state::{ADMIN_USER, AGENT_USER, NewWp, WpChange};

    fn board() -> Board {
        let mut b = Board::seeded("Phase");
        for (i, status) in [1u64, 7, 12].iter().enumerate() {
            let id = b
                .create(
                    ADMIN_USER,
                    NewWp {
                        project: 1,
                        subject: format!("wp {i}"),
                        status: Some(*status),
                        ..Default::default()
                    },
                )
                .unwrap();
            if i == 1 {
                b.update(
                    ADMIN_USER,
                    id,
                    Some(0),
                    WpChange {
                        assignee: Some(Some(AGENT_USER)),
                        ..Default::default()
                    },
                )
                .unwrap();
            }
        }
        b.relate(ADMIN_USER, 1, 2, "blocks", None, None).unwrap();
        b
    }

    /// Ids matching the `filters` parameter (raw JSON, or `None` for absent).
    fn check(raw: Option<&str>, expect: &[u64]) {
        let b = board();
        let q = Query::compile(&b, &parse_filters(raw).unwrap(), AGENT_USER).unwrap();
        let got: Vec<u64> = b
            .wps
            .values()
            .filter(|w| q.matches(&b, w))
            .map(|w| w.id)
            .collect();
        assert_eq!(got, expect, "filters {raw:?}");
    }

    fn check_invalid(raw: &str, needle: &str) {
        let b = board();
        let e = parse_filters(Some(raw))
            .and_then(|f| Query::compile(&b, &f, AGENT_USER))
            .unwrap_err();
        assert_eq!((e.status, e.identifier), (400, "InvalidQuery"), "{raw}");
        assert!(
            e.message.contains(needle),
            "`{}` should contain `{needle}`",
            e.message
        );
    }

    #[test]
    fn filters_as_documented() {
        check(None, &[1, 2]);
        check(Some("[]"), &[1, 2, 3]);
        check(Some(r#"[{"status":{"operator":"c","values":[]}}]"#), &[3]);
        check(
            Some(r#"[{"status":{"operator":"=","values":["1","12"]}}]"#),
            &[1, 3],
        );
        check(
            Some(r#"[{"assignee":{"operator":"=","values":["me"]}}]"#),
            &[2],
        );
        check(
            Some(r#"[{"assignee":{"operator":"!*","values":[]}}]"#),
            &[1, 3],
        );
        check(
            Some(r#"[{"blocked":{"operator":"=","values":["1"]}}]"#),
            &[2],
        );
        check(
            Some(r#"[{"blocks":{"operator":"=","values":["2"]}}]"#),
            &[1],
        );
        check(
            Some(
                r#"[{"id":{"operator":"!","values":["2"]}},{"status":{"operator":"o","values":null}}]"#,
            ),
            &[1],
        );
        check(
            Some(r##"[{"subjectOrId":{"operator":"**","values":["#3"]}}]"##),
            &[3],
        );
        check(
            Some(r#"[{"updatedAt":{"operator":"<>d","values":["2000-01-01T00:00:00Z",""]}}]"#),
            &[1, 2, 3],
        );
        check(
            Some(r#"[{"updatedAt":{"operator":"<>d","values":["2999-01-01",""]}}]"#),
            &[],
        );
    }

    #[test]
    fn between_takes_a_precise_instant_inclusively_and_a_date_as_midnight() {
        let mut b = board();
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        // Stored at full precision, as a database does; rendered in whole seconds by OpenProject.
        b.wps.get_mut(&1).unwrap().updated_at = at("2026-11-23T12:00:00.700Z");
        b.wps.get_mut(&2).unwrap().updated_at = at("2026-11-23T12:00:01Z");
        b.wps.get_mut(&3).unwrap().updated_at = at("2026-11-22T23:00:00Z");
        let ids = |values: &str| {
            let raw = format!(r#"[{{"updatedAt":{{"operator":"<>d","values":{values}}}}}]"#);
            let q = Query::compile(&b, &parse_filters(Some(&raw)).unwrap(), AGENT_USER).unwrap();
            let got: Vec<u64> = b
                .wps
                .values()
                .filter(|w| q.matches(&b, w))
                .map(|w| w.id)
                .collect();
            got
        };
        // The second rendered for #1 finds #1 again and whatever came later in that second.
        assert_eq!(ids(r#"["2026-11-23T12:00:00Z",""]"#), [1, 2]);
        assert_eq!(ids(r#"["2026-11-23T12:00:00.700Z",""]"#), [1, 2]);
        assert_eq!(ids(r#"["2026-11-23T12:00:00.701Z",""]"#), [2]);
        assert_eq!(ids(r#"["","2026-11-23T12:00:01Z"]"#), [1, 2, 3]);
        // A date alone is midnight (`DateTime.parse`), at either end.
        assert_eq!(ids(r#"["","2026-11-23"]"#), [3]);
        assert_eq!(ids(r#"["2026-11-23",""]"#), [1, 2]);
    }

    #[test]
    fn unsupported_filters_are_invalid_queries() {
        check_invalid(
            r#"[{"bogus":{"operator":"=","values":["1"]}}]"#,
            "Bogus filter does not exist",
        );
        check_invalid(
            r#"[{"status":{"operator":"~","values":["1"]}}]"#,
            "Operator is not set",
        );
        check_invalid(
            r#"[{"status":{"values":["1"]}}]"#,
            "Operator can't be blank",
        );
        check_invalid(
            r#"[{"type":{"operator":"=","values":[]}}]"#,
            "invalid values",
        );
        check_invalid(
            r#"[{"type":{"operator":"=","values":["abc"]}}]"#,
            "invalid values",
        );
        check_invalid(r#"{"status":1}"#, "not a valid JSON array");
        check_invalid(
            r#"[{"customField99":{"operator":"*","values":[]}}]"#,
            "does not exist",
        );
    }

    #[test]
    fn sorting_and_paging() {
        assert!(parse_sort(Some(r#"[["priority","desc"],["id","asc"]]"#)).is_ok());
        assert_eq!(
            parse_sort(Some(r#"[["nope","asc"]]"#)).unwrap_err().status,
            400
        );
        assert_eq!(
            parse_sort(Some(r#"[["id","sideways"]]"#))
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(page(None, None, 20, 1000).unwrap(), (20, 1));
        assert_eq!(page(Some("-1"), Some("3"), 20, 1000).unwrap(), (1000, 3));
        assert_eq!(page(Some("5000"), Some("0"), 20, 1000).unwrap(), (1000, 1));
        assert!(page(Some("x"), None, 20, 1000).is_err());
    }
}

/// The board parses query strings from any client: whatever they hold, the answer is a query or a
/// 400 InvalidQuery, never a panic (a panicking handler drops the connection instead of answering).
#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::harness::sim::state::tests::board_with;
    use crate::harness::sim::state::{ADMIN_USER, AGENT_USER};
    use proptest::prelude::*;
    use serde_json::json;

    fn board() -> Board {
        let mut b = board_with(4);
        b.relate(ADMIN_USER, 1, 2, "blocks", None, None).unwrap();
        b
    }

    fn assert_invalid_query(e: &SimError) {
        assert_eq!(
            (e.status, e.identifier),
            (400, "InvalidQuery"),
            "{}",
            e.message
        );
        assert!(!e.message.is_empty());
    }

    /// Parses and compiles `raw` against the board; a compiled query is evaluated on every work
    /// package and sorted, so a panic anywhere on the way shows.
    fn run(b: &Board, filters: Option<&str>, sort_by: Option<&str>) {
        match parse_filters(filters).and_then(|f| Query::compile(b, &f, AGENT_USER)) {
            Ok(q) => {
                let mut hits: Vec<&Wp> = b.wps.values().filter(|w| q.matches(b, w)).collect();
                if let Ok(keys) = parse_sort(sort_by) {
                    sort(b, &mut hits, &keys);
                }
            }
            Err(e) => assert_invalid_query(&e),
        }
        if let Err(e) = parse_sort(sort_by) {
            assert_invalid_query(&e);
        }
    }

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "status",
                "type",
                "assignee",
                "assigned_to",
                "parent",
                "project",
                "priority",
                "id",
                "updatedAt",
                "created_at",
                "subject",
                "subjectOrId",
                "blocked",
                "blocks",
                "customField1",
                "cf_1",
                "customField",
                "customField99999999999999999999",
                "",
            ])
            .prop_map(String::from),
            any::<String>(),
        ]
    }

    fn operator() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "o", "c", "=", "!", "*", "!*", "~", "!~", "**", "<>d", ">t-", "<t-", "t-", "=d",
                "t", "w", "",
            ])
            .prop_map(String::from),
            any::<String>(),
        ]
    }

    fn value() -> impl Strategy<Value = serde_json::Value> {
        prop_oneof![
            prop::sample::select(vec![
                "1",
                "2",
                "me",
                "-1",
                "0",
                "9223372036854775807",
                "-9223372036854775808",
                "18446744073709551616",
                "1e400",
                "2026-01-01",
                "2026-02-30",
                "+262143-12-31",
                "9999-12-31T23:59:59Z",
                "-262144-01-01",
                "#3",
                "",
            ])
            .prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<u64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            any::<String>().prop_map(serde_json::Value::from),
            Just(serde_json::Value::Null),
            Just(json!({"nested": true})),
        ]
    }

    fn filter() -> impl Strategy<Value = serde_json::Value> {
        (
            name(),
            prop::option::of(operator()),
            prop_oneof![
                Just(None),
                Just(Some(serde_json::Value::Null)),
                prop::collection::vec(value(), 0..3)
                    .prop_map(|v| Some(serde_json::Value::Array(v))),
                value().prop_map(Some),
            ],
        )
            .prop_map(|(name, operator, values)| {
                let mut spec = serde_json::Map::new();
                if let Some(op) = operator {
                    spec.insert("operator".into(), op.into());
                }
                if let Some(v) = values {
                    spec.insert("values".into(), v);
                }
                json!({ name: spec })
            })
    }

    proptest! {
        #![proptest_config(crate::fuzz_config(256))]

        #[test]
        fn arbitrary_filter_and_sort_strings_give_a_query_or_invalid_query(
            filters in prop::option::of(any::<String>()),
            sort_by in prop::option::of(any::<String>()),
        ) {
            run(&board(), filters.as_deref(), sort_by.as_deref());
        }

        #[test]
        fn structured_filters_give_a_query_or_invalid_query(
            filters in prop::collection::vec(filter(), 0..4),
            sort_keys in prop::collection::vec(
                prop::collection::vec(
                    prop_oneof![
                        prop::sample::select(vec!["id", "priority", "subject", "status", "type",
                            "parent", "updatedAt", "created_at", "asc", "desc", "nope"])
                            .prop_map(String::from),
                        any::<String>(),
                    ],
                    0..4,
                ),
                0..3,
            ),
        ) {
            let filters = serde_json::Value::Array(filters).to_string();
            let sort_by = serde_json::to_string(&sort_keys).unwrap();
            run(&board(), Some(&filters), Some(&sort_by));
        }

        #[test]
        fn arbitrary_page_size_and_offset_give_a_page_or_invalid_query(
            size in prop::option::of(prop_oneof![
                any::<i64>().prop_map(|n| n.to_string()),
                any::<u64>().prop_map(|n| n.to_string()),
                any::<String>(),
            ]),
            offset in prop::option::of(prop_oneof![
                any::<u64>().prop_map(|n| n.to_string()),
                any::<i64>().prop_map(|n| n.to_string()),
                any::<String>(),
            ]),
        ) {
            match page(size.as_deref(), offset.as_deref(), 20, 1000) {
                Ok((size, offset)) => {
                    prop_assert!(size <= 1000);
                    prop_assert!(offset >= 1);
                    // The index of the page's first element must not overflow either.
                    let first = first_index(offset, size);
                    prop_assert!(offset > 1 || first == 0);
                }
                Err(e) => assert_invalid_query(&e),
            }
        }
    }

    #[test]
    fn relative_date_filters_out_of_range_are_invalid_queries_not_panics() {
        let b = board();
        for op in [">t-", "<t-", "t-"] {
            for days in [
                "9223372036854775807",
                "-9223372036854775808",
                "106751991167",
                "-106751991167",
            ] {
                let raw = format!(r#"[{{"updatedAt":{{"operator":"{op}","values":["{days}"]}}}}]"#);
                let e = parse_filters(Some(&raw))
                    .and_then(|f| Query::compile(&b, &f, AGENT_USER))
                    .unwrap_err();
                assert_invalid_query(&e);
            }
        }
    }

    #[test]
    fn first_index_saturates_instead_of_overflowing() {
        assert_eq!(first_index(1, 1000), 0);
        assert_eq!(first_index(3, 20), 40);
        assert_eq!(first_index(0, 20), 0);
        assert_eq!(first_index(u64::MAX, 1000), usize::MAX);
    }
}
