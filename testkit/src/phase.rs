//! Named phases for integration tests that walk one expensive fixture (processes, a broker,
//! a browser) through several steps: a failure names the step it happened in.

use futures::FutureExt;
use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;

/// Runs `work` and returns its value; when it panics (a failed assertion, a timed-out wait),
/// panics again with the original message behind `phase `{name}` failed:`, so the test's
/// failure says which phase broke.
pub async fn phase<T>(name: &str, work: impl Future<Output = T>) -> T {
    match AssertUnwindSafe(work).catch_unwind().await {
        Ok(value) => value,
        Err(panic) => panic!("phase `{name}` failed: {}", message(&*panic)),
    }
}

/// The text a panic was raised with (`panic!` and `assert!` payloads are a `String` or a
/// `&str`).
fn message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("a panic without a message")
}
