//! The nftables ruleset of a [`ForwardingPlan`], as typed libnftables JSON
//! (the `nftables` crate), applied by `nft -j -f -` in one transaction.
//!
//! One table of our own, `inet tailscale-svc-lb`, re-created whole on every
//! change (add, delete and add again in one batch: atomic, and nothing of an
//! older plan survives):
//!
//! ```text
//! chain filter-prerouting  filter hook prerouting priority -150
//!     ip daddr <ts4> meta l4proto tcp th dport { 80 } ip saddr != { <ranges4> } drop
//! chain nat-prerouting     nat hook prerouting priority -100
//!     ip daddr <ts4> meta l4proto tcp th dport { 80 } dnat ip to <cluster4>
//! chain nat-postrouting    nat hook postrouting priority 100
//!     ct status dnat ip daddr <cluster4> masquerade
//! chain mss-forward        filter hook forward priority -150
//!     tcp flags & (syn | rst) == syn tcp option maxseg size set rt mtu
//! ```
//!
//! (and the same for IPv6 with `ip6`). The filter chain and its drop rules
//! exist only when the Service sets `loadBalancerSourceRanges`; a family with no range at all is
//! dropped entirely. Masquerading makes the replies come back through this
//! pod, whatever the backend's route to the tailnet. The MSS of forwarded
//! TCP SYNs is clamped to the route's MTU (as containerboot does): the
//! tailnet and the cluster network have different MTUs, and a path must
//! not depend on ICMP "fragmentation needed" reaching the sender.

use std::borrow::Cow;
use std::net::IpAddr;

use nftables::expr::{
    BinaryOperation, CT, Expression, Meta, MetaKey, NamedExpression, Payload, PayloadField, Prefix,
    RT, RTKey, SetItem, TcpOption,
};
use nftables::schema::{Chain, NfCmd, NfListObject, NfObject, Nftables, Rule, Table};
use nftables::stmt::{Mangle, Match, NAT, NATFamily, Operator, Statement};
use nftables::types::{NfChainType, NfFamily, NfHook};
use svc_lb_contract::ports::Protocol;

use super::plan::ForwardingPlan;

/// Our table (family `inet`).
pub const TABLE: &str = "tailscale-svc-lb";

fn family_name(ip: &IpAddr) -> &'static str {
    if ip.is_ipv4() { "ip" } else { "ip6" }
}

fn address(ip: &IpAddr) -> Expression<'static> {
    Expression::String(Cow::Owned(ip.to_string()))
}

fn field(protocol: &'static str, name: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(
        PayloadField {
            protocol: protocol.into(),
            field: name.into(),
        },
    )))
}

fn matches(
    left: Expression<'static>,
    op: Operator,
    right: Expression<'static>,
) -> Statement<'static> {
    Statement::Match(Match { left, right, op })
}

fn table() -> Table<'static> {
    Table {
        family: NfFamily::INet,
        name: TABLE.into(),
        handle: None,
    }
}

fn chain(
    name: &'static str,
    chain_type: NfChainType,
    hook: NfHook,
    prio: i32,
) -> NfObject<'static> {
    NfObject::CmdObject(NfCmd::Add(NfListObject::Chain(Chain {
        family: NfFamily::INet,
        table: TABLE.into(),
        name: name.into(),
        _type: Some(chain_type),
        hook: Some(hook),
        prio: Some(prio),
        ..Chain::default()
    })))
}

fn rule(chain: &'static str, statements: Vec<Statement<'static>>) -> NfObject<'static> {
    NfObject::CmdObject(NfCmd::Add(NfListObject::Rule(Rule {
        family: NfFamily::INet,
        table: TABLE.into(),
        chain: chain.into(),
        expr: Cow::Owned(statements),
        handle: None,
        index: None,
        comment: None,
    })))
}

/// `ip daddr <ts> meta l4proto <proto> th dport { ports }`.
fn service_traffic(ts: &IpAddr, protocol: Protocol, ports: &[u16]) -> Vec<Statement<'static>> {
    let set = ports
        .iter()
        .map(|p| SetItem::Element(Expression::Number(u32::from(*p))))
        .collect();
    vec![
        matches(field(family_name(ts), "daddr"), Operator::EQ, address(ts)),
        matches(
            Expression::Named(NamedExpression::Meta(Meta {
                key: MetaKey::L4proto,
            })),
            Operator::EQ,
            Expression::String(protocol.as_str().into()),
        ),
        matches(
            field("th", "dport"),
            Operator::EQ,
            Expression::Named(NamedExpression::Set(set)),
        ),
    ]
}

/// The ports of `protocol`, sorted.
fn ports_of(plan: &ForwardingPlan, protocol: Protocol) -> Vec<u16> {
    let mut ports: Vec<u16> = plan
        .ports
        .iter()
        .filter(|p| p.protocol == protocol)
        .map(|p| p.port)
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// The batch that replaces our table with the rules of `plan`.
/// `tcp flags & (syn | rst) == syn tcp option maxseg size set rt mtu`.
fn clamp_mss() -> Vec<Statement<'static>> {
    let flags = Expression::BinaryOperation(Box::new(BinaryOperation::AND(
        field("tcp", "flags"),
        Expression::BinaryOperation(Box::new(BinaryOperation::OR(vec![
            Expression::String("syn".into()),
            Expression::String("rst".into()),
        ]))),
    )));
    vec![
        matches(flags, Operator::EQ, Expression::String("syn".into())),
        Statement::Mangle(Mangle {
            key: Expression::Named(NamedExpression::TcpOption(TcpOption {
                name: "maxseg".into(),
                field: Some("size".into()),
            })),
            value: Expression::Named(NamedExpression::RT(RT {
                key: RTKey::MTU,
                family: None,
            })),
        }),
    ]
}

pub fn ruleset(plan: &ForwardingPlan) -> Nftables<'static> {
    let mut objects = vec![
        NfObject::CmdObject(NfCmd::Add(NfListObject::Table(table()))),
        NfObject::CmdObject(NfCmd::Delete(NfListObject::Table(table()))),
        NfObject::CmdObject(NfCmd::Add(NfListObject::Table(table()))),
    ];
    // A base chain costs every packet a hook call even when empty: the
    // filter chain exists only when there are sources to drop.
    if !plan.source_ranges.is_empty() {
        objects.push(chain(
            "filter-prerouting",
            NfChainType::Filter,
            NfHook::Prerouting,
            -150,
        ));
    }
    objects.extend([
        chain("nat-prerouting", NfChainType::NAT, NfHook::Prerouting, -100),
        chain(
            "nat-postrouting",
            NfChainType::NAT,
            NfHook::Postrouting,
            100,
        ),
    ]);
    for protocol in [Protocol::Tcp, Protocol::Udp, Protocol::Sctp] {
        let ports = ports_of(plan, protocol);
        if ports.is_empty() {
            continue;
        }
        for (ts, cluster) in &plan.pairs {
            if !plan.source_ranges.is_empty() {
                let mut statements = service_traffic(ts, protocol, &ports);
                let allowed: Vec<SetItem<'static>> = plan
                    .source_ranges
                    .iter()
                    .filter(|r| r.addr().is_ipv4() == ts.is_ipv4())
                    .map(|r| {
                        SetItem::Element(Expression::Named(NamedExpression::Prefix(Prefix {
                            addr: Box::new(address(&r.network())),
                            len: u32::from(r.prefix_len()),
                        })))
                    })
                    .collect();
                if !allowed.is_empty() {
                    statements.push(matches(
                        field(family_name(ts), "saddr"),
                        Operator::NEQ,
                        Expression::Named(NamedExpression::Set(allowed)),
                    ));
                }
                statements.push(Statement::Drop(None));
                objects.push(rule("filter-prerouting", statements));
            }
            let mut statements = service_traffic(ts, protocol, &ports);
            statements.push(Statement::DNAT(Some(NAT {
                addr: Some(address(cluster)),
                family: Some(if cluster.is_ipv4() {
                    NATFamily::IP
                } else {
                    NATFamily::IP6
                }),
                port: None,
                flags: None,
            })));
            objects.push(rule("nat-prerouting", statements));
        }
    }
    if !ports_of(plan, Protocol::Tcp).is_empty() {
        objects.push(chain(
            "mss-forward",
            NfChainType::Filter,
            NfHook::Forward,
            -150,
        ));
        objects.push(rule("mss-forward", clamp_mss()));
    }
    let mut clusters: Vec<&IpAddr> = plan.pairs.iter().map(|(_, c)| c).collect();
    clusters.dedup();
    for cluster in clusters {
        objects.push(rule(
            "nat-postrouting",
            vec![
                matches(
                    Expression::Named(NamedExpression::CT(CT {
                        key: "status".into(),
                        family: None,
                        dir: None,
                    })),
                    Operator::IN,
                    Expression::String("dnat".into()),
                ),
                matches(
                    field(family_name(cluster), "daddr"),
                    Operator::EQ,
                    address(cluster),
                ),
                Statement::Masquerade(None),
            ],
        ));
    }
    Nftables {
        objects: Cow::Owned(objects),
    }
}

/// The batch that removes our table, whether or not it exists.
pub fn removal() -> Nftables<'static> {
    Nftables {
        objects: Cow::Owned(vec![
            NfObject::CmdObject(NfCmd::Add(NfListObject::Table(table()))),
            NfObject::CmdObject(NfCmd::Delete(NfListObject::Table(table()))),
        ]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use svc_lb_contract::ports::parse_ports;

    fn plan(ranges: &[&str]) -> ForwardingPlan {
        ForwardingPlan::new(
            &[
                "100.64.0.7".parse().unwrap(),
                "fd7a:115c:a1e0::7".parse().unwrap(),
            ],
            &[
                "10.96.0.10".parse().unwrap(),
                "fd00:10:96::a".parse().unwrap(),
            ],
            parse_ports("tcp/443,tcp/80,udp/53").unwrap(),
            ranges.iter().map(|r| r.parse().unwrap()).collect(),
        )
    }

    /// Compares with `golden/<name>.json`; `UPDATE_GOLDEN=1` rewrites it.
    fn assert_golden(name: &str, nft: &Nftables<'_>) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/firewall/golden")
            .join(format!("{name}.json"));
        let json = serde_json::to_string_pretty(nft).unwrap() + "\n";
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, &json).unwrap();
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(
            json,
            expected,
            "{} differs (UPDATE_GOLDEN=1 rewrites it)",
            path.display()
        );
    }

    #[test]
    fn dual_stack_tcp_and_udp_forwarding() {
        assert_golden("dual-stack", &ruleset(&plan(&[])));
    }

    #[test]
    fn source_ranges_drop_other_sources_and_a_family_without_ranges_entirely() {
        let nft = ruleset(&plan(&["100.100.0.0/24", "192.168.1.7/32"]));
        assert_golden("source-ranges", &nft);
        let json = serde_json::to_string(&nft).unwrap();
        assert!(
            json.contains("\"!=\""),
            "IPv4 sources outside the ranges are dropped"
        );
    }

    #[test]
    fn removal_deletes_only_our_table() {
        assert_golden("removal", &removal());
    }
}
