//! Running tailscaled as a child and the tailscale CLI against it.

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::process::{Child, Command};

use super::args::{socket_args, status_args, tailscaled_args, tailscaled_env};
use super::status::Status;
use crate::settings::TailscaleSettings;
use crate::sys;

/// Longest a CLI call may take.
const CLI_TIMEOUT: Duration = Duration::from_secs(10);

/// A CLI call that failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The binary could not run.
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The binary.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// It ran but failed (its arguments are not shown: they may hold the key).
    #[error("tailscale {command} failed: {message}")]
    Failed {
        /// The subcommand.
        command: String,
        /// Its error output.
        message: String,
    },
    /// It did not finish in time.
    #[error("tailscale {0} timed out")]
    TimedOut(String),
    /// `status --json` printed something else.
    #[error("tailscale status --json: {0}")]
    Status(#[from] serde_json::Error),
}

/// tailscaled, running as our child.
pub struct Tailscaled {
    child: Child,
}

fn program_name(settings: &TailscaleSettings) -> String {
    settings.tailscale.display().to_string()
}

impl Tailscaled {
    /// Starts tailscaled with the runtime's `firewall` mode; it dies with
    /// the runtime.
    pub fn spawn(
        settings: &TailscaleSettings,
        state_secret: &str,
        firewall: &str,
    ) -> Result<Self, CliError> {
        let spawn_error = |source| CliError::Spawn {
            program: settings.tailscaled.display().to_string(),
            source,
        };
        std::fs::create_dir_all(&settings.state_dir).map_err(spawn_error)?;
        let mut command = Command::new(&settings.tailscaled);
        command
            .args(tailscaled_args(settings, state_secret))
            .envs(tailscaled_env(firewall))
            .env_remove(svc_lb_contract::env::AUTH_KEY)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        sys::kill_with_parent(&mut command);
        // A process group of its own, which it leads: its orphans are told
        // from ours and from it (see `reaper`).
        command.process_group(0);
        let child = command.spawn().map_err(spawn_error)?;
        Ok(Self { child })
    }

    /// Asks tailscaled to exit (SIGTERM); [`Tailscaled::exited`] follows.
    pub fn interrupt(&self) {
        if let Some(pid) = self.child.id() {
            let _ = sys::terminate(pid);
        }
    }

    /// Resolves when tailscaled exits.
    pub async fn exited(&mut self) -> std::io::Result<ExitStatus> {
        self.child.wait().await
    }

    /// Stops tailscaled: SIGTERM, then SIGKILL after `grace`.
    pub async fn stop(mut self, grace: Duration) {
        if let Some(pid) = self.child.id() {
            let _ = sys::terminate(pid);
        }
        if tokio::time::timeout(grace, self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// Runs `tailscale --socket=… <args>` and returns its standard output.
pub async fn run_cli(settings: &TailscaleSettings, args: &[String]) -> Result<Vec<u8>, CliError> {
    let command_name = args.first().cloned().unwrap_or_default();
    let mut command = Command::new(&settings.tailscale);
    command
        .args(socket_args(settings))
        .args(args)
        .env_remove(svc_lb_contract::env::AUTH_KEY)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(CLI_TIMEOUT, command.output())
        .await
        .map_err(|_| CliError::TimedOut(command_name.clone()))?
        .map_err(|source| CliError::Spawn {
            program: program_name(settings),
            source,
        })?;
    if !output.status.success() {
        return Err(CliError::Failed {
            command: command_name,
            message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(output.stdout)
}

/// Starts `tailscale … <args>` without waiting for it (`up` blocks until
/// login, which may never come without an auth key); it dies with us. Its
/// error output is kept for when it fails.
pub fn spawn_cli(settings: &TailscaleSettings, args: &[String]) -> Result<Child, CliError> {
    let mut command = Command::new(&settings.tailscale);
    command
        .args(socket_args(settings))
        .args(args)
        .env_remove(svc_lb_contract::env::AUTH_KEY)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    sys::kill_with_parent(&mut command);
    command.spawn().map_err(|source| CliError::Spawn {
        program: program_name(settings),
        source,
    })
}

/// `tailscale status --json`, parsed.
pub async fn status(settings: &TailscaleSettings) -> Result<Status, CliError> {
    Ok(Status::parse(&run_cli(settings, &status_args()).await?)?)
}
