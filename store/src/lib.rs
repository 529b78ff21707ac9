//! The warehouse: Delta Lake tables on an object-store location, the commit protocol that makes
//! a load all-or-nothing across tables, and the catalog that registers every table and view in
//! a DataFusion `SessionContext`.
//!
//! ## The commit protocol (see `docs/exactly-once.md`)
//! Delta commits are atomic per table, not across tables. A load therefore stages its raw rows
//! and its quarantined rows as Parquet files ([`TableWriter::finish`]), commits them (several
//! loads' files in one commit, [`Warehouse::commit_staged`]) with a Delta application transaction
//! per load (`txn { appId: load_id }`) so that a rerun can tell the write already happened, and
//! commits its row in `loads` **last**, as the marker. Every view analysts see keeps only rows whose
//! `load_id` has a committed `loads` row, so a load killed at any instant is invisible, and the
//! rerun (same content, same `load_id`) completes it without writing anything twice.

mod catalog;
mod divisions;
mod error;
mod files;
mod states;
mod store;
mod txns;

pub use catalog::{
    register_all, register_all_with, sql_text, without_metadata, Access, CURRENT_SUFFIX,
};
pub use divisions::{Divisions, PROVINCE_CODE};
pub use error::{Error, Result};
pub use states::{refresh as refresh_states, Refreshed, StateFile, STATES_DIR};
pub use store::{BackgroundWriter, LoadBook, LoadRecord, Staged, TableWriter, Warehouse};
