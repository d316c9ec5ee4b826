//! The runtime container's environment: its settings (names from
//! [`svc_lb_contract::env`]), then the plan's extra variables.

use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, SecretKeySelector};
use policy_sdk::{Plan, Protocol, Service};
use svc_lb_contract::ports::{self, PortSpec};
use svc_lb_contract::{AUTH_KEY_SECRET_KEY, ProxyNames, RUNTIME_HEALTH_PORT, env};

use crate::config::ControllerConfig;

fn value(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: Some(value.into()),
        value_from: None,
    }
}

fn from_field(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                api_version: None,
                field_path: path.to_string(),
            }),
            ..EnvVarSource::default()
        }),
    }
}

/// The Service's ports in the runtime's encoding.
fn port_specs(service: &Service) -> Vec<PortSpec> {
    service
        .ports
        .iter()
        .map(|p| PortSpec {
            protocol: match p.protocol {
                Protocol::Tcp => ports::Protocol::Tcp,
                Protocol::Udp => ports::Protocol::Udp,
                Protocol::Sctp => ports::Protocol::Sctp,
            },
            port: p.port,
        })
        .collect()
}

pub(super) fn runtime_env(
    service: &Service,
    plan: &Plan,
    config: &ControllerConfig,
    names: &ProxyNames,
) -> Vec<EnvVar> {
    let lease = config.lease;
    let mut vars = vec![
        value(env::SERVICE_NAMESPACE, &service.namespace),
        value(env::SERVICE_NAME, &service.name),
        value(env::CLUSTER_IPS, service.cluster_ips.join(",")),
        value(env::PORTS, ports::format_ports(&port_specs(service))),
        value(
            env::SOURCE_RANGES,
            service.load_balancer_source_ranges.join(","),
        ),
        value(env::STATE_SECRET, &names.state_secret),
        value(env::LEASE_NAME, &names.lease),
        value(env::HOSTNAME, &plan.hostname),
        value(env::TAGS, plan.tags.join(",")),
        value(
            env::AUTH_KEY_SOURCE,
            if config.oauth.is_some() {
                "state"
            } else {
                "secret"
            },
        ),
        EnvVar {
            name: env::AUTH_KEY.to_string(),
            value: None,
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: config.auth_key_secret.clone(),
                    key: AUTH_KEY_SECRET_KEY.to_string(),
                    // Without a key, tailscaled logs a login URL instead.
                    optional: Some(true),
                }),
                ..EnvVarSource::default()
            }),
        },
        value(
            env::LOGIN_SERVER,
            config.login_server.clone().unwrap_or_default(),
        ),
        from_field(env::POD_NAME, "metadata.name"),
        from_field(env::POD_NAMESPACE, "metadata.namespace"),
        from_field(env::NODE_NAME, "spec.nodeName"),
        from_field(env::POD_IP, "status.podIP"),
        value(
            env::LEASE_DURATION_SECONDS,
            lease.duration.as_secs().to_string(),
        ),
        value(
            env::LEASE_RENEW_DEADLINE_SECONDS,
            lease.renew_deadline.as_secs().to_string(),
        ),
        value(
            env::LEASE_RETRY_PERIOD_SECONDS,
            lease.retry_period.as_secs().to_string(),
        ),
        value(env::FIREWALL_MODE, config.firewall_mode.as_str()),
        value(env::HEALTH_PORT, RUNTIME_HEALTH_PORT.to_string()),
    ];
    if config.json_logs {
        vars.push(value(env::LOG_FORMAT, "json"));
    }
    vars.extend(plan.env.iter().map(|(name, v)| value(name, v)));
    vars
}
