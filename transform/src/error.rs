//! Errors of the transform, naming the model (and test) at fault.

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A model file is malformed (its header, its name, the DAG).
    #[error("model {model}: {message}")]
    Model { model: String, message: String },

    /// A model's SQL failed to plan or run.
    #[error("model {model}: {source}")]
    Sql {
        model: String,
        #[source]
        source: Box<datafusion::error::DataFusionError>,
    },

    /// A data test found offending rows.
    #[error(
        "model {model}: data test {test} failed: {count} offending row(s), for example:\n{sample}"
    )]
    DataTest {
        model: String,
        test: String,
        count: usize,
        sample: String,
    },

    #[error(transparent)]
    Warehouse(#[from] plsw_store::Error),
}

impl Error {
    pub(crate) fn sql(
        model: &str,
    ) -> impl FnOnce(datafusion::error::DataFusionError) -> Error + '_ {
        move |e| Error::Sql {
            model: model.to_string(),
            source: Box::new(e),
        }
    }
}
