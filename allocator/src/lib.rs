//! The node's allocator: mimalloc, keeping freed memory ten seconds before giving it back,
//! in 4 KiB pages rather than transparent huge pages.
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
//! Transparent huge pages are turned off for the process (`PR_SET_THP_DISABLE`): a user's
//! state is a few small allocations spread over the heap, so a 2 MiB page faulted in and
//! zeroed whole for them is mostly resident and unused; with 4 KiB pages the node with a
//! million card holders peaks ~50–100 MiB lower, its CPU within 0–5% (BENCHMARKS.md,
//! "Transparent huge pages off").
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

/// mimalloc's `mi_option_allow_thp`, by its position in mimalloc 3's `mi_option_e`.
const ALLOW_THP_OPTION: libmimalloc_sys::mi_option_t = 43;

/// The environment variable with which an operator keeps transparent huge pages (`1`; mimalloc
/// reads it at start-up).
pub const ALLOW_THP_ENV: &str = "MIMALLOC_ALLOW_THP";

/// Sets the purge delay to [`PURGE_DELAY_MS`] and turns transparent huge pages off for the
/// process, each unless the environment sets it. Call it first thing: memory faulted in
/// before keeps its pages.
pub fn configure() {
    if std::env::var_os(PURGE_DELAY_ENV).is_none() {
        // SAFETY: stores an integer in mimalloc's option table; safe from any thread.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY_OPTION, PURGE_DELAY_MS as _) }
    }
    if std::env::var_os(ALLOW_THP_ENV).is_none() {
        // mimalloc reads its option at start-up, before `main`; the kernel's switch covers
        // every mapping from now on, the option keeps mimalloc from asking for huge pages.
        // SAFETY: as above; `prctl` with these arguments only sets a flag on this process
        // (it fails only on kernels before 3.15, which keep their pages as they were).
        unsafe {
            libmimalloc_sys::mi_option_set(ALLOW_THP_OPTION, 0);
            libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
        }
    }
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

    /// The options at `positions` and their neighbours'.
    fn around(positions: [libmimalloc_sys::mi_option_t; 2]) -> Vec<i64> {
        positions
            .iter()
            .flat_map(|&p| [option(p - 1), option(p), option(p + 1)])
            .collect()
    }

    /// One test, so nothing runs between reading the defaults and setting them.
    #[test]
    fn configure_sets_the_purge_delay_turns_huge_pages_off_and_nothing_else() {
        for name in [PURGE_DELAY_ENV, ALLOW_THP_ENV] {
            assert!(std::env::var_os(name).is_none(), "run without {name}");
        }
        // The options at those positions have their defaults (in mimalloc 3: a purge delay
        // of 1,000 ms, huge pages allowed) and their neighbours theirs: the positions name
        // the options this crate means.
        let before = around([PURGE_DELAY_OPTION, ALLOW_THP_OPTION]);
        assert_eq!(before, [1, 1_000, 0, 32, 1, 0]);
        configure();
        let mut expected = before;
        expected[1] = PURGE_DELAY_MS;
        expected[4] = 0;
        assert_eq!(around([PURGE_DELAY_OPTION, ALLOW_THP_OPTION]), expected);
        // SAFETY: reads a flag of this process.
        let disabled = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
        assert_eq!(disabled, 1, "the kernel gives this process no huge pages");
    }
}
