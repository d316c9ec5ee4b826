//! The files the kubelet makes for a pod on the node: emptyDir volumes, the
//! projected ServiceAccount volume (a token from the TokenRequest API bound
//! to the pod, the cluster's CA and the namespace, as the
//! `kube-api-access-*` volume holds them), and `/etc/hosts`, `/etc/hostname`
//! and `/etc/resolv.conf`.
//!
//! The token is requested for 3607 s, as the kubelet asks; it is not
//! refreshed (the kubelet refreshes at 80 % of its life; nothing here runs
//! that long).

use std::collections::BTreeMap;
use std::path::Path;

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::Api;
use kube::api::PostParams;

use super::container::PodFiles;

/// The pod's files could not be made.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("writing {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("requesting a token for ServiceAccount {account:?}: {source}")]
    Token {
        account: String,
        source: kube::Error,
    },
}

fn write(path: &Path, text: &str) -> Result<(), FilesError> {
    let io = |source| FilesError::Io {
        path: path.display().to_string(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    std::fs::write(path, text).map_err(io)
}

/// `/etc/hosts` as the kubelet writes it (`managedHostsFileContent`).
pub fn hosts_file(pod_ip: &str, hostname: &str) -> String {
    format!(
        "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n\
         {pod_ip}\t{hostname}\n"
    )
}

/// Makes the files of `pod` under `dir`.
pub async fn make_pod_files(
    client: &kube::Client,
    pod: &Pod,
    pod_ip: &str,
    ca_pem: &str,
    dir: &Path,
) -> Result<PodFiles, FilesError> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let etc = dir.join("etc");
    write(&etc.join("hosts"), &hosts_file(pod_ip, &name))?;
    write(&etc.join("hostname"), &format!("{name}\n"))?;
    write(
        &etc.join("resolv.conf"),
        &format!(
            "search {namespace}.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"
        ),
    )?;
    let mut volumes = BTreeMap::new();
    for volume in spec.volumes.iter().flatten() {
        if volume.empty_dir.is_some() {
            let path = dir.join("volumes").join(&volume.name);
            // World-writable, as the kubelet makes an emptyDir (mode 0777),
            // so a non-root container can write to it.
            use std::os::unix::fs::PermissionsExt;
            std::fs::create_dir_all(&path)
                .and_then(|()| {
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777))
                })
                .map_err(|source| FilesError::Io {
                    path: path.display().to_string(),
                    source,
                })?;
            volumes.insert(volume.name.clone(), path);
        }
    }
    let mut service_account = None;
    if spec.automount_service_account_token != Some(false) {
        let account = spec
            .service_account_name
            .clone()
            .unwrap_or_else(|| "default".into());
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: Vec::new(),
                expiration_seconds: Some(3607),
                bound_object_ref: Some(BoundObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: Some(name.clone()),
                    uid: pod.metadata.uid.clone(),
                }),
            },
            ..Default::default()
        };
        let token = Api::<ServiceAccount>::namespaced(client.clone(), &namespace)
            .create_token_request(&account, &PostParams::default(), &request)
            .await
            .map_err(|source| FilesError::Token {
                account: account.clone(),
                source,
            })?;
        let token = token.status.map(|s| s.token).unwrap_or_default();
        let sa = dir.join("serviceaccount");
        write(&sa.join("token"), &token)?;
        write(&sa.join("ca.crt"), ca_pem)?;
        write(&sa.join("namespace"), &namespace)?;
        service_account = Some(sa);
    }
    Ok(PodFiles {
        service_account,
        etc,
        volumes,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_hosts_file_names_the_pod_on_its_ip() {
        let hosts = super::hosts_file("10.200.0.2", "ts-web-abcde");
        assert!(hosts.contains("127.0.0.1\tlocalhost\n"));
        assert!(hosts.ends_with("10.200.0.2\tts-web-abcde\n"));
    }
}
