//! RFC 3339 timestamps, as runc writes them (`created`, the JSON log's
//! `time`), formatted by `humantime`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The last second humantime can write (the end of year 9999).
const LAST_SECOND: i64 = 253_402_300_799;

/// Now, as `2026-11-29T15:41:12.123456789Z`.
pub fn now_rfc3339() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format_rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

/// `secs` and `nanos` after the epoch, clamped to what RFC 3339 can say
/// (1970 to 9999 here; humantime refuses the rest), so no input panics.
pub fn format_rfc3339(secs: i64, nanos: u32) -> String {
    let secs = secs.clamp(0, LAST_SECOND) as u64;
    let time = UNIX_EPOCH + Duration::new(secs, nanos.min(999_999_999));
    humantime::format_rfc3339_nanos(time).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            format_rfc3339(1_795_966_872, 5),
            "2026-11-29T15:41:12.000000005Z"
        );
        assert_eq!(
            format_rfc3339(951_782_400, 0),
            "2000-02-29T00:00:00.000000000Z"
        );
    }

    #[test]
    fn instants_out_of_range_are_clamped_not_a_panic() {
        assert_eq!(format_rfc3339(-1, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            format_rfc3339(i64::MAX, u32::MAX),
            "9999-12-31T23:59:59.999999999Z"
        );
    }
}
