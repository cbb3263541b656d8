//! Ids of the records Hoist keeps. Each is its own type, so a job id cannot be passed where a
//! release id is wanted.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<i64> for $name {
            fn from(id: i64) -> Self {
                Self(id)
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::num::ParseIntError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.trim().parse().map(Self)
            }
        }
    };
}

id!(
    /// A release: one ticket's pass to a deploy.
    ReleaseId
);
id!(
    /// A job in the queue.
    JobId
);
id!(
    /// An inbound webhook request as received.
    DeliveryId
);
id!(
    /// A release's pass into one environment.
    DeploymentId
);
