//! Embedded-store write path: decisions submitted through the group-committing [`Writer`] by
//! many concurrent producers (as the user actors do), until every one is durable.
//!
//! `cargo bench -p sentinel-store --bench write_path` prints the median decisions/s over the
//! runs, and the median batch size the writer formed. Options: `--runs N` (default 5),
//! `--decisions N` per run (default 100000), `--producers N` (default 64).
//!
//! `-- --batch-sweep` measures instead what one durable commit costs by its size: on a store
//! already holding 200,000 decisions of 10,000 users, batches of 1 to 2,048 decisions written
//! straight to the store (no writer), each size for about 20,000 decisions; it prints the
//! process CPU (user + system, from `/proc/self/stat`) per batch and per decision.
//!
//! `-- --record` measures the stored decision record instead ([`sentinel_store::record`]):
//! bytes, and wall time per encode and per decode against the decision's JSON, for a bare
//! decision and for one as the simulator's traffic makes (every event field set, two reasons).

use sentinel_store::conformance::decision;
use sentinel_store::{EmbeddedStore, Store, WriteOp, Writer, WriterConfig};
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

/// This process's user + system CPU seconds so far (Linux; clock ticks of 10 ms, so each
/// measured step runs for a second or more).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("Linux /proc");
    // Fields after the command name (which may hold spaces) start at the state, field 3.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// CPU per durable commit by batch size, on a store of 10,000 users' history.
async fn batch_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("sweep.redb")).unwrap();
    let users = 10_000u64;
    let mut next = 0u64;
    let mut batch = |size: usize| -> Vec<WriteOp> {
        (0..size)
            .map(|_| {
                next += 1;
                let user = format!("user-{}", next % users);
                let d = decision(&format!("txn-{next}"), &user, next / users + 1, 0);
                WriteOp::Decision(Arc::new(d))
            })
            .collect()
    };
    for _ in 0..1_000 {
        store.write_batch(batch(200)).await.unwrap();
    }
    for size in [1usize, 4, 16, 64, 256, 1024, 2048] {
        let count = (20_000 / size).clamp(20, 2_000);
        let batches: Vec<Vec<WriteOp>> = (0..count).map(|_| batch(size)).collect();
        let started = cpu_seconds();
        for ops in batches {
            store.write_batch(ops).await.unwrap();
        }
        let cpu = cpu_seconds() - started;
        println!(
            "batch of {size:>5}: {:>8.0} µs CPU per commit, {:>6.1} µs per decision ({count} commits)",
            cpu * 1e6 / count as f64,
            cpu * 1e6 / (count * size) as f64
        );
    }
}

/// A decision as the simulator's traffic makes them: every event field set, two reasons.
fn busy_decision() -> sentinel_event::Decision {
    let mut d = decision("txn-000123456", "user-004217", 41, 7);
    let event = Arc::make_mut(&mut d.event);
    event.card_id = Some("card-004217-1".into());
    event.device_id = Some("dev-9f3c2a".into());
    event.ip = Some("203.0.113.77".into());
    event.merchant_id = Some("merchant-00871".into());
    event.location = Some(sentinel_event::Location {
        country: "FR".into(),
        city: Some("Lyon".into()),
        lat: Some(45.76),
        lon: Some(4.84),
    });
    let value = |label: &str, v: sentinel_rules::OwnedValue| (label.to_owned(), v);
    d.reasons = vec![
        sentinel_event::Reason {
            rule: "high_amount_new_device".into(),
            action: sentinel_rules::Action::AddScore(0.4),
            values: vec![
                value("amount", sentinel_rules::OwnedValue::Number(1834.5)),
                value("new_device", sentinel_rules::OwnedValue::Bool(true)),
            ],
        },
        sentinel_event::Reason {
            rule: "velocity_5m".into(),
            action: sentinel_rules::Action::Review,
            values: vec![value(
                "count(user, 5m)",
                sentinel_rules::OwnedValue::Number(6.0),
            )],
        },
    ];
    d.outcome = sentinel_event::Outcome::Review;
    d.score = 0.5;
    d
}

/// Bytes and time per encode and decode of the stored record against JSON.
fn record_sizes() {
    const N: u32 = 200_000;
    fn time(mut f: impl FnMut()) -> std::time::Duration {
        let started = Instant::now();
        for _ in 0..N {
            f();
        }
        started.elapsed() / N
    }
    for (name, d) in [
        (
            "bare decision",
            decision("txn-000123456", "user-004217", 41, 7),
        ),
        ("simulator-like decision", busy_decision()),
    ] {
        let json = serde_json::to_vec(&d).unwrap();
        let mut record = Vec::new();
        sentinel_store::record::encode_into(&mut record, &d).unwrap();
        let json_encode = time(|| {
            std::hint::black_box(serde_json::to_vec(&d).unwrap());
        });
        let record_encode = time(|| {
            let mut out = Vec::with_capacity(512);
            sentinel_store::record::encode_into(&mut out, &d).unwrap();
            std::hint::black_box(out);
        });
        let json_decode = time(|| {
            std::hint::black_box(sentinel_store::record::decode(&json).unwrap());
        });
        let record_decode = time(|| {
            std::hint::black_box(sentinel_store::record::decode(&record).unwrap());
        });
        println!(
            "{name}: JSON {} B, encode {json_encode:?}, decode {json_decode:?}; \
             record {} B, encode {record_encode:?}, decode {record_decode:?}",
            json.len(),
            record.len()
        );
    }
}

fn main() {
    if std::env::args().any(|a| a == "--record") {
        record_sizes();
        return;
    }
    if std::env::args().any(|a| a == "--batch-sweep") {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(batch_sweep());
        return;
    }
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
