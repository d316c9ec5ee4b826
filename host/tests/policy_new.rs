//! A policy author's first steps, as they type them: `policy new` writes a
//! crate outside this workspace (the SDK taken from this checkout, as
//! `--sdk-path` allows until it is published), its tests pass with `cargo
//! test`, it builds for `wasm32-wasip2` with the lockfile as written
//! (`--locked`), and `policy check` and `policy bench` accept the component
//! and report on it. A debug build of the same crate is warned about.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_tailscale-svc-lb");

#[path = "support/author_shell.rs"]
mod author_shell;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn succeed(what: &str, output: Output) -> (String, String) {
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(
        output.status.success(),
        "{what} failed:\n{stdout}\n{stderr}"
    );
    (stdout, stderr)
}

/// `cargo ARGS` in `dir`, as typed in a shell there.
fn cargo(dir: &Path, args: &[&str]) -> Output {
    author_shell::author_command("cargo")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("running cargo")
}

fn cli(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .current_dir(dir)
        .args(args)
        .output()
        .expect("running the CLI")
}

#[test]
fn a_new_policy_tests_builds_checks_and_benches_as_generated() {
    let parent = tempfile::tempdir().unwrap();
    let sdk = repo().join("policy-sdk");
    let (out, _) = succeed(
        "policy new",
        cli(
            parent.path(),
            &[
                "policy",
                "new",
                "team-env",
                "--sdk-path",
                sdk.to_str().unwrap(),
            ],
        ),
    );
    assert!(out.contains("created policy team-env"), "{out}");
    let dir = parent.path().join("team-env");
    // The crate's `target/` is kept between runs (beside this test's
    // binaries), so a rerun builds warm.
    let kept_target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("policy-new-target");
    std::fs::create_dir_all(&kept_target).unwrap();
    std::os::unix::fs::symlink(&kept_target, dir.join("target")).unwrap();
    let lock_as_written = std::fs::read_to_string(dir.join("Cargo.lock")).unwrap();

    let (out, _) = succeed("cargo test", cargo(&dir, &["test", "--locked"]));
    assert!(out.contains("test result: ok. 4 passed"), "{out}");

    succeed(
        "cargo build",
        cargo(
            &dir,
            &[
                "build",
                "--release",
                "--locked",
                "--target",
                "wasm32-wasip2",
            ],
        ),
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("Cargo.lock")).unwrap(),
        lock_as_written,
        "the build changed the lockfile"
    );
    let wasm = "target/wasm32-wasip2/release/team_env.wasm";

    let (out, err) = succeed(
        "policy check",
        cli(
            &dir,
            &["policy", "check", wasm, "--settings", "settings.json"],
        ),
    );
    assert!(out.starts_with("ok: "), "{out}");
    assert!(out.contains("stack     64 KiB"), "{out}");
    assert!(out.contains("runtime   #![no_std]"), "{out}");
    assert!(
        !err.contains("warning"),
        "a release build is warned about: {err}"
    );
    // No nodes were given: the sample Service has no ready node.
    assert!(out.contains("rejected by team-env: no ready node"), "{out}");

    let (out, err) = succeed(
        "policy bench",
        cli(
            &dir,
            &[
                "policy",
                "bench",
                wasm,
                "--settings",
                "settings.json",
                "-f",
                "tests/fixtures/service.yaml",
                "--nodes",
                "tests/fixtures/nodes.yaml",
                "--iterations",
                "200",
            ],
        ),
    );
    for expected in [
        "shop/web with 3 node(s)",
        "evaluate p50",
        "evaluate p99",
        "2     returned per evaluation, of 3",
        "KiB linear memory at its largest; cap 16 MiB",
        r#"accepted: podLabels: {} → {"example.com/environment":"dev"}"#,
    ] {
        assert!(
            out.contains(expected),
            "{expected:?} missing from:\n{out}\n{err}"
        );
    }

    // A debug build: no release profile, so large and not stripped; too
    // large for a ConfigMap at all.
    succeed(
        "cargo build (debug)",
        cargo(&dir, &["build", "--locked", "--target", "wasm32-wasip2"]),
    );
    let out = cli(
        &dir,
        &[
            "policy",
            "check",
            "target/wasm32-wasip2/debug/team_env.wasm",
            "--settings",
            "settings.json",
        ],
    );
    let err = text(&out.stderr);
    assert!(
        !out.status.success(),
        "a debug build passed the check: {err}"
    );
    assert!(err.contains("warning: the component is"), "{err}");
    assert!(
        err.contains("warning: the component carries debug information"),
        "{err}"
    );
    assert!(
        err.contains("over the 1 MiB a ConfigMap holds, it cannot be deployed"),
        "{err}"
    );
}
