//! UTC timestamps serialized as chrono serializes them (RFC 3339, `Z`, as many fractional
//! digits as the value needs: none, 3, 6 or 9), without going through `fmt`.
//!
//! Every decision carries two timestamps and is encoded twice (the stored record and the
//! output topic's JSON), and chrono's `Serialize` writes through `fmt::Display` — digit by
//! digit through a formatter, and into a fresh `String` for serializers without a text sink
//! (MessagePack). Writing the 20–30 bytes into a stack buffer and handing the serializer one
//! `&str` gives the same bytes for less. Years outside 0..=9999 and leap seconds, which chrono
//! writes in other shapes, go to chrono itself.

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::{Serialize, Serializer};
use std::borrow::Borrow;

/// Longest text written here: `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
const MAX_LEN: usize = 30;

/// `serialize_with` for `DateTime<Utc>` fields (and references to them): the bytes chrono's
/// own `Serialize` writes.
pub fn serialize<T, S>(time: &T, serializer: S) -> Result<S::Ok, S::Error>
where
    T: Borrow<DateTime<Utc>>,
    S: Serializer,
{
    let time = time.borrow();
    let mut buf = [0u8; MAX_LEN];
    match write(time, &mut buf) {
        Some(len) => serializer.serialize_str(
            std::str::from_utf8(&buf[..len]).expect("only ASCII digits and separators"),
        ),
        None => time.serialize(serializer),
    }
}

/// Writes `time` into `buf`, returning the length; `None` where chrono's shape differs.
fn write(time: &DateTime<Utc>, buf: &mut [u8; MAX_LEN]) -> Option<usize> {
    let year = time.year();
    let nano = time.nanosecond();
    if !(0..=9999).contains(&year) || nano >= 1_000_000_000 {
        return None;
    }
    let mut at = put(buf, 0, year as u32, 4);
    for (separator, value) in [
        (b'-', time.month()),
        (b'-', time.day()),
        (b'T', time.hour()),
        (b':', time.minute()),
        (b':', time.second()),
    ] {
        buf[at] = separator;
        at = put(buf, at + 1, value, 2);
    }
    let (fraction, width) = if nano == 0 {
        (0, 0)
    } else if nano.is_multiple_of(1_000_000) {
        (nano / 1_000_000, 3)
    } else if nano.is_multiple_of(1_000) {
        (nano / 1_000, 6)
    } else {
        (nano, 9)
    };
    if width > 0 {
        buf[at] = b'.';
        at = put(buf, at + 1, fraction, width);
    }
    buf[at] = b'Z';
    Some(at + 1)
}

/// Writes `value` as `width` zero-padded decimal digits at `at`; the position after them.
fn put(buf: &mut [u8; MAX_LEN], at: usize, mut value: u32, width: usize) -> usize {
    for slot in buf[at..at + width].iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
    at + width
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[derive(Serialize)]
    struct Fast<'a>(#[serde(serialize_with = "serialize")] &'a DateTime<Utc>);

    fn assert_same(time: DateTime<Utc>) {
        assert_eq!(
            serde_json::to_string(&Fast(&time)).unwrap(),
            serde_json::to_string(&time).unwrap(),
            "{time:?}"
        );
        assert_eq!(
            rmp_serde::to_vec(&Fast(&time)).unwrap(),
            rmp_serde::to_vec(&time).unwrap(),
            "{time:?}"
        );
    }

    #[test]
    fn every_fraction_shape_is_written_as_chrono_writes_it() {
        let base = Utc.with_ymd_and_hms(2026, 11, 22, 9, 5, 7).unwrap();
        for nanos in [
            0,
            1,
            999,
            1_000,
            120_000,
            999_999,
            1_000_000,
            7_000_000,
            123_000_000,
            123_456_000,
            123_456_789,
            999_999_999,
        ] {
            assert_same(base + chrono::Duration::nanoseconds(nanos));
        }
    }

    #[test]
    fn edge_dates_and_a_sweep_are_written_as_chrono_writes_them() {
        let edges = [
            Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(1, 2, 3, 4, 5, 6).unwrap(),
            Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2024, 2, 29, 23, 59, 59).unwrap(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap(),
        ];
        for time in edges {
            assert_same(time);
        }
        // A deterministic sweep over four millennia, at odd nanosecond steps.
        let mut time = Utc.with_ymd_and_hms(100, 1, 1, 0, 0, 0).unwrap();
        let step = chrono::Duration::seconds(48_271 * 3_607) + chrono::Duration::nanoseconds(7_919);
        for _ in 0..10_000 {
            assert_same(time);
            time += step;
        }
    }

    #[test]
    fn shapes_chrono_writes_otherwise_go_to_chrono() {
        let far = Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).unwrap();
        let before_zero = Utc.with_ymd_and_hms(-1, 6, 1, 12, 0, 0).unwrap();
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
            .unwrap()
            .and_utc();
        for time in [far, before_zero, leap] {
            assert_eq!(write(&time, &mut [0; MAX_LEN]), None, "{time:?}");
            assert_same(time);
        }
    }
}
