//! The server as a process of its own, for benchmarks that measure a
//! client's memory without the server's: [`serve_until_interrupted`] is what
//! such a process runs (the `kube-sim` binary, or a benchmark re-executing
//! itself), and [`SimProcess`] starts one and talks to it.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::server::{KubeSim, client_for};

/// Serves on `listen` until SIGINT/SIGTERM, after printing the server's URL
/// as the first line of standard output.
pub async fn serve_until_interrupted(
    listen: SocketAddr,
    kubeconfig: Option<&Path>,
) -> std::io::Result<()> {
    let server = KubeSim::start_on(listen).await?;
    if let Some(path) = kubeconfig {
        server.write_kubeconfig(path)?;
    }
    println!("{}", server.url());
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
        let mut url = String::new();
        BufReader::new(stdout).read_line(&mut url)?;
        let url = url.trim().to_string();
        if !url.starts_with("http://") {
            let _ = child.kill();
            return Err(std::io::Error::other(format!(
                "the server printed {url:?} instead of its URL"
            )));
        }
        Ok(Self { child, url })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A client talking to the server over HTTP.
    pub fn client(&self) -> kube::Client {
        client_for(&self.url)
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
