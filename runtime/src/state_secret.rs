//! Reading and writing the state Secret: the report patch, and whether the
//! controller asked for deprovisioning (an annotation it sets when the
//! Service goes away), both as a fresh read and as a watch.

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::watcher;
use svc_lb_contract::keys::DEPROVISION_ANNOTATION;
use svc_lb_contract::state;
use tokio::sync::watch;

use crate::election::FIELD_MANAGER;
use crate::report::{Report, report_patch};
use crate::tailscale::args::LoginRequest;

/// The state Secret of this Service.
#[derive(Clone)]
pub struct StateSecret {
    api: Api<Secret>,
    name: String,
}

/// The state Secret as a new leader reads it.
#[derive(Debug, Clone, Default)]
pub struct FreshState {
    /// Whether deprovisioning is requested.
    pub deprovision_requested: bool,
    /// What the device last logged in with, if recorded.
    pub login_request: Option<LoginRequest>,
}

fn deprovision_requested(secret: &Secret) -> bool {
    secret
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(DEPROVISION_ANNOTATION))
}

impl StateSecret {
    /// The Secret `name` in `api`'s namespace.
    pub fn new(api: Api<Secret>, name: &str) -> Self {
        Self {
            api,
            name: name.into(),
        }
    }

    /// Writes a problem of a pod that cannot run at all (the problem keys
    /// only; see [`crate::report::problem_patch`]), unless a leader serves
    /// or has reported a problem of its own: those say more. Returns
    /// whether it wrote.
    pub async fn write_problem(&self, code: &str, message: &str) -> kube::Result<bool> {
        let data = self.data().await?;
        if data.contains_key(state::DEVICE_IPS) || data.contains_key(state::PROBLEM) {
            return Ok(false);
        }
        let patch = crate::report::problem_patch(code, message);
        self.api
            .patch(&self.name, &Self::params(), &Patch::Merge(patch))
            .await
            .map(|_| true)
    }

    /// Removes the problem keys if they still hold what this pod wrote
    /// (its `message`), now that the problem is gone.
    pub async fn clear_problem(&self, message: &str) -> kube::Result<()> {
        let data = self.data().await?;
        let ours = data
            .get(state::PROBLEM_MESSAGE)
            .is_some_and(|m| m.0 == message.as_bytes());
        if !ours {
            return Ok(());
        }
        let mut keys = serde_json::Map::new();
        keys.insert(state::PROBLEM.into(), serde_json::Value::Null);
        keys.insert(state::PROBLEM_MESSAGE.into(), serde_json::Value::Null);
        let patch = serde_json::json!({ "data": keys });
        self.api
            .patch(&self.name, &Self::params(), &Patch::Merge(patch))
            .await
            .map(drop)
    }

    /// The Secret's data, as the API server has it now.
    async fn data(
        &self,
    ) -> kube::Result<std::collections::BTreeMap<String, k8s_openapi::ByteString>> {
        Ok(self
            .api
            .get_opt(&self.name)
            .await?
            .and_then(|s| s.data)
            .unwrap_or_default())
    }

    fn params() -> PatchParams {
        PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        }
    }

    /// The auth key the controller minted for this proxy, if there is one.
    pub async fn read_auth_key(&self) -> kube::Result<Option<crate::settings::AuthKey>> {
        let secret = self.api.get_opt(&self.name).await?;
        Ok(secret
            .and_then(|s| s.data?.remove(state::AUTH_KEY))
            .and_then(|bytes| String::from_utf8(bytes.0).ok())
            .map(|key| key.trim().to_string())
            .filter(|key| !key.is_empty())
            .map(crate::settings::AuthKey::new))
    }

    /// Removes the minted auth key (used: the device has logged in with
    /// `request`), and records the login in the same write, so the
    /// controller never sees neither a key nor a login (and mints another).
    pub async fn remove_auth_key(&self, request: &LoginRequest) -> kube::Result<()> {
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        let mut data = serde_json::Map::new();
        data.insert(state::AUTH_KEY.into(), serde_json::Value::Null);
        data.insert(state::AUTH_KEY_ID.into(), serde_json::Value::Null);
        let recorded = serde_json::to_string(request).expect("serializable");
        data.insert(
            state::LOGIN_REQUEST.into(),
            serde_json::to_value(k8s_openapi::ByteString(recorded.into_bytes()))
                .expect("bytes encode"),
        );
        let patch = serde_json::json!({ "data": data });
        self.api
            .patch(&self.name, &params, &Patch::Merge(patch))
            .await
            .map(drop)
    }

    /// Writes `report` (our keys only).
    pub async fn write(&self, report: &Report) -> kube::Result<()> {
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        self.api
            .patch(&self.name, &params, &Patch::Merge(report_patch(report)))
            .await
            .map(drop)
    }

    /// Whether tailscaled's state in the Secret is complete: the machine key,
    /// the profiles, the current profile and the profile it names (what
    /// Tailscale's containerboot waits for after a first login: a daemon
    /// stopped before then leaves a state the next one cannot use).
    pub async fn tailscale_state_complete(&self) -> kube::Result<bool> {
        let secret = self.api.get_opt(&self.name).await?;
        let Some(data) = secret.and_then(|s| s.data) else {
            return Ok(false);
        };
        let has = |key: &str| data.contains_key(key);
        let current = data
            .get("_current-profile")
            .map(|b| String::from_utf8_lossy(&b.0).into_owned());
        Ok(has("_machinekey") && has("_profiles") && current.is_some_and(|key| has(&key)))
    }

    /// What a pod that just became leader reads before starting tailscaled,
    /// now from the API server.
    pub async fn read_fresh(&self) -> kube::Result<FreshState> {
        let secret = self.api.get_opt(&self.name).await?;
        let login_request = secret
            .as_ref()
            .and_then(|s| s.data.as_ref()?.get(state::LOGIN_REQUEST))
            .and_then(|bytes| serde_json::from_slice(&bytes.0).ok());
        Ok(FreshState {
            deprovision_requested: secret.as_ref().is_some_and(deprovision_requested),
            login_request,
        })
    }

    /// Follows the deprovisioning request through a watch.
    pub fn watch_deprovision(&self) -> watch::Receiver<bool> {
        let (sender, receiver) = watch::channel(false);
        let config = watcher::Config::default().fields(&format!("metadata.name={}", self.name));
        let mut events = watcher::watcher(self.api.clone(), config).boxed();
        tokio::spawn(async move {
            while let Some(event) = events.next().await {
                match event {
                    Ok(watcher::Event::Apply(s) | watcher::Event::InitApply(s)) => {
                        sender.send_if_modified(|requested| {
                            let now = deprovision_requested(&s);
                            std::mem::replace(requested, now) != now
                        });
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::debug!(%error, "state secret watch interrupted");
                        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    }
                }
                if sender.is_closed() {
                    return;
                }
            }
        });
        receiver
    }
}
