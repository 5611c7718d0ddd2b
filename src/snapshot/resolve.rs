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
    let pod_field = pod_field(client, config, &repos, &work_types).await?;
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

/// The pod field's property key (`customFieldN`), from the schema of the first project and work
/// type.
async fn pod_field(
    client: &Client,
    config: &Config,
    repos: &BTreeMap<u64, RepoMapping>,
    work_types: &BTreeSet<u64>,
) -> anyhow::Result<String> {
    let name = &config.names.pod_field;
    let first_project = *repos
        .keys()
        .next()
        .ok_or_else(|| anyhow!("JOURNEYMAN_REPOS names no project"))?;
    let first_work_type = *work_types
        .iter()
        .next()
        .ok_or_else(|| anyhow!("JOURNEYMAN_WORK_TYPES is empty"))?;
    client
        .custom_field_key(first_project, first_work_type, name)
        .await
        .context("reading the work package schema")?
        .ok_or_else(|| {
            anyhow!(
                "custom field `{name}` (JOURNEYMAN_POD_FIELD) is not active for project {first_project}: create a string custom field with that name and enable it for the project and work types"
            )
        })
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
