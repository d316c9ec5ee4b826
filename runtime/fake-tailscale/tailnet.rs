//! The fake tailnet's data path, in place of WireGuard and DERP: every
//! device's TUN device is relayed over UDP through one relay (`derp`), which
//! delivers each packet to the device that last announced its destination
//! address. So, as in a real tailnet, a device's address is wherever its
//! running tailscaled is: it moves on failover when the new leader's daemon
//! announces it, and it is gone when the daemon dies (its TUN device goes
//! with it).
//!
//! Datagrams: an IP packet as read from a TUN device (first nibble 4 or 6),
//! or an announcement, `0x00` then the device's addresses, comma-separated.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The relay's address, for daemons and peers (`host:port`).
pub const RELAY_ENV: &str = "FAKE_TAILNET_RELAY";

/// The addresses a device announces (empty while it is down).
pub type Announced = Arc<Mutex<Vec<IpAddr>>>;

/// The destination address of an IP packet.
fn destination(packet: &[u8]) -> Option<IpAddr> {
    match packet.first()? >> 4 {
        4 if packet.len() >= 20 => {
            let b: [u8; 4] = packet[16..20].try_into().ok()?;
            Some(IpAddr::from(b))
        }
        6 if packet.len() >= 40 => {
            let b: [u8; 16] = packet[24..40].try_into().ok()?;
            Some(IpAddr::from(b))
        }
        _ => None,
    }
}

/// Relays between a TUN device and the relay until the process ends:
/// packets both ways, and the device's addresses announced every 0.5 s.
pub fn link(tun: std::fs::File, relay: SocketAddr, announced: Announced) -> std::io::Result<()> {
    let socket = UdpSocket::bind(if relay.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    })?;
    socket.connect(relay)?;
    let (mut tun_in, mut tun_out) = (tun.try_clone()?, tun);
    let (outbound, inbound, announcer) = (socket.try_clone()?, socket.try_clone()?, socket);
    std::thread::spawn(move || {
        let mut buf = vec![0; 65536];
        while let Ok(n) = tun_in.read(&mut buf) {
            let _ = outbound.send(&buf[..n]);
        }
    });
    std::thread::spawn(move || {
        let mut buf = vec![0; 65536];
        loop {
            match inbound.recv(&mut buf) {
                Ok(n) => {
                    let _ = tun_out.write(&buf[..n]);
                }
                // An ICMP error on the connected socket (the relay not yet
                // listening) is reported once; the link goes on.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                Err(_) => break,
            }
        }
    });
    std::thread::spawn(move || {
        loop {
            let list = announced.lock().unwrap().clone();
            if !list.is_empty() {
                let text: Vec<String> = list.iter().map(IpAddr::to_string).collect();
                let mut message = vec![0u8];
                message.extend_from_slice(text.join(",").as_bytes());
                let _ = announcer.send(&message);
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    });
    Ok(())
}

/// Announces `announced` at once (a device that just came up).
pub fn announce_now(relay: SocketAddr, announced: &[IpAddr]) {
    if let Ok(socket) = UdpSocket::bind(if relay.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }) {
        let text: Vec<String> = announced.iter().map(IpAddr::to_string).collect();
        let mut message = vec![0u8];
        message.extend_from_slice(text.join(",").as_bytes());
        let _ = socket.send_to(&message, relay);
    }
}

/// `fake-tailscale relay <listen>`: the relay. An announcement maps its
/// addresses to its sender; a packet goes to whoever announced its
/// destination last.
pub fn relay(listen: &str) -> i32 {
    let socket = UdpSocket::bind(listen).expect("the relay's address");
    let mut routes: HashMap<IpAddr, SocketAddr> = HashMap::new();
    let mut buf = vec![0; 65536];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let datagram = &buf[..n];
        if datagram.first() == Some(&0) {
            let text = String::from_utf8_lossy(&datagram[1..]);
            for address in text.split(',').filter_map(|a| a.parse().ok()) {
                routes.insert(address, from);
            }
        } else if let Some(to) = destination(datagram).and_then(|d| routes.get(&d)) {
            let _ = socket.send_to(datagram, to);
        }
    }
}

/// `fake-tailscale peer <address> <relay>`: a tailnet device outside the
/// cluster (the tests' client): a TUN device `tailscale0` with `address`
/// and the tailnet's routes, linked to the relay.
pub fn peer(address: &str, relay: &str) -> i32 {
    let relay: SocketAddr = relay.parse().expect("the relay's address");
    let address: IpAddr = address.parse().expect("the peer's tailnet address");
    let tun = crate::open_tun("tailscale0").expect("a TUN device");
    let run = |args: &[&str]| {
        let _ = std::process::Command::new("ip").args(args).status();
    };
    run(&["addr", "add", &format!("{address}/32"), "dev", "tailscale0"]);
    run(&["link", "set", "tailscale0", "up"]);
    run(&["route", "replace", "100.64.0.0/10", "dev", "tailscale0"]);
    link(tun, relay, Arc::new(Mutex::new(vec![address]))).expect("the relay link");
    loop {
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_destination_is_read_from_either_ip_version() {
        let mut v4 = vec![0x45u8; 20];
        v4[16..20].copy_from_slice(&[100, 64, 0, 2]);
        assert_eq!(destination(&v4), Some("100.64.0.2".parse().unwrap()));
        let mut v6 = vec![0x60u8; 40];
        v6[24..40].copy_from_slice(
            &"fd7a:115c:a1e0::1"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
        );
        assert_eq!(destination(&v6), Some("fd7a:115c:a1e0::1".parse().unwrap()));
        assert_eq!(destination(&[0u8, 1, 2]), None);
    }
}
