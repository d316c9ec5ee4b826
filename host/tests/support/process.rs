//! A binary of this workspace run as its container would run it: only the
//! environment given, output kept in a file, stopped with SIGTERM as the
//! kubelet stops a container.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running process and its output.
pub struct Process {
    child: Child,
    log: tempfile::NamedTempFile,
}

impl Process {
    /// Runs `binary` with `args` and exactly `env`.
    pub fn spawn(binary: &str, args: &[String], env: &BTreeMap<String, String>) -> Self {
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = Command::new(binary)
            .args(args)
            .env_clear()
            .envs(env)
            .stdout(Stdio::from(log.reopen().unwrap()))
            .stderr(Stdio::from(log.reopen().unwrap()))
            .spawn()
            .unwrap_or_else(|e| panic!("{binary}: {e}"));
        Self { child, log }
    }

    /// SIGTERM, then waits for the exit (SIGKILL after 10 s).
    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        if self.try_wait_for(Duration::from_secs(10)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// Waits for the exit, at most `limit` (then kills it).
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        match self.try_wait_for(limit) {
            Some(status) => status,
            None => {
                let _ = self.child.kill();
                self.child.wait().unwrap()
            }
        }
    }

    fn try_wait_for(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// What it wrote so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
