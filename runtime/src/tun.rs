//! The TUN device tailscaled needs. A container's `/dev` has no
//! `/dev/net/tun` (only the container runtime's short list of devices), and
//! tailscaled does not create it; Tailscale's containerboot does
//! (`ensureTunFile`: `mknod /dev/net/tun c 10 200`), and so does the
//! runtime, before it joins the election: a pod that cannot run tailscaled
//! must not take the Lease. Whether the node may then be *opened* is the
//! container runtime's device rule: runc allows the TUN device, crun and
//! runc 1.2.0–1.2.3 do not (then the node is made and opening it fails with
//! EPERM), which is what `--proxy-privileges=privileged` is for.

use std::path::{Path, PathBuf};

/// The TUN device's numbers (`Documentation/admin-guide/devices.txt`).
const TUN_MAJOR: u32 = 10;
const TUN_MINOR: u32 = 200;

/// Why tailscaled cannot have a TUN device here.
#[derive(Debug, thiserror::Error)]
pub enum TunError {
    /// The node could not be made (no `MKNOD` capability, read-only `/dev`).
    #[error(
        "cannot create {path}: {source}; the proxy container needs the MKNOD capability \
         (the controller's --proxy-privileges=privileged gives it every privilege)"
    )]
    Create {
        /// The node.
        path: PathBuf,
        /// What mknod said.
        source: std::io::Error,
    },
    /// The node exists and may not be opened (the container runtime's
    /// device rules deny it).
    #[error(
        "cannot open {path}: {source}; the container runtime does not allow the TUN device \
         (crun, runc 1.2.0-1.2.3): run the proxies with the controller's \
         --proxy-privileges=privileged, or allow c 10:200 for them"
    )]
    Open {
        /// The node.
        path: PathBuf,
        /// What open said.
        source: std::io::Error,
    },
}

/// Makes sure `<dev>/net/tun` exists and can be opened for reading and
/// writing (`dev` is `/dev` in production).
pub fn ensure_tun(dev: &Path) -> Result<(), TunError> {
    let path = dev.join("net/tun");
    if !path.exists() {
        let create = |source| TunError::Create {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dev.join("net")).map_err(create)?;
        crate::sys::make_char_device(&path, TUN_MAJOR, TUN_MINOR, 0o600).map_err(create)?;
    }
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map(drop)
        .map_err(|source| TunError::Open { path, source })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileTypeExt;

    use super::*;

    #[test]
    fn a_missing_tun_node_is_created_as_the_tun_character_device() {
        let dev = tempfile::tempdir().unwrap();
        ensure_tun(dev.path()).expect("root may make and open the TUN node");
        let meta = std::fs::metadata(dev.path().join("net/tun")).unwrap();
        assert!(meta.file_type().is_char_device());
        use std::os::unix::fs::MetadataExt;
        assert_eq!(meta.rdev(), libc::makedev(10, 200));
        // A second call finds it.
        ensure_tun(dev.path()).unwrap();
    }

    #[test]
    fn a_node_that_cannot_be_made_names_the_setting_to_change() {
        let dev = tempfile::tempdir().unwrap();
        // `net` is a file: nothing can be made beneath it.
        std::fs::write(dev.path().join("net"), "").unwrap();
        let error = ensure_tun(dev.path()).unwrap_err().to_string();
        assert!(error.contains("--proxy-privileges=privileged"), "{error}");
    }
}
