use policy_sdk::{Labels, Plan, Toleration, TolerationOperator};

use super::*;

fn good() -> Plan {
    Plan {
        node_selector: Labels::from([(
            "svc-lb.tailscale.iptables.sh/deploy".into(),
            "true".into(),
        )]),
        hostname: "shop-web".into(),
        tags: vec!["tag:k8s".into()],
        ..Plan::default()
    }
}

fn check(edit: impl FnOnce(&mut Plan)) -> Result<(), InvalidPlan> {
    let mut plan = good();
    edit(&mut plan);
    validate_final_plan(&plan, &PlanRules::default(), "shop")
}

#[test]
fn a_complete_plan_passes() {
    assert_eq!(check(|_| {}), Ok(()));
}

#[test]
fn hostname_and_tags_follow_tailscale_syntax() {
    assert!(matches!(
        check(|p| p.hostname = "Web_1".into()),
        Err(InvalidPlan::Hostname(_))
    ));
    assert!(matches!(
        check(|p| p.tags.push("prod".into())),
        Err(InvalidPlan::Tag(_))
    ));
    let rules = PlanRules {
        tag_allowlist: Some(vec!["tag:k8s".into()]),
        ..PlanRules::default()
    };
    let mut plan = good();
    assert_eq!(validate_plan(&plan, &rules, "shop"), Ok(()));
    plan.tags.push("tag:admin".into());
    assert_eq!(
        validate_plan(&plan, &rules, "shop"),
        Err(InvalidPlan::TagNotAllowed("tag:admin".into()))
    );
}

#[test]
fn lists_are_bounded() {
    let err = check(|p| p.pod_labels = (0..65).map(|i| (format!("l{i}"), "v".into())).collect());
    assert_eq!(
        err,
        Err(InvalidPlan::TooMany {
            field: "podLabels",
            count: 65,
            max: 64
        })
    );
    let err = check(|p| {
        p.pod_annotations
            .insert("big".into(), "x".repeat(MAX_ANNOTATION_BYTES));
    });
    assert!(matches!(
        err,
        Err(InvalidPlan::TooLarge {
            field: "podAnnotations",
            ..
        })
    ));
}

#[test]
fn labels_must_be_valid_and_not_reserved() {
    assert!(matches!(
        check(|p| {
            p.pod_labels.insert("bad key".into(), "v".into());
        }),
        Err(InvalidPlan::Key {
            field: "podLabels",
            ..
        })
    ));
    assert!(matches!(
        check(|p| {
            p.node_selector.insert("zone".into(), "not valid".into());
        }),
        Err(InvalidPlan::LabelValue {
            field: "nodeSelector",
            ..
        })
    ));
    assert_eq!(
        check(|p| {
            p.pod_labels
                .insert("app.kubernetes.io/managed-by".into(), "me".into());
        }),
        Err(InvalidPlan::ReservedLabel(
            "app.kubernetes.io/managed-by".into()
        ))
    );
}

#[test]
fn runtime_environment_cannot_be_overridden() {
    assert_eq!(
        check(|p| {
            p.env.insert("SVCLB_HOSTNAME".into(), "x".into());
        }),
        Err(InvalidPlan::ReservedEnv("SVCLB_HOSTNAME".into()))
    );
    for tailscaled_knob in ["TS_DEBUG_FIREWALL_MODE", "LD_PRELOAD"] {
        assert!(matches!(
            check(|p| {
                p.env.insert(tailscaled_knob.into(), "x".into());
            }),
            Err(InvalidPlan::ReservedEnv(_))
        ));
    }
    assert!(matches!(
        check(|p| {
            p.env.insert("1X".into(), "x".into());
        }),
        Err(InvalidPlan::EnvName(_))
    ));
    assert_eq!(
        check(|p| {
            p.env
                .insert("HTTP_PROXY".into(), "http://proxy:3128".into());
        }),
        Err(InvalidPlan::EnvNotAllowed("HTTP_PROXY".into())),
        "names are refused unless the operator allows them"
    );
    let rules = PlanRules {
        allowed_env: vec!["HTTP_PROXY".into()],
        ..PlanRules::default()
    };
    let mut plan = good();
    plan.env
        .insert("HTTP_PROXY".into(), "http://proxy:3128".into());
    assert_eq!(validate_final_plan(&plan, &rules, "shop"), Ok(()));
}

#[test]
fn quantities_parse_and_requests_stay_within_limits() {
    assert!(matches!(
        check(|p| {
            p.resources.limits.insert("memory".into(), "lots".into());
        }),
        Err(InvalidPlan::Quantity { .. })
    ));
    assert!(matches!(
        check(|p| {
            p.resources.requests.insert("memory".into(), "1Gi".into());
            p.resources.limits.insert("memory".into(), "64Mi".into());
        }),
        Err(InvalidPlan::RequestAboveLimit { .. })
    ));
    assert_eq!(
        check(|p| {
            p.resources.requests.insert("cpu".into(), "10m".into());
            p.resources.limits.insert("cpu".into(), "1".into());
        }),
        Ok(())
    );
}

#[test]
fn resource_names_follow_the_api_server() {
    let with = |requests: &[(&str, &str)], limits: &[(&str, &str)]| {
        let requests: Vec<(String, String)> = requests
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let limits: Vec<(String, String)> = limits
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        check(move |p| {
            p.resources.requests.extend(requests);
            p.resources.limits.extend(limits);
        })
    };
    assert_eq!(with(&[("cpu", "10m")], &[("memory", "64Mi")]), Ok(()));
    assert_eq!(with(&[], &[("squat.ai/tun", "1")]), Ok(()));
    assert_eq!(
        with(&[("squat.ai/tun", "1")], &[("squat.ai/tun", "1")]),
        Ok(())
    );
    for (requests, limits) in [
        (vec![("gpu", "1")], vec![]),
        (vec![("squat.ai/tun", "1")], vec![]),
        (vec![("squat.ai/tun", "1")], vec![("squat.ai/tun", "2")]),
        (vec![], vec![("squat.ai/tun", "500m")]),
        (vec![("hugepages-2Mi", "2Mi")], vec![]),
    ] {
        let err = with(&requests, &limits);
        assert!(
            matches!(err, Err(InvalidPlan::Resource { .. })),
            "{requests:?} {limits:?}: {err:?}"
        );
    }
}

#[test]
fn tolerations_follow_the_pod_spec_rules() {
    let toleration = |key: &str, operator, value: &str, effect: &str, seconds| Toleration {
        key: key.into(),
        operator,
        value: value.into(),
        effect: effect.into(),
        toleration_seconds: seconds,
    };
    let with = |t: Toleration| check(move |p| p.tolerations.push(t));
    assert_eq!(
        with(toleration(
            "dedicated",
            TolerationOperator::Exists,
            "",
            "",
            None
        )),
        Ok(())
    );
    assert_eq!(
        with(toleration("", TolerationOperator::Exists, "", "", None)),
        Err(InvalidPlan::TolerationNotAllowed {
            index: 0,
            key: String::new()
        }),
        "tolerating every taint needs the operator's consent"
    );
    assert_eq!(
        with(toleration(
            "k",
            TolerationOperator::Equal,
            "v",
            "NoExecute",
            Some(5)
        )),
        Ok(())
    );
    for bad in [
        toleration("k", TolerationOperator::Exists, "v", "", None),
        toleration("", TolerationOperator::Equal, "v", "", None),
        toleration("k", TolerationOperator::Equal, "v", "Sometimes", None),
        toleration("k", TolerationOperator::Equal, "v", "NoSchedule", Some(5)),
    ] {
        assert!(matches!(
            with(bad),
            Err(InvalidPlan::Toleration { index: 0, .. })
        ));
    }
}

#[test]
fn the_final_plan_needs_a_hostname_and_a_node_selector() {
    assert_eq!(
        check(|p| p.hostname.clear()),
        Err(InvalidPlan::MissingHostname)
    );
    assert_eq!(
        check(|p| p.node_selector.clear()),
        Err(InvalidPlan::MissingNodeSelector)
    );
    let mut partial = good();
    partial.hostname.clear();
    assert_eq!(
        validate_plan(&partial, &PlanRules::default(), "shop"),
        Ok(())
    );
}

#[test]
fn errors_quote_at_most_a_few_hundred_bytes_of_policy_output() {
    let long = "é".repeat(10_000);
    let err = check(|p| p.hostname = long.clone()).unwrap_err();
    assert!(err.to_string().len() < 400, "{}", err.to_string().len());
    assert!(
        err.to_string()
            .ends_with("…\" is not a DNS label (lower-case letters, digits and '-', at most 63)")
    );
}

#[test]
fn only_linux_nodes_may_be_selected() {
    assert_eq!(
        check(|p| {
            p.node_selector
                .insert("kubernetes.io/os".into(), "windows".into());
        }),
        Err(InvalidPlan::UnsupportedOs("windows".into()))
    );
    assert_eq!(
        check(|p| {
            p.node_selector
                .insert("kubernetes.io/os".into(), "linux".into());
        }),
        Ok(())
    );
}

#[test]
fn quoted_values_are_cut_and_lose_their_control_characters() {
    assert_eq!(clip("a\nb\u{1b}[31mc\td"), "a b [31mc d");
    let long = "é".repeat(200);
    let clipped = clip(&long);
    assert!(clipped.ends_with('…') && clipped.len() <= MAX_QUOTED + '…'.len_utf8());
    assert_eq!(clip("short"), "short");
}
