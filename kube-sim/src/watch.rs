//! Watch streams: newline-delimited `{"type", "object"}` events, from the
//! current state (resourceVersion unset or "0") or from the history after a
//! given version; 410 Expired (as an ERROR event, like the real server) when
//! the history no longer reaches back; optional bookmarks; `timeoutSeconds`;
//! and the fault-injection signal that drops every open watch.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use crate::api::Target;
use crate::error::ApiError;
use crate::selector::{FieldSelector, LabelSelector};
use crate::server::Shared;
use crate::store::WatchEvent;

/// Longest watch when the client sets no `timeoutSeconds`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);
/// Pause between bookmarks when the client allows them.
const BOOKMARK_EVERY: Duration = Duration::from_secs(1);

fn line(kind: &str, object: &Value) -> Result<Bytes, Infallible> {
    let mut bytes =
        serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    bytes.push(b'\n');
    Ok(Bytes::from(bytes))
}

struct Filter {
    target: Target,
    labels: LabelSelector,
    fields: FieldSelector,
    /// Send PartialObjectMetadata instead of whole objects.
    metadata_only: bool,
}

impl Filter {
    /// One event line, the object reduced as the client asked.
    fn line(&self, kind: &str, object: &Value) -> Result<Bytes, Infallible> {
        if self.metadata_only && kind != "ERROR" {
            line(kind, &crate::partial::metadata_of(object))
        } else {
            line(kind, object)
        }
    }

    fn wants(&self, event: &WatchEvent) -> bool {
        *event.resource == *self.target.rt
            && self
                .target
                .namespace
                .as_deref()
                .is_none_or(|ns| event.object["metadata"]["namespace"].as_str() == Some(ns))
            && self.labels.matches(&event.object)
            && self.fields.matches(&event.object)
    }
}

/// Starts a watch and returns its streaming response.
pub(crate) fn respond(
    shared: Arc<Shared>,
    target: Target,
    labels: LabelSelector,
    fields: FieldSelector,
    query: &HashMap<String, String>,
    metadata_only: bool,
) -> Result<Response, ApiError> {
    // Subscribe before reading the state, so nothing falls in between.
    let live = shared.store.subscribe();
    let dropped = shared.faults.watch_drops();
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TIMEOUT);
    let bookmarks = query
        .get("allowWatchBookmarks")
        .is_some_and(|b| b == "true");
    let filter = Filter {
        target,
        labels,
        fields,
        metadata_only,
    };
    // Watch-list (KEP-3157, what client-go's reflector uses with the
    // WatchListClient feature): the current state as ADDED events, then a
    // bookmark annotated `k8s.io/initial-events-end`, then the changes. The
    // real server requires bookmarks and `resourceVersionMatch=NotOlderThan`.
    let watch_list = query.get("sendInitialEvents").is_some_and(|v| v == "true");
    if watch_list
        && (!bookmarks
            || query.get("resourceVersionMatch").map(String::as_str) != Some("NotOlderThan"))
    {
        return Err(ApiError::invalid(
            "sendInitialEvents requires allowWatchBookmarks=true and resourceVersionMatch=NotOlderThan",
        ));
    }
    let (initial, from): (Vec<Result<Bytes, Infallible>>, u64) =
        match query.get("resourceVersion").map(String::as_str) {
            _ if watch_list => {
                let (items, version) = shared.store.list(
                    filter.target.rt,
                    filter.target.namespace.as_deref(),
                    &filter.labels,
                    &filter.fields,
                );
                let end = json!({
                    "kind": filter.target.rt.kind,
                    "apiVersion": filter.target.rt.api_version(),
                    "metadata": {
                        "resourceVersion": version.to_string(),
                        "annotations": {"k8s.io/initial-events-end": "true"},
                    },
                });
                let lines = items
                    .iter()
                    .map(|o| filter.line("ADDED", o))
                    .chain([line("BOOKMARK", &end)])
                    .collect();
                (lines, version)
            }
            None | Some("") | Some("0") => {
                let (items, version) = shared.store.list(
                    filter.target.rt,
                    filter.target.namespace.as_deref(),
                    &filter.labels,
                    &filter.fields,
                );
                (
                    items.iter().map(|o| filter.line("ADDED", o)).collect(),
                    version,
                )
            }
            Some(version) => {
                let version: u64 = version.parse().map_err(|_| {
                    ApiError::bad_request(format!("invalid resourceVersion {version:?}"))
                })?;
                match shared.store.events_since(filter.target.rt, version) {
                    Ok(events) => {
                        let last = events.last().map_or(version, |e| e.resource_version);
                        let lines = events
                            .iter()
                            .filter(|e| filter.wants(e))
                            .map(|e| filter.line(e.kind, &e.object))
                            .collect();
                        (lines, last)
                    }
                    Err(expired) => (vec![line("ERROR", &expired.to_status())], u64::MAX),
                }
            }
        };
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(stream_events(
        tx, initial, from, live, dropped, filter, timeout, bookmarks,
    ));
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(ReceiverStream::new(rx)))
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

#[allow(clippy::too_many_arguments)]
async fn stream_events(
    tx: mpsc::Sender<Result<Bytes, Infallible>>,
    initial: Vec<Result<Bytes, Infallible>>,
    mut last: u64,
    mut live: broadcast::Receiver<WatchEvent>,
    mut dropped: broadcast::Receiver<()>,
    filter: Filter,
    timeout: Duration,
    bookmarks: bool,
) {
    for event in initial {
        if tx.send(event).await.is_err() {
            return;
        }
    }
    if last == u64::MAX {
        return; // the watch started with 410 Expired
    }
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    // Like the real server, the first bookmark comes after a while, not at once.
    let mut bookmark =
        tokio::time::interval_at(tokio::time::Instant::now() + BOOKMARK_EVERY, BOOKMARK_EVERY);
    loop {
        tokio::select! {
            _ = &mut deadline => return,
            _ = dropped.recv() => return,
            _ = bookmark.tick(), if bookmarks => {
                let object = json!({
                    "kind": filter.target.rt.kind,
                    "apiVersion": filter.target.rt.api_version(),
                    "metadata": {"resourceVersion": last.to_string()},
                });
                if tx.send(line("BOOKMARK", &object)).await.is_err() {
                    return;
                }
            }
            event = live.recv() => match event {
                Ok(event) if event.resource_version > last => {
                    last = event.resource_version;
                    if filter.wants(&event) && tx.send(filter.line(event.kind, &event.object)).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let _ = tx.send(line("ERROR", &ApiError::expired("watch fell behind").to_status())).await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}
