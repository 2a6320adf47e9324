//! The API's HTTP server: the listener with its connection limits and timeouts, optional TLS,
//! and the deadline on a connection's first bytes.

mod first_bytes;
pub mod listener;
pub mod tls;
