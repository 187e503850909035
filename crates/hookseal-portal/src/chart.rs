//! Attempts and failures per hour as an SVG bar chart, drawn by the server
//! (no script, no stylesheet inside: presentation attributes only, which
//! the Content-Security-Policy allows).

use maud::{html, Markup};

/// One hour of an endpoint's attempts.
pub(crate) struct Hour {
    /// Hours before the current one (0: this hour).
    pub(crate) ago: u32,
    pub(crate) attempts: i64,
    pub(crate) failures: i64,
}

/// Hours shown, newest on the right.
pub(crate) const HOURS: u32 = 24;

const W: u32 = 480;
const H: u32 = 120;

/// The chart; `hours` may omit hours without attempts.
pub(crate) fn attempts(hours: &[Hour]) -> Markup {
    let hours: Vec<&Hour> = hours.iter().filter(|h| h.ago < HOURS).collect();
    let top = hours.iter().map(|h| h.attempts).max().unwrap_or(0).max(1);
    let bar = W / HOURS;
    let height = |n: i64| (n.clamp(0, top) as u64 * u64::from(H - 10) / top as u64) as u32;
    let total: i64 = hours.iter().map(|h| h.attempts).sum();
    let failed: i64 = hours.iter().map(|h| h.failures).sum();
    html! {
        svg class="chart" viewBox={ "0 0 " (W) " " (H) } width=(W) height=(H) role="img"
            aria-label={ "attempts per hour over the last " (HOURS) " hours: " (total) " attempts, " (failed) " failed" } {
            line x1="0" y1=(H - 1) x2=(W) y2=(H - 1) stroke="#999" stroke-width="1" {}
            @for h in &hours {
                @let x = (HOURS - 1 - h.ago) * bar;
                @let ok = height(h.attempts);
                @let bad = height(h.failures);
                rect x=(x + 1) y=(H - 1 - ok) width=(bar - 2) height=(ok) fill="#3b7dd8" {
                    title { (h.attempts) " attempts, " (h.failures) " failed, " (h.ago) " h ago" }
                }
                @if bad > 0 {
                    rect x=(x + 1) y=(H - 1 - bad) width=(bar - 2) height=(bad) fill="#d83b3b" {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_busiest_hour_and_failures_are_drawn_over_them() {
        let svg = attempts(&[
            Hour {
                ago: 0,
                attempts: 10,
                failures: 5,
            },
            Hour {
                ago: 3,
                attempts: 5,
                failures: 0,
            },
            Hour {
                ago: 30,
                attempts: 99,
                failures: 99,
            }, // outside the window
        ])
        .into_string();
        assert!(svg.contains("15 attempts, 5 failed"), "{svg}");
        assert!(svg.contains(r##"height="110" fill="#3b7dd8""##), "{svg}");
        assert!(svg.contains(r##"height="55" fill="#3b7dd8""##), "{svg}");
        assert!(svg.contains(r##"fill="#d83b3b""##), "{svg}");
        assert_eq!(svg.matches("<rect").count(), 3, "{svg}");
    }

    #[test]
    fn no_attempts_is_an_empty_axis() {
        let svg = attempts(&[]).into_string();
        assert!(svg.contains("0 attempts, 0 failed"));
        assert!(!svg.contains("<rect"));
    }
}
