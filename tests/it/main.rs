//! End-to-end tests: they run the `plsw` binary on generated data and read the warehouse back.

mod api;
mod assess;
mod common;
mod generate;
mod indicators;
mod ingest;
mod kill;
#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod malloc;
mod pull;
mod sql;
