//! The command line: `controller` (the default: run the controller),
//! `render` (offline preview of what would be applied), `policy check`
//! (load a policy and validate its settings) and `uninstall`.

mod args;
mod controller;
mod policy_check;
mod render;
mod trace;
mod uninstall;

use clap::{Parser, Subcommand};

/// Kubernetes LoadBalancer controller that gives Services a Tailscale IP,
/// placed by WebAssembly policies.
#[derive(Debug, Parser)]
#[command(
    name = "tailscale-svc-lb",
    version,
    about,
    long_about = None,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// With no subcommand, the controller runs with these arguments.
    #[command(flatten)]
    controller: controller::ControllerArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the controller (the default when no subcommand is given).
    Controller(Box<controller::ControllerArgs>),
    /// Print the objects the controller would apply for a Service (YAML on
    /// stdout) and what each policy did (on stderr). Talks to no cluster.
    Render(Box<render::RenderArgs>),
    /// Work with policy components.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Stop the controller and tear every proxy of the installation down
    /// (logout, objects, finalizers), leaving the Services as they are.
    Uninstall(Box<uninstall::UninstallArgs>),
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Load a policy component and have it validate its settings.
    Check(policy_check::CheckArgs),
}

impl Cli {
    /// Runs the chosen command.
    pub fn run(self) -> anyhow::Result<()> {
        match self.command {
            None => controller::run(self.controller),
            Some(Command::Controller(args)) => controller::run(*args),
            Some(Command::Render(args)) => render::run(*args),
            Some(Command::Policy(PolicyCommand::Check(args))) => policy_check::run(args),
            Some(Command::Uninstall(args)) => uninstall::run(*args),
        }
    }
}
