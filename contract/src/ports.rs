//! Encoding of a Service's ports in the runtime's environment
//! ([`crate::env::PORTS`]): `tcp/80,udp/53`.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

/// A forwarded port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortSpec {
    /// Transport protocol.
    pub protocol: Protocol,
    /// Port number on both the Tailscale IP and the ClusterIP.
    pub port: u16,
}

/// Transport protocol of a forwarded port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Protocol {
    /// The lower-case name used in the encoding.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// A port list that does not follow the encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidPorts(pub String);

impl fmt::Display for InvalidPorts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid port list entry {:?}: expected <tcp|udp|sctp>/<1-65535>",
            self.0
        )
    }
}

impl core::error::Error for InvalidPorts {}

/// Encodes ports as `tcp/80,udp/53`.
pub fn format_ports(ports: &[PortSpec]) -> String {
    ports
        .iter()
        .map(|p| format!("{}/{}", p.protocol.as_str(), p.port))
        .collect::<Vec<_>>()
        .join(",")
}

/// Decodes what [`format_ports`] wrote. An empty string is an empty list.
pub fn parse_ports(encoded: &str) -> Result<Vec<PortSpec>, InvalidPorts> {
    encoded
        .split(',')
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let invalid = || InvalidPorts(entry.to_string());
            let (protocol, port) = entry.split_once('/').ok_or_else(invalid)?;
            let protocol = match protocol {
                "tcp" => Protocol::Tcp,
                "udp" => Protocol::Udp,
                "sctp" => Protocol::Sctp,
                _ => return Err(invalid()),
            };
            let port: u16 = port.parse().map_err(|_| invalid())?;
            if port == 0 {
                return Err(invalid());
            }
            Ok(PortSpec { protocol, port })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn ports_round_trip() {
        let ports = vec![
            PortSpec {
                protocol: Protocol::Tcp,
                port: 80,
            },
            PortSpec {
                protocol: Protocol::Udp,
                port: 53,
            },
        ];
        let encoded = format_ports(&ports);
        assert_eq!(encoded, "tcp/80,udp/53");
        assert_eq!(parse_ports(&encoded).unwrap(), ports);
        assert_eq!(parse_ports("").unwrap(), vec![]);
    }

    #[test]
    fn malformed_entries_are_refused() {
        for bad in ["tcp", "tcp/0", "icmp/1", "tcp/70000", "tcp/x"] {
            assert_eq!(
                parse_ports(bad),
                Err(InvalidPorts(bad.to_string())),
                "{bad}"
            );
        }
    }
}
