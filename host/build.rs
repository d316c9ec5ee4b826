//! Compiles the policies workspace (`policies/`) for `wasm32-wasip2` so the
//! host can bundle the default policy and its tests and benchmarks can load
//! real components. No compiled `.wasm` is kept in the repository.
//!
//! Exposes to the crate:
//! - `SVCLB_DEFAULT_POLICY_WASM`: path of the default policy component;
//! - `SVCLB_POLICY_WASM_DIR`: directory holding every component built.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-wasip2";

/// Variables the outer cargo sets for build scripts that would change how
/// the inner, guest build compiles.
const OUTER_BUILD_VARIABLES: &[&str] = &[
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTFLAGS",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_PRIMARY_PACKAGE",
];

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .expect("host/ lies in the workspace root");
    let policies = root.join("policies");
    for watched in [
        "policies/Cargo.toml",
        "policies/Cargo.lock",
        "policies/.cargo",
        "policies/default",
        "policies/node-pools",
        "policies/namespace-pod-settings",
        "policies/testing",
        "policy-sdk",
        "contract",
        "wit",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }

    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    // <target>/<profile>/build/<pkg>/out: share one guest build between profiles.
    let target_dir = out_dir
        .ancestors()
        .nth(4)
        .unwrap_or(&out_dir)
        .join("policies-wasm");

    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(&policies)
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            WASM_TARGET,
            "--workspace",
        ])
        .arg("--target-dir")
        .arg(&target_dir);
    for variable in OUTER_BUILD_VARIABLES {
        command.env_remove(variable);
    }
    let status = command
        .status()
        .expect("running cargo for the policies workspace");
    if !status.success() {
        panic!(
            "building the policies for {WASM_TARGET} failed ({status}); \
             is the target installed? run `rustup toolchain install` in the repository root"
        );
    }

    let wasm_dir = target_dir.join(WASM_TARGET).join("release");
    let default_policy = wasm_dir.join("default_policy.wasm");
    assert_exists(&default_policy);
    println!(
        "cargo:rustc-env=SVCLB_DEFAULT_POLICY_WASM={}",
        default_policy.display()
    );
    println!(
        "cargo:rustc-env=SVCLB_POLICY_WASM_DIR={}",
        wasm_dir.display()
    );
}

fn assert_exists(path: &Path) {
    if !path.is_file() {
        panic!("expected {} after building the policies", path.display());
    }
}
