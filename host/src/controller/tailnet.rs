//! The controller's side of the optional Tailscale OAuth client: a one-off,
//! preauthorized auth key with the plan's tags minted per proxy into its
//! state Secret (the runtime logs in with it and removes it), and the
//! tailnet cleaned after teardown (the device deleted, a key never used
//! revoked), so a re-created Service gets its old name back and nothing is
//! left in the tailnet. Without `--oauth-secret` none of this runs.
//!
//! The OAuth client is read from its Secret when needed (and the API client
//! rebuilt when the Secret changes); its secret is never logged.

use std::sync::Arc;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::Patch;
use serde_json::json;
use svc_lb_contract::state;
use tokio::sync::Mutex;

use super::context::{Context, SecretSummary, manager_params};
use super::error::ReconcileError;
use super::status::ProxyReport;
use crate::config::OAuthConfig;
use crate::tailscale_api::{ApiError, Deleted, OAuthClient, Secret as Hidden, TailscaleApi};

/// Keys of the OAuth client's Secret (those of Tailscale's operator).
pub const CLIENT_ID_KEY: &str = "client_id";
/// See [`CLIENT_ID_KEY`].
pub const CLIENT_SECRET_KEY: &str = "client_secret";

/// The API client, built from the OAuth Secret as last read.
#[derive(Default)]
pub struct Tailnet {
    cached: Mutex<Option<(String, Arc<TailscaleApi>)>>,
}

/// What to do about a proxy's minted key. Pure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyAction {
    /// Nothing: a key waits, or the device logged in with the plan's tags.
    None,
    /// Mint one: the device has not logged in (or with other tags than the
    /// plan's, so it must log in again), and no key waits.
    Mint,
    /// Revoke the waiting key (`id`) and remove it: control refused it
    /// (expired, used up) or it carries tags the plan no longer asks for.
    /// A new one is minted on the next reconcile.
    Replace(String),
}

/// What to do about the key of a proxy whose state Secret reads `summary`,
/// for a plan asking for `plan_tags`.
pub fn key_action(summary: &SecretSummary, plan_tags: &[String]) -> KeyAction {
    let report = &summary.report;
    if summary.deprovision_requested || report.logged_out.is_some() {
        return KeyAction::None;
    }
    let mut wanted = plan_tags.to_vec();
    wanted.sort();
    if let Some(id) = &summary.auth_key_id {
        let mut minted = summary.auth_key_tags.clone();
        minted.sort();
        let refused = report
            .problem
            .as_ref()
            .is_some_and(|(code, _)| code == svc_lb_contract::state::problem::AUTH_KEY_REJECTED);
        return if refused || minted != wanted {
            KeyAction::Replace(id.clone())
        } else {
            KeyAction::None
        };
    }
    // The login request is recorded (with the key's removal) as soon as the
    // device has logged in, before it reports its id.
    match (&report.login_tags, &report.device_id) {
        (Some(logged_in_with), _) if *logged_in_with == wanted => KeyAction::None,
        (Some(_), _) => KeyAction::Mint,
        (None, Some(_)) => KeyAction::None,
        (None, None) => KeyAction::Mint,
    }
}

/// What minting found.
#[derive(Debug)]
pub enum Minted {
    /// Nothing to do, or done.
    Done,
    /// The Secret changed meanwhile: decide again (no error to report).
    Retry,
}

impl Tailnet {
    /// The API client for the OAuth client in `config.secret`.
    async fn api(
        &self,
        ctx: &Context,
        config: &OAuthConfig,
    ) -> Result<Arc<TailscaleApi>, ReconcileError> {
        let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.config.namespace);
        let secret = secrets.get_opt(&config.secret).await?.ok_or_else(|| {
            ReconcileError::OAuth(format!(
                "the OAuth Secret {}/{} does not exist",
                ctx.config.namespace, config.secret
            ))
        })?;
        let version = secret.metadata.resource_version.clone().unwrap_or_default();
        let mut cached = self.cached.lock().await;
        if let Some((seen, api)) = cached.as_ref()
            && *seen == version
        {
            return Ok(api.clone());
        }
        let data = secret.data.unwrap_or_default();
        let field = |key: &str| {
            data.get(key)
                .and_then(|b| String::from_utf8(b.0.clone()).ok())
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    ReconcileError::OAuth(format!(
                        "the OAuth Secret {}/{} has no {key}",
                        ctx.config.namespace, config.secret
                    ))
                })
        };
        let oauth = OAuthClient {
            client_id: field(CLIENT_ID_KEY)?,
            client_secret: Hidden::new(field(CLIENT_SECRET_KEY)?),
        };
        let api = Arc::new(
            TailscaleApi::new(&config.api_url, &config.tailnet, oauth)
                .map_err(ReconcileError::Tailnet)?,
        );
        *cached = Some((version, api.clone()));
        Ok(api)
    }

    /// Mints, replaces or leaves the key of the proxy whose state Secret
    /// is `state_secret` ([`key_action`]). The write is conditional on the
    /// Secret as read: if it changed meanwhile, the key is revoked again and
    /// [`Minted::Retry`] says to decide anew.
    pub async fn ensure_auth_key(
        &self,
        ctx: &Context,
        state_secret: &str,
        summary: &SecretSummary,
        tags: &[String],
        description: &str,
    ) -> Result<Minted, ReconcileError> {
        let Some(config) = &ctx.config.oauth else {
            return Ok(Minted::Done);
        };
        let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.config.namespace);
        let condition = json!({"resourceVersion": summary.resource_version});
        match key_action(summary, tags) {
            KeyAction::None => Ok(Minted::Done),
            KeyAction::Replace(id) => {
                let api = self.api(ctx, config).await?;
                api.delete_auth_key(&id)
                    .await
                    .map_err(ReconcileError::Tailnet)?;
                // The problem reported was about the old key: it goes with
                // it (the runtime reports anew if the new key fails too).
                let mut data = serde_json::Map::new();
                for key in [
                    state::AUTH_KEY,
                    state::AUTH_KEY_ID,
                    state::AUTH_KEY_TAGS,
                    state::PROBLEM,
                    state::PROBLEM_MESSAGE,
                ] {
                    data.insert(key.into(), serde_json::Value::Null);
                }
                let patch = json!({"metadata": condition, "data": data});
                secrets
                    .patch(state_secret, &manager_params(), &Patch::Merge(patch))
                    .await?;
                tracing::info!(secret = state_secret, key_id = %id, "revoked the proxy's auth key to mint another");
                Ok(Minted::Retry)
            }
            KeyAction::Mint => {
                if tags.is_empty() {
                    return Err(ReconcileError::OAuth(
                        "with an OAuth client every proxy needs tags (keys minted by an OAuth \
                         client must carry tags): set defaultTags or the tags annotation"
                            .into(),
                    ));
                }
                let api = self.api(ctx, config).await?;
                let key = api
                    .create_auth_key(tags, description)
                    .await
                    .map_err(ReconcileError::Tailnet)?;
                let mut data = serde_json::Map::new();
                data.insert(state::AUTH_KEY.into(), encoded(key.key.expose()));
                data.insert(state::AUTH_KEY_ID.into(), encoded(&key.id));
                data.insert(state::AUTH_KEY_TAGS.into(), encoded(&tags.join(",")));
                let patch = json!({"metadata": condition, "data": data});
                match secrets
                    .patch(state_secret, &manager_params(), &Patch::Merge(patch))
                    .await
                {
                    Ok(_) => {
                        tracing::info!(secret = state_secret, key_id = %key.id, ?tags, "minted a one-off auth key for the proxy");
                        Ok(Minted::Done)
                    }
                    Err(error) => {
                        // Not written: nothing will use the key, so it goes.
                        if let Err(revoke) = api.delete_auth_key(&key.id).await {
                            tracing::warn!(key_id = %key.id, error = %revoke, "cannot revoke an auth key that was not written");
                        }
                        match error {
                            kube::Error::Api(status) if status.code == 409 => Ok(Minted::Retry),
                            other => Err(other.into()),
                        }
                    }
                }
            }
        }
    }

    /// After a proxy's teardown: deletes its device (`report.device_id`)
    /// and revokes a key it never used (`auth_key_id`). The id comes from
    /// the state Secret, which the proxy pods may write: the device is
    /// deleted only if it is the proxy's, with the hostname and tags its
    /// DaemonSet (`daemonset`, the controller's own object) gives it.
    pub async fn clean(
        &self,
        ctx: &Context,
        report: &ProxyReport,
        auth_key_id: Option<&str>,
        daemonset: &str,
    ) -> Result<(), ReconcileError> {
        let Some(config) = &ctx.config.oauth else {
            return Ok(());
        };
        if report.device_id.is_none() && auth_key_id.is_none() {
            return Ok(());
        }
        let api = self.api(ctx, config).await?;
        if let Some(id) = &report.device_id {
            let expected = proxy_identity(ctx, daemonset).await?;
            match api.device(id).await.map_err(ReconcileError::Tailnet)? {
                None => {
                    tracing::info!(device = %id, "the device was deleted from the tailnet before")
                }
                Some(device) if expected.as_ref().is_some_and(|e| e.matches(&device)) => {
                    let deleted = api
                        .delete_device(id)
                        .await
                        .map_err(ReconcileError::Tailnet)?;
                    tracing::info!(
                        device = %id,
                        gone_before = deleted == Deleted::AlreadyGone,
                        "deleted the device from the tailnet"
                    );
                }
                Some(device) => {
                    return Err(ReconcileError::OAuth(format!(
                        "not deleting device {id} ({} with tags {:?}): it is not this proxy's \
                         device ({}); the state Secret names another device",
                        device.hostname,
                        device.tags,
                        expected.map_or("its DaemonSet is gone".to_string(), |e| format!(
                            "{} with tags {:?}",
                            e.hostname, e.tags
                        ))
                    )));
                }
            }
        }
        if let Some(key) = auth_key_id {
            api.delete_auth_key(key)
                .await
                .map_err(ReconcileError::Tailnet)?;
            tracing::info!(key_id = key, "revoked an auth key never used");
        }
        Ok(())
    }
}

/// The hostname and tags a proxy's device has, by its DaemonSet.
struct ProxyIdentity {
    hostname: String,
    tags: Vec<String>,
}

impl ProxyIdentity {
    fn matches(&self, device: &crate::tailscale_api::Device) -> bool {
        let sorted = |tags: &[String]| {
            let mut tags = tags.to_vec();
            tags.sort();
            tags
        };
        device.hostname == self.hostname && sorted(&device.tags) == sorted(&self.tags)
    }
}

/// The identity the DaemonSet `name` gives its proxy (from its runtime's
/// environment), if the DaemonSet exists.
async fn proxy_identity(
    ctx: &Context,
    name: &str,
) -> Result<Option<ProxyIdentity>, ReconcileError> {
    let daemonsets: Api<k8s_openapi::api::apps::v1::DaemonSet> =
        Api::namespaced(ctx.client.clone(), &ctx.config.namespace);
    let Some(ds) = daemonsets.get_opt(name).await? else {
        return Ok(None);
    };
    let env = ds
        .spec
        .and_then(|s| s.template.spec)
        .and_then(|p| {
            p.containers
                .into_iter()
                .find(|c| c.name == crate::render::PROXY_CONTAINER)
        })
        .and_then(|c| c.env)
        .unwrap_or_default();
    let value = |name: &str| {
        env.iter()
            .find(|e| e.name == name)
            .and_then(|e| e.value.clone())
            .unwrap_or_default()
    };
    Ok(Some(ProxyIdentity {
        hostname: value(svc_lb_contract::env::HOSTNAME),
        tags: value(svc_lb_contract::env::TAGS)
            .split(',')
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect(),
    }))
}

fn encoded(value: &str) -> serde_json::Value {
    serde_json::to_value(ByteString(value.as_bytes().to_vec())).expect("bytes encode")
}

/// Whether an API error is worth retrying (the API may answer later).
pub fn retryable(error: &ApiError) -> bool {
    match error {
        ApiError::Unreachable { .. } => true,
        ApiError::Refused { status, .. } => *status == 429 || *status >= 500,
        ApiError::Unreadable { .. } => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(device: Option<&str>, login_tags: Option<&[&str]>) -> SecretSummary {
        SecretSummary {
            report: ProxyReport {
                device_id: device.map(str::to_string),
                login_tags: login_tags.map(|t| t.iter().map(|s| s.to_string()).collect()),
                ..ProxyReport::default()
            },
            ..SecretSummary::default()
        }
    }

    #[test]
    fn a_key_is_minted_for_a_new_device_or_new_tags_only() {
        let tags = vec!["tag:web".to_string()];
        let action = |s: &SecretSummary| key_action(s, &tags);
        assert_eq!(
            action(&summary(None, None)),
            KeyAction::Mint,
            "a new device"
        );
        assert_eq!(
            action(&summary(None, Some(&["tag:web"]))),
            KeyAction::None,
            "logged in, id not reported yet"
        );
        assert_eq!(
            action(&summary(Some("n1"), Some(&["tag:web"]))),
            KeyAction::None
        );
        assert_eq!(
            action(&summary(Some("n1"), Some(&["tag:old"]))),
            KeyAction::Mint,
            "new tags need a new login"
        );
        let mut waiting = summary(None, None);
        waiting.auth_key_id = Some("k1".into());
        waiting.auth_key_tags = tags.clone();
        assert_eq!(action(&waiting), KeyAction::None, "one waits already");
        let mut stale = waiting.clone();
        stale.auth_key_tags = vec!["tag:old".into()];
        assert_eq!(
            action(&stale),
            KeyAction::Replace("k1".into()),
            "minted for old tags"
        );
        let mut refused = waiting.clone();
        refused.report.problem = Some((
            svc_lb_contract::state::problem::AUTH_KEY_REJECTED.into(),
            "invalid key".into(),
        ));
        assert_eq!(
            action(&refused),
            KeyAction::Replace("k1".into()),
            "control refused it"
        );
        let mut leaving = summary(None, None);
        leaving.deprovision_requested = true;
        assert_eq!(action(&leaving), KeyAction::None, "being torn down");
    }

    #[test]
    fn only_answers_that_may_change_are_retried() {
        let refused = |status| ApiError::Refused {
            what: "x",
            status,
            message: String::new(),
        };
        assert!(retryable(&refused(503)));
        assert!(retryable(&refused(429)));
        assert!(!retryable(&refused(400)));
        assert!(retryable(&ApiError::Unreachable {
            url: String::new(),
            reason: String::new()
        }));
    }
}
