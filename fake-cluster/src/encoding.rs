//! The JSON the API server writes (responses and watch event lines): exactly the bytes of
//! `serde_json::to_vec`, written with fewer instructions.
//!
//! Most of what the fake sends is string content (names, labels, managedFields keys), and
//! serde_json looks each byte of a string up in its escape table. Here a string is scanned
//! eight bytes at a time for the only bytes JSON escapes (`"`, `\` and controls below
//! 0x20), and a string with none (nearly all) is written with its quotes, and a member's
//! `,` and `:`, under one capacity check, short ones copied as overlapping words; escapes,
//! numbers and the structure are written as serde_json writes them (compact, members in
//! the map's own order).

use std::cell::RefCell;
use std::mem::MaybeUninit;

use crate::json::{Map, Number, Value};
use bytes::Bytes;

mod read;

pub(crate) use read::from_slice;

/// A scratch buffer kept past this size is given back, so one large list answer does not
/// keep its memory on every worker thread.
const SCRATCH_KEEP: usize = 1 << 20;

thread_local! {
    /// Where documents are written before they are copied into a buffer of their exact
    /// size: one allocation per document instead of a doubling series of them.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The pieces of `prefix`, then `value` as JSON, then `suffix`, in one buffer of the exact
/// size.
pub(crate) fn framed(prefix: &[&[u8]], value: &Value, suffix: &[u8]) -> Bytes {
    written(|buf| {
        for p in prefix {
            buf.extend_from_slice(p);
        }
        write_value(buf, value);
        buf.extend_from_slice(suffix);
    })
}

/// What `frame` writes, in one buffer of the exact size.
fn written(frame: impl Fn(&mut Vec<u8>)) -> Bytes {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            frame(&mut buf);
            let out = Bytes::copy_from_slice(&buf);
            if buf.capacity() > SCRATCH_KEEP {
                *buf = Vec::new();
            }
            out
        }
        // Not reentrant in practice (nothing here calls back into it); a fresh buffer if so.
        Err(_) => {
            let mut buf = Vec::with_capacity(256);
            frame(&mut buf);
            Bytes::from(buf)
        }
    })
}

/// `value` as JSON: what `serde_json::to_vec(value)` returns.
pub(crate) fn to_bytes(value: &Value) -> Bytes {
    framed(&[], value, b"")
}

/// Appends `value` as compact JSON.
pub(crate) fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            let mut items = items.iter();
            if let Some(first) = items.next() {
                write_value(out, first);
                for item in items {
                    out.push(b',');
                    write_value(out, item);
                }
            }
            out.push(b']');
        }
        Value::Object(map) => write_map(out, map),
    }
}

fn write_map(out: &mut Vec<u8>, map: &Map) {
    write_entries(out, map.iter().map(|(k, v)| (k.as_str(), v)));
}

/// Appends an object of these members, in this order.
pub(crate) fn write_entries<'a>(
    out: &mut Vec<u8>,
    entries: impl Iterator<Item = (&'a str, &'a Value)>,
) {
    out.push(b'{');
    let mut comma = false;
    for (k, v) in entries {
        // `,"key":` (or `"key":` for the first member) in one write.
        write_quoted(out, comma, k.as_bytes(), true);
        comma = true;
        write_value(out, v);
    }
    out.push(b'}');
}

/// `prefix` then `value` as JSON, as a string: what `format!("{prefix}{value}")` makes.
pub(crate) fn prefixed_string(prefix: &str, write: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut out = Vec::with_capacity(prefix.len() + 32);
    out.extend_from_slice(prefix.as_bytes());
    write(&mut out);
    // The writer writes UTF-8 only.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn write_number(out: &mut Vec<u8>, n: &Number) {
    if let Some(u) = n.as_u64() {
        write_decimal(out, u, false);
    } else if let Some(i) = n.as_i64() {
        write_decimal(out, i.unsigned_abs(), i < 0);
    } else {
        // A float: serde_json's own shortest representation (rare in API objects).
        let _ = serde_json::to_writer(&mut *out, n);
    }
}

fn write_decimal(out: &mut Vec<u8>, mut u: u64, negative: bool) {
    let mut digits = [0u8; 21];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    if negative {
        at -= 1;
        digits[at] = b'-';
    }
    out.extend_from_slice(&digits[at..]);
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `w` that is below `n` (n <= 128), and possibly of bytes
/// after the first such byte; none when no byte is (the classic `hasless`).
fn below(w: u64, n: u8) -> u64 {
    w.wrapping_sub(ONES * u64::from(n)) & !w & HIGHS
}

/// [`below`] 1 of `w ^ b`: the bytes equal to `b`.
fn equal(w: u64, b: u8) -> u64 {
    below(w ^ (ONES * u64::from(b)), 1)
}

fn escaped(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// The escaped bytes of a word, as flags (see [`below`]).
fn hits(w: u64) -> u64 {
    below(w, 0x20) | equal(w, b'"') | equal(w, b'\\')
}

fn word(b: &[u8; 8]) -> u64 {
    u64::from_le_bytes(*b)
}

fn half(b: &[u8; 4]) -> u64 {
    u64::from(u32::from_le_bytes(*b))
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    write_quoted(out, false, s.as_bytes(), false);
}

/// Appends `b` as a JSON string, after a `,` if `comma` and followed by a `:` if `colon`.
///
/// A string without bytes to escape (nearly all of them) is checked and copied with the same
/// loads, under one capacity check: up to 16 bytes as two overlapping words (or halves, or
/// single bytes), longer ones a word at a time then copied whole.
#[inline(always)]
fn write_quoted(out: &mut Vec<u8>, comma: bool, b: &[u8], colon: bool) {
    let n = b.len();
    let lead = usize::from(comma);
    let total = lead + n + 2 + usize::from(colon);
    if n >= 8 {
        if n > 16 {
            if !clean_long(b) {
                return write_escaped(out, comma, b, colon);
            }
        } else if let (Some(first), Some(last)) = (b.first_chunk::<8>(), b.last_chunk::<8>())
            && (hits(word(first)) | hits(word(last))) != 0
        {
            return write_escaped(out, comma, b, colon);
        }
    } else if let (Some(first), Some(last)) = (b.first_chunk::<4>(), b.last_chunk::<4>()) {
        if hits(half(first) | (half(last) << 32)) != 0 {
            return write_escaped(out, comma, b, colon);
        }
    } else if b.iter().any(|&c| escaped(c)) {
        return write_escaped(out, comma, b, colon);
    }
    out.reserve(total);
    let len = out.len();
    let Some(dst) = out.spare_capacity_mut().get_mut(..total) else {
        // Not reached: `reserve` made the room. Written the slow way if it were.
        return write_escaped(out, comma, b, colon);
    };
    if comma {
        dst[0].write(b',');
    }
    dst[lead].write(b'"');
    copy_into(&mut dst[lead + 1..lead + 1 + n], b);
    dst[lead + 1 + n].write(b'"');
    if colon {
        dst[lead + 2 + n].write(b':');
    }
    // SAFETY: the `total` bytes after `len` are within the capacity reserved above and were
    // all written just now (`dst` is exactly them).
    unsafe { out.set_len(len + total) };
}

/// Copies `src` into `dst` (the same length): short ones as overlapping words, which the
/// compiler turns into a few moves instead of a call to `memcpy`.
#[inline(always)]
fn copy_into(dst: &mut [MaybeUninit<u8>], src: &[u8]) {
    let n = src.len();
    if n > 16 {
        let n = n.min(dst.len());
        // SAFETY: `src` has `n` bytes to read and `dst` room for `n` (it is as long, and `n`
        // is at most its length anyway); two distinct borrows cannot overlap.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst.as_mut_ptr().cast::<u8>(), n) };
    } else if n >= 8 {
        put_ends::<8>(dst, src);
    } else if n >= 4 {
        put_ends::<4>(dst, src);
    } else if n > 0 {
        dst[0].write(src[0]);
        dst[n / 2].write(src[n / 2]);
        dst[n - 1].write(src[n - 1]);
    }
}

/// Copies the first and the last `N` bytes of `src` (`N` to `2 * N` bytes long) into `dst`
/// (as long): all of it, the middle twice.
#[inline(always)]
fn put_ends<const N: usize>(dst: &mut [MaybeUninit<u8>], src: &[u8]) {
    if let (Some(d), Some(s)) = (dst.first_chunk_mut::<N>(), src.first_chunk::<N>()) {
        *d = s.map(MaybeUninit::new);
    }
    if let (Some(d), Some(s)) = (dst.last_chunk_mut::<N>(), src.last_chunk::<N>()) {
        *d = s.map(MaybeUninit::new);
    }
}

/// Whether no byte of `bytes` (at least 8 of them) is escaped: whole words, the last one
/// overlapping the others (a byte read twice changes nothing). Not inlined: its vectorised
/// loop's constants would otherwise be reloaded around every call of [`write_value`].
#[inline(never)]
fn clean_long(bytes: &[u8]) -> bool {
    let (words, _) = bytes.as_chunks::<8>();
    let mut acc = bytes.last_chunk::<8>().map_or(0, |w| hits(word(w)));
    for w in words {
        acc |= hits(word(w));
    }
    acc == 0
}

/// [`write_quoted`] of a string that has bytes to escape (rare: messages, annotations
/// holding JSON, managedFields keys of list items), as serde_json writes it.
#[cold]
#[inline(never)]
fn write_escaped(out: &mut Vec<u8>, comma: bool, bytes: &[u8], colon: bool) {
    if comma {
        out.push(b',');
    }
    out.push(b'"');
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !escaped(b) {
            continue;
        }
        out.extend_from_slice(&bytes[run..i]);
        run = i + 1;
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x09 => out.extend_from_slice(b"\\t"),
            0x0A => out.extend_from_slice(b"\\n"),
            0x0C => out.extend_from_slice(b"\\f"),
            0x0D => out.extend_from_slice(b"\\r"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(b >> 4)],
                    HEX[usize::from(b & 0xF)],
                ]);
            }
        }
    }
    out.extend_from_slice(&bytes[run..]);
    out.push(b'"');
    if colon {
        out.push(b':');
    }
}
#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::json::json;
    use rand::{Rng, SeedableRng};

    fn same_as_serde(v: &Value) {
        let ours = to_bytes(v);
        let theirs = serde_json::to_vec(v).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&theirs)
        );
        assert_eq!(&ours[..], &theirs[..]);
    }

    #[test]
    fn every_ascii_byte_and_unicode_is_written_as_serde_json_writes_it() {
        for b in 0u8..0x80 {
            // At every offset of a word, so the word scan and the tail loop both see it.
            for pad in 0..17 {
                let s = format!("{}{}{}", "a".repeat(pad), b as char, "z".repeat(17 - pad));
                same_as_serde(&Value::String(s));
            }
            // Every length through the short paths (bytes, halves, two words) and past
            // them, the byte at every place; as a value, as a first member's key and as a
            // later one's (written with their `,` and `:`).
            for len in 1..=40 {
                for at in 0..len {
                    let mut s = vec![b'k'; len];
                    s[at] = b;
                    let s = String::from_utf8(s).unwrap();
                    same_as_serde(&Value::String(s.clone()));
                    same_as_serde(&json!({ s.clone(): 1, "~": [s.clone(), s.clone()] }));
                    same_as_serde(&json!({ "0": {}, s: "v" }));
                }
            }
        }
        same_as_serde(&json!(
            "héllo \u{7f} \u{2028} 日本 🦀 \"q\" \\ \n\t\r\u{8}\u{c}\u{1}\u{1f}"
        ));
        same_as_serde(&json!(""));
        same_as_serde(&json!({"": "", "a\"b": {"\n": []}}));
    }

    #[test]
    fn numbers_and_structure_are_written_as_serde_json_writes_them() {
        same_as_serde(&json!([
            0,
            1,
            -1,
            9,
            10,
            u64::MAX,
            i64::MIN,
            i64::MAX,
            0.5,
            -0.0,
            1e300,
            2.5e-8,
            123456.789,
            true,
            false,
            null,
            [],
            {},
            [[[]]],
            {"b": 1, "a": {"c": [1, {"d": null}]}}
        ]));
    }

    /// A string of pieces that need escapes, non-ASCII ones and plain ones.
    pub(crate) fn random_string(rng: &mut impl Rng) -> String {
        const PIECES: &[&str] = &[
            "a",
            "metadata",
            "f:",
            "\"",
            "\\",
            "\n",
            "\u{1}",
            "é",
            "日",
            "🦀",
            "/",
            " ",
            "0",
            "kube-api-access-",
            "\u{7f}",
            "\t",
        ];
        (0..rng.random_range(0..24))
            .map(|_| PIECES[rng.random_range(0..PIECES.len())])
            .collect()
    }

    fn random_value(rng: &mut impl Rng, depth: u32) -> Value {
        random_document(rng, depth, true)
    }

    /// A document of every kind of value (floats only if `floats`), nested up to 6 deep.
    pub(crate) fn random_document(rng: &mut impl Rng, depth: u32, floats: bool) -> Value {
        match rng.random_range(0..if depth > 4 { 5 } else { 7 }) {
            0 => Value::Null,
            1 => Value::Bool(rng.random()),
            3 if floats => json!(rng.random::<f64>() * 1e6),
            2 | 3 => json!(rng.random::<i64>() >> rng.random_range(0..63)),
            4 => Value::String(random_string(rng)),
            5 => Value::Array(
                (0..rng.random_range(0..5))
                    .map(|_| random_document(rng, depth + 1, floats))
                    .collect(),
            ),
            _ => Value::Object(
                (0..rng.random_range(0..6))
                    .map(|_| (random_string(rng), random_document(rng, depth + 1, floats)))
                    .collect(),
            ),
        }
    }

    #[test]
    fn random_documents_are_written_as_serde_json_writes_them() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        for _ in 0..2000 {
            same_as_serde(&random_value(&mut rng, 0));
        }
    }

    #[test]
    fn framing_and_large_documents() {
        let big = json!({"data": {"k": "x".repeat(SCRATCH_KEEP + 10)}});
        let framed = framed(
            &[b"{\"type\":\"", b"ADDED", b"\",\"object\":"],
            &big,
            b"}\n",
        );
        let mut expected = b"{\"type\":\"ADDED\",\"object\":".to_vec();
        expected.extend(serde_json::to_vec(&big).unwrap());
        expected.extend(b"}\n");
        assert_eq!(&framed[..], &expected[..]);
        // The scratch buffer went back after the large document; the next one is right.
        same_as_serde(&json!({"small": 1}));
    }
}
