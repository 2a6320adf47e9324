//! Events sent to their users' actors in batches: one message per shard for a burst of
//! events, instead of one per event.

use crate::scorer::Scorer;
use crate::shard::ShardMessage;
use crate::user_actor::ScoreRequest;
use sentinel_event::{DecisionError, Transaction};
use sentinel_store::Stored;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::oneshot;

/// Events gathered for their users' actors and sent as one message per shard, so that a
/// source receiving events in bursts (a Kafka fetch) wakes each shard once per burst, not
/// once per event. Each user's events reach its actor in the order they were added.
/// [`Dispatch::send`] sends what is gathered; dropping the dispatch sends it too, so an added
/// event is never left behind.
pub struct Dispatch<'a> {
    scorer: &'a Scorer,
    /// The requests gathered for each shard, by shard index.
    pending: Vec<Vec<ScoreRequest>>,
}

impl<'a> Dispatch<'a> {
    pub(crate) fn new(scorer: &'a Scorer) -> Self {
        Dispatch {
            scorer,
            pending: (0..scorer.shard_count()).map(|_| Vec::new()).collect(),
        }
    }

    /// Adds an event to the next [`Dispatch::send`] and returns the wait for its stored
    /// decision, as [`Scorer::score`] would resolve. Should its actor stop before answering (a
    /// panic on an earlier event of the user), the event is sent again on its own.
    pub fn add(
        &mut self,
        event: Arc<Transaction>,
        received: Instant,
    ) -> impl Future<Output = Result<Stored, DecisionError>> + Send + 'a {
        let (reply, answer) = oneshot::channel();
        let shard = self.scorer.shard_index(&event.user_id);
        self.pending[shard].push(ScoreRequest {
            event: Arc::clone(&event),
            received,
            reply,
        });
        let scorer = self.scorer;
        async move {
            match answer.await {
                Ok(result) => result,
                // Also when the shard was gone: the retry then reports the node stopping.
                Err(_) => scorer.score(event, received).await,
            }
        }
    }

    /// Sends each shard the events gathered for it, in one message.
    pub fn send(&mut self) {
        for (shard, requests) in self.pending.iter_mut().enumerate() {
            if requests.is_empty() {
                continue;
            }
            let batch = std::mem::take(requests);
            // A shard that is gone drops the requests; their waits see it (above).
            let _ = self
                .scorer
                .shard(shard)
                .cast(ShardMessage::RouteBatch(batch));
        }
    }
}

impl Drop for Dispatch<'_> {
    fn drop(&mut self) {
        self.send();
    }
}
