//! The policy engine's memory stays within its stated worst case
//! (`instances × cap × (1 + host copy factor)`) when every call at once
//! grows its guest to the cap or returns the largest result it can build
//! (many entries, or one huge string):
//! calls beyond the instance count wait for a slot instead of adding
//! memory. Alone in its test binary, so the process's peak RSS is the
//! engine's.

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::{example_service, wasm};
use svc_lb_host::policy::{
    ChainError, EngineLimits, PolicyChain, PolicyEngine, PolicyErrorKind, StaticNodes,
    check_memory_limit, engine_worst_case_bytes,
};
use svc_lb_host::validate::{InvalidPlan, PlanRules};

/// `VmRSS` or `VmHWM` of this process, in bytes.
fn status_bytes(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"));
    let kib: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib << 10
}

/// Resets `VmHWM` to the current RSS (proc(5), `clear_refs` value 5).
fn reset_peak_rss() {
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
}

#[test]
fn every_slot_at_its_cap_at_once_stays_within_the_stated_worst_case() {
    let limits = EngineLimits {
        // Generous: the host lifts results in a debug build here.
        deadline: Duration::from_secs(5),
        ..EngineLimits::default()
    };
    check_memory_limit(&limits, 256 << 20).expect("the defaults fit the shipped limit");
    let engine = Arc::new(PolicyEngine::new(limits).unwrap());
    let grow = engine
        .load("grow", &wasm("test_guest_grow_memory"), "{}")
        .unwrap();
    let big = engine
        .load(
            "big",
            &wasm("test_guest_bad_plan"),
            r#"{"mistake": "many-labels", "count": 60000}"#,
        )
        .unwrap();
    let huge = engine
        .load(
            "huge",
            &wasm("test_guest_bad_plan"),
            r#"{"mistake": "huge-hostname", "count": 6000000}"#,
        )
        .unwrap();
    let chain = |policy| PolicyChain::new(engine.clone(), vec![policy], PlanRules::default());
    let (grow, big, huge) = (chain(grow), chain(big), chain(huge));
    let service = example_service();
    let nodes = || Arc::new(StaticNodes::default());
    let outcome = |chain: &PolicyChain| match chain.evaluate(&service, nodes()) {
        Err(ChainError::Policy(e)) => match e.kind {
            PolicyErrorKind::InvalidPlan(InvalidPlan::TooMany { .. }) => "too_many".to_string(),
            PolicyErrorKind::InvalidPlan(InvalidPlan::TooLarge { field: "plan", .. }) => {
                "too_large".to_string()
            }
            kind => kind.metric_label().to_string(),
        },
        other => format!("{:?}", other.map(|o| o.plan)),
    };

    // Warm up (allocator arenas, first-call paths), then measure from here.
    outcome(&grow);
    outcome(&big);
    outcome(&huge);
    let before = status_bytes("VmRSS:");
    reset_peak_rss();

    let callers = 9 * limits.max_concurrent_instances as usize;
    let outcomes: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..callers)
            .map(|i| {
                let chain = [&grow, &big, &huge][i % 3];
                let outcome = &outcome;
                s.spawn(move || (0..3).map(|_| outcome(chain)).collect::<Vec<_>>())
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let peak = status_bytes("VmHWM:");
    let grown = peak.saturating_sub(before);
    let bound = engine_worst_case_bytes(&limits);
    eprintln!(
        "{callers} callers × 3 calls, {} instances × {} MiB: RSS before {} MiB, peak {} MiB, \
         grown {} MiB, stated worst case {} MiB",
        limits.max_concurrent_instances,
        limits.max_memory_bytes >> 20,
        before >> 20,
        peak >> 20,
        grown >> 20,
        bound >> 20
    );

    let memory_limit = "memory_limit";
    let count = |what: &str| outcomes.iter().filter(|o| *o == what).count();
    assert_eq!(
        count(memory_limit),
        callers,
        "every growing call reached its cap, none was refused as busy: {outcomes:?}"
    );
    assert_eq!(
        count("too_many"),
        callers,
        "every result of many entries reached the host and was refused: {outcomes:?}"
    );
    assert_eq!(
        count("too_large"),
        callers,
        "every result of one huge string reached the host and was refused: {outcomes:?}"
    );
    assert!(
        grown >= limits.max_memory_bytes,
        "the calls used memory ({} MiB grown), so the bound was tested",
        grown >> 20
    );
    assert!(
        grown <= bound,
        "peak RSS grew {} MiB, over the stated worst case of {} MiB",
        grown >> 20,
        bound >> 20
    );
}
