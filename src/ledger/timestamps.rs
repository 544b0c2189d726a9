//! Time as the ledger keeps it, unix milliseconds, and as it shows it, RFC 3339 in UTC.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serializer;

/// The current time in unix milliseconds.
pub fn now_ms() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

/// Unix milliseconds as RFC 3339 in UTC with milliseconds (`2026-11-21T10:00:00.123Z`); `None`
/// outside the years 0–9999.
pub fn format_rfc3339(ms: i64) -> Option<String> {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    if at.year() < 0 {
        return None;
    }
    Some(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    ))
}

/// An RFC 3339 timestamp (any offset) as unix milliseconds, for `ops.usage`'s `since`/`until`.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let at =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(at.unix_timestamp_nanos().div_euclid(1_000_000)).ok()
}

pub(crate) fn rfc3339<S: Serializer>(ms: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    match format_rfc3339(*ms) {
        Some(text) => serializer.serialize_str(&text),
        None => Err(serde::ser::Error::custom(format!(
            "timestamp {ms} ms is out of range"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_render_as_rfc3339_and_parse_back() {
        assert_eq!(
            format_rfc3339(1_795_255_200_123).as_deref(),
            Some("2026-11-21T10:00:00.123Z")
        );
        assert_eq!(
            format_rfc3339(0).as_deref(),
            Some("1970-01-01T00:00:00.000Z")
        );
        assert_eq!(format_rfc3339(i64::MAX), None);
        assert_eq!(
            parse_rfc3339("2026-11-21T10:00:00.123Z"),
            Some(1_795_255_200_123)
        );
        assert_eq!(
            parse_rfc3339("2026-11-21T11:00:00+01:00"),
            Some(1_795_255_200_000)
        );
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59.999Z"), Some(-1));
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}
