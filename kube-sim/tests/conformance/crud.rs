//! Create, get, list, update, status, delete.

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service};
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::json;

use crate::harness::{Cluster, status_of};

fn config_map(name: &str, labels: serde_json::Value) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}}),
    )
    .unwrap()
}

fn load_balancer(name: &str) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"type": "LoadBalancer", "loadBalancerClass": "svc-lb.tailscale.iptables.sh/lb", "ports": [{"port": 80}]}
    }))
    .unwrap()
}

#[tokio::test]
async fn create_sets_uid_version_timestamp_and_generation() {
    let cluster = Cluster::connect().await;
    let created = cluster
        .api::<ConfigMap>()
        .create(&PostParams::default(), &config_map("a", json!({})))
        .await
        .unwrap();
    let meta = &created.metadata;
    assert!(meta.uid.as_ref().is_some_and(|u| !u.is_empty()));
    assert!(meta.resource_version.is_some());
    assert!(meta.creation_timestamp.is_some());
    assert_eq!(meta.namespace.as_deref(), Some(cluster.namespace.as_str()));
    cluster.cleanup().await;
}

#[tokio::test]
async fn generate_name_gets_a_unique_suffix() {
    let cluster = Cluster::connect().await;
    let api = cluster.api::<ConfigMap>();
    let template: ConfigMap =
        serde_json::from_value(json!({"metadata": {"generateName": "gen-"}})).unwrap();
    let a = api
        .create(&PostParams::default(), &template)
        .await
        .unwrap()
        .metadata
        .name
        .unwrap();
    let b = api
        .create(&PostParams::default(), &template)
        .await
        .unwrap()
        .metadata
        .name
        .unwrap();
    assert!(
        a.starts_with("gen-") && b.starts_with("gen-") && a != b,
        "{a} {b}"
    );
    cluster.cleanup().await;
}

#[tokio::test]
async fn creating_twice_is_already_exists() {
    let cluster = Cluster::connect().await;
    let api = cluster.api::<ConfigMap>();
    api.create(&PostParams::default(), &config_map("a", json!({})))
        .await
        .unwrap();
    let err = api
        .create(&PostParams::default(), &config_map("a", json!({})))
        .await
        .unwrap_err();
    assert_eq!(status_of(err), (409, "AlreadyExists".into()));
    cluster.cleanup().await;
}

#[tokio::test]
async fn invalid_names_and_missing_namespaces_are_refused() {
    let cluster = Cluster::connect().await;
    let err = cluster
        .api::<ConfigMap>()
        .create(&PostParams::default(), &config_map("Not_Valid", json!({})))
        .await
        .unwrap_err();
    assert_eq!(status_of(err), (422, "Invalid".into()));
    let elsewhere: Api<ConfigMap> =
        Api::namespaced(cluster.client.clone(), "no-such-namespace-here");
    let err = elsewhere
        .create(&PostParams::default(), &config_map("a", json!({})))
        .await
        .unwrap_err();
    assert_eq!(status_of(err).0, 404);
    cluster.cleanup().await;
}

#[tokio::test]
async fn services_get_a_cluster_ip() {
    let cluster = Cluster::connect().await;
    let svc = cluster
        .api::<Service>()
        .create(&PostParams::default(), &load_balancer("web"))
        .await
        .unwrap();
    let spec = svc.spec.unwrap();
    let ip = spec.cluster_ip.unwrap();
    assert!(ip.parse::<std::net::Ipv4Addr>().is_ok(), "{ip}");
    assert_eq!(spec.cluster_ips.unwrap()[0], ip);
    cluster.cleanup().await;
}

#[tokio::test]
async fn a_cluster_ip_already_allocated_is_refused() {
    let cluster = Cluster::connect().await;
    let services = cluster.api::<Service>();
    let first = services
        .create(&PostParams::default(), &load_balancer("first"))
        .await
        .unwrap();
    let taken = first.spec.unwrap().cluster_ip.unwrap();
    let mut second = load_balancer("second");
    second.spec.as_mut().unwrap().cluster_ip = Some(taken.clone());
    let err = services
        .create(&PostParams::default(), &second)
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("expected an API error, got {err}");
    };
    let message = status.message;
    assert_eq!(status.code, 422);
    assert!(
        message.contains("provided IP is already allocated"),
        "{message}"
    );
    assert!(message.contains(&taken), "{message}");
    cluster.cleanup().await;
}

#[tokio::test]
async fn a_secrets_string_data_is_stored_as_data() {
    let cluster = Cluster::connect().await;
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "key"},
        "stringData": {"ts-auth-key": "tskey-auth-x"}
    }))
    .unwrap();
    let created = cluster
        .api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    assert_eq!(created.string_data, None, "stringData is write-only");
    let read = cluster.api::<Secret>().get("key").await.unwrap();
    assert_eq!(read.data.unwrap()["ts-auth-key"].0, b"tskey-auth-x");
    cluster.cleanup().await;
}

#[tokio::test]
async fn lists_filter_by_label_and_field_selectors() {
    let cluster = Cluster::connect().await;
    let api = cluster.api::<ConfigMap>();
    api.create(
        &PostParams::default(),
        &config_map("a", json!({"app": "web", "tier": "edge"})),
    )
    .await
    .unwrap();
    api.create(
        &PostParams::default(),
        &config_map("b", json!({"app": "db"})),
    )
    .await
    .unwrap();
    let names = |list: kube::core::ObjectList<ConfigMap>| -> Vec<String> {
        let mut v: Vec<String> = list
            .items
            .into_iter()
            .filter_map(|c| c.metadata.name)
            .filter(|n| n == "a" || n == "b")
            .collect();
        v.sort();
        v
    };
    let cases: [(ListParams, &[&str]); 4] = [
        (ListParams::default().labels("app=web"), &["a"]),
        (ListParams::default().labels("app in (web,db)"), &["a", "b"]),
        (ListParams::default().labels("!tier"), &["b"]),
        (ListParams::default().fields("metadata.name=b"), &["b"]),
    ];
    for (params, expected) in cases {
        assert_eq!(names(api.list(&params).await.unwrap()), expected);
    }
    let list = api.list(&ListParams::default()).await.unwrap();
    assert!(list.metadata.resource_version.is_some());
    cluster.cleanup().await;
}

#[tokio::test]
async fn an_update_with_a_stale_version_is_a_conflict() {
    let cluster = Cluster::connect().await;
    let api = cluster.api::<ConfigMap>();
    let first = api
        .create(&PostParams::default(), &config_map("a", json!({})))
        .await
        .unwrap();
    let mut fresh = first.clone();
    fresh.data = Some([("k".to_string(), "new".to_string())].into());
    api.replace("a", &PostParams::default(), &fresh)
        .await
        .unwrap();
    let err = api
        .replace("a", &PostParams::default(), &first)
        .await
        .unwrap_err();
    assert_eq!(status_of(err), (409, "Conflict".into()));
    cluster.cleanup().await;
}

#[tokio::test]
async fn status_writes_change_only_status_and_spec_writes_keep_it() {
    let cluster = Cluster::connect().await;
    let api = cluster.api::<Service>();
    let created = api
        .create(&PostParams::default(), &load_balancer("web"))
        .await
        .unwrap();
    let generation = created.metadata.generation;
    let mut with_status = created.clone();
    with_status.status =
        serde_json::from_value(json!({"loadBalancer": {"ingress": [{"ip": "100.64.0.1"}]}}))
            .unwrap();
    with_status.metadata.labels = Some([("ignored".to_string(), "yes".to_string())].into());
    let after = api
        .replace_status("web", &PostParams::default(), &with_status)
        .await
        .unwrap();
    // A Service's status strategy resets only the spec
    // (`serviceStatusStrategy.PrepareForUpdate`): metadata is written.
    assert_eq!(
        after.metadata.labels, with_status.metadata.labels,
        "a Service's status write keeps its metadata changes"
    );
    assert_eq!(
        after.metadata.generation, generation,
        "status writes do not bump generation"
    );
    let mut spec_change = after.clone();
    spec_change.status = None;
    spec_change.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].port = 81;
    let after = api
        .replace("web", &PostParams::default(), &spec_change)
        .await
        .unwrap();
    let ip = &after
        .status
        .unwrap()
        .load_balancer
        .unwrap()
        .ingress
        .unwrap()[0]
        .ip;
    assert_eq!(ip.as_deref(), Some("100.64.0.1"), "spec writes keep status");
    assert!(
        after.metadata.generation > generation,
        "spec changes bump generation"
    );
    cluster.cleanup().await;
}

#[tokio::test]
async fn a_deployment_status_write_keeps_its_spec_and_labels() {
    use k8s_openapi::api::apps::v1::Deployment;
    let cluster = Cluster::connect().await;
    let api = cluster.api::<Deployment>();
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "app", "labels": {"tier": "web"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "a"}},
                 "template": {"metadata": {"labels": {"app": "a"}},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
    }))
    .unwrap();
    let created = api
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    let mut write = created.clone();
    write.metadata.labels = Some([("tier".to_string(), "changed".to_string())].into());
    write.spec.as_mut().unwrap().replicas = Some(5);
    write.status = serde_json::from_value(json!({"observedGeneration": 1, "replicas": 1})).unwrap();
    let after = api
        .replace_status("app", &PostParams::default(), &write)
        .await
        .unwrap();
    // `deploymentStatusStrategy.PrepareForUpdate` resets spec and labels.
    assert_eq!(after.metadata.labels, created.metadata.labels);
    assert_eq!(after.spec.unwrap().replicas, Some(1));
    assert_eq!(after.status.unwrap().observed_generation, Some(1));
    cluster.cleanup().await;
}

#[tokio::test]
async fn cluster_scoped_objects_have_no_namespace() {
    let cluster = Cluster::connect().await;
    let api: Api<Namespace> = Api::all(cluster.client.clone());
    let ns = api.get(&cluster.namespace).await.unwrap();
    assert_eq!(ns.metadata.namespace, None);
    cluster.cleanup().await;
}

#[tokio::test]
async fn dual_stack_services_get_both_families_where_the_cluster_has_them() {
    let cluster = Cluster::connect().await;
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "dual"},
        "spec": {"ipFamilyPolicy": "PreferDualStack", "ports": [{"port": 53, "protocol": "UDP"}]}
    }))
    .unwrap();
    let spec = cluster
        .api::<Service>()
        .create(&PostParams::default(), &svc)
        .await
        .unwrap()
        .spec
        .unwrap();
    let ips = spec.cluster_ips.unwrap();
    // PreferDualStack: two families on a dual-stack cluster, one otherwise.
    assert_eq!(ips.len(), spec.ip_families.clone().unwrap().len());
    assert!(ips[0].parse::<std::net::Ipv4Addr>().is_ok(), "{ips:?}");
    cluster.cleanup().await;
}

#[tokio::test]
async fn in_memory_only_a_dual_stack_server_allocates_ipv4_and_ipv6() {
    let sim = kube_sim::KubeSim::start_dual_stack().await.unwrap();
    let api: Api<Service> = Api::namespaced(sim.client(), "default");
    let svc = |name: &str, policy: &str| -> Service {
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"ipFamilyPolicy": policy, "ports": [{"port": 80}]}}))
            .unwrap()
    };
    let spec = api
        .create(&PostParams::default(), &svc("dual", "RequireDualStack"))
        .await
        .unwrap()
        .spec
        .unwrap();
    let ips = spec.cluster_ips.unwrap();
    assert_eq!(spec.ip_families.unwrap(), ["IPv4", "IPv6"]);
    assert!(
        ips[0].parse::<std::net::Ipv4Addr>().is_ok()
            && ips[1].parse::<std::net::Ipv6Addr>().is_ok(),
        "{ips:?}"
    );
    let single = kube_sim::KubeSim::start().await.unwrap();
    let api: Api<Service> = Api::namespaced(single.client(), "default");
    let err = api
        .create(&PostParams::default(), &svc("dual", "RequireDualStack"))
        .await
        .unwrap_err();
    assert_eq!(status_of(err).0, 422);
}
