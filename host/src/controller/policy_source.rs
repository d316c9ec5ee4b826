//! The active policy chain and where it comes from: the ConfigMap named by
//! `--policy-configmap` in the controller's namespace, read through the API
//! (a watch), not through a mounted volume, so a new set takes effect within
//! a second instead of after the kubelet's sync delay, and the controller
//! can say on the ConfigMap itself why a set was refused.
//!
//! The ConfigMap holds `policies.yaml` under `data` and the `.wasm` files
//! under `binaryData`, keyed by the file names `policies.yaml` lists. A new
//! set is loaded and checked completely (every component compiled, every
//! policy's settings validated) before it replaces the active one, in one
//! swap. A bad set is refused and the previous one stays active; with no
//! previous set the controller has none (it does not fall back to the
//! default policy alone) and reports not-ready until a valid set appears.
//! A missing ConfigMap is a bad set like any other: deleting it keeps the
//! active set, and a replica that starts without it has none. No replica
//! falls back to fewer rules (a set's `planRules` included) by accident.
//! The bundled default policy alone is what the controller runs when it is
//! told to use no ConfigMap ([`PolicySource::load_default_only`]).

use std::collections::BTreeMap;
use std::path::{Component, Path};
use std::sync::{Arc, RwLock};

use k8s_openapi::api::core::v1::ConfigMap;
use sha2::{Digest, Sha256};

use crate::policy::{POLICY_SET_FILE, PolicyChain, PolicyEngine, PolicySetError, PolicySetSpec};
use crate::validate::PlanRules;

/// What having no valid set means, said wherever it is reported.
pub const NO_SET_CONSEQUENCE: &str = "this replica has no policy set, so while it leads no \
     Service is reconciled (existing proxies stay as they are) until a valid set appears";

/// The chain in force, or why there is none.
#[derive(Clone)]
pub enum ActivePolicies {
    /// A valid set, and the digest of the ConfigMap content it came from.
    Chain {
        /// The loaded chain.
        chain: Arc<PolicyChain>,
        /// sha256 of what it was loaded from.
        digest: [u8; 32],
    },
    /// No valid set has been loaded yet.
    None(String),
}

/// What came of a new ConfigMap content.
#[derive(Debug)]
pub enum SetChange {
    /// The content is what is already active.
    Unchanged,
    /// The new set is active.
    Activated,
    /// The new set was refused; the previous state stays.
    Refused(PolicySetError),
}

/// Loads sets and holds the active one.
pub struct PolicySource {
    engine: Arc<PolicyEngine>,
    /// `--tag-allowlist`; the other rules come with each set.
    tag_allowlist: Option<Vec<String>>,
    default_policy: bool,
    active: RwLock<ActivePolicies>,
    /// The digest of the content last refused: a watch that lists again
    /// brings the same content, which is neither loaded nor reported again.
    last_refused: std::sync::Mutex<Option<[u8; 32]>>,
    /// Becomes `true` once a first content has been loaded (or refused).
    read: tokio::sync::watch::Sender<bool>,
}

impl PolicySource {
    /// No set yet.
    pub fn new(
        engine: Arc<PolicyEngine>,
        tag_allowlist: Option<Vec<String>>,
        default_policy: bool,
    ) -> Self {
        Self {
            engine,
            tag_allowlist,
            default_policy,
            active: RwLock::new(ActivePolicies::None(
                "the policy set has not been read yet".into(),
            )),
            last_refused: std::sync::Mutex::new(None),
            read: tokio::sync::watch::Sender::new(false),
        }
    }

    /// The chain in force.
    pub fn active(&self) -> ActivePolicies {
        self.active
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits until a first policy set content has been loaded or refused.
    pub async fn wait_first_read(&self) {
        let _ = self.read.subscribe().wait_for(|read| *read).await;
    }

    /// Loads the set in `config_map` (`None`: the ConfigMap does not exist)
    /// and, when it is valid and new, makes it the active one. Compiles
    /// components: call it off the async executor.
    pub fn load(&self, config_map: Option<&ConfigMap>) -> SetChange {
        /// What an absent ConfigMap counts as, for [`Self::last_refused`].
        const ABSENT: [u8; 32] = [0; 32];
        let digest = config_map.map_or(ABSENT, |cm| SetContent::of(cm).digest());
        let mut last_refused = self.last_refused.lock().unwrap_or_else(|p| p.into_inner());
        let change = if *last_refused == Some(digest) {
            SetChange::Unchanged
        } else {
            let change = match config_map {
                Some(config_map) => self.load_content(SetContent::of(config_map)),
                None => self.refuse(PolicySetError::Spec(
                    "the policy ConfigMap does not exist".into(),
                )),
            };
            *last_refused = matches!(change, SetChange::Refused(_)).then_some(digest);
            change
        };
        self.read.send_replace(true);
        change
    }

    /// Makes the bundled default policy alone, with its default settings,
    /// the active set (the controller runs without a policy ConfigMap).
    pub fn load_default_only(&self) -> SetChange {
        let change = self.load_content(SetContent {
            spec: None,
            files: BTreeMap::new(),
        });
        self.read.send_replace(true);
        change
    }

    fn refuse(&self, error: PolicySetError) -> SetChange {
        let mut active = self.active.write().unwrap_or_else(|p| p.into_inner());
        if let ActivePolicies::None(_) = *active {
            *active = ActivePolicies::None(format!(
                "no valid policy set: {error}; {NO_SET_CONSEQUENCE}"
            ));
        }
        SetChange::Refused(error)
    }

    fn load_content(&self, content: SetContent) -> SetChange {
        let digest = content.digest();
        if let ActivePolicies::Chain { digest: active, .. } = self.active()
            && active == digest
        {
            return SetChange::Unchanged;
        }
        match content.load(&self.engine, self.default_policy) {
            Ok((policies, set_rules)) => {
                // The old set's components are no longer needed compiled.
                self.engine.keep_compiled_only(&policies);
                let rules = PlanRules {
                    tag_allowlist: self.tag_allowlist.clone(),
                    ..set_rules
                };
                let chain = PolicyChain::new(self.engine.clone(), policies, rules);
                *self.active.write().unwrap_or_else(|p| p.into_inner()) = ActivePolicies::Chain {
                    chain: Arc::new(chain),
                    digest,
                };
                SetChange::Activated
            }
            Err(error) => self.refuse(error),
        }
    }
}

/// The parts of the ConfigMap a set is made of.
struct SetContent {
    spec: Option<String>,
    files: BTreeMap<String, Vec<u8>>,
}

impl SetContent {
    fn of(config_map: &ConfigMap) -> Self {
        Self {
            spec: config_map
                .data
                .as_ref()
                .and_then(|data| data.get(POLICY_SET_FILE).cloned()),
            files: config_map
                .binary_data
                .as_ref()
                .map(|files| {
                    files
                        .iter()
                        .map(|(k, v)| (k.clone(), v.0.clone()))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    fn digest(&self) -> [u8; 32] {
        let mut hash = Sha256::new();
        hash.update(self.spec.as_deref().unwrap_or("<none>"));
        for (name, bytes) in &self.files {
            hash.update((name.len() as u64).to_le_bytes());
            hash.update(name);
            hash.update((bytes.len() as u64).to_le_bytes());
            hash.update(bytes);
        }
        hash.finalize().into()
    }

    fn load(
        &self,
        engine: &PolicyEngine,
        default_policy: bool,
    ) -> Result<(Vec<crate::policy::LoadedPolicy>, PlanRules), PolicySetError> {
        let mut spec = PolicySetSpec::from_yaml(self.spec.as_deref().unwrap_or_default())?;
        if !default_policy {
            spec.default_policy.enabled = false;
        }
        let policies = spec.load_with(engine, &|file: &Path| self.file(file))?;
        Ok((policies, spec.plan_rules))
    }

    fn file(&self, file: &Path) -> Result<Vec<u8>, PolicySetError> {
        let plain = matches!(
            file.components().collect::<Vec<_>>()[..],
            [Component::Normal(_)]
        );
        let name = file.to_str().filter(|_| plain).ok_or_else(|| {
            PolicySetError::Spec(format!(
                "file {} must be a plain key of the ConfigMap's binaryData",
                file.display()
            ))
        })?;
        self.files.get(name).cloned().ok_or_else(|| {
            PolicySetError::Spec(format!("file {name} is not in the ConfigMap's binaryData"))
        })
    }
}
