//! What the controller tells users on the Service, computed from plain data:
//! the runtime's report in the state Secret becomes `status.loadBalancer`
//! and the `TailscaleProxyReady` condition.
//!
//! Ingress entries use `ipMode: Proxy`. With the default (`VIP`) kube-proxy
//! would treat the Tailscale address as a local load-balancer IP: it would
//! capture in-cluster traffic to it and send it straight to the endpoints,
//! bypassing the tailnet (and its ACLs), and in IPVS mode bind the address
//! on every node, where it can clash with a node's own Tailscale interface.
//! `Proxy` keeps traffic to the address on its way through the tailnet.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::LoadBalancerIngress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use svc_lb_contract::state;

use super::problems::{PodsNotCreated, ProblemContext, problem_condition};
use super::text_limits::{CONDITION_MESSAGE_LIMIT, within};

/// Condition type on served Services.
pub const PROXY_READY: &str = "TailscaleProxyReady";

/// What the runtime reported in the state Secret.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyReport {
    /// Tailscale addresses, IPv4 first.
    pub ips: Vec<IpAddr>,
    /// MagicDNS name, without the trailing dot.
    pub fqdn: Option<String>,
    /// Stable device id; present once the device has joined the tailnet.
    pub device_id: Option<String>,
    /// The leader pod.
    pub leader_pod: Option<String>,
    /// The node of the leader pod.
    pub leader_node: Option<String>,
    /// Where to log in, while the leader waits for interactive login.
    pub login_url: Option<String>,
    /// When the leader logged out after a deprovisioning request.
    pub logged_out: Option<String>,
    /// Why the proxy does not serve: a problem code and message.
    pub problem: Option<(String, String)>,
    /// The tags the device last logged in with (sorted), when recorded.
    pub login_tags: Option<Vec<String>>,
}

fn text(data: &BTreeMap<String, ByteString>, key: &str) -> Option<String> {
    let value = data.get(key)?;
    let value = String::from_utf8(value.0.clone()).ok()?;
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_string())
}

impl ProxyReport {
    /// Reads the runtime's keys; unreadable values count as absent, and
    /// addresses that do not parse are skipped.
    pub fn from_secret_data(data: &BTreeMap<String, ByteString>) -> Self {
        let mut ips: Vec<IpAddr> = text(data, state::DEVICE_IPS)
            .and_then(|list| serde_json::from_str::<Vec<String>>(&list).ok())
            .unwrap_or_default()
            .iter()
            .filter_map(|ip| ip.parse().ok())
            .collect();
        if let Some(ip) = text(data, state::TS_IP).and_then(|ip| ip.parse().ok())
            && !ips.contains(&ip)
        {
            ips.push(ip);
        }
        ips.sort_by_key(|ip| (ip.is_ipv6(), *ip));
        Self {
            ips,
            fqdn: text(data, state::DEVICE_FQDN).map(|f| f.trim_end_matches('.').to_string()),
            device_id: text(data, state::DEVICE_ID),
            leader_pod: text(data, state::LEADER_POD),
            leader_node: text(data, state::LEADER_NODE),
            login_url: text(data, state::LOGIN_URL),
            logged_out: text(data, state::LOGGED_OUT),
            problem: text(data, state::PROBLEM)
                .map(|code| (code, text(data, state::PROBLEM_MESSAGE).unwrap_or_default())),
            login_tags: text(data, state::LOGIN_REQUEST)
                .and_then(|json| serde_json::from_str::<serde_json::Value>(&json).ok())
                .and_then(|request| serde_json::from_value(request["tags"].clone()).ok()),
        }
    }

    /// `status.loadBalancer.ingress`: every address, then the MagicDNS name.
    pub fn ingress(&self) -> Vec<LoadBalancerIngress> {
        let mut ingress: Vec<LoadBalancerIngress> = self
            .ips
            .iter()
            .map(|ip| LoadBalancerIngress {
                ip: Some(ip.to_string()),
                ip_mode: Some("Proxy".into()),
                ..Default::default()
            })
            .collect();
        if let Some(fqdn) = &self.fqdn
            && !ingress.is_empty()
        {
            ingress.push(LoadBalancerIngress {
                hostname: Some(fqdn.clone()),
                ..Default::default()
            });
        }
        ingress
    }
}

/// Whether the Service already shows `wanted` as its ingress. An API server
/// without the LoadBalancerIPMode feature (before 1.30) drops `ipMode`
/// from what it stores, so an entry shown without one matches an entry
/// wanted with one: otherwise every reconcile would write the status again
/// (and repeat its Event).
pub fn ingress_shown(wanted: &[LoadBalancerIngress], shown: &[LoadBalancerIngress]) -> bool {
    wanted.len() == shown.len()
        && wanted.iter().zip(shown).all(|(w, s)| {
            let mode_matches = s.ip_mode.is_none() || s.ip_mode == w.ip_mode;
            let without_mode = |i: &LoadBalancerIngress| LoadBalancerIngress {
                ip_mode: None,
                ..i.clone()
            };
            mode_matches && without_mode(w) == without_mode(s)
        })
}

/// Whether the proxy serves the Service, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// The leader forwards from its Tailscale address.
    Ready {
        /// Leader pod, when reported.
        leader_pod: Option<String>,
        /// Its node, when reported.
        leader_node: Option<String>,
    },
    /// No pod has become leader and reported an address yet.
    WaitingForLeader,
    /// The leader waits for an interactive login. The URL itself is never
    /// shown on the Service: whoever opens it owns the device, so it stays
    /// in the leader's log and the state Secret. Holds the leader pod, when
    /// known.
    WaitingForLogin(Option<String>),
    /// The plan's node selector matches no node.
    NoMatchingNodes(String),
    /// The policy chain failed for this Service.
    PolicyFailed(String),
    /// The controller has no valid policy set.
    NoPolicySet(String),
    /// The proxy reported a problem (see [`super::problems`]).
    Problem {
        /// The condition reason: the problem code.
        reason: &'static str,
        /// What is wrong and what to do.
        message: String,
    },
    /// The DaemonSet cannot create its pods.
    PodsNotCreated(PodsNotCreated),
    /// A policy decided that the Service is not to be served; its proxy is
    /// removed.
    NotServed {
        /// The deciding policy.
        policy: String,
        /// Its reason.
        reason: String,
    },
}

impl Readiness {
    /// From the runtime's report, once the proxy objects are applied and
    /// `matching_nodes` nodes match the plan's selector; `pods` when the
    /// DaemonSet cannot create its pods.
    pub fn of_proxy(
        report: &ProxyReport,
        matching_nodes: usize,
        selector: &str,
        context: &ProblemContext,
        pods: Option<PodsNotCreated>,
    ) -> Self {
        if !report.ips.is_empty() {
            Readiness::Ready {
                leader_pod: report.leader_pod.clone(),
                leader_node: report.leader_node.clone(),
            }
        } else if report.login_url.is_some() {
            Readiness::WaitingForLogin(report.leader_pod.clone())
        } else if matching_nodes == 0 {
            Readiness::NoMatchingNodes(selector.to_string())
        } else if let Some((code, message)) = &report.problem {
            let (reason, message) = problem_condition(code, message, context);
            Readiness::Problem { reason, message }
        } else if let Some(pods) = pods {
            Readiness::PodsNotCreated(pods)
        } else {
            Readiness::WaitingForLeader
        }
    }

    /// `(status, reason, message)` of the condition.
    pub fn parts(&self) -> (&'static str, &'static str, String) {
        match self {
            Readiness::Ready {
                leader_pod,
                leader_node,
            } => (
                "True",
                "Ready",
                match (leader_pod, leader_node) {
                    (Some(pod), Some(node)) => format!("leader {pod} on node {node} forwards"),
                    (Some(pod), None) => format!("leader {pod} forwards"),
                    _ => "the leader forwards".to_string(),
                },
            ),
            Readiness::WaitingForLeader => (
                "False",
                "WaitingForLeader",
                "no proxy pod has become leader and reported a Tailscale address yet".into(),
            ),
            Readiness::WaitingForLogin(leader) => (
                "False",
                "WaitingForLogin",
                format!(
                    "no auth key: log the device in with the URL in the log of {}, \
                     or provide an auth key",
                    leader
                        .as_deref()
                        .map_or("the leader pod".to_string(), |p| format!("pod {p}"))
                ),
            ),
            Readiness::NoMatchingNodes(selector) => (
                "False",
                "NoMatchingNodes",
                format!("no node matches the node selector {selector}"),
            ),
            Readiness::PolicyFailed(reason) => ("False", "PolicyFailed", reason.clone()),
            Readiness::NoPolicySet(reason) => ("False", "NoPolicySet", reason.clone()),
            Readiness::Problem { reason, message } => ("False", reason, message.clone()),
            Readiness::PodsNotCreated(pods) => ("False", "PodsNotCreated", pods.message()),
            Readiness::NotServed { policy, reason } => (
                "False",
                "NotServed",
                format!("policy {policy} does not serve this Service: {reason}"),
            ),
        }
    }
}

/// The Service's conditions with ours set to `readiness`: other conditions
/// are kept, and the transition time only moves when the status does.
pub fn with_proxy_condition(
    existing: &[Condition],
    readiness: &Readiness,
    generation: Option<i64>,
    now: Time,
) -> Vec<Condition> {
    let (status, reason, message) = readiness.parts();
    let previous = existing.iter().find(|c| c.type_ == PROXY_READY);
    let last_transition_time = match previous {
        Some(p) if p.status == status => p.last_transition_time.clone(),
        _ => now,
    };
    let ours = Condition {
        type_: PROXY_READY.into(),
        status: status.into(),
        reason: reason.into(),
        message: within(message, CONDITION_MESSAGE_LIMIT),
        observed_generation: generation,
        last_transition_time,
    };
    let mut conditions: Vec<Condition> = existing
        .iter()
        .filter(|c| c.type_ != PROXY_READY)
        .cloned()
        .collect();
    conditions.push(ours);
    conditions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, ByteString> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
            .collect()
    }

    fn time(s: &str) -> Time {
        Time(s.parse().unwrap())
    }

    #[test]
    fn every_address_and_the_magicdns_name_become_ingress_with_proxy_mode() {
        let report = ProxyReport::from_secret_data(&data(&[
            (
                state::DEVICE_IPS,
                r#"["fd7a:115c:a1e0::1", "100.64.0.7", "bogus"]"#,
            ),
            (state::TS_IP, "100.64.0.7"),
            (state::DEVICE_FQDN, "web.tail1234.ts.net."),
        ]));
        let ingress = report.ingress();
        let shown: Vec<(Option<&str>, Option<&str>, Option<&str>)> = ingress
            .iter()
            .map(|i| (i.ip.as_deref(), i.hostname.as_deref(), i.ip_mode.as_deref()))
            .collect();
        assert_eq!(
            shown,
            vec![
                (Some("100.64.0.7"), None, Some("Proxy")),
                (Some("fd7a:115c:a1e0::1"), None, Some("Proxy")),
                (None, Some("web.tail1234.ts.net"), None),
            ]
        );
    }

    #[test]
    fn an_ingress_shown_without_ip_mode_matches_by_a_server_that_drops_it() {
        let report = ProxyReport::from_secret_data(&data(&[
            (state::DEVICE_IPS, r#"["100.64.0.7"]"#),
            (state::DEVICE_FQDN, "web.ts.net"),
        ]));
        let wanted = report.ingress();
        let dropped: Vec<LoadBalancerIngress> = wanted
            .iter()
            .map(|i| LoadBalancerIngress {
                ip_mode: None,
                ..i.clone()
            })
            .collect();
        assert!(ingress_shown(&wanted, &wanted));
        assert!(ingress_shown(&wanted, &dropped), "a pre-1.30 server's copy");
        let mut vip = wanted.clone();
        vip[0].ip_mode = Some("VIP".into());
        assert!(!ingress_shown(&wanted, &vip), "another mode is a change");
        let mut moved = dropped.clone();
        moved[0].ip = Some("100.64.0.8".into());
        assert!(
            !ingress_shown(&wanted, &moved),
            "another address is a change"
        );
        assert!(!ingress_shown(&wanted, &dropped[..1]));
    }

    #[test]
    fn no_address_means_no_ingress_even_with_a_name() {
        let report = ProxyReport::from_secret_data(&data(&[(state::DEVICE_FQDN, "web.ts.net")]));
        assert!(report.ingress().is_empty());
    }

    fn context() -> ProblemContext {
        ProblemContext::default()
    }

    #[test]
    fn a_reported_problem_or_pods_that_cannot_be_created_are_shown_until_it_serves() {
        let failing = ProxyReport::from_secret_data(&data(&[
            (state::PROBLEM, state::problem::AUTH_KEY_REJECTED),
            (
                state::PROBLEM_MESSAGE,
                "invalid key: API key does not exist",
            ),
        ]));
        let readiness = Readiness::of_proxy(&failing, 1, "a=b", &context(), None);
        let (status, reason, message) = readiness.parts();
        assert_eq!((status, reason), ("False", "AuthKeyRejected"));
        assert!(
            message.ends_with(": invalid key: API key does not exist"),
            "{message}"
        );
        let pods = PodsNotCreated {
            daemonset: "svc/ts-a".into(),
            desired: 1,
        };
        let empty = ProxyReport::default();
        assert_eq!(
            Readiness::of_proxy(&empty, 1, "a=b", &context(), Some(pods.clone())),
            Readiness::PodsNotCreated(pods.clone())
        );
        assert_eq!(
            Readiness::of_proxy(&empty, 0, "a=b", &context(), Some(pods.clone())),
            Readiness::NoMatchingNodes("a=b".into()),
            "no node is the first thing to fix"
        );
        let mut serving = failing.clone();
        serving.ips = vec!["100.64.0.7".parse().unwrap()];
        assert!(matches!(
            Readiness::of_proxy(&serving, 1, "a=b", &context(), Some(pods)),
            Readiness::Ready { .. }
        ));
    }

    #[test]
    fn readiness_explains_what_is_missing() {
        let waiting = ProxyReport::from_secret_data(&data(&[(state::LOGIN_URL, "https://login")]));
        assert_eq!(
            Readiness::of_proxy(&waiting, 3, "a=b", &context(), None),
            Readiness::WaitingForLogin(None)
        );
        let empty = ProxyReport::default();
        assert_eq!(
            Readiness::of_proxy(&empty, 0, "a=b", &context(), None),
            Readiness::NoMatchingNodes("a=b".into())
        );
        assert_eq!(
            Readiness::of_proxy(&empty, 2, "a=b", &context(), None),
            Readiness::WaitingForLeader
        );
        let ready = ProxyReport::from_secret_data(&data(&[
            (state::TS_IP, "100.64.0.7"),
            (state::LEADER_POD, "ts-web-abc"),
            (state::LEADER_NODE, "n1"),
        ]));
        let conditions = with_proxy_condition(
            &[],
            &Readiness::of_proxy(&ready, 1, "", &context(), None),
            Some(2),
            time("2026-01-01T00:00:00Z"),
        );
        assert_eq!(conditions[0].status, "True");
        assert_eq!(
            conditions[0].message,
            "leader ts-web-abc on node n1 forwards"
        );
    }

    #[test]
    fn the_transition_time_moves_only_when_the_status_does_and_others_are_kept() {
        let other = Condition {
            type_: "Other".into(),
            status: "True".into(),
            reason: "X".into(),
            message: String::new(),
            observed_generation: None,
            last_transition_time: time("2025-01-01T00:00:00Z"),
        };
        let first = with_proxy_condition(
            std::slice::from_ref(&other),
            &Readiness::WaitingForLeader,
            Some(1),
            time("2026-01-01T00:00:00Z"),
        );
        let later = with_proxy_condition(
            &first,
            &Readiness::NoMatchingNodes("a=b".into()),
            Some(1),
            time("2026-01-02T00:00:00Z"),
        );
        assert_eq!(later[0], other);
        assert_eq!(later[1].reason, "NoMatchingNodes");
        assert_eq!(later[1].last_transition_time, time("2026-01-01T00:00:00Z"));
        let ready = with_proxy_condition(
            &later,
            &Readiness::Ready {
                leader_pod: None,
                leader_node: None,
            },
            Some(1),
            time("2026-01-03T00:00:00Z"),
        );
        assert_eq!(ready[1].last_transition_time, time("2026-01-03T00:00:00Z"));
    }
}
