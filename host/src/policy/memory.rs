//! The policy engine's worst-case memory, and the check that it fits the
//! controller's memory limit. Pure arithmetic over the limits; reading the
//! container's limit is the caller's business.
//!
//! Per policy instance running at once, the worst case is
//! - its linear memory, at most the cap ([`EngineLimits::max_memory_bytes`]),
//!   resident in its pool slot while it runs; plus
//! - the host's copy of its result. A result lives in guest memory, so it is
//!   smaller than the cap; lifted into host types it grows at most
//!   [`HOST_COPY_FACTOR`] times: a `list<key-value>` entry of two empty
//!   strings is 16 bytes in the guest (two pointer/length pairs) and 48 in
//!   the host (two `String`s); a string's bytes are copied once. The chain
//!   checks list lengths before building maps from a result, so no further
//!   copy of that size is made.
//!
//! Instances beyond [`EngineLimits::max_concurrent_instances`] wait for a
//! slot, so the engine's worst case is `instances × cap × (1 + 3)`, and the
//! controller's is that plus [`CONTROLLER_BASE_BYTES`] for everything else.

use super::engine::EngineLimits;

/// Bytes of host memory a lifted result may take per byte of guest memory.
pub const HOST_COPY_FACTOR: usize = 3;
/// The controller's own memory besides policy instances: the benchmark
/// `controller_scale` peaks at 58 MiB with 1,000 Services; a quarter more
/// for headroom.
pub const CONTROLLER_BASE_BYTES: usize = 72 << 20;

/// The engine's worst-case memory with `limits`.
pub fn engine_worst_case_bytes(limits: &EngineLimits) -> usize {
    limits.max_concurrent_instances.max(1) as usize
        * limits.max_memory_bytes
        * (1 + HOST_COPY_FACTOR)
}

/// The controller does not fit its memory limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "policy engine worst case {instances} instance(s) × {cap_mib} MiB × (1 + {HOST_COPY_FACTOR} for \
     the host's copy of a result) = {engine_mib} MiB, plus {base_mib} MiB for the controller, \
     exceeds the memory limit of {limit_mib} MiB: lower --policy-instances or \
     --policy-memory-mib, or raise the limit"
)]
pub struct OverMemoryLimit {
    /// Instances at once.
    pub instances: u32,
    /// Cap of one instance, MiB.
    pub cap_mib: usize,
    /// The engine's worst case, MiB.
    pub engine_mib: usize,
    /// The controller's own share, MiB.
    pub base_mib: usize,
    /// The limit, MiB.
    pub limit_mib: usize,
}

/// Checks that the controller's worst case with `limits` fits `limit_bytes`.
pub fn check_memory_limit(
    limits: &EngineLimits,
    limit_bytes: usize,
) -> Result<(), OverMemoryLimit> {
    let engine = engine_worst_case_bytes(limits);
    if engine.saturating_add(CONTROLLER_BASE_BYTES) <= limit_bytes {
        return Ok(());
    }
    Err(OverMemoryLimit {
        instances: limits.max_concurrent_instances,
        cap_mib: limits.max_memory_bytes >> 20,
        engine_mib: engine >> 20,
        base_mib: CONTROLLER_BASE_BYTES >> 20,
        limit_mib: limit_bytes >> 20,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(instances: u32, cap_mib: usize) -> EngineLimits {
        EngineLimits {
            max_concurrent_instances: instances,
            max_memory_bytes: cap_mib << 20,
            ..EngineLimits::default()
        }
    }

    #[test]
    fn the_defaults_fit_the_shipped_256_mib_limit() {
        let defaults = EngineLimits::default();
        assert_eq!(engine_worst_case_bytes(&defaults), 128 << 20);
        assert_eq!(check_memory_limit(&defaults, 256 << 20), Ok(()));
    }

    #[test]
    fn a_configuration_over_the_limit_is_refused_with_its_numbers() {
        // The old defaults: 32 slots of 64 MiB.
        let err = check_memory_limit(&limits(32, 64), 256 << 20).unwrap_err();
        assert_eq!(err.engine_mib, 8192);
        let message = err.to_string();
        assert!(message.contains("32 instance(s) × 64 MiB"), "{message}");
        assert!(message.contains("limit of 256 MiB"), "{message}");
        assert_eq!(
            check_memory_limit(&limits(4, 16), 256 << 20)
                .unwrap_err()
                .engine_mib,
            256
        );
        assert_eq!(check_memory_limit(&limits(2, 16), 200 << 20), Ok(()));
    }
}
