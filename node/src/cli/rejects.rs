//! The reject file of a bulk import (`sentinel import`, `sentinel labels import`): one JSON
//! line per bad row with its line number and reason, the first few echoed on stderr. Kept only
//! when something was rejected.

use anyhow::Context;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Rows echoed on stderr before the rest go to the file only.
const SHOWN: u32 = 10;

/// An open reject file.
pub struct Rejects {
    out: std::io::BufWriter<std::fs::File>,
    path: PathBuf,
    written: u64,
}

impl Rejects {
    /// Creates `explicit`, or `INPUT.rejects.jsonl` beside the input.
    pub fn create(input: &Path, explicit: Option<&Path>) -> anyhow::Result<Rejects> {
        let path = explicit.map_or_else(
            || {
                let mut name = input.as_os_str().to_owned();
                name.push(".rejects.jsonl");
                PathBuf::from(name)
            },
            Path::to_path_buf,
        );
        let file =
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Rejects {
            out: std::io::BufWriter::new(file),
            path,
            written: 0,
        })
    }

    /// Records one bad row: `record` (which carries `line`) in the file, `summary` on stderr.
    pub fn write(&mut self, line: u64, record: serde_json::Value, summary: &str) {
        if self.written < u64::from(SHOWN) {
            eprintln!("line {line}: rejected: {summary}");
        }
        self.written += 1;
        if let Err(e) = writeln!(self.out, "{record}") {
            tracing::warn!(error = %e, path = %self.path.display(), "writing a reject failed");
        }
    }

    /// Flushes the file and returns its path when a row was rejected; removes it otherwise.
    pub fn finish(mut self) -> anyhow::Result<Option<PathBuf>> {
        self.out.flush()?;
        if self.written == 0 {
            let _ = std::fs::remove_file(&self.path);
            return Ok(None);
        }
        Ok(Some(self.path))
    }
}
