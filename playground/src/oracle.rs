//! The forwarder-overlap oracle, shared by the failover and pod tests: the
//! runtime logs `forwarding installed … since_ns=<t>` and `forwarding
//! removed … until_ns=<t>` on `CLOCK_MONOTONIC` around its firewall
//! changes, so every interval in which a runtime forwarded is known
//! exactly; two intervals of different runtimes that intersect are an
//! overlap, however short (a sampler can miss one).

/// `CLOCK_MONOTONIC` in ns, the clock the runtime logs its forwarding on.
pub fn monotonic_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into `now`.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// `text` without ANSI escape sequences (the runtime colours its log).
pub fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The value of `field=<n>` in a log line.
fn number_field(line: &str, field: &str) -> Option<u64> {
    let rest = line.split(&format!("{field}=")).nth(1)?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// The intervals `[since, until)` (ns, monotonic) in which one runtime log
/// says it forwarded; an interval still open has `until` `u64::MAX`.
/// `lost_at` closes what a killed runtime left open.
pub fn forwarding_intervals(log: &str, lost_at: &[u64]) -> Vec<(u64, u64)> {
    let mut intervals: Vec<(u64, u64)> = Vec::new();
    let close_lost = |intervals: &mut Vec<(u64, u64)>| {
        for open in intervals.iter_mut().filter(|(_, u)| *u == u64::MAX) {
            if let Some(at) = lost_at.iter().find(|at| **at >= open.0) {
                open.1 = *at;
            }
        }
    };
    for line in plain(log).lines() {
        // A runtime starting in the same log (a container restarted on a
        // node that came back): what the lost one left open ended then.
        if line.contains("::run: starting") {
            close_lost(&mut intervals);
        }
        if line.contains("forwarding installed")
            && let Some(since) = number_field(line, "since_ns")
        {
            intervals.push((since, u64::MAX));
        } else if line.contains("forwarding removed")
            && let Some(until) = number_field(line, "until_ns")
        {
            for open in intervals.iter_mut().filter(|(_, u)| *u == u64::MAX) {
                open.1 = until;
            }
        }
    }
    close_lost(&mut intervals);
    intervals
}

/// Every pair of intervals of different runtimes (named) that intersect.
pub fn overlaps(intervals: &[(String, (u64, u64))]) -> Vec<String> {
    let mut found = Vec::new();
    for (i, (a, (s1, u1))) in intervals.iter().enumerate() {
        for (b, (s2, u2)) in intervals.iter().skip(i + 1) {
            if a != b && s1 < u2 && s2 < u1 {
                found.push(format!("{a} [{s1}, {u1}) and {b} [{s2}, {u2})"));
            }
        }
    }
    found
}
