//! Prometheus metrics (SPEC 15), served at `GET /metrics` in the OpenMetrics text format.
//!
//! Built on `prometheus-client` (the Prometheus project's own Rust client): a typed registry
//! whose families are values held here, not process globals, so each Hoist (a test runs many in
//! one process) counts its own; label sets are structs, so a label cannot be misspelt at one call
//! site; and its encoder writes the OpenMetrics text that Prometheus scrapes natively. It is small
//! (no exporter, no HTTP server of its own: `http/metrics.rs` serves the text).
//!
//! Labels are bounded by the configuration (projects, environments) or by Hoist's own words
//! (sources, outcomes, steps, services, HTTP statuses). No ticket key, commit, tag or release id
//! is ever a label: those are per-release and would grow a series per release.
//!
//! Every count is made after the store committed what it counts (a hook's answer, a job's end);
//! counting cannot fail, so it never fails a request or a job.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use crate::domain::{JobState, Millis};

/// The media type of what [`Metrics::encode`] writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The services Hoist calls out to, as `hoist_outbound_requests_total` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Bitbucket,
    Circleci,
    Spinnaker,
    Slack,
    Jira,
}

impl Service {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bitbucket => "bitbucket",
            Self::Circleci => "circleci",
            Self::Spinnaker => "spinnaker",
            Self::Slack => "slack",
            Self::Jira => "jira",
        }
    }
}

/// The steps whose durations `hoist_step_duration_seconds` records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Ticket received to tagged.
    Tag,
    /// Tagged to the build's end (CircleCI's build and the wait for its webhook).
    Build,
    /// A deployment's trigger accepted to its end in Spinnaker.
    Deploy,
}

impl Step {
    fn as_str(self) -> &'static str {
        match self {
            Self::Tag => "tag",
            Self::Build => "build",
            Self::Deploy => "deploy",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HookLabels {
    source: &'static str,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReleaseLabels {
    project: String,
    environment: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabels {
    step: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EnvLabels {
    project: String,
    environment: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutboundLabels {
    service: &'static str,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Steps take from a fraction of a second (a tag) to an hour (a slow deploy).
fn step_histogram() -> Histogram {
    Histogram::new([
        0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0,
        3600.0,
    ])
}

/// Lead times run from minutes (a ticket deployed at once) to weeks (a release held for prod).
fn lead_time_histogram() -> Histogram {
    Histogram::new([
        10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0,
        172800.0, 604800.0, 1209600.0,
    ])
}

/// The job states `hoist_jobs` reports: the work still to do, and what needs a person.
pub const JOB_STATES: [JobState; 3] = [JobState::Queued, JobState::Running, JobState::Failed];

struct Families {
    registry: Registry,
    webhooks: Family<HookLabels, Counter>,
    releases: Family<ReleaseLabels, Counter>,
    steps: Histograms<StepLabels>,
    lead_time: Histograms<EnvLabels>,
    jobs: Family<JobLabels, Gauge>,
    outbound: Family<OutboundLabels, Counter>,
}

/// One Hoist's metrics; clones share them.
#[derive(Clone)]
pub struct Metrics(Arc<Families>);

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        // Counters are registered without `_total`: the encoder adds it to each sample.
        let webhooks = Family::<HookLabels, Counter>::default();
        registry.register(
            "hoist_webhooks",
            "Webhook requests by source and outcome (accepted, duplicate, ignored, refused:<code>)",
            webhooks.clone(),
        );
        let releases = Family::<ReleaseLabels, Counter>::default();
        registry.register(
            "hoist_releases",
            "Releases and deployments that ended, by project, environment and outcome",
            releases.clone(),
        );
        let steps: Histograms<StepLabels> = Family::new_with_constructor(step_histogram);
        registry.register_with_unit(
            "hoist_step_duration",
            "Duration of a release's steps as recorded (tag, build, deploy)",
            Unit::Seconds,
            steps.clone(),
        );
        let lead_time: Histograms<EnvLabels> = Family::new_with_constructor(lead_time_histogram);
        registry.register_with_unit(
            "hoist_lead_time",
            "Ticket received to deployed, per project and environment",
            Unit::Seconds,
            lead_time.clone(),
        );
        let jobs = Family::<JobLabels, Gauge>::default();
        registry.register(
            "hoist_jobs",
            "Jobs in the queue by state, read from the store when scraped",
            jobs.clone(),
        );
        for state in JOB_STATES {
            jobs.get_or_create(&JobLabels {
                state: state.as_str(),
            })
            .set(0);
        }
        let outbound = Family::<OutboundLabels, Counter>::default();
        registry.register(
            "hoist_outbound_requests",
            "Calls to other services by service and HTTP status (`error`: no answer)",
            outbound.clone(),
        );
        // An info metric: encoded as `hoist_build_info{version="..."} 1`.
        registry.register(
            "hoist_build",
            "The running Hoist",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            }),
        );
        Self(Arc::new(Families {
            registry,
            webhooks,
            releases,
            steps,
            lead_time,
            jobs,
            outbound,
        }))
    }

    /// A webhook answered: its source (`jira`, `circleci`, `bitbucket`, `slack`) and outcome.
    pub fn webhook(&self, source: &'static str, outcome: &str) {
        self.0
            .webhooks
            .get_or_create(&HookLabels {
                source,
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// A release or deployment ended with `outcome` (`deployed`, `deploy_failed`, ...).
    pub fn ended(&self, project: &str, env: &str, outcome: &'static str) {
        self.0
            .releases
            .get_or_create(&ReleaseLabels {
                project: project.to_string(),
                environment: env.to_string(),
                outcome,
            })
            .inc();
    }

    /// A step took `ms`.
    pub fn step(&self, step: Step, ms: Millis) {
        self.0
            .steps
            .get_or_create(&StepLabels {
                step: step.as_str(),
            })
            .observe(secs(ms));
    }

    /// A deployment of a ticket's work reached `deployed` `ms` after the ticket.
    pub fn lead_time(&self, project: &str, env: &str, ms: Millis) {
        self.0
            .lead_time
            .get_or_create(&EnvLabels {
                project: project.to_string(),
                environment: env.to_string(),
            })
            .observe(secs(ms));
    }

    /// A call to `service` answered `status` (`None`: no answer: a timeout, a dropped
    /// connection).
    pub fn outbound(&self, service: Service, status: Option<u16>) {
        let status = status.map_or_else(|| "error".to_string(), |s| s.to_string());
        self.0
            .outbound
            .get_or_create(&OutboundLabels {
                service: service.as_str(),
                status,
            })
            .inc();
    }

    /// The queue's jobs in each of [`JOB_STATES`], as the store counted them.
    pub fn set_jobs(&self, counts: &[(JobState, i64)]) {
        for state in JOB_STATES {
            let n = counts
                .iter()
                .find(|(s, _)| *s == state)
                .map_or(0, |(_, n)| *n);
            self.0
                .jobs
                .get_or_create(&JobLabels {
                    state: state.as_str(),
                })
                .set(n);
        }
    }

    /// Every family in the OpenMetrics text format ([`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.0.registry);
        out
    }
}

fn secs(ms: Millis) -> f64 {
    ms.max(0) as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_named_as_prometheus_expects() {
        let m = Metrics::new();
        m.webhook("jira", "accepted");
        m.ended("payments-api", "stg", "deployed");
        m.step(Step::Deploy, 1500);
        m.lead_time("payments-api", "stg", 90_000);
        m.outbound(Service::Bitbucket, Some(200));
        m.outbound(Service::Slack, None);
        m.set_jobs(&[(JobState::Queued, 3), (JobState::Done, 100)]);
        let text = m.encode();
        for line in [
            "# TYPE hoist_webhooks counter",
            "hoist_webhooks_total{source=\"jira\",outcome=\"accepted\"} 1",
            "hoist_releases_total{project=\"payments-api\",environment=\"stg\",outcome=\"deployed\"} 1",
            "# TYPE hoist_step_duration_seconds histogram",
            "hoist_step_duration_seconds_bucket{le=\"2.5\",step=\"deploy\"} 1",
            "hoist_lead_time_seconds_sum{project=\"payments-api\",environment=\"stg\"} 90.0",
            "# TYPE hoist_jobs gauge",
            "hoist_jobs{state=\"queued\"} 3",
            "hoist_jobs{state=\"failed\"} 0",
            "hoist_outbound_requests_total{service=\"bitbucket\",status=\"200\"} 1",
            "hoist_outbound_requests_total{service=\"slack\",status=\"error\"} 1",
            "# TYPE hoist_build info",
            "hoist_build_info{version=\"",
            "# EOF",
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
        assert!(!text.contains("state=\"done\""), "{text}");
    }
}
