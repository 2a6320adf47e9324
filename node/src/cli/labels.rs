//! `sentinel labels import FILE`: a chargeback file (or any labels) into the store, each with
//! the time it became known. Offline on a stopped node's store (`--data-dir`), or online
//! through a running node's `POST /v1/labels` (`--url`). Bad rows are reported with their line
//! and reason, written to a reject file and skipped; the rest goes on.

use super::rejects::Rejects;
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use sentinel_catalog::{Catalog, LabelInput, LabelOutcome, LabelRow};
use serde::Deserialize;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Labels sent to the store or node at once.
const BATCH: usize = 1_000;

/// `sentinel labels`.
#[derive(clap::Subcommand)]
pub enum LabelsCommand {
    /// Import labels from a CSV (header `transaction_id,label,labelled_at[,source][,scenario]
    /// [,note]`) or JSON lines file (the same fields), such as the chargeback file `sentinel
    /// simulate` writes. Repeating an import changes nothing.
    Import(ImportArgs),
}

/// `sentinel labels import`.
#[derive(clap::Args)]
pub struct ImportArgs {
    /// The labels: `.csv` or `.jsonl`.
    file: PathBuf,
    /// Directory of a stopped node's embedded store (the default, `./data`).
    #[arg(
        long,
        env = "SENTINEL_DATA_DIR",
        default_value = "./data",
        conflicts_with = "url"
    )]
    data_dir: PathBuf,
    /// A running node's base URL (`http://127.0.0.1:8080`): labels go through `POST
    /// /v1/labels`, as an analyst or admin (--api-key-file or --token-file).
    #[arg(long)]
    url: Option<String>,
    /// File holding an API key for --url (sent as `X-Api-Key`).
    #[arg(long, requires = "url", conflicts_with = "token_file")]
    api_key_file: Option<PathBuf>,
    /// File holding a bearer token for --url (`sentinel token`).
    #[arg(long, requires = "url")]
    token_file: Option<PathBuf>,
    /// Where bad rows go (JSON lines: line, field, reason); default `FILE.rejects.jsonl`.
    #[arg(long)]
    rejects: Option<PathBuf>,
}

/// What became of one label, as this command counts it (from the store or the node's answer).
#[derive(Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
enum Outcome {
    Stored {},
    Unchanged {},
    Rejected { field: String, reason: String },
}

impl From<LabelOutcome> for Outcome {
    fn from(outcome: LabelOutcome) -> Self {
        match outcome {
            LabelOutcome::Stored { .. } => Outcome::Stored {},
            LabelOutcome::Unchanged { .. } => Outcome::Unchanged {},
            LabelOutcome::Rejected { field, reason, .. } => Outcome::Rejected { field, reason },
        }
    }
}

/// Where the labels go.
enum Target {
    Store(Box<Catalog>),
    Node {
        client: reqwest::Client,
        url: String,
        /// The credential header.
        auth: (&'static str, String),
    },
}

impl Target {
    async fn send(&self, batch: Vec<LabelInput>) -> anyhow::Result<Vec<Outcome>> {
        match self {
            Target::Store(catalog) => Ok(catalog
                .label_batch(batch, "sentinel labels import")
                .await?
                .into_iter()
                .map(Outcome::from)
                .collect()),
            Target::Node { client, url, auth } => {
                #[derive(Deserialize)]
                struct Answer {
                    results: Vec<Outcome>,
                }
                let response = client
                    .post(format!("{url}/v1/labels"))
                    .header(auth.0, &auth.1)
                    .json(&serde_json::json!({ "labels": batch }))
                    .send()
                    .await
                    .context("sending labels to the node")?;
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                anyhow::ensure!(
                    status.is_success(),
                    "the node answered {status}: {text:.500}"
                );
                let answer: Answer = serde_json::from_str(&text)
                    .with_context(|| format!("the node's answer: {text:.200}"))?;
                Ok(answer.results)
            }
        }
    }
}

#[derive(Default)]
struct Counts {
    stored: u64,
    unchanged: u64,
    rejected: u64,
}

/// A row of the file: its line number and the row, or why it does not parse.
type NumberedRow = (u64, Result<LabelRow, String>);

/// Rows read and not yet sent, by line: each a label, or the field and reason it was refused.
type Pending = Vec<(u64, Result<LabelInput, (&'static str, String)>)>;

fn rows(path: &Path) -> anyhow::Result<Box<dyn Iterator<Item = NumberedRow>>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    Ok(match path.extension().and_then(|e| e.to_str()) {
        Some("csv") => {
            let mut reader = csv::Reader::from_reader(file);
            let headers = reader
                .headers()
                .with_context(|| format!("reading the header of {}", path.display()))?
                .clone();
            // A row's own line, not its index: a quoted note may span lines.
            Box::new(reader.into_records().map(move |record| match record {
                Ok(r) => (
                    r.position().map_or(0, csv::Position::line),
                    r.deserialize(Some(&headers)).map_err(|e| e.to_string()),
                ),
                Err(e) => (
                    e.position().map_or(0, csv::Position::line),
                    Err(e.to_string()),
                ),
            }))
        }
        Some("jsonl" | "json" | "ndjson") => Box::new(
            BufReader::new(file)
                .lines()
                .enumerate()
                .filter(|(_, line)| line.as_ref().map_or(true, |l| !l.trim().is_empty()))
                .map(|(i, line)| {
                    let row = line.map_err(|e| e.to_string()).and_then(|l| {
                        serde_json::from_str::<LabelRow>(&l).map_err(|e| e.to_string())
                    });
                    (i as u64 + 1, row)
                }),
        ),
        _ => anyhow::bail!(
            "{}: name the format by extension: .csv or .jsonl",
            path.display()
        ),
    })
}

/// Runs `sentinel labels …`.
pub async fn run(command: LabelsCommand) -> anyhow::Result<()> {
    let LabelsCommand::Import(args) = command;
    let target = match &args.url {
        Some(url) => {
            let read = |path: &PathBuf| -> anyhow::Result<String> {
                Ok(std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?
                    .trim()
                    .to_owned())
            };
            let auth = match (&args.api_key_file, &args.token_file) {
                (Some(key), _) => ("x-api-key", read(key)?),
                (None, Some(token)) => ("authorization", format!("Bearer {}", read(token)?)),
                (None, None) => anyhow::bail!("--url needs --api-key-file or --token-file"),
            };
            Target::Node {
                client: reqwest::Client::builder()
                    .timeout(std::time::Duration::from_secs(60))
                    .build()?,
                url: url.trim_end_matches('/').to_owned(),
                auth,
            }
        }
        None => {
            let store: Arc<dyn sentinel_store::Store> =
                sentinel_store::open_existing_embedded(&args.data_dir)
                    .context("opening the store (stop the node that holds it, or use --url)")?;
            let catalog = Catalog::open(store, sentinel_engine::PolicyDef::seed(), 0).await?;
            Target::Store(Box::new(catalog))
        }
    };
    let mut rejects = Rejects::create(&args.file, args.rejects.as_deref())?;
    let progress = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} labels {pos} ({per_sec}) {msg}")
            .expect("valid template"),
    );
    let mut counts = Counts::default();
    let mut pending: Pending = Vec::with_capacity(BATCH);
    let flush = async |pending: &mut Pending,
                       counts: &mut Counts,
                       rejects: &mut Rejects|
           -> anyhow::Result<()> {
        let mut inputs = Vec::with_capacity(pending.len());
        let mut order = Vec::with_capacity(pending.len());
        for (line, row) in pending.drain(..) {
            match row {
                Ok(input) => {
                    inputs.push(input);
                    order.push((line, None));
                }
                Err(refusal) => order.push((line, Some(refusal))),
            }
        }
        let mut outcomes = match inputs.is_empty() {
            true => Vec::new(),
            false => target.send(inputs).await?,
        }
        .into_iter();
        // Rows in file order, so the reject file reads top to bottom.
        for (line, refusal) in order {
            let (field, reason) = match refusal {
                Some((field, reason)) => (field.to_owned(), reason),
                None => match outcomes.next().context("fewer outcomes than labels sent")? {
                    Outcome::Stored {} => {
                        counts.stored += 1;
                        continue;
                    }
                    Outcome::Unchanged {} => {
                        counts.unchanged += 1;
                        continue;
                    }
                    Outcome::Rejected { field, reason } => (field, reason),
                },
            };
            counts.rejected += 1;
            let record = serde_json::json!({"line": line, "field": field, "reason": reason});
            rejects.write(line, record, &format!("{field}: {reason}"));
        }
        progress.set_position(counts.stored + counts.unchanged + counts.rejected);
        Ok(())
    };
    for (line, row) in rows(&args.file)? {
        pending.push((
            line,
            row.map_err(|e| ("row", e)).and_then(LabelRow::into_input),
        ));
        if pending.len() == BATCH {
            flush(&mut pending, &mut counts, &mut rejects).await?;
        }
    }
    flush(&mut pending, &mut counts, &mut rejects).await?;
    progress.finish_and_clear();
    println!(
        "labels from {}: {} stored, {} unchanged, {} rejected",
        args.file.display(),
        counts.stored,
        counts.unchanged,
        counts.rejected
    );
    if let Some(path) = rejects.finish()? {
        println!("bad rows: {}", path.display());
    }
    Ok(())
}
