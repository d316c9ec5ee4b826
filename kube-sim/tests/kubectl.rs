//! kubectl against the in-memory server through a written kubeconfig:
//! `apply -f`, `get services -A` with the EXTERNAL-IP column, `delete`.
//! kubectl is expected on PATH (CI installs it where a machine lacks it).

use std::process::Command;

use k8s_openapi::api::core::v1::Service;
use kube::Api;
use kube::api::{Patch, PatchParams};
use kube_sim::KubeSim;
use serde_json::json;

fn kubectl(kubeconfig: &std::path::Path, args: &[&str]) -> (bool, String) {
    let output = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .expect("kubectl on PATH (CI installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_applies_lists_with_external_ip_and_deletes() {
    let sim = KubeSim::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    let manifest = dir.path().join("svc.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default}\n\
         spec: {type: LoadBalancer, loadBalancerClass: svc-lb.tailscale.iptables.sh/lb, ports: [{port: 80}]}\n",
    )
    .unwrap();

    // No OpenAPI document is served, so kubectl's schema validation is off.
    let (ok, out) = tokio::task::block_in_place(|| {
        kubectl(
            &kubeconfig,
            &[
                "apply",
                "--validate=false",
                "-f",
                manifest.to_str().unwrap(),
            ],
        )
    });
    assert!(ok, "{out}");
    assert!(out.contains("service/web created"), "{out}");

    let services: Api<Service> = Api::namespaced(sim.client(), "default");
    services
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"loadBalancer": {"ingress": [{"ip": "100.64.0.7"}]}}})),
        )
        .await
        .unwrap();
    let (ok, out) =
        tokio::task::block_in_place(|| kubectl(&kubeconfig, &["get", "services", "-A"]));
    assert!(ok, "{out}");
    let header = out.lines().next().unwrap_or_default();
    assert!(
        header.contains("NAMESPACE") && header.contains("EXTERNAL-IP"),
        "{out}"
    );
    let row = out.lines().find(|l| l.contains("web")).unwrap_or_default();
    assert!(
        row.contains("100.64.0.7") && row.contains("LoadBalancer"),
        "{out}"
    );

    let (ok, out) =
        tokio::task::block_in_place(|| kubectl(&kubeconfig, &["delete", "service", "web"]));
    assert!(ok, "{out}");
    assert!(services.get_opt("web").await.unwrap().is_none());
}
