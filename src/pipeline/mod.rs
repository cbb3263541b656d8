//! Pure decisions: which version comes next, what the deploy parameters are, what Slack is told.
//! No I/O here, so nothing can fail but logic.

pub mod notify;
pub mod params;
pub mod version;
