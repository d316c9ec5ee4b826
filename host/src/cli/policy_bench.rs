//! `tailscale-svc-lb policy bench`: what a policy costs the controller,
//! measured with the controller's engine and limits: compile time, time per
//! evaluation (each in a fresh instance, as the controller runs them), nodes
//! handed to it and linear memory used.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use svc_lb_host::policy::{EngineLimits, PolicyEngine};
use svc_lb_host::quantile::percentile;

use super::args::EngineArgs;
use super::policy_sample::{SampleArgs, describe_decision, read_component};

#[derive(Debug, Args)]
pub(super) struct BenchArgs {
    /// The policy component (.wasm).
    wasm: PathBuf,
    #[command(flatten)]
    sample: SampleArgs,
    /// Evaluations to time (after a tenth as many to warm up).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    iterations: u32,
    #[command(flatten)]
    engine: EngineArgs,
}

/// Fresh engines compiled in, for the compile time's median.
const COMPILE_RUNS: usize = 3;

pub(super) fn run(args: BenchArgs) -> anyhow::Result<()> {
    let (bytes, name) = read_component(&args.wasm)?;
    let settings = args.sample.settings()?;
    let limits = args.engine.to_limits()?;

    // Each run in a new engine: no compile cache. The controller compiles a
    // component once per content digest, when a policy set is loaded.
    let mut compile = Vec::with_capacity(COMPILE_RUNS);
    let mut validate = Vec::with_capacity(COMPILE_RUNS);
    for _ in 0..COMPILE_RUNS {
        let engine = PolicyEngine::new(limits)?;
        let started = Instant::now();
        engine.load(&name, &bytes, &settings)?;
        compile.push(started.elapsed());
        // Compiled now: a second load only instantiates and validates.
        let started = Instant::now();
        engine.load(&name, &bytes, &settings)?;
        validate.push(started.elapsed());
    }
    compile.sort();
    validate.sort();

    let engine = PolicyEngine::new(limits)?;
    let policy = engine.load(&name, &bytes, &settings)?;
    let sample = args.sample.sample(&engine)?;
    let evaluate = || {
        let started = Instant::now();
        let evaluation =
            engine.evaluate(&policy, &sample.service, &sample.plan, sample.nodes.clone());
        (started.elapsed(), evaluation)
    };
    for _ in 0..args.iterations.div_ceil(10) {
        evaluate().1?;
    }
    let mut times = Vec::with_capacity(args.iterations as usize);
    let mut last = None;
    for _ in 0..args.iterations {
        let (elapsed, evaluation) = evaluate();
        times.push(elapsed);
        last = Some(evaluation?);
    }
    times.sort();
    let last = last.expect("at least one iteration");

    println!(
        "{} ({} bytes, svc-lb:policy@{}), {}/{} with {} node(s)",
        args.wasm.display(),
        bytes.len(),
        policy.contract_version(),
        sample.service.namespace,
        sample.service.name,
        sample.node_count
    );
    println!(
        "  compile + validate {:>9.2} ms  median of {COMPILE_RUNS}, each in a new engine; once per component",
        millis(compile[COMPILE_RUNS / 2])
    );
    println!(
        "  validate settings  {:>9.2} ms  median, in a fresh instance, when the set is loaded",
        millis(validate[COMPILE_RUNS / 2])
    );
    println!(
        "  evaluate p50       {:>9.1} µs  each in a fresh instance, {} evaluations",
        micros(percentile(&times, 0.50)),
        args.iterations
    );
    println!(
        "  evaluate p99       {:>9.1} µs  deadline {} ms",
        micros(percentile(&times, 0.99)),
        limits.deadline.as_millis()
    );
    println!(
        "  nodes              {:>9}     returned per evaluation, of {}",
        last.nodes_returned, sample.node_count
    );
    println!(
        "  memory             {:>9} KiB linear memory at its largest; cap {} MiB",
        last.memory_bytes >> 10,
        limits.max_memory_bytes >> 20
    );
    println!(
        "  decision           {}",
        describe_decision(&policy, &sample.plan, &last.decision)
    );
    warn_if_slow(percentile(&times, 0.99), &limits);
    Ok(())
}

fn warn_if_slow(p99: Duration, limits: &EngineLimits) {
    if p99 > limits.deadline / 10 {
        eprintln!(
            "warning: p99 is over a tenth of the {} ms deadline; a busier node will stretch it",
            limits.deadline.as_millis()
        );
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
