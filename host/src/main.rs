//! The `tailscale-svc-lb` binary: parses the command line and reports any
//! error on one line with a non-zero exit.

mod cli;

use clap::Parser;

/// The static musl build's allocator (see host/Cargo.toml).
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's options (`mi_option_e` of its `mimalloc.h`, the same
/// numbers in its v2 and v3): arenas committed as they are used, and freed
/// memory returned at once. With its defaults the controller's resident
/// memory in the scale bench was twice glibc's (128 against 57 MiB peak);
/// with these, the same as glibc's at the same speed.
#[cfg(target_env = "musl")]
fn tune_allocator() {
    const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: plain option setters of the allocator, called before any
    // thread is started.
    unsafe {
        libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(PURGE_DELAY, 0);
    }
}

fn main() {
    #[cfg(target_env = "musl")]
    tune_allocator();
    let cli = cli::Cli::parse();
    if let Err(error) = cli.run() {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}
