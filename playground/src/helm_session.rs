//! Real Helm (Helm 4's Go SDK through `scripts/chart.py session`, with the
//! helm CLI's Secret storage) driven one JSON request per line: install,
//! upgrade, uninstall of the chart as release `tailscale-svc-lb`.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::Value;

/// `scripts/chart.py session`: Helm, driven line by line.
pub struct Helm {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Helm {
    pub fn start(kubeconfig: &Path) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/chart.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg("session")
            .arg(kubeconfig)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 with helm-python-sdk");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Self {
            child,
            stdin,
            stdout,
        }
    }

    /// Sends `request`; the answer and the session, on a blocking thread.
    pub fn send(mut self, request: Value) -> tokio::task::JoinHandle<(Value, Self)> {
        writeln!(self.stdin, "{request}").unwrap();
        tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            self.stdout.read_line(&mut line).unwrap();
            (serde_json::from_str(&line).expect("a JSON answer"), self)
        })
    }
}

impl Drop for Helm {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}
