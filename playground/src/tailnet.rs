//! The pod cluster's tailnet: a relay every device's fake tailscaled
//! relays its TUN device through (and the client's peer with them), or, for
//! the throughput bench, a bridge in the client's namespace with a veth per
//! pod (a kernel path); and the overlay the pods get for it.

use std::process::{Child, Command, Stdio};

use node_agent::kubelet::container::Overlay;

use crate::cluster::{fake_binary, ip, must};

/// The tailnet's data path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tailnet {
    /// Every device's TUN device, relayed over UDP.
    Relay,
    /// A veth per pod on one bridge (a kernel path).
    Bridge,
}

/// The tailnet relay's address (in the service namespace).
pub const RELAY: &str = "10.96.0.2:3478";

/// The test overlay: the fake tailnet's folder in every container, and the
/// relay's address or a hook that gives each pod a `tailscale0` veth on the
/// tailnet bridge.
pub fn overlay(dir: &std::path::Path, client_ns: &str, tailnet: Tailnet) -> Overlay {
    let mut env = vec![
        ("FAKE_TAILNET_DIR".to_string(), "/tailnet".to_string()),
        (
            "RUST_LOG".into(),
            "info,tailscale_svc_lb_runtime=debug".into(),
        ),
    ];
    let mounts = vec![(dir.join("tailnet"), "/tailnet".to_string())];
    if tailnet == Tailnet::Relay {
        env.push(("FAKE_TAILNET_RELAY".into(), RELAY.into()));
        return Overlay {
            env,
            mounts,
            network_hook: None,
        };
    }
    let hook = dir.join("tailnet-link.sh");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\nset -e\npeer=\"t$(printf %s \"$POD_NETNS\" | tail -c 12)\"\n\
             ip link add \"$peer\" netns {client_ns} type veth peer name tailscale0 netns \"$POD_NETNS\"\n\
             ip -n {client_ns} link set \"$peer\" master tnet up\n"
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    Overlay {
        env,
        mounts,
        network_hook: Some(hook),
    }
}

/// Sets up the tailnet between the client's and the Service network's
/// namespaces; the relay and the client's peer, if any, to stop at the end.
pub fn set_up_tailnet(client_ns: &str, service_ns: &str, id: &str, tailnet: Tailnet) -> Vec<Child> {
    let mut servers = Vec::new();
    match tailnet {
        Tailnet::Bridge => {
            ip(client_ns, &["link", "add", "tnet", "type", "bridge"]);
            ip(
                client_ns,
                &["addr", "add", "100.64.255.1/10", "dev", "tnet"],
            );
            ip(client_ns, &["link", "set", "tnet", "up"]);
            // The bridge follows a device to its new pod at once.
            let locktime = "echo 0 > /proc/sys/net/ipv4/neigh/tnet/locktime";
            must("ip", &["netns", "exec", client_ns, "sh", "-c", locktime]);
        }
        Tailnet::Relay => {
            let (c, s) = (format!("c-{id}"), format!("s-{id}"));
            must(
                "ip",
                &[
                    "link", "add", &c, "netns", client_ns, "type", "veth", "peer", "name", &s,
                    "netns", service_ns,
                ],
            );
            ip(client_ns, &["addr", "add", "10.202.0.1/24", "dev", &c]);
            ip(client_ns, &["link", "set", &c, "up"]);
            ip(
                client_ns,
                &["route", "add", "10.96.0.0/16", "via", "10.202.0.2"],
            );
            ip(service_ns, &["addr", "add", "10.202.0.2/24", "dev", &s]);
            ip(service_ns, &["link", "set", &s, "up"]);
            ip(service_ns, &["addr", "add", "10.96.0.2/32", "dev", "lo"]);
            for (ns, args) in [
                (service_ns, vec!["relay", RELAY]),
                (client_ns, vec!["peer", "100.64.255.1", RELAY]),
            ] {
                let child = Command::new("ip")
                    .args(["netns", "exec", ns])
                    .arg(fake_binary())
                    .args(args)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap();
                servers.push(child);
            }
        }
    }
    servers
}
