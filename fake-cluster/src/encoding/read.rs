//! Request bodies read into a [`Value`]: exactly what `serde_json::from_slice` gives, with
//! fewer instructions for the documents clients send.
//!
//! The reader takes only what it can read exactly as serde_json does: objects, arrays,
//! `true`, `false`, `null`, strings (valid UTF-8, with any escape but a `\u` of a UTF-16
//! surrogate), and integers of up to 19 digits (other than `-0`, which serde_json reads as
//! a float). Anything else (a float, a longer number, a surrogate, nesting deeper than
//! [`MAX_DEPTH`], any syntax error) makes it give up, and serde_json reads the whole body
//! instead, with its own result or error. Strings are scanned eight bytes at a time for
//! their closing quote (and the bytes that end a plain run: `\` and controls below 0x20),
//! as the writer scans them; an object's members go into its map as serde_json puts them.

use std::borrow::Cow;

use crate::json::{Key, Map, Number, Value};

use super::{HIGHS, hits, word};

/// Nesting the reader takes on; deeper documents go to serde_json (whose limit is 128).
const MAX_DEPTH: usize = 100;

/// `body` as a value: what `serde_json::from_slice(body)` returns.
pub(crate) fn from_slice(body: &[u8]) -> Result<Value, serde_json::Error> {
    match read(body) {
        Some(v) => Ok(v),
        None => serde_json::from_slice(body),
    }
}

/// The document, if the reader reads it itself.
fn read(body: &[u8]) -> Option<Value> {
    let mut r = Reader { b: body, i: 0 };
    let v = r.value(0)?;
    r.skip_ws();
    (r.i == body.len()).then_some(v)
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Reader<'a> {
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    /// The next byte after whitespace, consumed.
    fn next_token(&mut self) -> Option<u8> {
        self.skip_ws();
        let c = *self.b.get(self.i)?;
        self.i += 1;
        Some(c)
    }

    fn value(&mut self, depth: usize) -> Option<Value> {
        match self.next_token()? {
            b'"' => self.text().map(|t| Value::String(t.into_owned())),
            b'{' => self.object(depth + 1),
            b'[' => self.array(depth + 1),
            b't' => self.literal(b"rue", Value::Bool(true)),
            b'f' => self.literal(b"alse", Value::Bool(false)),
            b'n' => self.literal(b"ull", Value::Null),
            c @ (b'-' | b'0'..=b'9') => self.integer(c),
            _ => None,
        }
    }

    fn literal(&mut self, rest: &[u8], v: Value) -> Option<Value> {
        let end = self.i + rest.len();
        (self.b.get(self.i..end)? == rest).then(|| {
            self.i = end;
            v
        })
    }

    fn object(&mut self, depth: usize) -> Option<Value> {
        if depth > MAX_DEPTH {
            return None;
        }
        let mut map = Map::new();
        match self.next_token()? {
            b'}' => return Some(Value::Object(map)),
            b'"' => {}
            _ => return None,
        }
        loop {
            let key = Key::from(self.text()?);
            if self.next_token()? != b':' {
                return None;
            }
            let v = self.value(depth)?;
            // A key given twice keeps its last value, as in serde_json's map.
            map.insert(key, v);
            match self.next_token()? {
                b',' => {
                    if self.next_token()? != b'"' {
                        return None;
                    }
                }
                b'}' => return Some(Value::Object(map)),
                _ => return None,
            }
        }
    }

    fn array(&mut self, depth: usize) -> Option<Value> {
        if depth > MAX_DEPTH {
            return None;
        }
        let mut items = Vec::new();
        self.skip_ws();
        if self.b.get(self.i) == Some(&b']') {
            self.i += 1;
            return Some(Value::Array(items));
        }
        loop {
            items.push(self.value(depth)?);
            match self.next_token()? {
                b',' => {}
                b']' => return Some(Value::Array(items)),
                _ => return None,
            }
        }
    }

    /// The offset from `from` of the first byte that ends a string's plain run (`"`, `\`
    /// or a control byte), and the bits of the bytes before it (their high bits say whether
    /// all are ASCII); `None` at the end of the body.
    fn scan(&self, from: usize) -> Option<(usize, u64)> {
        let rest = self.b.get(from..)?;
        let mut high = 0;
        let mut at = 0;
        while let Some(w) = rest[at..].first_chunk::<8>() {
            let w = word(w);
            let found = hits(w);
            if found != 0 {
                // The lowest flagged byte is a true hit (flags above it may not be).
                let n = (found.trailing_zeros() / 8) as usize;
                return Some((at + n, high | (w & ((1u64 << (8 * n)) - 1))));
            }
            high |= w;
            at += 8;
        }
        let n = rest[at..].iter().position(|&c| super::escaped(c))?;
        for &c in &rest[at..at + n] {
            high |= u64::from(c);
        }
        Some((at + n, high))
    }

    /// The rest of a string whose opening quote was read, up to its closing quote: the
    /// body's own bytes when it has no escape (a key is then made without a `String`).
    fn text(&mut self) -> Option<Cow<'a, str>> {
        let start = self.i;
        let (len, high) = self.scan(start)?;
        let end = start + len;
        if self.b.get(end) != Some(&b'"') {
            return self.escaped_string(start).map(Cow::Owned);
        }
        let bytes = &self.b[start..end];
        self.i = end + 1;
        if high & HIGHS == 0 {
            // SAFETY: every byte is below 0x80 (`high` has the bits of all of them), so
            // the bytes are ASCII, which is UTF-8.
            Some(Cow::Borrowed(unsafe {
                std::str::from_utf8_unchecked(bytes)
            }))
        } else {
            std::str::from_utf8(bytes).ok().map(Cow::Borrowed)
        }
    }

    /// [`Reader::text`] of a string with an escape (or a control byte, which stops the
    /// reader): the escapes serde_json reads, except `\u` of a UTF-16 surrogate.
    #[cold]
    fn escaped_string(&mut self, start: usize) -> Option<String> {
        let mut out = Vec::new();
        let mut at = start;
        loop {
            let (n, _) = self.scan(at)?;
            out.extend_from_slice(&self.b[at..at + n]);
            at += n;
            match self.b[at] {
                b'"' => break,
                b'\\' => {}
                _ => return None,
            }
            let unescaped = match *self.b.get(at + 1)? {
                b'"' => b'"',
                b'\\' => b'\\',
                b'/' => b'/',
                b'b' => 0x08,
                b'f' => 0x0C,
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                b'u' => {
                    let hex = std::str::from_utf8(self.b.get(at + 2..at + 6)?).ok()?;
                    if !hex.bytes().all(|h| h.is_ascii_hexdigit()) {
                        return None;
                    }
                    let c = char::from_u32(u32::from_str_radix(hex, 16).ok()?)?;
                    out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                    at += 6;
                    continue;
                }
                _ => return None,
            };
            out.push(unescaped);
            at += 2;
        }
        self.i = at + 1;
        String::from_utf8(out).ok()
    }

    /// An integer whose first byte `c` was read: `0`, or up to 19 digits not starting with
    /// 0 (so it fits a u64), after an optional `-`, and not followed by a fraction or an
    /// exponent.
    fn integer(&mut self, c: u8) -> Option<Value> {
        let negative = c == b'-';
        let first = if negative { self.next_byte()? } else { c };
        if !first.is_ascii_digit() {
            return None;
        }
        let mut n = u64::from(first - b'0');
        let mut digits = 1;
        while let Some(&d) = self.b.get(self.i)
            && d.is_ascii_digit()
        {
            if n == 0 || digits == 19 {
                return None;
            }
            n = n * 10 + u64::from(d - b'0');
            digits += 1;
            self.i += 1;
        }
        if let Some(b'.' | b'e' | b'E') = self.b.get(self.i) {
            return None;
        }
        if !negative {
            return Some(Value::Number(Number::from(n)));
        }
        // `-0` and integers below `i64::MIN` are floats in serde_json.
        let n = 0i64.checked_sub_unsigned(n).filter(|&n| n != 0)?;
        Some(Value::Number(Number::from(n)))
    }

    fn next_byte(&mut self) -> Option<u8> {
        let c = *self.b.get(self.i)?;
        self.i += 1;
        Some(c)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use crate::json::json;
    use rand::{Rng, SeedableRng};

    use super::super::tests::{random_document, random_string};
    use super::*;

    /// `body` read here and by serde_json: the same value, or the same error.
    fn same_as_serde(body: &[u8]) -> Option<Value> {
        let ours = from_slice(body);
        let theirs = serde_json::from_slice::<Value>(body);
        match (&ours, &theirs) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{}", String::from_utf8_lossy(body)),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
            _ => panic!(
                "{ours:?} against {theirs:?} for {}",
                String::from_utf8_lossy(body)
            ),
        }
        ours.ok()
    }

    /// `v` written with whitespace between its tokens, as some clients write.
    fn spaced(v: &Value, rng: &mut impl Rng) -> Vec<u8> {
        const WS: &[&str] = &["", " ", "\n", "\t", "\r\n  "];
        let mut ws = || WS[rng.random_range(0..WS.len())];
        let mut out = String::new();
        fn go(v: &Value, out: &mut String, ws: &mut dyn FnMut() -> &'static str) {
            out.push_str(ws());
            match v {
                Value::Array(items) => {
                    out.push('[');
                    for (i, item) in items.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        go(item, out, ws);
                    }
                    out.push_str(ws());
                    out.push(']');
                }
                Value::Object(map) => {
                    out.push('{');
                    for (i, (k, item)) in map.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        out.push_str(ws());
                        out.push_str(&serde_json::to_string(k).unwrap());
                        out.push_str(ws());
                        out.push(':');
                        go(item, out, ws);
                    }
                    out.push_str(ws());
                    out.push('}');
                }
                _ => out.push_str(&serde_json::to_string(v).unwrap()),
            }
            out.push_str(ws());
        }
        go(v, &mut out, &mut ws);
        out.into_bytes()
    }

    #[test]
    fn random_documents_are_read_as_serde_json_reads_them() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        for i in 0..3000 {
            let floats = i % 3 == 0;
            let v = random_document(&mut rng, 0, floats);
            let compact = serde_json::to_vec(&v).unwrap();
            let read = same_as_serde(&compact);
            same_as_serde(&spaced(&v, &mut rng));
            if !floats {
                assert_eq!(read.as_ref(), Some(&v));
                // Taken by the reader itself, not left to serde_json.
                assert_eq!(super::read(&compact).as_ref(), Some(&v));
            }
        }
    }

    #[test]
    fn damaged_documents_give_serde_json_s_value_or_error() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12);
        const BYTES: &[u8] = b"{}[]\",:\\-+.0123456789eEtrufalsn \n\t\x01\x7f\xc3\xa9\xff";
        for _ in 0..6000 {
            let v = random_document(&mut rng, 0, false);
            let mut body = serde_json::to_vec(&v).unwrap();
            match rng.random_range(0..4) {
                0 if !body.is_empty() => {
                    let at = rng.random_range(0..body.len());
                    body[at] = BYTES[rng.random_range(0..BYTES.len())];
                }
                1 => {
                    let at = rng.random_range(0..=body.len());
                    body.insert(at, BYTES[rng.random_range(0..BYTES.len())]);
                }
                2 if !body.is_empty() => {
                    let at = rng.random_range(0..body.len());
                    body.remove(at);
                }
                _ => body.truncate(rng.random_range(0..=body.len())),
            }
            same_as_serde(&body);
        }
    }

    #[test]
    fn numbers_strings_and_edges_are_read_as_serde_json_reads_them() {
        let cases: &[&[u8]] = &[
            b"0",
            b"-0",
            b"-",
            b"01",
            b"-01",
            b"1.0",
            b"1e5",
            b"1E+5",
            b"2.5e-8",
            b"123456789012345678",
            b"-123456789012345678",
            b"1234567890123456789",
            b"18446744073709551615",
            b"18446744073709551616",
            b"-9223372036854775808",
            b"-9223372036854775809",
            b"[1,2,-3]",
            b"[1,]",
            b"[,1]",
            b"{\"a\":1,}",
            b"{\"a\" 1}",
            b"{\"a\":1,\"a\":2}",
            b"{\"b\":1,\"a\":{\"b\":[],\"a\":{}}}",
            b"\"\\u00e9\\u0041\\u0000\\u001f\\u2028\"",
            b"\"\\uD83E\\uDD80\"",
            b"\"\\ud800\"",
            b"\"\\udc00x\"",
            b"\"\\u12\"",
            b"\"\\u+123\"",
            b"\"\\x\"",
            b"\"\\/\\b\\f\\n\\r\\t\\\"\\\\\"",
            b"\"a\tb\"",
            b"\"\xc3\xa9\"",
            b"\"\xc3\"",
            b"\"\xff\"",
            b"\"unterminated",
            b"\"ends in an escape\\",
            b"",
            b"   ",
            b"\xef\xbb\xbf{}",
            b"{} x",
            b"{}  \n",
            b"nul",
            b"nulls",
            b"true false",
            b"tru",
            b"[true,false,null]",
        ];
        for c in cases {
            same_as_serde(c);
        }
        for depth in [99, 100, 101, 127, 128, 129, 200] {
            let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            same_as_serde(deep.as_bytes());
            let deep = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
            same_as_serde(deep.as_bytes());
        }
        // Every ASCII byte inside a string, at every place of every length to 20.
        for b in 0u8..0x80 {
            for len in 1..=20 {
                for at in 0..len {
                    let mut s = vec![b'k'; len];
                    s[at] = b;
                    let mut body = b"{\"".to_vec();
                    body.extend(&s);
                    body.extend(b"\":\"");
                    body.extend(&s);
                    body.extend(b"\"}");
                    same_as_serde(&body);
                }
            }
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(13);
        for _ in 0..500 {
            let s = json!(random_string(&mut rng));
            assert_eq!(
                super::read(&serde_json::to_vec(&s).unwrap()).as_ref(),
                Some(&s)
            );
        }
    }
}
