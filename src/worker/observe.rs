//! Counting what a job's committed plan ended, for `/metrics`: steps (tag, build, deploy) with
//! their durations, releases and deployments that ended with their outcome, and lead times.
//!
//! The plan names what ended by id; the times and names are read back from the records the
//! commit wrote (a read per ending, a few per release), so the numbers are the stored ones. A
//! read that fails costs only the count: it never fails the job, whose work is committed.

use crate::core::plan::{Changes, DeploymentChange, ReleaseChange};
use crate::domain::{DeploymentId, DeploymentKind, DeploymentStatus, ReleaseId};
use crate::metrics::{Metrics, Step};
use crate::store::Store;

/// The ends a plan holds.
#[derive(Debug, Default)]
pub(super) struct Ends {
    releases: Vec<(ReleaseId, ReleaseEnd)>,
    deployments: Vec<DeploymentId>,
}

#[derive(Debug, Clone, Copy)]
enum ReleaseEnd {
    Tagged,
    Built { success: bool },
    Failed,
}

impl Ends {
    pub(super) fn of(changes: &Changes) -> Self {
        let releases = changes
            .releases
            .iter()
            .filter_map(|(id, c)| {
                let end = match c {
                    ReleaseChange::Tagged { .. } => ReleaseEnd::Tagged,
                    ReleaseChange::Built { success, .. } => ReleaseEnd::Built { success: *success },
                    ReleaseChange::Failed { .. } => ReleaseEnd::Failed,
                    _ => return None,
                };
                Some((*id, end))
            })
            .collect();
        let deployments = changes
            .deployments
            .iter()
            .filter(|(_, c)| matches!(c, DeploymentChange::Finished { .. }))
            .map(|(id, _)| *id)
            .collect();
        Self {
            releases,
            deployments,
        }
    }

    /// Counts the ends, once the plan is committed.
    pub(super) async fn count(self, store: &Store, metrics: &Metrics) {
        for (id, end) in self.releases {
            if let Err(e) = release_end(store, metrics, id, end).await {
                tracing::debug!(release.id = id.0, error = %e, "not counted in the metrics");
            }
        }
        for id in self.deployments {
            if let Err(e) = deployment_end(store, metrics, id).await {
                tracing::debug!(deployment.id = id.0, error = %e, "not counted in the metrics");
            }
        }
    }
}

async fn release_end(
    store: &Store,
    m: &Metrics,
    id: ReleaseId,
    end: ReleaseEnd,
) -> crate::store::Result<()> {
    let Some(r) = store.release(id).await? else {
        return Ok(());
    };
    match end {
        ReleaseEnd::Tagged => {
            if let Some(at) = r.tagged_at {
                m.step(Step::Tag, at - r.received_at);
            }
        }
        ReleaseEnd::Built { success } => {
            if let (Some(tagged), Some(built)) = (r.tagged_at, r.built_at) {
                m.step(Step::Build, built - tagged);
            }
            if !success {
                m.ended(r.project.as_str(), r.env.as_str(), "build_failed");
            }
        }
        ReleaseEnd::Failed => m.ended(r.project.as_str(), r.env.as_str(), "failed"),
    }
    Ok(())
}

async fn deployment_end(store: &Store, m: &Metrics, id: DeploymentId) -> crate::store::Result<()> {
    let Some(d) = store.deployment(id).await? else {
        return Ok(());
    };
    let Some(finished) = d.finished_at else {
        return Ok(());
    };
    let outcome = match (d.triggered_at, d.status) {
        // Called off, its tag's build failed, or its trigger never sent: nothing was deployed.
        (None, _) => "not_triggered",
        (Some(_), DeploymentStatus::Deployed) => "deployed",
        (Some(_), DeploymentStatus::NotStarted) => "deploy_not_started",
        (Some(_), DeploymentStatus::TimedOut) => "deploy_timed_out",
        (Some(_), _) => "deploy_failed",
    };
    m.ended(d.project.as_str(), d.env.as_str(), outcome);
    if let Some(triggered) = d.triggered_at {
        m.step(Step::Deploy, finished - triggered);
    }
    // The lead time of the ticket's work: rollbacks redeploy older work (as in the DORA figures).
    if d.status == DeploymentStatus::Deployed
        && d.kind != DeploymentKind::Rollback
        && let Some(r) = store.release(d.release).await?
    {
        m.lead_time(d.project.as_str(), d.env.as_str(), finished - r.received_at);
    }
    Ok(())
}
