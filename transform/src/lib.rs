//! Transform: the SQL models under `transform/models/` run as a DAG in one DataFusion session
//! over the warehouse's committed views, computing the indicators of
//! `../shared/spec/indicators.md` into the Delta table `indicators`.
//!
//! - [`model`]: the model files, their TOML headers (doc, depends, indicators, columns, data
//!   tests) and the dependency order;
//! - [`udf`]: local-time quarters and null-safe ratios;
//! - [`run`]: running the models, their data tests, and committing the outputs.

mod error;
pub mod model;
pub mod run;
pub mod udf;

pub use error::{Error, Result};
pub use run::{run, session, Report};
