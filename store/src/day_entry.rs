//! A decision's entry in the day index: its position, and the fields of its event that the live
//! entity-risk index counts (merchant, device, event time).
//!
//! A node's start-up counts the entity activity of the last 30 days of decisions; reading and
//! decoding each whole decision for three fields cost ~13 µs apiece, against ~2 µs for the
//! entry (BENCHMARKS.md, "Start-up reads the day index's entries, not whole decisions"). A backend that keeps these fields beside its day index answers
//! [`crate::Store::day_entries`] from the index alone.
//!
//! The value kept beside a day-index key ([`encode_into`]): a format byte (1), the event time
//! (ms, i64 BE), then merchant and device, each a presence byte (0 absent, 1 present) followed,
//! when present, by its length (u32 BE) and UTF-8 bytes. Hand-written rather than MessagePack:
//! three fields read on the hot path of a start-up, decoded without allocating until the
//! caller keeps them, and an empty value (entries written before this format) tells the
//! reader to look the decision up instead.

use crate::{DayCursor, StoreError};
use sentinel_event::Decision;
use serde::{Deserialize, Serialize};

/// The format byte of [`encode_into`]'s value.
const FORMAT: u8 = 1;

/// A decision's position in the day index and the entity fields of its event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayEntry {
    /// Decision time and transaction id.
    pub position: DayCursor,
    /// The event's merchant, if it named one.
    pub merchant_id: Option<String>,
    /// The event's device, if it named one.
    pub device_id: Option<String>,
    /// The event's time, milliseconds since the epoch.
    pub event_ms: i64,
}

impl DayEntry {
    /// The entry of a stored decision.
    pub fn of(decision: &Decision) -> Self {
        DayEntry {
            position: DayCursor {
                decided_us: decision.decided_at.timestamp_micros(),
                transaction_id: decision.transaction_id.clone(),
            },
            merchant_id: decision.event.merchant_id.clone(),
            device_id: decision.event.device_id.clone(),
            event_ms: decision.event.event_time_ms(),
        }
    }
}

/// Appends the day-index value of `decision` to `out`; nothing (an empty value: the reader
/// reads the decision instead) for a field whose length does not fit the format's u32, which
/// the event's own size limit already rules out.
pub(crate) fn encode_into(out: &mut Vec<u8>, decision: &Decision) {
    let fields = [&decision.event.merchant_id, &decision.event.device_id];
    let fits = |field: &&Option<String>| {
        field
            .as_ref()
            .is_none_or(|t| u32::try_from(t.len()).is_ok())
    };
    if !fields.iter().all(fits) {
        return;
    }
    out.push(FORMAT);
    out.extend_from_slice(&decision.event.event_time_ms().to_be_bytes());
    for field in fields {
        match field {
            None => out.push(0),
            Some(text) => {
                out.push(1);
                out.extend_from_slice(&(text.len() as u32).to_be_bytes());
                out.extend_from_slice(text.as_bytes());
            }
        }
    }
}

/// The entity fields of a day-index value, borrowed from it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Entities<'a> {
    pub event_ms: i64,
    pub merchant: Option<&'a str>,
    pub device: Option<&'a str>,
}

/// The entity fields of a value written by [`encode_into`]; `Ok(None)` for an empty value (an
/// entry written before this format).
pub(crate) fn decode(value: &[u8]) -> Result<Option<Entities<'_>>, StoreError> {
    let Some((&format, rest)) = value.split_first() else {
        return Ok(None);
    };
    if format != FORMAT {
        return Err(corrupt(format!("unknown day entry format {format:#04x}")));
    }
    let (time, mut rest) = rest
        .split_first_chunk::<8>()
        .ok_or_else(|| corrupt("day entry shorter than its event time".into()))?;
    let mut field = |name: &str| -> Result<Option<&[u8]>, StoreError> {
        let (&present, after) = rest
            .split_first()
            .ok_or_else(|| corrupt(format!("day entry ends before its {name}")))?;
        match present {
            0 => {
                rest = after;
                Ok(None)
            }
            1 => {
                let (len, after) = after
                    .split_first_chunk::<4>()
                    .ok_or_else(|| corrupt(format!("day entry ends in its {name}'s length")))?;
                let len = u32::from_be_bytes(*len) as usize;
                if after.len() < len {
                    return Err(corrupt(format!("day entry ends in its {name}")));
                }
                let (bytes, after) = after.split_at(len);
                rest = after;
                Ok(Some(bytes))
            }
            other => Err(corrupt(format!("day entry's {name} marked {other:#04x}"))),
        }
    };
    let merchant = field("merchant")?;
    let device = field("device")?;
    if !rest.is_empty() {
        return Err(corrupt(format!("{} bytes after a day entry", rest.len())));
    }
    fn text<'a>(bytes: Option<&'a [u8]>, name: &str) -> Result<Option<&'a str>, StoreError> {
        bytes
            .map(std::str::from_utf8)
            .transpose()
            .map_err(|_| corrupt(format!("day entry's {name} is not UTF-8")))
    }
    Ok(Some(Entities {
        event_ms: i64::from_be_bytes(*time),
        merchant: text(merchant, "merchant")?,
        device: text(device, "device")?,
    }))
}

fn corrupt(reason: String) -> StoreError {
    StoreError::Corrupt {
        table: "decisions_by_day",
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn decision(merchant: Option<&str>, device: Option<&str>) -> Decision {
        let mut d = crate::conformance::decision("t-1", "u-1", 1, 0);
        let mut event = (*d.event).clone();
        event.merchant_id = merchant.map(str::to_owned);
        event.device_id = device.map(str::to_owned);
        d.event = Arc::new(event);
        d
    }

    #[test]
    fn entity_fields_round_trip_telling_absent_from_empty() {
        for (merchant, device) in [
            (Some("m-1"), Some("d-é")),
            (None, None),
            (Some(""), None),
            (None, Some("")),
        ] {
            let d = decision(merchant, device);
            let mut value = Vec::new();
            encode_into(&mut value, &d);
            assert_eq!(
                decode(&value).unwrap(),
                Some(Entities {
                    event_ms: d.event.event_time_ms(),
                    merchant,
                    device
                })
            );
        }
    }

    #[test]
    fn an_empty_value_asks_for_the_decision() {
        assert_eq!(decode(&[]).unwrap(), None);
    }

    #[test]
    fn damaged_values_are_corrupt_not_a_panic() {
        let mut value = Vec::new();
        encode_into(&mut value, &decision(Some("merchant"), Some("device")));
        let mut bad_format = value.clone();
        bad_format[0] = 9;
        let mut bad_marker = value.clone();
        bad_marker[9] = 7;
        let mut trailing = value.clone();
        trailing.push(0);
        let mut bad_utf8 = value.clone();
        let last = bad_utf8.len() - 1;
        bad_utf8[last] = 0xff;
        let mut cases = vec![
            (bad_format, "format 0x09"),
            (bad_marker, "merchant marked 0x07"),
            (trailing, "1 bytes after"),
            (bad_utf8, "device is not UTF-8"),
        ];
        // Every truncation, from one byte to one short of whole.
        for len in 1..value.len() {
            cases.push((value[..len].to_vec(), "day entry"));
        }
        for (bytes, expected) in cases {
            match decode(&bytes) {
                Err(StoreError::Corrupt { table, reason }) => {
                    assert_eq!(table, "decisions_by_day");
                    assert!(reason.contains(expected), "{reason} lacks {expected}");
                }
                other => panic!("{bytes:?} decoded as {other:?}"),
            }
        }
    }
}
