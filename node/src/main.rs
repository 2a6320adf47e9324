//! `sentinel`: the SentinelStream node and its operator commands (see the `sentinel_node`
//! library).

use clap::Parser;

/// Every event allocates on several threads (parse, actors, writer, producer); mimalloc's
/// per-thread free lists cost less than glibc's arenas there and return memory sooner
/// (BENCHMARKS.md, "Allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    sentinel_node::execute(sentinel_node::Cli::parse())
}
