//! HTTP probes, as the kubelet's `httpGet` prober runs them: a GET of the
//! path on the pod's IP and the container port (named or numbered), success
//! for a status from 200 to 399, failure for anything else, a refused
//! connection or no answer within `timeoutSeconds` (default 1).
//!
//! Written by hand (HTTP/1.0, status line only): the probe needs nothing
//! else of HTTP, and the agent has no HTTP client otherwise.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A probe resolved against its container: what to ask, and how often.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpProbe {
    pub port: u16,
    pub path: String,
    pub period: Duration,
    pub timeout: Duration,
    pub initial_delay: Duration,
    pub failure_threshold: u32,
}

/// The probe of `container`, if it is an `httpGet` one whose port resolves
/// (a named port is looked up in the container's ports).
pub fn resolve(probe: Option<&Probe>, container: &Container) -> Option<HttpProbe> {
    let probe = probe?;
    let get = probe.http_get.as_ref()?;
    let port = match &get.port {
        IntOrString::Int(n) => u16::try_from(*n).ok()?,
        IntOrString::String(name) => container
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name))
            .and_then(|p| u16::try_from(p.container_port).ok())?,
    };
    let seconds =
        |v: Option<i32>, default: u64| Duration::from_secs(v.map_or(default, |s| s.max(1) as u64));
    Some(HttpProbe {
        port,
        path: get.path.clone().unwrap_or_else(|| "/".into()),
        period: seconds(probe.period_seconds, 10),
        timeout: seconds(probe.timeout_seconds, 1),
        initial_delay: Duration::from_secs(probe.initial_delay_seconds.unwrap_or(0).max(0) as u64),
        failure_threshold: probe.failure_threshold.unwrap_or(3).max(1) as u32,
    })
}

/// Runs the probe once against `ip`; `true` for success.
pub async fn check(probe: &HttpProbe, ip: &str) -> bool {
    let ask = async {
        let mut stream = tokio::net::TcpStream::connect((ip, probe.port))
            .await
            .ok()?;
        let request = format!(
            "GET {} HTTP/1.0\r\nHost: {ip}:{}\r\nUser-Agent: kube-probe/1.33\r\n\r\n",
            probe.path, probe.port
        );
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut head = vec![0; 64];
        let n = stream.read(&mut head).await.ok()?;
        let line = String::from_utf8_lossy(&head[..n]).into_owned();
        line.split_whitespace().nth(1)?.parse::<u16>().ok()
    };
    matches!(
        tokio::time::timeout(probe.timeout, ask).await,
        Ok(Some(200..=399))
    )
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{ContainerPort, HTTPGetAction};

    use super::*;

    #[test]
    fn a_named_port_resolves_through_the_containers_ports() {
        let container = Container {
            ports: Some(vec![ContainerPort {
                name: Some("health".into()),
                container_port: 9002,
                ..Default::default()
            }]),
            ..Default::default()
        };
        let probe = Probe {
            http_get: Some(HTTPGetAction {
                path: Some("/readyz".into()),
                port: IntOrString::String("health".into()),
                ..Default::default()
            }),
            period_seconds: Some(5),
            ..Default::default()
        };
        let resolved = resolve(Some(&probe), &container).unwrap();
        assert_eq!((resolved.port, resolved.path.as_str()), (9002, "/readyz"));
        assert_eq!(resolved.period, Duration::from_secs(5));
        assert_eq!(resolved.failure_threshold, 3);
        let unknown = Probe {
            http_get: Some(HTTPGetAction {
                port: IntOrString::String("nope".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(resolve(Some(&unknown), &container), None);
    }

    #[tokio::test]
    async fn success_is_a_2xx_or_3xx_answer_and_a_refusal_fails() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            for status in ["302 Found", "503 Service Unavailable"] {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut buf = [0; 256];
                let _ = socket.read(&mut buf).await;
                let reply = format!("HTTP/1.1 {status}\r\n\r\n");
                socket.write_all(reply.as_bytes()).await.unwrap();
            }
        });
        let probe = HttpProbe {
            port,
            path: "/readyz".into(),
            period: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            initial_delay: Duration::ZERO,
            failure_threshold: 3,
        };
        assert!(check(&probe, "127.0.0.1").await);
        assert!(!check(&probe, "127.0.0.1").await);
        assert!(
            !check(&probe, "127.0.0.1").await,
            "refused once the server is gone"
        );
    }
}
