//! Commands as a policy author types them in a shell of their own: without
//! the variables the running test's cargo set (target dir, toolchain,
//! flags), which would change what an inner cargo builds and where.

use std::process::Command;

/// Variables a test inherits from its cargo that an author's shell lacks.
const OUTER_VARIABLES: &[&str] = &[
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTFLAGS",
    "RUSTUP_TOOLCHAIN",
    "RUSTC",
    "RUSTDOC",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
];

/// `program`, to run as from an author's shell.
pub fn author_command(program: &str) -> Command {
    let mut command = Command::new(program);
    for variable in OUTER_VARIABLES {
        command.env_remove(variable);
    }
    command
}
