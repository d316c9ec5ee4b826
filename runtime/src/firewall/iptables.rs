//! The same forwarding as [`super::nft`] for hosts without nftables, as
//! `iptables-restore` / `ip6tables-restore` input (one per family). Our
//! rules live in chains of our own, flushed and refilled in one restore
//! (`--noflush` keeps everyone else's); the built-in chains only get a jump
//! to each, added once.
//!
//! ```text
//! *mangle   SVCLB-FILTER  (from PREROUTING)   allowed sources RETURN, the rest of the Service's traffic DROP
//!           SVCLB-MSS     (from FORWARD)      -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu
//! *nat      SVCLB-DNAT    (from PREROUTING)   -d <ts> -p tcp -m multiport --dports 80,443 -j DNAT --to-destination <cluster>
//!           SVCLB-MASQ    (from POSTROUTING)  -d <cluster> -m conntrack --ctstate DNAT -j MASQUERADE
//! ```

use std::net::IpAddr;

use svc_lb_contract::ports::Protocol;

use super::plan::ForwardingPlan;

/// Our chains: `(table, chain, built-in chain that jumps to it)`.
pub const CHAINS: [(&str, &str, &str); 4] = [
    ("mangle", "SVCLB-FILTER", "PREROUTING"),
    ("mangle", "SVCLB-MSS", "FORWARD"),
    ("nat", "SVCLB-DNAT", "PREROUTING"),
    ("nat", "SVCLB-MASQ", "POSTROUTING"),
];

fn host(ip: &IpAddr) -> String {
    format!("{ip}/{}", if ip.is_ipv4() { 32 } else { 128 })
}

/// `iptables-restore --noflush` input for the addresses of one family
/// (`ipv4` selects IPv4, else IPv6).
pub fn restore_input(plan: &ForwardingPlan, ipv4: bool) -> String {
    let pairs: Vec<&(IpAddr, IpAddr)> = plan
        .pairs
        .iter()
        .filter(|(ts, _)| ts.is_ipv4() == ipv4)
        .collect();
    let mut mangle = vec![
        "*mangle".to_string(),
        ":SVCLB-FILTER - [0:0]".to_string(),
        ":SVCLB-MSS - [0:0]".to_string(),
    ];
    // TCP between the tailnet and the Service passes two paths of different
    // MTUs: clamp the MSS of forwarded SYNs to the route's, as containerboot
    // does, so no path depends on ICMP "fragmentation needed" reaching the
    // sender. Only where this family forwards TCP at all.
    if !pairs.is_empty() && plan.ports.iter().any(|p| p.protocol == Protocol::Tcp) {
        mangle.push(
            "-A SVCLB-MSS -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu".to_string(),
        );
    }
    let mut nat = vec![
        "*nat".to_string(),
        ":SVCLB-DNAT - [0:0]".to_string(),
        ":SVCLB-MASQ - [0:0]".to_string(),
    ];
    for protocol in [Protocol::Tcp, Protocol::Udp, Protocol::Sctp] {
        let mut ports: Vec<u16> = plan
            .ports
            .iter()
            .filter(|p| p.protocol == protocol)
            .map(|p| p.port)
            .collect();
        ports.sort_unstable();
        ports.dedup();
        if ports.is_empty() {
            continue;
        }
        let ports = ports
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(",");
        for (ts, cluster) in &pairs {
            let matched = format!(
                "-d {} -p {} -m multiport --dports {ports}",
                host(ts),
                protocol.as_str()
            );
            if !plan.source_ranges.is_empty() {
                for range in plan
                    .source_ranges
                    .iter()
                    .filter(|r| r.addr().is_ipv4() == ipv4)
                {
                    mangle.push(format!("-A SVCLB-FILTER {matched} -s {range} -j RETURN"));
                }
                mangle.push(format!("-A SVCLB-FILTER {matched} -j DROP"));
            }
            nat.push(format!(
                "-A SVCLB-DNAT {matched} -j DNAT --to-destination {cluster}"
            ));
        }
    }
    let mut clusters: Vec<&IpAddr> = pairs.iter().map(|(_, c)| c).collect();
    clusters.dedup();
    for cluster in clusters {
        nat.push(format!(
            "-A SVCLB-MASQ -d {} -m conntrack --ctstate DNAT -j MASQUERADE",
            host(cluster)
        ));
    }
    mangle.push("COMMIT".into());
    nat.push("COMMIT".into());
    mangle.extend(nat);
    mangle.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use svc_lb_contract::ports::parse_ports;

    #[test]
    fn rules_per_family_with_source_ranges() {
        let plan = ForwardingPlan::new(
            &[
                "100.64.0.7".parse().unwrap(),
                "fd7a:115c:a1e0::7".parse().unwrap(),
            ],
            &[
                "10.96.0.10".parse().unwrap(),
                "fd00:10:96::a".parse().unwrap(),
            ],
            parse_ports("tcp/443,tcp/80,udp/53").unwrap(),
            vec!["100.100.0.0/24".parse().unwrap()],
        );
        assert_eq!(
            restore_input(&plan, true),
            "*mangle\n:SVCLB-FILTER - [0:0]\n:SVCLB-MSS - [0:0]\n\
             -A SVCLB-MSS -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu\n\
             -A SVCLB-FILTER -d 100.64.0.7/32 -p tcp -m multiport --dports 80,443 -s 100.100.0.0/24 -j RETURN\n\
             -A SVCLB-FILTER -d 100.64.0.7/32 -p tcp -m multiport --dports 80,443 -j DROP\n\
             -A SVCLB-FILTER -d 100.64.0.7/32 -p udp -m multiport --dports 53 -s 100.100.0.0/24 -j RETURN\n\
             -A SVCLB-FILTER -d 100.64.0.7/32 -p udp -m multiport --dports 53 -j DROP\n\
             COMMIT\n\
             *nat\n:SVCLB-DNAT - [0:0]\n:SVCLB-MASQ - [0:0]\n\
             -A SVCLB-DNAT -d 100.64.0.7/32 -p tcp -m multiport --dports 80,443 -j DNAT --to-destination 10.96.0.10\n\
             -A SVCLB-DNAT -d 100.64.0.7/32 -p udp -m multiport --dports 53 -j DNAT --to-destination 10.96.0.10\n\
             -A SVCLB-MASQ -d 10.96.0.10/32 -m conntrack --ctstate DNAT -j MASQUERADE\n\
             COMMIT\n"
        );
        // No IPv6 range: every IPv6 source is dropped.
        let v6 = restore_input(&plan, false);
        assert!(v6.contains("-A SVCLB-FILTER -d fd7a:115c:a1e0::7/128 -p tcp -m multiport --dports 80,443 -j DROP"), "{v6}");
        assert!(!v6.contains("RETURN"), "{v6}");
        assert!(v6.contains("--to-destination fd00:10:96::a"), "{v6}");
    }
}
