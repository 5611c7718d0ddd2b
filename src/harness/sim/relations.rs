//! The relations index, `GET /api/v3/relations`: filters, order, visibility, as OpenProject's query.
//!
//! Why it exists: the worker finds its blockers here, and on a real instance this list is paginated
//! (its `pageSize` capped), ordered by id, and leaves out every relation with an end the user cannot
//! see. Read from OpenProject's source:
//!
//! - `lib/api/v3/relations/relations_api.rb`: an `Index` endpoint with
//!   `RelationPaginatedCollectionRepresenter`: offset-paginated (`pageSize`, `offset`, `total`,
//!   `count`); errors are `InvalidQuery.new(query.errors.full_messages)`, so `message` is an ARRAY of
//!   strings here (as in `docs/api/apiv3/paths/relations.yml`'s example), unlike the work package
//!   list's single string.
//! - `app/models/queries/relations/relation_query.rb`: `Relation.direct` (no hierarchy), then
//!   `visible` (both ends visible, `app/models/relation.rb`) unless a filter already checked it.
//! - `app/models/queries/relations/filters/`: `id`, `from`, `to`, `involved` (either end; the other
//!   end must be visible, `visibility_checking.rb`) with `=` and `!`; `type` (`type_filter.rb`) whose
//!   values are the relation symbols and are read through `Relation.relation_column`, so
//!   `blocked` selects the stored `blocks` relations.
//! - `app/models/queries/relations/orders/default_order.rb`: sortable by `id`, `from`, `to`,
//!   `involved` and `type`; the default order is by id.

use std::cmp::Ordering;

use super::query::{self, Filter, Sort};
use super::state::{Board, Rel, SimError, canonical_relation};

/// Relation types a `type` filter accepts (`Relation::TYPES`).
const TYPES: &[&str] = &[
    "relates",
    "duplicates",
    "duplicated",
    "blocks",
    "blocked",
    "precedes",
    "follows",
    "includes",
    "partof",
    "requires",
    "required",
];

/// The relations `user` may see that match `filters` (the `filters` parameter, `[]` if absent), in
/// the order `sort_by` asks for. Errors are 400 `InvalidQuery` with the message as an array.
pub fn index<'b>(
    board: &'b Board,
    user: u64,
    filters: Option<&str>,
    sort_by: Option<&str>,
) -> Result<Vec<&'b Rel>, SimError> {
    let listed = |e: SimError| SimError {
        message_as_list: true,
        ..e
    };
    let filters = query::parse_filters(Some(filters.unwrap_or("[]"))).map_err(listed)?;
    let preds = filters
        .iter()
        .map(predicate)
        .collect::<Result<Vec<_>, _>>()
        .map_err(listed)?;
    let keys = sort_keys(sort_by).map_err(listed)?;
    let mut hits: Vec<&Rel> = board
        .relations
        .values()
        .filter(|r| board.relation_visible(user, r) && preds.iter().all(|p| p(r)))
        .collect();
    hits.sort_by(|a, b| compare(a, b, &keys));
    Ok(hits)
}

type Pred = Box<dyn Fn(&Rel) -> bool>;

fn predicate(f: &Filter) -> Result<Pred, SimError> {
    let negate = match f.operator.as_str() {
        "=" => false,
        "!" => true,
        _ => {
            return Err(SimError::invalid_query(format!(
                "Filters {} Operator is not set to one of the allowed values.",
                human(&f.name)
            )));
        }
    };
    let invalid = || {
        SimError::invalid_query(format!(
            "Filters {} filter has invalid values.",
            human(&f.name)
        ))
    };
    if f.values.is_empty() {
        return Err(invalid());
    }
    let pred: Pred = match f.name.as_str() {
        "type" => {
            // `Relation.relation_column`: a reverse symbol selects its canonical relations.
            let canonical = f
                .values
                .iter()
                .map(|v| {
                    TYPES
                        .contains(&v.as_str())
                        .then(|| canonical_relation(v, 0, 0).map(|(t, _, _)| t))
                        .flatten()
                        .ok_or_else(invalid)
                })
                .collect::<Result<Vec<&'static str>, _>>()?;
            Box::new(move |r| canonical.contains(&r.type_.as_str()))
        }
        name @ ("id" | "from" | "to" | "involved") => {
            let ids = f
                .values
                .iter()
                .map(|v| v.parse::<u64>().map_err(|_| invalid()))
                .collect::<Result<Vec<u64>, _>>()?;
            match name {
                "id" => Box::new(move |r| ids.contains(&r.id)),
                "from" => Box::new(move |r| ids.contains(&r.from)),
                "to" => Box::new(move |r| ids.contains(&r.to)),
                _ => Box::new(move |r| ids.contains(&r.from) || ids.contains(&r.to)),
            }
        }
        other => {
            return Err(SimError::invalid_query(format!(
                "Filters {} filter does not exist.",
                human(other)
            )));
        }
    };
    Ok(if negate {
        Box::new(move |r| !pred(r))
    } else {
        pred
    })
}

/// `sortBy` for relations; default `[["id","asc"]]`.
fn sort_keys(raw: Option<&str>) -> Result<Vec<Sort>, SimError> {
    query::parse_sort_by(raw, |field| {
        matches!(field, "id" | "from" | "to" | "involved" | "type").then(|| field.into())
    })
}

/// Orders by the keys, then by id (so pages are stable).
fn compare(a: &Rel, b: &Rel, keys: &[Sort]) -> Ordering {
    for key in keys {
        let ord = match key.field.as_str() {
            "from" | "involved" => a.from.cmp(&b.from),
            "to" => a.to.cmp(&b.to),
            "type" => a.type_.cmp(&b.type_),
            _ => a.id.cmp(&b.id),
        };
        let ord = if key.descending { ord.reverse() } else { ord };
        if ord.is_ne() {
            return ord;
        }
    }
    a.id.cmp(&b.id)
}

fn human(name: &str) -> String {
    let mut c = name.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::sim::state::tests::board_with;
    use crate::harness::sim::state::{ADMIN_USER, AGENT_USER};

    fn ids(b: &Board, filters: Option<&str>, sort: Option<&str>) -> Vec<u64> {
        index(b, AGENT_USER, filters, sort)
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect()
    }

    #[test]
    fn filters_sort_and_reverse_type_names_as_openproject() {
        let mut b = board_with(4);
        b.relate(ADMIN_USER, 1, 2, "blocks", None, None).unwrap(); // 1
        b.relate(ADMIN_USER, 3, 2, "relates", None, None).unwrap(); // 2
        b.relate(ADMIN_USER, 4, 3, "blocked", None, None).unwrap(); // 3: stored 3 blocks 4
        assert_eq!(ids(&b, None, None), [1, 2, 3]);
        assert_eq!(ids(&b, None, Some(r#"[["id","desc"]]"#)), [3, 2, 1]);
        let type_ = |t: &str| format!(r#"[{{"type":{{"operator":"=","values":["{t}"]}}}}]"#);
        assert_eq!(ids(&b, Some(&type_("blocks")), None), [1, 3]);
        assert_eq!(ids(&b, Some(&type_("blocked")), None), [1, 3]);
        assert_eq!(
            ids(
                &b,
                Some(r#"[{"involved":{"operator":"=","values":["3"]}}]"#),
                None
            ),
            [2, 3]
        );
        assert_eq!(
            ids(
                &b,
                Some(r#"[{"to":{"operator":"!","values":["2"]}}]"#),
                None
            ),
            [3]
        );
        let e = index(&b, AGENT_USER, Some(&type_("nope")), None).unwrap_err();
        assert_eq!(e.message, "Filters Type filter has invalid values.");
        assert!(
            e.message_as_list,
            "relations answer the message as an array"
        );
        assert!(index(&b, AGENT_USER, None, Some(r#"[["subject","asc"]]"#)).is_err());
    }
}
