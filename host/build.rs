//! Compiles the policies workspace (`policies/`) for `wasm32-wasip2` so the
//! host can bundle the default policy and its tests and benchmarks can load
//! real components. No compiled `.wasm` is kept in the repository.
//!
//! It also resolves the policy template's manifest (`policy-template/`)
//! against `policies/Cargo.lock`, so `policy new` writes a lockfile pinned to
//! the versions the bundled policies are built with.
//!
//! Exposes to the crate:
//! - `SVCLB_DEFAULT_POLICY_WASM`: path of the default policy component;
//! - `SVCLB_POLICY_WASM_DIR`: directory holding every component built;
//! - `$OUT_DIR/policy-template/Cargo.lock`: the template's lockfile.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-wasip2";

#[path = "src/scaffold/manifest.rs"]
mod manifest;

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

/// Test guests that link the standard library (WASI clocks, sleep and
/// random; a panic written to stderr). Every other policy is `#![no_std]`.
const STD_GUESTS: &[&str] = &[
    "test-guest-spin-forever",
    "test-guest-nondeterministic",
    "test-guest-panic-std",
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
        "host/policy-template",
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

    // Two builds: cargo unifies a dependency's features across the packages
    // of one build, so building the guests that link the standard library
    // together with the rest would give every policy the SDK's `std`
    // feature (bigger, and the `#![no_std]` panic path left untested).
    build_policies(
        &policies,
        &target_dir,
        &["--workspace"],
        STD_GUESTS,
        "--exclude",
    );
    build_policies(&policies, &target_dir, &[], STD_GUESTS, "--package");

    pin_template_lockfile(root, &out_dir);

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

/// `cargo build --release --locked --target wasm32-wasip2` in `policies`,
/// with `args`, and `flag package` for each of `packages`.
fn build_policies(
    policies: &Path,
    target_dir: &Path,
    args: &[&str],
    packages: &[&str],
    flag: &str,
) {
    let mut command = inner_cargo();
    command
        .current_dir(policies)
        .args(["build", "--release", "--locked", "--target", WASM_TARGET])
        .args(args)
        .args(packages.iter().flat_map(|package| [flag, package]))
        .arg("--target-dir")
        .arg(target_dir);
    let status = command
        .status()
        .expect("running cargo for the policies workspace");
    if !status.success() {
        panic!(
            "building the policies for {WASM_TARGET} failed ({status}); \
             is the target installed? run `rustup toolchain install` in the repository root"
        );
    }
}

/// Writes `$OUT_DIR/policy-template/Cargo.lock`: cargo resolves the
/// template's manifest offline, starting from `policies/Cargo.lock` (whose
/// crates the guest build above has just fetched), and drops what the
/// template does not use.
fn pin_template_lockfile(root: &Path, out_dir: &Path) {
    let dir = out_dir.join("policy-template");
    let sdk = root.join("policy-sdk");
    let manifest = manifest::render_manifest(
        include_str!("policy-template/Cargo.toml"),
        "policy-template",
        env!("CARGO_PKG_VERSION"),
        Some(sdk.to_str().expect("the checkout's path is UTF-8")),
    );
    fs::create_dir_all(dir.join("src")).expect("creating the template's directory");
    fs::write(dir.join("Cargo.toml"), manifest).expect("writing the template's manifest");
    fs::write(dir.join("src/lib.rs"), "").expect("writing the template's lib.rs");
    fs::copy(root.join("policies/Cargo.lock"), dir.join("Cargo.lock"))
        .expect("copying policies/Cargo.lock");
    let mut command = inner_cargo();
    command
        .args([
            "metadata",
            "--offline",
            "--format-version",
            "1",
            "--manifest-path",
        ])
        .arg(dir.join("Cargo.toml"))
        .stdout(std::process::Stdio::null());
    let status = command
        .status()
        .expect("running cargo metadata for the policy template");
    if !status.success() {
        panic!("resolving the policy template against policies/Cargo.lock failed ({status})");
    }
}

/// The cargo running this build, without the outer build's variables.
fn inner_cargo() -> Command {
    let mut command = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    for variable in OUTER_BUILD_VARIABLES {
        command.env_remove(variable);
    }
    command
}

fn assert_exists(path: &Path) {
    if !path.is_file() {
        panic!("expected {} after building the policies", path.display());
    }
}
