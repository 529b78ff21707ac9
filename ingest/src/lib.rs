//! Ingest: source files → validated Arrow batches → committed Delta tables, with every rejected
//! record quarantined with its reason, exactly once per file content.
//!
//! `load_paths` is the entry point: it resolves PATH arguments, and for each file computes the
//! load id from feed, content and as-of date, skips a file loaded before, streams its records
//! (CSV in UTF-8 or GB18030, or XLSX) through the feed's rules in bounded memory, and commits.
//! `pull::pull_work_orders` does the same for the work-order API, incrementally from a watermark.

mod batch;
mod error;
pub mod feeds;
mod load;
pub mod parse;
pub mod pull;
mod reader;
pub mod source;
pub mod work_orders;
mod xlsx;

pub use error::{Error, Result};
pub use feeds::Feed;
pub use load::{load_id, load_paths, FileReport, LoadOptions, Outcome};
