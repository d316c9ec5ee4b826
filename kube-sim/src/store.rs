//! The object store and its semantics: resource versions, creation
//! defaults, optimistic concurrency, the status subresource, finalizers and
//! the watch history. Objects are plain JSON; every change is one event.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::error::ApiError;
use crate::registry::ResourceType;
use crate::selector::{FieldSelector, LabelSelector};
use crate::strategy::{
    allocate_cluster_ips, check_service_update, fold_string_data, reset_for_status_write,
};
use crate::time::now_rfc3339;

/// Events kept for watches that resume from a resource version.
const HISTORY: usize = 4096;
/// First address of the Service ClusterIP range 10.96.0.0/16 (host part).
/// The first dynamic ClusterIP: 10.96.1.0, above the static band.
const FIRST_CLUSTER_IP: u32 = 256;

/// A change to one object.
#[derive(Debug, Clone)]
pub struct WatchEvent {
    /// The resource version of the change.
    pub resource_version: u64,
    /// The type of the object.
    pub resource: &'static ResourceType,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub kind: &'static str,
    /// The object after the change (before it, for `DELETED`, with the new version).
    pub object: Value,
}

type Key = (&'static str, &'static str, String, String);

/// A copy of the stored object at `k`, or the API's 404.
fn stored(
    inner: &Inner,
    rt: &'static ResourceType,
    k: &Key,
    name: &str,
) -> Result<Value, ApiError> {
    inner
        .objects
        .get(k)
        .cloned()
        .ok_or_else(|| ApiError::not_found(describe(rt, name)))
}

fn key(rt: &'static ResourceType, namespace: &str, name: &str) -> Key {
    (rt.group, rt.plural, namespace.to_string(), name.to_string())
}

/// Every Service's ClusterIPs.
fn cluster_ips_in_use(inner: &Inner) -> std::collections::BTreeSet<String> {
    inner
        .objects
        .iter()
        .filter(|((group, plural, _, _), _)| group.is_empty() && *plural == "services")
        .flat_map(|(_, service)| {
            let ips = service["spec"]["clusterIPs"].as_array().cloned();
            ips.unwrap_or_default()
        })
        .filter_map(|ip| ip.as_str().map(str::to_string))
        .collect()
}

struct Inner {
    last_version: u64,
    objects: BTreeMap<Key, Value>,
    history: VecDeque<WatchEvent>,
    next_cluster_ip: u32,
    /// Objects removed since the garbage collector last looked.
    removed: Vec<(&'static ResourceType, Value)>,
    /// Who the RBAC bindings name (`binding_index`).
    bindings: crate::binding_index::BindingIndex,
}

/// Who manages the fields of one object.
#[derive(Debug, Clone, Default)]
pub(crate) struct FieldRecord {
    /// What each manager last applied.
    pub applied: BTreeMap<String, Value>,
    /// Managers of each leaf field.
    pub owners: crate::ownership::Owners,
}

/// The in-memory object store.
pub struct Store {
    inner: Mutex<Inner>,
    events: broadcast::Sender<WatchEvent>,
    /// Field managers of each object (server-side apply).
    fields: Mutex<BTreeMap<Key, FieldRecord>>,
    /// Whether Services may get IPv6 ClusterIPs from fd00:10:96::/112.
    dual_stack: bool,
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// Labels and annotations are maps of strings (the real decoder refuses
/// anything else with a 400).
fn check_metadata_maps(object: &Value) -> Result<(), ApiError> {
    for field in ["labels", "annotations"] {
        match &object["metadata"][field] {
            Value::Null => {}
            Value::Object(map) if map.values().all(Value::is_string) => {}
            _ => {
                return Err(ApiError::bad_request(format!(
                    "metadata.{field}: expected a map of strings"
                )));
            }
        }
    }
    Ok(())
}

/// `path.ValidatePathSegmentName`: not `.` or `..`, no `/` or `%`.
fn is_path_segment(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains('/') && !s.contains('%')
}

fn describe(rt: &ResourceType, name: &str) -> String {
    let group = if rt.group.is_empty() {
        String::new()
    } else {
        format!(".{}", rt.group)
    };
    format!("{}{group} \"{name}\"", rt.plural)
}

impl Default for Store {
    fn default() -> Self {
        Self::new(false)
    }
}

impl Store {
    /// A store; with `dual_stack`, Services can get IPv6 ClusterIPs too.
    pub fn new(dual_stack: bool) -> Self {
        let (events, _) = broadcast::channel(HISTORY);
        Self {
            inner: Mutex::new(Inner {
                last_version: 0,
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                next_cluster_ip: FIRST_CLUSTER_IP,
                removed: Vec::new(),
                bindings: Default::default(),
            }),
            events,
            fields: Mutex::new(BTreeMap::new()),
            dual_stack,
        }
    }
}

/// Read access to the stored objects under the store's lock, for decisions
/// that must not copy them (authorization reads roles and bindings on every
/// request).
pub(crate) struct View<'a>(
    &'a BTreeMap<Key, Value>,
    &'a crate::binding_index::BindingIndex,
);

impl View<'_> {
    fn of(inner: &Inner) -> View<'_> {
        View(&inner.objects, &inner.bindings)
    }

    /// The names of the bindings of `rt` (RoleBindings, or
    /// ClusterRoleBindings with `namespace` `""`) that name `user`.
    pub fn bindings_of(
        &self,
        user: &crate::auth::UserInfo,
        namespace: &str,
    ) -> std::collections::BTreeSet<String> {
        self.1.bindings_of(user, namespace)
    }

    /// The object `namespace/name` of `rt`.
    pub fn get(&self, rt: &'static ResourceType, namespace: &str, name: &str) -> Option<&Value> {
        let namespace = if rt.namespaced { namespace } else { "" };
        self.0.get(&key(rt, namespace, name))
    }

    /// The objects of `rt` in `namespace` (`""` for cluster-scoped types).
    pub fn in_namespace<'v>(
        &'v self,
        rt: &'static ResourceType,
        namespace: &'v str,
    ) -> impl Iterator<Item = &'v Value> + 'v {
        let start = key(rt, namespace, "");
        self.0
            .range(start..)
            .take_while(move |((group, plural, ns, _), _)| {
                *group == rt.group && *plural == rt.plural && ns == namespace
            })
            .map(|(_, object)| object)
    }
}

impl Store {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` over the stored objects, under the lock.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&View<'_>) -> R) -> R {
        let inner = self.lock();
        f(&View::of(&inner))
    }

    /// Subscribes to changes made from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<WatchEvent> {
        self.events.subscribe()
    }

    fn record(
        &self,
        inner: &mut Inner,
        rt: &'static ResourceType,
        kind: &'static str,
        object: Value,
    ) {
        if rt.group == crate::registry::RBAC && rt.plural.ends_with("rolebindings") {
            let meta = &object["metadata"];
            inner.bindings.update(
                meta["namespace"].as_str().unwrap_or_default(),
                meta["name"].as_str().unwrap_or_default(),
                (kind != "DELETED").then_some(&object),
            );
        }
        let event = WatchEvent {
            resource_version: inner.last_version,
            resource: rt,
            kind,
            object,
        };
        if inner.history.len() == HISTORY {
            inner.history.pop_front();
        }
        inner.history.push_back(event.clone());
        let _ = self.events.send(event);
    }

    fn bump(inner: &mut Inner, object: &mut Value) -> u64 {
        inner.last_version += 1;
        object["metadata"]["resourceVersion"] = json!(inner.last_version.to_string());
        inner.last_version
    }

    /// Creates `object` in `namespace` (ignored for cluster-scoped types).
    pub fn create(
        &self,
        rt: &'static ResourceType,
        namespace: &str,
        mut object: Value,
    ) -> Result<Value, ApiError> {
        let mut inner = self.lock();
        let namespace = if rt.namespaced { namespace } else { "" };
        if rt.namespaced {
            let Some(ns) = inner.objects.get(&key(NAMESPACES, "", namespace)) else {
                return Err(ApiError::not_found(format!("namespaces \"{namespace}\"")));
            };
            if ns["metadata"].get("deletionTimestamp").is_some() {
                return Err(ApiError::forbidden(format!(
                    "{} is forbidden: unable to create new content in namespace \
                     {namespace} because it is being terminated",
                    describe(rt, object["metadata"]["name"].as_str().unwrap_or_default())
                )));
            }
        }
        if !object.is_object() || !object["metadata"].is_object() && !object["metadata"].is_null() {
            return Err(ApiError::bad_request("the body must be an object"));
        }
        check_metadata_maps(&object)?;
        let meta = &mut object["metadata"];
        let mut name = meta["name"].as_str().unwrap_or_default().to_string();
        if name.is_empty() {
            let prefix = meta["generateName"].as_str().unwrap_or_default();
            if prefix.is_empty() {
                return Err(ApiError::invalid(
                    "metadata.name or metadata.generateName is required",
                ));
            }
            let suffix: String = uuid::Uuid::new_v4()
                .simple()
                .to_string()
                .chars()
                .take(5)
                .collect();
            name = format!("{prefix}{suffix}");
        }
        // RBAC objects are named by path segments (`system:discovery`),
        // everything served here else by DNS subdomains.
        let valid = if rt.group == crate::registry::RBAC {
            is_path_segment(&name)
        } else {
            is_dns_subdomain(&name)
        };
        if !valid {
            return Err(ApiError::invalid(format!(
                "{} is invalid: metadata.name: a lowercase RFC 1123 subdomain is required",
                describe(rt, &name)
            )));
        }
        let k = key(rt, namespace, &name);
        if inner.objects.contains_key(&k) {
            return Err(ApiError::already_exists(describe(rt, &name)));
        }
        meta["name"] = json!(name);
        if rt.namespaced {
            meta["namespace"] = json!(namespace);
        } else if let Some(m) = meta.as_object_mut() {
            m.remove("namespace");
        }
        meta["uid"] = json!(uuid::Uuid::new_v4().to_string());
        meta["creationTimestamp"] = json!(now_rfc3339());
        meta["generation"] = json!(1);
        if let Some(m) = meta.as_object_mut() {
            m.remove("deletionTimestamp");
        }
        object["apiVersion"] = json!(rt.api_version());
        object["kind"] = json!(rt.kind);
        if rt.plural == "services" && rt.group.is_empty() {
            let in_use = cluster_ips_in_use(&inner);
            allocate_cluster_ips(
                &mut inner.next_cluster_ip,
                &mut object,
                self.dual_stack,
                &in_use,
            )?;
        }
        fold_string_data(rt, &mut object);
        crate::strategy::validate(rt, &object)?;
        crate::admission::admit(&View::of(&inner), rt, namespace, None, &object)?;
        Self::bump(&mut inner, &mut object);
        inner.objects.insert(k, object.clone());
        self.record(&mut inner, rt, "ADDED", object.clone());
        Ok(object)
    }

    /// The object `namespace/name`.
    pub fn get(
        &self,
        rt: &'static ResourceType,
        namespace: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        let namespace = if rt.namespaced { namespace } else { "" };
        self.lock()
            .objects
            .get(&key(rt, namespace, name))
            .cloned()
            .ok_or_else(|| ApiError::not_found(describe(rt, name)))
    }

    /// Objects of `rt` (in `namespace`, or all) matching both selectors, and
    /// the store's resource version.
    pub fn list(
        &self,
        rt: &'static ResourceType,
        namespace: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> (Vec<Value>, u64) {
        let inner = self.lock();
        let items = inner
            .objects
            .iter()
            .filter(|((group, plural, ns, _), _)| {
                *group == rt.group
                    && *plural == rt.plural
                    && namespace.is_none_or(|want| ns == want)
            })
            .map(|(_, object)| object)
            .filter(|object| labels.matches(object) && fields.matches(object))
            .cloned()
            .collect();
        (items, inner.last_version)
    }

    /// Replaces the object (or, with `status`, only its status). A resource
    /// version in the body must match the stored one.
    pub fn replace(
        &self,
        rt: &'static ResourceType,
        namespace: &str,
        name: &str,
        body: Value,
        status: bool,
    ) -> Result<Value, ApiError> {
        if !body.is_object() || !body["metadata"].is_object() && !body["metadata"].is_null() {
            return Err(ApiError::bad_request("the body must be an object"));
        }
        check_metadata_maps(&body)?;
        let mut inner = self.lock();
        let namespace = if rt.namespaced { namespace } else { "" };
        let k = key(rt, namespace, name);
        let current = stored(&inner, rt, &k, name)?;
        if let Some(wanted) = body["metadata"]["resourceVersion"].as_str()
            && !wanted.is_empty()
            && Some(wanted) != current["metadata"]["resourceVersion"].as_str()
        {
            return Err(ApiError::conflict(format!(
                "Operation cannot be fulfilled on {}: the object has been modified; \
                 please apply your changes to the latest version and try again",
                describe(rt, name)
            )));
        }
        let mut next = body;
        for immutable in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "name",
            "namespace",
            "generation",
        ] {
            match current["metadata"].get(immutable) {
                Some(value) => next["metadata"][immutable] = value.clone(),
                None => {
                    if let Some(m) = next["metadata"].as_object_mut() {
                        m.remove(immutable);
                    }
                }
            }
        }
        next["apiVersion"] = json!(rt.api_version());
        next["kind"] = json!(rt.kind);
        if status {
            reset_for_status_write(rt, &current, &mut next);
        } else {
            if rt.status {
                next["status"] = current["status"].clone();
            }
            check_service_update(rt, &current, &next)?;
            if next["spec"] != current["spec"] {
                let generation = current["metadata"]["generation"].as_i64().unwrap_or(1);
                next["metadata"]["generation"] = json!(generation + 1);
            }
        }
        if let Some(o) = next.as_object_mut()
            && o.get("status").is_some_and(Value::is_null)
        {
            o.remove("status");
        }
        next["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
        if next == current {
            return Ok(current);
        }
        crate::strategy::validate(rt, &next)?;
        crate::admission::admit(&View::of(&inner), rt, namespace, Some(&current), &next)?;
        Self::bump(&mut inner, &mut next);
        if next["metadata"].get("deletionTimestamp").is_some() && finalizers_empty(&next) {
            self.remove(&mut inner, rt, k, next.clone());
            return Ok(next);
        }
        inner.objects.insert(k, next.clone());
        self.record(&mut inner, rt, "MODIFIED", next.clone());
        Ok(next)
    }

    /// Starts a graceful deletion (pods): the object stays, with a deletion
    /// timestamp `grace` seconds ahead and `deletionGracePeriodSeconds`,
    /// until a deletion with grace 0 removes it. A second graceful deletion
    /// may only shorten the period.
    pub fn delete_gracefully(
        &self,
        rt: &'static ResourceType,
        namespace: &str,
        name: &str,
        grace: i64,
    ) -> Result<Value, ApiError> {
        let mut inner = self.lock();
        let k = key(rt, namespace, name);
        let mut object = stored(&inner, rt, &k, name)?;
        let current = object["metadata"]["deletionGracePeriodSeconds"].as_i64();
        if current.is_some_and(|c| c <= grace) {
            return Ok(object);
        }
        object["metadata"]["deletionTimestamp"] = json!(crate::time::rfc3339_in(grace));
        object["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
        Self::bump(&mut inner, &mut object);
        inner.objects.insert(k, object.clone());
        self.record(&mut inner, rt, "MODIFIED", object.clone());
        Ok(object)
    }

    /// Deletes the object. With finalizers (plus `hold`, a finalizer the
    /// request adds, such as `foregroundDeletion`) it only gets a deletion
    /// timestamp; a namespace with content becomes `Terminating` and goes
    /// when its last object does.
    pub fn delete(
        &self,
        rt: &'static ResourceType,
        namespace: &str,
        name: &str,
        hold: Option<&str>,
    ) -> Result<Value, ApiError> {
        let mut inner = self.lock();
        let namespace = if rt.namespaced { namespace } else { "" };
        let k = key(rt, namespace, name);
        let mut object = stored(&inner, rt, &k, name)?;
        if let Some(hold) = hold
            && object["metadata"].get("deletionTimestamp").is_none()
        {
            let finalizers = &mut object["metadata"]["finalizers"];
            if !finalizers.is_array() {
                *finalizers = json!([]);
            }
            if let Some(list) = finalizers.as_array_mut()
                && !list.iter().any(|f| f == hold)
            {
                list.push(json!(hold));
            }
        }
        let is_namespace = *rt == *NAMESPACES;
        if !finalizers_empty(&object) || is_namespace && has_content(&inner, name) {
            if object["metadata"].get("deletionTimestamp").is_none() {
                object["metadata"]["deletionTimestamp"] = json!(now_rfc3339());
                if is_namespace {
                    object["status"]["phase"] = json!("Terminating");
                }
                Self::bump(&mut inner, &mut object);
                inner.objects.insert(k, object.clone());
                self.record(&mut inner, rt, "MODIFIED", object.clone());
            }
            return Ok(object);
        }
        Self::bump(&mut inner, &mut object);
        self.remove(&mut inner, rt, k, object.clone());
        Ok(object)
    }

    /// Removes the object for good (its resource version already bumped),
    /// queues it for the garbage collector, and removes its namespace when
    /// that was waiting for its last object.
    fn remove(&self, inner: &mut Inner, rt: &'static ResourceType, k: Key, object: Value) {
        inner.objects.remove(&k);
        self.fields
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&k);
        self.record(inner, rt, "DELETED", object.clone());
        inner.removed.push((rt, object));
        let namespace = k.2;
        if namespace.is_empty() || has_content(inner, &namespace) {
            return;
        }
        let ns_key = key(NAMESPACES, "", &namespace);
        if let Some(mut ns) = inner.objects.get(&ns_key).cloned()
            && ns["metadata"].get("deletionTimestamp").is_some()
            && finalizers_empty(&ns)
        {
            Self::bump(inner, &mut ns);
            self.remove(inner, NAMESPACES, ns_key, ns);
        }
    }

    /// Objects removed since the last call, oldest first.
    pub(crate) fn take_removed(&self) -> Vec<(&'static ResourceType, Value)> {
        std::mem::take(&mut self.lock().removed)
    }

    /// Every object (of any type, in `namespace` when given) for which
    /// `wanted` holds.
    pub(crate) fn find(
        &self,
        namespace: Option<&str>,
        wanted: impl Fn(&Value) -> bool,
    ) -> Vec<(&'static ResourceType, Value)> {
        let inner = self.lock();
        inner
            .objects
            .iter()
            .filter(|((_, _, ns, _), object)| namespace.is_none_or(|n| n == ns) && wanted(object))
            .filter_map(|((group, plural, _, _), object)| {
                let rt = crate::registry::RESOURCES
                    .iter()
                    .find(|r| r.group == *group && r.plural == *plural)?;
                Some((rt, object.clone()))
            })
            .collect()
    }

    /// Events of `rt` after `version` still in the history, or 410 Expired
    /// when the history no longer reaches back that far.
    pub fn events_since(
        &self,
        rt: &'static ResourceType,
        version: u64,
    ) -> Result<Vec<WatchEvent>, ApiError> {
        let inner = self.lock();
        let oldest_kept = inner
            .history
            .front()
            .map(|e| e.resource_version)
            .unwrap_or(inner.last_version + 1);
        if version + 1 < oldest_kept && version < inner.last_version {
            return Err(ApiError::expired(format!(
                "too old resource version: {version} ({})",
                oldest_kept - 1
            )));
        }
        Ok(inner
            .history
            .iter()
            .filter(|e| e.resource_version > version && *e.resource == *rt)
            .cloned()
            .collect())
    }

    /// The field managers of the object.
    pub(crate) fn field_record(
        &self,
        rt: &'static ResourceType,
        namespace: &str,
        name: &str,
    ) -> FieldRecord {
        let namespace = if rt.namespaced { namespace } else { "" };
        let fields = self.fields.lock().unwrap_or_else(|p| p.into_inner());
        fields
            .get(&key(rt, namespace, name))
            .cloned()
            .unwrap_or_default()
    }

    /// Replaces the field managers of the object.
    pub(crate) fn set_field_record(
        &self,
        rt: &'static ResourceType,
        namespace: &str,
        name: &str,
        record: FieldRecord,
    ) {
        let namespace = if rt.namespaced { namespace } else { "" };
        let mut fields = self.fields.lock().unwrap_or_else(|p| p.into_inner());
        fields.insert(key(rt, namespace, name), record);
    }

    /// Forgets the watch history (fault injection: forces 410 on resume).
    pub fn compact_history(&self) {
        self.lock().history.clear();
    }
}

static NAMESPACES: &ResourceType = &crate::registry::RESOURCES[0];

/// Whether any object lives in `namespace`.
fn has_content(inner: &Inner, namespace: &str) -> bool {
    inner.objects.keys().any(|(_, _, ns, _)| ns == namespace)
}

fn finalizers_empty(object: &Value) -> bool {
    object["metadata"]["finalizers"]
        .as_array()
        .is_none_or(Vec::is_empty)
}
