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

/// Whether a proxy needs a freshly minted key: its device has not joined
/// the tailnet (or joined with other tags than the plan's, so it must log
/// in again), no key waits for it, and it is not being torn down. Pure.
pub fn needs_auth_key(summary: &SecretSummary, plan_tags: &[String]) -> bool {
    let report = &summary.report;
    if summary.auth_key_id.is_some() || summary.deprovision_requested || report.logged_out.is_some()
    {
        return false;
    }
    let mut wanted = plan_tags.to_vec();
    wanted.sort();
    match (&report.device_id, &report.login_tags) {
        (None, _) => true,
        (Some(_), Some(logged_in_with)) => *logged_in_with != wanted,
        (Some(_), None) => false,
    }
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

    /// Mints a key for the proxy whose state Secret is `state_secret` if it
    /// needs one ([`needs_auth_key`]), and writes it there. The write is
    /// conditional on the Secret as read: if it changed meanwhile the key
    /// is revoked again and the next reconcile decides anew.
    pub async fn ensure_auth_key(
        &self,
        ctx: &Context,
        state_secret: &str,
        summary: &SecretSummary,
        tags: &[String],
        description: &str,
    ) -> Result<(), ReconcileError> {
        let Some(config) = &ctx.config.oauth else {
            return Ok(());
        };
        if !needs_auth_key(summary, tags) {
            return Ok(());
        }
        let api = self.api(ctx, config).await?;
        let key = api
            .create_auth_key(tags, description)
            .await
            .map_err(ReconcileError::Tailnet)?;
        let mut data = serde_json::Map::new();
        data.insert(state::AUTH_KEY.into(), encoded(key.key.expose()));
        data.insert(state::AUTH_KEY_ID.into(), encoded(&key.id));
        let patch = json!({
            "metadata": {"resourceVersion": summary.resource_version},
            "data": data,
        });
        let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.config.namespace);
        match secrets
            .patch(state_secret, &manager_params(), &Patch::Merge(patch))
            .await
        {
            Ok(_) => {
                tracing::info!(secret = state_secret, key_id = %key.id, ?tags, "minted a one-off auth key for the proxy");
                Ok(())
            }
            Err(error) => {
                // Not written: nothing will use the key, so it goes.
                if let Err(revoke) = api.delete_auth_key(&key.id).await {
                    tracing::warn!(key_id = %key.id, error = %revoke, "cannot revoke an auth key that was not written");
                }
                Err(error.into())
            }
        }
    }

    /// After a proxy's teardown: deletes its device (`report.device_id`)
    /// and revokes a key it never used (`auth_key_id`).
    pub async fn clean(
        &self,
        ctx: &Context,
        report: &ProxyReport,
        auth_key_id: Option<&str>,
    ) -> Result<(), ReconcileError> {
        let Some(config) = &ctx.config.oauth else {
            return Ok(());
        };
        if report.device_id.is_none() && auth_key_id.is_none() {
            return Ok(());
        }
        let api = self.api(ctx, config).await?;
        if let Some(device) = &report.device_id {
            let deleted = api
                .delete_device(device)
                .await
                .map_err(ReconcileError::Tailnet)?;
            tracing::info!(
                device,
                gone_before = deleted == Deleted::AlreadyGone,
                "deleted the device from the tailnet"
            );
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
        assert!(needs_auth_key(&summary(None, None), &tags), "a new device");
        assert!(!needs_auth_key(
            &summary(Some("n1"), Some(&["tag:web"])),
            &tags
        ));
        assert!(
            needs_auth_key(&summary(Some("n1"), Some(&["tag:old"])), &tags),
            "new tags need a new login"
        );
        let mut waiting = summary(None, None);
        waiting.auth_key_id = Some("k1".into());
        assert!(!needs_auth_key(&waiting, &tags), "one waits already");
        let mut leaving = summary(None, None);
        leaving.deprovision_requested = true;
        assert!(!needs_auth_key(&leaving, &tags), "being torn down");
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
