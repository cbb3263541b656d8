//! Lambda mode (issue 6): the real `hoist lambda` process against a local Lambda Runtime API
//! (`hoist_sim::lambda`), fed with the API Gateway and function URL samples in `fixtures/`,
//! asserting its answers and what the simulated vendors saw.

mod events;
mod flows;
mod harness;
mod runtime;
