//! The server as a process of its own, for benchmarks that measure a
//! client's memory without the server's: [`serve_until_interrupted`] is what
//! such a process runs (the `kube-sim` binary, or a benchmark re-executing
//! itself), and [`SimProcess`] starts one and talks to it.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::server::{KubeSim, config_for};

/// Serves on `listen` until SIGINT/SIGTERM, after printing the server's URL
/// as the first line of standard output and its admin kubeconfig, as one
/// line of JSON, as the second.
pub async fn serve_until_interrupted(
    listen: SocketAddr,
    kubeconfig: Option<&Path>,
) -> std::io::Result<()> {
    let server = KubeSim::start_on(listen).await?;
    if let Some(path) = kubeconfig {
        server.write_kubeconfig(path)?;
    }
    println!("{}", server.url());
    println!(
        "{}",
        serde_json::json!({"kubeconfig": server.kubeconfig(), "ca": server.ca_pem(),
                           "token": server.admin_token()})
    );
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result,
        _ = terminate.recv() => Ok(()),
    }
}

/// A server running in a child process; killed when dropped.
pub struct SimProcess {
    child: Child,
    url: String,
    /// `{kubeconfig, ca, token}` as the server printed them.
    access: serde_json::Value,
}

impl SimProcess {
    /// Runs `program args…`, which must end up in
    /// [`serve_until_interrupted`], and waits for its URL.
    pub fn spawn(program: &Path, args: &[&str]) -> std::io::Result<Self> {
        let mut child = Command::new(program)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout);
        let mut url = String::new();
        lines.read_line(&mut url)?;
        let url = url.trim().to_string();
        let mut second = String::new();
        lines.read_line(&mut second)?;
        let access = serde_json::from_str::<serde_json::Value>(&second)
            .ok()
            .filter(|v| v["kubeconfig"].is_string() && v["ca"].is_string());
        let Some(access) = access.filter(|_| url.starts_with("https://")) else {
            let _ = child.kill();
            return Err(std::io::Error::other(format!(
                "the server printed {url:?} instead of its URL and credentials"
            )));
        };
        Ok(Self { child, url, access })
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server's CA certificate (PEM).
    pub fn ca_pem(&self) -> &str {
        self.access["ca"].as_str().unwrap_or_default()
    }

    /// The server's admin kubeconfig.
    pub fn kubeconfig(&self) -> &str {
        self.access["kubeconfig"].as_str().unwrap_or_default()
    }

    /// An admin client of the server.
    pub fn client(&self) -> kube::Client {
        let text = |key: &str| self.access[key].as_str().unwrap_or_default();
        kube::Client::try_from(config_for(&self.url, text("ca"), text("token"))).expect("a client")
    }

    /// Requests the server has answered, by verb and resource (see
    /// [`crate::RequestCounts`]).
    pub async fn requests(&self) -> kube::Result<std::collections::BTreeMap<String, u64>> {
        let request = axum::http::Request::get("/kube-sim/requests")
            .body(Vec::new())
            .expect("a valid request");
        self.client().request(request).await
    }

    /// The server process's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resident memory of process `pid` (`/proc/<pid>/status`, VmRSS), in MiB.
pub fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}
