//! The settings reader's error: serde's messages, formatted without the
//! float case of `Unexpected` (whose formatting would link float printing
//! into every component).

use crate::prelude::*;
use core::fmt::{self, Display};

use serde::de::{self, Expected, Unexpected};

/// Why a settings document could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub(super) String);

impl Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl core::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: Display>(message: T) -> Self {
        Self(message.to_string())
    }

    fn invalid_type(unexpected: Unexpected<'_>, expected: &dyn Expected) -> Self {
        Self(format!(
            "invalid type: {}, expected {expected}",
            describe(&unexpected)
        ))
    }

    fn invalid_value(unexpected: Unexpected<'_>, expected: &dyn Expected) -> Self {
        Self(format!(
            "invalid value: {}, expected {expected}",
            describe(&unexpected)
        ))
    }
}

/// `Unexpected` as serde describes it, but without formatting a float.
fn describe(unexpected: &Unexpected<'_>) -> String {
    let kind = match unexpected {
        Unexpected::Bool(b) => return format!("boolean `{b}`"),
        Unexpected::Unsigned(n) => return format!("integer `{n}`"),
        Unexpected::Signed(n) => return format!("integer `{n}`"),
        Unexpected::Char(c) => return format!("character `{c}`"),
        // serde writes strings with `{:?}`; quoting without escapes keeps
        // `Debug`'s unicode tables out of the component (the controller
        // replaces control characters in every reason it shows).
        Unexpected::Str(s) => return format!("string \"{s}\""),
        Unexpected::Other(other) => other,
        Unexpected::Float(_) => "floating point number",
        Unexpected::Bytes(_) => "byte array",
        Unexpected::Unit => "null",
        Unexpected::Option => "option",
        Unexpected::NewtypeStruct => "newtype struct",
        Unexpected::Seq => "array",
        Unexpected::Map => "map",
        Unexpected::Enum => "enum",
        Unexpected::UnitVariant => "unit variant",
        Unexpected::NewtypeVariant => "newtype variant",
        Unexpected::TupleVariant => "tuple variant",
        Unexpected::StructVariant => "struct variant",
    };
    kind.to_string()
}
