//! The `[mapping]` settings: how producers' payloads map onto the event schema, inline or in
//! a mapping file (`config/mapping-seed-003.toml`), validated before the node starts.

use sentinel_event::{FieldMapping, MappingConfig, UnknownFields};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The `[mapping]` section: a mapping `file`, or the same settings inline.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MappingSettings {
    /// A TOML file holding `fields`, `unknown_fields` and `assign_missing` (the shipped
    /// `config/mapping-seed-*.toml`); used instead of inline settings.
    pub file: Option<PathBuf>,
    /// Source path in the payload (`account_id`, `"payer.id"`) = schema field it fills.
    pub fields: BTreeMap<String, String>,
    /// `reject` (default) or `metadata`: what becomes of top-level fields nothing maps.
    pub unknown_fields: UnknownFields,
    /// Kafka messages without `transaction_id`, `timestamp` or `currency` get them from the
    /// message (id `<topic>:<partition>:<offset>`, its timestamp, the default currency).
    pub assign_missing: bool,
}

impl MappingSettings {
    /// The mapping in force: the file's, or the inline one.
    pub fn config(&self) -> anyhow::Result<MappingConfig> {
        let inline = MappingConfig {
            fields: self.fields.clone(),
            unknown_fields: self.unknown_fields,
            assign_missing: self.assign_missing,
        };
        let Some(path) = &self.file else {
            return Ok(inline);
        };
        // An unknown_fields given alongside a file (flag or environment) refines it.
        anyhow::ensure!(
            inline.fields.is_empty() && !inline.assign_missing,
            "mapping.file: set either a mapping file or inline [mapping] fields, not both"
        );
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("mapping.file: reading {}: {e}", path.display()))?;
        let mut config: MappingConfig = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("mapping.file: {}: {e}", path.display()))?;
        if inline.unknown_fields != UnknownFields::default() {
            config.unknown_fields = inline.unknown_fields;
        }
        Ok(config)
    }

    /// Validates the mapping; `None` when there is nothing to map.
    pub fn compile(&self) -> anyhow::Result<Option<FieldMapping>> {
        let config = self.config()?;
        config.compile().map_err(|e| {
            match &self.file {
                // The file's settings are named as they are written in it.
                Some(path) => anyhow::anyhow!(
                    "mapping.file ({}): {}",
                    path.display(),
                    e.to_string().trim_start_matches("mapping.")
                ),
                None => anyhow::Error::new(e),
            }
        })
    }
}

/// The mapping as a table for `sentinel config check`: source → target, then the policies.
pub fn table(mapping: Option<&FieldMapping>) -> String {
    let Some(mapping) = mapping else {
        return "field mapping: none (payloads must match the event schema; unknown fields are \
                refused)\n"
            .to_owned();
    };
    let width = mapping
        .pairs()
        .map(|(source, _)| source.chars().count())
        .chain(["source".len()])
        .max()
        .unwrap_or(6);
    let mut out = String::from("field mapping:\n");
    out.push_str(&format!("  {:width$}  target\n", "source"));
    for (source, target) in mapping.pairs() {
        out.push_str(&format!("  {source:width$}  {target}\n"));
    }
    out.push_str(&format!(
        "  unknown fields: {}\n  assign missing on Kafka: {}\n",
        mapping.unknown_fields().as_str(),
        if mapping.assign_missing() {
            "yes"
        } else {
            "no"
        }
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(text: &str) -> MappingSettings {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn the_shipped_mapping_files_are_valid() {
        for file in ["mapping-seed-003.toml", "mapping-seed-004.toml"] {
            let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../config")
                .join(file);
            let settings = MappingSettings {
                file: Some(path),
                ..MappingSettings::default()
            };
            let mapping = settings.compile().unwrap().expect(file);
            assert!(table(Some(&mapping)).contains("unknown fields"));
        }
    }

    #[test]
    fn a_file_and_inline_fields_are_not_combined() {
        let err = settings("file = \"x.toml\"\n[fields]\na = \"user_id\"")
            .compile()
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("mapping.file"), "{err}");
    }

    #[test]
    fn inline_errors_name_the_setting() {
        let err = settings("[fields]\naccount_id = \"usr_id\"")
            .compile()
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("mapping.fields.account_id: "), "{err}");
        let table = table(
            settings("[fields]\naccount_id = \"user_id\"")
                .compile()
                .unwrap()
                .as_ref(),
        );
        assert!(table.contains("account_id  user_id"), "{table}");
        assert!(super::table(None).contains("none"));
    }
}
