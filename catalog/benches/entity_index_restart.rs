//! A node's start-up on a store with a month of decisions: the entity-risk index's first pass
//! counting the whole window, against reading back the index a stopped node saved.
//!
//! `cargo bench -p sentinel-catalog --bench entity_index_restart` builds an embedded (fjall)
//! store of `--decisions N` (default 1,000,000) decided evenly over the last `--days D`
//! (default 30) at 2,000 merchants and `--devices K` devices (default N / 4), then per run
//! (`--runs R`, default 3), each on a fresh catalogue: the first pass counting the window
//! (what a start without a saved index does), the save, and the read-back plus its first pass
//! (what a start with one does). It prints wall and process CPU seconds (user + system, from
//! `/proc/self/stat`) of each and their medians, and the file's size. The pass uses a day of
//! label delay, the default.

use chrono::{Duration, Utc};
use sentinel_catalog::{Catalog, RestoreOutcome};
use sentinel_engine::PolicyDef;
use sentinel_store::conformance::decision;
use sentinel_store::{LsmStore, Store, WriteOp};
use std::sync::Arc;
use std::time::Instant;

const DELAY_MS: i64 = 86_400_000;

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

/// This process's user + system CPU seconds so far (Linux; clock ticks of 10 ms).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("Linux /proc");
    // Fields after the command name (which may hold spaces) start at the state, field 3.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// Wall and CPU seconds of `step`, and what it returned.
async fn timed<T>(step: impl std::future::Future<Output = T>) -> (f64, f64, T) {
    let (wall, cpu) = (Instant::now(), cpu_seconds());
    let out = step.await;
    (wall.elapsed().as_secs_f64(), cpu_seconds() - cpu, out)
}

/// Writes `n` decisions decided evenly over the last `days`, oldest first.
async fn fill(store: &dyn Store, n: usize, days: usize, devices: usize) {
    let now = Utc::now();
    let span_us = Duration::days(days as i64).num_microseconds().unwrap();
    let mut batch = Vec::with_capacity(2_000);
    for i in 0..n {
        let decided_at = now - Duration::microseconds(span_us - span_us / n as i64 * i as i64);
        let txn = format!("txn-{i:09}");
        let mut d = decision(&txn, &format!("user-{}", i % devices), i as u64 + 1, 0);
        d.decided_at = decided_at;
        let mut event = (*d.event).clone();
        event.merchant_id = Some(format!("m-{}", i % 2_000));
        event.device_id = Some(format!("d-{}", i % devices));
        event.timestamp = decided_at - Duration::seconds(2);
        d.event = Arc::new(event);
        batch.push(WriteOp::Decision(Arc::new(d)));
        if batch.len() == batch.capacity() {
            store.write_batch(std::mem::take(&mut batch)).await.unwrap();
            batch.reserve(2_000);
        }
    }
    store.write_batch(batch).await.unwrap();
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n = arg("--decisions", 1_000_000);
    let days = arg("--days", 30);
    let devices = arg("--devices", n / 4).max(1);
    let runs = arg("--runs", 3);
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(LsmStore::open(&dir.path().join("store")).unwrap());
    let (wall, cpu, ()) = timed(fill(&*store, n, days, devices)).await;
    println!("store: {n} decisions over {days} days, {devices} devices: written in {wall:.1} s ({cpu:.1} s CPU)");
    let path = dir.path().join("entity-index.bin");
    let open = || Catalog::open(Arc::clone(&store), PolicyDef::seed(), 300_000);
    let (mut counted, mut read_back) = (Vec::new(), Vec::new());
    for run in 1..=runs {
        let catalog = open().await.unwrap();
        let (wall, cpu, size) = timed(catalog.refresh_entity_risk(DELAY_MS, Utc::now(), 0)).await;
        let size = size.unwrap();
        println!(
            "run {run}: counting the window: {wall:.2} s ({cpu:.2} s CPU), {} decisions, {} entities",
            size.counted.read, size.entities
        );
        counted.push((wall, cpu));
        let (wall, cpu, saved) = timed(catalog.save_entity_index(&path)).await;
        let saved = saved.unwrap().expect("a pass that read decisions saves");
        println!(
            "run {run}: saving: {wall:.2} s ({cpu:.2} s CPU), {} bytes, {} ids in the overlap",
            saved.bytes, saved.overlap
        );
        drop(catalog);

        let catalog = open().await.unwrap();
        let (wall, cpu, size) = timed(async {
            let outcome = catalog
                .restore_entity_index(&path, DELAY_MS, Utc::now())
                .await;
            assert!(
                matches!(outcome, Ok(RestoreOutcome::Restored(_))),
                "{outcome:?}"
            );
            catalog.refresh_entity_risk(DELAY_MS, Utc::now(), 0).await
        })
        .await;
        let size = size.unwrap();
        println!(
            "run {run}: reading back the saved index: {wall:.2} s ({cpu:.2} s CPU), {} decisions counted, {} entities",
            size.counted.read, size.entities
        );
        read_back.push((wall, cpu));
    }
    let medians = |v: &[(f64, f64)]| {
        let walls = v.iter().map(|&(w, _)| w).collect();
        (median(walls), median(v.iter().map(|&(_, c)| c).collect()))
    };
    let (cw, cc) = medians(&counted);
    let (rw, rc) = medians(&read_back);
    println!("median counting the window: {cw:.2} s ({cc:.2} s CPU)");
    println!("median reading back the saved index: {rw:.2} s ({rc:.2} s CPU)");
}
