//! tailscaled and the tailscale CLI: their arguments, the status they
//! report, and running them.

pub mod args;
pub mod daemon;
pub mod status;
