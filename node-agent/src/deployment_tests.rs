//! The Deployment controller's plan and pod, without a cluster.

use k8s_openapi::api::apps::v1::{DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment};

use super::*;

fn pod(name: &str, hash: &str, ready: bool) -> ReplicaPod {
    ReplicaPod {
        name: name.into(),
        hash: hash.into(),
        ready,
        finished: false,
        terminating: false,
        created: format!("t/{name}"),
    }
}

const TWO_REPLICAS: Rollout = Rollout::RollingUpdate {
    max_surge: 1,
    max_unavailable: 0,
};

#[test]
fn replicas_are_created_and_a_scale_to_zero_deletes_every_pod() {
    assert_eq!(plan(2, "h", &[], TWO_REPLICAS), [Step::Create(2)]);
    let running = [pod("a", "h", true), pod("b", "h", true)];
    assert!(plan(2, "h", &running, TWO_REPLICAS).is_empty());
    assert_eq!(
        plan(0, "h", &running, TWO_REPLICAS),
        [Step::Delete("b".into()), Step::Delete("a".into())]
    );
}

#[test]
fn a_rolling_update_adds_a_surge_pod_and_removes_an_old_one_only_once_it_is_ready() {
    let old = [pod("a", "old", true), pod("b", "old", true)];
    assert_eq!(plan(2, "new", &old, TWO_REPLICAS), [Step::Create(1)]);
    let surged = [
        pod("a", "old", true),
        pod("b", "old", true),
        pod("c", "new", false),
    ];
    assert!(
        plan(2, "new", &surged, TWO_REPLICAS).is_empty(),
        "no old pod goes while the new one is not ready"
    );
    let ready = [
        pod("a", "old", true),
        pod("b", "old", true),
        pod("c", "new", true),
    ];
    assert_eq!(
        plan(2, "new", &ready, TWO_REPLICAS),
        [Step::Delete("b".into())]
    );
}

#[test]
fn an_unready_old_pod_goes_first_and_finished_pods_are_replaced() {
    let pods = [
        pod("a", "old", true),
        pod("b", "old", false),
        pod("c", "new", true),
    ];
    assert_eq!(
        plan(2, "new", &pods, TWO_REPLICAS),
        [Step::Delete("b".into())]
    );
    let mut done = pod("a", "h", false);
    done.finished = true;
    assert_eq!(
        plan(1, "h", &[done], TWO_REPLICAS),
        [Step::Delete("a".into()), Step::Create(1)]
    );
}

#[test]
fn recreate_waits_until_every_old_pod_is_gone() {
    let mut leaving = pod("a", "old", true);
    leaving.terminating = true;
    assert_eq!(
        plan(1, "new", &[pod("a", "old", true)], Rollout::Recreate),
        [Step::Delete("a".into())]
    );
    assert!(plan(1, "new", &[leaving], Rollout::Recreate).is_empty());
    assert_eq!(plan(1, "new", &[], Rollout::Recreate), [Step::Create(1)]);
}

fn deployment(strategy: Option<DeploymentStrategy>) -> Deployment {
    Deployment {
        metadata: ObjectMeta {
            name: Some("tailscale-svc-lb".into()),
            namespace: Some("tailscale-svc-lb".into()),
            uid: Some("d-uid".into()),
            ..Default::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(2),
            strategy,
            ..Default::default()
        }),
        status: None,
    }
}

#[test]
fn the_default_budget_is_a_quarter_up_for_surge_and_down_for_unavailable() {
    assert_eq!(
        rollout(&deployment(None), 2),
        Rollout::RollingUpdate {
            max_surge: 1,
            max_unavailable: 0
        }
    );
    let fixed = DeploymentStrategy {
        type_: Some("RollingUpdate".into()),
        rolling_update: Some(RollingUpdateDeployment {
            max_surge: Some(IntOrString::Int(0)),
            max_unavailable: Some(IntOrString::String("50%".into())),
        }),
    };
    assert_eq!(
        rollout(&deployment(Some(fixed)), 4),
        Rollout::RollingUpdate {
            max_surge: 0,
            max_unavailable: 2
        }
    );
}

#[test]
fn budgets_that_both_round_to_zero_let_one_pod_be_unavailable() {
    let rounded_away = DeploymentStrategy {
        type_: Some("RollingUpdate".into()),
        rolling_update: Some(RollingUpdateDeployment {
            max_surge: Some(IntOrString::Int(0)),
            max_unavailable: Some(IntOrString::String("10%".into())),
        }),
    };
    assert_eq!(
        rollout(&deployment(Some(rounded_away)), 2),
        Rollout::RollingUpdate {
            max_surge: 0,
            max_unavailable: 1
        }
    );
}

#[test]
fn a_new_pod_is_bound_owned_and_labelled_with_its_templates_hash() {
    let d = deployment(None);
    let hash = template_hash(&d);
    let pod = new_pod(&d, &hash, "node-1");
    assert_eq!(
        pod.metadata.generate_name.as_deref(),
        Some(format!("tailscale-svc-lb-{hash}-").as_str())
    );
    assert_eq!(pod.metadata.labels.as_ref().unwrap()[TEMPLATE_HASH], hash);
    assert!(controlled_by(&pod, "d-uid"));
    assert_eq!(pod.spec.unwrap().node_name.as_deref(), Some("node-1"));
}
