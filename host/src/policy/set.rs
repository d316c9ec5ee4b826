//! A policy set: the `.wasm` files and the `policies.yaml` that orders them
//! and carries their settings. The CLI and the controller read sets through
//! this one module, whether from a directory or from files named on the
//! command line.
//!
//! ```yaml
//! defaultPolicy:            # the policy bundled into the controller
//!   enabled: true           # default true
//!   settings: {defaultTags: ["tag:k8s"]}
//! policies:                 # run after the default policy, in this order
//!   - name: node-pools
//!     file: node-pools.wasm
//!     settings: {pools: {edge: {}}}
//! planRules:                # what any policy's plan may contain (see validate::PlanRules)
//!   allowedTags: {shop: ["tag:shop"], "*": ["tag:k8s"]}
//! ```

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::engine::{LoadedPolicy, PolicyEngine};
use super::error::PolicyError;
use crate::validate::PlanRules;

/// File name of the set's manifest inside a policy directory.
pub const POLICY_SET_FILE: &str = "policies.yaml";
/// Name of the bundled default policy in traces and errors.
pub const DEFAULT_POLICY_NAME: &str = "default";
/// The default policy, compiled from `policies/default` at build time.
pub const DEFAULT_POLICY_WASM: &[u8] = include_bytes!(env!("SVCLB_DEFAULT_POLICY_WASM"));

/// The parsed `policies.yaml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicySetSpec {
    /// The bundled default policy.
    #[serde(default)]
    pub default_policy: DefaultPolicySpec,
    /// Operator policies, in evaluation order.
    #[serde(default)]
    pub policies: Vec<PolicyEntry>,
    /// What plans may contain (tags per namespace, environment,
    /// annotations, tolerations, priority classes).
    #[serde(default)]
    pub plan_rules: PlanRules,
}

/// Whether and how the bundled default policy runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultPolicySpec {
    /// Run it first (default `true`).
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// Its settings.
    #[serde(default = "empty_settings")]
    pub settings: serde_json::Value,
}

impl Default for DefaultPolicySpec {
    fn default() -> Self {
        Self {
            enabled: true,
            settings: empty_settings(),
        }
    }
}

/// One operator policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyEntry {
    /// Name used in errors, Events and traces.
    pub name: String,
    /// The component file, relative to the set's directory.
    pub file: PathBuf,
    /// Settings handed to the policy as JSON.
    #[serde(default = "empty_settings")]
    pub settings: serde_json::Value,
}

fn enabled() -> bool {
    true
}

fn empty_settings() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

/// Why a policy set cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicySetError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// `policies.yaml` is malformed.
    #[error("invalid {POLICY_SET_FILE}: {0}")]
    Spec(String),
    /// A policy failed to load or refused its settings.
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

impl PolicySetSpec {
    /// Parses and checks a `policies.yaml`.
    pub fn from_yaml(yaml: &str) -> Result<Self, PolicySetError> {
        let spec: Self = if yaml.trim().is_empty() {
            Self::default()
        } else {
            serde_yaml_ng::from_str(yaml).map_err(|e| PolicySetError::Spec(e.to_string()))?
        };
        spec.check()?;
        Ok(spec)
    }

    /// Checks that policy names are distinct DNS labels other than
    /// `default`, and that the plan rules are well-formed.
    pub fn check(&self) -> Result<(), PolicySetError> {
        self.plan_rules
            .check()
            .map_err(|e| PolicySetError::Spec(e.to_string()))?;
        let mut names = BTreeSet::from([DEFAULT_POLICY_NAME]);
        for entry in &self.policies {
            if !crate::validate::is_dns_label(&entry.name) {
                return Err(PolicySetError::Spec(format!(
                    "policy name {:?} must be a DNS label",
                    entry.name
                )));
            }
            if !names.insert(&entry.name) {
                return Err(PolicySetError::Spec(format!(
                    "policy name {} is used twice (or is the bundled policy's name)",
                    entry.name
                )));
            }
        }
        Ok(())
    }

    /// Reads `policies.yaml` of `dir` (an absent file is an empty set).
    pub fn from_dir(dir: &Path) -> Result<Self, PolicySetError> {
        let path = dir.join(POLICY_SET_FILE);
        match std::fs::read_to_string(&path) {
            Ok(yaml) => Self::from_yaml(&yaml),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(PolicySetError::Read { path, source }),
        }
    }

    /// Compiles every policy of the set (the default one first, if enabled)
    /// and has each validate its settings. Files are relative to `dir`.
    pub fn load(
        &self,
        engine: &PolicyEngine,
        dir: &Path,
    ) -> Result<Vec<LoadedPolicy>, PolicySetError> {
        self.load_with(engine, &|file: &Path| {
            let path = dir.join(file);
            std::fs::read(&path).map_err(|source| PolicySetError::Read { path, source })
        })
    }

    /// Like [`Self::load`], with the component files read by `read` (the
    /// controller reads them from a ConfigMap).
    pub fn load_with(
        &self,
        engine: &PolicyEngine,
        read: &dyn Fn(&Path) -> Result<Vec<u8>, PolicySetError>,
    ) -> Result<Vec<LoadedPolicy>, PolicySetError> {
        let mut loaded = Vec::with_capacity(self.policies.len() + 1);
        if self.default_policy.enabled {
            loaded.push(engine.load(
                DEFAULT_POLICY_NAME,
                DEFAULT_POLICY_WASM,
                &self.default_policy.settings.to_string(),
            )?);
        }
        for entry in &self.policies {
            let bytes = read(&entry.file)?;
            loaded.push(engine.load(&entry.name, &bytes, &entry.settings.to_string())?);
        }
        Ok(loaded)
    }
}
