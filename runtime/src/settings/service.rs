//! What the forwarding needs to know about the Service, and which firewall
//! to use.

use std::net::IpAddr;

use ipnet::IpNet;
use svc_lb_contract::env;
use svc_lb_contract::ports::{PortSpec, parse_ports};

use super::{InvalidSetting, Reader};

/// Which firewall to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirewallMode {
    /// nftables if it works in this network namespace, else iptables.
    Auto,
    /// nftables.
    Nftables,
    /// iptables.
    Iptables,
}

impl FirewallMode {
    /// Reads `SVCLB_FIREWALL_MODE` (unset or empty: auto).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, InvalidSetting> {
        Self::read(&Reader(lookup))
    }

    pub(super) fn read<F: Fn(&str) -> Option<String>>(
        read: &Reader<F>,
    ) -> Result<Self, InvalidSetting> {
        match read.optional(env::FIREWALL_MODE).as_deref() {
            None | Some("auto") => Ok(Self::Auto),
            Some("nftables") => Ok(Self::Nftables),
            Some("iptables") => Ok(Self::Iptables),
            Some(other) => Err(InvalidSetting {
                variable: env::FIREWALL_MODE,
                problem: format!("{other:?} is not auto, nftables or iptables"),
            }),
        }
    }
}

/// What the forwarding needs to know about the Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSettings {
    /// The Service's ClusterIPs.
    pub cluster_ips: Vec<IpAddr>,
    /// Forwarded ports.
    pub ports: Vec<PortSpec>,
    /// Allowed sources; empty allows any.
    pub source_ranges: Vec<IpNet>,
}

impl ServiceSettings {
    /// Reads the settings through `lookup` (the environment, in production).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, InvalidSetting> {
        Self::read(&Reader(lookup))
    }

    pub(super) fn read<F: Fn(&str) -> Option<String>>(
        read: &Reader<F>,
    ) -> Result<Self, InvalidSetting> {
        read.required(env::CLUSTER_IPS)?;
        let cluster_ips = read
            .list(env::CLUSTER_IPS)
            .iter()
            .map(|ip| {
                ip.parse().map_err(|_| InvalidSetting {
                    variable: env::CLUSTER_IPS,
                    problem: format!("{ip:?} is not an IP address"),
                })
            })
            .collect::<Result<Vec<IpAddr>, _>>()?;
        let ports = parse_ports(&read.required(env::PORTS)?).map_err(|e| InvalidSetting {
            variable: env::PORTS,
            problem: e.to_string(),
        })?;
        let source_ranges = read
            .list(env::SOURCE_RANGES)
            .iter()
            .map(|range| {
                range
                    .parse::<IpNet>()
                    .map(|n| n.trunc())
                    .map_err(|_| InvalidSetting {
                        variable: env::SOURCE_RANGES,
                        problem: format!("{range:?} is not a CIDR"),
                    })
            })
            .collect::<Result<Vec<IpNet>, _>>()?;
        Ok(Self {
            cluster_ips,
            ports,
            source_ranges,
        })
    }

    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<Self, InvalidSetting> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<ServiceSettings, InvalidSetting> {
        ServiceSettings::from_lookup(crate::settings::tests::table(pairs))
    }

    #[test]
    fn a_dual_stack_service_with_source_ranges_is_read() {
        let settings = read(&[
            (env::CLUSTER_IPS, "10.96.0.10,fd00:10:96::a"),
            (env::PORTS, "tcp/80,udp/53"),
            (env::SOURCE_RANGES, "100.100.0.0/24, 192.168.1.7/24"),
        ])
        .unwrap();
        assert_eq!(settings.cluster_ips.len(), 2);
        assert_eq!(settings.ports.len(), 2);
        // Host bits are cleared, as the API server's validation allows them.
        assert_eq!(settings.source_ranges[1].to_string(), "192.168.1.0/24");
    }

    #[test]
    fn the_firewall_mode_defaults_to_auto_and_refuses_unknown_modes() {
        let mode = |v: &str| {
            let v = v.to_string();
            FirewallMode::from_lookup(move |_| Some(v.clone()))
        };
        assert_eq!(mode(""), Ok(FirewallMode::Auto));
        assert_eq!(mode("iptables"), Ok(FirewallMode::Iptables));
        assert_eq!(mode("ipfw").unwrap_err().variable, env::FIREWALL_MODE);
    }

    #[test]
    fn missing_and_malformed_settings_name_the_variable() {
        let missing = read(&[(env::PORTS, "tcp/80")]).unwrap_err();
        assert_eq!(missing.variable, env::CLUSTER_IPS);
        let bad_ip =
            read(&[(env::CLUSTER_IPS, "10.96.0.300"), (env::PORTS, "tcp/80")]).unwrap_err();
        assert!(bad_ip.to_string().contains("10.96.0.300"), "{bad_ip}");
        let bad_range = read(&[
            (env::CLUSTER_IPS, "10.96.0.1"),
            (env::PORTS, "tcp/80"),
            (env::SOURCE_RANGES, "everyone"),
        ])
        .unwrap_err();
        assert_eq!(bad_range.variable, env::SOURCE_RANGES);
        let bad_port = read(&[(env::CLUSTER_IPS, "10.96.0.1"), (env::PORTS, "tcp/0")]).unwrap_err();
        assert_eq!(bad_port.variable, env::PORTS);
    }
}
