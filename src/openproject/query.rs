//! What a list request asks for: filters, sorting, the project and the page, rendered as
//! OpenProject's query parameters.
//!
//! Pure: the endpoints turn these into requests. Always sends `filters`, even empty, because its
//! absence means "open work packages only" (API-NOTES section 1).

use serde_json::{Value, json};

/// One filter of a list query: `{"status": {"operator": "o", "values": []}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub name: String,
    pub operator: String,
    pub values: Vec<String>,
}

impl Filter {
    pub fn new(
        name: &str,
        operator: &str,
        values: impl IntoIterator<Item = impl ToString>,
    ) -> Filter {
        Filter {
            name: name.into(),
            operator: operator.into(),
            values: values.into_iter().map(|v| v.to_string()).collect(),
        }
    }

    /// Renders filters as OpenProject's JSON array. An empty slice renders `[]`, which means "no
    /// filter"; omitting the parameter would mean "open work packages only" (API-NOTES section 1).
    pub fn to_json(filters: &[Filter]) -> String {
        Value::Array(
            filters
                .iter()
                .map(|f| json!({ &f.name: { "operator": f.operator, "values": f.values } }))
                .collect(),
        )
        .to_string()
    }
}

/// A work package list query.
#[derive(Debug, Clone, Default)]
pub struct WorkPackageQuery {
    /// Restrict to one project (`/api/v3/projects/{id}/work_packages`).
    pub project: Option<u64>,
    pub filters: Vec<Filter>,
    /// `[["field", "asc"|"desc"], ...]`; empty means the server default (`id asc`).
    pub sort_by: Vec<(String, String)>,
    /// Overrides the client's page size (e.g. 1 for a cheap probe).
    pub page_size: Option<u32>,
}

impl WorkPackageQuery {
    /// The collection the query reads: one project's work packages, or everyone's.
    pub(super) fn path(&self) -> String {
        match self.project {
            Some(p) => format!("api/v3/projects/{p}/work_packages"),
            None => "api/v3/work_packages".to_string(),
        }
    }

    /// The query parameters of one page.
    pub(super) fn params(&self, page_size: u32, offset: u64) -> Vec<(&'static str, String)> {
        list_params(&self.filters, &self.sort_by, page_size, offset)
    }
}

/// The query parameters of one page of any list: filters, page size, the 1-based page number
/// (`offset`) and, unless empty, the sort order.
pub(super) fn list_params(
    filters: &[Filter],
    sort_by: &[(String, String)],
    page_size: u32,
    offset: u64,
) -> Vec<(&'static str, String)> {
    let mut query = vec![
        ("filters", Filter::to_json(filters)),
        ("pageSize", page_size.to_string()),
        ("offset", offset.to_string()),
    ];
    if !sort_by.is_empty() {
        let sort: Vec<[&str; 2]> = sort_by
            .iter()
            .map(|(f, d)| [f.as_str(), d.as_str()])
            .collect();
        query.push(("sortBy", serde_json::to_string(&sort).unwrap_or_default()));
    }
    query
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_render_as_openproject_json() {
        assert_eq!(Filter::to_json(&[]), "[]");
        let f = [
            Filter::new("status", "o", Vec::<String>::new()),
            Filter::new("type", "=", [1, 2]),
        ];
        assert_eq!(
            Filter::to_json(&f),
            r#"[{"status":{"operator":"o","values":[]}},{"type":{"operator":"=","values":["1","2"]}}]"#
        );
    }
}
