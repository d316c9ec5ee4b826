//! A small JSON deserializer for serde, for the operator's settings.
//!
//! Written here rather than taken from `serde_json` for size: serde_json
//! made up about 45 KB of a 190 KB component, most of it float parsing and
//! formatting reached through its error messages, and a ConfigMap holds
//! 1 MiB of policies in all. `serde-json-core` is small but has no
//! `deserialize_any` (so no untagged enums or ignored unknown fields) and no
//! owned strings with escapes. This one reads RFC 8259 JSON into any
//! `Deserialize` type with serde_json's messages ("unknown field `x`,
//! expected one of …", "at line 1 column 9"), with two deliberate limits:
//! - no floating-point numbers (the Kubernetes API conventions keep them
//!   out of APIs too: write `"0.5"` or `500m` as a string);
//! - at most [`MAX_DEPTH`] nested arrays and objects (a policy's stack is
//!   64 KiB).
//!
//! Its own error type formats `serde::de::Unexpected` without the float
//! case, so no float formatting is linked into the component.

use std::borrow::Cow;
use std::fmt::{self, Display};

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, Expected, IntoDeserializer, MapAccess,
    SeqAccess, Unexpected, VariantAccess, Visitor,
};

/// Deepest nesting of arrays and objects accepted.
pub const MAX_DEPTH: usize = 32;

/// Why a settings document could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

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

/// Reads `json` as a `T`.
pub fn from_str<T: DeserializeOwned>(json: &str) -> Result<T, Error> {
    let mut parser = Parser {
        input: json,
        pos: 0,
        depth: 0,
    };
    let value = T::deserialize(&mut parser).and_then(|value| {
        parser.skip_whitespace();
        match parser.peek() {
            None => Ok(value),
            Some(_) => Err(parser.error("trailing characters")),
        }
    });
    value.map_err(|Error(message)| {
        let (line, column) = parser.line_column();
        Error(format!("{message} at line {line} column {column}"))
    })
}

/// The cursor over the document. Its reading functions are not inlined:
/// `deserialize_any` is instantiated once per visitor type, and each copy
/// would otherwise carry the whole string and number reader.
struct Parser<'de> {
    input: &'de str,
    pos: usize,
    depth: usize,
}

/// A number as JSON may hold it in settings.
enum Number {
    Unsigned(u64),
    Signed(i64),
}

impl<'de> Parser<'de> {
    #[inline(never)]
    fn error(&self, message: &str) -> Error {
        Error(message.to_string())
    }

    fn line_column(&self) -> (usize, usize) {
        let before = &self.input.as_bytes()[..self.pos.min(self.input.len())];
        let line = 1 + before.iter().filter(|b| **b == b'\n').count();
        let column = 1 + before.iter().rev().take_while(|b| **b != b'\n').count();
        (line, column)
    }

    fn peek(&self) -> Option<u8> {
        self.input.as_bytes().get(self.pos).copied()
    }

    #[inline(never)]
    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    #[inline(never)]
    fn expect(&mut self, byte: u8, what: &str) -> Result<(), Error> {
        self.skip_whitespace();
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(what))
        }
    }

    #[inline(never)]
    fn literal(&mut self, word: &str) -> Result<(), Error> {
        if self.input[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(self.error("expected value"))
        }
    }

    #[inline(never)]
    fn enter(&mut self) -> Result<(), Error> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("settings nested deeper than 32 arrays and objects"));
        }
        Ok(())
    }

    /// A string at the cursor (which is on its `"`); borrowed when it has
    /// no escapes.
    #[inline(never)]
    fn string(&mut self) -> Result<Cow<'de, str>, Error> {
        self.pos += 1;
        let start = self.pos;
        let bytes = self.input.as_bytes();
        let mut owned: Option<String> = None;
        let mut run = start;
        loop {
            let Some(&byte) = bytes.get(self.pos) else {
                return Err(self.error("EOF while parsing a string"));
            };
            match byte {
                b'"' => {
                    let tail = &self.input[run..self.pos];
                    self.pos += 1;
                    return Ok(match owned {
                        None => Cow::Borrowed(tail),
                        Some(mut text) => {
                            text.push_str(tail);
                            Cow::Owned(text)
                        }
                    });
                }
                b'\\' => {
                    let text = owned.get_or_insert_with(String::new);
                    text.push_str(&self.input[run..self.pos]);
                    self.pos += 1;
                    let escaped = match bytes.get(self.pos) {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            self.pos += 1;
                            let c = self.unicode_escape()?;
                            text.push(c);
                            run = self.pos;
                            continue;
                        }
                        _ => return Err(self.error("invalid escape")),
                    };
                    text.push(escaped);
                    self.pos += 1;
                    run = self.pos;
                }
                0x00..=0x1f => {
                    return Err(self.error(
                        "control character (\\u0000-\\u001F) found while parsing a string",
                    ));
                }
                // Multi-byte UTF-8 never contains these ASCII bytes, so
                // stepping byte by byte stays on char boundaries at `"`/`\`.
                _ => self.pos += 1,
            }
        }
    }

    /// The char of `\uXXXX` (the cursor after the `u`), joining a
    /// surrogate pair.
    #[inline(never)]
    fn unicode_escape(&mut self) -> Result<char, Error> {
        let high = self.hex4()?;
        let code = if (0xD800..0xDC00).contains(&high) {
            if !self.input[self.pos..].starts_with("\\u") {
                return Err(self.error("lone leading surrogate in hex escape"));
            }
            self.pos += 2;
            let low = self.hex4()?;
            if !(0xDC00..0xE000).contains(&low) {
                return Err(self.error("invalid surrogate pair in hex escape"));
            }
            0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
        } else {
            high
        };
        char::from_u32(code).ok_or_else(|| self.error("invalid unicode code point"))
    }

    fn hex4(&mut self) -> Result<u32, Error> {
        let mut code = 0;
        for _ in 0..4 {
            let digit = self
                .peek()
                .and_then(|b| char::from(b).to_digit(16))
                .ok_or_else(|| self.error("invalid escape"))?;
            code = code * 16 + digit;
            self.pos += 1;
        }
        Ok(code)
    }

    #[inline(never)]
    fn number(&mut self) -> Result<Number, Error> {
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        let digits = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        let integer = &self.input[digits..self.pos];
        if integer.is_empty() {
            return Err(self.error("invalid number"));
        }
        if integer.len() > 1 && integer.starts_with('0') {
            return Err(self.error("invalid number: leading zero"));
        }
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return Err(self.error(
                "floating-point numbers are not supported in settings; write the value as a string",
            ));
        }
        // Accumulated here rather than with `str::parse`, whose two integer
        // instantiations cost more than this loop.
        let mut magnitude: u64 = 0;
        for digit in integer.bytes() {
            magnitude = magnitude
                .checked_mul(10)
                .and_then(|m| m.checked_add(u64::from(digit - b'0')))
                .ok_or_else(|| self.error("number out of range"))?;
        }
        if !negative {
            return Ok(Number::Unsigned(magnitude));
        }
        // i64::MIN's magnitude is one more than i64::MAX.
        match i64::try_from(magnitude) {
            Ok(m) => Ok(Number::Signed(-m)),
            Err(_) if magnitude == 1 << 63 => Ok(Number::Signed(i64::MIN)),
            Err(_) => Err(self.error("number out of range")),
        }
    }
}

impl<'de> de::Deserializer<'de> for &mut Parser<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.skip_whitespace();
        match self.peek() {
            Some(b'n') => {
                self.literal("null")?;
                visitor.visit_unit()
            }
            Some(b't') => {
                self.literal("true")?;
                visitor.visit_bool(true)
            }
            Some(b'f') => {
                self.literal("false")?;
                visitor.visit_bool(false)
            }
            Some(b'"') => match self.string()? {
                Cow::Borrowed(s) => visitor.visit_borrowed_str(s),
                Cow::Owned(s) => visitor.visit_string(s),
            },
            Some(b'-' | b'0'..=b'9') => match self.number()? {
                Number::Unsigned(n) => visitor.visit_u64(n),
                Number::Signed(n) => visitor.visit_i64(n),
            },
            Some(b'[') => {
                self.enter()?;
                self.pos += 1;
                let value = visitor.visit_seq(Elements {
                    parser: self,
                    first: true,
                })?;
                self.expect(b']', "trailing elements in array, or ']' missing")?;
                self.depth -= 1;
                Ok(value)
            }
            Some(b'{') => {
                self.enter()?;
                self.pos += 1;
                let value = visitor.visit_map(Entries {
                    parser: self,
                    first: true,
                })?;
                self.expect(b'}', "trailing entries in object, or '}' missing")?;
                self.depth -= 1;
                Ok(value)
            }
            Some(_) => Err(self.error("expected value")),
            None => Err(self.error("EOF while parsing a value")),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.skip_whitespace();
        if self.peek() == Some(b'n') {
            self.literal("null")?;
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.skip_whitespace();
        match self.peek() {
            // A unit variant: "Name".
            Some(b'"') => visitor.visit_enum(self.string()?.into_owned().into_deserializer()),
            // Any other variant: {"Name": value}.
            Some(b'{') => {
                self.enter()?;
                self.pos += 1;
                let value = visitor.visit_enum(Variant { parser: self })?;
                self.expect(b'}', "expected '}' after the enum variant's value")?;
                self.depth -= 1;
                Ok(value)
            }
            _ => Err(self.error("expected a string or an object for an enum")),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
        identifier ignored_any
    }
}

struct Elements<'a, 'de> {
    parser: &'a mut Parser<'de>,
    first: bool,
}

impl<'de> SeqAccess<'de> for Elements<'_, 'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.parser.skip_whitespace();
        if self.parser.peek() == Some(b']') {
            return Ok(None);
        }
        if !std::mem::take(&mut self.first) {
            self.parser.expect(b',', "expected ',' or ']'")?;
        }
        seed.deserialize(&mut *self.parser).map(Some)
    }
}

struct Entries<'a, 'de> {
    parser: &'a mut Parser<'de>,
    first: bool,
}

impl<'de> MapAccess<'de> for Entries<'_, 'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        self.parser.skip_whitespace();
        if self.parser.peek() == Some(b'}') {
            return Ok(None);
        }
        if !std::mem::take(&mut self.first) {
            self.parser.expect(b',', "expected ',' or '}'")?;
            self.parser.skip_whitespace();
        }
        if self.parser.peek() != Some(b'"') {
            return Err(self.parser.error("key must be a string"));
        }
        seed.deserialize(&mut *self.parser).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        self.parser.expect(b':', "expected ':'")?;
        seed.deserialize(&mut *self.parser)
    }
}

struct Variant<'a, 'de> {
    parser: &'a mut Parser<'de>,
}

impl<'de> EnumAccess<'de> for Variant<'_, 'de> {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), Error> {
        self.parser.skip_whitespace();
        if self.parser.peek() != Some(b'"') {
            return Err(self.parser.error("key must be a string"));
        }
        let variant = seed.deserialize(&mut *self.parser)?;
        self.parser.expect(b':', "expected ':'")?;
        Ok((variant, self))
    }
}

impl<'de> VariantAccess<'de> for Variant<'_, 'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        de::Deserialize::deserialize(&mut *self.parser)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        seed.deserialize(&mut *self.parser)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_seq(&mut *self.parser, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_map(&mut *self.parser, visitor)
    }
}

#[cfg(test)]
#[path = "json_tests.rs"]
mod tests;
