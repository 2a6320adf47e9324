//! A store for tests that need to step into the write path: the embedded store, with a hook
//! awaited before every batch is written (to fail it, or to hold it until the test lets go),
//! and one that may fail a user's restore reads.

use async_trait::async_trait;
use futures::future::BoxFuture;
use sentinel_event::Decision;
use sentinel_store::{
    DayCursor, EmbeddedStore, RecordGuard, RecordKind, RecordWrite, RestorePoint, Store,
    StoreError, UserSnapshot, WriteOp, WriteResult,
};

/// Runs before a batch is written; an error fails the batch instead.
pub type BeforeWrite =
    Box<dyn Fn(&[WriteOp]) -> BoxFuture<'static, Result<(), StoreError>> + Send + Sync>;

/// Runs before a user's snapshot or restore point is read; an error fails the read instead.
pub type BeforeRestoreRead = Box<dyn Fn(&str) -> Result<(), StoreError> + Send + Sync>;

/// The embedded store, with [`BeforeWrite`] in front of every batch and, when given,
/// [`BeforeRestoreRead`] in front of every read of a user's snapshot or restore point.
pub struct HookedStore {
    pub inner: EmbeddedStore,
    pub before_write: BeforeWrite,
    pub before_restore_read: Option<BeforeRestoreRead>,
}

impl HookedStore {
    fn check_restore_read(&self, user: &str) -> Result<(), StoreError> {
        self.before_restore_read
            .as_ref()
            .map_or(Ok(()), |hook| hook(user))
    }
}

#[async_trait]
impl Store for HookedStore {
    async fn write_batch(&self, ops: Vec<WriteOp>) -> Result<Vec<WriteResult>, StoreError> {
        (self.before_write)(&ops).await?;
        self.inner.write_batch(ops).await
    }
    async fn decision(&self, id: &str) -> Result<Option<Decision>, StoreError> {
        self.inner.decision(id).await
    }
    async fn decisions_for_user(
        &self,
        user: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Decision>, StoreError> {
        self.inner.decisions_for_user(user, after, limit).await
    }
    async fn decisions_by_day(
        &self,
        day: u32,
        after: Option<DayCursor>,
        limit: usize,
    ) -> Result<Vec<Decision>, StoreError> {
        self.inner.decisions_by_day(day, after, limit).await
    }
    async fn snapshot(&self, user: &str) -> Result<Option<UserSnapshot>, StoreError> {
        self.check_restore_read(user)?;
        self.inner.snapshot(user).await
    }
    async fn restore_point(&self, user: &str, limit: usize) -> Result<RestorePoint, StoreError> {
        self.check_restore_read(user)?;
        self.inner.restore_point(user, limit).await
    }
    async fn decision_count(&self) -> Result<u64, StoreError> {
        self.inner.decision_count().await
    }
    async fn put_records(&self, writes: Vec<RecordWrite>) -> Result<(), StoreError> {
        self.inner.put_records(writes).await
    }
    async fn put_records_if(
        &self,
        guard: RecordGuard,
        writes: Vec<RecordWrite>,
    ) -> Result<bool, StoreError> {
        self.inner.put_records_if(guard, writes).await
    }
    async fn record(&self, kind: RecordKind, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.record(kind, key).await
    }
    async fn scan_records(
        &self,
        kind: RecordKind,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.inner.scan_records(kind, prefix, after, limit).await
    }
}
