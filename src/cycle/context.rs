//! What a claimed work package's task is made of, read when it starts (never per cycle): its Epic
//! and parent story, the conversation so far (its trail, the Spikes filed for it with their
//! threads, the comments on its Epic and story), and this pod's last agent session on it.

use std::sync::Arc;

use anyhow::Context as _;

use super::Worker;
use crate::audit::{self, Context, History, SpikeThread};
use crate::board::{Snapshot, target};
use crate::openproject::hal;
use crate::task::{Execute, Start, Task};

impl<E: Execute> Worker<E> {
    /// The task for a work package this pod now holds.
    pub(super) async fn task(
        &self,
        snap: &Snapshot,
        wp: hal::WorkPackage,
        start: Start,
        history: Arc<History>,
    ) -> anyhow::Result<Task> {
        let r = self.resolved();
        let project = wp
            .links
            .project
            .id()
            .context("work package without a project link")?;
        let repo =
            r.repos.get(&project).cloned().with_context(|| {
                format!("project {project} is not configured in JOURNEYMAN_REPOS")
            })?;
        let t = target(snap, &r.catalog, wp.id);
        let epic = self.read_optional(t.epic, "Epic").await?;
        let story = self.read_optional(t.story, "parent").await?;
        let spikes = self.spikes(&wp).await;
        let mut context = Vec::new();
        for (label, ticket) in [("Epic", &epic), ("story", &story)] {
            if let Some(t) = ticket {
                context.push((format!("{label} #{}", t.id), self.trail(t.id).await));
            }
        }
        let context: Vec<Context<'_>> = context
            .iter()
            .map(|(label, history)| Context {
                label: label.clone(),
                history,
            })
            .collect();
        let conversation =
            audit::conversation(wp.id, &history, &spikes, &context, start == Start::Rework);
        Ok(Task {
            last_session: history.last_session_of(&self.pod),
            conversation,
            wp,
            epic,
            story,
            repo,
            start,
            pod: self.pod.clone(),
            history,
            stop: Default::default(),
            new_comments: Default::default(),
        })
    }

    async fn read_optional(
        &self,
        id: Option<u64>,
        what: &str,
    ) -> anyhow::Result<Option<hal::WorkPackage>> {
        match id {
            Some(id) => Ok(Some(
                self.client()
                    .work_package(id)
                    .await
                    .with_context(|| format!("reading {what} #{id}"))?,
            )),
            None => Ok(None),
        }
    }

    /// A ticket's trail; one that cannot be read is left out of the conversation (with a warning).
    async fn trail(&self, id: u64) -> History {
        match self.client().activities(id).await {
            Ok(acts) => History::from_activities(&acts),
            Err(e) => {
                tracing::warn!(wp = id, error = %e, "cannot read a trail for the conversation");
                History::default()
            }
        }
    }

    /// The Spikes filed for the work package (its Spike children, open or closed), with their
    /// threads.
    async fn spikes(&self, wp: &hal::WorkPackage) -> Vec<SpikeThread> {
        let r = self.resolved();
        let mut out = Vec::new();
        for child in wp.links.children.iter().filter_map(hal::Link::id) {
            let Ok(c) = self.client().work_package(child).await else {
                continue;
            };
            if c.links.type_.id() != Some(r.spike_type) {
                continue;
            }
            let status = c.links.status.id().unwrap_or(0);
            out.push(SpikeThread {
                id: c.id,
                subject: c.subject.clone(),
                description: c.description_raw().to_string(),
                status: r.status_name(status),
                closed: r.catalog.closed_statuses.contains(&status),
                history: self.trail(c.id).await,
            });
        }
        out
    }
}
