//! Forwarding in real network namespaces (root, `ip`, `nft`, `socat`,
//! `conntrack`; CI installs them):
//!
//! ```text
//!  client ns                 proxy ns                          backend ns
//!  c0 100.100.0.2, .3  ──▶  tailscale0 100.100.0.1       p1 ──▶ b0 10.200.0.2
//!     fd00:1::2             + 100.64.0.7, fd7a:…::7          fd00:2::2
//!                           (the "Tailscale" addresses)     lo 10.96.0.10, fd00:10:96::a
//!                                                            (the "ClusterIPs", socat echo)
//! ```
//!
//! The runtime's `forward` installs DNAT from the Tailscale addresses to the
//! ClusterIPs in the proxy namespace; TCP and UDP over IPv4 and IPv6 reach
//! the backend (which has no route back to the client: replies come back
//! only thanks to the masquerade). `unforward` leaves no rule and no
//! conntrack entry of ours. Traffic stays inside the namespaces made here,
//! which are deleted at the end.

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const RUNTIME: &str = env!("CARGO_BIN_EXE_tailscale-svc-lb-runtime");
const TS4: &str = "100.64.0.7";
const TS6: &str = "fd7a:115c:a1e0::7";

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} must be installed (CI installs it): {e}"))
}

fn must(program: &str, args: &[&str]) -> String {
    let output = run(program, args);
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Three namespaces wired as above; deleted (with their processes) on drop.
struct Topology {
    client: String,
    proxy: String,
    backend: String,
    servers: Vec<Child>,
    /// `SVCLB_FIREWALL_MODE` of the runtime commands.
    mode: &'static str,
}

impl Topology {
    fn new(tag: &str, mode: &'static str) -> Self {
        let id = format!("{}{tag}", std::process::id() % 100_000);
        let topology = Self {
            client: format!("svclb-c-{id}"),
            proxy: format!("svclb-p-{id}"),
            backend: format!("svclb-b-{id}"),
            servers: Vec::new(),
            mode,
        };
        for ns in [&topology.client, &topology.proxy, &topology.backend] {
            must("ip", &["netns", "add", ns]);
            topology.ip(ns, &["link", "set", "lo", "up"]);
        }
        let (c0, p0, p1, b0) = (
            format!("c{id}"),
            format!("p{id}"),
            format!("q{id}"),
            format!("b{id}"),
        );
        must(
            "ip",
            &[
                "link",
                "add",
                &c0,
                "netns",
                &topology.client,
                "type",
                "veth",
                "peer",
                "name",
                &p0,
                "netns",
                &topology.proxy,
            ],
        );
        must(
            "ip",
            &[
                "link",
                "add",
                &p1,
                "netns",
                &topology.proxy,
                "type",
                "veth",
                "peer",
                "name",
                &b0,
                "netns",
                &topology.backend,
            ],
        );
        // A renamed veth plays tailscale0 (no dummy interfaces on this kernel).
        topology.ip(&topology.proxy, &["link", "set", &p0, "name", "tailscale0"]);
        let (c, p, b) = (&topology.client, &topology.proxy, &topology.backend);
        for (ns, dev, addrs) in [
            (
                c,
                c0.as_str(),
                &["100.100.0.2/24", "100.100.0.3/24", "fd00:1::2/64"][..],
            ),
            (
                p,
                "tailscale0",
                &[
                    "100.100.0.1/24",
                    "fd00:1::1/64",
                    "100.64.0.7/32",
                    "fd7a:115c:a1e0::7/128",
                ][..],
            ),
            (p, p1.as_str(), &["10.200.0.1/24", "fd00:2::1/64"][..]),
            (b, b0.as_str(), &["10.200.0.2/24", "fd00:2::2/64"][..]),
            (b, "lo", &["10.96.0.10/32", "fd00:10:96::a/128"][..]),
        ] {
            for addr in addrs {
                topology.ip(ns, &["addr", "add", addr, "dev", dev, "nodad"]);
            }
            topology.ip(ns, &["link", "set", dev, "up"]);
        }
        topology.ip(c, &["route", "add", "100.64.0.7/32", "via", "100.100.0.1"]);
        topology.ip(
            c,
            &[
                "-6",
                "route",
                "add",
                "fd7a:115c:a1e0::7/128",
                "via",
                "fd00:1::1",
            ],
        );
        topology.ip(p, &["route", "add", "10.96.0.10/32", "via", "10.200.0.2"]);
        topology.ip(
            p,
            &[
                "-6",
                "route",
                "add",
                "fd00:10:96::a/128",
                "via",
                "fd00:2::2",
            ],
        );
        topology.exec(p, RUNTIME, &["enable-forwarding"]);
        topology
    }

    fn ip(&self, ns: &str, args: &[&str]) {
        let mut all = vec!["-n", ns];
        all.extend_from_slice(args);
        must("ip", &all);
    }

    fn exec(&self, ns: &str, program: &str, args: &[&str]) -> String {
        let mut all = vec!["netns", "exec", ns, program];
        all.extend_from_slice(args);
        must("ip", &all)
    }

    /// Starts socat echo servers on the backend's ClusterIPs.
    fn serve(&mut self) {
        for (listen, reply) in [
            (
                "TCP4-LISTEN:80,bind=10.96.0.10,reuseaddr,fork",
                "tcp4-backend",
            ),
            ("UDP4-RECVFROM:53,bind=10.96.0.10,fork", "udp4-backend"),
            (
                "TCP6-LISTEN:80,bind=[fd00:10:96::a],reuseaddr,fork",
                "tcp6-backend",
            ),
            ("UDP6-RECVFROM:53,bind=[fd00:10:96::a],fork", "udp6-backend"),
        ] {
            let child = Command::new("ip")
                .args(["netns", "exec", &self.backend, "socat", listen])
                .arg(format!("SYSTEM:echo {reply}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("socat must be installed (CI installs it)");
            self.servers.push(child);
        }
    }

    /// What the client gets back from `target` (a socat address), or `None`.
    fn ask(&self, target: &str) -> Option<String> {
        let output = Command::new("ip")
            .args(["netns", "exec", &self.client, "socat", "-T2", "-", target])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                let _ = child.stdin.take().unwrap().write_all(b"ping\n");
                child.wait_with_output()
            })
            .ok()?;
        let reply = String::from_utf8_lossy(&output.stdout).trim().to_string();
        (!reply.is_empty()).then_some(reply)
    }

    /// Asks until a reply comes (servers start asynchronously), up to 5 s.
    fn ask_until_answered(&self, target: &str) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(reply) = self.ask(target) {
                return Some(reply);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn forward(&self, source_ranges: &str) {
        let output = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.proxy,
                RUNTIME,
                "forward",
                "--tailscale-ip",
                TS4,
                "--tailscale-ip",
                TS6,
            ])
            .env("SVCLB_CLUSTER_IPS", "10.96.0.10,fd00:10:96::a")
            .env("SVCLB_PORTS", "tcp/80,udp/53")
            .env("SVCLB_SOURCE_RANGES", source_ranges)
            .env("SVCLB_FIREWALL_MODE", self.mode)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn unforward(&self) {
        let output = Command::new("ip")
            .args(["netns", "exec", &self.proxy, RUNTIME, "unforward"])
            .args(["--tailscale-ip", TS4, "--tailscale-ip", TS6])
            .env("SVCLB_FIREWALL_MODE", self.mode)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Our rules left in the proxy namespace, in either firewall.
    fn our_rules(&self) -> String {
        let tables = self.exec(&self.proxy, "nft", &["list", "tables"]);
        let mut found: Vec<String> = tables
            .lines()
            .filter(|l| l.contains("tailscale-svc-lb"))
            .map(String::from)
            .collect();
        for save in ["iptables-save", "ip6tables-save"] {
            let rules = self.exec(&self.proxy, save, &[]);
            found.extend(
                rules
                    .lines()
                    .filter(|l| l.contains("SVCLB"))
                    .map(String::from),
            );
        }
        found.join("\n")
    }

    /// Conntrack entries in the proxy namespace for flows to `ip`.
    fn flows_to(&self, ip: &str) -> usize {
        let family = if ip.contains(':') { "ipv6" } else { "ipv4" };
        let output = run(
            "ip",
            &[
                "netns",
                "exec",
                &self.proxy,
                "conntrack",
                "-L",
                "-f",
                family,
                "--orig-dst",
                ip,
            ],
        );
        String::from_utf8_lossy(&output.stdout).lines().count()
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for server in &mut self.servers {
            let _ = server.kill();
            let _ = server.wait();
        }
        for ns in [&self.client, &self.proxy, &self.backend] {
            let _ = run("ip", &["netns", "del", ns]);
        }
    }
}

const TARGETS: [(&str, &str); 4] = [
    ("TCP4:100.64.0.7:80", "tcp4-backend"),
    ("UDP4:100.64.0.7:53", "udp4-backend"),
    ("TCP6:[fd7a:115c:a1e0::7]:80", "tcp6-backend"),
    ("UDP6:[fd7a:115c:a1e0::7]:53", "udp6-backend"),
];

/// Forwards, checks every family and protocol, unforwards, checks that
/// nothing of ours is left.
fn forward_and_unforward(mode: &'static str, tag: &str) {
    let mut net = Topology::new(tag, mode);
    net.serve();
    net.forward("");
    for (target, expected) in TARGETS {
        assert_eq!(
            net.ask_until_answered(target).as_deref(),
            Some(expected),
            "{mode}: {target}"
        );
    }
    assert!(net.flows_to(TS4) > 0, "the forwarded flows are tracked");
    net.unforward();
    assert_eq!(net.our_rules(), "", "{mode}: no rule of ours left");
    assert_eq!(
        (net.flows_to(TS4), net.flows_to(TS6)),
        (0, 0),
        "no conntrack entry left"
    );
    for (target, expected) in TARGETS {
        assert_ne!(
            net.ask(target).as_deref(),
            Some(expected),
            "{target} no longer forwarded"
        );
    }
}

#[test]
fn tcp_and_udp_over_ipv4_and_ipv6_reach_the_backend_and_unforward_leaves_nothing() {
    forward_and_unforward("nftables", "a");
}

#[test]
fn the_iptables_fallback_forwards_the_same_and_leaves_nothing() {
    forward_and_unforward("iptables", "c");
}

/// Only allowed sources get through; others are dropped.
fn source_ranges(mode: &'static str, tag: &str) {
    let mut net = Topology::new(tag, mode);
    net.serve();
    net.forward("100.100.0.2/32,fd00:1::2/128");
    let allowed = net.ask_until_answered("TCP4:100.64.0.7:80,bind=100.100.0.2");
    assert_eq!(allowed.as_deref(), Some("tcp4-backend"), "{mode}");
    let other = net.ask("TCP4:100.64.0.7:80,bind=100.100.0.3,connect-timeout=2");
    assert_eq!(
        other, None,
        "{mode}: a source outside the ranges is dropped"
    );
    let allowed6 = net.ask_until_answered("UDP6:[fd7a:115c:a1e0::7]:53");
    assert_eq!(allowed6.as_deref(), Some("udp6-backend"), "{mode}");
}

#[test]
fn only_allowed_source_ranges_reach_the_backend() {
    source_ranges("nftables", "b");
}

#[test]
fn the_iptables_fallback_honours_source_ranges() {
    source_ranges("iptables", "d");
}

/// The tailnet's MTU is smaller than the cluster network's (tailscale0 has
/// 1280): a client whose own link is larger (a laptop behind a subnet
/// router, say) would send the backend's full-size segments into the
/// tailnet and rely on ICMP "fragmentation needed" getting back. With the
/// MSS of forwarded SYNs clamped to the route's MTU, the SYN-ACK the client
/// receives already says 1240, so it never sends more.
fn mss_is_clamped_to_the_path(mode: &'static str, tag: &str) {
    let mut net = Topology::new(tag, mode);
    net.ip(&net.proxy, &["link", "set", "tailscale0", "mtu", "1280"]);
    net.serve();
    net.forward("");
    // Counts the SYN-ACKs the client receives, by the MSS they carry.
    let probe = "table inet probe {\n chain input {\n type filter hook input priority 0;\n \
        tcp flags & (syn | ack) == syn | ack tcp option maxseg size > 1240 counter comment \"big\"\n \
        tcp flags & (syn | ack) == syn | ack tcp option maxseg size <= 1240 counter comment \"clamped\"\n }\n}\n";
    let file = std::env::temp_dir().join(format!("svclb-probe-{}-{tag}.nft", std::process::id()));
    std::fs::write(&file, probe).unwrap();
    net.exec(&net.client, "nft", &["-f", file.to_str().unwrap()]);
    let _ = std::fs::remove_file(&file);
    assert_eq!(
        net.ask_until_answered("TCP4:100.64.0.7:80").as_deref(),
        Some("tcp4-backend")
    );
    let counters = net.exec(&net.client, "nft", &["list", "table", "inet", "probe"]);
    let packets = |comment: &str| -> u64 {
        counters
            .lines()
            .find(|l| l.contains(&format!("comment \"{comment}\"")))
            .and_then(|l| l.split("packets ").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no counter {comment} in {counters}"))
    };
    assert_eq!(
        packets("big"),
        0,
        "{mode}: no SYN-ACK with a full-size MSS\n{counters}"
    );
    assert!(
        packets("clamped") > 0,
        "{mode}: SYN-ACKs clamped to 1240\n{counters}"
    );
}

#[test]
fn syn_acks_to_the_tailnet_carry_an_mss_that_fits_its_mtu() {
    mss_is_clamped_to_the_path("nftables", "e");
}

#[test]
fn the_iptables_fallback_clamps_the_mss_too() {
    mss_is_clamped_to_the_path("iptables", "f");
}
