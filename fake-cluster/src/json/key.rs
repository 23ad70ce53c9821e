//! [`Key`]: an object's key, a string that is cheap to copy.

use std::borrow::{Borrow, Cow};
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

/// The longest key kept in place (24 bytes in all, as a `String`).
const INLINE: usize = 22;

/// The key of a member of a [`Map`](super::Map): a string that reads as a `str` (it
/// dereferences to one; it compares, orders and hashes as its text), and whose copy costs
/// no allocation: a key of up to 22 bytes (nearly every Kubernetes field name) is kept in
/// place, a longer one is shared.
///
/// A shared map is copied before a change ([`Map`](super::Map)'s mutators) and that copy
/// copies every key; with `String` keys each was an allocation and a free.
#[derive(Clone)]
pub struct Key(Repr);

#[derive(Clone)]
enum Repr {
    /// The first `len` bytes are the key's UTF-8.
    Inline { len: u8, bytes: [u8; INLINE] },
    /// A longer key.
    Shared(Arc<str>),
}

impl Key {
    /// The key `text`.
    pub fn new(text: &str) -> Key {
        if text.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..text.len()].copy_from_slice(text.as_bytes());
            #[allow(clippy::cast_possible_truncation)] // at most INLINE
            Key(Repr::Inline {
                len: text.len() as u8,
                bytes,
            })
        } else {
            Key(Repr::Shared(Arc::from(text)))
        }
    }

    /// The key `prefix` followed by `text` (`f:name`), without a `String` on the way when
    /// it is short enough to be kept in place.
    pub fn prefixed(prefix: &str, text: &str) -> Key {
        let len = prefix.len() + text.len();
        if len <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..prefix.len()].copy_from_slice(prefix.as_bytes());
            bytes[prefix.len()..len].copy_from_slice(text.as_bytes());
            #[allow(clippy::cast_possible_truncation)] // at most INLINE
            Key(Repr::Inline {
                len: len as u8,
                bytes,
            })
        } else {
            let mut joined = String::with_capacity(len);
            joined.push_str(prefix);
            joined.push_str(text);
            Key(Repr::Shared(Arc::from(joined)))
        }
    }

    /// The key's text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Inline { len, bytes } => {
                let bytes = &bytes[..usize::from(*len)];
                // SAFETY: `Key::new` copied these bytes from one `&str`, and `Key::prefixed`
                // from two placed one after the other (all of their bytes, so the run is
                // valid UTF-8 and ends on a character boundary); they never change.
                unsafe { std::str::from_utf8_unchecked(bytes) }
            }
            Repr::Shared(text) => text,
        }
    }
}

impl Deref for Key {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Key {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Key {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Key) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    /// As the texts order (what [`Borrow<str>`] requires of a map key).
    fn cmp(&self, other: &Key) -> Ordering {
        compare(self.as_str(), other.as_str())
    }
}

/// A key's text as a [`Map`](super::Map) looks it up: a `str` that orders as `str` does,
/// with a faster comparison for the short keys of most objects.
#[repr(transparent)]
pub(super) struct KeyStr(str);

impl KeyStr {
    /// `text`, to look up.
    pub(super) fn new(text: &str) -> &KeyStr {
        let text: *const str = text;
        // SAFETY: `KeyStr` is a `repr(transparent)` wrapper of `str`: the same layout
        // and metadata, so the pointer cast keeps the reference valid for its lifetime.
        unsafe { &*(text as *const KeyStr) }
    }
}

impl Borrow<KeyStr> for Key {
    fn borrow(&self) -> &KeyStr {
        KeyStr::new(self.as_str())
    }
}

impl PartialEq for KeyStr {
    fn eq(&self, other: &KeyStr) -> bool {
        self.0 == other.0
    }
}

impl Eq for KeyStr {}

impl PartialOrd for KeyStr {
    fn partial_cmp(&self, other: &KeyStr) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for KeyStr {
    fn cmp(&self, other: &KeyStr) -> Ordering {
        compare(&self.0, &other.0)
    }
}

/// `a.cmp(b)` (bytewise, as `str` orders), deciding most unequal pairs without a call to
/// `memcmp`: by their first eight bytes read as one big-endian number (which orders as
/// the bytes do) when both have eight, else by their first byte; what those leave equal
/// (equal keys, the last comparison of a lookup that finds one) goes to `str`'s own.
#[inline]
fn compare(a: &str, b: &str) -> Ordering {
    let (x, y) = (a.as_bytes(), b.as_bytes());
    if let (Some(x), Some(y)) = (x.first_chunk::<8>(), y.first_chunk::<8>()) {
        if x != y {
            return u64::from_be_bytes(*x).cmp(&u64::from_be_bytes(*y));
        }
    } else if let (Some(x), Some(y)) = (x.first(), y.first())
        && x != y
    {
        return x.cmp(y);
    }
    a.cmp(b)
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for Key {
    /// As the `String` would show (`"name"`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! eq_with_text {
    ($($t:ty),*) => {$(
        impl PartialEq<$t> for Key {
            fn eq(&self, other: &$t) -> bool {
                let other: &str = other.as_ref();
                self.as_str() == other
            }
        }
        impl PartialEq<Key> for $t {
            fn eq(&self, other: &Key) -> bool {
                other == self
            }
        }
    )*};
}

eq_with_text!(str, &str, String);

impl From<&str> for Key {
    fn from(text: &str) -> Key {
        Key::new(text)
    }
}

impl From<&String> for Key {
    fn from(text: &String) -> Key {
        Key::new(text)
    }
}

impl From<String> for Key {
    /// A long key keeps the text's allocation (moved into the shared one); a short one is
    /// copied in place.
    fn from(text: String) -> Key {
        if text.len() <= INLINE {
            Key::new(&text)
        } else {
            Key(Repr::Shared(Arc::from(text)))
        }
    }
}

impl From<Cow<'_, str>> for Key {
    fn from(text: Cow<'_, str>) -> Key {
        match text {
            Cow::Borrowed(text) => Key::new(text),
            Cow::Owned(text) => Key::from(text),
        }
    }
}

impl From<&Key> for Key {
    fn from(key: &Key) -> Key {
        key.clone()
    }
}

impl From<char> for Key {
    fn from(c: char) -> Key {
        Key::new(c.encode_utf8(&mut [0; 4]))
    }
}

impl From<Key> for String {
    fn from(key: Key) -> String {
        key.as_str().to_owned()
    }
}

impl From<&Key> for String {
    fn from(key: &Key) -> String {
        key.as_str().to_owned()
    }
}

impl serde::Serialize for Key {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Key {
    /// A string, without an intermediate `String` when the deserializer lends the text.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = Key;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_str<E>(self, text: &str) -> Result<Key, E> {
                Ok(Key::new(text))
            }

            fn visit_string<E>(self, text: String) -> Result<Key, E> {
                Ok(Key::from(text))
            }
        }
        d.deserialize_str(Text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_its_text_short_or_long() {
        let texts = [
            "",
            "a",
            "ü☃",
            "exactly_twenty_two_by",
            "twenty_three_bytes_long",
            "terminationGracePeriodSeconds",
            "kubectl.kubernetes.io/last-applied-configuration",
        ];
        for t in texts {
            for k in [
                Key::new(t),
                Key::from(t.to_owned()),
                Key::from(Cow::Borrowed(t)),
            ] {
                assert_eq!(k.as_str(), t);
                assert_eq!(k, *t);
                assert_eq!(format!("{k:?}"), format!("{t:?}"));
                assert_eq!(k.to_string(), t);
                assert_eq!(String::from(k.clone()), t);
            }
        }
        // Order and equality are the texts' (a map looked up by `&str` relies on it).
        let more = [
            "ab",
            "abc",
            "ab\u{0}",
            "abcdefgh",
            "abcdefgi",
            "abcdefg",
            "abcdefghij",
            "abcdefgh\u{0}",
            "b",
            "B",
            "\u{ff}",
            "é",
            "ée",
            "metadata",
            "metadatum",
        ];
        for a in texts.iter().chain(&more) {
            for b in texts.iter().chain(&more) {
                assert_eq!(Key::new(a).cmp(&Key::new(b)), a.cmp(b), "{a} {b}");
                assert_eq!(KeyStr::new(a).cmp(KeyStr::new(b)), a.cmp(b), "{a} {b}");
                assert_eq!(Key::new(a) == Key::new(b), a == b);
            }
        }
        assert_eq!(Key::from('ü'), "ü");
        for (p, t) in [
            ("f:", "name"),
            ("f:", "terminationGracePeriodSeconds"),
            ("", ""),
            ("k:", ""),
        ] {
            let k = Key::prefixed(p, t);
            assert_eq!(k, format!("{p}{t}"));
            assert_eq!(k, Key::new(&format!("{p}{t}")));
        }
        assert_eq!(
            Key::prefixed("f:", "exactly_twenty_by"),
            "f:exactly_twenty_by"
        );
        assert_eq!(std::mem::size_of::<Key>(), std::mem::size_of::<String>());
        let read: Key = serde_json::from_str(r#""a\"b""#).unwrap();
        assert_eq!(read, "a\"b");
        assert_eq!(serde_json::to_string(&read).unwrap(), r#""a\"b""#);
    }
}
