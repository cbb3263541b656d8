//! The vocabulary every layer shares: ids, names, commits, versions and tag schemes, parameter
//! templates, and the records Hoist keeps. The types here hold only valid values: a string is
//! parsed into one of them once, at the edge where it arrives (configuration, a webhook, a vendor's
//! answer, a stored row), and travels as that type afterwards.

mod commit;
mod ids;
mod names;
mod records;
mod template;
mod time;
mod version;

pub use commit::{CommitSha, FoundCommit, short_sha};
pub use ids::{DeliveryId, DeploymentId, JobId, ReleaseId};
pub use names::{EnvName, NameError, ProjectName, TagName};
pub use records::{
    Approval, Delivery, DeliveryKey, Deployment, DeploymentKind, DeploymentStatus, Execution,
    JobAttempt, JobRecord, JobState, KnownTag, NewDelivery, NewRelease, Release, ReleaseEvent,
    ReleaseStatus, RepoTag, Source, Stage, TagOrigin, Via,
};
pub use template::{NAMES as TEMPLATE_NAMES, Template};
pub use time::{Millis, now_ms};
pub use version::{Allocation, Bump, SchemeError, TagScheme, Version};
