//! serde's side of the settings reader: the `Deserializer` over the
//! parser, and the accessors for arrays, objects, object keys and enums.

use alloc::borrow::Cow;

use serde::de::{
    self, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess, SeqAccess, VariantAccess,
    Visitor,
};

use super::error::Error;
use super::{Number, Parser};

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
        if !core::mem::take(&mut self.first) {
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
        if !core::mem::take(&mut self.first) {
            self.parser.expect(b',', "expected ',' or '}'")?;
            self.parser.skip_whitespace();
        }
        if self.parser.peek() != Some(b'"') {
            return Err(self.parser.error("key must be a string"));
        }
        let key = self.parser.string()?;
        seed.deserialize(MapKey(key)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        self.parser.expect(b':', "expected ':'")?;
        seed.deserialize(&mut *self.parser)
    }
}

/// An object's key, read as the key's type asks: as serde_json does, an
/// integer or boolean key type reads the key's text (`{"80": …}` into a
/// `BTreeMap<u16, _>`).
struct MapKey<'de>(Cow<'de, str>);

impl MapKey<'_> {
    fn number(&self) -> Option<Number> {
        let mut parser = Parser {
            input: &self.0,
            pos: 0,
            depth: 0,
        };
        let number = parser.number().ok()?;
        (parser.pos == self.0.len()).then_some(number)
    }

    fn not_a<V: de::Expected>(&self, expected: &V) -> Error {
        de::Error::invalid_type(de::Unexpected::Str(&self.0), expected)
    }
}

/// Integer key types: the key's text as a number.
macro_rules! integer_keys {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.number() {
                Some(Number::Unsigned(n)) => visitor.visit_u64(n),
                Some(Number::Signed(n)) => visitor.visit_i64(n),
                None => Err(self.not_a(&visitor)),
            }
        }
    )*};
}

impl<'de> de::Deserializer<'de> for MapKey<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Cow::Borrowed(s) => visitor.visit_borrowed_str(s),
            Cow::Owned(s) => visitor.visit_string(s),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &*self.0 {
            "true" => visitor.visit_bool(true),
            "false" => visitor.visit_bool(false),
            _ => Err(self.not_a(&visitor)),
        }
    }

    integer_keys! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
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
        visitor.visit_enum(self.0.into_owned().into_deserializer())
    }

    serde::forward_to_deserialize_any! {
        f32 f64 char str string bytes byte_buf unit unit_struct seq tuple
        tuple_struct map struct identifier ignored_any
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
