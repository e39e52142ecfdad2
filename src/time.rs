//! Time helpers: epoch milliseconds (UTC) are the one time representation inside basis.

use anyhow::{Context, Result};

use crate::input_error;

/// Milliseconds in one hour.
pub const MS_PER_HOUR: i64 = 3_600_000;
/// Milliseconds in one day.
pub const MS_PER_DAY: i64 = 86_400_000;
/// Milliseconds in a 365-day year: the annualisation base for APRs.
pub const MS_PER_YEAR: f64 = 365.0 * 86_400_000.0;

/// Format epoch ms as `2021-01-01 08:00:00Z` (UTC), for messages.
pub fn format_ms(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(dt) => dt.format("%Y-%m-%d %H:%M:%SZ").to_string(),
        None => format!("{ms} ms"),
    }
}

/// Calendar year (UTC) of epoch ms.
pub fn year_of(ms: i64) -> i32 {
    use chrono::Datelike;
    chrono::DateTime::from_timestamp_millis(ms).map(|dt| dt.year()).unwrap_or(1970)
}

/// Epoch ms of 1 January 00:00 UTC of `year`.
pub fn year_start_ms(year: i32) -> i64 {
    chrono::NaiveDate::from_ymd_opt(year, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|dt| dt.and_utc().timestamp_millis())
        .unwrap_or(0)
}

/// Parse a date (`2021-01-01`) or RFC 3339 time into epoch milliseconds (UTC).
pub fn parse_time_ms(key: &str, text: &str) -> Result<i64> {
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(dt.timestamp_millis());
    }
    if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        if let Some(dt) = date.and_hms_opt(0, 0, 0) {
            return Ok(dt.and_utc().timestamp_millis());
        }
    }
    Err(input_error!("`{key}` = {text:?} is not a date: use 2021-01-01 or 2021-01-01T08:00:00Z"))
        .context("parsing the strategy window")
}
