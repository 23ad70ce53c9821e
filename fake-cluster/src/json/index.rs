//! Indexing a [`Value`] by key or position, and JSON Pointers, as `serde_json` does.

use super::{Key, Map, Value};

/// What a [`Value`] can be indexed with: a key of an object (`str`, `String`, [`Key`]) or a position
/// in an array (`usize`).
pub trait Index {
    /// The member or element, if there is one.
    fn index_into<'v>(&self, v: &'v Value) -> Option<&'v Value>;
    /// The member or element, mutable, if there is one.
    fn index_into_mut<'v>(&self, v: &'v mut Value) -> Option<&'v mut Value>;
    /// The member (inserted as `null` when missing; a `null` value becomes an empty object
    /// first) or the element; panics for a key of a non-object or a position that is not
    /// in an array.
    fn index_or_insert<'v>(&self, v: &'v mut Value) -> &'v mut Value;
}

impl Index for usize {
    fn index_into<'v>(&self, v: &'v Value) -> Option<&'v Value> {
        v.as_array().and_then(|a| a.get(*self))
    }

    fn index_into_mut<'v>(&self, v: &'v mut Value) -> Option<&'v mut Value> {
        v.as_array_mut().and_then(|a| a.get_mut(*self))
    }

    #[allow(clippy::panic)]
    fn index_or_insert<'v>(&self, v: &'v mut Value) -> &'v mut Value {
        match v {
            Value::Array(a) => {
                let len = a.len();
                a.get_mut(*self).unwrap_or_else(|| {
                    panic!("cannot access index {self} of JSON array of length {len}")
                })
            }
            other => panic!("cannot access index {self} of JSON {}", kind(other)),
        }
    }
}

impl Index for str {
    fn index_into<'v>(&self, v: &'v Value) -> Option<&'v Value> {
        v.as_object().and_then(|m| m.get(self))
    }

    fn index_into_mut<'v>(&self, v: &'v mut Value) -> Option<&'v mut Value> {
        v.as_object_mut().and_then(|m| m.get_mut(self))
    }

    #[allow(clippy::panic)]
    fn index_or_insert<'v>(&self, v: &'v mut Value) -> &'v mut Value {
        if v.is_null() {
            *v = Value::Object(Map::new());
        }
        match v {
            Value::Object(m) => m.entry(self).or_insert(Value::Null),
            other => panic!("cannot access key {self:?} in JSON {}", kind(other)),
        }
    }
}

impl Index for String {
    fn index_into<'v>(&self, v: &'v Value) -> Option<&'v Value> {
        self.as_str().index_into(v)
    }

    fn index_into_mut<'v>(&self, v: &'v mut Value) -> Option<&'v mut Value> {
        self.as_str().index_into_mut(v)
    }

    fn index_or_insert<'v>(&self, v: &'v mut Value) -> &'v mut Value {
        self.as_str().index_or_insert(v)
    }
}

impl Index for Key {
    fn index_into<'v>(&self, v: &'v Value) -> Option<&'v Value> {
        self.as_str().index_into(v)
    }

    fn index_into_mut<'v>(&self, v: &'v mut Value) -> Option<&'v mut Value> {
        self.as_str().index_into_mut(v)
    }

    fn index_or_insert<'v>(&self, v: &'v mut Value) -> &'v mut Value {
        match v {
            // The key itself (a copy without allocating) rather than one made from its text.
            Value::Object(m) => m.entry(self).or_insert(Value::Null),
            _ => self.as_str().index_or_insert(v),
        }
    }
}

impl<T: Index + ?Sized> Index for &T {
    fn index_into<'v>(&self, v: &'v Value) -> Option<&'v Value> {
        (**self).index_into(v)
    }

    fn index_into_mut<'v>(&self, v: &'v mut Value) -> Option<&'v mut Value> {
        (**self).index_into_mut(v)
    }

    fn index_or_insert<'v>(&self, v: &'v mut Value) -> &'v mut Value {
        (**self).index_or_insert(v)
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A pointer's reference tokens (`~1` is `/`, `~0` is `~`), or `None` for a pointer that
/// is neither empty nor starts with `/`.
fn tokens(pointer: &str) -> Option<impl Iterator<Item = std::borrow::Cow<'_, str>>> {
    if !pointer.is_empty() && !pointer.starts_with('/') {
        return None;
    }
    Some(pointer.split('/').skip(1).map(|t| {
        if t.contains('~') {
            std::borrow::Cow::Owned(t.replace("~1", "/").replace("~0", "~"))
        } else {
            std::borrow::Cow::Borrowed(t)
        }
    }))
}

/// A token as an array position: digits, without a leading zero or sign.
fn position(token: &str) -> Option<usize> {
    if token.starts_with('+') || (token.starts_with('0') && token.len() != 1) {
        return None;
    }
    token.parse().ok()
}

pub(super) fn pointer<'v>(v: &'v Value, pointer: &str) -> Option<&'v Value> {
    let mut at = v;
    for token in tokens(pointer)? {
        at = match at {
            Value::Object(m) => m.get(token.as_ref())?,
            Value::Array(a) => a.get(position(&token)?)?,
            _ => return None,
        };
    }
    Some(at)
}

pub(super) fn pointer_mut<'v>(v: &'v mut Value, pointer: &str) -> Option<&'v mut Value> {
    let mut at = v;
    for token in tokens(pointer)? {
        at = match at {
            Value::Object(m) => m.get_mut(token.as_ref())?,
            Value::Array(a) => a.get_mut(position(&token)?)?,
            _ => return None,
        };
    }
    Some(at)
}
