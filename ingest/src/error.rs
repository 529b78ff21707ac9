//! Errors of ingest. File-level errors (the file is the user's to fix) reject one file and the
//! command goes on with the others; warehouse errors stop the command.

use std::path::{Path, PathBuf};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    // --- the input's fault: the file is rejected as a whole ---
    #[error("{path}: {message}")]
    Path { path: String, message: String },

    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{}: {message}", path.display())]
    Encoding { path: PathBuf, message: String },

    #[error("{}: {message}", path.display())]
    Read { path: PathBuf, message: String },

    #[error("{}: missing required column(s) {columns}; the header has: {found}", path.display())]
    MissingColumns {
        path: PathBuf,
        columns: String,
        found: String,
    },

    // --- the caller's fault ---
    #[error("{0}")]
    Usage(String),

    // --- the upstream API failed (after retries) or refused us ---
    #[error("work-order API: {0}")]
    Upstream(String),

    // --- the warehouse failed ---
    #[error(transparent)]
    Warehouse(#[from] plsw_store::Error),
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Whether the error rejects one file (the command goes on) rather than the command.
    pub fn is_file_level(&self) -> bool {
        !matches!(
            self,
            Error::Warehouse(_) | Error::Usage(_) | Error::Upstream(_)
        )
    }
}
