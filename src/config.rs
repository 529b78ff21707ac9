//! Configuration: `plsw.toml`, overridden by environment variables, overridden by flags.

use std::path::Path;

use serde::Deserialize;

/// The contents of `plsw.toml` (every key optional).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Warehouse location: a directory, or an object-store URL.
    pub warehouse: Option<String>,
    /// Upstream APIs to pull from.
    pub pull: Option<PullConfig>,
}

/// `[pull]` in `plsw.toml`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullConfig {
    pub work_orders: Option<ApiConfig>,
}

/// `[pull.work_orders]`: where the API is and how to authenticate.
#[derive(Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Base URL of the platform.
    pub url: Option<String>,
    /// The bearer token itself (keep the file private), or
    pub token: Option<String>,
    /// the environment variable holding it.
    pub token_env: Option<String>,
}

impl std::fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiConfig")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("token_env", &self.token_env)
            .finish()
    }
}

/// The work-order API's token: `--token-env VAR` first, then the file's `token_env`, then its
/// `token`; none is allowed (an API without authentication). A named variable must be set.
pub fn work_orders_token(
    flag_env: Option<&str>,
    conf: Option<&ApiConfig>,
) -> anyhow::Result<Option<String>> {
    let var = flag_env.or_else(|| conf.and_then(|c| c.token_env.as_deref()));
    if let Some(var) = var {
        return match std::env::var(var) {
            Ok(t) if !t.trim().is_empty() => Ok(Some(t.trim().to_string())),
            _ => anyhow::bail!("the token variable ${var} is not set"),
        };
    }
    Ok(conf.and_then(|c| c.token.clone()))
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

    #[test]
    fn work_orders_token_precedence() {
        let file: FileConfig = toml::from_str(
            "[pull.work_orders]\nurl = \"http://127.0.0.1:1\"\ntoken = \"from-file\"",
        )
        .unwrap();
        let conf = file.pull.unwrap().work_orders.unwrap();
        assert!(!format!("{conf:?}").contains("from-file"), "token redacted");
        assert_eq!(
            work_orders_token(None, Some(&conf)).unwrap().as_deref(),
            Some("from-file")
        );
        std::env::set_var("PLSW_TEST_TOKEN_A", "from-env");
        assert_eq!(
            work_orders_token(Some("PLSW_TEST_TOKEN_A"), Some(&conf))
                .unwrap()
                .as_deref(),
            Some("from-env")
        );
        assert!(work_orders_token(Some("PLSW_TEST_TOKEN_UNSET"), Some(&conf)).is_err());
        assert_eq!(work_orders_token(None, None).unwrap(), None);
        assert!(toml::from_str::<FileConfig>("[pull.work_orders]\ntokn = 1").is_err());
    }
}
