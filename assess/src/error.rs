//! Errors of assessments, by whose fault.

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The targets or weights files are wrong (the user's to fix).
    #[error("assessment method: {0}")]
    Method(String),

    #[error("{0:?} is not a quarter: write it like 2025Q3")]
    Quarter(String),

    /// Nothing to assess: the quarter has no indicators.
    #[error("no indicators for {quarter} (the warehouse has {known})")]
    NoIndicators { quarter: String, known: String },

    /// No publication of that quarter (or revision).
    #[error("{0}")]
    NotPublished(String),

    #[error(transparent)]
    Warehouse(#[from] plsw_store::Error),

    #[error("reading the warehouse: {0}")]
    Query(String),

    #[error("rendering the report: {0}")]
    Report(String),
}

impl From<datafusion::error::DataFusionError> for Error {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        Error::Query(e.to_string())
    }
}
