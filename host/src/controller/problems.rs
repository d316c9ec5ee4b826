//! Why a proxy that does not serve is stuck, in words its Service's owner
//! can act on: the problem the runtime reported in the state Secret (a
//! [`svc_lb_contract::state::problem`] code and the failing part's own
//! message), or a DaemonSet that cannot create its pods (Pod Security
//! admission, a quota). Pure functions.

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::jiff::Timestamp;
use svc_lb_contract::state::problem;

/// Condition reason of a problem code the controller does not know (a
/// newer runtime's).
pub const UNKNOWN_PROBLEM: &str = "ProxyFailing";

/// What the owner-facing text may name besides the runtime's message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProblemContext {
    /// The tags the plan asks for.
    pub tags: Vec<String>,
    /// `namespace/name` of the auth-key Secret.
    pub auth_key_secret: String,
    /// Keys are minted per proxy with an OAuth client.
    pub oauth: bool,
}

/// The condition reason (the code, if known) and message of a problem.
pub fn problem_condition(
    code: &str,
    message: &str,
    context: &ProblemContext,
) -> (&'static str, String) {
    let known = problem::ALL.iter().copied().find(|c| *c == code);
    let advice = match known {
        Some(problem::TAGS_NOT_PERMITTED) => format!(
            "the tailnet refused the tags {}: the auth key or OAuth client must be allowed to \
             use them (tagOwners in the tailnet policy file), or the Service must ask for others",
            if context.tags.is_empty() {
                "asked for".to_string()
            } else {
                context.tags.join(", ")
            }
        ),
        Some(problem::AUTH_KEY_REJECTED) if context.oauth => "the tailnet refused the auth key \
             minted for this proxy (expired or used up): the controller revokes it and mints \
             another"
            .to_string(),
        Some(problem::AUTH_KEY_REJECTED) => format!(
            "the tailnet refused the auth key (unknown, expired, revoked or already used): put a \
             valid reusable key in Secret {} under ts-auth-key",
            context.auth_key_secret
        ),
        Some(problem::LOGIN_FAILED) => "logging the device in failed".to_string(),
        Some(problem::NEEDS_APPROVAL) => "the device waits for approval by a tailnet admin \
             (device approval is on): approve it in the admin console, or use a pre-approved \
             auth key"
            .to_string(),
        Some(problem::NO_TUN_DEVICE) => "a proxy pod cannot open /dev/net/tun: the node's \
             container runtime refuses the TUN device; run the proxies privileged (the \
             controller's --proxy-privileges privileged) or provide the device"
            .to_string(),
        Some(problem::FORWARDING_DISABLED) => "IP forwarding is off in the proxy pod (its init \
             container could not enable it)"
            .to_string(),
        Some(problem::FIREWALL_FAILED) => {
            "the proxy could not install its forwarding rules".to_string()
        }
        _ => format!("the proxy reports {code:?}"),
    };
    (
        known.unwrap_or(UNKNOWN_PROBLEM),
        format!("{advice}: {message}"),
    )
}

/// A DaemonSet that should run pods but has none, for longer than `grace`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodsNotCreated {
    /// `namespace/name` of the DaemonSet.
    pub daemonset: String,
    /// Pods it should run.
    pub desired: i32,
}

impl PodsNotCreated {
    /// The condition message.
    pub fn message(&self) -> String {
        let (namespace, name) = self
            .daemonset
            .split_once('/')
            .unwrap_or(("", &self.daemonset));
        format!(
            "DaemonSet {} should run {} pod(s) but none could be created: Pod Security \
             admission, a ResourceQuota or a LimitRange may refuse them (`kubectl -n {namespace} \
             describe daemonset {name}` shows why)",
            self.daemonset, self.desired
        )
    }
}

/// What a DaemonSet's counts say about its pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodsCheck {
    /// It has pods, or wants none, or has not been counted yet.
    Fine,
    /// It wants pods and has none, but is younger than the grace: look
    /// again after this long.
    Recheck(std::time::Duration),
    /// It wants pods and has had none for longer than the grace.
    Stuck(PodsNotCreated),
}

/// Whether `daemonset` wants pods and has none at all (as its controller
/// last counted), for longer than `grace` since its creation.
pub fn pods_not_created(
    daemonset: &DaemonSet,
    now: Timestamp,
    grace: std::time::Duration,
) -> PodsCheck {
    let (Some(status), Some(created)) = (
        daemonset.status.as_ref(),
        daemonset.metadata.creation_timestamp.as_ref(),
    ) else {
        return PodsCheck::Fine;
    };
    let counted = status.observed_generation.is_some()
        && status.observed_generation == daemonset.metadata.generation;
    let none = status.current_number_scheduled == 0 && status.number_misscheduled == 0;
    if !(counted && status.desired_number_scheduled > 0 && none) {
        return PodsCheck::Fine;
    }
    let age = now.duration_since(created.0).unsigned_abs();
    if age < grace {
        return PodsCheck::Recheck(grace - age);
    }
    PodsCheck::Stuck(PodsNotCreated {
        daemonset: format!(
            "{}/{}",
            daemonset.metadata.namespace.as_deref().unwrap_or_default(),
            daemonset.metadata.name.as_deref().unwrap_or_default()
        ),
        desired: status.desired_number_scheduled,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> ProblemContext {
        ProblemContext {
            tags: vec!["tag:web".into()],
            auth_key_secret: "tailscale-svc-lb/tailscale-svc-lb".into(),
            oauth: false,
        }
    }

    #[test]
    fn each_problem_says_what_to_do_and_keeps_the_runtimes_words() {
        let (reason, message) = problem_condition(
            problem::TAGS_NOT_PERMITTED,
            "backend error: requested tags [tag:web] are invalid or not permitted (pod p on node n)",
            &context(),
        );
        assert_eq!(reason, "TagsNotPermitted");
        assert!(
            message.starts_with("the tailnet refused the tags tag:web: "),
            "{message}"
        );
        assert!(
            message.ends_with("not permitted (pod p on node n)"),
            "{message}"
        );
        let (reason, message) =
            problem_condition(problem::AUTH_KEY_REJECTED, "invalid key", &context());
        assert_eq!(reason, "AuthKeyRejected");
        assert!(
            message.contains("Secret tailscale-svc-lb/tailscale-svc-lb"),
            "{message}"
        );
        for code in problem::ALL {
            let (reason, message) = problem_condition(code, "m", &context());
            assert_eq!(reason, *code);
            assert!(message.ends_with(": m") && message.len() > 20, "{message}");
        }
        let (reason, message) = problem_condition("SomethingNew", "m", &context());
        assert_eq!(reason, UNKNOWN_PROBLEM);
        assert!(message.contains("SomethingNew"));
    }

    fn daemonset(age_secs: i64, desired: i32, current: i32) -> DaemonSet {
        let now = Timestamp::now();
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "ts-a-b-1", "namespace": "svc", "generation": 2,
                         "creationTimestamp": (now - std::time::Duration::from_secs(age_secs as u64)).to_string()},
            "status": {"desiredNumberScheduled": desired, "currentNumberScheduled": current,
                       "numberMisscheduled": 0, "numberReady": 0, "observedGeneration": 2}
        }))
        .unwrap()
    }

    #[test]
    fn a_daemonset_without_any_pod_after_the_grace_is_reported() {
        let grace = std::time::Duration::from_secs(30);
        let now = Timestamp::now();
        let PodsCheck::Stuck(stuck) = pods_not_created(&daemonset(60, 2, 0), now, grace) else {
            panic!("stuck");
        };
        assert_eq!(stuck.desired, 2);
        assert!(stuck.message().contains("describe daemonset ts-a-b-1"));
        let PodsCheck::Recheck(after) = pods_not_created(&daemonset(5, 2, 0), now, grace) else {
            panic!("too young: looked at again later");
        };
        assert!(after > std::time::Duration::from_secs(20) && after <= grace);
        let fine = |ds| pods_not_created(&ds, now, grace) == PodsCheck::Fine;
        assert!(fine(daemonset(60, 2, 1)), "has a pod");
        assert!(fine(daemonset(60, 0, 0)), "no node");
    }
}
