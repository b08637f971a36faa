//! Model states as small ids, so the search compares, hashes and stores
//! ids instead of values. Scalars and kv strings are interned as values;
//! list-append states are nodes of a trie of appends (a state is its
//! parent plus one element), so an append or a comparison costs O(1)
//! however long the list grows.

use crate::hash::FastMap;
use crate::model::ModelKind;
use crate::search::{Effect, SearchOp};
use crate::value::Value;

/// What an operation does, on state ids.
pub(crate) enum Step {
    /// Must observe this state.
    Read(u32),
    Write(u32),
    CasSwapped(u32, u32),
    CasUnequal(u32),
    CasIfEqual(u32, u32),
    /// kv: the string to append.
    AppendStr(String),
    /// list-append: the interned element.
    AppendItem(u32),
}

/// kv: a state no read can observe any more (every read still to come
/// must follow a put): all such states are the same to the future, so
/// they share one id and the search does not tell their orderings apart.
pub(crate) const OVERWRITTEN: u32 = u32::MAX - 1;

/// The interned states of one search.
pub(crate) struct States<'a> {
    model: ModelKind,
    /// Scalar and string states.
    values: Vec<Value>,
    ids: FastMap<Value, u32>,
    /// kv: (state, op) -> the state its append leads to.
    appended: FastMap<(u32, u32), u32>,
    /// list-append: the trie. Node 0 is the empty list.
    parent: Vec<u32>,
    item: Vec<u32>,
    depth: Vec<u32>,
    children: FastMap<(u32, u32), u32>,
    items: FastMap<Value, u32>,
    item_values: Vec<Value>,
    /// The list interned last, and its node.
    last_list: (&'a [Value], u32),
    /// Whether each op may also take no effect.
    optional: Vec<bool>,
    pub initial: u32,
}

impl<'a> States<'a> {
    pub(crate) fn new(model: ModelKind) -> States<'a> {
        let mut states = States {
            model,
            values: Vec::new(),
            ids: FastMap::default(),
            appended: FastMap::default(),
            parent: vec![0],
            item: vec![u32::MAX],
            depth: vec![0],
            children: FastMap::default(),
            items: FastMap::default(),
            item_values: Vec::new(),
            last_list: (&[], 0),
            optional: Vec::new(),
            initial: 0,
        };
        states.initial = states.intern_owned(model.initial());
        states
    }

    fn is_list(&self) -> bool {
        self.model == ModelKind::ListAppend
    }

    /// The id of `value` (for list-append, a list: its trie node).
    pub(crate) fn intern(&mut self, value: &'a Value) -> u32 {
        if self.is_list() {
            if let Value::List(items) = value {
                return self.intern_list(items);
            }
        }
        self.intern_owned(value.clone())
    }

    /// The id of a scalar or string state (the empty list for list-append).
    fn intern_owned(&mut self, value: Value) -> u32 {
        if self.is_list() && value == Value::List(Vec::new()) {
            return 0;
        }
        if let Some(&id) = self.ids.get(&value) {
            return id;
        }
        let id = self.values.len() as u32 | self.value_tag();
        self.values.push(value.clone());
        self.ids.insert(value, id);
        id
    }

    /// A list's trie node. Reads come in time order and mostly extend the
    /// list read before: start from the part they share (found by plain
    /// comparison), so only the new elements are hashed.
    fn intern_list(&mut self, items: &'a [Value]) -> u32 {
        let (last_items, last_node) = self.last_list;
        let shared = last_items
            .iter()
            .zip(items)
            .take_while(|(a, b)| a == b)
            .count();
        let mut node = last_node;
        for _ in shared..last_items.len() {
            node = self.parent.get(node as usize).copied().unwrap_or(0);
        }
        for item in items.iter().skip(shared) {
            let item = self.intern_item(item);
            node = self.child(node, item);
        }
        self.last_list = (items, node);
        node
    }

    /// list-append keeps non-list values (only ever compared against, as
    /// a cas-less model never writes them) apart from trie nodes.
    fn value_tag(&self) -> u32 {
        if self.is_list() {
            1 << 31
        } else {
            0
        }
    }

    fn intern_item(&mut self, item: &Value) -> u32 {
        if let Some(&id) = self.items.get(item) {
            return id;
        }
        let id = self.item_values.len() as u32;
        self.item_values.push(item.clone());
        self.items.insert(item.clone(), id);
        id
    }

    fn child(&mut self, node: u32, item: u32) -> u32 {
        if let Some(&child) = self.children.get(&(node, item)) {
            return child;
        }
        let child = self.parent.len() as u32;
        let depth = self.depth.get(node as usize).map_or(0, |d| d + 1);
        self.parent.push(node);
        self.item.push(item);
        self.depth.push(depth);
        self.children.insert((node, item), child);
        child
    }

    /// The value of state `id`.
    pub(crate) fn value(&self, id: u32) -> Value {
        if id == OVERWRITTEN {
            return Value::Str("(anything: overwritten before the next read)".into());
        }
        if self.is_list() && id & (1 << 31) == 0 {
            let mut items = Vec::new();
            let mut node = id;
            while node != 0 {
                let i = node as usize;
                if let Some(v) = self
                    .item
                    .get(i)
                    .and_then(|&it| self.item_values.get(it as usize))
                {
                    items.push(v.clone());
                }
                node = self.parent.get(i).copied().unwrap_or(0);
            }
            items.reverse();
            return Value::List(items);
        }
        let index = (id & !self.value_tag()) as usize;
        self.values.get(index).cloned().unwrap_or(Value::Null)
    }

    /// Whether state `a` is a prefix of state `b` (kv strings,
    /// list-append lists; always true for other models).
    pub(crate) fn is_prefix(&self, a: u32, b: u32) -> bool {
        if a == OVERWRITTEN || b == OVERWRITTEN {
            return false;
        }
        if self.is_list() {
            let (Some(&da), Some(&db)) = (self.depth.get(a as usize), self.depth.get(b as usize))
            else {
                return a == b;
            };
            if da > db {
                return false;
            }
            let mut node = b;
            for _ in da..db {
                node = self.parent.get(node as usize).copied().unwrap_or(0);
            }
            return node == a;
        }
        match (self.values.get(a as usize), self.values.get(b as usize)) {
            (Some(Value::Str(a)), Some(Value::Str(b))) => b.starts_with(a.as_str()),
            _ => true,
        }
    }

    /// Interns what `op` does.
    pub(crate) fn step(&mut self, op: &SearchOp<'a>) -> Step {
        self.optional.push(op.optional);
        match op.effect {
            Effect::Read(v) => Step::Read(self.intern(v)),
            Effect::Write(v) => Step::Write(self.intern(v)),
            Effect::CasSwapped { expected, new } => {
                Step::CasSwapped(self.intern(expected), self.intern(new))
            }
            Effect::CasUnequal(expected) => Step::CasUnequal(self.intern(expected)),
            Effect::CasIfEqual { expected, new } => {
                Step::CasIfEqual(self.intern(expected), self.intern(new))
            }
            Effect::Append(item) => match (self.model, item) {
                (ModelKind::Kv, Value::Str(s)) => Step::AppendStr(s.clone()),
                _ => Step::AppendItem(self.intern_item(item)),
            },
        }
    }

    /// The states `op` can lead to from `state`: the effect's (if the
    /// model allows it), then, for an optional operation, no effect.
    pub(crate) fn successors(&mut self, state: u32, op: u32, steps: &[Step]) -> [Option<u32>; 2] {
        let effect = match steps.get(op as usize) {
            None => None,
            Some(Step::Read(expected)) => (state == *expected).then_some(state),
            Some(Step::Write(to)) => Some(*to),
            Some(Step::CasSwapped(expected, new)) => (state == *expected).then_some(*new),
            Some(Step::CasUnequal(expected)) => (state != *expected).then_some(state),
            Some(Step::CasIfEqual(expected, new)) => {
                Some(if state == *expected { *new } else { state })
            }
            Some(Step::AppendItem(item)) => Some(self.child(state, *item)),
            Some(Step::AppendStr(_)) if state == OVERWRITTEN => Some(OVERWRITTEN),
            Some(Step::AppendStr(suffix)) => Some(match self.appended.get(&(state, op)) {
                Some(&to) => to,
                None => {
                    let value = match self.values.get(state as usize) {
                        Some(Value::Str(current)) => Value::Str(format!("{current}{suffix}")),
                        _ => Value::Str(suffix.clone()),
                    };
                    let to = self.intern_owned(value);
                    self.appended.insert((state, op), to);
                    to
                }
            }),
        };
        let optional = self.optional.get(op as usize).copied().unwrap_or(false);
        let skip = (optional && effect != Some(state)).then_some(state);
        [effect, skip]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[i64]) -> Value {
        Value::List(items.iter().map(|&i| Value::Int(i)).collect())
    }

    #[test]
    fn list_states_are_canonical_trie_nodes() {
        let lists = [
            list(&[1, 2]),
            list(&[1, 2]),
            list(&[2, 1]),
            list(&[]),
            list(&[1]),
            list(&[2]),
        ];
        let mut states = States::new(ModelKind::ListAppend);
        let ab = states.intern(&lists[0]);
        assert_eq!(states.intern(&lists[1]), ab);
        assert_ne!(states.intern(&lists[2]), ab);
        assert_eq!(states.intern(&lists[3]), states.initial);
        assert_eq!(states.value(ab), lists[0]);
        let a = states.intern(&lists[4]);
        assert_eq!(states.value(a), lists[4]);
        assert!(states.is_prefix(a, ab));
        assert!(states.is_prefix(states.initial, ab));
        assert!(!states.is_prefix(ab, a));
        let b = states.intern(&lists[5]);
        assert!(!states.is_prefix(b, ab));
        // Interning again after others finds the same nodes.
        assert_eq!(states.intern(&lists[0]), ab);
        assert_eq!(states.intern(&lists[4]), a);
    }

    #[test]
    fn kv_appends_concatenate() {
        let mut states = States::new(ModelKind::Kv);
        let x = Value::Str("x".into());
        let op = SearchOp {
            call: 0,
            ret: 1,
            effect: Effect::Append(&x),
            optional: false,
        };
        let steps = vec![states.step(&op)];
        let [after, skip] = states.successors(states.initial, 0, &steps);
        assert_eq!(skip, None);
        let after = after.unwrap();
        assert_eq!(states.value(after), x);
        assert!(states.is_prefix(states.initial, after));
    }
}
