//! Example policy: per-namespace pod settings.
//!
//! The operator decides, per namespace, the tolerations, resources, priority
//! class and extra pod labels/annotations of the proxy pods, so a team's
//! proxies are scheduled and accounted like the rest of its workloads.
//! Namespaces without an entry get the `"*"` entry, if any.
//!
//! Settings:
//!
//! ```json
//! {
//!   "namespaces": {
//!     "payments": {
//!       "priorityClassName": "business-critical",
//!       "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
//!       "tolerations": [{"key": "dedicated", "operator": "Exists"}],
//!       "podLabels": {"team": "payments"}
//!     },
//!     "*": {"resources": {"requests": {"cpu": "10m"}}}
//!   }
//! }
//! ```

#![no_std]

use policy_sdk::prelude::*;
use policy_sdk::{Labels, Plan, Policy, Rejection, Request, Resources, Toleration};
use serde::Deserialize;

/// The namespace-pod-settings policy.
pub struct NamespacePodSettings;

/// Settings of the namespace-pod-settings policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Pod settings by namespace; `"*"` applies to namespaces not listed.
    pub namespaces: BTreeMap<String, PodSettings>,
}

/// Pod settings for one namespace.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodSettings {
    /// Tolerations added to the plan.
    #[serde(default)]
    pub tolerations: Vec<Toleration>,
    /// Requests and limits merged into the plan.
    #[serde(default)]
    pub resources: Resources,
    /// Priority class of the proxy pods.
    #[serde(default)]
    pub priority_class_name: Option<String>,
    /// Labels added to the proxy pods.
    #[serde(default)]
    pub pod_labels: Labels,
    /// Annotations added to the proxy pods.
    #[serde(default)]
    pub pod_annotations: Labels,
}

impl Policy for NamespacePodSettings {
    type Settings = Settings;

    fn evaluate(request: &Request<'_, Settings>, mut plan: Plan) -> Result<Plan, Rejection> {
        let namespaces = &request.settings.namespaces;
        let Some(pod) = namespaces
            .get(&request.service.namespace)
            .or_else(|| namespaces.get("*"))
        else {
            return Ok(plan);
        };
        plan.tolerations.extend(pod.tolerations.iter().cloned());
        plan.resources
            .requests
            .extend(pod.resources.requests.clone());
        plan.resources.limits.extend(pod.resources.limits.clone());
        if pod.priority_class_name.is_some() {
            plan.priority_class_name = pod.priority_class_name.clone();
        }
        plan.pod_labels.extend(pod.pod_labels.clone());
        plan.pod_annotations.extend(pod.pod_annotations.clone());
        Ok(plan)
    }
}

policy_sdk::export_policy!(NamespacePodSettings);

#[cfg(test)]
mod tests {
    use policy_sdk::fixtures::service_from_yaml;
    use policy_sdk::testing::Testcase;
    use policy_sdk::{Service, TolerationOperator};

    use super::*;

    const SETTINGS: &str = r#"{"namespaces": {
        "payments": {"priorityClassName": "business-critical",
                     "resources": {"requests": {"cpu": "50m"}, "limits": {"memory": "128Mi"}},
                     "tolerations": [{"key": "dedicated", "operator": "Exists"}],
                     "podLabels": {"team": "payments"}},
        "*": {"resources": {"requests": {"cpu": "10m"}}}}}"#;

    fn service(namespace: &str) -> Service {
        service_from_yaml(&format!("metadata: {{name: api, namespace: {namespace}}}")).unwrap()
    }

    #[test]
    fn a_listed_namespace_gets_its_pod_settings() {
        let plan = Testcase::new(service("payments"))
            .settings(SETTINGS)
            .evaluate::<NamespacePodSettings>()
            .result
            .unwrap();
        assert_eq!(
            plan.priority_class_name.as_deref(),
            Some("business-critical")
        );
        assert_eq!(plan.resources.requests["cpu"], "50m");
        assert_eq!(plan.resources.limits["memory"], "128Mi");
        assert_eq!(plan.tolerations[0].operator, TolerationOperator::Exists);
        assert_eq!(plan.pod_labels["team"], "payments");
    }

    #[test]
    fn other_namespaces_get_the_wildcard_entry() {
        let plan = Testcase::new(service("web"))
            .settings(SETTINGS)
            .evaluate::<NamespacePodSettings>()
            .result
            .unwrap();
        assert_eq!(plan.resources.requests["cpu"], "10m");
        assert_eq!(plan.priority_class_name, None);
    }

    #[test]
    fn without_a_matching_entry_the_plan_is_unchanged() {
        let before = Plan {
            hostname: "h".into(),
            ..Plan::default()
        };
        let plan = Testcase::new(service("web"))
            .settings(r#"{"namespaces": {}}"#)
            .plan(before.clone())
            .evaluate::<NamespacePodSettings>()
            .result
            .unwrap();
        assert_eq!(plan, before);
    }
}
