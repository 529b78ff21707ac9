//! Transform: the SQL models under `transform/models/` run as a DAG on DataFusion, computing
//! the indicators of `../shared/spec/indicators.md` into Delta tables.
//!
//! Issue [C] builds it; until then the crate holds no code and nothing depends on it.
