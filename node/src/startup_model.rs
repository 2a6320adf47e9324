//! The model a node serves from its first start: a configured artifact, or the demo model
//! shipped in `model/default_model.json` (see the README for the command that trained it).
//! It only fills an empty slot: a champion activated through the API is never replaced.

use anyhow::Context;
use sentinel_catalog::Catalog;
use serde::Deserialize;
use std::path::PathBuf;

/// The shipped demo model, trained on simulator traffic.
const DEFAULT_MODEL: &[u8] = include_bytes!("../../model/default_model.json");

/// `[model]` in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// A model artifact to serve when the store has no champion yet.
    pub file: Option<PathBuf>,
    /// Without `file`, serve the shipped demo model when the store has no champion yet.
    pub load_default: bool,
    /// Seconds an analyst label waits before the entity-risk features of later events count
    /// it (feedback arrives late in real life; train with the same delay you serve).
    pub label_delay_secs: u64,
    /// Seconds between rebuilds of the label index from the store.
    pub label_refresh_secs: u64,
    /// Seconds between saves of the entity-risk index to `data_dir` (it is saved at a clean
    /// stop too), which a restart reads back instead of counting 30 days of decisions again.
    /// 0: never saved nor read back.
    pub entity_index_save_secs: u64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            file: None,
            load_default: true,
            label_delay_secs: 86_400,
            label_refresh_secs: 10,
            entity_index_save_secs: 300,
        }
    }
}

/// Installs the configured (or shipped) model as champion if the catalogue has none.
pub async fn install(catalog: &Catalog, config: &ModelConfig) -> anyhow::Result<()> {
    let bytes = match &config.file {
        Some(path) => {
            std::fs::read(path).with_context(|| format!("reading model {}", path.display()))?
        }
        None if config.load_default => DEFAULT_MODEL.to_vec(),
        None => return Ok(()),
    };
    let what = config.file.as_ref().map_or_else(
        || "the shipped default model".to_owned(),
        |p| p.display().to_string(),
    );
    match catalog
        .seed_model(&bytes, "startup")
        .await
        .with_context(|| format!("loading {what}"))?
    {
        Some(id) => tracing::info!(model = %id, source = %what, "model loaded"),
        None => tracing::info!("keeping the stored champion model"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_label_delay_comes_from_the_config_file() {
        let config: crate::config::NodeConfig =
            toml::from_str("[model]\nlabel_delay_secs = 5\n").unwrap();
        assert_eq!(config.model.label_delay_secs, 5);
        assert_eq!(config.model.label_refresh_secs, 10);
        assert!(config.model.load_default);
    }
}
