//! Pod networking of one node, as the CNI `bridge` plugin with
//! `host-local` IPAM sets it up: a bridge in the node's network namespace
//! holding the gateway address of the node's pod range, and per pod a
//! network namespace whose `eth0` is one end of a veth pair, the other end
//! on the bridge, with the default route through the gateway. The node
//! forwards between pods and the rest of its network.
//!
//! It runs iproute2's `ip`, as the tests and the runtime's own tooling do.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use tokio::process::Command;

/// A network setup step failed.
#[derive(Debug, thiserror::Error)]
#[error("ip {args}: {message}")]
pub struct NetworkError {
    args: String,
    message: String,
}

async fn ip(args: &[&str]) -> Result<(), NetworkError> {
    let error = |message: String| NetworkError {
        args: args.join(" "),
        message,
    };
    let output = Command::new("ip")
        .args(args)
        .output()
        .await
        .map_err(|e| error(e.to_string()))?;
    if !output.status.success() {
        return Err(error(String::from_utf8_lossy(&output.stderr).trim().into()));
    }
    Ok(())
}

/// The node's pod network: a /24 whose `.1` is the gateway.
#[derive(Debug, Clone)]
pub struct PodNetwork {
    /// The bridge's name.
    pub bridge: String,
    /// The range's first three octets, e.g. `[10, 200, 0]`.
    pub prefix: [u8; 3],
    /// Prefix of the names of the namespaces and links this agent makes.
    pub name_prefix: String,
}

impl PodNetwork {
    /// The gateway (the bridge's address).
    pub fn gateway(&self) -> Ipv4Addr {
        let [a, b, c] = self.prefix;
        Ipv4Addr::new(a, b, c, 1)
    }

    /// The lowest free pod address (`.2` to `.254`), given those in use.
    pub fn allocate(&self, in_use: &BTreeSet<Ipv4Addr>) -> Option<Ipv4Addr> {
        let [a, b, c] = self.prefix;
        (2..=254)
            .map(|d| Ipv4Addr::new(a, b, c, d))
            .find(|ip| !in_use.contains(ip))
    }

    /// Makes the bridge (once) and lets the node forward.
    pub async fn set_up_node(&self) -> Result<(), NetworkError> {
        if ip(&["link", "show", &self.bridge]).await.is_err() {
            // A fixed address: a bridge without one takes the lowest of its
            // ports' and changes it when that port goes, and every pod's
            // cached gateway address then points nowhere until its ARP
            // entry ages out (the CNI bridge plugin fixes it too).
            let [a, b, c] = self.prefix;
            let mac = format!("02:00:{a:02x}:{b:02x}:{c:02x}:01");
            ip(&[
                "link",
                "add",
                &self.bridge,
                "address",
                &mac,
                "type",
                "bridge",
            ])
            .await?;
            let gateway = format!("{}/24", self.gateway());
            ip(&["addr", "add", &gateway, "dev", &self.bridge]).await?;
        }
        ip(&["link", "set", &self.bridge, "up"]).await?;
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").map_err(|e| NetworkError {
            args: "sysctl net.ipv4.ip_forward=1".into(),
            message: e.to_string(),
        })
    }

    /// The network namespace's name of pod `id`.
    pub fn netns(&self, id: &str) -> String {
        format!("{}{id}", self.name_prefix)
    }

    /// Makes pod `id`'s namespace with address `address`.
    pub async fn add_pod(&self, id: &str, address: Ipv4Addr) -> Result<String, NetworkError> {
        let netns = self.netns(id);
        let host_end = format!("v{}", &id[..id.len().min(12)]);
        ip(&["netns", "add", &netns]).await?;
        ip(&[
            "link", "add", &host_end, "type", "veth", "peer", "name", "eth0", "netns", &netns,
        ])
        .await?;
        ip(&["link", "set", &host_end, "master", &self.bridge, "up"]).await?;
        let cidr = format!("{address}/24");
        for args in [
            vec!["addr", "add", &cidr, "dev", "eth0"],
            vec!["link", "set", "eth0", "up"],
            vec!["link", "set", "lo", "up"],
        ] {
            let mut all = vec!["-n", netns.as_str()];
            all.extend(args);
            ip(&all).await?;
        }
        let gateway = self.gateway().to_string();
        ip(&["-n", &netns, "route", "add", "default", "via", &gateway]).await?;
        Ok(netns)
    }

    /// Removes pod `id`'s namespace (its veth pair goes with it).
    pub async fn remove_pod(&self, id: &str) {
        let _ = ip(&["netns", "del", &self.netns(id)]).await;
    }

    /// Removes every namespace of this agent's prefix (leftovers of an
    /// earlier run).
    pub async fn remove_leftovers(&self) {
        let Ok(output) = Command::new("ip").args(["netns", "list"]).output().await else {
            return;
        };
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            if let Some(name) = line.split_whitespace().next()
                && name.starts_with(&self.name_prefix)
            {
                let _ = ip(&["netns", "del", name]).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_handed_out_lowest_first_from_two() {
        let network = PodNetwork {
            bridge: "cbr0".into(),
            prefix: [10, 200, 3],
            name_prefix: "svclb-p-".into(),
        };
        assert_eq!(network.gateway(), Ipv4Addr::new(10, 200, 3, 1));
        let mut used = BTreeSet::new();
        assert_eq!(network.allocate(&used), Some(Ipv4Addr::new(10, 200, 3, 2)));
        used.insert(Ipv4Addr::new(10, 200, 3, 2));
        assert_eq!(network.allocate(&used), Some(Ipv4Addr::new(10, 200, 3, 3)));
        let all: BTreeSet<_> = (2..=254).map(|d| Ipv4Addr::new(10, 200, 3, d)).collect();
        assert_eq!(network.allocate(&all), None);
    }
}
