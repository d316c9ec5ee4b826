//! The command line: `controller` (the default: run the controller),
//! `render` (offline preview of what would be applied), `policy new|check|
//! bench` (write, check and measure a policy) and `uninstall`.

mod args;
mod controller;
mod policy_bench;
mod policy_check;
mod policy_new;
mod policy_sample;
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
    /// Write a new policy crate, ready to test natively and to build for
    /// wasm32-wasip2.
    New(policy_new::NewArgs),
    /// Load a policy component as the controller does, have it validate its
    /// settings and evaluate it once; report its size, stack and speed.
    Check(policy_check::CheckArgs),
    /// Measure a policy with the controller's engine and limits: compile
    /// time, time per evaluation, nodes read, memory used.
    Bench(policy_bench::BenchArgs),
}

impl Cli {
    /// Runs the chosen command.
    pub fn run(self) -> anyhow::Result<()> {
        match self.command {
            None => controller::run(self.controller),
            Some(Command::Controller(args)) => controller::run(*args),
            Some(Command::Render(args)) => render::run(*args),
            Some(Command::Policy(PolicyCommand::New(args))) => policy_new::run(args),
            Some(Command::Policy(PolicyCommand::Check(args))) => policy_check::run(args),
            Some(Command::Policy(PolicyCommand::Bench(args))) => policy_bench::run(args),
            Some(Command::Uninstall(args)) => uninstall::run(*args),
        }
    }
}
