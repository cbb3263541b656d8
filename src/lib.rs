//! Hoist: Jira assignment -> Bitbucket tag -> CircleCI build -> Spinnaker deploy, with Slack told
//! at every step. See ARCHITECTURE.md for the map.
//!
//! Data flows in through `sources` (verify + parse) via `http`, is recorded in `store`, decided by
//! `pipeline` (pure), and carried out by `worker` jobs through `clients`.

pub mod app;
pub mod clients;
pub mod config;
pub mod domain;
pub mod http;
pub mod lambda;
pub mod pipeline;
pub mod server;
pub mod sources;
pub mod store;
pub mod worker;
