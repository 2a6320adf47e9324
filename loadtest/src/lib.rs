//! Realistic card traffic with labelled, injected fraud: one code path for the demo node and the
//! load generator.

pub mod simulator;
