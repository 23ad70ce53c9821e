//! [`json!`](crate::json::json): a [`Value`] written as JSON in Rust, built directly (no
//! `serde_json::Value` on the way), and the conversions its interpolations use.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::{Map, Number, Value};

/// Builds a [`Value`](crate::json::Value) from JSON written in Rust, with the syntax of
/// `serde_json::json!` and the value it would give.
///
/// `null`, `true`, `false`, arrays `[..]` and objects `{..}` nest freely, with trailing
/// commas allowed. An object key is a string literal or any expression that converts into
/// a [`Key`](crate::json::Key) (every token up to the `:`, so `name: 1` takes the variable
/// `name`): `&str`, `String`, `char`, `Cow<str>`, as `serde_json` takes `Into<String>`.
/// Any other value is a
/// Rust expression, interpolated by reference, that becomes what `serde_json::to_value(&it)`
/// would make of it: strings, numbers, booleans, [`Value`](crate::json::Value)s (a copy
/// shares its objects), [`Map`](crate::json::Map)s, and `Option`s, arrays, vectors, slices
/// and string-keyed `BTreeMap`s of these are converted directly; any other type goes
/// through its `Serialize` ([`to_value`](crate::json::to_value)) and, as with `serde_json`,
/// a serialisation error (such as a map with keys that are not strings) panics.
///
/// ```
/// use cmdreporter_fake_cluster::json::{Value, json};
///
/// let name = "web";
/// let replicas: Option<u32> = Some(3);
/// let pod = json!({
///     "metadata": {"name": name, "labels": {format!("app-{name}"): "yes"}},
///     "spec": {"replicas": replicas, "paused": false, "ports": [80, 443,], "none": null},
/// });
/// assert_eq!(pod["metadata"]["labels"]["app-web"], "yes");
/// assert_eq!(pod["spec"]["ports"][1], 443);
/// assert_eq!(pod["spec"]["none"], Value::Null);
/// ```
#[macro_export]
#[doc(hidden)]
macro_rules! __fake_cluster_json {
    // ---- a whole value ----
    (null) => {
        $crate::json::Value::Null
    };
    (true) => {
        $crate::json::Value::Bool(true)
    };
    (false) => {
        $crate::json::Value::Bool(false)
    };
    ([]) => {
        $crate::json::Value::Array(::std::vec::Vec::new())
    };
    ([ $($elements:tt)+ ]) => {
        $crate::json::Value::Array($crate::__fake_cluster_json!(@array [] $($elements)+))
    };
    ({}) => {
        $crate::json::Value::Object($crate::json::Map::new())
    };
    ({ $($members:tt)+ }) => {{
        let mut members = $crate::json::__macro::Members::new();
        $crate::__fake_cluster_json!(@object members $($members)+);
        $crate::json::Value::Object($crate::json::Map::from(members))
    }};
    ($other:expr) => {
        $crate::__fake_cluster_json!(@interpolate $other)
    };

    // ---- an array's elements: `[done,] rest`, into a `vec![..]` ----
    (@array [$($done:expr,)*]) => {
        ::std::vec![$($done,)*]
    };
    (@array [$($done:expr,)*] null $(, $($rest:tt)*)?) => {
        $crate::__fake_cluster_json!(@array [$($done,)* $crate::json::Value::Null,] $($($rest)*)?)
    };
    (@array [$($done:expr,)*] true $(, $($rest:tt)*)?) => {
        $crate::__fake_cluster_json!(@array [$($done,)* $crate::json::Value::Bool(true),] $($($rest)*)?)
    };
    (@array [$($done:expr,)*] false $(, $($rest:tt)*)?) => {
        $crate::__fake_cluster_json!(@array [$($done,)* $crate::json::Value::Bool(false),] $($($rest)*)?)
    };
    (@array [$($done:expr,)*] [$($inner:tt)*] $(, $($rest:tt)*)?) => {
        $crate::__fake_cluster_json!(@array [$($done,)* $crate::__fake_cluster_json!([$($inner)*]),] $($($rest)*)?)
    };
    (@array [$($done:expr,)*] {$($inner:tt)*} $(, $($rest:tt)*)?) => {
        $crate::__fake_cluster_json!(@array [$($done,)* $crate::__fake_cluster_json!({$($inner)*}),] $($($rest)*)?)
    };
    (@array [$($done:expr,)*] $next:expr $(, $($rest:tt)*)?) => {
        $crate::__fake_cluster_json!(@array [$($done,)* $crate::__fake_cluster_json!(@interpolate $next),] $($($rest)*)?)
    };

    // ---- an object's members, inserted one by one into `$m` ----
    (@object $m:ident) => {};
    // A string literal key (the common case: no munching).
    (@object $m:ident $key:literal : $($rest:tt)+) => {
        $crate::__fake_cluster_json!(@value $m ($key) $($rest)+)
    };
    (@object $m:ident $($rest:tt)+) => {
        $crate::__fake_cluster_json!(@key $m () $($rest)+)
    };
    // An expression key: every token up to the `:`.
    (@key $m:ident ($($key:tt)+) : $($rest:tt)+) => {
        $crate::__fake_cluster_json!(@value $m ($($key)+) $($rest)+)
    };
    (@key $m:ident ($($key:tt)*) $next:tt $($rest:tt)*) => {
        $crate::__fake_cluster_json!(@key $m ($($key)* $next) $($rest)*)
    };
    // The member's value, up to the next `,` (or the end).
    (@value $m:ident ($($key:tt)+) null $(, $($rest:tt)*)?) => {
        $crate::__fake_cluster_json!(@insert $m ($($key)+) ($crate::json::Value::Null) $($($rest)*)?)
    };
    (@value $m:ident ($($key:tt)+) true $(, $($rest:tt)*)?) => {
        $crate::__fake_cluster_json!(@insert $m ($($key)+) ($crate::json::Value::Bool(true)) $($($rest)*)?)
    };
    (@value $m:ident ($($key:tt)+) false $(, $($rest:tt)*)?) => {
        $crate::__fake_cluster_json!(@insert $m ($($key)+) ($crate::json::Value::Bool(false)) $($($rest)*)?)
    };
    (@value $m:ident ($($key:tt)+) [$($inner:tt)*] $(, $($rest:tt)*)?) => {
        $crate::__fake_cluster_json!(@insert $m ($($key)+) ($crate::__fake_cluster_json!([$($inner)*])) $($($rest)*)?)
    };
    (@value $m:ident ($($key:tt)+) {$($inner:tt)*} $(, $($rest:tt)*)?) => {
        $crate::__fake_cluster_json!(@insert $m ($($key)+) ($crate::__fake_cluster_json!({$($inner)*})) $($($rest)*)?)
    };
    (@value $m:ident ($($key:tt)+) $value:expr $(, $($rest:tt)*)?) => {
        $crate::__fake_cluster_json!(@insert $m ($($key)+) ($crate::__fake_cluster_json!(@interpolate $value)) $($($rest)*)?)
    };
    (@insert $m:ident ($($key:tt)+) ($value:expr) $($rest:tt)*) => {
        $m.insert($crate::json::__macro::key($($key)+), $value);
        $crate::__fake_cluster_json!(@object $m $($rest)*)
    };

    // ---- an interpolated expression, by reference ----
    (@interpolate $e:expr) => {{
        #[allow(unused_imports)]
        use $crate::json::__macro::{ByConversion as _, BySerialize as _};
        (&$crate::json::__macro::Interpolated(&$e)).json_value()
    }};
}

/// What [`json!`](crate::json::json) expands to uses; not for other code.
#[doc(hidden)]
pub mod __macro {
    pub use super::AsValue;
    use super::Value;
    use crate::json::Key;

    /// An object's members while `json!` builds it.
    pub type Members = super::BTreeMap<Key, Value>;

    /// An object key: a `&str`, `String`, `char`, `Cow<str>`, [`Key`]... (what
    /// `serde_json::json!` accepts, `Into<String>`, for every such type in use).
    pub fn key(key: impl Into<Key>) -> Key {
        key.into()
    }

    /// An interpolated expression, borrowed. Method resolution picks [`ByConversion`] when
    /// the type converts directly, else [`BySerialize`] (one more reference away).
    pub struct Interpolated<'a, T: ?Sized>(pub &'a T);

    /// The value of an interpolated expression of a type converted directly.
    pub trait ByConversion {
        /// The value.
        fn json_value(&self) -> Value;
    }

    impl<T: AsValue + ?Sized> ByConversion for Interpolated<'_, T> {
        fn json_value(&self) -> Value {
            self.0.as_value()
        }
    }

    /// The value of any other interpolated expression, through its `Serialize`.
    pub trait BySerialize {
        /// The value; panics when serialisation fails, as in `serde_json::json!`.
        fn json_value(&self) -> Value;
    }

    impl<T: serde::Serialize + ?Sized> BySerialize for &Interpolated<'_, T> {
        #[allow(clippy::panic)]
        fn json_value(&self) -> Value {
            crate::json::to_value(self.0).unwrap_or_else(|e| panic!("json!: {e}"))
        }
    }
}

/// Types whose value `json!` makes directly: the same value as their `Serialize` gives
/// through [`to_value`](super::to_value), without the detour.
#[doc(hidden)]
pub trait AsValue {
    /// This as a [`Value`].
    fn as_value(&self) -> Value;
}

impl AsValue for Value {
    /// A copy (objects shared).
    fn as_value(&self) -> Value {
        self.clone()
    }
}

impl AsValue for Map {
    fn as_value(&self) -> Value {
        Value::Object(self.clone())
    }
}

impl AsValue for str {
    fn as_value(&self) -> Value {
        Value::String(self.to_owned())
    }
}

impl AsValue for String {
    fn as_value(&self) -> Value {
        Value::String(self.clone())
    }
}

impl AsValue for Cow<'_, str> {
    fn as_value(&self) -> Value {
        Value::String(self.as_ref().to_owned())
    }
}

impl AsValue for bool {
    fn as_value(&self) -> Value {
        Value::Bool(*self)
    }
}

impl AsValue for Number {
    fn as_value(&self) -> Value {
        Value::Number(self.clone())
    }
}

impl AsValue for () {
    fn as_value(&self) -> Value {
        Value::Null
    }
}

macro_rules! as_value_by_from {
    ($($t:ty)*) => {$(
        impl AsValue for $t {
            fn as_value(&self) -> Value {
                Value::from(*self)
            }
        }
    )*};
}
// Floats: NaN and the infinities are `null`, as serde_json serialises them into a value.
as_value_by_from!(i8 i16 i32 i64 isize u8 u16 u32 u64 usize f32 f64);

impl<T: AsValue> AsValue for Option<T> {
    fn as_value(&self) -> Value {
        self.as_ref().map_or(Value::Null, AsValue::as_value)
    }
}

impl<T: AsValue> AsValue for [T] {
    fn as_value(&self) -> Value {
        Value::Array(self.iter().map(AsValue::as_value).collect())
    }
}

impl<T: AsValue, const N: usize> AsValue for [T; N] {
    fn as_value(&self) -> Value {
        self.as_slice().as_value()
    }
}

impl<T: AsValue> AsValue for Vec<T> {
    fn as_value(&self) -> Value {
        self.as_slice().as_value()
    }
}

impl<V: AsValue> AsValue for BTreeMap<String, V> {
    fn as_value(&self) -> Value {
        Value::Object(self.iter().map(|(k, v)| (k, v.as_value())).collect())
    }
}

impl<T: AsValue + ?Sized> AsValue for &T {
    fn as_value(&self) -> Value {
        (**self).as_value()
    }
}

impl<T: AsValue + ?Sized> AsValue for &mut T {
    fn as_value(&self) -> Value {
        (**self).as_value()
    }
}
