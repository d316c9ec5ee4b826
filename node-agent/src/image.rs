//! Container images: a root folder made from a list of files (an image's
//! `*.files` list, e.g. the runtime's `runtime/image.files`) instead of
//! pulled layers, since no registry is reachable where the agent runs.
//! A file comes from this workspace's build, from the same path of the
//! host (a Debian system, as the image's base), or is a symbolic link; the
//! container sees exactly the listed paths, bound read-only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::oci::BindMount;

/// The `PATH` of a Debian-based image.
pub const IMAGE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where one file of the image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A binary of the build, by name.
    Build(String),
    /// The same path on the host.
    Host,
    /// A symbolic link to this target.
    Link(String),
}

/// An image's file list could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A line is not `<path> <source>`.
    #[error("line {line}: {reason}")]
    Syntax { line: usize, reason: String },
    /// A file the list names is not there.
    #[error("{path}: no such file for the image ({source_path})")]
    Missing { path: String, source_path: PathBuf },
    /// The image's root could not be made.
    #[error("making the image root {root}: {source}")]
    Io {
        root: PathBuf,
        source: std::io::Error,
    },
}

/// Parses a file list: `(path in the image, source)` per line.
pub fn parse_files(text: &str) -> Result<Vec<(String, Source)>, ImageError> {
    let mut files = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let syntax = |reason: &str| ImageError::Syntax {
            line: i + 1,
            reason: reason.to_string(),
        };
        let mut words = line.split_whitespace();
        let (Some(path), Some(source), None) = (words.next(), words.next(), words.next()) else {
            return Err(syntax("expected `<path> <source>`"));
        };
        if !path.starts_with('/') || path.contains("..") {
            return Err(syntax("the path must be absolute"));
        }
        let source = match source.split_once(':') {
            Some(("build", name)) if !name.is_empty() => Source::Build(name.into()),
            Some(("link", target)) if !target.is_empty() => Source::Link(target.into()),
            None if source == "host" => Source::Host,
            _ => return Err(syntax("the source is build:<name>, host or link:<target>")),
        };
        files.push((path.to_string(), source));
    }
    Ok(files)
}

/// An image made ready on this node.
#[derive(Debug, Clone)]
pub struct Image {
    /// The root folder (mount points and links only).
    pub rootfs: PathBuf,
    /// The image's files, bound into the root read-only.
    pub mounts: Vec<BindMount>,
    /// The image's environment.
    pub env: Vec<(String, String)>,
}

impl Image {
    /// Makes the root of the image listed in `list` under `root`, with the
    /// build's binaries at `builds` (name → path).
    pub fn prepare(
        list: &str,
        builds: &BTreeMap<String, PathBuf>,
        root: &Path,
    ) -> Result<Self, ImageError> {
        let io = |source| ImageError::Io {
            root: root.to_path_buf(),
            source,
        };
        let mut mounts = Vec::new();
        for dir in ["proc", "sys", "dev", "etc", "run", "tmp", "var/lib"] {
            std::fs::create_dir_all(root.join(dir)).map_err(io)?;
        }
        for (path, source) in parse_files(list)? {
            let inside = root.join(path.trim_start_matches('/'));
            if let Some(parent) = inside.parent() {
                std::fs::create_dir_all(parent).map_err(io)?;
            }
            let host = match source {
                Source::Link(target) => {
                    if std::fs::symlink_metadata(&inside).is_err() {
                        std::os::unix::fs::symlink(target, &inside).map_err(io)?;
                    }
                    continue;
                }
                Source::Host => PathBuf::from(&path),
                Source::Build(name) => builds.get(&name).cloned().unwrap_or_default(),
            };
            let meta = std::fs::metadata(&host).map_err(|_| ImageError::Missing {
                path: path.clone(),
                source_path: host.clone(),
            })?;
            // The mount point: a folder for a folder, an empty file for a file.
            if meta.is_dir() {
                std::fs::create_dir_all(&inside).map_err(io)?;
            } else if !inside.exists() {
                std::fs::write(&inside, b"").map_err(io)?;
            }
            mounts.push(BindMount {
                destination: path,
                source: host,
                read_only: true,
            });
        }
        Ok(Self {
            rootfs: root.to_path_buf(),
            mounts,
            env: vec![("PATH".into(), IMAGE_PATH.into())],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_names_build_host_and_link_sources() {
        let files = parse_files(
            "# comment\n/bin link:usr/bin\n/usr/sbin/nft host\n/usr/local/bin/x  build:x\n",
        )
        .unwrap();
        assert_eq!(
            files,
            [
                ("/bin".to_string(), Source::Link("usr/bin".into())),
                ("/usr/sbin/nft".into(), Source::Host),
                ("/usr/local/bin/x".into(), Source::Build("x".into())),
            ]
        );
    }

    #[test]
    fn bad_lines_are_refused_with_their_number() {
        for bad in ["/x", "x host", "/x copy:y", "/x host extra", "/../etc host"] {
            let error = parse_files(&format!("# c\n{bad}")).unwrap_err();
            assert!(error.to_string().starts_with("line 2:"), "{bad}: {error}");
        }
    }

    #[test]
    fn the_runtime_image_list_resolves_on_a_debian_host() {
        let list = include_str!("../../runtime/image.files");
        let root = tempfile::tempdir().unwrap();
        let builds: BTreeMap<String, PathBuf> =
            ["tailscale-svc-lb-runtime", "tailscaled", "tailscale"]
                .into_iter()
                .map(|n| (n.to_string(), PathBuf::from("/usr/bin/env")))
                .collect();
        let image = Image::prepare(list, &builds, root.path()).unwrap();
        assert!(
            image
                .mounts
                .iter()
                .any(|m| m.destination == "/usr/sbin/nft")
        );
        assert!(root.path().join("usr/local/bin/tailscaled").is_file());
        assert_eq!(
            std::fs::read_link(root.path().join("bin")).unwrap(),
            PathBuf::from("usr/bin")
        );
        let missing = Image::prepare(list, &BTreeMap::new(), root.path()).unwrap_err();
        assert!(matches!(missing, ImageError::Missing { .. }), "{missing}");
    }
}
