//! Installing and removing the forwarding in the kernel, with nftables (the
//! `nft` binary, one atomic batch) or, where nftables is unavailable,
//! iptables (`iptables-restore` into chains of our own), and removing the
//! conntrack entries of forwarded flows through the `conntrack` binary
//! (flows already DNATed would otherwise keep going to this pod after a
//! handover).

use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};

use super::iptables::{CHAINS, restore_input};
use super::nft::{removal, ruleset};
use super::plan::ForwardingPlan;

/// A firewall change that did not take.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    /// `nft` refused the batch or could not run.
    #[error("nft: {0}")]
    Nft(#[from] nftables::helper::NftablesError),
    /// An iptables command failed or could not run.
    #[error("{command}: {message}")]
    Iptables {
        /// The command.
        command: String,
        /// Its error output.
        message: String,
    },
    /// `conntrack` could not run or failed.
    #[error("conntrack: {0}")]
    Conntrack(String),
}

/// Which firewall the rules go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// nftables, table `inet tailscale-svc-lb`.
    Nftables,
    /// iptables and ip6tables, chains `SVCLB-*`.
    Iptables,
}

impl Backend {
    /// nftables when `nft` can list this network namespace's tables, else
    /// iptables.
    pub fn detect() -> Self {
        let nft_works = Command::new("nft")
            .args(["list", "tables"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if nft_works {
            Backend::Nftables
        } else {
            Backend::Iptables
        }
    }
}

fn run(
    program: &str,
    args: &[&str],
    input: Option<&str>,
) -> Result<std::process::Output, FirewallError> {
    let failed = |message: String| FirewallError::Iptables {
        command: format!("{program} {}", args.join(" ")),
        message,
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("cannot run: {e}")))?;
    if let Some(input) = input {
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(input.as_bytes())
            .map_err(|e| failed(e.to_string()))?;
    }
    child.wait_with_output().map_err(|e| failed(e.to_string()))
}

fn must(program: &str, args: &[&str], input: Option<&str>) -> Result<(), FirewallError> {
    let output = run(program, args, input)?;
    if output.status.success() {
        return Ok(());
    }
    Err(FirewallError::Iptables {
        command: format!("{program} {}", args.join(" ")),
        message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
    })
}

const FAMILIES: [(&str, &str, bool); 2] = [
    ("iptables", "iptables-restore", true),
    ("ip6tables", "ip6tables-restore", false),
];

fn install_iptables(plan: &ForwardingPlan) -> Result<(), FirewallError> {
    for (iptables, restore, ipv4) in FAMILIES {
        must(restore, &["--noflush"], Some(&restore_input(plan, ipv4)))?;
        for (table, chain, from) in CHAINS {
            let jump = ["-t", table, "-C", from, "-j", chain];
            if !run(iptables, &jump, None)?.status.success() {
                must(iptables, &["-t", table, "-I", from, "-j", chain], None)?;
            }
        }
    }
    Ok(())
}

fn remove_iptables() -> Result<(), FirewallError> {
    for (iptables, _, _) in FAMILIES {
        for (table, chain, from) in CHAINS {
            // Each may be absent already; only a jump that exists is removed.
            while run(iptables, &["-t", table, "-D", from, "-j", chain], None)?
                .status
                .success()
            {}
            let _ = run(iptables, &["-t", table, "-F", chain], None)?;
            let _ = run(iptables, &["-t", table, "-X", chain], None)?;
        }
    }
    Ok(())
}

/// Replaces our rules with those of `plan`.
pub fn install(plan: &ForwardingPlan, backend: Backend) -> Result<(), FirewallError> {
    match backend {
        Backend::Nftables => nftables::helper::apply_ruleset(&ruleset(plan))?,
        Backend::Iptables => install_iptables(plan)?,
    }
    Ok(())
}

/// Removes our rules and the conntrack entries of flows to `tailscale_ips`.
pub fn remove(tailscale_ips: &[IpAddr], backend: Backend) -> Result<(), FirewallError> {
    match backend {
        Backend::Nftables => nftables::helper::apply_ruleset(&removal())?,
        Backend::Iptables => remove_iptables()?,
    }
    for ip in tailscale_ips {
        let family = if ip.is_ipv4() { "ipv4" } else { "ipv6" };
        let args = [
            "--delete",
            "--family",
            family,
            "--orig-dst",
            &ip.to_string(),
        ];
        let output = Command::new("conntrack")
            .args(args)
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
