//! The `Cargo.toml` of a new policy crate: the template with its name and
//! its `policy-sdk` dependency filled in. Shared with the build script, which
//! resolves the same manifest to pin the crate's lockfile; it uses only `std`.

/// The manifest for package `name`, depending on `policy-sdk` `version`
/// from crates.io, or from the directory `sdk_path` when given.
pub fn render_manifest(
    template: &str,
    name: &str,
    version: &str,
    sdk_path: Option<&str>,
) -> String {
    let source = match sdk_path {
        // A TOML basic string: backslashes and quotes escaped.
        Some(path) => format!(
            ", path = \"{}\"",
            path.replace('\\', "\\\\").replace('"', "\\\"")
        ),
        None => String::new(),
    };
    template
        .replace("{{name}}", name)
        .replace(
            "{{policy_sdk}}",
            &format!(
                "policy-sdk = {{ version = \"{version}\"{source}, default-features = false }}"
            ),
        )
        .replace(
            "{{policy_sdk_fixtures}}",
            &format!(
                "policy-sdk = {{ version = \"{version}\"{source}, features = [\"fixtures\"] }}"
            ),
        )
}
