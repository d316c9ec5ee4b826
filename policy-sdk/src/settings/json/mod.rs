//! A small JSON deserializer for serde, for the operator's settings.
//!
//! Written here rather than taken from `serde_json` for size: serde_json,
//! with the float parsing and the float formatting its error messages
//! reach, was most of the 63 KB the default policy lost without it (188 →
//! 125 KB), and a ConfigMap holds 1 MiB of policies in all.
//! `serde-json-core` is small but has no `deserialize_any` (so no untagged
//! enums or ignored unknown fields) and no owned strings with escapes. This
//! one reads RFC 8259 JSON into `Deserialize` types with serde_json's
//! messages ("unknown field `x`, expected one of …", "at line 1 column 9"),
//! integer and boolean object keys included, with deliberate limits:
//! - no floating-point numbers, `-0` included (the Kubernetes API
//!   conventions keep them out of APIs too: write `"0.5"` or `500m` as a
//!   string);
//! - at most [`MAX_DEPTH`] nested arrays and objects (a policy's stack is
//!   64 KiB);
//! - strings in messages are quoted, not escaped.
//!
//! Its own error type formats `serde::de::Unexpected` without the float
//! case, so no float formatting is linked into the component.

mod access;
mod error;

use crate::prelude::*;
use alloc::borrow::Cow;

use serde::de::DeserializeOwned;

pub use error::Error;

/// Why a float is refused, and the way out.
const FLOATS_REFUSED: &str =
    "floating-point numbers are not supported in settings; write the value as a string";

/// Deepest nesting of arrays and objects accepted.
pub const MAX_DEPTH: usize = 32;

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
            return Err(Error(format!(
                "settings nested deeper than {MAX_DEPTH} arrays and objects"
            )));
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
            return Err(self.error(FLOATS_REFUSED));
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
        if magnitude == 0 {
            // serde_json reads `-0` as the float -0.0.
            return Err(self.error(FLOATS_REFUSED));
        }
        // i64::MIN's magnitude is one more than i64::MAX.
        match i64::try_from(magnitude) {
            Ok(m) => Ok(Number::Signed(-m)),
            Err(_) if magnitude == 1 << 63 => Ok(Number::Signed(i64::MIN)),
            Err(_) => Err(self.error("number out of range")),
        }
    }
}

#[cfg(test)]
mod tests;
