//! Forwarding from the Tailscale addresses to the Service: what to forward
//! ([`plan`]), the nftables rules for it ([`nft`]) or, where nftables is
//! unavailable, the iptables rules ([`iptables`]), and applying or removing
//! them together with the conntrack entries of the forwarded flows
//! ([`apply`]).

pub mod apply;
pub mod iptables;
pub mod nft;
pub mod plan;
