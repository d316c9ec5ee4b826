//! What PID 1 owes the processes below it: in a container the runtime is
//! PID 1, and every process whose parent dies is given to it. tailscaled's
//! own children are such orphans when tailscaled is killed; if nobody
//! collects their exit status they stay zombies for the pod's lifetime.
//!
//! tokio collects the status of the runtime's own children (tailscaled, the
//! CLI) and `std::process` that of the firewall commands; taking theirs
//! would break them. So tailscaled runs in a process group of its own (it
//! leads it), and the reaper collects only zombies given to us from
//! *another* process group than ours that do not lead their group: that is
//! tailscaled's children, never tailscaled or our own. (A general-purpose
//! init such as tini reaps everything because it runs nothing else.)

/// One pass over `/proc`: reaps the orphaned zombies whose parent is us.
pub fn reap_orphans() {
    let me = std::process::id();
    let my_group = crate::sys::process_group();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for pid in entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
    {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if let Some((state, parent, group)) = parse_stat(&stat)
            && state == 'Z'
            && parent == me
            && group != my_group
            && group != pid
        {
            tracing::debug!(pid, "reaping an orphan");
            crate::sys::reap(pid);
        }
    }
}

/// `(state, parent, process group)` of a `/proc/<pid>/stat` line; the
/// command name (in parentheses) may hold spaces and parentheses itself.
fn parse_stat(stat: &str) -> Option<(char, u32, u32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let parent = fields.next()?.parse().ok()?;
    let group = fields.next()?.parse().ok()?;
    Some((state, parent, group))
}

/// When the runtime is PID 1: reaps orphans on every SIGCHLD, and every few
/// seconds in case a signal was merged with another.
pub fn start_if_pid_one() {
    if std::process::id() != 1 {
        return;
    }
    let Ok(mut children) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child())
    else {
        return;
    };
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = children.recv() => {}
                () = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
            }
            let _ = tokio::task::spawn_blocking(reap_orphans).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_are_read_past_odd_command_names() {
        let stat = "4242 (sleep (2) x) Z 1 77 77 0 -1 4194560 0 0 0 0";
        assert_eq!(parse_stat(stat), Some(('Z', 1, 77)));
        assert_eq!(parse_stat("garbage"), None);
    }
}
