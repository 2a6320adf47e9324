//! `sentinel`: the SentinelStream node and its operator commands (see the `sentinel_node`
//! library).

use clap::Parser;

fn main() -> std::process::ExitCode {
    sentinel_node::execute(sentinel_node::Cli::parse())
}
