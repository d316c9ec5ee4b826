//! The election's decisions over plain data, in the manner of client-go's
//! leader election: what to do with the Lease as last seen, and the record
//! to write when acquiring, renewing or releasing it.
//!
//! Expiry is judged by the local monotonic clock from the moment this pod
//! last saw the record change, never by comparing `renewTime` with the local
//! wall clock, so clock skew between nodes cannot make a live Lease look
//! expired.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::LeaseSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use tokio::time::Instant;

use svc_lb_contract::LeaseTimings;

/// What to do next with the Lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// We hold it: write a renewal.
    Renew,
    /// Free or expired: try to take it.
    Acquire,
    /// Someone else holds it: wait until `until` (or a change).
    WaitUntil(Instant),
}

/// The holder named by a Lease spec; an empty name is no holder (what
/// client-go writes on release).
pub fn holder(spec: Option<&LeaseSpec>) -> Option<&str> {
    spec.and_then(|s| s.holder_identity.as_deref())
        .filter(|h| !h.is_empty())
}

/// The next step for `me`, given the spec last seen and when it last changed.
pub fn next_step(
    me: &str,
    spec: Option<&LeaseSpec>,
    changed_at: Instant,
    now: Instant,
    timings: LeaseTimings,
) -> Step {
    match holder(spec) {
        Some(h) if h == me => Step::Renew,
        None => Step::Acquire,
        Some(_) => {
            // The holder's own duration counts; ours is the fallback.
            let duration = spec
                .and_then(|s| s.lease_duration_seconds)
                .and_then(|s| u64::try_from(s).ok())
                .map_or(timings.duration, Duration::from_secs);
            let expiry = changed_at + duration;
            if now >= expiry {
                Step::Acquire
            } else {
                Step::WaitUntil(expiry)
            }
        }
    }
}

/// The spec to write to hold the Lease: a renewal keeps `acquireTime`, an
/// acquisition from another holder (or none) counts a transition.
pub fn held_spec(
    me: &str,
    previous: Option<&LeaseSpec>,
    timings: LeaseTimings,
    now: Timestamp,
) -> LeaseSpec {
    let previous = previous.cloned().unwrap_or_default();
    let renewing = holder(Some(&previous)) == Some(me);
    // A Lease never held before has no transitions yet.
    let never_held = previous.holder_identity.is_none() && previous.lease_transitions.is_none();
    let transitions = previous.lease_transitions.unwrap_or(0);
    LeaseSpec {
        holder_identity: Some(me.to_string()),
        lease_duration_seconds: Some(i32::try_from(timings.duration.as_secs()).unwrap_or(i32::MAX)),
        acquire_time: if renewing {
            previous.acquire_time.clone()
        } else {
            Some(MicroTime(now))
        },
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(if renewing || never_held {
            transitions
        } else {
            transitions + 1
        }),
        ..previous
    }
}

/// The spec that gives the Lease up: no holder, so a standby watching it
/// takes over at once instead of waiting for expiry.
pub fn released_spec(previous: &LeaseSpec, now: Timestamp) -> LeaseSpec {
    LeaseSpec {
        holder_identity: None,
        acquire_time: None,
        renew_time: Some(MicroTime(now)),
        ..previous.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held_by(who: &str, seconds: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(who.into()),
            lease_duration_seconds: Some(seconds),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn a_free_or_own_lease_is_taken_and_another_holders_waits_for_its_duration() {
        let t = LeaseTimings::FAST;
        let seen = Instant::now();
        assert_eq!(next_step("a", None, seen, seen, t), Step::Acquire);
        let released = LeaseSpec {
            holder_identity: Some(String::new()),
            ..LeaseSpec::default()
        };
        assert_eq!(
            next_step("a", Some(&released), seen, seen, t),
            Step::Acquire
        );
        assert_eq!(
            next_step("a", Some(&held_by("a", 4)), seen, seen, t),
            Step::Renew
        );
        let other = held_by("b", 15);
        assert_eq!(
            next_step("a", Some(&other), seen, seen + Duration::from_secs(14), t),
            Step::WaitUntil(seen + Duration::from_secs(15))
        );
        assert_eq!(
            next_step("a", Some(&other), seen, seen + Duration::from_secs(15), t),
            Step::Acquire
        );
    }

    #[test]
    fn renewing_keeps_the_acquire_time_and_taking_over_counts_a_transition() {
        let t = LeaseTimings::DEFAULT;
        let first = Timestamp::from_second(1_000).unwrap();
        let later = Timestamp::from_second(1_002).unwrap();
        let acquired = held_spec("a", None, t, first);
        assert_eq!(acquired.lease_transitions, Some(0));
        assert_eq!(acquired.lease_duration_seconds, Some(15));
        let renewed = held_spec("a", Some(&acquired), t, later);
        assert_eq!(renewed.acquire_time, acquired.acquire_time);
        assert_eq!(renewed.renew_time, Some(MicroTime(later)));
        assert_eq!(renewed.lease_transitions, Some(0));
        let taken = held_spec("b", Some(&renewed), t, later);
        assert_eq!(taken.lease_transitions, Some(1));
        assert_eq!(taken.acquire_time, Some(MicroTime(later)));
        let released = released_spec(&taken, later);
        assert_eq!(holder(Some(&released)), None);
        let retaken = held_spec("c", Some(&released), t, later);
        assert_eq!(retaken.lease_transitions, Some(2));
    }
}
