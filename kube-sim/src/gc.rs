//! Deletion propagation and garbage collection through `ownerReferences`,
//! as the real server's garbage collector and namespace controller do them,
//! but run to completion right after each request instead of in the
//! background:
//! - `Background` (the default): the owner goes first, then every dependent
//!   with no owner left;
//! - `Foreground`: the owner gets the `foregroundDeletion` finalizer and
//!   stays (with a deletion timestamp) until its dependents are gone;
//! - `Orphan`: dependents lose their reference to the owner and stay;
//! - a namespace becomes `Terminating`, its objects are deleted, and it goes
//!   with the last of them (objects held by finalizers hold it too).

use serde_json::Value;

use crate::error::ApiError;
use crate::registry::ResourceType;
use crate::store::Store;

/// The finalizer a foreground deletion puts on the owner.
const FOREGROUND: &str = "foregroundDeletion";

/// What happens to the dependents of a deleted object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Propagation {
    Background,
    Foreground,
    Orphan,
}

impl Propagation {
    /// The policy named by a request; `None` means the default.
    pub(crate) fn parse(name: Option<&str>) -> Result<Self, ApiError> {
        match name {
            None | Some("Background") => Ok(Self::Background),
            Some("Foreground") => Ok(Self::Foreground),
            Some("Orphan") => Ok(Self::Orphan),
            Some(other) => Err(ApiError::bad_request(format!(
                "propagationPolicy: Unsupported value: {other:?}: supported values: \
                 \"Foreground\", \"Background\", \"Orphan\""
            ))),
        }
    }
}

/// `DeleteOptions.preconditions`: the object must still have this uid and
/// resource version.
#[derive(Debug, Default)]
pub(crate) struct Preconditions<'a> {
    pub uid: Option<&'a str>,
    pub resource_version: Option<&'a str>,
    /// `DeleteOptions.gracePeriodSeconds` (pods only).
    pub grace_period: Option<i64>,
}

/// Deletes one object as a DELETE request asks, then settles everything the
/// deletion set off.
pub(crate) fn delete(
    store: &Store,
    rt: &'static ResourceType,
    namespace: &str,
    name: &str,
    propagation: Propagation,
    preconditions: &Preconditions<'_>,
) -> Result<Value, ApiError> {
    let object = store.get(rt, namespace, name)?;
    for (field, wanted) in [
        ("uid", preconditions.uid),
        ("resourceVersion", preconditions.resource_version),
    ] {
        let actual = object["metadata"][field].as_str().unwrap_or_default();
        if let Some(wanted) = wanted
            && wanted != actual
        {
            return Err(ApiError::conflict(format!(
                "Precondition failed: {field} in precondition: {wanted}, \
                 {field} in object meta: {actual}"
            )));
        }
    }
    if rt.kind == "Pod" {
        let grace = crate::pod_deletion::grace_period(&object, preconditions.grace_period);
        if grace > 0 {
            return store.delete_gracefully(rt, namespace, name, grace);
        }
    }
    let dependents = dependents_of(store, &object);
    let deleted = match propagation {
        Propagation::Orphan => {
            for (dependent_rt, dependent) in &dependents {
                drop_owner_reference(store, dependent_rt, dependent, &object);
            }
            store.delete(rt, namespace, name, None)?
        }
        Propagation::Foreground if !dependents.is_empty() => {
            let deleted = store.delete(rt, namespace, name, Some(FOREGROUND))?;
            for (dependent_rt, dependent) in &dependents {
                delete_quietly(store, dependent_rt, dependent, Propagation::Foreground);
            }
            deleted
        }
        _ => store.delete(rt, namespace, name, None)?,
    };
    if rt.kind == "Namespace" && deleted["metadata"].get("deletionTimestamp").is_some() {
        for (content_rt, content) in store.find(Some(name), |_| true) {
            delete_quietly(store, content_rt, &content, Propagation::Background);
        }
    }
    settle(store);
    Ok(deleted)
}

/// Runs the garbage collector until nothing more goes: dependents left with
/// no owner are deleted, and owners deleted in the foreground are released
/// once their last dependent is gone.
pub(crate) fn settle(store: &Store) {
    loop {
        let removed = store.take_removed();
        if removed.is_empty() {
            return;
        }
        for (_, object) in removed {
            for (rt, dependent) in dependents_of(store, &object) {
                if !has_live_owner(store, &dependent) {
                    delete_quietly(store, rt, &dependent, Propagation::Background);
                }
            }
            release_foreground_owners(store, &object);
        }
    }
}

fn uid(object: &Value) -> &str {
    object["metadata"]["uid"].as_str().unwrap_or_default()
}

fn owner_uids(object: &Value) -> impl Iterator<Item = &str> {
    object["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["uid"].as_str())
}

/// Objects naming `owner` in their `ownerReferences`: in its namespace, or
/// anywhere for a cluster-scoped owner.
fn dependents_of(store: &Store, owner: &Value) -> Vec<(&'static ResourceType, Value)> {
    let owner_uid = uid(owner);
    if owner_uid.is_empty() {
        return Vec::new();
    }
    store.find(owner["metadata"]["namespace"].as_str(), |object| {
        owner_uids(object).any(|u| u == owner_uid)
    })
}

fn has_live_owner(store: &Store, dependent: &Value) -> bool {
    owner_uids(dependent).any(|owner| !store.find(None, |o| uid(o) == owner).is_empty())
}

/// Deletes a dependent found by the collector; it may be gone already, or
/// be held by its own finalizers, neither of which is an error here.
fn delete_quietly(
    store: &Store,
    rt: &'static ResourceType,
    object: &Value,
    propagation: Propagation,
) {
    if object["metadata"].get("deletionTimestamp").is_some() {
        return;
    }
    let namespace = object["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let _ = delete(
        store,
        rt,
        namespace,
        name,
        propagation,
        &Preconditions::default(),
    );
}

fn drop_owner_reference(
    store: &Store,
    rt: &'static ResourceType,
    dependent: &Value,
    owner: &Value,
) {
    let mut next = dependent.clone();
    if let Some(refs) = next["metadata"]["ownerReferences"].as_array_mut() {
        refs.retain(|r| r["uid"].as_str() != Some(uid(owner)));
    }
    let namespace = dependent["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default();
    let name = dependent["metadata"]["name"].as_str().unwrap_or_default();
    let _ = store.replace(rt, namespace, name, next, false);
}

/// Removes `foregroundDeletion` from owners of `removed` that have no
/// dependent left, which lets them go.
fn release_foreground_owners(store: &Store, removed: &Value) {
    for owner_uid in owner_uids(removed) {
        for (rt, owner) in store.find(None, |o| uid(o) == owner_uid) {
            let held = owner["metadata"]["finalizers"]
                .as_array()
                .is_some_and(|f| f.iter().any(|f| f == FOREGROUND));
            if !held || !dependents_of(store, &owner).is_empty() {
                continue;
            }
            let mut next = owner.clone();
            if let Some(finalizers) = next["metadata"]["finalizers"].as_array_mut() {
                finalizers.retain(|f| f != FOREGROUND);
            }
            let namespace = owner["metadata"]["namespace"].as_str().unwrap_or_default();
            let name = owner["metadata"]["name"].as_str().unwrap_or_default();
            let _ = store.replace(rt, namespace, name, next, false);
        }
    }
}
