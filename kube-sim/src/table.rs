//! `meta.k8s.io/v1` Table responses (`Accept: …;as=Table`), which kubectl
//! asks for to print `kubectl get`. Services get kubectl's usual columns
//! (EXTERNAL-IP included); every other type gets NAME and AGE.

use serde_json::{Value, json};

use crate::registry::ResourceType;

/// Whether the request's `Accept` header asks for a Table.
pub fn wants_table(accept: &str) -> bool {
    accept.contains("as=Table")
}

fn column(name: &str, format: &str) -> Value {
    json!({"name": name, "type": "string", "format": format, "description": "", "priority": 0})
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

/// A Table of `objects` of type `rt`.
pub fn table(rt: &ResourceType, objects: &[Value], resource_version: Option<u64>) -> Value {
    let service = rt.group.is_empty() && rt.plural == "services";
    let columns = if service {
        vec![
            column("Name", "name"),
            column("Type", ""),
            column("Cluster-IP", ""),
            column("External-IP", ""),
            column("Port(s)", ""),
            column("Age", ""),
        ]
    } else {
        vec![column("Name", "name"), column("Age", "")]
    };
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            let cells = if service {
                service_cells(object)
            } else {
                vec![json!(object["metadata"]["name"]), json!(age(object))]
            };
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
}
