//! `tailscale-svc-lb policy new NAME`: writes a policy crate ready to test
//! natively and to build for `wasm32-wasip2` (see `host/policy-template`).

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use svc_lb_host::scaffold::render_policy_crate;

#[derive(Debug, Args)]
pub(super) struct NewArgs {
    /// The policy's name: it names the crate, its `.wasm` (with `_` for
    /// `-`) and the policy in `policies.yaml`.
    name: String,
    /// Directory to create (default: ./NAME). It must not exist or be empty.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Depend on the policy-sdk in this directory (e.g. a checkout's
    /// `policy-sdk`) instead of the published crate.
    #[arg(long, value_name = "DIR")]
    sdk_path: Option<PathBuf>,
}

pub(super) fn run(args: NewArgs) -> anyhow::Result<()> {
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(&args.name));
    let sdk_path = args
        .sdk_path
        .map(|path| {
            let path = std::fs::canonicalize(&path)
                .with_context(|| format!("--sdk-path {}", path.display()))?;
            if !path.join("Cargo.toml").is_file() {
                bail!("--sdk-path {}: no Cargo.toml there", path.display());
            }
            Ok(path)
        })
        .transpose()?;
    let files = render_policy_crate(&args.name, sdk_path.as_deref())?;
    if std::fs::read_dir(&dir).is_ok_and(|mut entries| entries.next().is_some()) {
        bail!("{} exists and is not empty", dir.display());
    }
    for file in &files {
        let path = dir.join(file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, &file.contents)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if sdk_path.is_none() {
        println!(
            "policy-sdk comes from crates.io; where it is not published (yet), \
             pass --sdk-path <checkout>/policy-sdk instead"
        );
    }
    let crate_name = args.name.replace('-', "_");
    println!(
        "created policy {name} in {dir}\n\n\
         next, in {dir}:\n  \
         cargo test                                       # the policy, natively, against tests/fixtures\n  \
         cargo build --release --target wasm32-wasip2     # the component\n  \
         tailscale-svc-lb policy check target/wasm32-wasip2/release/{crate_name}.wasm --settings settings.json\n  \
         tailscale-svc-lb policy bench target/wasm32-wasip2/release/{crate_name}.wasm --settings settings.json \
         -f tests/fixtures/service.yaml --nodes tests/fixtures/nodes.yaml",
        name = args.name,
        dir = dir.display(),
    );
    Ok(())
}
