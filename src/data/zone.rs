//! Files written in a local time with daylight saving: `time_zone = "Europe/London"` on a
//! source reads its zone-less times (epoch numbers and text without an offset) as wall-clock
//! times in that IANA zone, and moves them to UTC by the zone's rules on each date. A fixed
//! `utc_offset_hours` cannot: settlements at 00/08/16 UTC are written 00/08/16 in winter and
//! 01/09/17 in summer in London.
//!
//! A wall-clock time the zone skips (the hour clocks jump forward) is an error naming it; one it
//! repeats (the hour they fall back) is taken at its first occurrence, unless that would not
//! come after the time before it in the file, then at its second.

use anyhow::Result;
use chrono::{DateTime, LocalResult, TimeZone};
use chrono_tz::Tz;

use crate::bail_input;
use crate::time::format_ms;

/// The zone called `name` (`Europe/London`), or an error that says what is expected.
pub fn parse(name: &str, key: &str) -> Result<Tz> {
    name.parse::<Tz>().map_err(|_| crate::input_error!("{key} = {name:?} is not an IANA time-zone name; give one such as \"Europe/London\", \"America/New_York\" or \"Asia/Singapore\""))
}

/// Move `ts_ms`, wall-clock times in `zone` read as if they were UTC, to UTC, in place. `label`
/// names the series in errors.
pub fn to_utc(ts_ms: &mut [i64], zone: Tz, label: &str) -> Result<()> {
    let mut previous = i64::MIN;
    for t in ts_ms.iter_mut() {
        let Some(naive) = DateTime::from_timestamp_millis(*t).map(|d| d.naive_utc()) else {
            bail_input!("{label}: time {} is out of range", *t);
        };
        let utc = match zone.from_local_datetime(&naive) {
            LocalResult::Single(at) => at.timestamp_millis(),
            LocalResult::Ambiguous(first, second) => {
                if first.timestamp_millis() > previous {
                    first.timestamp_millis()
                } else {
                    second.timestamp_millis()
                }
            }
            LocalResult::None => bail_input!(
                "{label}: {} does not exist in {zone} (the clocks jumped forward over it); the file's times are not {zone} wall-clock times, or set time_zone to the zone they are in",
                format_ms(*t).trim_end_matches('Z')
            ),
        };
        previous = utc;
        *t = utc;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    #[test]
    fn london_wall_clock_moves_to_utc_by_the_season() {
        let london = parse("Europe/London", "time_zone").unwrap();
        // 2024-01-15 08:00 (GMT) is 08:00 UTC; 2024-07-15 09:00 (BST) is 08:00 UTC.
        let (winter, summer) = (1_705_305_600_000i64, 1_721_030_400_000i64);
        let mut ts = vec![winter, summer + HOUR];
        to_utc(&mut ts, london, "funding").unwrap();
        assert_eq!(ts, vec![winter, summer]);
        // 2024-03-31 01:30 does not exist in London.
        let mut skipped = vec![1_711_848_600_000i64];
        let err = to_utc(&mut skipped, london, "funding").unwrap_err().to_string();
        assert!(err.contains("does not exist in Europe/London"), "{err}");
        // 2024-10-27 01:30 happens twice: in order, the first then the second.
        let repeated = 1_729_992_600_000i64;
        let mut twice = vec![repeated, repeated];
        to_utc(&mut twice, london, "funding").unwrap();
        assert_eq!(twice[1] - twice[0], HOUR);
        assert!(parse("Mars/Olympus", "time_zone").unwrap_err().to_string().contains("IANA"));
    }
}
