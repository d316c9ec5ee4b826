//! What to forward, from plain data: the Tailscale addresses of the device,
//! the Service's ClusterIPs, ports and allowed source ranges. Each Tailscale
//! address is paired with the ClusterIP of its family; a family the Service
//! has no ClusterIP for is not forwarded (there is no NAT64 here).

use std::net::IpAddr;

use ipnet::IpNet;
use svc_lb_contract::ports::PortSpec;

/// Everything the firewall rules are made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardingPlan {
    /// Tailscale address → ClusterIP of the same family.
    pub pairs: Vec<(IpAddr, IpAddr)>,
    /// Forwarded ports (same number on both sides).
    pub ports: Vec<PortSpec>,
    /// When not empty, the only sources allowed to reach the ports
    /// (`spec.loadBalancerSourceRanges`); others are dropped.
    pub source_ranges: Vec<IpNet>,
}

impl ForwardingPlan {
    /// Pairs every Tailscale address with the first ClusterIP of its family.
    pub fn new(
        tailscale_ips: &[IpAddr],
        cluster_ips: &[IpAddr],
        ports: Vec<PortSpec>,
        source_ranges: Vec<IpNet>,
    ) -> Self {
        let pairs = tailscale_ips
            .iter()
            .filter_map(|ts| {
                let cluster = cluster_ips.iter().find(|c| c.is_ipv4() == ts.is_ipv4())?;
                Some((*ts, *cluster))
            })
            .collect();
        Self {
            pairs,
            ports,
            source_ranges,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_tailscale_address_pairs_with_the_cluster_ip_of_its_family() {
        let ts: Vec<IpAddr> = vec![
            "100.64.0.7".parse().unwrap(),
            "fd7a:115c:a1e0::7".parse().unwrap(),
        ];
        let single_stack: Vec<IpAddr> = vec!["10.96.0.10".parse().unwrap()];
        let plan = ForwardingPlan::new(&ts, &single_stack, vec![], vec![]);
        assert_eq!(plan.pairs, vec![(ts[0], single_stack[0])]);
        let dual: Vec<IpAddr> = vec![
            "fd00:10:96::a".parse().unwrap(),
            "10.96.0.10".parse().unwrap(),
        ];
        let plan = ForwardingPlan::new(&ts, &dual, vec![], vec![]);
        assert_eq!(plan.pairs, vec![(ts[0], dual[1]), (ts[1], dual[0])]);
    }
}
