//! Integration tests: the real server on loopback, a real store (a fresh SQLite file per test, or
//! a fresh PostgreSQL database per test when HOIST_TEST_PG is set), and the simulators.

mod arbitrary;
mod bad_input;
mod browser;
mod build_to_deploy;
mod cli;
mod deploys;
mod durability;
mod exposure;
mod faults;
mod following;
mod hostile;
mod ingest;
mod insight;
mod limits;
mod metrics;
mod missed;
mod process;
mod promotion;
mod pushes;
mod road;
mod ticket_to_tag;
mod util;
mod worker;
