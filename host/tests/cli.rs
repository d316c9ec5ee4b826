//! The `render` and `policy check` commands as a user runs them: real
//! binary, real files, YAML out, one-line errors with a non-zero exit.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_tailscale-svc-lb");

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn wasm_path(crate_name: &str) -> String {
    format!("{}/{}.wasm", env!("SVCLB_POLICY_WASM_DIR"), crate_name)
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("running the CLI")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts a failure reported as one line starting with `error:` and containing `needle`.
fn assert_one_line_error(output: &Output, needle: &str) {
    assert!(!output.status.success(), "expected failure");
    let err = stderr(output);
    assert_eq!(err.lines().count(), 1, "one line expected: {err}");
    assert!(err.starts_with("error: ") && err.contains(needle), "{err}");
}

fn documents(yaml: &[u8]) -> Vec<serde_yaml_ng::Value> {
    use serde::Deserialize;
    serde_yaml_ng::Deserializer::from_slice(yaml)
        .map(|d| serde_yaml_ng::Value::deserialize(d).unwrap())
        .collect()
}

#[test]
fn render_prints_every_object_and_a_trace_per_policy() {
    let settings = repo("examples/node-pools.settings.yaml");
    let policy = format!("{}={}", wasm_path("node_pools"), settings.display());
    let service = repo("examples/service.yaml");
    let nodes = repo("examples/nodes.yaml");
    let output = run(&[
        "render",
        "-f",
        service.to_str().unwrap(),
        "--nodes",
        nodes.to_str().unwrap(),
        "--policy",
        &policy,
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let kinds: Vec<String> = documents(&output.stdout)
        .iter()
        .map(|d| d["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        [
            "ServiceAccount",
            "Role",
            "RoleBinding",
            "Secret",
            "Lease",
            "DaemonSet"
        ]
    );
    let trace = stderr(&output);
    assert!(trace.contains("policy default ("), "{trace}");
    assert!(trace.contains("policy node-pools ("), "{trace}");
    assert!(
        trace.contains("log debug: pool edge: 1 nodes, 1 ready"),
        "{trace}"
    );
}

#[test]
fn render_reads_a_policy_set_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo("examples/policy-set/policies.yaml"),
        dir.path().join("policies.yaml"),
    )
    .unwrap();
    for name in ["node_pools", "namespace_pod_settings"] {
        std::fs::copy(wasm_path(name), dir.path().join(format!("{name}.wasm"))).unwrap();
    }
    let service = repo("examples/service.yaml");
    let nodes = repo("examples/nodes.yaml");
    let output = run(&[
        "render",
        "-f",
        service.to_str().unwrap(),
        "--nodes",
        nodes.to_str().unwrap(),
        "--policies",
        dir.path().to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let docs = documents(&output.stdout);
    let pod = &docs[5]["spec"]["template"]["spec"];
    assert_eq!(pod["priorityClassName"].as_str(), Some("shop-critical"));
    assert_eq!(
        pod["nodeSelector"]["pool.svc-lb.tailscale.iptables.sh/edge"].as_str(),
        Some("true")
    );
}

#[test]
fn bad_input_gives_a_one_line_error_and_a_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let configmap = write(
        "cm.yaml",
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
    );
    let cluster_ip = write(
        "svc.yaml",
        b"apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{port: 80}]}\n",
    );
    let other_class = write(
        "other.yaml",
        b"apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {type: LoadBalancer, loadBalancerClass: example.com/lb}\n",
    );
    let garbage = write("garbage.wasm", b"definitely not wasm");
    let service = repo("examples/service.yaml");
    let service = service.to_str().unwrap();

    assert_one_line_error(
        &run(&["render", "-f", "/nonexistent.yaml"]),
        "cannot read /nonexistent.yaml",
    );
    assert_one_line_error(
        &run(&["render", "-f", &configmap]),
        "is not a Kubernetes Service",
    );
    assert_one_line_error(
        &run(&["render", "-f", &cluster_ip]),
        "has type ClusterIP, not LoadBalancer",
    );
    assert_one_line_error(
        &run(&["render", "-f", &other_class]),
        "loadBalancerClass example.com/lb",
    );
    assert_one_line_error(
        &run(&["render", "-f", service, "--policy", &garbage]),
        "policy garbage: not a WebAssembly component",
    );
    assert_one_line_error(
        &run(&["render", "-f", service, "--runtime-image", ""]),
        "invalid configuration: runtime image",
    );
    assert_one_line_error(
        &run(&["render", "-f", service, "--no-default-policy"]),
        "no policy set a hostname",
    );
}

#[test]
fn policy_check_accepts_a_policy_and_names_a_bad_setting() {
    let ok = run(&[
        "policy",
        "check",
        &wasm_path("node_pools"),
        "--settings",
        repo("examples/node-pools.settings.yaml").to_str().unwrap(),
    ]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("ok: "));
    let bad = run(&["policy", "check", &wasm_path("node_pools")]);
    assert_one_line_error(
        &bad,
        "policy node-pools: settings rejected: invalid settings: missing field `pools`",
    );
    let wrong = run(&["policy", "check", &wasm_path("test-guest-wrong-world")]);
    assert_one_line_error(&wrong, "not a placement policy");
}

#[test]
fn an_invalid_controller_configuration_exits_at_once_with_one_line() {
    // No cluster is reachable here: each must fail before connecting.
    let kubeconfig = ["--kubeconfig", "/nonexistent/kubeconfig"];
    let cases: [(&[&str], &str); 6] = [
        (&["--namespace", "Not A Namespace"], "namespace"),
        (
            &["--memory-limit-mib", "256", "--policy-instances", "32"],
            "32 instance(s) × 16 MiB × (1 + 3 for the host's copy of a result) = 2048 MiB, \
             plus 72 MiB for the controller, exceeds the memory limit of 256 MiB",
        ),
        (&["--image-pull-secret", "Not A Name"], "image pull secret"),
        (&["controller", "--election-renew-grace", "20"], "grace"),
        (
            &["controller", "--policy-deadline-ms", "0"],
            "policy deadline",
        ),
        (&["--deprovision-timeout", "0"], "deprovision timeout"),
    ];
    for (args, needle) in cases {
        let mut all = args.to_vec();
        all.extend(kubeconfig);
        let output = run(&all);
        assert_one_line_error(&output, needle);
        assert!(
            stderr(&output).contains("invalid configuration"),
            "{}",
            stderr(&output)
        );
    }
}

#[test]
fn a_log_format_other_than_text_or_json_is_refused() {
    let output = run(&["controller", "--log-format", "yaml"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("expected text or json"),
        "{}",
        stderr(&output)
    );
}
