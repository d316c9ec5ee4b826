//! The SDK can be published: `cargo package` packs it with its contract
//! (`wit/`), and the packed crate, unpacked alone, builds for
//! `wasm32-wasip2`, where the bindings are generated from that `wit/`:
//! with the standard library and without (which compiles the runtime of
//! `#![no_std]` policies; it is linked only into a component, as the
//! policies' build in `host/build.rs` does).

use std::path::Path;
use std::process::Command;

#[test]
fn the_package_carries_its_wit_and_builds_for_wasm_from_it() {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sdk-package");
    let cargo = |args: &[&str]| {
        let output = Command::new(env!("CARGO"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(args)
            .arg("--target-dir")
            .arg(&target)
            .env_remove("CARGO_TARGET_DIR")
            .output()
            .expect("running cargo package");
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        assert!(
            output.status.success(),
            "cargo {args:?} failed:\n{}",
            text(&output.stderr)
        );
        text(&output.stdout)
    };
    let files = cargo(&["package", "-p", "policy-sdk", "--allow-dirty", "--list"]);
    for file in [
        "wit/policy.wit",
        "wit/frozen/0.1.0/policy.wit",
        "README.md",
        "src/guest.rs",
        "src/runtime/allocator.rs",
    ] {
        assert!(
            files.lines().any(|l| l == file),
            "{file} not packed:\n{files}"
        );
    }
    // Verification unpacks the .crate and builds it on its own.
    for features in ["--features=default", "--no-default-features"] {
        cargo(&[
            "package",
            "-p",
            "policy-sdk",
            "--allow-dirty",
            "--target",
            "wasm32-wasip2",
            features,
        ]);
    }
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        target
            .join(format!("package/policy-sdk-{version}.crate"))
            .is_file()
    );
}
