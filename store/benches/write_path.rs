//! Embedded-store write path: decisions submitted through the group-committing [`Writer`] by
//! many concurrent producers (as the user actors do), until every one is durable.
//!
//! `cargo bench -p sentinel-store --bench write_path` prints the median decisions/s over the
//! runs, and the median batch size the writer formed. Options: `--runs N` (default 5),
//! `--decisions N` per run (default 100000), `--producers N` (default 64).

use sentinel_store::conformance::decision;
use sentinel_store::{EmbeddedStore, Store, Writer, WriterConfig};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::oneshot;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// One run: a fresh store, `decisions` decisions from `producers` tasks; decisions/s.
async fn run(decisions: usize, producers: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(EmbeddedStore::open(&dir.path().join("bench.redb")).unwrap());
    let writer = Writer::start(Arc::clone(&store), WriterConfig::default());
    // Built before the clock starts: the benchmark measures storing, not building.
    let per_producer = decisions / producers;
    let batches: Vec<Vec<_>> = (0..producers)
        .map(|p| {
            (0..per_producer)
                .map(|i| {
                    // 100 users per producer, each with its own rising sequence.
                    let user = format!("user-{p}-{}", i % 100);
                    let txn = format!("txn-{p}-{i}");
                    Arc::new(decision(&txn, &user, (i / 100) as u64 + 1, (i % 60) as u32))
                })
                .collect()
        })
        .collect();
    let started = Instant::now();
    let tasks: Vec<_> = batches
        .into_iter()
        .map(|mine| {
            let writer = writer.clone();
            tokio::spawn(async move {
                let mut acks = Vec::with_capacity(mine.len());
                for d in mine {
                    let (ack, done) = oneshot::channel();
                    writer.submit_decision(d, ack).await.unwrap();
                    acks.push(done);
                }
                for done in acks {
                    done.await.unwrap().unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = started.elapsed();
    assert_eq!(
        store.decision_count().await.unwrap(),
        (per_producer * producers) as u64
    );
    (per_producer * producers) as f64 / elapsed.as_secs_f64()
}

fn main() {
    let runs = arg("--runs", 5);
    let decisions = arg("--decisions", 100_000);
    let producers = arg("--producers", 64).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut rates = Vec::new();
    for i in 0..runs {
        let rate = runtime.block_on(run(decisions, producers));
        eprintln!("run {}: {rate:.0} decisions/s", i + 1);
        rates.push(rate);
    }
    println!(
        "embedded write path: median {:.0} decisions/s over {runs} runs ({decisions} decisions, {producers} producers)",
        median(rates)
    );
}
