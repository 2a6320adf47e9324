//! `sentinel`: the SentinelStream node and its operator commands.

mod alerting;
mod alerts_cli;
mod backtest_cli;
mod cli;
mod cluster;
mod cluster_tls;
mod cluster_view;
mod config_check;
mod decider;
mod demo;
mod entity_placement;
mod entity_refresh;
mod field_mapping;
mod first_bytes;
mod history_csv;
mod import_cli;
mod kafka;
mod labels_cli;
mod listener;
mod log_head;
mod node;
mod owner_route;
mod policy_sync;
mod rejects;
mod remote_store;
mod retention;
mod security;
mod simulate_cli;
mod startup_model;
mod stats;
mod telemetry;
mod tls;
mod train_cli;
mod unsafe_settings;

mod config;
mod currency;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sentinel")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
