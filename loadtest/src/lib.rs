//! The load generator: drives a running node with the simulator's traffic
//! (`sentinel-simulator`) and measures it.
//!
//! [`loadgen`] sends the traffic (over Kafka or HTTP) and measures latency, throughput and
//! detection; [`report`] turns the measurements into a table, `report.json` and `report.svg`.

pub mod loadgen;
pub mod report;
