//! What the runtime reports into the state Secret (keys from
//! [`svc_lb_contract::state`]), as a JSON merge patch over plain data:
//! present keys are set, keys that no longer apply are removed (`null`).
//! tailscaled's own keys in the same Secret are never touched.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::ByteString;
use serde_json::{Value, json};
use svc_lb_contract::state;

use crate::tailscale::args::LoginRequest;
use crate::tailscale::status::Device;

/// The leader's view, to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// Forwarding from this device.
    Serving {
        /// The device.
        device: Device,
        /// Leader pod.
        pod: String,
        /// Its node.
        node: String,
        /// What the device last logged in with, when known.
        login_request: Option<LoginRequest>,
    },
    /// Waiting for an interactive login.
    WaitingForLogin {
        /// Where to log in.
        url: String,
        /// Leader pod.
        pod: String,
        /// Its node.
        node: String,
    },
    /// Not serving because of a problem the Service's owner can act on.
    Failing {
        /// A [`state::problem`] code.
        code: &'static str,
        /// What went wrong, in the failing part's words.
        message: String,
        /// Leader pod.
        pod: String,
        /// Its node.
        node: String,
    },
    /// Logged out after a deprovisioning request, at this RFC 3339 time.
    LoggedOut(String),
}

fn encoded(value: &str) -> Value {
    serde_json::to_value(ByteString(value.as_bytes().to_vec())).expect("bytes encode")
}

fn first_ipv4(ips: &[IpAddr]) -> Option<&IpAddr> {
    ips.iter().find(|ip| ip.is_ipv4()).or(ips.first())
}

/// The keys of `report`, each either a value or `None` (removed).
pub fn report_values(report: &Report) -> BTreeMap<&'static str, Option<String>> {
    // Every key that no longer applies is removed, except the login
    // request: it stays true while the device waits (for a login, for
    // approval) and goes only with the device's logout; and the device id,
    // which nothing but a new device replaces: a device that waits or
    // fails, or logged out, stays listed in the tailnet, and the controller
    // deletes it by that id.
    let logged_out = matches!(report, Report::LoggedOut(_));
    let mut values: BTreeMap<&'static str, Option<String>> = state::RUNTIME_KEYS
        .iter()
        .filter(|key| **key != state::LOGIN_REQUEST || logged_out)
        .filter(|key| **key != state::DEVICE_ID)
        .map(|key| (*key, None))
        .collect();
    let mut set = |key, value: String| {
        values.insert(key, Some(value));
    };
    match report {
        Report::Serving {
            device,
            pod,
            node,
            login_request,
        } => {
            if let Some(request) = login_request {
                set(
                    state::LOGIN_REQUEST,
                    serde_json::to_string(request).expect("serializable"),
                );
            }
            if let Some(ip) = first_ipv4(&device.ips) {
                set(state::TS_IP, ip.to_string());
            }
            let ips: Vec<String> = device.ips.iter().map(IpAddr::to_string).collect();
            set(state::DEVICE_IPS, json!(ips).to_string());
            set(state::DEVICE_FQDN, device.fqdn.clone());
            set(state::DEVICE_ID, device.id.clone());
            set(state::LEADER_POD, pod.clone());
            set(state::LEADER_NODE, node.clone());
        }
        Report::WaitingForLogin { url, pod, node } => {
            set(state::LOGIN_URL, url.clone());
            set(state::LEADER_POD, pod.clone());
            set(state::LEADER_NODE, node.clone());
        }
        Report::Failing {
            code,
            message,
            pod,
            node,
        } => {
            set(state::PROBLEM, code.to_string());
            set(
                state::PROBLEM_MESSAGE,
                format!("{message} (pod {pod} on node {node})"),
            );
            set(state::LEADER_POD, pod.clone());
            set(state::LEADER_NODE, node.clone());
        }
        Report::LoggedOut(at) => set(state::LOGGED_OUT, at.clone()),
    }
    values
}

/// The merge patch a pod that is not leading writes when it cannot run at
/// all (no TUN device): the problem keys only, so a leader serving from
/// another node keeps its report.
pub fn problem_patch(code: &str, message: &str) -> Value {
    let mut data = serde_json::Map::new();
    data.insert(state::PROBLEM.into(), encoded(code));
    data.insert(state::PROBLEM_MESSAGE.into(), encoded(message));
    json!({ "data": data })
}

/// The merge patch that writes `report` into the Secret's `data`.
pub fn report_patch(report: &Report) -> Value {
    let data: serde_json::Map<String, Value> = report_values(report)
        .into_iter()
        .map(|(key, value)| {
            (
                key.to_string(),
                value.as_deref().map_or(Value::Null, encoded),
            )
        })
        .collect();
    json!({ "data": data })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> Device {
        Device {
            id: "nABC".into(),
            fqdn: "default-web.tail1234.ts.net".into(),
            ips: vec![
                "100.64.0.7".parse().unwrap(),
                "fd7a:115c:a1e0::7".parse().unwrap(),
            ],
            hostname: "default-web".into(),
            tags: vec![],
        }
    }

    #[test]
    fn a_failing_leader_reports_its_problem_and_no_address() {
        let failing = Report::Failing {
            code: state::problem::TAGS_NOT_PERMITTED,
            message: "backend error: requested tags [tag:x] are invalid or not permitted".into(),
            pod: "p-1".into(),
            node: "n-1".into(),
        };
        let values = report_values(&failing);
        assert_eq!(
            values[state::PROBLEM].as_deref(),
            Some(state::problem::TAGS_NOT_PERMITTED)
        );
        assert!(
            values[state::PROBLEM_MESSAGE]
                .as_deref()
                .is_some_and(|m| m.ends_with("not permitted (pod p-1 on node n-1)"))
        );
        assert_eq!(values[state::DEVICE_IPS], None, "no address is shown");
        assert!(
            !values.contains_key(state::DEVICE_ID),
            "a failing device keeps its id"
        );
        // Serving clears the problem again.
        let serving = report_values(&Report::Serving {
            device: device(),
            pod: "p-1".into(),
            node: "n-1".into(),
            login_request: None,
        });
        assert_eq!(serving[state::PROBLEM], None);
        assert_eq!(serving[state::PROBLEM_MESSAGE], None);
    }

    #[test]
    fn the_login_request_outlives_a_wait_and_goes_with_the_logout() {
        let waiting = Report::WaitingForLogin {
            url: "https://login.example/a/1".into(),
            pod: "p".into(),
            node: "n".into(),
        };
        assert!(!report_values(&waiting).contains_key(state::LOGIN_REQUEST));
        let logged_out = report_values(&Report::LoggedOut("2026-01-01T00:00:00Z".into()));
        assert_eq!(logged_out.get(state::LOGIN_REQUEST), Some(&None));
        assert!(
            !logged_out.contains_key(state::DEVICE_ID),
            "the id of a device still listed stays"
        );
    }

    #[test]
    fn serving_reports_addresses_and_leader_and_clears_the_login_url() {
        let report = Report::Serving {
            device: device(),
            pod: "p-1".into(),
            node: "n-1".into(),
            login_request: None,
        };
        let values = report_values(&report);
        assert_eq!(values[state::TS_IP].as_deref(), Some("100.64.0.7"));
        assert_eq!(
            values[state::DEVICE_IPS].as_deref(),
            Some(r#"["100.64.0.7","fd7a:115c:a1e0::7"]"#)
        );
        assert_eq!(values[state::LEADER_NODE].as_deref(), Some("n-1"));
        assert_eq!(values[state::LOGIN_URL], None);
        let patch = report_patch(&report);
        assert_eq!(patch["data"][state::TS_IP], "MTAwLjY0LjAuNw==");
        assert_eq!(patch["data"][state::LOGIN_URL], Value::Null);
    }

    #[test]
    fn waiting_for_login_reports_the_url_and_no_address_and_logout_only_its_time() {
        let waiting = report_values(&Report::WaitingForLogin {
            url: "https://login.tailscale.com/a/1".into(),
            pod: "p".into(),
            node: "n".into(),
        });
        assert_eq!(
            waiting[state::LOGIN_URL].as_deref(),
            Some("https://login.tailscale.com/a/1")
        );
        assert_eq!(waiting[state::TS_IP], None);
        let out = report_values(&Report::LoggedOut("2026-11-26T12:00:00Z".into()));
        assert_eq!(out.values().filter(|v| v.is_some()).count(), 1);
        assert_eq!(
            out[state::LOGGED_OUT].as_deref(),
            Some("2026-11-26T12:00:00Z")
        );
    }
}
