//! The values operations write, read and compare: a small hashable enum
//! converted once from JSON, so the search compares and hashes them cheaply.

use std::fmt;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeSeq, Serializer};

/// A value of a history: `null`, an integer, a string, or a flat list of
/// those (a list-append read, a cas's `[expected, new]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Value {
    #[default]
    Null,
    Int(i64),
    Str(String),
    List(Vec<Value>),
}

impl Value {
    /// Converts a JSON value. Lists may only hold scalars: no model needs
    /// more, and refusing nesting keeps every walk over a value flat.
    pub fn from_json(json: &serde_json::Value) -> Result<Value, String> {
        match json {
            serde_json::Value::Array(items) => items
                .iter()
                .map(|item| match item {
                    serde_json::Value::Array(_) => Err("nested lists are not supported".into()),
                    scalar => Value::scalar_from_json(scalar),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Value::List),
            scalar => Value::scalar_from_json(scalar),
        }
    }

    fn scalar_from_json(json: &serde_json::Value) -> Result<Value, String> {
        match json {
            serde_json::Value::Null => Ok(Value::Null),
            serde_json::Value::String(s) => Ok(Value::Str(s.clone())),
            serde_json::Value::Number(n) => n
                .as_i64()
                .map(Value::Int)
                .ok_or_else(|| format!("{n} is not a 64-bit integer")),
            serde_json::Value::Bool(b) => Err(format!(
                "{b} is not a supported value (null, integer, string or list)"
            )),
            serde_json::Value::Object(_) => {
                Err("an object is not a supported value (null, integer, string or list)".into())
            }
            serde_json::Value::Array(_) => Err("nested lists are not supported".into()),
        }
    }

    /// Whether this is `null`, an integer or a string.
    pub fn is_scalar(&self) -> bool {
        !matches!(self, Value::List(_))
    }

    /// The JSON form of this value.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Str(s) => serde_json::Value::from(s.as_str()),
            Value::List(items) => {
                serde_json::Value::Array(items.iter().map(Value::to_json).collect())
            }
        }
    }
}

impl fmt::Display for Value {
    /// Compact JSON, as in the history.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => serializer.serialize_unit(),
            Value::Int(i) => serializer.serialize_i64(*i),
            Value::Str(s) => serializer.serialize_str(s),
            Value::List(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
        }
    }
}

/// Read straight from the history's JSON, without an intermediate tree:
/// list-append reads can be long.
impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(ValueVisitor { in_list: false })
    }
}

/// Accepts a scalar, or (outside a list) a list of scalars.
#[derive(Clone, Copy)]
struct ValueVisitor {
    in_list: bool,
}

impl<'de> DeserializeSeed<'de> for ValueVisitor {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.in_list {
            f.write_str("null, an integer or a string (nested lists are not supported)")
        } else {
            f.write_str("null, an integer, a string or a list of those")
        }
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Int(n))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Value, E> {
        i64::try_from(n)
            .map(Value::Int)
            .map_err(|_| E::custom(format!("{n} is not a 64-bit integer")))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        Ok(Value::Str(s.to_string()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Value, E> {
        Ok(Value::Str(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        if self.in_list {
            return Err(de::Error::invalid_type(de::Unexpected::Seq, &self));
        }
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
        while let Some(item) = seq.next_element_seed(ValueVisitor { in_list: true })? {
            items.push(item);
        }
        Ok(Value::List(items))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_supported_json_and_back() {
        for text in ["null", "3", "-7", "\"a\\\"b\"", "[1,\"x\",null]", "[]"] {
            let json: serde_json::Value = serde_json::from_str(text).unwrap();
            let value = Value::from_json(&json).unwrap();
            assert_eq!(value.to_json(), json);
            assert_eq!(value.to_string(), json.to_string());
        }
    }

    #[test]
    fn deserializes_directly() {
        for text in ["null", "3", "-7", "\"a\\\"b\"", "[1,\"x\",null]", "[]"] {
            let json: serde_json::Value = serde_json::from_str(text).unwrap();
            let direct: Value = serde_json::from_str(text).unwrap();
            assert_eq!(direct, Value::from_json(&json).unwrap());
        }
        for text in ["1.5", "true", "{}", "[[1]]", "18446744073709551615"] {
            assert!(serde_json::from_str::<Value>(text).is_err(), "{text}");
        }
    }

    #[test]
    fn refuses_unsupported_json() {
        for text in ["1.5", "true", "{}", "[[1]]", "18446744073709551615"] {
            let json: serde_json::Value = serde_json::from_str(text).unwrap();
            assert!(Value::from_json(&json).is_err(), "{text}");
        }
    }
}
