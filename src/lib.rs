//! Hoist: Jira assignment -> Bitbucket tag -> CircleCI build -> Spinnaker deploy, with Slack told
//! at every step. See ARCHITECTURE.md for the map.
//!
//! Data flows in through `sources` (verify + parse) via `http`, is decided by `core` (pure),
//! recorded in `store`, and carried out by `worker` jobs through `clients`. `server` assembles
//! the parts; `lambda` runs them inside AWS Lambda.

pub mod clients;
pub mod config;
pub mod core;
pub mod domain;
pub mod http;
pub mod lambda;
pub mod metrics;
pub mod report;
pub mod requests;
pub mod server;
pub mod sources;
pub mod store;
pub mod worker;
