//! Realistic card traffic with labelled, injected fraud: one code path for the demo node and the
//! load generator.
//!
//! [`simulator`] produces the traffic; [`loadgen`] drives a running node with it (over Kafka or
//! HTTP) and measures latency, throughput and detection; [`report`] turns the measurements into
//! a table, `report.json` and `report.svg`.

#[cfg(feature = "loadgen")]
pub mod loadgen;
#[cfg(feature = "loadgen")]
pub mod report;
pub mod simulator;
