//! Errors of the warehouse layer, grouped by who is at fault.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configured location cannot be used (the user's to fix).
    #[error("warehouse location {location:?} is not usable: {reason}")]
    Location { location: String, reason: String },

    /// A seed or division file is malformed (the user's to fix).
    #[error("divisions in {path}: {message}")]
    Divisions { path: PathBuf, message: String },

    /// A table's stored schema is not what this version of plsw expects.
    #[error("table {table} has an unexpected schema: {message}")]
    Schema { table: String, message: String },

    /// The Delta layer failed (storage, log, commit).
    #[error("delta table {table}: {source}")]
    Delta {
        table: String,
        #[source]
        source: Box<deltalake::DeltaTableError>,
    },

    /// A write to a warehouse pinned at past versions ([`crate::Warehouse::at`]), or a read of a
    /// table at a version it never had.
    #[error("{0}")]
    Pinned(String),

    /// Query execution failed inside the warehouse itself.
    #[error(transparent)]
    DataFusion(Box<datafusion::error::DataFusionError>),

    /// Writing a current state (a cache beside the tables, see `states`) failed.
    #[error("current state of {table}: {message}")]
    State { table: String, message: String },

    /// A writer running on a task of its own panicked or was cancelled.
    #[error("writing table {table}: {message}")]
    Background { table: String, message: String },

    /// Opening a table on a task of its own panicked or was cancelled.
    #[error("opening table {table}: {message}")]
    Opening { table: String, message: String },

    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn delta(table: &str) -> impl FnOnce(deltalake::DeltaTableError) -> Error + '_ {
        move |source| Error::Delta {
            table: table.to_string(),
            source: Box::new(source),
        }
    }
}

impl From<datafusion::error::DataFusionError> for Error {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        Error::DataFusion(Box::new(e))
    }
}
