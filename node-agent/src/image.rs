//! Container images: a root folder made from a list of files (an image's
//! `*.files` list, e.g. the runtime's `runtime/image.files`) instead of
//! pulled layers, since no registry is reachable where the agent runs.
//! A file comes from this workspace's build, from the same path of the
//! host (a Debian system, as the image's base), or is a symbolic link; the
//! container sees exactly the listed paths, bound read-only.
//!
//! Three lines carry the image's configuration, as its Dockerfile's
//! `ENTRYPOINT`, `CMD` and `USER` do: `@entrypoint <word>...` (run when a
//! container sets no `command`), `@cmd <word>...` (its arguments when the
//! container sets neither `command` nor `args`) and `@user <uid>:<gid>`
//! (the user a container runs as unless its security context says
//! otherwise; root when absent, as for an image without `USER`).

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

/// An image's configuration (its Dockerfile's `ENTRYPOINT`, `CMD` and
/// `USER`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    /// The command run when a container sets no `command`.
    pub entrypoint: Vec<String>,
    /// Its arguments when the container sets neither `command` nor `args`.
    pub cmd: Vec<String>,
    /// `(uid, gid)` the image runs as; root when `None`.
    pub user: Option<(u32, u32)>,
}

/// Parses the `@entrypoint`, `@cmd` and `@user` lines of a file list.
pub fn parse_config(text: &str) -> Result<ImageConfig, ImageError> {
    let mut config = ImageConfig::default();
    for (i, line) in text.lines().enumerate() {
        let syntax = |reason: &str| ImageError::Syntax {
            line: i + 1,
            reason: reason.to_string(),
        };
        let mut words = line.split_whitespace();
        match words.next() {
            Some("@entrypoint") => config.entrypoint = words.map(str::to_string).collect(),
            Some("@cmd") => config.cmd = words.map(str::to_string).collect(),
            Some("@user") => {
                let user = words.next().and_then(|u| u.split_once(':'));
                let ids = user.and_then(|(u, g)| Some((u.parse().ok()?, g.parse().ok()?)));
                config.user = Some(ids.ok_or_else(|| syntax("expected `@user <uid>:<gid>`"))?);
            }
            Some(other) if other.starts_with('@') => {
                return Err(syntax("the settings are @entrypoint, @cmd and @user"));
            }
            _ => {}
        }
    }
    Ok(config)
}

/// Parses a file list: `(path in the image, source)` per line.
pub fn parse_files(text: &str) -> Result<Vec<(String, Source)>, ImageError> {
    let mut files = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('@') {
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
    /// Its entrypoint and user.
    pub config: ImageConfig,
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
        let config = parse_config(list)?;
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
            config,
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
    fn the_entrypoint_and_user_lines_configure_the_image() {
        let list = "@entrypoint /usr/local/bin/x\n@cmd serve\n@user 65532:65533\n/usr/local/bin/x build:x\n";
        let config = parse_config(list).unwrap();
        assert_eq!(config.entrypoint, ["/usr/local/bin/x"]);
        assert_eq!(config.cmd, ["serve"]);
        assert_eq!(config.user, Some((65532, 65533)));
        assert_eq!(parse_files(list).unwrap().len(), 1);
        assert_eq!(parse_config("/x host\n").unwrap(), ImageConfig::default());
        for bad in ["@user nobody", "@user 1", "@workdir x"] {
            let error = parse_config(&format!("# c\n{bad}")).unwrap_err();
            assert!(error.to_string().starts_with("line 2:"), "{bad}: {error}");
        }
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
