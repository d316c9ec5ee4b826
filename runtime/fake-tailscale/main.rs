//! A fake `tailscaled` and `tailscale` CLI for the runtime's tests (one
//! binary; it acts as whichever name it is called by). It keeps to what the
//! runtime uses of the real ones:
//!
//! - `tailscaled --state=kube:<secret> --socket=<path> --tun=<if>`: keeps the
//!   device's identity in the state Secret under the real daemon's keys
//!   (`_machinekey` at login; `_profiles`, `_current-profile` and the
//!   `profile-<id>` it names a moment later, as the real one completes its
//!   state after a first login; a daemon stopped in between leaves an
//!   incomplete state, and the next one logs in anew), so a standby started on
//!   the same Secret comes up as the same device without logging in; while
//!   logged in and running it puts the Tailscale addresses on `<if>` and
//!   routes the tailnet ranges through it, as the real daemon does on its
//!   TUN device. SIGTERM takes them away (the TUN device goes with the
//!   real daemon).
//! - `tailscale --socket=<path> up|status --json|set --hostname|logout`,
//!   with the real flags and `status --json` field names.
//!
//! The daemon first creates a TUN device from `/dev/net/tun` and exits,
//! with the real daemon's message, when it cannot (no node, or the device
//! rules of crun deny it). With a tailnet relay (`FAKE_TAILNET_RELAY`) the
//! TUN device, named by `--tun`, is the data path (see `tailnet.rs`: the
//! address lives and dies with the daemon, and moves with the device);
//! without one the tests' veth named by `--tun` is, and the TUN device is
//! `<tun>t` beside it. `fake-tailscale relay` and `fake-tailscale peer`
//! run the relay and a device outside the cluster.
//!
//! The "control server" is a directory (`FAKE_TAILNET_DIR`): a file per
//! device listed in the tailnet (`devices/<n>`; a logout marks it
//! `logged-out` and leaves it listed, as real control does; that a new
//! device with the same hostname then gets a `-1` name is not modelled). Two files model
//! the tailnet's policy, as real control enforces it at login: with
//! `permitted-tags` (comma-separated), a login asking for another tag fails
//! with control's words (`requested tags [tag:x] are invalid or not
//! permitted`); with `device-approval`, a new device waits in
//! `NeedsMachineAuth` until `approved/<n>` exists (an admin approved it;
//! `up` returns meanwhile, where the real one waits printing the admin URL).
//! With `keys/` (written by the tests' fake Tailscale API when it mints a
//! key) a login's key must be one of them, as control checks it: an unknown
//! key fails with `invalid key: API key does not exist`, a one-off key is
//! used up by its login, the device gets the key's tags, and a
//! preauthorized key skips device approval.
//! Per device,
//! the pid of the daemon currently running it (`active-<id>`) and a lock it
//! holds meanwhile (`active-<id>.lock`, released by the kernel when it
//! dies, in whichever pod). A second daemon running the same device while
//! the first still runs is recorded in `violations`: the runtime must make
//! that impossible.
//! Kubernetes access: in-cluster configuration (or `KUBECONFIG`), namespace
//! `SVCLB_POD_NAMESPACE`; the state store checks its permissions and writes
//! as the real one does (`kube_store.rs`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

mod kube_store;
mod tailnet;

/// The real daemon's state keys (`ipn/store/kubestore`, `ipn` state keys).
const MACHINE_KEY: &str = "_machinekey";
const PROFILES: &str = "_profiles";
const CURRENT_PROFILE: &str = "_current-profile";
/// The second line of `devices/<n>` once the device has logged out.
const LOGGED_OUT_MARK: &str = "logged-out";
/// How long after a login the profile keys are written.
const STATE_COMPLETION: Duration = Duration::from_millis(300);

fn encoded(text: &str) -> ByteString {
    ByteString(text.as_bytes().to_vec())
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Device {
    n: u32,
    hostname: String,
    tags: Vec<String>,
}

impl Device {
    fn id(&self) -> String {
        format!("nFAKE{}CNTRL", self.n)
    }
    fn ipv4(&self) -> String {
        format!("100.64.{}.{}", self.n / 250, self.n % 250 + 1)
    }
    fn ipv6(&self) -> String {
        format!("fd7a:115c:a1e0::{:x}", self.n)
    }
}

#[derive(Debug, Default)]
struct Node {
    state: &'static str,
    auth_url: String,
    device: Option<Device>,
    /// The state store could not be read: NoState for good.
    store_failed: bool,
}

struct Daemon {
    node: Mutex<Node>,
    secrets: Api<Secret>,
    secret: String,
    tun: String,
    tailnet: PathBuf,
    /// The lock of the device this daemon runs.
    lock: Mutex<Option<std::fs::File>>,
    /// Whether the pod may patch its state Secret (else it updates it).
    can_patch: bool,
    /// The profile write still to come after a login (a logout cancels it).
    pending_state: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The addresses this daemon announces to the tailnet relay.
    announced: tailnet::Announced,
    /// The tailnet relay, when the TUN device is the data path.
    relay: Option<std::net::SocketAddr>,
}

#[derive(Serialize, Deserialize)]
struct Reply {
    code: i32,
    stdout: String,
    stderr: String,
}

fn ip(args: &[&str]) {
    let _ = Command::new("ip").args(args).output();
}

impl Daemon {
    fn marker(&self, device: &Device) -> PathBuf {
        self.tailnet.join(format!("active-{}", device.id()))
    }

    /// The device goes up: addresses and tailnet routes on the TUN device.
    fn go_running(&self, node: &mut Node, device: Device) {
        let marker = self.marker(&device);
        let me = std::process::id();
        // The device's lock is held while a daemon runs it; the kernel
        // drops it when that daemon dies, whatever PID namespace (pod) it
        // ran in, so a lock held by another is a daemon still running.
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(marker.with_extension("lock"))
            .unwrap();
        use std::os::fd::AsRawFd;
        let held = self.lock.lock().unwrap().is_some();
        // SAFETY: flock on a descriptor this function owns.
        if !held && unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let other = std::fs::read_to_string(&marker).unwrap_or_default();
            let mut violations = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.tailnet.join("violations"))
                .unwrap();
            writeln!(
                violations,
                "{} run by {} and {me}",
                device.id(),
                other.trim()
            )
            .unwrap();
        }
        if !held {
            *self.lock.lock().unwrap() = Some(lock);
        }
        std::fs::write(&marker, me.to_string()).unwrap();
        let tun = self.tun.as_str();
        // Unsolicited neighbour advertisements when the link comes up.
        let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{tun}/ndisc_notify"), "1");
        ip(&["addr", "add", &format!("{}/32", device.ipv4()), "dev", tun]);
        ip(&[
            "-6",
            "addr",
            "add",
            &format!("{}/128", device.ipv6()),
            "dev",
            tun,
            "nodad",
        ]);
        ip(&["link", "set", tun, "up"]);
        ip(&["route", "replace", "100.64.0.0/10", "dev", tun]);
        ip(&["-6", "route", "replace", "fd7a:115c:a1e0::/48", "dev", tun]);
        // The "tailnet" is a bridge: a gratuitous ARP moves the device's
        // IPv4 traffic here (the real tailnet learns it from the control
        // server instead).
        // arping waits a second after sending: not on this thread.
        if let Ok(mut arping) = Command::new("arping")
            .args(["-U", "-c", "1", "-I", tun, &device.ipv4()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
        {
            std::thread::spawn(move || arping.wait());
        }
        let addresses: Vec<std::net::IpAddr> = [device.ipv4(), device.ipv6()]
            .iter()
            .filter_map(|a| a.parse().ok())
            .collect();
        if let Some(relay) = self.relay {
            tailnet::announce_now(relay, &addresses);
        }
        *self.announced.lock().unwrap() = addresses;
        node.state = "Running";
        node.auth_url.clear();
        node.device = Some(device);
    }

    /// The device goes down (logout or exit).
    fn go_down(&self, node: &mut Node) {
        if let Some(device) = &node.device {
            let _ = std::fs::remove_file(self.marker(device));
        }
        self.lock.lock().unwrap().take();
        self.announced.lock().unwrap().clear();
        ip(&["link", "set", &self.tun, "down"]);
        ip(&["addr", "flush", "dev", &self.tun]);
    }

    async fn save(&self, device: Option<&Device>) -> Result<(), String> {
        let Some(device) = device else {
            if let Some(pending) = self.pending_state.lock().unwrap().take() {
                pending.abort();
            }
            // Logout: no profile is current any more; the machine key stays.
            let data = [(PROFILES, encoded("{}")), (CURRENT_PROFILE, encoded(""))];
            return self.write(&data).await;
        };
        let profile = format!("profile-{:04x}", device.n);
        self.write(&[(MACHINE_KEY, encoded(&format!("mkey:{}", device.n)))])
            .await?;
        let value = ByteString(serde_json::to_vec(device).unwrap());
        let rest = [
            (
                PROFILES,
                encoded(&json!({&profile: {"ID": &profile}}).to_string()),
            ),
            (CURRENT_PROFILE, encoded(&profile)),
            (profile.as_str(), value),
        ]
        .map(|(k, v)| (k.to_string(), v));
        let (secrets, name, can_patch) =
            (self.secrets.clone(), self.secret.clone(), self.can_patch);
        let pending = tokio::spawn(async move {
            tokio::time::sleep(STATE_COMPLETION).await;
            let data: Vec<(&str, ByteString)> =
                rest.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
            let _ = kube_store::write(&secrets, &name, can_patch, &data).await;
        });
        *self.pending_state.lock().unwrap() = Some(pending);
        Ok(())
    }

    async fn write(&self, data: &[(&str, ByteString)]) -> Result<(), String> {
        kube_store::write(&self.secrets, &self.secret, self.can_patch, data).await
    }

    /// The stored device; an error when the state Secret cannot be read
    /// (then, as tailscaled ≥ 1.92 does, the daemon runs on in `NoState`).
    async fn load(&self) -> Result<Option<Device>, String> {
        let secret = self
            .secrets
            .get(&self.secret)
            .await
            .map_err(|e| e.to_string())?;
        let Some(mut data) = secret.data else {
            return Ok(None);
        };
        let current = data
            .remove(CURRENT_PROFILE)
            .map(|b| String::from_utf8_lossy(&b.0).into_owned());
        Ok(current
            .and_then(|key| data.remove(&key))
            .and_then(|bytes| serde_json::from_slice(&bytes.0).ok()))
    }

    /// The tags control grants for a request of `requested`: those of the
    /// control's `granted-tags` file when the test wrote one (a tagged auth
    /// key, or a Headscale policy, grants its own), else the requested ones.
    fn granted(&self, requested: Vec<String>) -> Vec<String> {
        match std::fs::read_to_string(self.tailnet.join("granted-tags")) {
            Ok(granted) => granted
                .trim()
                .split(',')
                .filter(|t| !t.is_empty())
                .map(String::from)
                .collect(),
            Err(_) => requested,
        }
    }

    /// The minted key `key` (with `keys/`): its tags and whether it is
    /// preauthorized, used up when one-off. `Ok(None)`: keys are not
    /// checked (no `keys/`).
    fn redeem_key(&self, key: &str) -> Result<Option<(Vec<String>, bool)>, String> {
        let keys = self.tailnet.join("keys");
        if !keys.is_dir() {
            return Ok(None);
        }
        let record = std::fs::read_to_string(keys.join(key))
            .map_err(|_| "backend error: invalid key: API key does not exist\n".to_string())?;
        let record: serde_json::Value = serde_json::from_str(&record).unwrap_or_default();
        if !record["reusable"].as_bool().unwrap_or(false) {
            let _ = std::fs::remove_file(keys.join(key));
        }
        let tags = serde_json::from_value(record["tags"].clone()).unwrap_or_default();
        Ok(Some((
            tags,
            record["preauthorized"].as_bool().unwrap_or(false),
        )))
    }

    /// The requested tags the tailnet policy does not permit, if it has a
    /// `permitted-tags` list.
    fn denied_tags(&self, requested: &[String]) -> Vec<String> {
        match std::fs::read_to_string(self.tailnet.join("permitted-tags")) {
            Ok(permitted) => {
                let permitted: Vec<&str> = permitted.trim().split(',').collect();
                requested
                    .iter()
                    .filter(|t| !permitted.contains(&t.as_str()))
                    .cloned()
                    .collect()
            }
            Err(_) => Vec::new(),
        }
    }

    /// Whether the device waits for an admin's approval.
    fn awaits_approval(&self, device: &Device) -> bool {
        self.tailnet.join("device-approval").exists()
            && !self.tailnet.join(format!("approved/{}", device.n)).exists()
    }

    /// The device goes up, or waits for approval first.
    fn go_running_if_approved(&self, node: &mut Node, device: Device) {
        if self.awaits_approval(&device) {
            node.state = "NeedsMachineAuth";
            node.device = Some(device);
        } else {
            self.go_running(node, device);
        }
    }

    fn register(&self, hostname: &str, tags: Vec<String>) -> Device {
        let devices = self.tailnet.join("devices");
        std::fs::create_dir_all(&devices).unwrap();
        let n = (1..)
            .find(|n| {
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(devices.join(n.to_string()))
                    .is_ok()
            })
            .unwrap();
        // As the tests' fake API reads it: hostname, then tags.
        std::fs::write(
            devices.join(n.to_string()),
            format!("{hostname}\n{}", tags.join(",")),
        )
        .unwrap();
        Device {
            n,
            hostname: hostname.into(),
            tags,
        }
    }

    async fn handle(&self, args: Vec<String>) -> Reply {
        let flag = |name: &str| {
            args.iter()
                .find_map(|a| a.strip_prefix(&format!("--{name}=")).map(String::from))
        };
        let has = |name: &str| args.iter().any(|a| a == &format!("--{name}"));
        let ok = |stdout: String| Reply {
            code: 0,
            stdout,
            stderr: String::new(),
        };
        let fail = |stderr: String| Reply {
            code: 1,
            stdout: String::new(),
            stderr,
        };
        match args.first().map(String::as_str) {
            Some("status") => {
                // The real CLI's flags (`cmd/tailscale/cli/status.go`); any
                // other is refused as Go's flag package refuses it.
                if let Some(unknown) = args[1..].iter().find(|a| {
                    !matches!(
                        a.split('=').next(),
                        Some("--json" | "--peers" | "--self" | "--active")
                    )
                }) {
                    return Reply {
                        code: 2,
                        stdout: String::new(),
                        stderr: format!("flag provided but not defined: {unknown}\n"),
                    };
                }
                let peers = flag("peers").is_none_or(|p| p != "false");
                let mut node = self.node.lock().unwrap();
                // Approved meanwhile: control lets the device in.
                if node.state == "NeedsMachineAuth"
                    && let Some(device) = node.device.clone()
                    && !self.awaits_approval(&device)
                {
                    self.go_running(&mut node, device);
                }
                let me = node.device.as_ref().filter(|_| node.state == "Running").map(|d| {
                    json!({
                        "ID": d.id(), "HostName": d.hostname, "DNSName": format!("{}.fake.ts.net.", d.hostname),
                        "OS": "linux", "TailscaleIPs": [d.ipv4(), d.ipv6()],
                        "Tags": if d.tags.is_empty() { None } else { Some(d.tags.clone()) }, "Online": true,
                    })
                });
                let mut status = json!({
                    "Version": "1.76.1-fake", "BackendState": node.state, "AuthURL": node.auth_url,
                    "TailscaleIPs": me.as_ref().map(|m| m["TailscaleIPs"].clone()),
                    "Self": me, "MagicDNSSuffix": "fake.ts.net",
                });
                // `--peers=false` leaves the peer map out (`StatusWithoutPeers`).
                if peers {
                    status["Peer"] = json!({});
                }
                ok(status.to_string())
            }
            Some("up") if self.node.lock().unwrap().store_failed => {
                fail("backend error: NoState: the state store is unavailable".into())
            }
            Some("logout") if self.node.lock().unwrap().store_failed => ok(String::new()),
            Some("up") => {
                let hostname = flag("hostname").unwrap_or_else(|| "fake".into());
                let tags: Vec<String> = flag("advertise-tags")
                    .unwrap_or_default()
                    .split(',')
                    .filter(|t| !t.is_empty())
                    .map(String::from)
                    .collect();
                let key = flag("auth-key").or_else(|| flag("authkey")).map(|k| {
                    match k.strip_prefix("file:") {
                        Some(path) => std::fs::read_to_string(path)
                            .unwrap_or_default()
                            .trim()
                            .to_string(),
                        None => k,
                    }
                });
                let existing = self.node.lock().unwrap().device.clone();
                let logs_in = existing.is_none() || has("force-reauth");
                let denied = self.denied_tags(&tags);
                if logs_in && key.is_some() && !denied.is_empty() {
                    // Go prints the slice space-separated.
                    return fail(format!(
                        "backend error: requested tags [{}] are invalid or not permitted\n",
                        denied.join(" ")
                    ));
                }
                let tags = self.granted(tags);
                let device = match (existing, key) {
                    (Some(mut d), _) if !has("force-reauth") => {
                        d.hostname = hostname;
                        d
                    }
                    (Some(mut d), Some(_)) => {
                        // A re-authentication: recorded, as control's audit
                        // log would, so tests can count them.
                        use std::io::Write;
                        let mut log = std::fs::OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(self.tailnet.join("reauths"))
                            .expect("the tailnet directory");
                        let _ = writeln!(log, "{}", d.n);
                        d.hostname = hostname;
                        d.tags = tags;
                        d
                    }
                    (_, Some(key)) if !key.starts_with("tskey-") => {
                        return fail(
                            "backend error: invalid key: unable to validate API key".into(),
                        );
                    }
                    (None, Some(key)) => match self.redeem_key(&key) {
                        Err(refusal) => return fail(refusal),
                        Ok(None) => self.register(&hostname, tags),
                        Ok(Some((key_tags, preauthorized))) => {
                            let device = self.register(&hostname, key_tags);
                            if preauthorized {
                                let approved = self.tailnet.join("approved");
                                std::fs::create_dir_all(&approved).unwrap();
                                std::fs::write(approved.join(device.n.to_string()), "").unwrap();
                            }
                            device
                        }
                    },
                    (_, None) => {
                        let mut node = self.node.lock().unwrap();
                        node.state = "NeedsLogin";
                        node.auth_url =
                            format!("https://login.fake.invalid/a/{:x}", std::process::id());
                        return ok(format!(
                            "\nTo authenticate, visit:\n\n\t{}\n\n",
                            node.auth_url
                        ));
                    }
                };
                if let Err(e) = self.save(Some(&device)).await {
                    return fail(format!("cannot write state: {e}"));
                }
                self.go_running_if_approved(&mut self.node.lock().unwrap(), device);
                ok(String::new())
            }
            Some("set") => {
                let device = {
                    let mut node = self.node.lock().unwrap();
                    match (flag("hostname"), node.device.as_mut()) {
                        (Some(hostname), Some(device)) => {
                            device.hostname = hostname;
                            Some(device.clone())
                        }
                        _ => None,
                    }
                };
                let Some(device) = device else {
                    return fail("set: nothing to set or not logged in".into());
                };
                // Control learns the new hostname.
                let _ = std::fs::write(
                    self.tailnet.join("devices").join(device.n.to_string()),
                    format!("{}\n{}", device.hostname, device.tags.join(",")),
                );
                match self.save(Some(&device)).await {
                    Ok(()) => ok(String::new()),
                    Err(e) => fail(e),
                }
            }
            Some("logout") => {
                // As with real control, a logout expires the device's key
                // but leaves it listed in the tailnet (only deleting it
                // through the API, or in the admin console, removes it).
                let device = self.node.lock().unwrap().device.clone();
                if let Some(device) = &device {
                    let _ = std::fs::write(
                        self.tailnet.join("devices").join(device.n.to_string()),
                        format!(
                            "{}\n{}\n{LOGGED_OUT_MARK}",
                            device.hostname,
                            device.tags.join(",")
                        ),
                    );
                }
                if let Err(e) = self.save(None).await {
                    return fail(e);
                }
                let mut node = self.node.lock().unwrap();
                self.go_down(&mut node);
                node.device = None;
                node.state = "NeedsLogin";
                ok(String::new())
            }
            other => fail(format!("unknown command {other:?}")),
        }
    }
}

async fn serve(daemon: Arc<Daemon>, listener: UnixListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let daemon = daemon.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut line = String::new();
            if BufReader::new(read).read_line(&mut line).await.is_err() {
                return;
            }
            let args: Vec<String> = serde_json::from_str(&line).unwrap_or_default();
            let reply = daemon.handle(args).await;
            let _ = write
                .write_all(serde_json::to_string(&reply).unwrap().as_bytes())
                .await;
        });
    }
}

/// Creates a TUN device named `name` from `/dev/net/tun`, as tailscaled's
/// `tun.CreateTUN` does (`TUNSETIFF`, `IFF_TUN | IFF_NO_PI`); it lives as
/// long as the returned file is open.
fn open_tun(name: &str) -> std::io::Result<std::fs::File> {
    const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
    const IFF_TUN: libc::c_short = 0x0001;
    const IFF_NO_PI: libc::c_short = 0x1000;
    #[repr(C)]
    struct IfReq {
        name: [u8; 16],
        flags: libc::c_short,
        _pad: [u8; 22],
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => std::io::Error::other("/dev/net/tun does not exist"),
            _ => e,
        })?;
    let mut request = IfReq {
        name: [0; 16],
        flags: IFF_TUN | IFF_NO_PI,
        _pad: [0; 22],
    };
    let bytes = name.as_bytes();
    request.name[..bytes.len().min(15)].copy_from_slice(&bytes[..bytes.len().min(15)]);
    use std::os::fd::AsRawFd;
    // SAFETY: TUNSETIFF reads and writes one `struct ifreq`, which
    // `request` is laid out as.
    if unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF, &mut request) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(file)
}

async fn tailscaled(args: Vec<String>) -> i32 {
    let flags: BTreeMap<&str, &str> = args
        .iter()
        .filter_map(|a| a.strip_prefix("--")?.split_once('='))
        .collect();
    let secret = flags["state"]
        .strip_prefix("kube:")
        .expect("--state=kube:<secret>")
        .to_string();
    let socket = PathBuf::from(flags["socket"]);
    let namespace = std::env::var("SVCLB_POD_NAMESPACE").expect("SVCLB_POD_NAMESPACE");
    let client = kube::Client::try_default().await.expect("kubeconfig");
    let permissions = kube_store::check_secret_permissions(&client, &namespace, &secret).await;
    let daemon = Arc::new(Daemon {
        node: Mutex::new(Node {
            state: "NoState",
            ..Node::default()
        }),
        secrets: Api::namespaced(client, &namespace),
        secret,
        tun: flags
            .get("tun")
            .copied()
            .unwrap_or("tailscale0")
            .to_string(),
        tailnet: PathBuf::from(std::env::var("FAKE_TAILNET_DIR").expect("FAKE_TAILNET_DIR")),
        lock: Mutex::new(None),
        can_patch: permissions.as_ref().is_ok_and(|(patch, _)| *patch),
        pending_state: Mutex::new(None),
        announced: Default::default(),
        relay: std::env::var(tailnet::RELAY_ENV)
            .ok()
            .and_then(|r| r.parse().ok()),
    });
    // The real daemon opens its TUN device first and exits when it cannot
    // (`tstun.New` → `CreateTUN`); the device lives as long as the daemon.
    let tun_name = daemon.tun.clone();
    // With a relay, the TUN device is the data path; without one, the
    // tests' veth of that name is, and the TUN device is `<tun>t` beside it.
    let data_path = daemon.relay.is_some();
    let device_name = if data_path {
        tun_name.clone()
    } else {
        format!("{tun_name}t")
    };
    let tun_device = match open_tun(&device_name) {
        Ok(device) => device,
        Err(error) => {
            eprintln!(
                "wgengine.NewUserspaceEngine(tun {tun_name:?}) error: tstun.New({tun_name:?}): \
                 CreateTUN({tun_name:?}) failed; {error}"
            );
            return 1;
        }
    };
    let _tun_device = match daemon.relay {
        Some(relay) => {
            tailnet::link(tun_device, relay, daemon.announced.clone()).expect("the relay link");
            None
        }
        None => Some(tun_device),
    };
    // The real daemon runs helpers of its own (`ip`, `iptables`, …): one
    // that outlives a SIGKILLed daemon is an orphan its parent's parent,
    // PID 1 in a container, must reap.
    let _helper = Command::new("sleep").arg("1").spawn();
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket).expect("socket");
    daemon.go_down(&mut daemon.node.lock().unwrap());
    // Starting from stored state takes a moment, as with the real daemon.
    let stored = match &permissions {
        Ok(_) => daemon.load().await,
        Err(error) => Err(error.clone()),
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    {
        let mut node = daemon.node.lock().unwrap();
        match stored {
            Ok(Some(device)) => daemon.go_running_if_approved(&mut node, device),
            Ok(None) => node.state = "NeedsLogin",
            // The real daemon (≥ 1.92) does not exit when its store fails:
            // it stays in NoState, refuses every login, and a logout
            // "succeeds" on the empty store.
            Err(error) => {
                eprintln!("ipnstore: cannot read state: {error}");
                node.store_failed = true;
            }
        }
    }
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
    tokio::select! {
        () = serve(daemon.clone(), listener) => {}
        _ = term.recv() => {}
    }
    daemon.go_down(&mut daemon.node.lock().unwrap());
    let _ = std::fs::remove_file(&socket);
    0
}

async fn call(socket: &Path, args: &[String]) -> Option<Reply> {
    let mut stream = UnixStream::connect(socket).await.ok()?;
    let mut line = serde_json::to_string(args).unwrap();
    line.push('\n');
    stream.write_all(line.as_bytes()).await.ok()?;
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply).await.ok()?;
    serde_json::from_str(&reply).ok()
}

async fn tailscale(args: Vec<String>) -> i32 {
    let socket = args
        .iter()
        .find_map(|a| a.strip_prefix("--socket="))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/run/tailscale/tailscaled.sock"));
    let rest: Vec<String> = args
        .iter()
        .filter(|a| !a.starts_with("--socket="))
        .cloned()
        .collect();
    let Some(reply) = call(&socket, &rest).await else {
        eprintln!("failed to connect to local tailscaled; it doesn't appear to be running");
        return 1;
    };
    print!("{}", reply.stdout);
    eprint!("{}", reply.stderr);
    // Like the real CLI, `up` without a key waits for the login.
    if reply.code == 0 && rest.first().is_some_and(|c| c == "up") && !reply.stdout.is_empty() {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let status = call(&socket, &["status".into()]).await;
            if status.is_some_and(|s| s.stdout.contains("\"BackendState\":\"Running\"")) {
                break;
            }
        }
    }
    reply.code
}

fn main() {
    let mut args: Vec<String> = std::env::args().collect();
    let called = Path::new(&args.remove(0))
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let role = if called == "tailscaled" || called == "tailscale" {
        called
    } else {
        args.remove(0)
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let code = runtime.block_on(async {
        match role.as_str() {
            "tailscaled" => tailscaled(args).await,
            "relay" => tailnet::relay(&args[0]),
            "peer" => tailnet::peer(&args[0], &args[1]),
            _ => tailscale(args).await,
        }
    });
    std::process::exit(code);
}
