//! Kafka: the consumer-group source, the output and dead-letter producers, offset tracking.

mod alerts_consumer;
mod consumer;
mod delivery;
mod offsets;
mod ownership;
mod partitioner;
mod producer;

pub use alerts_consumer::run_alerts_consumer;
pub use consumer::run_consumer;
pub use ownership::PartitionOwnership;
pub use partitioner::partition_of;
pub use producer::{producer, DeadLetter, Publisher};

use crate::config::KafkaConfig;
use rdkafka::ClientConfig;

/// librdkafka settings shared by every client, with the user's extra options last so they win.
fn client_config(kafka: &KafkaConfig) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &kafka.brokers);
    for (key, value) in &kafka.options {
        config.set(key, value);
    }
    config
}

/// Creates any missing topic of the node (input, outputs, dead letters).
pub async fn ensure_topics(kafka: &KafkaConfig) -> anyhow::Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::types::RDKafkaErrorCode;
    let admin: AdminClient<DefaultClientContext> = client_config(kafka).create()?;
    let names = [
        &kafka.input_topic,
        &kafka.approved_topic,
        &kafka.fraud_topic,
        &kafka.dead_letter_topic,
    ];
    let topics: Vec<NewTopic> = names
        .iter()
        .map(|name| NewTopic::new(name, kafka.partitions, TopicReplication::Fixed(1)))
        .collect();
    let results = admin.create_topics(&topics, &AdminOptions::new()).await?;
    for result in results {
        match result {
            Ok(topic) => tracing::info!(%topic, "created topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => anyhow::bail!("creating topic {topic}: {code}"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The load generator's `--echo` stands in for the node with the node's client settings,
    /// so that its latency is the floor under the node's: they must not drift apart.
    #[test]
    fn the_load_generators_echo_uses_the_nodes_client_settings() {
        use sentinel_loadtest::loadgen::echo::{NODE_FETCH_SETTINGS, NODE_PRODUCER_SETTINGS};
        assert_eq!(NODE_PRODUCER_SETTINGS, producer::PRODUCER_SETTINGS);
        let fetch_wait = KafkaConfig::default().fetch_wait_max_ms.to_string();
        let mut node = vec![("fetch.wait.max.ms", fetch_wait.as_str())];
        node.extend(consumer::FETCH_SETTINGS);
        assert_eq!(NODE_FETCH_SETTINGS.to_vec(), node);
    }
}
