//! Server-side apply of one Service's proxy objects, under one field
//! manager, skipped when nothing changed.
//!
//! The rendered Secret and Lease carry metadata only, so applying them never
//! touches what tailscaled and the runtime write there. A digest of the
//! rendered objects is kept as an annotation on the DaemonSet (not on its
//! pod template, so it never restarts pods): when the DaemonSet in the cache
//! carries the digest of the new render and the state Secret exists,
//! nothing is written.

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use svc_lb_contract::ProxyNames;

use super::context::{Context, FIELD_MANAGER};
use crate::render::ProxyObjects;

/// Annotation on the DaemonSet: digest of the render it was applied from.
pub const RENDER_DIGEST_ANNOTATION: &str = "svc-lb.tailscale.iptables.sh/render-digest";

/// What applying did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// Nothing to write: the cluster has this render.
    Unchanged,
    /// The DaemonSet did not exist before.
    Created,
    /// The render changed and was applied.
    Updated,
}

/// Hex sha256 of the rendered objects.
pub fn render_digest(objects: &ProxyObjects) -> String {
    let json = serde_json::to_vec(objects).unwrap_or_default();
    Sha256::digest(json)
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Applies `objects` (named by `names`) unless the cluster already has
/// this render.
pub async fn apply_proxy(
    ctx: &Context,
    objects: &ProxyObjects,
    names: &ProxyNames,
) -> kube::Result<ApplyOutcome> {
    let namespace = &ctx.config.namespace;
    let digest = render_digest(objects);
    let existing = ctx.caches.daemonsets.get(&names.daemonset);
    let applied_digest = existing.clone().flatten();
    let complete = ctx.caches.companions_exist(names);
    if applied_digest.as_deref() == Some(digest.as_str()) && complete {
        return Ok(ApplyOutcome::Unchanged);
    }
    let client = &ctx.client;
    apply::<ServiceAccount>(client, namespace, &objects.service_account).await?;
    apply::<Role>(client, namespace, &objects.role).await?;
    apply::<RoleBinding>(client, namespace, &objects.role_binding).await?;
    apply::<Secret>(client, namespace, &objects.state_secret).await?;
    apply::<Lease>(client, namespace, &objects.lease).await?;
    let mut daemonset = objects.daemonset.clone();
    daemonset
        .annotations_mut()
        .insert(RENDER_DIGEST_ANNOTATION.into(), digest);
    apply::<DaemonSet>(client, namespace, &daemonset).await?;
    Ok(if existing.is_some() {
        ApplyOutcome::Updated
    } else {
        ApplyOutcome::Created
    })
}

async fn apply<K>(client: &kube::Client, namespace: &str, object: &K) -> kube::Result<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Serialize
        + DeserializeOwned
        + std::fmt::Debug,
    <K as Resource>::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    api.patch(
        &object.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(object),
    )
    .await
}
