//! The rendered crate: names, the SDK dependency and the pinned toolchain.

use std::path::Path;

use super::*;

fn file<'a>(files: &'a [ScaffoldFile], path: &str) -> &'a str {
    &files.iter().find(|f| f.path == path).unwrap().contents
}

#[test]
fn names_are_filled_in_everywhere() {
    let files = render_policy_crate("team-tags", None).unwrap();
    for f in &files {
        assert!(!f.contents.contains("{{"), "{} keeps a placeholder", f.path);
    }
    assert!(file(&files, "Cargo.toml").contains("name = \"team-tags\""));
    assert!(file(&files, "tests/policy.rs").contains("use team_tags::"));
    assert!(file(&files, "README.md").contains("release/team_tags.wasm"));
    assert!(file(&files, "Cargo.lock").contains("name = \"team-tags\"\n"));
    assert!(!file(&files, "Cargo.lock").contains(lockfile::PLACEHOLDER_NAME));
}

#[test]
fn the_sdk_comes_from_crates_io_or_from_a_directory() {
    let published = render_policy_crate("p", None).unwrap();
    let manifest = file(&published, "Cargo.toml");
    let version = env!("CARGO_PKG_VERSION");
    assert!(manifest.contains(&format!(
        "policy-sdk = {{ version = \"{version}\", default-features = false }}"
    )));
    assert!(manifest.contains(&format!(
        "policy-sdk = {{ version = \"{version}\", features = [\"fixtures\"] }}"
    )));
    let local = render_policy_crate("p", Some(Path::new("/src/my \"sdk\""))).unwrap();
    assert!(file(&local, "Cargo.toml").contains(&format!(
        "policy-sdk = {{ version = \"{version}\", path = \"/src/my \\\"sdk\\\"\", default-features = false }}"
    )));
}

#[test]
fn the_toolchain_is_the_one_the_bundled_policies_are_built_with() {
    let channel = |text: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix("channel = "))
            .map(str::to_string)
    };
    let files = render_policy_crate("p", None).unwrap();
    assert_eq!(
        channel(file(&files, "rust-toolchain.toml")),
        channel(include_str!("../../../rust-toolchain.toml"))
    );
}

#[test]
fn the_release_profile_is_the_bundled_policies_one() {
    let profile = |text: &str| {
        text.split("[profile.release]\n").nth(1).map(|rest| {
            rest.lines()
                .take_while(|l| !l.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
    };
    let files = render_policy_crate("p", None).unwrap();
    assert_eq!(
        profile(file(&files, "Cargo.toml")),
        profile(include_str!("../../../policies/Cargo.toml"))
    );
}

#[test]
fn names_that_cannot_name_a_crate_or_a_policy_are_refused() {
    for bad in [
        "",
        "My-Policy",
        "9lives",
        "a_b",
        "trailing-",
        "a.b",
        &"x".repeat(64),
    ] {
        assert_eq!(
            render_policy_crate(bad, None).unwrap_err(),
            ScaffoldError::InvalidName(bad.to_string()),
            "{bad:?}"
        );
    }
    for taken in [
        "serde",
        "serde-json",
        "policy-sdk",
        "test",
        "match",
        "policy-template",
    ] {
        assert_eq!(
            render_policy_crate(taken, None).unwrap_err(),
            ScaffoldError::ReservedName(taken.to_string()),
            "{taken:?}"
        );
    }
    assert!(render_policy_crate("edge-spread2", None).is_ok());
}
