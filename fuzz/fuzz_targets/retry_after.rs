//! `Retry-After` parsing: any header value, no panic; digits are seconds
//! (saturating); a date is the time until it (zero when past); nothing
//! else is read.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use hookseal_dispatch::parse_retry_after;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    let now = UNIX_EPOCH + Duration::from_secs(1_735_421_346);
    let got = parse_retry_after(value, now);
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        let want = v.parse::<u64>().unwrap_or(u64::MAX);
        assert_eq!(got, Some(Duration::from_secs(want)));
    } else if let Some(d) = got {
        // Only an HTTP date parses, and its distance from now.
        let at = httpdate::parse_http_date(v).expect("accepted something that is not an HTTP date");
        assert_eq!(d, at.duration_since(now).unwrap_or(Duration::ZERO));
    }
});

