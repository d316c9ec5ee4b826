//! Installing and removing the forwarding in the kernel: the nftables batch
//! through the `nft` binary, and the conntrack entries of forwarded flows
//! through the `conntrack` binary (flows already DNATed would otherwise
//! keep going to this pod after a handover).

use std::net::IpAddr;
use std::process::Command;

use super::nft::{removal, ruleset};
use super::plan::ForwardingPlan;

/// A firewall change that did not take.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    /// `nft` refused the batch or could not run.
    #[error("nft: {0}")]
    Nft(#[from] nftables::helper::NftablesError),
    /// `conntrack` could not run or failed.
    #[error("conntrack: {0}")]
    Conntrack(String),
}

/// Replaces our table with the rules of `plan`, atomically.
pub fn install(plan: &ForwardingPlan) -> Result<(), FirewallError> {
    nftables::helper::apply_ruleset(&ruleset(plan))?;
    Ok(())
}

/// Removes our table and the conntrack entries of flows to `tailscale_ips`.
pub fn remove(tailscale_ips: &[IpAddr]) -> Result<(), FirewallError> {
    nftables::helper::apply_ruleset(&removal())?;
    for ip in tailscale_ips {
        let family = if ip.is_ipv4() { "ipv4" } else { "ipv6" };
        let output = Command::new("conntrack")
            .args([
                "--delete",
                "--family",
                family,
                "--orig-dst",
                &ip.to_string(),
            ])
            .output()
            .map_err(|e| FirewallError::Conntrack(format!("cannot run conntrack: {e}")))?;
        // conntrack exits with 1 when no entry matched: nothing to delete.
        let none_matched = output.status.code() == Some(1)
            && String::from_utf8_lossy(&output.stderr).contains("0 flow entries");
        if !output.status.success() && !none_matched {
            return Err(FirewallError::Conntrack(
                String::from_utf8_lossy(&output.stderr).trim().to_string(),
            ));
        }
    }
    Ok(())
}
