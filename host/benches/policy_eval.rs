//! Policy-chain latency: one Service through (a) the default policy alone,
//! (b) the default policy and both example policies, (c) the default policy
//! and a policy that reads every node, each with 10 and with 1 000 nodes of
//! 20 labels (10 % labelled for deployment), (d) the same reader asking for
//! two label keys only (the `list-nodes` projection); plus the one-time compile cost
//! of each policy. Every evaluation runs in a fresh instance.
//!
//! Run: `cargo bench -p tailscale-svc-lb --bench policy_eval`

use std::sync::Arc;
use std::time::{Duration, Instant};

use policy_sdk::{Labels, Node};
use svc_lb_host::policy::{
    DEFAULT_POLICY_WASM, EngineLimits, LoadedPolicy, PolicyChain, PolicyEngine, StaticNodes,
};
use svc_lb_host::quantile::percentile;
use svc_lb_host::validate::PlanRules;

const NODE_POOLS_SETTINGS: &str = r#"{"pools": {"edge": {}}, "requireReadyNode": false}"#;
/// What a spreading policy reads of every node: name, readiness, taints and
/// two label keys (one of which most nodes carry).
const TWO_LABEL_KEYS: &str =
    r#"{"labelKeys": ["kubernetes.io/hostname", "svc-lb.tailscale.iptables.sh/deploy"]}"#;
const POD_SETTINGS: &str = r#"{"namespaces": {"shop": {"priorityClassName": "shop-critical",
    "resources": {"requests": {"cpu": "20m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}}}}}"#;

fn wasm(crate_name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/{crate_name}.wasm",
        env!("SVCLB_POLICY_WASM_DIR")
    ))
    .unwrap()
}

fn nodes(count: usize) -> Arc<StaticNodes> {
    let nodes = (0..count)
        .map(|i| {
            let mut labels: Labels = (0..19)
                .map(|l| {
                    (
                        format!("example.com/label-{l}"),
                        format!("value-{}", (i + l) % 7),
                    )
                })
                .collect();
            if i % 10 == 0 {
                labels.insert("svc-lb.tailscale.iptables.sh/deploy".into(), "true".into());
            } else {
                labels.insert("kubernetes.io/hostname".into(), format!("node-{i}"));
            }
            Node {
                name: format!("node-{i:04}"),
                labels,
                // One node in ten is tainted, as dedicated pools are.
                taints: if i % 10 == 5 {
                    vec![policy_sdk::Taint {
                        key: "dedicated".into(),
                        value: "gpu".into(),
                        effect: "NoSchedule".into(),
                    }]
                } else {
                    Vec::new()
                },
                ready: i % 20 != 7,
            }
        })
        .collect();
    Arc::new(StaticNodes::new(nodes))
}

fn measure(label: &str, chain: &PolicyChain, node_count: usize, iterations: usize) {
    let service =
        policy_sdk::fixtures::service_from_yaml(include_str!("../../examples/service.yaml"))
            .unwrap();
    let nodes = nodes(node_count);
    for _ in 0..iterations / 10 {
        chain.evaluate(&service, nodes.clone()).unwrap();
    }
    let mut per_policy: Vec<Vec<Duration>> = vec![Vec::new(); chain.policies().len()];
    let mut samples: Vec<Duration> = (0..iterations)
        .map(|_| {
            let started = Instant::now();
            let outcome = chain.evaluate(&service, nodes.clone()).unwrap();
            let elapsed = started.elapsed();
            for (step, times) in outcome.trace.iter().zip(&mut per_policy) {
                times.push(step.elapsed);
            }
            elapsed
        })
        .collect();
    samples.sort();
    let steps: Vec<String> = chain
        .policies()
        .iter()
        .zip(&mut per_policy)
        .map(|(policy, times)| {
            times.sort();
            format!(
                "{} {:.1}",
                policy.name,
                percentile(times, 0.5).as_secs_f64() * 1e6
            )
        })
        .collect();
    println!(
        "{label:<48} nodes={node_count:<5} n={iterations:<5} p50={:>9.1} µs  p99={:>9.1} µs  (p50 per policy, µs: {})",
        percentile(&samples, 0.50).as_secs_f64() * 1e6,
        percentile(&samples, 0.99).as_secs_f64() * 1e6,
        steps.join(", "),
    );
}

fn compile_cost(name: &str, bytes: &[u8], settings: &str) {
    let mut samples: Vec<Duration> = (0..5)
        .map(|_| {
            // A fresh engine each time: no compile cache.
            let engine = PolicyEngine::new(EngineLimits::default()).unwrap();
            let started = Instant::now();
            engine.load(name, bytes, settings).unwrap();
            started.elapsed()
        })
        .collect();
    samples.sort();
    println!(
        "compile+validate {name:<31} size={:>7} B  median={:>7.1} ms",
        bytes.len(),
        percentile(&samples, 0.5).as_secs_f64() * 1e3
    );
}

fn main() {
    let engine = Arc::new(PolicyEngine::new(EngineLimits::default()).unwrap());
    let load = |name: &str, bytes: &[u8], settings: &str| -> LoadedPolicy {
        engine.load(name, bytes, settings).unwrap()
    };
    let default = load("default", DEFAULT_POLICY_WASM, "{}");
    let pools = load("node-pools", &wasm("node_pools"), NODE_POOLS_SETTINGS);
    let pod = load(
        "namespace-pod-settings",
        &wasm("namespace_pod_settings"),
        POD_SETTINGS,
    );
    let reader = load("read-all-nodes", &wasm("test_guest_read_all_nodes"), "{}");
    let projecting_reader = load(
        "read-all-nodes-two-labels",
        &wasm("test_guest_read_all_nodes"),
        TWO_LABEL_KEYS,
    );
    let chain = |policies: Vec<LoadedPolicy>| {
        PolicyChain::new(engine.clone(), policies, PlanRules::default())
    };

    let a = chain(vec![default.clone()]);
    let b = chain(vec![default.clone(), pools, pod]);
    // The reader records what it saw in pod annotations, which plans may
    // only set where the operator allows.
    let reader_rules = PlanRules {
        allowed_pod_annotations: vec!["example.com/*".into()],
        ..PlanRules::default()
    };
    let c = PolicyChain::new(
        engine.clone(),
        vec![default.clone(), reader],
        reader_rules.clone(),
    );
    let d = PolicyChain::new(
        engine.clone(),
        vec![default, projecting_reader],
        reader_rules,
    );
    for node_count in [10, 1000] {
        measure("(a) default policy", &a, node_count, 5000);
        measure(
            "(b) default + node-pools + namespace-pod-settings",
            &b,
            node_count,
            3000,
        );
        measure(
            "(c) default + policy reading every node",
            &c,
            node_count,
            if node_count > 100 { 300 } else { 3000 },
        );
        measure(
            "(d) default + every node, two label keys",
            &d,
            node_count,
            if node_count > 100 { 1000 } else { 3000 },
        );
    }

    compile_cost("default", DEFAULT_POLICY_WASM, "{}");
    compile_cost("node-pools", &wasm("node_pools"), NODE_POOLS_SETTINGS);
    compile_cost(
        "namespace-pod-settings",
        &wasm("namespace_pod_settings"),
        POD_SETTINGS,
    );
    compile_cost("read-all-nodes", &wasm("test_guest_read_all_nodes"), "{}");
}
