//! `playground up --once`, the unattended tour of `scripts/playground`:
//! from nothing to the laptop's curl through the tailnet address answered
//! by the echo backend; the leader's node lost and the same address
//! answering from the other node; the example policy set moving the proxy
//! to the edge node; the Service deleted (its device logged out, none of
//! its proxy's objects left); then every namespace, container, cgroup and
//! file of the playground removed. The binary checks each step and exits
//! non-zero if one fails; this test checks that it said so for each, and
//! looks at the machine itself afterwards.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn the_playground_tour_serves_through_the_tailnet_survives_node_loss_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("playground");
    // Its own id: a playground someone runs on this machine is not touched.
    let mut child = Command::new(env!("CARGO_BIN_EXE_playground"))
        .arg("--state")
        .arg(&state)
        .args(["--id", "tour", "up", "--once"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the playground runs");
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let log = std::fs::read_to_string(state.with_extension("log")).unwrap_or_default();
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{stdout}\n{stderr}\n----- the cluster's log -----\n{log}"
    );
    for said in [
        "✓ the echo backend answered through the tailnet",
        "answers from node-",
        "✓ the proxy moved to node-2 (edge)",
        "✓ the device logged out, none of its proxy's objects is left",
        "✓ nothing left",
    ] {
        assert!(stdout.contains(said), "{said:?} missing from:\n{stdout}");
    }
    eprintln!("{stdout}");
    // Nothing of it is left on the machine.
    let namespaces = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let namespaces = String::from_utf8_lossy(&namespaces.stdout);
    assert!(
        !namespaces.lines().any(|l| l.contains("tour")),
        "{namespaces}"
    );
    assert!(!state.exists());
}
