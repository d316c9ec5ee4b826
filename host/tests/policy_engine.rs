//! The policy engine with real components built from `policies/`: the
//! bundled and example policies give the expected plans, and hostile
//! components fail with their specific error, in bounded time, leaving the
//! engine usable.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use policy_sdk::Labels;
use support::{engine, example_service, load, rules_allowing_example_annotations, service, wasm};
use svc_lb_host::policy::{
    ChainError, DEFAULT_POLICY_WASM, PolicyChain, PolicyEngine, PolicyErrorKind, StaticNodes,
    inspect_component,
};
use svc_lb_host::validate::{InvalidPlan, PlanRules};

fn nodes() -> Arc<StaticNodes> {
    Arc::new(StaticNodes::new(
        policy_sdk::fixtures::nodes_from_yaml(include_str!("../../examples/nodes.yaml")).unwrap(),
    ))
}

fn chain_of(engine: &Arc<PolicyEngine>, policies: &[(&str, &str)]) -> PolicyChain {
    let mut loaded = vec![engine.load("default", DEFAULT_POLICY_WASM, "{}").unwrap()];
    loaded.extend(
        policies
            .iter()
            .map(|(name, settings)| load(engine, name, settings)),
    );
    PolicyChain::new(engine.clone(), loaded, rules_allowing_example_annotations())
}

/// Runs the one policy `name` after the default policy and returns its error kind.
fn failure_of(engine: &Arc<PolicyEngine>, name: &str, settings: &str) -> PolicyErrorKind {
    match chain_of(engine, &[(name, settings)]).evaluate(&example_service(), nodes()) {
        Err(ChainError::Policy(e)) => {
            assert_eq!(e.policy, name);
            e.kind
        }
        other => panic!("{name}: expected a policy error, got {other:?}"),
    }
}

/// After a failure, the same engine still evaluates a good chain.
fn assert_engine_still_works(engine: &Arc<PolicyEngine>) {
    let outcome = chain_of(engine, &[])
        .evaluate(&example_service(), nodes())
        .unwrap();
    assert_eq!(outcome.plan.hostname, "shop-web");
}

#[test]
fn default_policy_selects_deploy_nodes_and_takes_hostname_and_tags_from_annotations() {
    let engine = engine();
    let outcome = chain_of(&engine, &[])
        .evaluate(&example_service(), nodes())
        .unwrap();
    assert_eq!(
        outcome.plan.node_selector,
        Labels::from([("svc-lb.tailscale.iptables.sh/deploy".into(), "true".into())])
    );
    assert_eq!(outcome.plan.hostname, "shop-web");
    assert_eq!(outcome.plan.tags, vec!["tag:shop"]);
    assert_eq!(outcome.trace.len(), 1);
    assert_eq!(
        outcome.trace[0].nodes_returned, 0,
        "the default policy reads no nodes"
    );
}

#[test]
fn default_and_example_policies_chain_their_plans() {
    let engine = engine();
    let chain = chain_of(
        &engine,
        &[
            (
                "node_pools",
                r#"{"pools": {"edge": {"tolerations": [{"key": "dedicated", "value": "edge", "effect": "NoSchedule"}]}}}"#,
            ),
            (
                "namespace_pod_settings",
                r#"{"namespaces": {"shop": {"priorityClassName": "shop-critical", "resources": {"requests": {"cpu": "20m"}}}}}"#,
            ),
        ],
    );
    let outcome = chain.evaluate(&example_service(), nodes()).unwrap();
    let plan = outcome.plan;
    assert_eq!(
        plan.node_selector,
        Labels::from([(
            "pool.svc-lb.tailscale.iptables.sh/edge".into(),
            "true".into()
        )])
    );
    assert_eq!(plan.tolerations.len(), 1);
    assert_eq!(plan.priority_class_name.as_deref(), Some("shop-critical"));
    assert_eq!(plan.resources.requests["cpu"], "20m");
    assert_eq!(plan.hostname, "shop-web", "earlier decisions carry through");
    let steps: Vec<&str> = outcome.trace.iter().map(|s| s.policy.as_str()).collect();
    assert_eq!(steps, ["default", "node_pools", "namespace_pod_settings"]);
    assert_eq!(
        outcome.trace[1].nodes_returned, 1,
        "node-pools looked up the edge pool"
    );
    assert_eq!(
        outcome.trace[1].logs[0].message,
        "pool edge: 1 nodes, 1 ready"
    );
}

#[test]
fn a_rejection_names_the_policy_and_its_reason() {
    let engine = engine();
    let kind = failure_of(&engine, "node_pools", r#"{"pools": {"core": {}}}"#);
    match kind {
        PolicyErrorKind::Rejected(reason) => {
            assert!(reason.contains("unknown node pool \"edge\""), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_infinite_loop_is_stopped_at_the_deadline() {
    let engine = engine();
    let started = Instant::now();
    let kind = failure_of(&engine, "test_guest_spin_forever", "{}");
    assert!(
        matches!(kind, PolicyErrorKind::Timeout(d) if d == Duration::from_millis(200)),
        "{kind:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert_engine_still_works(&engine);
}

#[test]
fn sleeping_on_a_clock_is_refused_instead_of_blocking_the_host() {
    let engine = engine();
    let started = Instant::now();
    let kind = failure_of(&engine, "test_guest_spin_forever", r#"{"sleep": true}"#);
    match kind {
        PolicyErrorKind::Trap { trap, .. } => {
            assert!(trap.contains("may not wait on a clock"), "{trap}")
        }
        other => panic!("{other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert_engine_still_works(&engine);
}

#[test]
fn unbounded_memory_growth_hits_the_memory_cap() {
    let engine = engine();
    let kind = failure_of(&engine, "test_guest_grow_memory", "{}");
    assert!(
        matches!(kind, PolicyErrorKind::MemoryLimit(b) if b == 32 << 20),
        "{kind:?}"
    );
    assert_engine_still_works(&engine);
}

/// The example policies, like the bundled one, are `#![no_std]`: they import
/// the contract's interfaces only. Built with the SDK's `std` feature, the
/// same source imports WASI (the standard library's stderr and clocks).
#[test]
fn the_example_policies_are_no_std_and_a_std_build_imports_wasi() {
    for name in ["node_pools", "namespace_pod_settings", "test_guest_panic"] {
        let facts = inspect_component(&wasm(name)).unwrap();
        assert!(
            !facts.imports.is_empty() && !facts.imports_wasi(),
            "{name}: {:?}",
            facts.imports
        );
    }
    let std_build = inspect_component(&wasm("test_guest_panic_std")).unwrap();
    assert!(std_build.imports_wasi(), "{:?}", std_build.imports);
}

/// The allocator the SDK gives a `#![no_std]` policy serves every kind of
/// block Rust asks for: aligned beyond `malloc`'s 8 bytes, zeroed, grown
/// and shrunk (the guest rejects the Service naming a check that fails).
#[test]
fn the_no_std_allocator_serves_aligned_zeroed_and_growing_blocks() {
    let engine = engine();
    let outcome = chain_of(&engine, &[("test_guest_allocate", "{}")])
        .evaluate(&example_service(), nodes())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(outcome.plan.hostname, "shop-web");
}

/// The same panicking policy built both ways: `#![no_std]`, where the SDK's
/// panic handler logs the message, and with the standard library, whose
/// panic hook writes it to stderr.
#[test]
fn a_panic_reaches_the_operator_with_its_message() {
    let engine = engine();
    for guest in ["test_guest_panic", "test_guest_panic_std"] {
        match failure_of(&engine, guest, "{}") {
            kind @ PolicyErrorKind::Trap { .. } => {
                let shown = kind.to_string();
                assert!(
                    shown.starts_with("panicked at ")
                        && shown.contains("src/lib.rs:")
                        && shown.contains(": policy bug while placing web (trapped: "),
                    "{guest}: the policy's message leads: {shown}"
                );
                assert!(
                    !shown.contains("wasm function"),
                    "{guest}: no backtrace: {shown}"
                );
            }
            other => panic!("{guest}: {other:?}"),
        }
    }
    assert_engine_still_works(&engine);
}

#[test]
fn invalid_plans_are_refused_with_the_reason() {
    let engine = engine();
    type Expect = fn(&InvalidPlan) -> bool;
    let cases: [(&str, Expect); 6] = [
        (
            "hostname",
            |e| matches!(e, InvalidPlan::Hostname(h) if h == "Not_A_Label"),
        ),
        ("tag", |e| matches!(e, InvalidPlan::Tag(t) if t == "prod")),
        ("huge-labels", |e| {
            matches!(
                e,
                InvalidPlan::TooMany {
                    field: "podLabels",
                    count: 10_000,
                    ..
                }
            )
        }),
        (
            "reserved-env",
            |e| matches!(e, InvalidPlan::ReservedEnv(n) if n == "SVCLB_HOSTNAME"),
        ),
        ("quantity", |e| matches!(e, InvalidPlan::Quantity { .. })),
        ("label-key", |e| {
            matches!(
                e,
                InvalidPlan::Key {
                    field: "podLabels",
                    ..
                }
            )
        }),
    ];
    for (mistake, expected) in cases {
        let settings = format!(r#"{{"mistake": "{mistake}"}}"#);
        match failure_of(&engine, "test_guest_bad_plan", &settings) {
            PolicyErrorKind::InvalidPlan(e) => assert!(expected(&e), "{mistake}: {e}"),
            other => panic!("{mistake}: {other:?}"),
        }
    }
    assert_engine_still_works(&engine);
}

#[test]
fn a_component_of_another_world_is_not_a_policy() {
    let engine = engine();
    let err = engine
        .load("wrong", &wasm("test-guest-wrong-world"), "{}")
        .unwrap_err();
    assert_eq!(err.policy, "wrong");
    assert!(matches!(err.kind, PolicyErrorKind::WrongWorld(_)), "{err}");
    assert_engine_still_works(&engine);
}

#[test]
fn random_bytes_and_core_modules_are_not_components() {
    let engine = engine();
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let err = engine.load("garbage", &garbage, "{}").unwrap_err();
    assert!(
        matches!(err.kind, PolicyErrorKind::InvalidComponent(_)),
        "{err}"
    );
    // A valid core module (not a component): magic, version 1, no sections.
    let core = b"\0asm\x01\0\0\0";
    let err = engine.load("core", core, "{}").unwrap_err();
    assert!(
        matches!(err.kind, PolicyErrorKind::InvalidComponent(_)),
        "{err}"
    );
    assert_engine_still_works(&engine);
}

#[test]
fn settings_are_validated_when_a_policy_is_loaded() {
    let engine = engine();
    let err = engine
        .load("pools", &wasm("node_pools"), r#"{"pools": {}}"#)
        .unwrap_err();
    match err.kind {
        PolicyErrorKind::InvalidSettings(reason) => {
            assert!(reason.contains("at least one pool"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    let err = engine
        .load("pools", &wasm("node_pools"), "not json")
        .unwrap_err();
    assert!(
        matches!(err.kind, PolicyErrorKind::InvalidSettings(_)),
        "{err}"
    );
}

#[test]
fn policies_keep_no_state_between_services() {
    let engine = engine();
    let chain = chain_of(
        &engine,
        &[
            ("test_guest_read_all_nodes", "{}"),
            ("test_guest_nondeterministic", "{}"),
        ],
    );
    let first = chain.evaluate(&example_service(), nodes()).unwrap().plan;
    let other = service("metadata: {name: api, namespace: shop}\nspec: {type: LoadBalancer}");
    chain.evaluate(&other, nodes()).unwrap();
    let again = chain.evaluate(&example_service(), nodes()).unwrap().plan;
    assert_eq!(first, again);
    assert_eq!(first.pod_annotations["example.com/ready-nodes"], "2/2");
    assert_eq!(
        again.pod_annotations["example.com/calls"], "1",
        "a static counter in the guest starts afresh on every call"
    );
}

#[test]
fn the_tag_allowlist_applies_to_every_policy() {
    let engine = engine();
    let default = engine.load("default", DEFAULT_POLICY_WASM, "{}").unwrap();
    let rules = PlanRules {
        tag_allowlist: Some(vec!["tag:k8s".into()]),
        ..PlanRules::default()
    };
    let err = PolicyChain::new(engine.clone(), vec![default], rules)
        .evaluate(&example_service(), nodes())
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("tag tag:shop is not in the controller's tag allowlist"),
        "{err}"
    );
}

#[test]
fn a_call_waits_for_a_free_instance_slot_instead_of_failing() {
    let engine = Arc::new(
        PolicyEngine::new(svc_lb_host::policy::EngineLimits {
            deadline: Duration::from_millis(300),
            max_concurrent_instances: 1,
            ..Default::default()
        })
        .unwrap(),
    );
    let spin = load(&engine, "test_guest_spin_forever", "{}");
    let default = engine.load("default", DEFAULT_POLICY_WASM, "{}").unwrap();
    let (started, holding) = std::sync::mpsc::channel();
    // The holder takes the only slot and keeps it until its deadline.
    let holder = {
        let engine = engine.clone();
        std::thread::spawn(move || {
            let chain = PolicyChain::new(engine, vec![spin], PlanRules::default());
            started.send(()).unwrap();
            chain.evaluate(&example_service(), nodes()).unwrap_err()
        })
    };
    holding.recv().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let chain = PolicyChain::new(engine.clone(), vec![default], PlanRules::default());
    let waited = std::time::Instant::now();
    chain
        .evaluate(&example_service(), nodes())
        .expect("the call waits for the slot and then runs");
    let waited = waited.elapsed();
    match holder.join().unwrap() {
        ChainError::Policy(e) => assert!(matches!(e.kind, PolicyErrorKind::Timeout(_)), "{e}"),
        other => panic!("{other}"),
    }
    assert!(
        waited >= Duration::from_millis(100),
        "the second call ran beside the holder ({waited:?}) though there is one slot"
    );
}

#[test]
fn components_of_sets_no_longer_active_are_dropped_from_the_compile_cache() {
    let engine = engine();
    let pools = r#"{"pools": {"edge": {"tolerations": [{"key": "dedicated", "value": "edge", "effect": "NoSchedule"}]}}}"#;
    let old = chain_of(&engine, &[("node_pools", pools)]);
    assert_eq!(engine.compiled_count(), 2, "default and node-pools");
    // A reload activates a set of the default policy alone.
    let new = vec![engine.load("default", DEFAULT_POLICY_WASM, "{}").unwrap()];
    engine.keep_compiled_only(&new);
    assert_eq!(engine.compiled_count(), 1, "node-pools is gone");
    // The old chain still works from its own pre-instantiated copy.
    assert!(old.evaluate(&example_service(), nodes()).is_ok());
}

#[test]
fn a_tag_asked_for_twice_reaches_the_plan_once() {
    let engine = engine();
    let twice = service(
        r#"
metadata:
  name: web
  namespace: shop
  annotations:
    svc-lb.tailscale.iptables.sh/tags: "tag:web, tag:shop, tag:web"
spec:
  type: LoadBalancer
  loadBalancerClass: svc-lb.tailscale.iptables.sh/lb
  clusterIP: 10.96.0.10
  ports: [{port: 80, protocol: TCP}]
"#,
    );
    let outcome = chain_of(&engine, &[]).evaluate(&twice, nodes()).unwrap();
    assert_eq!(outcome.plan.tags, ["tag:web", "tag:shop"]);
}

#[test]
fn a_component_built_for_contract_0_1_0_still_loads_and_runs() {
    let engine = engine();
    let legacy = load(&engine, "test_guest_contract_0_1", "{}");
    assert_eq!(legacy.contract_version(), "0.1.0");
    let current = engine.load("default", DEFAULT_POLICY_WASM, "{}").unwrap();
    assert_eq!(current.contract_version(), "0.2.0");
    // After the current default policy, in one chain: the plans pass between
    // versions, node look-ups and logs work.
    let chain = PolicyChain::new(
        engine.clone(),
        vec![current, legacy.clone()],
        PlanRules::default(),
    );
    let outcome = chain.evaluate(&example_service(), nodes()).unwrap();
    let plan = &outcome.plan;
    assert_eq!(plan.hostname, "legacy-web");
    assert_eq!(
        plan.tags,
        vec!["tag:shop".to_string()],
        "kept from the default policy"
    );
    assert_eq!(plan.node_selector["pool"], "legacy");
    assert_eq!(plan.pod_labels["legacy-nodes"], "2");
    assert_eq!(outcome.trace[1].nodes_returned, 2);
    assert_eq!(outcome.trace[1].logs[0].message, "2 nodes");
    // A 0.1.0 rejection is a rejection (invalid input), as it always was.
    let rejected = service(
        "metadata: {name: api, namespace: shop, annotations: {legacy/reject: x}}\nspec: {type: LoadBalancer}",
    );
    let chain = PolicyChain::new(engine.clone(), vec![legacy], PlanRules::default());
    match chain.evaluate(&rejected, nodes()) {
        Err(ChainError::Policy(e)) => {
            assert!(matches!(e.kind, PolicyErrorKind::Rejected(_)), "{e}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn do_not_serve_is_a_verdict_and_invalid_input_a_rejection() {
    let engine = engine();
    let chain = chain_of(&engine, &[("test_guest_opt_out", "{}")]);
    let with = |value: &str| {
        service(&format!(
            "metadata: {{name: web, namespace: shop, annotations: {{example.com/expose: {value:?}}}}}\n\
             spec: {{type: LoadBalancer}}"
        ))
    };
    chain.evaluate(&with("true"), nodes()).expect("served");
    match chain.evaluate(&with("false"), nodes()) {
        Err(ChainError::DoNotServe { policy, reason }) => {
            assert_eq!(policy, "test_guest_opt_out");
            assert!(reason.contains("example.com/expose=false"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    match chain.evaluate(&with("flase"), nodes()) {
        Err(ChainError::Policy(e)) => {
            assert!(matches!(e.kind, PolicyErrorKind::Rejected(_)), "{e}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_policy_asking_for_some_label_keys_gets_only_those() {
    let engine = engine();
    let seen = |settings: &str| {
        let chain = chain_of(&engine, &[("test_guest_read_all_nodes", settings)]);
        let plan = chain.evaluate(&example_service(), nodes()).unwrap().plan;
        plan.pod_annotations["example.com/labels-seen"].clone()
    };
    // examples/nodes.yaml: edge-1 has 3 labels, worker-1 has 2.
    assert_eq!(seen("{}"), "5");
    let one_key = r#"{"labelKeys": ["svc-lb.tailscale.iptables.sh/deploy"]}"#;
    assert_eq!(seen(one_key), "2");
    assert_eq!(seen(r#"{"labelKeys": ["absent"]}"#), "0");
}

#[test]
fn a_refused_set_listed_again_is_neither_loaded_nor_reported_again() {
    use svc_lb_host::controller::{PolicySource, SetChange};
    let source = PolicySource::new(engine(), None, true);
    let empty: k8s_openapi::api::core::v1::ConfigMap =
        serde_json::from_value(serde_json::json!({"data": {"policies.yaml": ""}})).unwrap();
    let refused = |change: SetChange| matches!(change, SetChange::Refused(_));
    assert!(refused(source.load(None)), "no ConfigMap is a bad set");
    assert!(
        matches!(source.load(None), SetChange::Unchanged),
        "the same absence again: nothing new to say"
    );
    assert!(matches!(source.load(Some(&empty)), SetChange::Activated));
    assert!(
        refused(source.load(None)),
        "deleted: refused, the set stays"
    );
    assert!(matches!(source.load(None), SetChange::Unchanged));
    assert!(matches!(source.load(Some(&empty)), SetChange::Unchanged));
}
