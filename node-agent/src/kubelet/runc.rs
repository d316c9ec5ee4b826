//! The `runc` command line, as containerd's shim drives it: `create` (the
//! container's stdio passed through to its log file), `start`, `kill`,
//! `delete`, `state`, `list`, and `run` for init containers. Every call
//! uses the agent's own state root, so `list` sees only its containers.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;

/// A runc call failed.
#[derive(Debug, thiserror::Error)]
#[error("runc {command}: {message}")]
pub struct RuncError {
    command: String,
    message: String,
}

/// A container's state (`runc state`).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct State {
    /// `created`, `running`, `paused` or `stopped`.
    pub status: String,
    /// Host pid of its init process.
    pub pid: u32,
}

/// runc with a state root of its own.
#[derive(Debug, Clone)]
pub struct Runc {
    root: PathBuf,
}

impl Runc {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The state root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("runc");
        command.arg("--root").arg(&self.root).args(args);
        command.stdin(Stdio::null()).kill_on_drop(false);
        command
    }

    async fn checked(&self, args: &[&str]) -> Result<String, RuncError> {
        let output = self.command(args).output().await.map_err(|e| RuncError {
            command: args.join(" "),
            message: e.to_string(),
        })?;
        if !output.status.success() {
            return Err(RuncError {
                command: args.join(" "),
                message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Runs `runc <args>` with its (and so the container's) stdout and
    /// stderr appended to `log`.
    async fn with_log(
        &self,
        args: &[&str],
        log: &Path,
    ) -> Result<std::process::ExitStatus, RuncError> {
        let error = |message: String| RuncError {
            command: args.join(" "),
            message,
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| error(e.to_string()))?;
        self.command(args)
            .stdout(file.try_clone().map_err(|e| error(e.to_string()))?)
            .stderr(file)
            .status()
            .await
            .map_err(|e| error(e.to_string()))
    }

    /// `runc create`: the container's stdout and stderr go to `log`.
    pub async fn create(&self, id: &str, bundle: &Path, log: &Path) -> Result<(), RuncError> {
        let status = self
            .with_log(&["create", "--bundle", &bundle.to_string_lossy(), id], log)
            .await?;
        if !status.success() {
            return Err(RuncError {
                command: format!("create {id}"),
                message: format!("{status}, see {}", log.display()),
            });
        }
        Ok(())
    }

    /// `runc start`.
    pub async fn start(&self, id: &str) -> Result<(), RuncError> {
        self.checked(&["start", id]).await.map(drop)
    }

    /// `runc run` in the foreground; the container's exit code.
    pub async fn run(&self, id: &str, bundle: &Path, log: &Path) -> Result<i32, RuncError> {
        let status = self
            .with_log(&["run", "--bundle", &bundle.to_string_lossy(), id], log)
            .await?;
        let _ = self.checked(&["delete", "--force", id]).await;
        Ok(status.code().unwrap_or(128 + 9))
    }

    /// `runc kill <signal>` (to the container's init process).
    pub async fn kill(&self, id: &str, signal: &str) -> Result<(), RuncError> {
        self.checked(&["kill", id, signal]).await.map(drop)
    }

    /// `runc delete --force`.
    pub async fn delete(&self, id: &str) -> Result<(), RuncError> {
        self.checked(&["delete", "--force", id]).await.map(drop)
    }

    /// `runc state`; `None` when runc does not know the container.
    pub async fn state(&self, id: &str) -> Option<State> {
        let text = self.checked(&["state", id]).await.ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Ids of the containers of this root.
    pub async fn list(&self) -> Vec<String> {
        let Ok(text) = self.checked(&["list", "--format", "json"]).await else {
            return Vec::new();
        };
        let list: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap_or_default();
        list.iter()
            .filter_map(|c| c["id"].as_str().map(str::to_string))
            .collect()
    }
}
