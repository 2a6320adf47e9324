//! Batched restores: user actors that start together (a burst of cold users) share one store
//! call for their restore points instead of one blocking read each.
//!
//! Like the writer's group commit: the task takes whatever restores are queued, asks the store
//! for all of them at once, and answers each. Idle, a restore is asked for alone, at once;
//! under load, batches grow while the previous one is read.

use crate::restore::PAGE;
use sentinel_store::{RestorePoint, Store, StoreError};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Most users restored in one store call.
const MAX_BATCH: usize = 256;
/// Restores that may wait before actors asking for one wait.
const QUEUE: usize = 4_096;

type Request = (Arc<str>, oneshot::Sender<Result<RestorePoint, StoreError>>);

/// Handle to the restore task. Cheap to clone; the task ends when every handle is dropped.
#[derive(Clone)]
pub struct Restorer {
    tx: mpsc::Sender<Request>,
}

impl Restorer {
    /// Starts the restore task on the current tokio runtime.
    pub fn start(store: Arc<dyn Store>) -> Restorer {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(store, rx));
        Restorer { tx }
    }

    /// The user's snapshot and the first page of decisions after it, read in the next batch.
    pub async fn restore_point(&self, user_id: &Arc<str>) -> Result<RestorePoint, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((Arc::clone(user_id), reply))
            .await
            .map_err(|_| StoreError::Backend("the restore task has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Backend("the restore task has stopped".into()))?
    }
}

/// Answers restores until every handle is dropped; returns how many store calls it made.
async fn run(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Request>) -> u64 {
    let mut batches = 0;
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let users: Vec<String> = batch.iter().map(|(user, _)| user.to_string()).collect();
        batches += 1;
        metrics::histogram!(crate::metrics::RESTORE_BATCH_SIZE).record(users.len() as f64);
        match store.restore_points(&users, PAGE).await {
            Ok(points) if points.len() == batch.len() => {
                for ((_, reply), point) in batch.drain(..).zip(points) {
                    let _ = reply.send(Ok(point));
                }
            }
            Ok(points) => {
                let e = StoreError::Backend(format!(
                    "{} restore points for {} users",
                    points.len(),
                    batch.len()
                ));
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(Err(e.clone()));
                }
            }
            Err(e) => {
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;
    use sentinel_store::conformance::decision;
    use sentinel_store::{EmbeddedStore, WriteOp};

    /// Restores asked for together are read in one store call, and each actor gets its own
    /// user's history.
    #[tokio::test(flavor = "current_thread")]
    async fn restores_asked_together_share_one_store_call() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EmbeddedStore::open(&dir.path().join("s.redb")).unwrap());
        let ops = (0..50)
            .map(|u| {
                let d = decision(&format!("t{u}"), &format!("u{u}"), 1, 1);
                WriteOp::Decision(Arc::new(d))
            })
            .collect();
        store.write_batch(ops).await.unwrap();
        // Fifty actors ask before the task reads its queue, as a burst of cold users does.
        let (tx, rx) = mpsc::channel(QUEUE);
        let mut answers = Vec::new();
        for u in 0..50 {
            let (reply, answer) = oneshot::channel();
            tx.send((Arc::from(format!("u{u}")), reply)).await.unwrap();
            answers.push(answer);
        }
        drop(tx);
        assert_eq!(run(store, rx).await, 1, "one store call for the burst");
        for (u, answer) in answers.into_iter().enumerate() {
            let point = answer.await.unwrap().unwrap();
            assert_eq!(point.decisions.len(), 1);
            assert_eq!(point.decisions[0].user_id, format!("u{u}"));
        }
    }
}
