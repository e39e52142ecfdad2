//! Clock checks: do a file's times sit where the venue puts them?
//!
//! A funding export written in local time (UTC+3, say) loads without error, but every settlement
//! is then three hours late, and with hourly bars it is paid at the wrong mark. Such a file is
//! recognised by its settlements sitting a constant distance off the venue's schedule (interval
//! and anchor: Binance settles at 00:00/08:00/16:00 UTC). Bars are checked the same way against
//! their own spacing (daily bars close at 00:00 UTC). Both checks only warn: the fix is the
//! source's `utc_offset_hours` option, which the warning names.

use std::collections::HashMap;


const MS_PER_HOUR: i64 = 3_600_000;
const MS_PER_MINUTE: i64 = 60_000;
const MS_PER_DAY: i64 = 86_400_000;

/// A venue's settlement schedule: interval and anchor (offset from 00:00 UTC), e.g. Binance
/// 8 h at 0 h (00/08/16 UTC), BitMEX 8 h at 4 h (04/12/20 UTC).
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// Venue name for messages ("Binance").
    pub venue: String,
    /// Settlement interval, hours.
    pub interval_hours: f64,
    /// Offset of the first settlement of the UTC day from 00:00 UTC, hours.
    pub offset_hours: f64,
}

impl Schedule {
    /// A grid anchored at 00:00 UTC with `interval_hours` (files that name no venue).
    pub fn utc_grid(interval_hours: f64) -> Schedule {
        Schedule { venue: "a 00:00 UTC-anchored".into(), interval_hours, offset_hours: 0.0 }
    }

    /// The settlement hours of a day, e.g. "00/08/16 UTC".
    fn hours_of_day(&self) -> String {
        if self.interval_hours < 2.0 {
            return "on-the-hour".into();
        }
        let step = self.interval_hours;
        let mut hours = Vec::new();
        let mut h = self.offset_hours.rem_euclid(step);
        while h < 24.0 {
            hours.push(format!("{:02}", h as i64));
            h += step;
        }
        format!("{} UTC", hours.join("/"))
    }
}

/// Counts of values, for their mode. Runs of equal values (a regular clock is one long run)
/// are counted before hashing.
#[derive(Default, Clone)]
struct ModeCount {
    counts: HashMap<i64, usize>,
    total: usize,
    run: Option<(i64, usize)>,
}

impl ModeCount {
    /// Count `value` `times` times.
    fn add(&mut self, value: i64, times: usize) {
        self.total += times;
        match &mut self.run {
            Some((v, count)) if *v == value => *count += times,
            _ => {
                if let Some((v, count)) = self.run.replace((value, times)) {
                    *self.counts.entry(v).or_default() += count;
                }
            }
        }
    }

    /// The most common value, its count and the total (None when empty).
    fn mode(mut self) -> Option<(i64, usize, usize)> {
        if let Some((v, count)) = self.run.take() {
            *self.counts.entry(v).or_default() += count;
        }
        let total = self.total;
        // Ties go to the smaller magnitude, then to the positive value: never to the hash order.
        self.counts.into_iter().max_by_key(|(v, c)| (*c, -v.abs(), *v)).map(|(v, c)| (v, c, total))
    }
}

/// The most common value and its share of `values` (None when empty).
fn mode(values: impl Iterator<Item = i64>) -> Option<(i64, usize, usize)> {
    let mut counts = ModeCount::default();
    for v in values {
        counts.add(v, 1);
    }
    counts.mode()
}

/// The most common spacing of a time series (the smaller on a tie), ms; 0 for one value.
pub fn typical_spacing(ts_ms: &[i64]) -> i64 {
    mode(ts_ms.windows(2).map(|w| w[1] - w[0])).map_or(0, |(spacing, _, _)| spacing)
}

/// What the clock checks need of a bar series, gathered a piece at a time (a long series need
/// not be held): its spacings and its close times within the day.
#[derive(Default)]
pub struct BarClock {
    spacings: ModeCount,
    /// Bars per whole second of the day (bars on whole seconds: nearly all), made on first use.
    seconds_of_day: Vec<u32>,
    /// Bars per time of day, ms, for the others.
    other_times_of_day: ModeCount,
    last_ms: Option<i64>,
}

impl BarClock {
    /// The facts of `ts_ms` whole.
    pub fn of(ts_ms: &[i64]) -> Self {
        let mut clock = BarClock::default();
        clock.extend(ts_ms);
        clock
    }

    /// The next bars' close times, in order.
    pub fn extend(&mut self, ts_ms: &[i64]) {
        for &t in ts_ms {
            if let Some(before) = self.last_ms {
                self.spacings.add(t - before, 1);
            }
            self.last_ms = Some(t);
            // A slot per second of the day: counting needs no hashing.
            let time_of_day = t.rem_euclid(MS_PER_DAY);
            if time_of_day % 1000 == 0 {
                if self.seconds_of_day.is_empty() {
                    self.seconds_of_day = vec![0; (MS_PER_DAY / 1000) as usize];
                }
                self.seconds_of_day[(time_of_day / 1000) as usize] += 1;
            } else {
                self.other_times_of_day.add(time_of_day, 1);
            }
        }
    }

    /// The most common spacing (the smaller on a tie), ms; 0 for one bar.
    pub fn typical_spacing(&self) -> i64 {
        self.spacings.clone().mode().map_or(0, |(spacing, _, _)| spacing)
    }

    /// A warning when the close times do not sit on their own spacing (see
    /// [`bar_offset_warning`]).
    pub fn offset_warning(self, label: &str) -> Option<String> {
        self.offset_warning_on(label, None)
    }

    /// [`BarClock::offset_warning`], where bars on the venue's own funding grid (`venue`'s
    /// anchor, e.g. BitMEX's 04/12/20 UTC for 8 h bars) are not an offset.
    pub fn offset_warning_on(self, label: &str, venue: Option<&Schedule>) -> Option<String> {
        let spacing_ms = self.typical_spacing();
        if spacing_ms <= 0 || spacing_ms > MS_PER_DAY || MS_PER_DAY % spacing_ms != 0 {
            return None;
        }
        // The spacing divides a day, so a time's place on its grid follows from its time of day.
        let ModeCount { mut counts, run, .. } = self.other_times_of_day;
        if let Some((v, count)) = run {
            *counts.entry(v).or_default() += count;
        }
        let seconds = self.seconds_of_day.iter().enumerate().filter(|(_, n)| **n > 0).map(|(second, n)| (second as i64 * 1000, *n as usize));
        let mut offsets = ModeCount::default();
        for (time_of_day, count) in counts.into_iter().chain(seconds) {
            offsets.add(centred_minutes(time_of_day, spacing_ms), count);
        }
        let (minutes, count, total) = offsets.mode()?;
        if minutes == 0 || total < 3 || count * 2 < total {
            return None;
        }
        if let Some(schedule) = venue {
            let anchor_ms = (schedule.offset_hours * MS_PER_HOUR as f64).round() as i64;
            if centred_minutes(anchor_ms, spacing_ms) == minutes {
                return None;
            }
        }
        let direction = if minutes > 0 { "after" } else { "before" };
        let zones = candidate_offsets(minutes, spacing_ms / MS_PER_MINUTE);
        Some(format!(
            "{label}: bars close {} {direction} their {} grid ({count} of {total} bars, counted from 00:00 UTC): a file written in {}? If so, set utc_offset_hours = {} on the {label} source",
            describe_minutes(minutes),
            describe_minutes(spacing_ms / MS_PER_MINUTE),
            if zones.is_empty() { "local time".to_string() } else { zones.join(" or ") },
            minutes as f64 / 60.0,
        ))
    }
}

/// `residual` folded into (−period/2, period/2] and rounded to whole minutes.
fn centred_minutes(residual_ms: i64, period_ms: i64) -> i64 {
    // Rounded first, so a few ms of jitter on a half-period offset does not flip its sign.
    let period = (period_ms / MS_PER_MINUTE).max(1);
    // Integer rounding (half up, as f64::round on a non-negative value): one pass per bar.
    let minutes = ((residual_ms.rem_euclid(period_ms) + MS_PER_MINUTE / 2) / MS_PER_MINUTE) % period;
    if minutes > period / 2 { minutes - period } else { minutes }
}

/// "3 h", "30 min", "5 h 30 min".
fn describe_minutes(minutes: i64) -> String {
    let m = minutes.abs();
    match (m / 60, m % 60) {
        (h, 0) => format!("{h} h"),
        (0, r) => format!("{r} min"),
        (h, r) => format!("{h} h {r} min"),
    }
}

/// UTC offsets (in whole hours or half hours, −12..+14) that would put `minutes` back on a grid
/// of `period_minutes`, nearest first: a +3 h shift on an 8 h grid is also what UTC−5 gives.
fn candidate_offsets(minutes: i64, period_minutes: i64) -> Vec<String> {
    let mut out: Vec<i64> = (-12 * 60..=14 * 60).step_by(30).filter(|o| (o - minutes).rem_euclid(period_minutes) == 0).collect();
    out.sort_by_key(|o| (o - minutes).abs());
    out.into_iter()
        .take(3)
        .map(|o| {
            let sign = if o < 0 { "-" } else { "+" };
            let (h, m) = (o.abs() / 60, o.abs() % 60);
            if m == 0 { format!("UTC{sign}{h}") } else { format!("UTC{sign}{h}:{m:02}") }
        })
        .collect()
}

/// A warning when most settlements sit a constant distance off the schedule, e.g. "funding:
/// settlement times are 3 h after Binance's 00/08/16 UTC schedule ...". `None` when on
/// schedule, or when too few settlements share an interval the check can see (whole-hour shifts
/// of an hourly schedule are invisible).
pub fn funding_offset_warning(settle_ms: &[i64], interval_hours: &[f64], schedule: &Schedule) -> Option<String> {
    let anchor_ms = (schedule.offset_hours * MS_PER_HOUR as f64).round() as i64;
    // Each settlement against the grid of its own interval (Binance's 4 h and 1 h rows sit on
    // 00:00-anchored grids too), folded to the nearest grid point.
    let residuals: Vec<i64> = settle_ms
        .iter()
        .zip(interval_hours)
        .filter(|(_, h)| h.is_finite() && **h > 0.0)
        .map(|(t, h)| {
            let period_ms = (h * MS_PER_HOUR as f64).round() as i64;
            centred_minutes(t - anchor_ms, period_ms.max(MS_PER_MINUTE))
        })
        .collect();
    if let Some(warning) = daylight_saving_warning(&residuals, schedule) {
        return Some(warning);
    }
    let (minutes, count, total) = mode(residuals.into_iter())?;
    // Most settlements off by the same amount: a clock shift, not a few odd rows.
    if minutes == 0 || total < 3 || count * 2 < total {
        return None;
    }
    let direction = if minutes > 0 { "after" } else { "before" };
    let period_minutes = (schedule.interval_hours * 60.0).round() as i64;
    let zones = candidate_offsets(minutes, period_minutes.max(1));
    Some(format!(
        "funding: settlement times are {} {direction} {}'s {} schedule ({count} of {total} settlements): a file written in {}? If so, set utc_offset_hours = {} on the funding source (it shifts epoch numbers and zone-less text back to UTC); otherwise check the file",
        describe_minutes(minutes),
        schedule.venue,
        schedule.hours_of_day(),
        if zones.is_empty() { "local time".to_string() } else { zones.join(" or ") },
        minutes as f64 / 60.0,
    ))
}

/// Standard (winter) offsets east of UTC, minutes, of zones whose clocks move an hour forward in
/// summer, with the zones to name (northern hemisphere: the winter offset is the smaller;
/// Sydney's summer is the other way round, but its two offsets are the same pair).
const DST_ZONES: [(i64, &str); 9] = [
    (0, "Europe/London"),
    (60, "Europe/Berlin or Europe/Paris"),
    (120, "Europe/Athens or Europe/Kyiv"),
    (-180, "America/Sao_Paulo (before 2019)"),
    (-300, "America/New_York"),
    (-360, "America/Chicago"),
    (-420, "America/Denver"),
    (-480, "America/Los_Angeles"),
    (600, "Australia/Sydney"),
];

/// Settlements that sit at two offsets an hour apart, each for a good part of the year: a file
/// written in local time with daylight saving, which no fixed `utc_offset_hours` can read. Names
/// the likely zones and the `time_zone` key.
fn daylight_saving_warning(residuals: &[i64], schedule: &Schedule) -> Option<String> {
    let mut counts: std::collections::BTreeMap<i64, usize> = std::collections::BTreeMap::new();
    for r in residuals {
        *counts.entry(*r).or_default() += 1;
    }
    let total = residuals.len();
    let mut ranked: Vec<(i64, usize)> = counts.into_iter().collect();
    ranked.sort_by_key(|(v, c)| (std::cmp::Reverse(*c), *v));
    let (&(a, ca), &(b, cb)) = (ranked.first()?, ranked.get(1)?);
    let (winter, summer) = (a.min(b), a.max(b));
    if total < 20 || summer - winter != 60 || ca * 5 < total || cb * 5 < total || (ca + cb) * 10 < total * 9 {
        return None;
    }
    // Offsets are seen folded onto the schedule's grid: match the zones' the same way.
    let period = ((schedule.interval_hours * 60.0).round() as i64).max(60);
    let zones: Vec<&str> = DST_ZONES.iter().filter(|(offset, _)| (offset - winter).rem_euclid(period) == 0).map(|(_, z)| *z).collect();
    let first_zone = zones.first().and_then(|z| z.split(' ').next()).unwrap_or("Europe/London");
    let shift = |m: i64| if m == 0 { "on it".to_string() } else { format!("{} {}", describe_minutes(m), if m > 0 { "after" } else { "before" }) };
    Some(format!(
        "funding: against {}'s {} schedule, {ca} of {total} settlements sit {} and {cb} sit {}: an hour apart with the seasons, as a file written in a local time with daylight saving ({}?). If so, set time_zone = \"{first_zone}\" (the zone it was written in) on the funding source, and on price sources written the same way; a fixed utc_offset_hours cannot read it",
        schedule.venue,
        schedule.hours_of_day(),
        shift(a),
        shift(b),
        if zones.is_empty() { "a zone an hour off in summer".to_string() } else { zones.join(", ") },
    ))
}

/// A warning when bar close times do not sit on their own spacing: daily bars closing at 03:00
/// UTC, or hourly bars closing at :30. `None` when aligned, or when the spacing does not divide
/// a day (it has no natural grid).
pub fn bar_offset_warning(label: &str, ts_ms: &[i64]) -> Option<String> {
    BarClock::of(ts_ms).offset_warning(label)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_704_067_200_000; // 2024-01-01 00:00 UTC

    #[test]
    fn three_hours_off_binance_is_named() {
        let settle: Vec<i64> = (0..30).map(|i| T0 + 3 * MS_PER_HOUR + i * 8 * MS_PER_HOUR).collect();
        let hours = vec![8.0; settle.len()];
        let schedule = Schedule { venue: "Binance".into(), interval_hours: 8.0, offset_hours: 0.0 };
        let text = funding_offset_warning(&settle, &hours, &schedule).expect("a warning");
        assert!(text.contains("3 h after Binance's 00/08/16 UTC schedule (30 of 30"), "{text}");
        assert!(text.contains("UTC+3 or UTC-5"), "{text}");
        assert!(text.contains("utc_offset_hours = 3"), "{text}");
        let on_grid: Vec<i64> = settle.iter().map(|t| t - 3 * MS_PER_HOUR).collect();
        assert_eq!(funding_offset_warning(&on_grid, &hours, &schedule), None);
    }

    #[test]
    fn bitmex_anchor_and_jitter() {
        let schedule = Schedule { venue: "BitMEX".into(), interval_hours: 8.0, offset_hours: 4.0 };
        let settle: Vec<i64> = (0..9).map(|i| T0 + 4 * MS_PER_HOUR + i * 8 * MS_PER_HOUR + 2).collect();
        assert_eq!(funding_offset_warning(&settle, &[8.0; 9], &schedule), None);
        let utc = Schedule::utc_grid(8.0);
        assert!(funding_offset_warning(&settle, &[8.0; 9], &utc).unwrap().contains("4 h after"));
    }

    /// Settlements written in London wall-clock time: 00/08/16 in winter, 01/09/17 in summer.
    /// No fixed offset reads them; the warning names the daylight-saving clock and `time_zone`,
    /// and the times moved to UTC by the zone sit on the schedule.
    #[test]
    fn a_local_clock_with_daylight_saving_is_named() {
        let london = crate::data::zone::parse("Europe/London", "time_zone").unwrap();
        // Every 8 h through 2024, UTC, then written as London wall-clock times.
        let start = 1_704_067_200_000i64; // 2024-01-01 00:00 UTC
        let utc: Vec<i64> = (0..3 * 366).map(|k| start + k * 8 * MS_PER_HOUR).collect();
        let local: Vec<i64> = utc.iter().map(|t| {
            use chrono::{Offset, TimeZone};
            let at = london.timestamp_millis_opt(*t).unwrap();
            t + i64::from(at.offset().fix().local_minus_utc()) * 1000
        }).collect();
        let schedule = Schedule { venue: "Binance".into(), interval_hours: 8.0, offset_hours: 0.0 };
        let hours = vec![8.0; local.len()];
        let text = funding_offset_warning(&local, &hours, &schedule).expect("a warning");
        assert!(text.contains("time_zone = \"Europe/London\"") && text.contains("daylight saving") && text.contains("sit on it") && text.contains("sit 1 h after"), "{text}");
        let mut moved = local.clone();
        crate::data::zone::to_utc(&mut moved, london, "funding").unwrap();
        assert_eq!(moved, utc);
        assert_eq!(funding_offset_warning(&moved, &hours, &schedule), None);
    }

    /// 8 h bars closing at 04/12/20 UTC sit on BitMEX's own funding grid: with the bitmex
    /// schedule no warning; on a plain UTC grid, or with a venue anchored at 00, the 4 h offset.
    #[test]
    fn bars_on_the_venues_own_funding_grid_are_not_an_offset() {
        let bitmex = Schedule { venue: "BitMEX".into(), interval_hours: 8.0, offset_hours: 4.0 };
        let bars: Vec<i64> = (0..12).map(|i| T0 + 4 * MS_PER_HOUR + i * 8 * MS_PER_HOUR).collect();
        assert_eq!(BarClock::of(&bars).offset_warning_on("perp", Some(&bitmex)), None);
        assert!(BarClock::of(&bars).offset_warning_on("perp", Some(&Schedule::utc_grid(8.0))).unwrap().contains("4 h after"));
        assert!(BarClock::of(&bars).offset_warning("perp").unwrap().contains("4 h after"));
        // Hourly bars on the hour stay quiet whatever the anchor; hourly bars 4 h off are on it.
        let hourly: Vec<i64> = (0..12).map(|i| T0 + i * MS_PER_HOUR).collect();
        assert_eq!(BarClock::of(&hourly).offset_warning_on("spot", Some(&bitmex)), None);
        // 8 h bars at 02/10/18 are off both grids.
        let off: Vec<i64> = bars.iter().map(|t| t - 2 * MS_PER_HOUR).collect();
        assert!(BarClock::of(&off).offset_warning_on("perp", Some(&bitmex)).unwrap().contains("2 h after"));
    }

    #[test]
    fn daily_bars_off_midnight() {
        let ts: Vec<i64> = (0..10).map(|i| T0 + 3 * MS_PER_HOUR + i * MS_PER_DAY).collect();
        let text = bar_offset_warning("spot", &ts).unwrap();
        assert!(text.contains("spot: bars close 3 h after their 24 h grid (10 of 10"), "{text}");
        let hourly: Vec<i64> = (0..10).map(|i| T0 + i * MS_PER_HOUR).collect();
        assert_eq!(bar_offset_warning("spot", &hourly), None);
        let half: Vec<i64> = hourly.iter().map(|t| t + 30 * MS_PER_MINUTE).collect();
        assert!(bar_offset_warning("perp", &half).unwrap().contains("30 min after"));
    }

    #[test]
    fn a_bar_clock_fed_in_pieces_finds_what_the_whole_series_shows() {
        // Hourly bars 20 min off their grid, some with a few ms of jitter (not on a whole
        // second), a gap, and a run of 30-min bars.
        let mut ts: Vec<i64> = (0..300).map(|i| T0 + 20 * MS_PER_MINUTE + i * MS_PER_HOUR + if i % 7 == 0 { 3 } else { 0 }).collect();
        ts.retain(|t| (t - T0) / MS_PER_HOUR != 150);
        let last = *ts.last().unwrap();
        ts.extend((1..40).map(|i| last + i * 30 * MS_PER_MINUTE));
        let whole = BarClock::of(&ts);
        let mut pieces = BarClock::default();
        for piece in ts.chunks(37) {
            pieces.extend(piece);
        }
        assert_eq!(whole.typical_spacing(), MS_PER_HOUR);
        assert_eq!(pieces.typical_spacing(), MS_PER_HOUR);
        let text = pieces.offset_warning("perp").expect("a warning");
        assert_eq!(Some(text.clone()), whole.offset_warning("perp"));
        // 299 hourly bars at :20 (those with jitter round to it too) and 39 half-hourly ones,
        // of which those at :20 (every second one: 19) count with them: 299 + 19 of 338.
        assert!(text.contains("20 min after their 1 h grid (318 of 338 bars"), "{text}");
        assert_eq!(typical_spacing(&ts), MS_PER_HOUR);
    }
}
