//! `tailscale-svc-lb policy check`: loads one component as the controller
//! would and has it validate its settings.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use svc_lb_host::policy::PolicyEngine;

use super::args::{EngineArgs, read_settings};

#[derive(Debug, Args)]
pub(super) struct CheckArgs {
    /// The policy component (.wasm).
    wasm: PathBuf,
    /// Settings file (JSON or YAML); `{}` when absent.
    #[arg(long, value_name = "FILE")]
    settings: Option<PathBuf>,
    #[command(flatten)]
    engine: EngineArgs,
}

pub(super) fn run(args: CheckArgs) -> anyhow::Result<()> {
    let bytes = std::fs::read(&args.wasm)
        .with_context(|| format!("cannot read {}", args.wasm.display()))?;
    let settings = match &args.settings {
        Some(path) => read_settings(path)?,
        None => serde_json::json!({}),
    };
    let name = args
        .wasm
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("policy");
    let engine = PolicyEngine::new(args.engine.to_limits()?)?;
    let policy = engine.load(name, &bytes, &settings.to_string())?;
    println!(
        "ok: {} ({} bytes, sha256 {}) is a placement policy and accepts its settings",
        args.wasm.display(),
        bytes.len(),
        policy.digest
    );
    Ok(())
}
