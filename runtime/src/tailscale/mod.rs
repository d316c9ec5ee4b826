//! tailscaled and the tailscale CLI: their arguments, the status they
//! report, what their failures mean, and running them.

pub mod args;
pub mod daemon;
pub mod failure;
pub mod status;
