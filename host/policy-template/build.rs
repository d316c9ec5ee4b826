//! Links the component with a 64 KiB stack (Rust's default is 1 MiB): a
//! policy call needs little, and the controller starts a fresh instance for
//! every evaluation, whose cost grows with the memory it sets up.
//! `tailscale-svc-lb policy check` reports the stack a component has.

fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo::rustc-link-arg-cdylib=-zstack-size=65536");
    }
}
