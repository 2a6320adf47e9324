//! `sentinel-loadtest`: drives a SentinelStream node with simulated card traffic over Kafka or
//! HTTP and reports latency, throughput, lag and fraud detection.

mod cli;

use clap::Parser;
use sentinel_loadtest::loadgen::{self, Interrupts};
use sentinel_loadtest::report;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = cli::Cli::parse();
    let (opts, target) = match cli.into_run() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    let interrupts = Interrupts::default();
    let raise = interrupts.clone();
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            tracing::warn!("interrupted: stopping (again to stop waiting for decisions)");
            raise.raise();
        }
    });
    match loadgen::run(&opts, &target, interrupts).await {
        Ok(result) => {
            print!("{}", report::render_table(&result.report));
            println!(
                "  report                     {} {}",
                result.written.json.display(),
                result.written.svg.display()
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "load test failed");
            std::process::ExitCode::FAILURE
        }
    }
}
