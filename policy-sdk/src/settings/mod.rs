//! Parsing of the operator's settings for a policy.

mod json;

use crate::prelude::*;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Settings of a policy that takes none: accepts `{}` or nothing at all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoSettings {}

/// Parses the settings JSON the operator supplied; an empty document means `{}`.
pub fn parse_settings<S: DeserializeOwned>(json: &str) -> Result<S, String> {
    let json = if json.trim().is_empty() { "{}" } else { json };
    json::from_str(json).map_err(|e| format!("invalid settings: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_settings_read_as_an_empty_object() {
        assert_eq!(parse_settings::<NoSettings>("").unwrap(), NoSettings {});
        assert_eq!(parse_settings::<NoSettings>("{}").unwrap(), NoSettings {});
    }

    #[test]
    fn unknown_fields_and_malformed_json_are_reported() {
        let err = parse_settings::<NoSettings>(r#"{"x":1}"#).unwrap_err();
        assert!(err.contains("unknown field"), "{err}");
        assert!(parse_settings::<NoSettings>("{").is_err());
    }
}
