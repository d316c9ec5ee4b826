//! Timestamps as the API server writes them: RFC 3339, UTC, whole seconds.

/// Now, as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn now_rfc3339() -> String {
    rfc3339_in(0)
}

/// The time `seconds` from now, as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339_in(seconds: i64) -> String {
    let now = jiff::Timestamp::now();
    jiff::Timestamp::from_second(now.as_second() + seconds)
        .unwrap_or(now)
        .to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_have_whole_seconds_in_utc() {
        let now = super::now_rfc3339();
        assert_eq!(now.len(), "2025-01-01T00:00:00Z".len(), "{now}");
        assert!(now.ends_with('Z'));
        assert!(super::rfc3339_in(60) > now);
    }
}
