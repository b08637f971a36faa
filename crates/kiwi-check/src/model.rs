//! The sequential models a history is checked against (TESTING_API.md):
//! which operations each has, what shape their values take, and what an
//! operation does to the state.

use std::fmt;
use std::str::FromStr;

use crate::error::CheckError;
use crate::value::Value;

/// A sequential specification. Every model is checked per key: each key
/// is an independent object (P-compositionality).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ModelKind {
    /// `read` (ok value: a scalar or null) and `write(v)`; initially null.
    Register,
    /// A register plus `cas [expected, new]`; initially null.
    CasRegister,
    /// `get` (ok value: a string), `put(s)` and `append(s)`; initially "".
    Kv,
    /// `append(x)` adds one element, `read` (ok value: the list); initially [].
    ListAppend,
}

impl ModelKind {
    /// Every model, in the order the docs list them.
    pub const ALL: [ModelKind; 4] = [
        ModelKind::Register,
        ModelKind::CasRegister,
        ModelKind::Kv,
        ModelKind::ListAppend,
    ];

    /// The name histories and callers use.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Register => "register",
            ModelKind::CasRegister => "cas-register",
            ModelKind::Kv => "kv",
            ModelKind::ListAppend => "list-append",
        }
    }

    /// The state of every key before any operation.
    pub fn initial(self) -> Value {
        match self {
            ModelKind::Register | ModelKind::CasRegister => Value::Null,
            ModelKind::Kv => Value::Str(String::new()),
            ModelKind::ListAppend => Value::List(Vec::new()),
        }
    }

    fn operation_names(self) -> &'static str {
        match self {
            ModelKind::Register => "read, write",
            ModelKind::CasRegister => "read, write, cas",
            ModelKind::Kv => "get, put, append",
            ModelKind::ListAppend => "append, read",
        }
    }

    /// Decodes an invoke's `f` and `value` into what the operation does.
    pub(crate) fn decode_invoke(self, f: &str, value: &Value) -> Result<Action, String> {
        use ModelKind::*;
        let action = match (self, f) {
            (Register | CasRegister, "read") | (Kv, "get") | (ListAppend, "read") => {
                Action::Read { observed: None }
            }
            (Register | CasRegister, "write") => Action::Write(self.scalar(f, value)?),
            (Kv, "put") => Action::Write(self.string(f, value)?),
            (Kv, "append") => Action::Append(self.string(f, value)?),
            (ListAppend, "append") => Action::Append(self.scalar(f, value)?),
            (CasRegister, "cas") => match value {
                Value::List(pair) => match pair.as_slice() {
                    [expected, new] => Action::Cas {
                        expected: expected.clone(),
                        new: new.clone(),
                    },
                    _ => return Err(format!("cas value must be [expected, new], not {value}")),
                },
                _ => return Err(format!("cas value must be [expected, new], not {value}")),
            },
            _ => {
                return Err(format!(
                    "model {} has no operation {f:?} (it has {})",
                    self.name(),
                    self.operation_names()
                ))
            }
        };
        Ok(action)
    }

    /// Decodes what an `ok` read returned, as the state it observed.
    /// A missing key reads as null; for kv and list-append that is the
    /// initial "" or [].
    pub(crate) fn decode_observed(self, f: &str, value: &Value) -> Result<Value, String> {
        match (self, value) {
            (ModelKind::Register | ModelKind::CasRegister, v) => self.scalar(f, v),
            (ModelKind::Kv, Value::Null) | (ModelKind::ListAppend, Value::Null) => {
                Ok(self.initial())
            }
            (ModelKind::Kv, v) => self.string(f, v),
            (ModelKind::ListAppend, Value::List(_)) => Ok(value.clone()),
            (ModelKind::ListAppend, v) => Err(format!("read must return a list, not {v}")),
        }
    }

    fn scalar(self, f: &str, value: &Value) -> Result<Value, String> {
        if value.is_scalar() {
            Ok(value.clone())
        } else {
            Err(format!(
                "{f} value must be null, an integer or a string, not {value}"
            ))
        }
    }

    fn string(self, f: &str, value: &Value) -> Result<Value, String> {
        match value {
            Value::Str(_) => Ok(value.clone()),
            _ => Err(format!("{f} value must be a string, not {value}")),
        }
    }

    /// The state after appending `item` to `state` (kv: string
    /// concatenation; list-append: one more element).
    pub(crate) fn append(self, state: &Value, item: &Value) -> Value {
        match (state, item) {
            (Value::Str(s), Value::Str(x)) => Value::Str(format!("{s}{x}")),
            (Value::List(items), x) => {
                let mut items = items.clone();
                items.push(x.clone());
                Value::List(items)
            }
            // Decoding only lets appends reach a string or a list state;
            // anything else keeps its state rather than guess.
            _ => state.clone(),
        }
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for ModelKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl FromStr for ModelKind {
    type Err = CheckError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ModelKind::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| CheckError::UnknownModel(s.to_string()))
    }
}

/// What an operation does, decoded once from its invoke (and, for a read,
/// from its `ok`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// A read; `observed` is the state it returned, when it returned `ok`.
    Read { observed: Option<Value> },
    /// Replaces the state (register write, kv put).
    Write(Value),
    /// Replaces the state with `new` if it equals `expected`.
    Cas { expected: Value, new: Value },
    /// Appends to the state (kv string append, list-append element).
    Append(Value),
}

impl Action {
    /// Whether the operation leaves the state as it is whatever happens:
    /// when its result is unknown, it constrains nothing.
    pub(crate) fn is_read(&self) -> bool {
        matches!(self, Action::Read { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for m in ModelKind::ALL {
            assert_eq!(m.name().parse::<ModelKind>().unwrap(), m);
        }
        assert!("queue".parse::<ModelKind>().is_err());
    }

    #[test]
    fn decodes_shapes_per_model() {
        let pair = Value::List(vec![Value::Int(1), Value::Int(2)]);
        assert!(ModelKind::CasRegister.decode_invoke("cas", &pair).is_ok());
        assert!(ModelKind::Register.decode_invoke("cas", &pair).is_err());
        assert!(ModelKind::CasRegister
            .decode_invoke("cas", &Value::List(vec![Value::Int(1)]))
            .is_err());
        assert!(ModelKind::Kv.decode_invoke("put", &Value::Int(1)).is_err());
        assert!(ModelKind::ListAppend
            .decode_invoke("append", &pair)
            .is_err());
        assert_eq!(
            ModelKind::Kv.decode_observed("get", &Value::Null),
            Ok(Value::Str(String::new()))
        );
        assert!(ModelKind::ListAppend
            .decode_observed("read", &Value::Int(3))
            .is_err());
    }

    #[test]
    fn appends_per_model() {
        let s = ModelKind::Kv.append(&Value::Str("ab".into()), &Value::Str("c".into()));
        assert_eq!(s, Value::Str("abc".into()));
        let l = ModelKind::ListAppend.append(&Value::List(vec![Value::Int(1)]), &Value::Int(2));
        assert_eq!(l, Value::List(vec![Value::Int(1), Value::Int(2)]));
    }
}
