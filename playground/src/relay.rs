//! The tests' path from a node's network namespace to kube-sim: socat in
//! the namespace connects to a Unix socket this process relays to
//! kube-sim's port, so no traffic leaves the namespaces a test made.

use std::path::PathBuf;

use tokio::sync::watch;

/// Relays connections on a Unix socket to kube-sim's TCP port until `cut`
/// turns `true`; from then on it black-holes: connections stay open and no
/// byte passes either way (a node silently cut off from the API server,
/// where only timeouts help).
pub async fn relay(socket: PathBuf, target: std::net::SocketAddr, cut: watch::Receiver<bool>) {
    let listener = tokio::net::UnixListener::bind(socket).unwrap();
    tokio::spawn(async move {
        while let Ok((mut unix, _)) = listener.accept().await {
            let mut cut = cut.clone();
            tokio::spawn(async move {
                if !*cut.borrow()
                    && let Ok(mut tcp) = tokio::net::TcpStream::connect(target).await
                {
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut unix, &mut tcp) => return,
                        _ = cut.wait_for(|c| *c) => {}
                    }
                    // Hold both ends open, silent.
                    std::future::pending::<()>().await;
                }
                let _hold = unix;
                std::future::pending::<()>().await;
            });
        }
    });
}
