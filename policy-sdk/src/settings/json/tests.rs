//! The settings reader against serde_json: the same values for every
//! document both accept, an error wherever serde_json errs (floats aside,
//! which this reader refuses on purpose), and the same messages for the
//! mistakes operators make.

use crate::prelude::*;

use serde::Deserialize;

use super::{Error, MAX_DEPTH, from_str};

#[derive(Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Settings {
    name: String,
    #[serde(default)]
    count: u32,
    #[serde(default)]
    offset: i64,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    pools: BTreeMap<String, Pool>,
    #[serde(default)]
    mode: Option<Mode>,
    #[serde(default)]
    either: Option<Either>,
}

#[derive(Debug, PartialEq, Deserialize)]
struct Pool {
    #[serde(default)]
    tolerations: Vec<BTreeMap<String, String>>,
    #[serde(default)]
    weight: Option<u8>,
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
enum Mode {
    Spread,
    Pinned(String),
    Weighted { percent: u8 },
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(untagged)]
enum Either {
    Number(u64),
    Text(String),
    List(Vec<Either>),
}

fn both<T: serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(
    json: &str,
) -> (Result<T, Error>, Result<T, serde_json::Error>) {
    (from_str::<T>(json), serde_json::from_str::<T>(json))
}

fn message(error: &impl core::fmt::Display) -> String {
    let text = error.to_string();
    text.split(" at line ").next().unwrap().to_string()
}

#[test]
fn documents_both_accept_read_the_same() {
    for json in [
        r#"{"name": "a"}"#,
        " {\n \"name\" : \"a\" , \"count\" : 7 , \"offset\": -12 }\n",
        r#"{"name": "tab\there \"quoted\" \\ \/ \u00e9 \ud83d\ude00 \n end", "enabled": null}"#,
        r#"{"name": "ü – ✓", "tags": ["tag:a", "tag:b"], "enabled": false}"#,
        r#"{"name": "", "pools": {"edge": {"tolerations": [{"key": "k"}], "weight": 255}, "x": {}}}"#,
        r#"{"name": "m", "mode": "spread"}"#,
        r#"{"name": "m", "mode": {"pinned": "node-1"}}"#,
        r#"{"name": "m", "mode": {"weighted": {"percent": 30}}}"#,
        r#"{"name": "e", "either": 5}"#,
        r#"{"name": "e", "either": ["x", 1, [2]]}"#,
        r#"{"name": "big", "offset": -9223372036854775808, "count": 4294967295}"#,
    ] {
        let (ours, theirs) = both::<Settings>(json);
        assert_eq!(ours.unwrap(), theirs.unwrap(), "{json}");
    }
    // Keys read as their type asks, as serde_json reads them.
    let (ours, theirs) = both::<BTreeMap<u16, String>>(r#"{"80": "http", "443": "https"}"#);
    assert_eq!(ours.unwrap(), theirs.unwrap());
    let (ours, theirs) = both::<BTreeMap<i8, bool>>(r#"{"-5": true}"#);
    assert_eq!(ours.unwrap(), theirs.unwrap());
    let (ours, theirs) = both::<BTreeMap<bool, u8>>(r#"{"true": 1, "false": 0}"#);
    assert_eq!(ours.unwrap(), theirs.unwrap());
    let ignored: BTreeMap<String, serde::de::IgnoredAny> =
        from_str(r#"{"a": [1, {"b": null}], "c": "d"}"#).unwrap();
    assert_eq!(ignored.len(), 2);
}

#[test]
fn mistakes_get_serde_json_s_message() {
    for json in [
        r#"{"nmae": "a"}"#,
        r#"{"count": 1}"#,
        r#"{"name": 5}"#,
        r#"{"name": "a", "count": -1}"#,
        r#"{"name": "a", "count": 4294967296}"#,
        r#"{"name": "a", "tags": "tag:a"}"#,
        r#"{"name": "a", "enabled": "yes"}"#,
        r#"{"name": "a", "mode": "sideways"}"#,
        r#"{"name": "a", "name": "b"}"#,
        r#"{"name": "a", "pools": {"p": {"weight": 300}}}"#,
        r#"{"name": "a", "either": true}"#,
        r#"[]"#,
    ] {
        let (ours, theirs) = both::<Settings>(json);
        assert_eq!(
            message(&ours.unwrap_err()),
            message(&theirs.unwrap_err()),
            "{json}"
        );
    }
}

#[test]
fn malformed_documents_are_refused_where_serde_json_refuses_them() {
    for json in [
        "",
        "{",
        r#"{"name": "a",}"#,
        r#"{"name": "a"} x"#,
        r#"{"name": "a" "count": 1}"#,
        r#"{name: "a"}"#,
        r#"{"name": "a\x"}"#,
        r#"{"name": "a\u12"}"#,
        r#"{"name": "\ud83d"}"#,
        "{\"name\": \"line\nbreak\"}",
        r#"{"name": "a", "tags": ["a",]}"#,
        r#"{"name": "a", "count": 01}"#,
        r#"{"name": "a", "count": -}"#,
        r#"{"name": "a", "enabled": tru}"#,
        r#"{"name": "a", "count": 99999999999999999999}"#,
        r#"{"name": "a", "count": -0}"#,
        r#"{"name": "a", "offset": -0}"#,
        r#"{"name": "\udc00"}"#,
        r#"{"name": "a", "pools": {"p": {"weight": 1, "weight": 2}}}"#,
    ] {
        let (ours, theirs) = both::<Settings>(json);
        assert!(theirs.is_err(), "serde_json accepts {json:?}");
        assert!(ours.is_err(), "accepted: {json:?}");
    }
}

#[test]
fn errors_say_where() {
    let err = from_str::<Settings>("{\n  \"name\": \"a\",\n  \"cuont\": 1\n}").unwrap_err();
    assert!(
        err.to_string().starts_with("unknown field `cuont`"),
        "{err}"
    );
    assert!(err.to_string().ends_with(" at line 3 column 10"), "{err}");
}

#[test]
fn floats_are_refused_with_the_way_out() {
    let err = from_str::<BTreeMap<String, u8>>(r#"{"ratio": 0.5}"#).unwrap_err();
    assert!(
        err.to_string().contains("write the value as a string"),
        "{err}"
    );
    assert!(from_str::<BTreeMap<String, u8>>(r#"{"ratio": 1e3}"#).is_err());
    // Integers still fill float fields.
    let ok: BTreeMap<String, f64> = from_str(r#"{"ratio": 2}"#).unwrap();
    assert_eq!(ok["ratio"], 2.0);
}

#[test]
fn nesting_is_bounded() {
    let arrays = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    let objects = |n: usize| format!("{}1{}", r#"{"a":"#.repeat(n), "}".repeat(n));
    for deep in [arrays, objects] {
        assert!(from_str::<serde::de::IgnoredAny>(&deep(MAX_DEPTH)).is_ok());
        let err = from_str::<serde::de::IgnoredAny>(&deep(MAX_DEPTH + 1)).unwrap_err();
        assert!(err.to_string().contains("nested deeper than 32"), "{err}");
    }
}

#[test]
fn keys_that_are_not_of_the_key_type_are_refused() {
    let err = from_str::<BTreeMap<u16, String>>(r#"{"http": "80"}"#).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid type: string \"http\", expected u16"),
        "{err}"
    );
    assert!(from_str::<BTreeMap<u8, u8>>(r#"{"300": 1}"#).is_err());
    assert!(from_str::<BTreeMap<u8, u8>>(r#"{"1 ": 1}"#).is_err());
}
