//! `tailscale-svc-lb policy check`: loads one component as the controller
//! would, has it validate its settings, evaluates it once, and reports what
//! its build decides: size against the ConfigMap, linked stack, debug
//! information. Warns when those are off.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use svc_lb_host::policy::{
    CONFIGMAP_LIMIT_BYTES, ComponentFacts, LARGE_COMPONENT_BYTES, LARGE_STACK_BYTES, PolicyEngine,
    inspect_component,
};

use super::args::EngineArgs;
use super::policy_sample::{SampleArgs, describe_decision, read_component};

#[derive(Debug, Args)]
pub(super) struct CheckArgs {
    /// The policy component (.wasm).
    wasm: PathBuf,
    #[command(flatten)]
    sample: SampleArgs,
    #[command(flatten)]
    engine: EngineArgs,
}

pub(super) fn run(args: CheckArgs) -> anyhow::Result<()> {
    let (bytes, name) = read_component(&args.wasm)?;
    let settings = args.sample.settings()?;
    let engine = PolicyEngine::new(args.engine.to_limits()?)?;
    let policy = engine.load(&name, &bytes, &settings)?;
    let facts = inspect_component(&bytes)?;
    if facts.size_bytes > CONFIGMAP_LIMIT_BYTES {
        for warning in build_warnings(&facts, Duration::ZERO, engine.limits().deadline) {
            eprintln!("warning: {warning}");
        }
        anyhow::bail!(
            "{} is {} bytes: over the 1 MiB a ConfigMap holds, it cannot be deployed \
             (build with `--release` and the release profile of `policy new`)",
            args.wasm.display(),
            facts.size_bytes
        );
    }
    let sample = args.sample.sample(&engine)?;

    let started = Instant::now();
    let evaluation =
        engine.evaluate(&policy, &sample.service, &sample.plan, sample.nodes.clone())?;
    let elapsed = started.elapsed();

    println!(
        "ok: {} (sha256 {}) is a placement policy (svc-lb:policy@{}) and accepts its settings",
        args.wasm.display(),
        policy.digest,
        policy.contract_version()
    );
    println!(
        "  size      {} bytes: {:.0} % of the ConfigMap's 1 MiB, which every policy of a set shares",
        facts.size_bytes,
        facts.size_bytes as f64 * 100.0 / CONFIGMAP_LIMIT_BYTES as f64
    );
    match facts.stack_bytes {
        Some(stack) => println!("  stack     {} KiB", stack >> 10),
        None => println!("  stack     unknown (no stack pointer found)"),
    }
    println!("  runtime   {}", describe_runtime(&facts));
    println!(
        "  evaluate  {:.1} µs for {}/{} in a fresh instance ({} of {} nodes returned); deadline {} ms",
        elapsed.as_secs_f64() * 1e6,
        sample.service.namespace,
        sample.service.name,
        evaluation.nodes_returned,
        sample.node_count,
        engine.limits().deadline.as_millis()
    );
    println!(
        "  decision  {}",
        describe_decision(&policy, &sample.plan, &evaluation.decision)
    );
    for warning in build_warnings(&facts, elapsed, engine.limits().deadline) {
        eprintln!("warning: {warning}");
    }
    Ok(())
}

/// Whether the component links the standard library: it then imports WASI
/// (for its panic messages, clocks, random), and is about 20–30 KB bigger.
fn describe_runtime(facts: &ComponentFacts) -> &'static str {
    if facts.imports_wasi() {
        "standard library (imports WASI); `#![no_std]` with policy-sdk's default features \
         off is about 20–30 KB smaller"
    } else {
        "#![no_std] (imports the contract only)"
    }
}

/// What is off in a component's build, or in its speed.
fn build_warnings(facts: &ComponentFacts, evaluation: Duration, deadline: Duration) -> Vec<String> {
    let mut warnings = Vec::new();
    if facts.size_bytes > LARGE_COMPONENT_BYTES {
        warnings.push(format!(
            "the component is {} KB, over a quarter of the ConfigMap's 1 MiB: build with \
             `--release` and the release profile of `policy new` (opt-level \"s\", lto, \
             codegen-units 1, strip, panic \"abort\")",
            facts.size_bytes / 1000
        ));
    }
    if facts.debug_info {
        warnings.push(
            "the component carries debug information or symbol names: build with `--release` \
             and `strip = true`"
                .to_string(),
        );
    }
    if let Some(stack) = facts.stack_bytes.filter(|s| *s > LARGE_STACK_BYTES) {
        warnings.push(format!(
            "the component is linked with a {} KiB stack, which every fresh instance sets up: \
             link with `-zstack-size=65536` (the build.rs of `policy new`)",
            stack >> 10
        ));
    }
    if evaluation > deadline / 10 {
        warnings.push(format!(
            "one evaluation took {:.1} ms, over a tenth of the {} ms deadline: \
             `policy bench` shows where",
            evaluation.as_secs_f64() * 1e3,
            deadline.as_millis()
        ));
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(size_bytes: usize, stack: Option<u64>, debug_info: bool) -> ComponentFacts {
        ComponentFacts {
            size_bytes,
            stack_bytes: stack,
            debug_info,
            imports: vec!["svc-lb:policy/host@0.2.0".to_string()],
        }
    }

    #[test]
    fn a_component_importing_wasi_is_said_to_link_the_standard_library() {
        let no_std = facts(90_000, Some(64 << 10), false);
        assert!(describe_runtime(&no_std).starts_with("#![no_std]"));
        let mut with_std = no_std;
        with_std.imports.push("wasi:cli/stderr@0.2.6".to_string());
        assert!(describe_runtime(&with_std).starts_with("standard library"));
    }

    #[test]
    fn a_release_build_with_a_small_stack_gets_no_warning() {
        let ok = facts(180_000, Some(64 << 10), false);
        assert!(
            build_warnings(&ok, Duration::from_micros(50), Duration::from_millis(100)).is_empty()
        );
    }

    #[test]
    fn each_mistake_of_a_build_is_named() {
        let bad = facts(2_400_000, Some(1 << 20), true);
        let warnings = build_warnings(&bad, Duration::from_millis(30), Duration::from_millis(100));
        assert_eq!(warnings.len(), 4, "{warnings:?}");
        assert!(warnings[0].contains("2400 KB"));
        assert!(warnings[1].contains("debug information"));
        assert!(warnings[2].contains("1024 KiB stack"));
        assert!(warnings[3].contains("30.0 ms"));
    }
}
