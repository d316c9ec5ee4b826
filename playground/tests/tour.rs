//! `playground up --once`, the unattended tour of `scripts/playground`:
//! from nothing to the laptop's curl through the tailnet address answered
//! by the echo backend, then the leader's node lost and the same address
//! answering from the other node, then the Service deleted (its device
//! logged out, its proxy gone), then everything removed: the binary checks
//! each step and exits non-zero if one fails; this test checks that it
//! said so for each, and looks at the machine itself afterwards.

use std::process::Command;

#[test]
fn the_playground_tour_serves_through_the_tailnet_survives_node_loss_and_leaves_nothing() {
    let state = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_playground"))
        .arg("--state")
        .arg(state.path().join("playground"))
        .args(["up", "--once"])
        .output()
        .expect("the playground runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for said in [
        "✓ the echo backend answered through the tailnet",
        "answers from node-",
        "✓ the device logged out, its proxy is gone",
        "✓ nothing left",
    ] {
        assert!(stdout.contains(said), "{said:?} missing from:\n{stdout}");
    }
    eprintln!("{stdout}");
    // Nothing of it is left on the machine.
    let namespaces = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let namespaces = String::from_utf8_lossy(&namespaces.stdout);
    assert!(
        !namespaces.lines().any(|l| l.contains("play")),
        "{namespaces}"
    );
    assert!(!state.path().join("playground").exists());
}
