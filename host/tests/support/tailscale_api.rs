//! A fake of the Tailscale API (v2), the parts the controller's OAuth path
//! uses, served over HTTP in the test process. Modelled on the API's
//! documentation (`publicapi/tailnet.md`, `device.md`, `overview.md` of
//! tailscale/tailscale) and on Tailscale's operator's client:
//!
//! - `POST /api/v2/oauth/token`, a form with `client_id`, `client_secret`,
//!   `grant_type=client_credentials`: `{"access_token", "token_type":
//!   "Bearer", "expires_in": 3600, "scope", "tags"}`; bad credentials are a
//!   401 `{"message": "API token invalid"}`.
//! - `POST /api/v2/tailnet/{tailnet}/keys` with a Bearer token:
//!   `capabilities.devices.create.{reusable, ephemeral, preauthorized,
//!   tags}`, `expirySeconds`, `description`. A key made by an OAuth client
//!   must have tags, all owned by the client, else a 400 `requested tags
//!   [...] are invalid or not permitted` (the exact text for missing tags
//!   is not documented; this fake's is its own). Answers `{"id", "key",
//!   "created", "expires", "capabilities", "description"}`.
//! - `GET /api/v2/device/{id}`: `{"id", "hostname", "tags", …}`, 404 if
//!   unknown.
//! - `DELETE /api/v2/device/{id}` and `DELETE /api/v2/tailnet/{t}/keys/{id}`:
//!   200 with an empty body; an unknown id is a 404 with a JSON message
//!   (what the operator's client expects when a device is gone already).
//! - Every other request, and a missing or unknown token, is refused as the
//!   API refuses it. `set_unavailable` makes every call a 503, as during an
//!   outage.
//!
//! With a fake tailnet directory (the one the fake tailscaled uses), minted
//! keys are written to `keys/<key>` (tags, preauthorized, reusable) for the
//! fake control to check at login, and devices are the fake control's
//! `devices/<n>` (id `nFAKE<n>CNTRL`; hostname and tags on its first two
//! lines), removed by a delete.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use serde_json::{Value, json};

/// A key the fake minted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MintedKey {
    /// Its id.
    pub id: String,
    /// The key.
    pub key: String,
    /// Its tags.
    pub tags: Vec<String>,
    /// Capabilities asked for.
    pub reusable: bool,
    /// See above.
    pub ephemeral: bool,
    /// See above.
    pub preauthorized: bool,
    /// `expirySeconds`.
    pub expiry_seconds: Option<u64>,
    /// `description`.
    pub description: String,
}

/// What the fake knows and saw.
#[derive(Debug, Default)]
pub struct ApiState {
    client_id: String,
    client_secret: String,
    owned_tags: Vec<String>,
    tokens: Vec<String>,
    tailnet_dir: Option<PathBuf>,
    unavailable: bool,
    /// Keys minted, in order.
    pub keys: Vec<MintedKey>,
    /// Devices known without a tailnet directory: id → (hostname, tags).
    pub devices: BTreeMap<String, (String, Vec<String>)>,
    /// Devices deleted, in order.
    pub deleted_devices: Vec<String>,
    /// Keys revoked, in order.
    pub revoked_keys: Vec<String>,
    /// `METHOD path` of every request, in order.
    pub requests: Vec<String>,
}

/// The fake API, serving until dropped.
pub struct FakeTailscaleApi {
    /// Its base URL.
    pub url: String,
    state: Arc<Mutex<ApiState>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeTailscaleApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Shared = Arc<Mutex<ApiState>>;

impl FakeTailscaleApi {
    /// Serves an API whose OAuth client `client_id`/`client_secret` owns
    /// `owned_tags`; with `tailnet_dir`, tied to that fake tailnet.
    pub async fn start(
        client_id: &str,
        client_secret: &str,
        owned_tags: &[&str],
        tailnet_dir: Option<PathBuf>,
    ) -> Self {
        let state: Shared = Arc::new(Mutex::new(ApiState {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            owned_tags: owned_tags.iter().map(|t| t.to_string()).collect(),
            tailnet_dir,
            ..ApiState::default()
        }));
        let app = Router::new()
            .route("/api/v2/oauth/token", post(token))
            .route("/api/v2/tailnet/{tailnet}/keys", post(create_key))
            .route("/api/v2/tailnet/{tailnet}/keys/{id}", delete(delete_key))
            .route("/api/v2/device/{id}", delete(delete_device).get(get_device))
            .fallback(|| async { message(StatusCode::NOT_FOUND, "not found") })
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, state, task }
    }

    /// A look at what the fake knows and saw.
    pub fn state<R>(&self, f: impl FnOnce(&ApiState) -> R) -> R {
        f(&self.state.lock().unwrap())
    }

    /// A device the tailnet holds (without a tailnet directory).
    pub fn add_device(&self, id: &str, hostname: &str, tags: &[&str]) {
        let tags = tags.iter().map(|t| t.to_string()).collect();
        self.state
            .lock()
            .unwrap()
            .devices
            .insert(id.into(), (hostname.into(), tags));
    }

    /// Every call fails with a 503 (`true`) or works again.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.state.lock().unwrap().unavailable = unavailable;
    }
}

fn message(status: StatusCode, text: &str) -> Response {
    (status, axum::Json(json!({ "message": text }))).into_response()
}

/// Records the request; the refusal when unavailable or, with `headers`,
/// without a valid Bearer token.
fn refusal(state: &Shared, what: String, headers: Option<&HeaderMap>) -> Option<Response> {
    let mut state = state.lock().unwrap();
    state.requests.push(what);
    if state.unavailable {
        return Some(message(
            StatusCode::SERVICE_UNAVAILABLE,
            "service unavailable",
        ));
    }
    if let Some(headers) = headers {
        let bearer = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !bearer.is_some_and(|t| state.tokens.iter().any(|k| k == t)) {
            return Some(message(StatusCode::UNAUTHORIZED, "API token invalid"));
        }
    }
    None
}

async fn token(State(state): State<Shared>, body: Bytes) -> Response {
    if let Some(refused) = refusal(&state, "POST /api/v2/oauth/token".into(), None) {
        return refused;
    }
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let mut state = state.lock().unwrap();
    let valid = field("client_id").as_deref() == Some(state.client_id.as_str())
        && field("client_secret").as_deref() == Some(state.client_secret.as_str());
    if !valid {
        return message(StatusCode::UNAUTHORIZED, "API token invalid");
    }
    let token = format!("tskey-api-fake{}", state.tokens.len() + 1);
    state.tokens.push(token.clone());
    axum::Json(json!({
        "access_token": token, "token_type": "Bearer", "expires_in": 3600,
        "scope": "auth_keys devices:core", "tags": state.owned_tags.join(" "),
    }))
    .into_response()
}

async fn create_key(
    State(state): State<Shared>,
    Path(tailnet): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let what = format!("POST /api/v2/tailnet/{tailnet}/keys");
    if let Some(refused) = refusal(&state, what, Some(&headers)) {
        return refused;
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return message(StatusCode::BAD_REQUEST, "invalid JSON body");
    };
    let create = &request["capabilities"]["devices"]["create"];
    if !create.is_object() {
        return message(StatusCode::BAD_REQUEST, "capabilities.devices is required");
    }
    let tags: Vec<String> = serde_json::from_value(create["tags"].clone()).unwrap_or_default();
    let mut state = state.lock().unwrap();
    if tags.is_empty() {
        return message(
            StatusCode::BAD_REQUEST,
            "keys created by an OAuth client must have tags",
        );
    }
    let denied: Vec<&String> = tags
        .iter()
        .filter(|t| !state.owned_tags.contains(t))
        .collect();
    if !denied.is_empty() {
        let list: Vec<&str> = denied.iter().map(|t| t.as_str()).collect();
        return message(
            StatusCode::BAD_REQUEST,
            &format!(
                "requested tags [{}] are invalid or not permitted",
                list.join(" ")
            ),
        );
    }
    let n = state.keys.len() + 1;
    let key = MintedKey {
        id: format!("kFAKE{n}CNTRL"),
        key: format!("tskey-auth-kFAKE{n}CNTRL-{:016x}", rand_u64()),
        tags,
        reusable: create["reusable"].as_bool().unwrap_or(false),
        ephemeral: create["ephemeral"].as_bool().unwrap_or(false),
        preauthorized: create["preauthorized"].as_bool().unwrap_or(false),
        expiry_seconds: request["expirySeconds"].as_u64(),
        description: request["description"].as_str().unwrap_or_default().into(),
    };
    if let Some(dir) = &state.tailnet_dir {
        let keys = dir.join("keys");
        std::fs::create_dir_all(&keys).unwrap();
        let record =
            json!({"tags": key.tags, "preauthorized": key.preauthorized, "reusable": key.reusable});
        std::fs::write(keys.join(&key.key), record.to_string()).unwrap();
    }
    state.keys.push(key.clone());
    axum::Json(json!({
        "id": key.id, "key": key.key, "created": "2026-01-01T00:00:00Z",
        "expires": "2026-01-02T00:00:00Z", "description": key.description,
        "capabilities": request["capabilities"],
    }))
    .into_response()
}

async fn delete_key(
    State(state): State<Shared>,
    Path((tailnet, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let what = format!("DELETE /api/v2/tailnet/{tailnet}/keys/{id}");
    if let Some(refused) = refusal(&state, what, Some(&headers)) {
        return refused;
    }
    let mut state = state.lock().unwrap();
    let Some(key) = state.keys.iter().find(|k| k.id == id).cloned() else {
        return message(StatusCode::NOT_FOUND, "key not found");
    };
    if state.revoked_keys.contains(&id) {
        return message(StatusCode::NOT_FOUND, "key not found");
    }
    if let Some(dir) = &state.tailnet_dir {
        let _ = std::fs::remove_file(dir.join("keys").join(&key.key));
    }
    state.revoked_keys.push(id);
    StatusCode::OK.into_response()
}

/// The hostname and tags of device `id`, if the tailnet has it.
fn known_device(state: &ApiState, id: &str) -> Option<(String, Vec<String>)> {
    match &state.tailnet_dir {
        Some(dir) => {
            let text = std::fs::read_to_string(fake_device_file(dir, id)?).ok()?;
            let mut lines = text.lines();
            let hostname = lines.next().unwrap_or_default().to_string();
            let tags = lines
                .next()
                .unwrap_or_default()
                .split(',')
                .filter(|t| !t.is_empty())
                .map(String::from)
                .collect();
            Some((hostname, tags))
        }
        None => state.devices.get(id).cloned(),
    }
}

async fn get_device(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = refusal(&state, format!("GET /api/v2/device/{id}"), Some(&headers)) {
        return refused;
    }
    let state = state.lock().unwrap();
    match known_device(&state, &id) {
        Some((hostname, tags)) => axum::Json(json!({
            "id": id, "nodeId": id, "hostname": hostname, "tags": tags,
            "name": format!("{hostname}.fake.ts.net"),
        }))
        .into_response(),
        None => message(StatusCode::NOT_FOUND, "device not found"),
    }
}

async fn delete_device(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = refusal(
        &state,
        format!("DELETE /api/v2/device/{id}"),
        Some(&headers),
    ) {
        return refused;
    }
    let mut state = state.lock().unwrap();
    let known = match &state.tailnet_dir {
        Some(dir) => fake_device_file(dir, &id).is_some_and(|f| std::fs::remove_file(f).is_ok()),
        None => state.devices.remove(&id).is_some(),
    };
    if !known {
        return message(StatusCode::NOT_FOUND, "device not found");
    }
    state.deleted_devices.push(id);
    StatusCode::OK.into_response()
}

/// The fake control's file of device `nFAKE<n>CNTRL`.
fn fake_device_file(dir: &std::path::Path, id: &str) -> Option<PathBuf> {
    let n = id.strip_prefix("nFAKE")?.strip_suffix("CNTRL")?;
    n.parse::<u32>().ok()?;
    Some(dir.join("devices").join(n))
}

/// A number unlike the last, for the secret part of a key.
fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.finish()
}
