//! The `RuntimeDefault` seccomp profile: the containers-common default
//! profile (Debian's `golang-github-containers-common` ships it as
//! `/usr/share/containers/seccomp.json`; CRI-O uses it), turned into the OCI
//! runtime spec's `linux.seccomp` as containers/common's
//! `pkg/seccomp.setupSeccomp` does: the host's architectures from
//! `archMap`, and each rule kept only where its `includes` hold and its
//! `excludes` do not (architecture, and the container's capabilities).

use serde::Deserialize;
use serde_json::{Value, json};

/// Where Debian installs the containers-common default profile.
pub const CONTAINERS_COMMON_PROFILE: &str = "/usr/share/containers/seccomp.json";

/// The profile's file format (containers/common `pkg/seccomp/types.go`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: String,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    arch_map: Vec<ArchMap>,
    #[serde(default)]
    syscalls: Vec<Rule>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: String,
    #[serde(default)]
    sub_architectures: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    names: Vec<String>,
    action: String,
    #[serde(default)]
    errno_ret: Option<u32>,
    /// `null` in places of the real file.
    #[serde(default)]
    args: Option<Vec<Value>>,
    #[serde(default)]
    includes: Filter,
    #[serde(default)]
    excludes: Filter,
}

#[derive(Debug, Default, Deserialize)]
struct Filter {
    #[serde(default)]
    arches: Vec<String>,
    #[serde(default)]
    caps: Vec<String>,
}

/// A profile that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("seccomp profile: {0}")]
pub struct SeccompError(String);

/// The architecture names of `archMap` and `includes.arches` for this
/// machine (Go's `GOARCH` and libseccomp's).
fn host_arch() -> (&'static str, &'static str) {
    match std::env::consts::ARCH {
        "aarch64" => ("arm64", "SCMP_ARCH_AARCH64"),
        _ => ("amd64", "SCMP_ARCH_X86_64"),
    }
}

/// `linux.seccomp` for a container with capabilities `caps` (bounding set)
/// from the profile text `profile`.
pub fn runtime_default(profile: &str, caps: &[String]) -> Result<Value, SeccompError> {
    let profile: Profile =
        serde_json::from_str(profile).map_err(|e| SeccompError(e.to_string()))?;
    let (go_arch, scmp_arch) = host_arch();
    let architectures: Vec<&String> = profile
        .arch_map
        .iter()
        .filter(|a| a.architecture == scmp_arch)
        .flat_map(|a| std::iter::once(&a.architecture).chain(&a.sub_architectures))
        .collect();
    let has_cap = |c: &String| caps.contains(c);
    let syscalls: Vec<Value> = profile
        .syscalls
        .iter()
        .filter(|r| r.includes.arches.is_empty() || r.includes.arches.iter().any(|a| a == go_arch))
        .filter(|r| !r.excludes.arches.iter().any(|a| a == go_arch))
        .filter(|r| r.includes.caps.iter().all(has_cap))
        .filter(|r| !r.excludes.caps.iter().any(has_cap))
        .map(|r| {
            let mut rule = json!({"names": r.names, "action": r.action, "args": r.args.clone().unwrap_or_default()});
            if let Some(errno) = r.errno_ret {
                rule["errnoRet"] = json!(errno);
            }
            rule
        })
        .collect();
    let mut spec = json!({
        "defaultAction": profile.default_action,
        "architectures": architectures,
        "syscalls": syscalls,
    });
    if let Some(errno) = profile.default_errno_ret {
        spec["defaultErrnoRet"] = json!(errno);
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROFILE: &str = r#"{
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
        "archMap": [
            {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
            {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}
        ],
        "syscalls": [
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "args": null},
            {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64"]}},
            {"names": ["set_tls"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm", "arm64"]}},
            {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["bpf"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "excludes": {"caps": ["CAP_BPF"]}}
        ]
    }"#;

    fn names(spec: &Value) -> Vec<String> {
        spec["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r["names"].as_array().unwrap().clone())
            .map(|n| n.as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn rules_are_kept_by_architecture_and_capability() {
        let spec = runtime_default(PROFILE, &["CAP_NET_ADMIN".into()]).unwrap();
        assert_eq!(spec["defaultErrnoRet"], 38);
        if std::env::consts::ARCH == "x86_64" {
            assert_eq!(names(&spec), ["read", "write", "arch_prctl", "bpf"]);
            assert_eq!(spec["architectures"][0], "SCMP_ARCH_X86_64");
            assert_eq!(spec["architectures"].as_array().unwrap().len(), 3);
        }
        let privileged =
            runtime_default(PROFILE, &["CAP_SYS_ADMIN".into(), "CAP_BPF".into()]).unwrap();
        assert!(names(&privileged).contains(&"mount".to_string()));
        assert!(!names(&privileged).contains(&"bpf".to_string()));
    }

    #[test]
    fn a_broken_profile_is_an_error_not_an_empty_filter() {
        assert!(runtime_default("{", &[]).is_err());
    }

    #[test]
    fn debians_profile_converts() {
        let text = std::fs::read_to_string(CONTAINERS_COMMON_PROFILE)
            .expect("scripts/test installs golang-github-containers-common");
        let allowed = |spec: &Value, name: &str| {
            spec["syscalls"].as_array().unwrap().iter().any(|r| {
                r["action"] == "SCMP_ACT_ALLOW"
                    && r["names"].as_array().unwrap().iter().any(|n| n == name)
            })
        };
        let spec = runtime_default(&text, &["CAP_NET_ADMIN".into()]).unwrap();
        assert!(allowed(&spec, "read"));
        // chroot is allowed there only with CAP_SYS_CHROOT.
        assert!(!allowed(&spec, "chroot"));
        let chroot = runtime_default(&text, &["CAP_SYS_CHROOT".into()]).unwrap();
        assert!(allowed(&chroot, "chroot"));
    }
}
