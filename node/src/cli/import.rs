//! `sentinel import FILE`: historical events through the same user actors and rules as live
//! traffic, in file order, their decisions stored — so windows, profiles, snapshots and the
//! store end up as live scoring would have built them. Run it on a stopped node's store (or
//! against the configured ScyllaDB): nothing is published to Kafka and no alert is sent.
//!
//! Events are dispatched in file order with many in flight, the rows read together in one
//! message per shard: each user's events reach its actor in order, while the writer
//! group-commits decisions of many users at once. Bad rows never
//! stop the import: each is written to the reject file with its line number and reason.

use super::rejects::Rejects;
use crate::config::NodeConfig;
use anyhow::Context;
use chrono::{Duration, Utc};
use futures::stream::{FuturesOrdered, StreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use sentinel_actors::Scorer;
use sentinel_catalog::training::csv::CsvRow;
use sentinel_catalog::Catalog;
use sentinel_event::{parse_transaction, DecisionError, Limits, ParseMode, Transaction};
use sentinel_store::{Stored, Writer, WriterConfig};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Most rows sent to the user actors in one [`sentinel_actors::Dispatch`].
const ROWS_PER_DISPATCH: usize = 512;

/// `sentinel import`.
#[derive(clap::Args)]
pub struct ImportArgs {
    /// Events in event-time order: JSON lines (`.jsonl`/`.json`, the payload the node accepts
    /// on Kafka) or CSV (`.csv`, the columns `sentinel train --export-csv` writes; `label` and
    /// the label columns are ignored). `-` reads JSON lines from standard input.
    file: PathBuf,
    /// Where bad rows go (JSON lines: line, reason, row); default `FILE.rejects.jsonl`.
    #[arg(long)]
    rejects: Option<PathBuf>,
    /// Events in flight at once (more keeps every core busy; memory grows with it).
    #[arg(long, default_value_t = 4_096)]
    in_flight: usize,
}

/// What an import did.
#[derive(Debug, Default)]
struct Summary {
    read: u64,
    decided: u64,
    duplicates: u64,
    late: u64,
    rejected: u64,
    failed: u64,
}

enum Format {
    JsonLines,
    Csv,
}

fn format_of(path: &Path) -> anyhow::Result<Format> {
    match path.extension().and_then(|e| e.to_str()) {
        _ if path == Path::new("-") => Ok(Format::JsonLines),
        Some("jsonl" | "json" | "ndjson") => Ok(Format::JsonLines),
        Some("csv") => Ok(Format::Csv),
        _ => anyhow::bail!(
            "{}: name the format by extension: .jsonl (JSON lines) or .csv",
            path.display()
        ),
    }
}

/// A row of the input: its line number and the event, or why it is rejected and its text.
type Row = (u64, Result<Transaction, (String, String)>);

/// Events parsed from the input, each with its line number (or the line's reject reason).
fn rows(
    format: Format,
    input: Box<dyn Read + Send>,
    limits: Limits,
    progress: ProgressBar,
) -> Box<dyn Iterator<Item = Row> + Send> {
    let now = Utc::now();
    match format {
        Format::JsonLines => {
            let reader = BufReader::with_capacity(1 << 20, input);
            Box::new(
                reader
                    .split(b'\n')
                    .enumerate()
                    .filter_map(move |(i, line)| {
                        let line_no = i as u64 + 1;
                        let bytes = match line {
                            Ok(bytes) => bytes,
                            Err(e) => return Some((line_no, Err((e.to_string(), String::new())))),
                        };
                        progress.inc(bytes.len() as u64 + 1);
                        if bytes.iter().all(u8::is_ascii_whitespace) {
                            return None;
                        }
                        Some((
                            line_no,
                            parse_transaction(&bytes, ParseMode::Strict, &limits, now)
                                .map(|(t, _)| t)
                                .map_err(|e| {
                                    (e.to_string(), String::from_utf8_lossy(&bytes).into_owned())
                                }),
                        ))
                    }),
            )
        }
        Format::Csv => {
            // CSV columns are the schema's own names: nothing to map.
            let limits = Limits {
                mapping: None,
                ..limits
            };
            let reader = csv::Reader::from_reader(input);
            let mut position = 0u64;
            Box::new(
                reader
                    .into_deserialize::<CsvRow>()
                    .enumerate()
                    .map(move |(i, row)| {
                        let line = i as u64 + 2;
                        let parsed = row
                            .map_err(anyhow::Error::from)
                            .and_then(|row| Ok(row.into_event(&limits)?));
                        // CSV rows are about as long as each other: count rows, not bytes.
                        position += 1;
                        progress.set_position(position);
                        (line, parsed.map_err(|e| (format!("{e:#}"), String::new())))
                    }),
            )
        }
    }
}

/// Imports the file and prints the summary.
pub async fn run(config: NodeConfig, args: ImportArgs) -> anyhow::Result<()> {
    let format = format_of(&args.file)?;
    let (input, total): (Box<dyn Read + Send>, u64) = if args.file == Path::new("-") {
        (Box::new(std::io::stdin()), 0)
    } else {
        let file = std::fs::File::open(&args.file)
            .with_context(|| format!("opening {}", args.file.display()))?;
        let total = match format {
            Format::JsonLines => file.metadata()?.len(),
            // Rows, counted up front (cheap next to deciding them) for an honest ETA.
            Format::Csv => {
                let counted = std::fs::File::open(&args.file)?;
                BufReader::new(counted).lines().count().saturating_sub(1) as u64
            }
        };
        (Box::new(file), total)
    };
    let mut rejects = Rejects::create(&args.file, args.rejects.as_deref())?;
    let limits = Limits {
        // History is old by definition; the node's own clock checks skew only for live events.
        max_future_skew: Duration::days(365 * 100),
        ..config.event_limits()?
    };

    // One table for the whole import: the rates in force when it starts.
    let currencies = crate::currency::Currencies::new(&config.currency)?;
    let store = crate::node::open_store(&config).await?;
    let scorer_config = config.scorer();
    let lateness_ms = i64::try_from(scorer_config.lateness.as_millis()).unwrap_or(i64::MAX);
    // `--policy` seeds an empty store here as it does for `sentinel run`.
    let catalog = Catalog::open(
        Arc::clone(&store),
        crate::node::seed_policy(&config)?,
        lateness_ms,
    )
    .await
    .context("loading the rule catalogue")?;
    crate::startup_model::install(&catalog, &config.model).await?;
    // The ML score recorded on imported decisions reads the entity-risk index as of now.
    let delay_ms =
        i64::try_from(config.model.label_delay_secs.saturating_mul(1_000)).unwrap_or(i64::MAX);
    // The first pass builds; the import scores in one go, so nothing further is looked ahead.
    catalog.refresh_entity_risk(delay_ms, Utc::now(), 0).await?;
    let writer = Writer::start(Arc::clone(&store), WriterConfig::default());
    let scorer = Scorer::start(writer.clone(), catalog.policy(), scorer_config)
        .await
        .context("starting the user actors")?;

    let progress = ProgressBar::new(total).with_style(
        ProgressStyle::with_template(match format {
            Format::JsonLines => {
                "{spinner} importing [{bar:40}] {bytes}/{total_bytes} {msg} eta {eta}"
            }
            Format::Csv => "{spinner} importing [{bar:40}] {pos}/{len} rows {msg} eta {eta}",
        })
        .expect("valid template")
        .progress_chars("=> "),
    );
    let started = Instant::now();
    let mut summary = Summary::default();
    let mut pending = FuturesOrdered::new();
    let rows = rows(format, input, limits, progress.clone());
    // Parsing runs on its own thread so the runtime's workers are left to the actors.
    let (tx, mut rx) = tokio::sync::mpsc::channel(args.in_flight.max(1));
    let reader = std::thread::spawn(move || {
        for row in rows {
            if tx.blocking_send(row).is_err() {
                break;
            }
        }
    });
    let in_flight = args.in_flight.max(1);
    let mut rows = Vec::with_capacity(ROWS_PER_DISPATCH);
    loop {
        let room = in_flight
            .saturating_sub(pending.len())
            .min(ROWS_PER_DISPATCH);
        tokio::select! {
            biased;
            Some((line, result)) = pending.next(), if room == 0 => {
                settle(line, result, &mut summary, &mut rejects);
            }
            received = rx.recv_many(&mut rows, room), if room > 0 => {
                if received == 0 {
                    break;
                }
                // The rows read together go to the shards together: one message per shard.
                let mut dispatch = scorer.dispatch_batch();
                for (line, row) in rows.drain(..) {
                    summary.read += 1;
                    if summary.read % 4_096 == 0 {
                        progress.set_message(rate(summary.read, started));
                    }
                    let event = row.and_then(|event| {
                        currencies
                            .convert(event, crate::currency::Source::Import)
                            .map_err(|invalid| (invalid.to_string(), String::new()))
                    });
                    match event {
                        Ok(event) => {
                            let decided = dispatch.add(Arc::new(event), Instant::now());
                            pending.push_back(async move { (line, decided.await) });
                        }
                        Err((reason, row)) => {
                            summary.rejected += 1;
                            reject(&mut rejects, line, &reason, &row);
                        }
                    }
                }
                dispatch.send();
            }
        }
    }
    while let Some((line, result)) = pending.next().await {
        settle(line, result, &mut summary, &mut rejects);
    }
    let _ = reader.join();
    scorer.shutdown().await;
    writer.flush().await.context("flushing the store")?;
    progress.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "imported {} events in {elapsed:.1} s ({}): {} decided, {} already stored, {} late, \
         {} rejected, {} failed",
        summary.read,
        rate(summary.read, started),
        summary.decided,
        summary.duplicates,
        summary.late,
        summary.rejected,
        summary.failed,
    );
    if let Some(path) = rejects.finish()? {
        println!("bad rows: {}", path.display());
    }
    Ok(())
}

/// Records a bad row: its line, why, and (a bounded prefix of) its text to find and fix it.
fn reject(rejects: &mut Rejects, line: u64, reason: &str, row: &str) {
    let row: String = row.chars().take(2_000).collect();
    let record = serde_json::json!({"line": line, "reason": reason, "row": row});
    rejects.write(line, record, reason);
}

fn rate(events: u64, started: Instant) -> String {
    format!(
        "{:.0} events/s",
        events as f64 / started.elapsed().as_secs_f64().max(1e-3)
    )
}

fn settle(
    line: u64,
    result: Result<Stored, DecisionError>,
    summary: &mut Summary,
    rejects: &mut Rejects,
) {
    match result {
        Ok(stored) if stored.duplicate => summary.duplicates += 1,
        Ok(stored) => {
            summary.decided += 1;
            summary.late += u64::from(stored.decision.late);
        }
        Err(e) => {
            summary.failed += 1;
            reject(rejects, line, &format!("not decided: {e}"), "");
        }
    }
}
