//! `sentinel`: the SentinelStream node and its operator commands (see the `sentinel_node`
//! library).

use clap::Parser;

/// mimalloc, tuned for user actors that come and go (`allocator/src/lib.rs` says why).
#[global_allocator]
static ALLOCATOR: sentinel_allocator::MiMalloc = sentinel_allocator::MiMalloc;

fn main() -> std::process::ExitCode {
    sentinel_allocator::configure();
    sentinel_node::execute(sentinel_node::Cli::parse())
}
