//! Strict decoding of the pieces of a JWS: canonical base64url and JSON objects without
//! duplicate members.
//!
//! serde_json keeps the last of two equal member names; other JSON parsers keep the first.
//! A token `{"sub":"alice","sub":"admin"}` could therefore mean one user to the gateway and
//! another to whatever reads the token next, so a duplicate is refused outright. Detecting it
//! costs one map lookup per member.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Why a JSON document was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonError {
    /// Not JSON, or JSON but not an object.
    NotAnObject,
    /// An object names the same member twice.
    DuplicateMember,
}

/// Decodes unpadded base64url, refusing padding, other alphabets and non-zero trailing bits,
/// so every value has exactly one accepted encoding.
pub(crate) fn b64_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// Encodes unpadded base64url.
pub(crate) fn b64_encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Parses a JSON object, refusing duplicate members at any depth.
pub(crate) fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, JsonError> {
    let StrictValue(value) = serde_json::from_slice(bytes).map_err(|e| {
        // Our visitor accepts every JSON value, so the only data error it can raise is a
        // duplicate; everything else is a syntax error (or an exceeded nesting limit).
        if e.classify() == serde_json::error::Category::Data {
            JsonError::DuplicateMember
        } else {
            JsonError::NotAnObject
        }
    })?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(JsonError::NotAnObject),
    }
}

/// A `serde_json::Value` whose deserializer refuses duplicate object members.
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = StrictValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Bool(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Number(v.into())))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Number(v.into())))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<StrictValue, E> {
        // JSON cannot express NaN or infinities, so this is always a number.
        Ok(StrictValue(
            Number::from_f64(v).map_or(Value::Null, Value::Number),
        ))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::String(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::String(v)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Null))
    }

    fn visit_none<E: de::Error>(self) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StrictValue, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(StrictValue(Value::Array(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<StrictValue, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(de::Error::custom("duplicate member"));
            }
            let StrictValue(value) = access.next_value()?;
            map.insert(key, value);
        }
        Ok(StrictValue(Value::Object(map)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn objects_parse_and_duplicates_are_refused_at_any_depth() {
        let map = parse_object(br#"{"a":1,"b":[true,null,"x",1.5,-3],"c":{"d":{}}}"#).unwrap();
        assert_eq!(map.len(), 3);
        assert_eq!(
            parse_object(br#"{"sub":"alice","sub":"admin"}"#),
            Err(JsonError::DuplicateMember)
        );
        // The same name spelled with an escape is still the same name.
        assert_eq!(
            parse_object(br#"{"sub":"alice","\u0073ub":"admin"}"#),
            Err(JsonError::DuplicateMember)
        );
        assert_eq!(
            parse_object(br#"{"a":[{"x":1,"x":2}]}"#),
            Err(JsonError::DuplicateMember)
        );
    }

    #[test]
    fn non_objects_and_garbage_are_refused() {
        for text in [
            &b"[1]"[..],
            b"\"s\"",
            b"1",
            b"null",
            b"{",
            b"{}x",
            b"\xff",
            b"",
        ] {
            assert_eq!(parse_object(text), Err(JsonError::NotAnObject), "{text:?}");
        }
        // Nesting beyond serde_json's recursion limit is an error, not a stack overflow.
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(parse_object(deep.as_bytes()), Err(JsonError::NotAnObject));
    }

    #[test]
    fn base64url_is_strict() {
        assert_eq!(b64_decode("aGk").unwrap(), b"hi");
        assert!(b64_decode("aGk=").is_none(), "padding");
        assert!(b64_decode("aGl").is_none(), "non-zero trailing bits");
        assert!(b64_decode("a+/A").is_none(), "standard alphabet");
        assert!(b64_decode("aG k").is_none(), "whitespace");
        assert_eq!(b64_encode(&[0xfb, 0xff]), "-_8");
    }
}
