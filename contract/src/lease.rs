//! Leader-election timings of the runtime pods of one Service, set by the
//! controller and obeyed by the runtime, with the two documented profiles.
//!
//! Safety: a leader that has not renewed for `renew_deadline` stops
//! forwarding and stops tailscaled; a standby takes over only after it has
//! seen no change of the Lease for `duration`. Both clocks start at or after
//! the leader's last renewal request, so the leader is stopped at least
//! `duration - renew_deadline - stop time` before anyone else can start
//! tailscaled on the same state (the runtime bounds its stop time by
//! [`LeaseTimings::STOP_BUDGET`]).

use alloc::format;
use alloc::string::String;
use core::time::Duration;

/// Leader election timings, in the sense of client-go's leader election.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTimings {
    /// How long a Lease is valid without renewal.
    pub duration: Duration,
    /// How long the leader keeps trying to renew before it stops forwarding.
    pub renew_deadline: Duration,
    /// Pause between attempts to acquire or renew.
    pub retry_period: Duration,
}

impl LeaseTimings {
    /// Gentle on the API server, like client-go's defaults (15 s / 10 s /
    /// 2 s): one Lease write per Service every 2 s; a node loss is repaired
    /// after 15–17 s.
    pub const DEFAULT: Self = Self {
        duration: Duration::from_secs(15),
        renew_deadline: Duration::from_secs(10),
        retry_period: Duration::from_secs(2),
    };

    /// Fast failover (4 s / 2 s / 1 s): one Lease write per Service every
    /// second; a node loss is repaired after about 4 s; the margin between
    /// a stranded leader having stopped and a standby starting is 1 s
    /// (2 s minus the stop budget).
    pub const FAST: Self = Self {
        duration: Duration::from_secs(4),
        renew_deadline: Duration::from_secs(2),
        retry_period: Duration::from_secs(1),
    };

    /// Longest time the runtime may take to stop forwarding and tailscaled
    /// once its renew deadline has passed; [`Self::validate`] requires the
    /// margin to cover it.
    pub const STOP_BUDGET: Duration = Duration::from_secs(1);

    /// The time between a stranded leader having stopped and the earliest
    /// moment a standby may start.
    pub fn safety_margin(&self) -> Duration {
        self.duration
            .saturating_sub(self.renew_deadline)
            .saturating_sub(Self::STOP_BUDGET)
    }

    /// Longest Lease duration accepted (an hour; longer would only delay
    /// every failover).
    pub const MAX_DURATION: Duration = Duration::from_secs(3600);

    /// Checks `0 < retry period < renew deadline`, that `duration` leaves
    /// room for the stop budget after the renew deadline, and that it is at
    /// most [`Self::MAX_DURATION`].
    pub fn validate(&self) -> Result<(), String> {
        if self.duration > Self::MAX_DURATION {
            return Err(format!(
                "the lease duration ({:?}) exceeds {:?}",
                self.duration,
                Self::MAX_DURATION
            ));
        }
        if self.retry_period.is_zero()
            || self.retry_period >= self.renew_deadline
            || self.renew_deadline.saturating_add(Self::STOP_BUDGET) >= self.duration
        {
            return Err(format!(
                "lease timings must satisfy 0 < retry period ({:?}) < renew deadline ({:?}) and renew deadline + {:?} < duration ({:?})",
                self.retry_period,
                self.renew_deadline,
                Self::STOP_BUDGET,
                self.duration
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_profiles_are_valid_and_keep_a_margin() {
        for timings in [LeaseTimings::DEFAULT, LeaseTimings::FAST] {
            timings.validate().unwrap();
            assert!(timings.safety_margin() >= Duration::from_secs(1));
        }
    }

    #[test]
    fn a_renew_deadline_too_close_to_the_duration_is_refused() {
        let tight = LeaseTimings {
            duration: Duration::from_secs(3),
            renew_deadline: Duration::from_secs(2),
            retry_period: Duration::from_secs(1),
        };
        assert!(tight.validate().unwrap_err().contains("renew deadline"));
        let zero_retry = LeaseTimings {
            retry_period: Duration::ZERO,
            ..LeaseTimings::DEFAULT
        };
        assert!(zero_retry.validate().is_err());
        let huge = LeaseTimings {
            duration: Duration::from_secs(u64::MAX),
            ..LeaseTimings::DEFAULT
        };
        assert!(huge.validate().unwrap_err().contains("exceeds"));
    }
}
