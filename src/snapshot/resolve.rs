//! Resolving the configured board names to ids, once at start-up: statuses, types, priorities,
//! projects, the pod field and the agent user. Every missing name is a clear error naming the
//! variable that holds it, and the list of what the board does have.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, anyhow, bail};

use crate::board::Catalog;
use crate::config::{Config, RepoMapping};
use crate::openproject::{Client, hal};

/// Everything resolved from the board at start-up.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub catalog: Catalog,
    /// The property key of the pod field, e.g. `customField3`.
    pub pod_field: String,
    /// The agent user (`users/me`), set as assignee on claims.
    pub agent_user: u64,
    pub agent_name: String,
    /// Project id -> its repository mapping (the allowlist).
    pub repos: BTreeMap<u64, RepoMapping>,
    pub ready_status: u64,
    pub spike_type: u64,
    /// Status and type names by id, for what the worker writes (a refused transition names them).
    pub status_names: BTreeMap<u64, String>,
    pub type_names: BTreeMap<u64, String>,
}

impl Resolved {
    pub fn status_name(&self, id: u64) -> String {
        self.status_names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("status {id}"))
    }

    /// The status a worker closes a Spike with: the closed status named `Closed` (OpenProject's
    /// default), else the first closed one.
    pub fn close_status(&self) -> u64 {
        let closed = &self.catalog.closed_statuses;
        closed
            .iter()
            .copied()
            .find(|id| self.status_names.get(id).is_some_and(|n| n == "Closed"))
            .or_else(|| closed.iter().next().copied())
            .unwrap_or(self.ready_status)
    }

    pub fn type_name(&self, id: u64) -> String {
        self.type_names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("type {id}"))
    }
}

/// The board's statuses and types, looked up by the configured names.
struct Names {
    statuses: Vec<hal::Status>,
    types: Vec<hal::Type>,
}

impl Names {
    fn status(&self, name: &str, var: &str) -> anyhow::Result<u64> {
        let all = self.statuses.iter().map(|s| (s.id, &s.name));
        find(("status", "statuses"), all, name, var)
    }

    fn type_(&self, name: &str, var: &str) -> anyhow::Result<u64> {
        find(
            ("type", "types"),
            self.types.iter().map(|t| (t.id, &t.name)),
            name,
            var,
        )
    }

    fn statuses<'a>(
        &self,
        names: impl IntoIterator<Item = &'a String>,
        var: &str,
    ) -> anyhow::Result<BTreeSet<u64>> {
        names.into_iter().map(|n| self.status(n, var)).collect()
    }
}

/// Resolves every configured name against the board.
pub async fn resolve(client: &Client, config: &Config) -> anyhow::Result<Resolved> {
    let names = &config.names;
    let me = client
        .me()
        .await
        .context("reading the agent user (GET /api/v3/users/me)")?;
    let board = Names {
        statuses: client.statuses().await.context("reading statuses")?,
        types: client.types().await.context("reading types")?,
    };
    let priorities = client.priorities().await.context("reading priorities")?;
    let work_types = names
        .work_types
        .iter()
        .map(|n| board.type_(n, "JOURNEYMAN_WORK_TYPES"))
        .collect::<anyhow::Result<BTreeSet<u64>>>()?;
    let repos = projects(client, config).await?;
    let epic_type = board.type_(&names.epic_type, "JOURNEYMAN_EPIC_TYPE")?;
    let claimable: BTreeSet<u64> = work_types.iter().copied().chain([epic_type]).collect();
    let pod_field = pod_field(client, config, &repos, &claimable, &board).await?;
    let catalog = Catalog {
        ready_statuses: board.statuses(&names.ready_statuses, "JOURNEYMAN_READY_STATUSES")?,
        active_status: board.status(&names.active_status, "JOURNEYMAN_ACTIVE_STATUS")?,
        done_status: board.status(&names.done_status, "JOURNEYMAN_DONE_STATUS")?,
        done_by_type: names
            .done_by_type
            .iter()
            .map(|(ty, status)| {
                Ok((
                    board.type_(ty, "JOURNEYMAN_DONE_STATUS")?,
                    board.status(status, "JOURNEYMAN_DONE_STATUS")?,
                ))
            })
            .collect::<anyhow::Result<_>>()?,
        closed_statuses: board
            .statuses
            .iter()
            .filter(|s| s.is_closed)
            .map(|s| s.id)
            .collect(),
        work_types,
        bug_type: board.type_(&names.bug_type, "JOURNEYMAN_BUG_TYPE")?,
        epic_type: board.type_(&names.epic_type, "JOURNEYMAN_EPIC_TYPE")?,
        phase_type: board.type_(&names.phase_type, "JOURNEYMAN_PHASE_TYPE")?,
        spike_type: board.type_(&names.spike_type, "JOURNEYMAN_SPIKE_TYPE")?,
        priority_rank: priorities.iter().map(|p| (p.id, p.position)).collect(),
        projects: repos.keys().copied().collect(),
    };
    Ok(Resolved {
        status_names: board
            .statuses
            .iter()
            .map(|s| (s.id, s.name.clone()))
            .collect(),
        type_names: board.types.iter().map(|t| (t.id, t.name.clone())).collect(),
        spike_type: catalog.spike_type,
        ready_status: board.status(&names.ready_statuses[0], "JOURNEYMAN_READY_STATUSES")?,
        catalog,
        pod_field,
        agent_user: me.id,
        agent_name: me.name,
        repos,
    })
}

/// The projects of `JOURNEYMAN_REPOS`, by id.
async fn projects(client: &Client, config: &Config) -> anyhow::Result<BTreeMap<u64, RepoMapping>> {
    let mut repos = BTreeMap::new();
    for r in &config.repos {
        let p = client
            .project(&r.project)
            .await
            .with_context(|| format!("project `{}` from JOURNEYMAN_REPOS", r.project))?;
        repos.insert(p.id, r.clone());
    }
    Ok(repos)
}

/// The pod field's property key (`customFieldN`): it must be a string field active, under the same
/// key, for every configured project with every work type and the Epic type, since any of them may
/// be claimed or owned (a Long text field would be a `{format, raw, html}` object on the wire).
async fn pod_field(
    client: &Client,
    config: &Config,
    repos: &BTreeMap<u64, RepoMapping>,
    types: &BTreeSet<u64>,
    board: &Names,
) -> anyhow::Result<String> {
    let name = &config.names.pod_field;
    if repos.is_empty() || types.is_empty() {
        bail!("JOURNEYMAN_REPOS and JOURNEYMAN_WORK_TYPES must name at least one project and type");
    }
    let type_name = |id: &u64| {
        board
            .types
            .iter()
            .find(|t| t.id == *id)
            .map_or_else(|| format!("type {id}"), |t| t.name.clone())
    };
    let mut key: Option<String> = None;
    let mut problems = Vec::new();
    for (project, repo) in repos {
        for ty in types {
            let place = format!("project `{}` with type `{}`", repo.project, type_name(ty));
            match client
                .custom_field(*project, *ty, name)
                .await
                .with_context(|| format!("reading the work package schema of {place}"))?
            {
                None => problems.push(format!("it is not active for {place}")),
                Some((_, format)) if format != "String" => problems.push(format!(
                    "it is a `{format}` field for {place}; it must be a plain string (Text) custom field"
                )),
                Some((k, _)) if key.as_ref().is_some_and(|known| *known != k) => {
                    problems.push(format!("it is `{k}` for {place} but `{}` elsewhere", key.clone().unwrap_or_default()));
                }
                Some((k, _)) => key = Some(k),
            }
        }
    }
    match key {
        Some(k) if problems.is_empty() => Ok(k),
        _ => bail!(
            "custom field `{name}` (JOURNEYMAN_POD_FIELD): {}. Create one string custom field with that name and enable it for every configured project and for the work types and the Epic type",
            problems.join("; ")
        ),
    }
}

/// The id of the `kind` named `name` (configured in `var`), or an error listing what exists.
fn find<'a>(
    (kind, kinds): (&str, &str),
    all: impl Iterator<Item = (u64, &'a String)> + Clone,
    name: &str,
    var: &str,
) -> anyhow::Result<u64> {
    if let Some((id, _)) = all.clone().find(|(_, n)| *n == name) {
        return Ok(id);
    }
    let names: Vec<String> = all.map(|(_, n)| format!("`{n}`")).collect();
    Err(anyhow!(
        "{kind} `{name}` ({var}) does not exist on the board; {kinds} are: {}",
        names.join(", ")
    ))
}

/// Checks a resolved configuration for contradictions the board reveals (used by `doctor` too).
pub fn sanity(resolved: &Resolved) -> anyhow::Result<()> {
    let c = &resolved.catalog;
    if c.closed_statuses.contains(&c.active_status) {
        bail!(
            "the active status is a closed status on the board: work would look finished when claimed"
        );
    }
    if c.ready_statuses
        .iter()
        .any(|s| c.closed_statuses.contains(s))
    {
        bail!("a ready status is a closed status on the board (JOURNEYMAN_READY_STATUSES)");
    }
    Ok(())
}
