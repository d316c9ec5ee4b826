//! The system calls no crate in use wraps: the raw monotonic clock,
//! creating a character device node (the TUN device, see `tun`), and, for
//! a child process, a
//! parent-death signal for tailscaled, so it can never outlive a runtime
//! killed with SIGKILL (tokio's `kill_on_drop` needs the runtime to run its
//! destructors), and sending SIGTERM for a graceful stop (tokio only sends
//! SIGKILL).
#![allow(unsafe_code)]

use std::io;

/// Makes `command`'s child receive SIGKILL when the thread that spawned it
/// exits. The runtime spawns from its only thread (a current-thread tokio
/// runtime), so that is when the runtime itself exits.
pub fn kill_with_parent(command: &mut tokio::process::Command) {
    // Taken before the fork: in a container the runtime is PID 1, so "our
    // parent is PID 1" does not mean "we were reparented".
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs between fork and exec and calls only
    // prctl(2) and getppid(2), both async-signal-safe; it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before prctl: then we were
            // reparented (to PID 1 or a subreaper) and must not run on.
            if libc::getppid() != parent {
                return Err(io::Error::other(
                    "the runtime exited before tailscaled started",
                ));
            }
            Ok(())
        });
    }
}

/// Sends SIGTERM to `pid`.
pub fn terminate(pid: u32) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(io::Error::other)?;
    // SAFETY: kill(2) with a valid signal number has no memory effects.
    if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Creates the character device node `path` (`major:minor`, mode `mode`).
pub fn make_char_device(
    path: &std::path::Path,
    major: u32,
    minor: u32,
    mode: u32,
) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: `path` is a valid NUL-terminated string that outlives the
    // call; mknod(2) reads it and touches no other memory.
    let made = unsafe {
        libc::mknod(
            path.as_ptr(),
            libc::S_IFCHR | mode as libc::mode_t,
            libc::makedev(major, minor),
        )
    };
    if made != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `CLOCK_MONOTONIC` in nanoseconds: one clock for every process on one
/// machine (network and PID namespaces do not change it), so the times at
/// which pods of a test's nodes, all on one machine, forwarded can be
/// compared (`std::time::Instant` hides its value).
pub fn monotonic_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime(2) writes one timespec into `now`, which lives
    // on this stack frame for the call.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// Collects the exit status of the exited child `pid`, if it is one
/// (`waitpid` without blocking).
pub fn reap(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    let mut status = 0;
    // SAFETY: waitpid(2) writes one int into `status`, on this frame.
    unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
}

/// This process's process group.
pub fn process_group() -> u32 {
    // SAFETY: getpgrp(2) takes no arguments and cannot fail.
    unsafe { libc::getpgrp() as u32 }
}
