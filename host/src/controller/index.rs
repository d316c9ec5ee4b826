//! Compact indexes of the objects we manage, kept in step with the watches
//! that also trigger reconciles: per object name only what a reconcile
//! reads (the DaemonSet's render digest, the state Secret's report, or mere
//! presence), not the objects. At 1 000 Services, caching whole objects
//! (even metadata only) cost the controller about 3 KiB per object.
//!
//! Each watch event updates the index before it is passed on, so the
//! reconcile it triggers sees the change.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use futures::{Stream, StreamExt};
use kube::Resource;
use kube::runtime::watcher::{self, Event};

/// Name → value, for the objects of one kind in our namespace.
#[derive(Debug)]
pub struct Index<V> {
    entries: RwLock<HashMap<String, V>>,
    ready: tokio::sync::watch::Sender<bool>,
}

impl<V: Clone> Index<V> {
    /// An index to be filled by [`indexed`].
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            entries: RwLock::default(),
            ready: tokio::sync::watch::Sender::new(false),
        })
    }

    /// An index that stays empty and counts as filled.
    pub fn empty() -> Arc<Self> {
        let index = Self::new();
        index.ready.send_replace(true);
        index
    }

    /// The value of object `name`, if it exists.
    pub fn get(&self, name: &str) -> Option<V> {
        self.entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    /// Whether object `name` exists.
    pub fn contains(&self, name: &str) -> bool {
        self.entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(name)
    }

    /// Waits until the first full list has been indexed.
    pub async fn wait_until_ready(&self) {
        let _ = self.ready.subscribe().wait_for(|ready| *ready).await;
    }

    fn set(&self, name: String, value: Option<V>) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        match value {
            Some(value) => entries.insert(name, value),
            None => entries.remove(&name),
        };
    }

    fn replace_all(&self, fresh: HashMap<String, V>) {
        *self.entries.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        self.ready.send_replace(true);
    }
}

/// Keeps `index` in step with `events`, storing `value(object)` per name,
/// and yields the objects touched (as `touched_objects` would).
pub fn indexed<K, V>(
    index: Arc<Index<V>>,
    events: impl Stream<Item = Result<Event<K>, watcher::Error>> + Send + 'static,
    value: fn(&K) -> V,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: Resource + Send + 'static,
    V: Clone + Send + Sync + 'static,
{
    let mut listing: Option<HashMap<String, V>> = None;
    events.filter_map(move |event| {
        let touched = match event {
            Err(error) => Some(Err(error)),
            Ok(Event::Init) => {
                listing = Some(HashMap::new());
                None
            }
            Ok(Event::InitApply(object)) => {
                if let (Some(listing), Some(name)) = (listing.as_mut(), object.meta().name.clone())
                {
                    listing.insert(name, value(&object));
                }
                Some(Ok(object))
            }
            Ok(Event::InitDone) => {
                index.replace_all(listing.take().unwrap_or_default());
                None
            }
            Ok(Event::Apply(object)) => {
                if let Some(name) = object.meta().name.clone() {
                    index.set(name, Some(value(&object)));
                }
                Some(Ok(object))
            }
            Ok(Event::Delete(object)) => {
                if let Some(name) = object.meta().name.clone() {
                    index.set(name, None);
                }
                Some(Ok(object))
            }
        };
        std::future::ready(touched)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    fn cm(name: &str, value: &str) -> ConfigMap {
        serde_json::from_value(
            serde_json::json!({"metadata": {"name": name}, "data": {"v": value}}),
        )
        .unwrap()
    }

    fn value(cm: &ConfigMap) -> String {
        cm.data
            .as_ref()
            .and_then(|d| d.get("v").cloned())
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn a_relist_replaces_the_index_and_live_events_update_it() {
        let index = Index::<String>::new();
        let events = futures::stream::iter(vec![
            Ok(Event::Apply(cm("stale", "0"))),
            Ok(Event::Init),
            Ok(Event::InitApply(cm("a", "1"))),
            Ok(Event::InitDone),
            Ok(Event::Apply(cm("b", "2"))),
            Ok(Event::Delete(cm("a", "1"))),
        ]);
        let touched: Vec<_> = indexed(index.clone(), events, value).collect().await;
        assert_eq!(touched.len(), 4, "every object event is passed on");
        index.wait_until_ready().await;
        assert_eq!(index.get("b").as_deref(), Some("2"));
        assert!(!index.contains("a") && !index.contains("stale"));
    }
}
