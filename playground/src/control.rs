//! Requests from another shell to the running `playground up`: one file
//! `control/request` written, `control/answer` awaited. A file, not a
//! socket: the state folder is the one place both already know.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::bail;

fn folder(state: &Path) -> PathBuf {
    state.join("control")
}

/// Sends `request` to the running playground and prints its answer.
pub fn request(state: &Path, request: &str, limit: Duration) -> anyhow::Result<()> {
    let dir = folder(state);
    if !dir.is_dir() {
        bail!("no playground is running (start one with scripts/playground)");
    }
    let answer = dir.join("answer");
    let _ = std::fs::remove_file(&answer);
    std::fs::write(dir.join("request.tmp"), request)?;
    std::fs::rename(dir.join("request.tmp"), dir.join("request"))?;
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(text) = std::fs::read_to_string(&answer) {
            let _ = std::fs::remove_file(&answer);
            println!("{text}");
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("the playground did not answer within {limit:?}")
}

/// The pending request, if any (taken).
pub fn take(state: &Path) -> Option<String> {
    let path = folder(state).join("request");
    let text = std::fs::read_to_string(&path).ok()?;
    let _ = std::fs::remove_file(&path);
    Some(text)
}

/// Answers the request taken last.
pub fn answer(state: &Path, text: &str) {
    let dir = folder(state);
    let _ = std::fs::write(dir.join("answer.tmp"), text);
    let _ = std::fs::rename(dir.join("answer.tmp"), dir.join("answer"));
}

/// Makes the folder requests come through.
pub fn open(state: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(folder(state))
}
