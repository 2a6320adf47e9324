//! The node's allocator: mimalloc, keeping freed memory ten seconds before giving it back.
//!
//! Every event allocates on several threads (parse, actors, writer, producer); mimalloc's
//! per-thread free lists cost less than glibc's arenas there (BENCHMARKS.md, "Allocator").
//! Its default returns a freed page to the OS (`MADV_DONTNEED`) one second after the last
//! block on it is freed. User actors come and go all the time (a card holder pays a few times
//! a day, so nearly every event spawns an actor and passivation or the live-actor limit stops
//! another), and their memory is freed in one place and needed again a little later in
//! another: with a one-second delay the kernel took those pages back and zeroed them again on
//! the next touch (the in-process cold-user benchmark: 212,000–461,000 page faults, against
//! 1,300 with ten seconds, and 8–28% more CPU). Ten seconds covers that churn; memory not
//! needed for ten seconds still goes back (BENCHMARKS.md, "Stored decisions in MessagePack,
//! freed memory kept ten seconds").
//!
//! The binaries declare the allocator and call [`configure`] first thing:
//!
//! ```
//! #[global_allocator]
//! static ALLOCATOR: sentinel_allocator::MiMalloc = sentinel_allocator::MiMalloc;
//!
//! fn main() {
//!     sentinel_allocator::configure();
//! }
//! ```

pub use mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay`, by its position in `mi_option_e` (the same in mimalloc
/// 2 and 3; the Rust bindings name only older options). A test checks it is that option.
const PURGE_DELAY_OPTION: libmimalloc_sys::mi_option_t = 15;

/// How long freed memory stays with the process before mimalloc returns it to the OS.
pub const PURGE_DELAY_MS: i64 = 10_000;

/// The environment variable with which an operator sets the delay instead (mimalloc reads it
/// at start-up; milliseconds, `-1` never to return memory).
pub const PURGE_DELAY_ENV: &str = "MIMALLOC_PURGE_DELAY";

/// Sets the purge delay to [`PURGE_DELAY_MS`] unless the environment sets it. Call it before
/// the process gets busy; options can change at any time.
pub fn configure() {
    if std::env::var_os(PURGE_DELAY_ENV).is_some() {
        return;
    }
    // SAFETY: stores an integer in mimalloc's option table; safe from any thread at any time.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY_OPTION, PURGE_DELAY_MS as _) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[global_allocator]
    static ALLOCATOR: MiMalloc = MiMalloc;

    fn option(option: libmimalloc_sys::mi_option_t) -> i64 {
        // SAFETY: reads mimalloc's option table.
        unsafe { libmimalloc_sys::mi_option_get(option) as i64 }
    }

    /// One test, so nothing runs between reading the default and setting it.
    #[test]
    fn configure_sets_the_purge_delay_and_nothing_else() {
        assert!(
            std::env::var_os(PURGE_DELAY_ENV).is_none(),
            "run without {PURGE_DELAY_ENV}"
        );
        // The option at that position has the purge delay's default (1,000 ms in mimalloc 3)
        // and its neighbours theirs: the position names the option this crate means.
        let neighbours = [
            option(PURGE_DELAY_OPTION - 1),
            option(PURGE_DELAY_OPTION + 1),
        ];
        assert_eq!(option(PURGE_DELAY_OPTION), 1_000);
        configure();
        assert_eq!(option(PURGE_DELAY_OPTION), PURGE_DELAY_MS);
        assert_eq!(
            [
                option(PURGE_DELAY_OPTION - 1),
                option(PURGE_DELAY_OPTION + 1)
            ],
            neighbours
        );
    }
}
