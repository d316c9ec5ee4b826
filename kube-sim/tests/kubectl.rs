//! kubectl against the in-memory server through a written kubeconfig
//! (HTTPS, the CA, the admin token): `apply -f` with schema validation on,
//! `get services -A` with the EXTERNAL-IP column, `delete`, `auth whoami`
//! and `auth can-i`.
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

/// `kubectl apply` of Service `default/web` with these annotations and one
/// port; its output. Validation is on (kubectl's default, `strict`): kubectl
/// finds the `fieldValidation` parameter in the OpenAPI v3 document and
/// lets the server validate.
fn apply_service(
    kubeconfig: &std::path::Path,
    manifest: &std::path::Path,
    annotations: &str,
    port: u16,
) -> String {
    std::fs::write(
        manifest,
        format!(
            "apiVersion: v1\nkind: Service\n\
             metadata: {{name: web, namespace: default, annotations: {annotations}}}\n\
             spec: {{type: LoadBalancer, loadBalancerClass: svc-lb.tailscale.iptables.sh/lb, \
             ports: [{{port: {port}}}]}}\n"
        ),
    )
    .unwrap();
    let args = ["apply", "-f", manifest.to_str().unwrap()];
    let (ok, out) = tokio::task::block_in_place(|| kubectl(kubeconfig, &args));
    assert!(ok, "{out}");
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_applies_lists_with_external_ip_and_deletes() {
    let sim = KubeSim::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    let manifest = dir.path().join("svc.yaml");
    let out = apply_service(&kubeconfig, &manifest, "{}", 80);
    assert!(out.contains("service/web created"), "{out}");
    // A second apply is a strategic merge patch with kubectl's directives
    // (`$setElementOrder`, deletions of dropped list items).
    let out = apply_service(&kubeconfig, &manifest, "{team: a}", 8080);
    assert!(out.contains("service/web configured"), "{out}");
    let services: Api<Service> = Api::namespaced(sim.client(), "default");
    let applied = services.get("web").await.unwrap();
    let ports: Vec<i32> = applied
        .spec
        .unwrap()
        .ports
        .unwrap()
        .iter()
        .map(|p| p.port)
        .collect();
    assert_eq!(
        ports,
        [8080],
        "the dropped port is deleted, the new one added"
    );
    assert_eq!(applied.metadata.annotations.unwrap()["team"], "a");
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

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_validation_refuses_an_unknown_field() {
    let sim = KubeSim::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    let manifest = dir.path().join("cm.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: typo, namespace: default}\ndatta: {a: b}\n",
    )
    .unwrap();
    let args = ["apply", "-f", manifest.to_str().unwrap()];
    let (ok, out) = tokio::task::block_in_place(|| kubectl(&kubeconfig, &args));
    assert!(!ok, "{out}");
    assert!(out.contains("unknown field \"datta\""), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_auth_whoami_and_can_i_answer_for_the_token() {
    let sim = KubeSim::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let admin = dir.path().join("admin");
    sim.write_kubeconfig(&admin).unwrap();
    let (ok, out) = tokio::task::block_in_place(|| kubectl(&admin, &["auth", "whoami"]));
    assert!(
        ok && out.contains("kube-sim-admin") && out.contains("system:masters"),
        "{out}"
    );
    // A user with no grants: kubectl's `--token` replaces the admin token.
    let token = sim.issue_token("jane", &["developers"]);
    let can_i = |args: &[&str]| {
        let mut all = vec!["--token", token.as_str(), "auth", "can-i"];
        all.extend_from_slice(args);
        tokio::task::block_in_place(|| kubectl(&admin, &all))
    };
    let (ok, out) = can_i(&["list", "secrets"]);
    assert!(!ok && out.lines().next() == Some("no"), "{out}");
    let (ok, out) = can_i(&["create", "selfsubjectaccessreviews.authorization.k8s.io"]);
    assert!(ok && out.lines().next() == Some("yes"), "{out}");
    let (ok, out) = tokio::task::block_in_place(|| {
        kubectl(
            &admin,
            &[
                "--token",
                &token,
                "auth",
                "whoami",
                "-o",
                "jsonpath={.status.userInfo.groups}",
            ],
        )
    });
    assert!(
        ok && out.contains("developers") && out.contains("system:authenticated"),
        "{out}"
    );
}
