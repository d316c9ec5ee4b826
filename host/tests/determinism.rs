//! The same input always renders byte-identical objects, also through a
//! policy that reads the wall clock, the monotonic clock and random numbers.

mod support;

use std::sync::Arc;

use support::{engine, example_service, load, rules_allowing_example_annotations};
use svc_lb_host::config::ControllerConfig;
use svc_lb_host::policy::{DEFAULT_POLICY_WASM, PolicyChain, StaticNodes};
use svc_lb_host::render::render_proxy;

fn render_once() -> String {
    let engine = engine();
    let policies = vec![
        engine.load("default", DEFAULT_POLICY_WASM, "{}").unwrap(),
        load(&engine, "test_guest_nondeterministic", "{}"),
    ];
    let chain = PolicyChain::new(
        engine.clone(),
        policies,
        rules_allowing_example_annotations(),
    );
    let plan = chain
        .evaluate(&example_service(), Arc::new(StaticNodes::default()))
        .unwrap()
        .plan;
    render_proxy(&example_service(), &plan, &ControllerConfig::defaults())
        .to_yaml()
        .unwrap()
}

#[test]
fn rendering_twice_gives_identical_bytes_even_when_a_policy_reads_clock_and_random() {
    let first = render_once();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let second = render_once();
    assert_eq!(first, second);
    assert!(first.contains("example.com/wall-clock"), "the policy ran");
    assert!(
        first.contains("example.com/elapsed: '0'"),
        "the monotonic clock stands still:\n{first}"
    );
}
