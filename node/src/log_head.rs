//! Exports the decision log's head so operators can keep it outside the store: a
//! `decision log head` log line (position and hash) at start-up and every few minutes, and the
//! position as a gauge. `sentinel verify-log --expect-head <hash>` later proves the chain still
//! passes through it.
//!
//! The node also keeps the head it last saw in a watermark file beside the embedded store
//! ([`WATERMARK_FILE`]) and refuses to start on a store whose log ends before it: an embedded
//! store can come back shorter than it was without any error of its own (fjall drops its
//! journal from the first damaged batch on, as a torn tail; an older copy can be put in place),
//! and starting on it would decide anew, and publish again, what was already acknowledged.

use anyhow::Context;
use sentinel_store::chain::{self, Head};
use sentinel_store::DecisionLog;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Gauge: the position of the decision log's last entry.
pub const LOG_POSITION: &str = "sentinel_decision_log_position";

/// How often the head is logged (the gauge moves at the same pace).
const EVERY: Duration = Duration::from_secs(300);

/// Logs the head now and every [`EVERY`] until the process ends; a change since the last line
/// is logged, an unchanged head is not repeated.
pub async fn run(store: Arc<dyn DecisionLog>) {
    let mut tick = tokio::time::interval(EVERY);
    let mut last = None;
    loop {
        tick.tick().await;
        match store.log_head().await {
            Ok(head) if last != Some(head) => {
                let position = head.next_seq - 1;
                metrics::gauge!(LOG_POSITION).set(position as f64);
                tracing::info!(
                    position,
                    hash = %chain::hex(&head.hash),
                    "decision log head; keep it off this machine for `sentinel verify-log --expect-head`"
                );
                last = Some(head);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "reading the decision log head failed"),
        }
    }
}

/// The watermark file in the data directory: `<position> <hash>` of the decision log's head
/// as this node last saw it, brought up to date every [`WATERMARK_EVERY`].
pub const WATERMARK_FILE: &str = "sentinel.head";

/// How often the watermark is brought up to date: a store that loses less than this many
/// seconds of decisions is not caught (`verify-log --expect-head` with an outside copy is).
const WATERMARK_EVERY: Duration = Duration::from_secs(10);

/// Refuses a store whose decision log ends before the watermark in `data_dir`, or at the
/// watermark's position with another hash. No watermark (a new data directory, or one an
/// operator cleared to accept an older copy on purpose) passes.
pub async fn check_watermark(data_dir: &Path, store: &dyn DecisionLog) -> anyhow::Result<()> {
    let path = data_dir.join(WATERMARK_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let damaged = || {
        anyhow::anyhow!(
            "{} is damaged (expected `<position> <hash>`): delete it to accept the store as it is",
            path.display()
        )
    };
    let mut fields = text.split_whitespace();
    let position: u64 = fields
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(damaged)?;
    let hash = fields.next().ok_or_else(damaged)?;
    let head = store
        .log_head()
        .await
        .context("reading the decision log head")?;
    let found = head.next_seq - 1;
    let found_hash = chain::hex(&head.hash);
    if found < position {
        anyhow::bail!(
            "the store's decision log ends at position {found}, but this node saw it reach \
             position {position} (hash {hash}, recorded in {}): the store has lost decisions \
             it acknowledged (a damaged journal or file, or an older copy put in place). \
             Restore a copy that reaches position {position}; if you put an older copy in place \
             on purpose, delete {} and start again",
            path.display(),
            path.display()
        );
    }
    if found == position && found_hash != hash {
        anyhow::bail!(
            "the store's decision log ends at position {found} with hash {found_hash}, but this \
             node recorded hash {hash} for that position in {}: the store is not the one this \
             node wrote. Put the right one back; to accept this one, delete {} and start again",
            path.display(),
            path.display()
        );
    }
    Ok(())
}

/// Writes the head to the watermark file every [`WATERMARK_EVERY`] when it moved, atomically
/// (a temporary file synced, then renamed over the old one), until the process ends.
pub async fn keep_watermark(data_dir: PathBuf, store: Arc<dyn DecisionLog>) {
    let mut tick = tokio::time::interval(WATERMARK_EVERY);
    let mut written: Option<Head> = None;
    loop {
        tick.tick().await;
        let head = match store.log_head().await {
            Ok(head) if written != Some(head) => head,
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "reading the decision log head failed");
                continue;
            }
        };
        let dir = data_dir.clone();
        match tokio::task::spawn_blocking(move || write_watermark(&dir, head)).await {
            Ok(Ok(())) => written = Some(head),
            Ok(Err(e)) => tracing::warn!(error = %e, "writing the decision log watermark failed"),
            Err(e) => tracing::warn!(error = %e, "writing the decision log watermark failed"),
        }
    }
}

fn write_watermark(data_dir: &Path, head: Head) -> std::io::Result<()> {
    use std::io::Write;
    let path = data_dir.join(WATERMARK_FILE);
    let temporary = data_dir.join(format!("{WATERMARK_FILE}.tmp"));
    let mut file = std::fs::File::create(&temporary)?;
    writeln!(file, "{} {}", head.next_seq - 1, chain::hex(&head.hash))?;
    file.sync_all()?;
    std::fs::rename(&temporary, &path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only a store that reaches the watermark, with the same hash where it ends there, passes;
    /// a damaged watermark is an error naming it.
    #[tokio::test]
    async fn the_watermark_refuses_a_shorter_or_different_log() {
        let dir = tempfile::tempdir().unwrap();
        let options = sentinel_store::EmbeddedOptions {
            cache_bytes: 8 << 20,
            ..Default::default()
        };
        let store =
            sentinel_store::open_embedded(dir.path(), sentinel_store::EmbeddedEngine::Lsm, options)
                .unwrap();
        let check = || check_watermark(dir.path(), store.as_ref());
        check().await.unwrap();

        let empty = store.log_head().await.unwrap();
        write_watermark(dir.path(), empty).unwrap();
        check().await.unwrap();

        let path = dir.path().join(WATERMARK_FILE);
        let other = chain::hex(&[7; 32]);
        std::fs::write(&path, format!("0 {other}\n")).unwrap();
        let err = check().await.unwrap_err().to_string();
        assert!(err.contains("not the one this node wrote"), "{err}");

        std::fs::write(&path, format!("5 {other}\n")).unwrap();
        let err = check().await.unwrap_err().to_string();
        assert!(
            err.contains("lost decisions") && err.contains("position 5"),
            "{err}"
        );

        std::fs::write(&path, "five\n").unwrap();
        let err = check().await.unwrap_err().to_string();
        assert!(
            err.contains("damaged") && err.contains(WATERMARK_FILE),
            "{err}"
        );
    }
}
