//! Plain-language notes that say how to read a report.

use super::Report;
use sentinel_simulator::Scenario;

/// Notes for `report`, after the run's own `extra` notes.
pub fn explain(report: &Report, extra: Vec<String>) -> Vec<String> {
    let mut notes = extra;
    notes.push(match report.mode.as_str() {
        "kafka" => "Latency is end to end: from just before an event was handed to the producer \
                    (header sentinel-sent-at-us) until its decision was read from \
                    transactions_approved or transactions_fraud, both clocks in this process. It \
                    includes producer batching (this generator's linger.ms 5, then the node's), the \
                    broker and both consumers' fetch waits, not only the node."
            .to_owned(),
        "kafka-echo" => "No node decided these events: the load generator consumed the input \
                         topic and republished each event as an approval itself, with the \
                         node's Kafka client settings (--echo). Latency is the broker's own \
                         round trip for this rate and run length (two broker hops, producer \
                         batching, two fetch waits): the floor under a run against the node. \
                         Detection figures mean nothing here."
            .to_owned(),
        _ => "Latency is the HTTP round trip of POST /v1/transactions, including queueing for \
              one of the bounded concurrent requests' connections."
            .to_owned(),
    });
    notes.push(
        "Recall of a scenario is the fraction of its decided, labelled events whose outcome was \
         review or decline; precision is the fraction of flagged events that carried a label. \
         Both measure the policy the node runs as much as the engine: a scenario that no rule \
         scores up to the review threshold shows a low recall by design of the policy."
            .to_owned(),
    );
    let has = |s: Scenario| report.detection.scenarios.iter().any(|d| d.scenario == s);
    if has(Scenario::VelocityBurst) {
        notes.push(
            "velocity_burst labels every event of a burst (14 to 20), but a velocity rule such as \
             the seed policy's count(user, 5m) > 10 can only fire from the 11th event on, so its \
             recall is bounded well below 1 (about 20-45%) even when every burst is caught."
                .to_owned(),
        );
    }
    if has(Scenario::FraudRing) {
        notes.push(
            "fraud_ring labels each of the four members' events; the seed policy's \
             shared_device_ring rule (device.distinct_users(24h) > 2) can only fire from the \
             third member on, so its recall is bounded at about 50%; members join up to 9 \
             minutes after the first, so in short runs many rings are still incomplete."
                .to_owned(),
        );
    }
    if report.undecided > 0 {
        notes.push(format!(
            "{} events got no decision before the drain timeout ({} s); they count against every \
             step they were sent in.",
            report.undecided, report.config.drain_secs
        ));
    }
    if report.unmatched_decisions > 0 {
        notes.push(format!(
            "{} decisions read were not for events this run was waiting for (an earlier run's, \
             or republished ones) and were ignored.",
            report.unmatched_decisions
        ));
    }
    if report.steps.len() > 1 {
        notes.push(format!(
            "Sustained maximum: the highest step rate such that it and every step before it sent \
             at least {:.0}% of its target, decided at least {:.0}% of what it sent while it ran, \
             got every decision in the end, and kept p99 within {} ms.",
            super::KEEP_UP * 100.0,
            super::KEEP_UP * 100.0,
            report.config.p99_objective_ms
        ));
    }
    notes
}
