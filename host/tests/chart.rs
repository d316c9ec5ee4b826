//! The Helm chart, linted, validated and rendered by real Helm (Helm 4's Go
//! SDK through `scripts/chart.py`), with its default values and with every
//! optional feature on (`chart/ci/all-features-values.yaml`): every object
//! is a valid Kubernetes object with no field the API would drop, the
//! policy set is one the controller loads, the controller accepts every
//! setting the chart gives it, and `examples/controller/install.yaml` is
//! the chart's default render.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use serde::de::DeserializeOwned;
use serde_json::Value;

#[path = "support/container_env.rs"]
mod container_env;

use container_env::container_environment;

const ALL_FEATURES: &str = "chart/ci/all-features-values.yaml";

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn chart_py(args: &[&str]) -> Output {
    Command::new("python3")
        .arg(repo("scripts/chart.py"))
        .args(args)
        .current_dir(repo(""))
        .output()
        .expect("python3 runs (scripts/test installs helm-python-sdk)")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The chart rendered with `values` (a file of the repository, or none),
/// hooks included.
fn render(values: Option<&str>) -> String {
    render_with(values, true)
}

fn render_with(values: Option<&str>, hooks: bool) -> String {
    let mut args = vec!["template"];
    if hooks {
        args.push("--hooks");
    }
    let path = values.map(|v| repo(v).display().to_string());
    args.extend(path.as_deref());
    let output = chart_py(&args);
    assert!(output.status.success(), "{}", text(&output.stderr));
    text(&output.stdout)
}

fn documents(yaml: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(yaml)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

/// `doc` as a `T`, failing on any field `T` does not have (the API server
/// would drop it, or refuse it with strict field validation).
fn strictly<T: DeserializeOwned>(doc: &Value) -> T {
    let mut ignored = Vec::new();
    let typed: T = serde_ignored::deserialize(doc.clone(), |path| ignored.push(path.to_string()))
        .unwrap_or_else(|e| panic!("{}: {e}", doc["kind"]));
    assert!(
        ignored.is_empty(),
        "{} {}: unknown fields {ignored:?}",
        doc["kind"],
        doc["metadata"]["name"]
    );
    typed
}

fn check_object(doc: &Value) {
    match doc["kind"].as_str().unwrap_or_default() {
        "Namespace" => drop(strictly::<Namespace>(doc)),
        "ServiceAccount" => drop(strictly::<ServiceAccount>(doc)),
        "Secret" => drop(strictly::<Secret>(doc)),
        "ConfigMap" => drop(strictly::<ConfigMap>(doc)),
        "ClusterRole" => drop(strictly::<ClusterRole>(doc)),
        "ClusterRoleBinding" => drop(strictly::<ClusterRoleBinding>(doc)),
        "Role" => drop(strictly::<Role>(doc)),
        "RoleBinding" => drop(strictly::<RoleBinding>(doc)),
        "Service" => drop(strictly::<Service>(doc)),
        "Deployment" => drop(strictly::<Deployment>(doc)),
        "PodDisruptionBudget" => drop(strictly::<PodDisruptionBudget>(doc)),
        "Job" => drop(strictly::<k8s_openapi::api::batch::v1::Job>(doc)),
        // A CRD's type, not in k8s-openapi.
        "ServiceMonitor" => {}
        other => panic!("the chart renders a {other} the tests do not know"),
    }
}

fn kinds(docs: &[Value]) -> Vec<String> {
    docs.iter()
        .map(|d| d["kind"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn the_chart_lints_strictly_with_default_and_all_features_values() {
    for values in [None, Some(ALL_FEATURES)] {
        let mut args = vec!["lint"];
        let path = values.map(|v| repo(v).display().to_string());
        args.extend(path.as_deref());
        let output = chart_py(&args);
        assert!(
            output.status.success(),
            "{values:?}: {}{}",
            text(&output.stdout),
            text(&output.stderr)
        );
    }
}

#[test]
fn every_rendered_object_decodes_into_its_type_with_no_unknown_field() {
    let defaults = documents(&render(None));
    defaults.iter().for_each(check_object);
    let all = documents(&render(Some(ALL_FEATURES)));
    all.iter().for_each(check_object);
    // The optional objects are there when asked for, and only then.
    assert!(kinds(&defaults).contains(&"Namespace".to_string()));
    assert!(
        !kinds(&defaults).contains(&"Secret".to_string()),
        "no key, no Secret"
    );
    assert!(!kinds(&defaults).contains(&"ServiceMonitor".to_string()));
    assert!(
        !kinds(&all).contains(&"Namespace".to_string()),
        "namespace.create=false"
    );
    for kind in [
        "Secret",
        "ServiceMonitor",
        "PodDisruptionBudget",
        "Service",
        "Job",
    ] {
        assert!(kinds(&all).contains(&kind.to_string()), "{kind}");
    }
}

#[test]
fn a_wrong_value_is_refused_by_the_schema_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    for (values, needle) in [
        ("proxy: {privileges: root}", "privileges"),
        ("controller: {logFormat: xml}", "logFormat"),
        ("tailscale: {tagAllowlist: [k8s]}", "tagAllowlist"),
        ("policies: {memoryMiB: 0}", "memoryMiB"),
        ("controler: {replicas: 2}", "controler"),
    ] {
        let path = dir.path().join("values.yaml");
        std::fs::write(&path, values).unwrap();
        let output = chart_py(&["validate", path.to_str().unwrap()]);
        let message = text(&output.stderr);
        assert!(!output.status.success(), "{values} was accepted");
        assert!(message.contains(needle), "{values}: {message}");
    }
    let path = dir.path().join("values.yaml");
    std::fs::write(&path, "proxy: {privileges: minimal}").unwrap();
    assert!(
        chart_py(&["validate", path.to_str().unwrap()])
            .status
            .success()
    );
}

#[test]
fn settings_that_cannot_work_together_are_refused_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    for (values, needle) in [
        (
            "policies: {existingConfigMap: mine, list: [{name: p, wasm: AGFzbQ==}]}",
            "existingConfigMap replaces the whole policy set",
        ),
        (
            "tailscale: {authKey: {value: k, existingSecret: s}}",
            "not both",
        ),
        ("tailscale: {oauth: {clientId: k}}", "go together"),
    ] {
        let path = dir.path().join("values.yaml");
        std::fs::write(&path, values).unwrap();
        let output = chart_py(&["template", path.to_str().unwrap()]);
        assert!(!output.status.success(), "{values} rendered");
        let message = text(&output.stderr);
        assert!(message.contains(needle), "{values}: {message}");
    }
}

#[test]
fn the_examples_are_the_chart_rendered_with_its_defaults() {
    let path = repo("examples/controller/install.yaml");
    let header = "# Generated from the Helm chart with its default values (scripts/chart.py\n\
                  # template); a test keeps it equal to the chart. Install without Helm:\n\
                  #   kubectl apply -f examples/controller/install.yaml\n";
    // Without the uninstall hook: `kubectl apply` would run it at once.
    let wanted = format!("{header}{}", render_with(None, false));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &wanted).unwrap();
    }
    let shipped = std::fs::read_to_string(&path).unwrap();
    assert!(
        shipped == wanted,
        "examples/controller/install.yaml differs from the chart's render: \
         run UPDATE_GOLDEN=1 cargo test -p tailscale-svc-lb --test chart"
    );
}

#[test]
fn the_policy_set_the_chart_renders_is_one_the_controller_loads() {
    for values in [None, Some(ALL_FEATURES)] {
        let docs = documents(&render(values));
        let config_map = docs
            .iter()
            .find(|d| d["kind"] == "ConfigMap")
            .expect("the policy ConfigMap");
        let set = config_map["data"]["policies.yaml"].as_str().unwrap();
        let spec = svc_lb_host::policy::PolicySetSpec::from_yaml(set)
            .unwrap_or_else(|e| panic!("{values:?}: {e}\n{set}"));
        let files: Vec<&String> = config_map["binaryData"]
            .as_object()
            .map(|b| b.keys().collect())
            .unwrap_or_default();
        for entry in &spec.policies {
            let file = entry.file.display().to_string();
            assert!(files.contains(&&file), "{file} is in binaryData");
        }
        if values.is_some() {
            assert_eq!(spec.policies.len(), 1);
            assert_eq!(spec.plan_rules.allowed_pod_annotations, ["prometheus.io/*"]);
        }
    }
}

/// The controller container's environment as the kubelet would give it.
fn controller_env(values: Option<&str>) -> BTreeMap<String, String> {
    let docs = documents(&render(values));
    let deployment: Deployment = strictly(docs.iter().find(|d| d["kind"] == "Deployment").unwrap());
    let container = &deployment.spec.unwrap().template.spec.unwrap().containers[0];
    container_environment(container, "controller-0")
}

#[test]
fn the_uninstall_hook_accepts_every_setting_the_chart_gives_it() {
    for values in [None, Some(ALL_FEATURES)] {
        let docs = documents(&render(values));
        let job: k8s_openapi::api::batch::v1::Job = strictly(
            docs.iter()
                .find(|d| d["kind"] == "Job")
                .expect("the hook Job"),
        );
        let annotations = job.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(annotations["helm.sh/hook"], "pre-delete");
        let container = &job.spec.unwrap().template.spec.unwrap().containers[0];
        let env: BTreeMap<String, String> = container
            .env
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|v| (v.name, v.value.unwrap_or_default()))
            .collect();
        let args = container.args.clone().unwrap_or_default();
        assert_reaches_for_the_cluster(&args, &env, values);
    }
}

/// Runs the binary with `args` and `env` (and an unreadable kubeconfig):
/// it must get as far as reaching for the cluster, so every setting passed.
fn assert_reaches_for_the_cluster(
    args: &[String],
    env: &BTreeMap<String, String>,
    values: Option<&str>,
) {
    let output = Command::new(env!("CARGO_BIN_EXE_tailscale-svc-lb"))
        .args(args)
        .args(["--kubeconfig", "/nonexistent/kubeconfig"])
        .env_clear()
        .envs(env)
        .output()
        .unwrap();
    let stderr = text(&output.stderr);
    assert!(!output.status.success());
    assert!(
        !stderr.contains("invalid configuration")
            && !stderr.contains("invalid value")
            && !stderr.contains("unexpected argument"),
        "{values:?}: {stderr}"
    );
    assert!(stderr.contains("kubeconfig"), "{values:?}: {stderr}");
}

#[test]
fn the_controller_accepts_every_setting_the_chart_gives_it() {
    for values in [None, Some(ALL_FEATURES)] {
        let env = controller_env(values);
        assert_reaches_for_the_cluster(&["controller".to_string()], &env, values);
    }
}

#[test]
fn code_chart_and_examples_name_the_same_images_and_version() {
    let chart: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(repo("chart/Chart.yaml")).unwrap())
            .unwrap();
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        chart["appVersion"], version,
        "appVersion follows Cargo.toml"
    );
    assert_eq!(chart["version"], version, "the chart's version too");
    let values: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(repo("chart/values.yaml")).unwrap())
            .unwrap();
    let runtime = format!(
        "{}:{version}",
        values["proxy"]["image"]["repository"].as_str().unwrap()
    );
    assert_eq!(runtime, svc_lb_host::config::DEFAULT_RUNTIME_IMAGE);
    let controller = format!(
        "{}:{version}",
        values["controller"]["image"]["repository"]
            .as_str()
            .unwrap()
    );
    let install = std::fs::read_to_string(repo("examples/controller/install.yaml")).unwrap();
    assert!(
        install.contains(&format!("image: {controller}")),
        "{controller}"
    );
    assert!(
        install.contains(&format!("value: \"{runtime}\"")),
        "{runtime}"
    );
}

#[test]
fn the_runtime_image_holds_what_the_tests_run() {
    let dockerfile = std::fs::read_to_string(repo("runtime/Dockerfile")).unwrap();
    let list = std::fs::read_to_string(repo("runtime/image.files")).unwrap();
    let entries: Vec<(&str, &str)> = list
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split_once(char::is_whitespace))
        .map(|(path, source)| (path, source.trim()))
        .collect();
    // Every binary of the list is copied to its path.
    for (path, source) in &entries {
        if source.starts_with("build:") {
            assert!(
                dockerfile
                    .lines()
                    .any(|l| l.starts_with("COPY ") && l.trim_end().ends_with(&format!(" {path}"))),
                "{path} ({source}) is not copied into the image"
            );
        }
    }
    // Every tool of the list comes from a Debian package the image installs.
    for (tool, package) in [
        ("/usr/sbin/nft", "nftables"),
        ("/usr/sbin/iptables", "iptables"),
        ("/usr/sbin/ip6tables", "iptables"),
        ("/usr/sbin/conntrack", "conntrack"),
        ("/usr/bin/ip", "iproute2"),
    ] {
        assert!(
            entries.iter().any(|(p, s)| p == &tool && *s == "host"),
            "{tool}"
        );
        assert!(
            dockerfile.contains(&format!(" {package}=")),
            "{package} ({tool}) is not installed"
        );
    }
    // tailscaled from a release with the kube-state store fixes.
    let from = dockerfile
        .lines()
        .find(|l| l.starts_with("FROM tailscale/tailscale:v"))
        .expect("Tailscale's image");
    let version: Vec<u32> = from["FROM tailscale/tailscale:v".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .split('.')
        .map(|n| n.parse().unwrap())
        .collect();
    assert!(version >= vec![1, 92, 5], "{from}");
}

#[test]
fn the_controller_image_list_has_the_dockerfiles_entrypoint_user_and_binary() {
    let dockerfile = std::fs::read_to_string(repo("host/Dockerfile")).unwrap();
    let list = std::fs::read_to_string(repo("host/image.files")).unwrap();
    let setting = |name: &str| {
        list.lines()
            .find_map(|l| l.strip_prefix(&format!("@{name} ")))
            .unwrap_or_else(|| panic!("@{name} in host/image.files"))
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    // The Dockerfile's exec forms, as JSON arrays.
    let instruction = |name: &str| -> Vec<String> {
        let line = dockerfile
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} in host/Dockerfile"));
        serde_json::from_str(line).unwrap()
    };
    assert_eq!(setting("entrypoint"), instruction("ENTRYPOINT"));
    assert_eq!(setting("cmd"), instruction("CMD"));
    let user = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .unwrap();
    assert_eq!(setting("user"), [user.trim()]);
    for line in list.lines().filter(|l| l.contains(" build:")) {
        let path = line.split_whitespace().next().unwrap();
        assert!(
            dockerfile
                .lines()
                .any(|l| l.starts_with("COPY ") && l.trim_end().ends_with(&format!(" {path}"))),
            "{path} is not copied into the image"
        );
    }
    // The chart runs the image as the user the image names.
    let deployment = render(None);
    assert!(deployment.contains(&format!("runAsUser: {}", user.split(':').next().unwrap())));
}
