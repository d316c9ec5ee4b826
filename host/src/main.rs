//! The `tailscale-svc-lb` binary: parses the command line and reports any
//! error on one line with a non-zero exit.

mod cli;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    if let Err(error) = cli.run() {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}
