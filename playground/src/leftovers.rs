//! What a playground leaves on the machine, found by its name (`--id`):
//! network namespaces (`svclb-pc-<id>`, `svclb-ps-<id>`, `svclb-pn<i>-<id>`
//! and the pods' `svclb-k<i><id>-…`), the processes inside them, runc
//! containers (under the state folder's runc roots), the kubelets' cgroups
//! (`svclb-k<i><id>`), and the state folder itself. Removed at the start
//! (a crashed run's) and at the end, and listed to check that nothing is
//! left. One run per id at a time (a lock file); the state folder is
//! cleared only if it is a playground's (a marker file).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// The file that marks a folder as a playground's state.
const MARKER: &str = ".svclb-playground";

/// Whether a network namespace is one of playground `id`'s.
fn ours(namespace: &str, id: &str) -> bool {
    namespace == format!("svclb-pc-{id}")
        || namespace == format!("svclb-ps-{id}")
        || (namespace.starts_with("svclb-pn") && namespace.ends_with(&format!("-{id}")))
        || (namespace.starts_with("svclb-k") && namespace.contains(&format!("{id}-")))
}

fn namespaces(id: &str) -> Vec<String> {
    let list = Command::new("ip").args(["netns", "list"]).output();
    let text = list.map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    text.unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|n| ours(n, id))
        .collect()
}

/// The runc roots of the state folder's clusters (`cluster-*/node-*/runc`).
fn runc_roots(state: &Path) -> Vec<PathBuf> {
    let clusters = std::fs::read_dir(state).into_iter().flatten().flatten();
    let nodes = clusters.flat_map(|c| std::fs::read_dir(c.path()).into_iter().flatten().flatten());
    nodes
        .map(|n| n.path().join("runc"))
        .filter(|r| r.is_dir())
        .collect()
}

fn containers(root: &Path) -> Vec<String> {
    let listed = Command::new("runc")
        .arg("--root")
        .arg(root)
        .args(["list", "--quiet"])
        .output();
    let text = listed.map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    text.unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The kubelets' cgroup folders (cgroup v2 at the root, v1 per controller).
fn cgroups(id: &str) -> Vec<PathBuf> {
    let suffix = id.to_string();
    let is_ours = |p: &Path| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("svclb-k") && n.ends_with(&suffix))
    };
    let root = Path::new("/sys/fs/cgroup");
    let mut found: Vec<PathBuf> = Vec::new();
    for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let path = entry.path();
        if is_ours(&path) {
            found.push(path.clone());
        }
        for inner in std::fs::read_dir(&path).into_iter().flatten().flatten() {
            if is_ours(&inner.path()) {
                found.push(inner.path());
            }
        }
    }
    found
}

/// Everything of playground `id` still on the machine.
pub fn list(state: &Path, id: &str) -> Vec<String> {
    let mut left: Vec<String> = namespaces(id)
        .into_iter()
        .map(|n| format!("network namespace {n}"))
        .collect();
    for root in runc_roots(state) {
        left.extend(
            containers(&root)
                .into_iter()
                .map(|c| format!("container {c}")),
        );
    }
    left.extend(
        cgroups(id)
            .iter()
            .map(|c| format!("cgroup {}", c.display())),
    );
    left
}

/// Removes everything of playground `id` and its state folder; how many
/// things there were.
pub fn remove(state: &Path, id: &str) -> anyhow::Result<usize> {
    let mut removed = 0;
    for root in runc_roots(state) {
        for container in containers(&root) {
            let runc = |args: &[&str]| {
                Command::new("runc")
                    .arg("--root")
                    .arg(&root)
                    .args(args)
                    .output()
            };
            let _ = runc(&["kill", &container, "KILL"]);
            let _ = runc(&["delete", "--force", &container]);
            removed += 1;
        }
    }
    for namespace in namespaces(id) {
        let pids = Command::new("ip")
            .args(["netns", "pids", &namespace])
            .output()?;
        for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &namespace])
            .status();
        removed += 1;
    }
    // Children first: a cgroup folder goes with rmdir once empty.
    for cgroup in cgroups(id) {
        for child in std::fs::read_dir(&cgroup).into_iter().flatten().flatten() {
            let _ = std::fs::remove_dir(child.path());
        }
        if std::fs::remove_dir(&cgroup).is_ok() {
            removed += 1;
        }
    }
    if state.exists() {
        std::fs::remove_dir_all(state).with_context(|| state.display().to_string())?;
    }
    Ok(removed)
}

/// Refuses a state folder that exists, is not empty and is not a
/// playground's: clearing it would delete someone's files.
pub fn check_state(state: &Path) -> anyhow::Result<()> {
    let Ok(mut entries) = std::fs::read_dir(state) else {
        return Ok(());
    };
    if entries.next().is_some() && !state.join(MARKER).is_file() {
        bail!(
            "{} exists and is not a playground's folder; choose another --state",
            state.display()
        );
    }
    Ok(())
}

/// Makes the state folder: owner-only (it holds the admin kubeconfig),
/// marked as a playground's.
pub fn make_state(state: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(state)?;
    std::fs::write(state.join(MARKER), "")?;
    Ok(())
}

/// Holds playground `id`'s lock while it runs; a second run fails at once.
pub fn lock(id: &str) -> anyhow::Result<File> {
    let path = format!("/run/svclb-playground-{id}.lock");
    let file = File::create(&path).with_context(|| path.clone())?;
    // SAFETY: flock on a file descriptor this function owns.
    let taken = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if taken != 0 {
        bail!("a playground named {id:?} is already running (its lock is {path})");
    }
    Ok(file)
}
