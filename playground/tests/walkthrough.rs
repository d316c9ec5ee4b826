//! The README's "Writing a policy" walkthrough, as written: with a
//! playground running, its shell blocks run in bash as a second shell would
//! (after the `export` line the playground printed), its edit is made where
//! it says, and the last command, `kubectl get service web`, is repeated
//! until it shows the device's new name. Then the playground is stopped and
//! must leave nothing.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[path = "../../host/tests/support/author_shell.rs"]
mod author_shell;

const EFFECT: &str = "default-web-dev.fake.ts.net";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The walkthrough's pieces, found by their markers in the README.
struct Walkthrough {
    new: String,
    edit_anchor: String,
    edit: String,
    to_effect: String,
}

/// The fenced block after `marker` (its first line after the fence).
fn block_after<'a>(readme: &'a str, marker: &str) -> &'a str {
    let at = readme
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} not in the README"));
    let rest = &readme[at..];
    let open = rest.find("```").unwrap();
    let body = &rest[open..];
    let body = &body[body.find('\n').unwrap() + 1..];
    &body[..body.find("```").unwrap()]
}

fn walkthrough() -> Walkthrough {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let edit_marker = "<!-- walkthrough: edit at \"";
    let anchor_at = readme.find(edit_marker).unwrap() + edit_marker.len();
    let edit_anchor = readme[anchor_at..].split('"').next().unwrap().to_string();
    Walkthrough {
        new: block_after(&readme, "<!-- walkthrough: new -->").to_string(),
        edit_anchor,
        edit: block_after(&readme, edit_marker).to_string(),
        to_effect: block_after(&readme, "<!-- walkthrough: test to effect -->").to_string(),
    }
}

/// `script` in bash, as typed after the playground's `export` line.
fn bash(dir: &Path, export: &str, script: &str) -> Output {
    author_shell::author_command("bash")
        .current_dir(dir)
        .arg("-c")
        .arg(format!("set -euo pipefail\n{export}\n{script}"))
        .output()
        .expect("running bash")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The running playground; stopped (SIGTERM, its own clean-up) on drop.
struct Playground {
    child: Child,
    said: Arc<Mutex<String>>,
    state: tempfile::TempDir,
}

impl Playground {
    fn start() -> Self {
        let state = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_playground"))
            .arg("--state")
            .arg(state.path().join("playground"))
            .args(["--id", "walkthrough", "up"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the playground runs");
        let said = Arc::new(Mutex::new(String::new()));
        let sink = said.clone();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let mut said = sink.lock().unwrap();
                said.push_str(&line);
                said.push('\n');
            }
        });
        Self { child, said, state }
    }

    fn said(&self) -> String {
        self.said.lock().unwrap().clone()
    }

    fn wait_for(&mut self, text: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.said().contains(text) {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "the playground ended ({status}):\n{}\n{}",
                    self.said(),
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{text:?} not said:\n{}",
                self.said()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.state.path().join("playground/playground.log"))
            .unwrap_or_default()
    }

    /// Stops it as Ctrl-C would and returns what it said.
    fn stop(&mut self) -> String {
        // SAFETY: a plain kill(2) of our own child's pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        std::thread::sleep(Duration::from_millis(200));
        self.said()
    }
}

impl Drop for Playground {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.stop();
        }
    }
}

#[test]
fn the_readme_walkthrough_takes_a_new_policy_to_its_effect_in_the_playground() {
    let steps = walkthrough();
    let mut playground = Playground::start();
    playground.wait_for("Ctrl-C stops the playground", Duration::from_secs(300));
    let said = playground.said();
    let address = said
        .split("default/web has the tailnet address ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the playground names the address")
        .to_string();
    let export = said
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("export KUBECONFIG="))
        .expect("the playground prints its export line")
        .to_string();

    // Block one: from the checkout's root to the new crate.
    let crate_dir_file = playground.state.path().join("crate-dir");
    let out = bash(
        &repo(),
        &export,
        &format!("{}\npwd > {}", steps.new, crate_dir_file.display()),
    );
    assert!(out.status.success(), "{}", text(&out));
    let crate_dir = PathBuf::from(std::fs::read_to_string(&crate_dir_file).unwrap().trim());
    let _remove_crate = RemoveOnDrop(crate_dir.parent().unwrap().to_path_buf());

    // The edit, where the README says.
    let lib = crate_dir.join("src/lib.rs");
    let source = std::fs::read_to_string(&lib).unwrap();
    let anchor_line = source
        .lines()
        .find(|l| l.trim() == steps.edit_anchor)
        .unwrap_or_else(|| panic!("{:?} not in src/lib.rs", steps.edit_anchor));
    std::fs::write(&lib, source.replacen(anchor_line, steps.edit.trim_end(), 1)).unwrap();

    // Block two: test, build, check, bench, into the ConfigMap, look.
    let started = Instant::now();
    let out = bash(&crate_dir, &export, &steps.to_effect);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    for expected in [
        "test result: ok. 4 passed",
        "ok: target/wasm32-wasip2/release/team_env.wasm",
        "evaluate p50",
        "serverside-applied",
    ] {
        assert!(
            said.contains(expected),
            "{expected:?} missing from:\n{said}"
        );
    }
    eprintln!("{said}\nthe second block took {:?}", started.elapsed());

    // Its last command, again, until the controller has rolled the proxy.
    let look = steps
        .to_effect
        .trim_end()
        .lines()
        .last()
        .unwrap()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let out = bash(&crate_dir, &export, &look);
        if text(&out).contains(EFFECT) {
            // The device was renamed, not replaced: the same address.
            assert!(
                text(&out).contains(&format!("{address},")),
                "{}",
                text(&out)
            );
            eprintln!("{}", text(&out));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{look} never showed {EFFECT}:\n{}\n{}",
            text(&out),
            playground.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!(
        "from the second block to the effect: {:?}",
        started.elapsed()
    );

    let said = playground.stop();
    assert!(said.contains("✓ nothing left"), "{said}");
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
