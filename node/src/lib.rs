//! A SentinelStream node and its operator commands, as a library: the `sentinel` binary parses
//! its command line into [`Cli`] and hands it to [`execute`]; an in-process test can start a
//! node with [`run`] on a [`NodeConfig`].

#![warn(missing_docs)]

mod alerting;
mod cli;
mod cluster;
pub mod config;
mod currency;
mod decider;
mod demo;
mod field_mapping;
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

pub use cli::Cli;
pub use config::NodeConfig;
pub use demo::DemoOptions;
pub use node::{run, Source};

/// Threads the runtime's blocking pool may run at once (tokio's default is 512). Blocking work
/// is bounded where it starts — the embedded store's reads by `store.max_concurrent_reads`
/// (at most 64), its catalogue writes two and its restores four at a time, one writer — so
/// this cap is a backstop with room to spare for the writer, retention and file reads.
pub const BLOCKING_THREADS: usize = 128;

/// Runs a parsed command line on a multi-threaded runtime; errors are printed on stderr and
/// give a failing exit code.
pub fn execute(cli: Cli) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS)
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
