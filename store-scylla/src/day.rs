//! A day's decisions are spread over [`BUCKETS`] partitions; a page in time order is the
//! merge of each bucket's next rows.

/// Partitions per day. Enough to spread a busy day's writes over the cluster; few enough that
/// a reader's fan-out stays cheap.
pub const BUCKETS: i32 = 8;

/// The bucket of a transaction: a stable hash of its id, the same on every node and release.
pub fn bucket_of(transaction_id: &str) -> i32 {
    stable_bucket(transaction_id, BUCKETS)
}

/// `key`'s bucket among `buckets`: FNV-1a, stable across nodes, releases and platforms.
pub fn stable_bucket(key: &str, buckets: i32) -> i32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in key.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    (hash % buckets.max(1) as u32) as i32
}

/// One row read from a bucket: its position in the day and the decision's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayRow {
    /// Decision time in microseconds.
    pub decided_us: i64,
    /// Transaction id, breaking ties.
    pub transaction_id: String,
    /// The stored decision.
    pub body: Vec<u8>,
}

/// Merges the rows each bucket returned (each in order, each at most `limit` long) into the
/// day's first `limit` rows after the cursor.
pub fn merge(buckets: Vec<Vec<DayRow>>, limit: usize) -> Vec<DayRow> {
    let mut rows: Vec<DayRow> = buckets.into_iter().flatten().collect();
    rows.sort_unstable_by(|a, b| {
        (a.decided_us, &a.transaction_id).cmp(&(b.decided_us, &b.transaction_id))
    });
    rows.truncate(limit);
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    use sentinel_store::DayCursor;

    /// What the CQL relation `(decided_us, transaction_id) > (?, ?)` selects.
    fn after(row: &DayRow, cursor: &DayCursor) -> bool {
        (row.decided_us, row.transaction_id.as_str())
            > (cursor.decided_us, cursor.transaction_id.as_str())
    }

    fn row(us: i64, id: &str) -> DayRow {
        DayRow {
            decided_us: us,
            transaction_id: id.into(),
            body: id.as_bytes().to_vec(),
        }
    }

    #[test]
    fn buckets_are_stable_and_spread() {
        assert_eq!(bucket_of("t-1"), bucket_of("t-1"));
        let mut used = [0usize; BUCKETS as usize];
        for i in 0..8_000 {
            used[bucket_of(&format!("txn-{i}")) as usize] += 1;
        }
        // Every bucket takes a fair share (each would get 1000 if perfectly even).
        assert!(used.iter().all(|&n| (700..1300).contains(&n)), "{used:?}");
    }

    #[test]
    fn merging_buckets_gives_the_day_in_order_and_pages_by_cursor() {
        let buckets = vec![
            vec![row(1, "a"), row(5, "e"), row(9, "i")],
            vec![row(2, "b"), row(5, "d")],
            vec![],
            vec![row(3, "c"), row(10, "j")],
        ];
        let page = merge(buckets.clone(), 4);
        let ids: Vec<_> = page.iter().map(|r| r.transaction_id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c", "d"]);

        let cursor = DayCursor {
            decided_us: 5,
            transaction_id: "d".into(),
        };
        let rest: Vec<Vec<DayRow>> = buckets
            .into_iter()
            .map(|b| b.into_iter().filter(|r| after(r, &cursor)).collect())
            .collect();
        let ids: Vec<_> = merge(rest, 10)
            .into_iter()
            .map(|r| r.transaction_id)
            .collect();
        assert_eq!(ids, ["e", "i", "j"]);
    }
}
