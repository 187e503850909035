//! Points in time and the replay window.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Default replay window: a timestamp more than this far from "now", in either
/// direction, is rejected.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// A moment as milliseconds since the Unix epoch.
///
/// Verification takes "now" as an argument of this type, so tests and
/// replays need no clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixTime(i64);

impl UnixTime {
    /// From whole seconds since the epoch.
    pub fn from_secs(secs: i64) -> Self {
        UnixTime(secs.saturating_mul(1000))
    }

    /// From milliseconds since the epoch.
    pub fn from_millis(millis: i64) -> Self {
        UnixTime(millis)
    }

    /// The system clock now (the epoch if the clock is before it).
    pub fn now() -> Self {
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        UnixTime(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }

    /// Whole seconds since the epoch (rounded down).
    pub fn as_secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// Milliseconds since the epoch.
    pub fn as_millis(self) -> i64 {
        self.0
    }

    /// The value written in a header of the given unit.
    pub(crate) fn in_unit(self, unit: TimeUnit) -> i64 {
        match unit {
            TimeUnit::Seconds => self.as_secs(),
            TimeUnit::Milliseconds => self.as_millis(),
        }
    }

    /// Parses a timestamp header value: ASCII digits only, in `unit`.
    pub(crate) fn parse(text: &[u8], unit: TimeUnit) -> Option<Self> {
        if text.is_empty() || text.len() > 18 || !text.iter().all(u8::is_ascii_digit) {
            return None;
        }
        // At most 18 digits, so this cannot overflow an i64.
        let n = text.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0'));
        match unit {
            TimeUnit::Seconds => n.checked_mul(1000).map(UnixTime),
            TimeUnit::Milliseconds => Some(UnixTime(n)),
        }
    }
}

/// Unit of a timestamp as written in a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeUnit {
    /// Unix seconds.
    Seconds,
    /// Unix milliseconds.
    Milliseconds,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_is_strict() {
        assert_eq!(
            UnixTime::parse(b"1735421346", TimeUnit::Seconds),
            Some(UnixTime::from_secs(1735421346))
        );
        assert_eq!(
            UnixTime::parse(b"1735421346000", TimeUnit::Milliseconds),
            Some(UnixTime::from_secs(1735421346))
        );
        for bad in [
            &b""[..],
            b"-1",
            b"+1",
            b" 1",
            b"1.0",
            b"99999999999999999999",
        ] {
            assert_eq!(UnixTime::parse(bad, TimeUnit::Seconds), None, "{bad:?}");
        }
    }

    #[test]
    fn negative_millis_round_down() {
        assert_eq!(UnixTime::from_millis(-1).as_secs(), -1);
        assert_eq!(UnixTime::from_millis(1999).as_secs(), 1);
    }
}
