//! Configuration: `plsw.toml`, overridden by environment variables, overridden by flags.

use std::path::Path;

use serde::Deserialize;

/// The contents of `plsw.toml` (every key optional).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Warehouse location: a directory, or an object-store URL.
    pub warehouse: Option<String>,
}

impl FileConfig {
    /// Reads the config file: the one given, else `./plsw.toml` when it exists, else defaults.
    pub fn load(explicit: Option<&Path>) -> anyhow::Result<FileConfig> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None if Path::new("plsw.toml").exists() => "plsw.toml".into(),
            None => return Ok(FileConfig::default()),
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }
}

/// The default warehouse location.
pub const DEFAULT_WAREHOUSE: &str = "./warehouse";

/// Flag or env (clap merges those two, the flag first), else the file, else the default.
pub fn warehouse(flag_or_env: Option<&str>, file: &FileConfig) -> String {
    flag_or_env
        .map(str::to_string)
        .or_else(|| file.warehouse.clone())
        .unwrap_or_else(|| DEFAULT_WAREHOUSE.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence() {
        let file: FileConfig = toml::from_str("warehouse = \"/data/wh\"").unwrap();
        assert_eq!(warehouse(Some("/flag"), &file), "/flag");
        assert_eq!(warehouse(None, &file), "/data/wh");
        assert_eq!(warehouse(None, &FileConfig::default()), DEFAULT_WAREHOUSE);
        assert!(toml::from_str::<FileConfig>("warehose = 1").is_err());
    }
}
