//! `meta.k8s.io/v1` Table responses (`Accept: …;as=Table`), which kubectl
//! asks for to print `kubectl get`. Services, Pods and DaemonSets get the
//! real server's columns (`pkg/printers/internalversion`: EXTERNAL-IP;
//! READY, STATUS, RESTARTS, and IP and NODE with `-o wide`; DESIRED …
//! NODE SELECTOR); every other type gets NAME and AGE.

use serde_json::{Value, json};

use crate::registry::ResourceType;

/// Whether the request's `Accept` header asks for a Table.
pub fn wants_table(accept: &str) -> bool {
    accept.contains("as=Table")
}

fn column(name: &str, format: &str) -> Value {
    json!({"name": name, "type": "string", "format": format, "description": "", "priority": 0})
}

/// A column kubectl shows only with `-o wide`.
fn wide(name: &str) -> Value {
    json!({"name": name, "type": "string", "format": "", "description": "", "priority": 1})
}

fn pod_columns() -> Vec<Value> {
    vec![
        column("Name", "name"),
        column("Ready", ""),
        column("Status", ""),
        column("Restarts", ""),
        column("Age", ""),
        wide("IP"),
        wide("Node"),
    ]
}

/// A pod's row (`printPod`): ready containers, the status (a waiting
/// container's reason, `Terminating`, else the phase), restarts.
fn pod_cells(pod: &Value) -> Vec<Value> {
    let statuses = pod["status"]["containerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let total = pod["spec"]["containers"].as_array().map_or(0, Vec::len);
    let ready = statuses.iter().filter(|c| c["ready"] == true).count();
    let restarts: i64 = statuses
        .iter()
        .filter_map(|c| c["restartCount"].as_i64())
        .sum();
    let waiting = statuses
        .iter()
        .find_map(|c| c["state"]["waiting"]["reason"].as_str());
    let status = if !pod["metadata"]["deletionTimestamp"].is_null() {
        "Terminating"
    } else {
        waiting.unwrap_or_else(|| pod["status"]["phase"].as_str().unwrap_or("Pending"))
    };
    let or_none = |v: &Value| json!(v.as_str().unwrap_or("<none>"));
    vec![
        json!(pod["metadata"]["name"]),
        json!(format!("{ready}/{total}")),
        json!(status),
        json!(restarts),
        json!(age(pod)),
        or_none(&pod["status"]["podIP"]),
        or_none(&pod["spec"]["nodeName"]),
    ]
}

fn daemonset_columns() -> Vec<Value> {
    [
        "Name",
        "Desired",
        "Current",
        "Ready",
        "Up-to-date",
        "Available",
        "Node Selector",
        "Age",
    ]
    .iter()
    .enumerate()
    .map(|(i, n)| column(n, if i == 0 { "name" } else { "" }))
    .collect()
}

fn daemonset_cells(ds: &Value) -> Vec<Value> {
    let status = &ds["status"];
    let count = |field: &str| json!(status[field].as_i64().unwrap_or(0));
    let selector = ds["spec"]["template"]["spec"]["nodeSelector"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "<none>".into());
    vec![
        json!(ds["metadata"]["name"]),
        count("desiredNumberScheduled"),
        count("currentNumberScheduled"),
        count("numberReady"),
        count("updatedNumberScheduled"),
        count("numberAvailable"),
        json!(selector),
        json!(age(ds)),
    ]
}

/// Age as kubectl prints it (`42s`, `5m`, `3h`, `2d`).
fn age(object: &Value) -> String {
    let Some(created) = object["metadata"]["creationTimestamp"]
        .as_str()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
    else {
        return "<unknown>".into();
    };
    let seconds = (jiff::Timestamp::now().as_second() - created.as_second()).max(0);
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

fn service_cells(service: &Value) -> Vec<Value> {
    let spec = &service["spec"];
    let type_ = spec["type"].as_str().unwrap_or("ClusterIP");
    let ingress: Vec<&str> = service["status"]["loadBalancer"]["ingress"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter_map(|e| e["ip"].as_str().or_else(|| e["hostname"].as_str()))
                .collect()
        })
        .unwrap_or_default();
    let external = match (ingress.is_empty(), type_) {
        (false, _) => ingress.join(","),
        (true, "LoadBalancer") => "<pending>".into(),
        (true, _) => "<none>".into(),
    };
    let ports: Vec<String> = spec["ports"]
        .as_array()
        .map(|ports| {
            ports
                .iter()
                .map(|p| format!("{}/{}", p["port"], p["protocol"].as_str().unwrap_or("TCP")))
                .collect()
        })
        .unwrap_or_default();
    vec![
        json!(service["metadata"]["name"]),
        json!(type_),
        json!(spec["clusterIP"].as_str().unwrap_or("<none>")),
        json!(external),
        json!(if ports.is_empty() {
            "<none>".to_string()
        } else {
            ports.join(",")
        }),
        json!(age(service)),
    ]
}

/// A type's row maker.
type Cells<'a> = &'a dyn Fn(&Value) -> Vec<Value>;

/// A Table of `objects` of type `rt`.
pub fn table(rt: &ResourceType, objects: &[Value], resource_version: Option<u64>) -> Value {
    let service_columns = || {
        vec![
            column("Name", "name"),
            column("Type", ""),
            column("Cluster-IP", ""),
            column("External-IP", ""),
            column("Port(s)", ""),
            column("Age", ""),
        ]
    };
    let name_and_age = |object: &Value| vec![json!(object["metadata"]["name"]), json!(age(object))];
    let (columns, cells_of): (Vec<Value>, Cells) = match (rt.group, rt.plural) {
        ("", "services") => (service_columns(), &service_cells),
        ("", "pods") => (pod_columns(), &pod_cells),
        ("apps", "daemonsets") => (daemonset_columns(), &daemonset_cells),
        _ => (
            vec![column("Name", "name"), column("Age", "")],
            &name_and_age,
        ),
    };
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            let cells = cells_of(object);
            json!({
                "cells": cells,
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": object["metadata"],
                },
            })
        })
        .collect();
    let mut metadata = json!({});
    if let Some(version) = resource_version {
        metadata["resourceVersion"] = json!(version.to_string());
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": columns,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::find;

    #[test]
    fn services_show_their_external_ip_or_pending() {
        let services = find("", "v1", "services").unwrap();
        let with_ip = json!({"metadata": {"name": "a"}, "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.10",
            "ports": [{"port": 80, "protocol": "TCP"}]}, "status": {"loadBalancer": {"ingress": [{"ip": "100.64.0.7"}]}}});
        let pending = json!({"metadata": {"name": "b"}, "spec": {"type": "LoadBalancer"}});
        let t = table(services, &[with_ip, pending], None);
        assert_eq!(t["columnDefinitions"][3]["name"], "External-IP");
        assert_eq!(t["rows"][0]["cells"][3], "100.64.0.7");
        assert_eq!(t["rows"][0]["cells"][4], "80/TCP");
        assert_eq!(t["rows"][1]["cells"][3], "<pending>");
    }

    #[test]
    fn pods_show_readiness_status_restarts_and_their_node_when_wide() {
        let pods = find("", "v1", "pods").unwrap();
        let pod = json!({"metadata": {"name": "p"},
            "spec": {"nodeName": "node-1", "containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Running", "podIP": "10.200.1.2", "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 2, "state": {"running": {}}},
                {"name": "b", "ready": false, "restartCount": 1,
                 "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}});
        let t = table(pods, &[pod], None);
        let cells = &t["rows"][0]["cells"];
        assert_eq!(cells[1], "1/2");
        assert_eq!(cells[2], "CrashLoopBackOff");
        assert_eq!(cells[3], 3);
        assert_eq!(
            (t["columnDefinitions"][6]["name"].clone(), cells[6].clone()),
            (json!("Node"), json!("node-1"))
        );
        assert_eq!(t["columnDefinitions"][6]["priority"], 1);
    }
}
