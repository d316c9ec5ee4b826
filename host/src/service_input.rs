//! Deciding whether a Service is ours and turning it into the policies'
//! input. Pure: the caller fetched the Service.

use k8s_openapi::api::core::v1::Service as KubeService;
use policy_sdk::manifest::ServiceManifest;

/// `spec.type` of the Services this controller serves.
pub const LOAD_BALANCER: &str = "LoadBalancer";

/// Why a Service is not served by this controller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotServed {
    /// `spec.type` is not LoadBalancer.
    #[error("Service {service} has type {found}, not LoadBalancer")]
    NotLoadBalancer {
        /// `namespace/name`.
        service: String,
        /// The type found.
        found: String,
    },
    /// The Service's fields do not fit the policy input (e.g. a port out of range).
    #[error("Service {service} cannot be read: {reason}")]
    Unreadable {
        /// `namespace/name`.
        service: String,
        /// What is wrong.
        reason: String,
    },
    /// `spec.loadBalancerClass` names another implementation, or none.
    #[error("Service {service} has loadBalancerClass {found}, not {expected}")]
    OtherClass {
        /// `namespace/name`.
        service: String,
        /// The class found (`<none>` when unset).
        found: String,
        /// The class served.
        expected: String,
    },
}

/// The policy input for `service` if it is a LoadBalancer of `class`.
pub fn policy_input(service: &KubeService, class: &str) -> Result<policy_sdk::Service, NotServed> {
    let spec = service.spec.clone().unwrap_or_default();
    let name = format!(
        "{}/{}",
        service.metadata.namespace.as_deref().unwrap_or("default"),
        service.metadata.name.as_deref().unwrap_or_default()
    );
    let type_ = spec.type_.unwrap_or_else(|| "ClusterIP".into());
    if type_ != LOAD_BALANCER {
        return Err(NotServed::NotLoadBalancer {
            service: name,
            found: type_,
        });
    }
    if spec.load_balancer_class.as_deref() != Some(class) {
        return Err(NotServed::OtherClass {
            service: name,
            found: spec.load_balancer_class.unwrap_or_else(|| "<none>".into()),
            expected: class.to_string(),
        });
    }
    // The SDK reads Services in API form; go through it so the controller and
    // a policy author's fixtures see the same input.
    let manifest: ServiceManifest = serde_json::to_value(service)
        .and_then(serde_json::from_value)
        .map_err(|e| NotServed::Unreadable {
            service: name,
            reason: e.to_string(),
        })?;
    Ok(manifest.to_service())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLASS: &str = "svc-lb.tailscale.iptables.sh/lb";

    fn service(yaml: &str) -> KubeService {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn a_load_balancer_of_our_class_is_served() {
        let input = policy_input(
            &service(
                "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop, uid: u1}\n\
                 spec: {type: LoadBalancer, loadBalancerClass: svc-lb.tailscale.iptables.sh/lb, \
                 clusterIPs: [10.96.0.10, 'fd00::10'], ipFamilies: [IPv4, IPv6], ports: [{port: 443}]}",
            ),
            CLASS,
        )
        .unwrap();
        assert_eq!(
            (
                input.namespace.as_str(),
                input.name.as_str(),
                input.uid.as_str()
            ),
            ("shop", "web", "u1")
        );
        assert_eq!(input.cluster_ips, vec!["10.96.0.10", "fd00::10"]);
        assert_eq!(input.ports[0].port, 443);
    }

    #[test]
    fn other_types_and_classes_are_not_served() {
        let cluster_ip = service(
            "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 1}]}",
        );
        assert!(matches!(
            policy_input(&cluster_ip, CLASS),
            Err(NotServed::NotLoadBalancer { .. })
        ));
        let other = service(
            "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {type: LoadBalancer, loadBalancerClass: x/y}",
        );
        assert_eq!(
            policy_input(&other, CLASS).unwrap_err().to_string(),
            "Service default/a has loadBalancerClass x/y, not svc-lb.tailscale.iptables.sh/lb"
        );
        let none = service(
            "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {type: LoadBalancer}",
        );
        assert!(matches!(
            policy_input(&none, CLASS),
            Err(NotServed::OtherClass { .. })
        ));
    }

    #[test]
    fn a_service_whose_fields_do_not_fit_is_an_error_not_an_empty_input() {
        let bad_port = service(
            "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n\
             spec: {type: LoadBalancer, loadBalancerClass: svc-lb.tailscale.iptables.sh/lb, ports: [{port: 70000}]}",
        );
        assert!(matches!(
            policy_input(&bad_port, CLASS),
            Err(NotServed::Unreadable { .. })
        ));
    }
}
