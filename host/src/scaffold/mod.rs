//! `policy new`: the files of a new policy crate, ready to build for
//! `wasm32-wasip2` and to test natively, rendered from `host/policy-template`.
//!
//! Rendering is pure; the CLI writes the files.

mod lockfile;
pub mod manifest;

use std::path::Path;

pub use lockfile::lockfile_for;

/// A file of the new crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaffoldFile {
    /// Path inside the crate, `/`-separated.
    pub path: &'static str,
    /// Its contents.
    pub contents: String,
}

/// A name that cannot be a policy crate's.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScaffoldError {
    /// Not a lower-case DNS label of at most 63 characters.
    #[error(
        "policy name {0:?} must be lower-case letters, digits and '-', start with a letter \
         and be at most 63 characters (it names the crate, the .wasm file and the policy)"
    )]
    InvalidName(String),
    /// Taken by a crate the policy depends on, or reserved by Rust or cargo.
    #[error("policy name {0:?} is taken by a dependency or reserved by Rust; choose another")]
    ReservedName(String),
    /// The SDK directory is not valid UTF-8.
    #[error("the policy-sdk path {0:?} is not valid UTF-8")]
    SdkPath(String),
}

/// The template's files other than the manifest and the lockfile, whose
/// `{{name}}` and `{{crate_name}}` are filled in.
const TEMPLATE_FILES: &[(&str, &str)] = &[
    ("README.md", include_str!("../../policy-template/README.md")),
    (
        ".gitignore",
        include_str!("../../policy-template/.gitignore"),
    ),
    (
        "rust-toolchain.toml",
        include_str!("../../policy-template/rust-toolchain.toml"),
    ),
    ("build.rs", include_str!("../../policy-template/build.rs")),
    (
        "settings.json",
        include_str!("../../policy-template/settings.json"),
    ),
    (
        "src/lib.rs",
        include_str!("../../policy-template/src/lib.rs"),
    ),
    (
        "tests/policy.rs",
        include_str!("../../policy-template/tests/policy.rs"),
    ),
    (
        "tests/fixtures/service.yaml",
        include_str!("../../policy-template/tests/fixtures/service.yaml"),
    ),
    (
        "tests/fixtures/nodes.yaml",
        include_str!("../../policy-template/tests/fixtures/nodes.yaml"),
    ),
];

/// The template's manifest (see [`manifest::render_manifest`]).
pub const MANIFEST_TEMPLATE: &str = include_str!("../../policy-template/Cargo.toml");

/// Names a package may not take: Rust's reserved crate names and keywords
/// (the crate name is used in `use name::…`), cargo's reserved names, and
/// this template's own placeholder.
const RESERVED: &[&str] = &[
    "std",
    "core",
    "alloc",
    "proc-macro",
    "test",
    "build",
    "deps",
    "examples",
    "incremental",
    "abstract",
    "as",
    "async",
    "await",
    "become",
    "box",
    "break",
    "const",
    "continue",
    "crate",
    "do",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "final",
    "fn",
    "for",
    "gen",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "macro",
    "match",
    "mod",
    "move",
    "mut",
    "override",
    "priv",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "try",
    "type",
    "typeof",
    "unsafe",
    "unsized",
    "use",
    "virtual",
    "where",
    "while",
    "yield",
    lockfile::PLACEHOLDER_NAME,
];

/// The files of policy crate `name`, depending on the published
/// `policy-sdk` or, with `sdk_path`, on the SDK in that directory.
pub fn render_policy_crate(
    name: &str,
    sdk_path: Option<&Path>,
) -> Result<Vec<ScaffoldFile>, ScaffoldError> {
    check_name(name)?;
    let sdk_path = sdk_path
        .map(|p| {
            p.to_str()
                .ok_or_else(|| ScaffoldError::SdkPath(p.display().to_string()))
        })
        .transpose()?;
    let crate_name = name.replace('-', "_");
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{crate_name}}", &crate_name)
    };
    let mut files = vec![
        ScaffoldFile {
            path: "Cargo.toml",
            contents: manifest::render_manifest(
                MANIFEST_TEMPLATE,
                name,
                env!("CARGO_PKG_VERSION"),
                sdk_path,
            ),
        },
        ScaffoldFile {
            path: "Cargo.lock",
            contents: lockfile_for(name, sdk_path.is_some()),
        },
    ];
    files.extend(TEMPLATE_FILES.iter().map(|(path, text)| ScaffoldFile {
        path,
        contents: fill(text),
    }));
    Ok(files)
}

fn check_name(name: &str) -> Result<(), ScaffoldError> {
    let valid = name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        return Err(ScaffoldError::InvalidName(name.to_string()));
    }
    let crate_name = name.replace('-', "_");
    if RESERVED.contains(&name)
        || RESERVED.contains(&crate_name.as_str())
        || lockfile::locked_package_names().any(|locked| locked.replace('-', "_") == crate_name)
    {
        return Err(ScaffoldError::ReservedName(name.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
