//! `sentinel`: the SentinelStream node and its operator commands.

mod alerting;
mod cli;
mod cluster;
mod decider;
mod demo;
mod field_mapping;
mod history_csv;
mod http;
mod kafka;
mod log_head;
mod node;
mod retention;
mod security;
mod startup_model;
mod stats;
mod telemetry;
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
