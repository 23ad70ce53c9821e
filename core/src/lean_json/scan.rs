//! A strict cursor over JSON text for the lean readers: each method reads one token or
//! value where serde_json would, and gives `None` where serde_json would give an error and
//! also where it would not but the reader does not handle the text itself (an escape in a
//! key, a lone surrogate, a number that is not a plain integer). A reader that gets `None`
//! gives up and lets serde_json read the whole text, so `None` is always safe; what must
//! never happen is a value where serde_json gives an error, or a different value.

use std::borrow::Cow;

/// Containers deeper than this are left to serde_json.
const MAX_DEPTH: u32 = 64;

/// Where the reader is in a JSON text.
pub(super) struct Scan<'a> {
    text: &'a str,
    at: usize,
}

/// How many bytes at the start of `b` can be in a string as they are: not `"`, `\` or a
/// control character (serde_json's `skip_to_escape`, 8 bytes at a time).
#[inline]
fn plain_len(b: &[u8]) -> usize {
    const ONES: u64 = u64::MAX / 255;
    let mut i = 0;
    while let Some(chunk) = b.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let ctrl = w.wrapping_sub(ONES * 0x20) & !w;
        let q = w ^ (ONES * u64::from(b'"'));
        let quote = q.wrapping_sub(ONES) & !q;
        let s = w ^ (ONES * u64::from(b'\\'));
        let slash = s.wrapping_sub(ONES) & !s;
        let hit = (ctrl | quote | slash) & (ONES << 7);
        if hit != 0 {
            return i + hit.trailing_zeros() as usize / 8;
        }
        i += 8;
    }
    while let Some(&c) = b.get(i) {
        if c == b'"' || c == b'\\' || c < 0x20 {
            break;
        }
        i += 1;
    }
    i
}

/// The value of four hex digits.
fn hex4(b: &[u8]) -> Option<u32> {
    let mut v = 0;
    for &c in b.get(..4)? {
        v = v * 16 + char::from(c).to_digit(16)?;
    }
    Some(v)
}

impl<'a> Scan<'a> {
    /// A cursor at the start of `text`.
    pub(super) fn new(text: &'a str) -> Self {
        Self { text, at: 0 }
    }

    /// Where the cursor is, in bytes from the start.
    pub(super) fn at(&self) -> usize {
        self.at
    }

    /// The text from the cursor on.
    pub(super) fn rest(&self) -> &'a str {
        self.text.get(self.at..).unwrap_or_default()
    }

    /// Moves the cursor `n` bytes on (over text the caller has read).
    pub(super) fn advance(&mut self, n: usize) {
        self.at += n;
    }

    /// Skips whitespace (JSON's four characters, as serde_json).
    #[inline]
    pub(super) fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.text.as_bytes().get(self.at) {
            self.at += 1;
        }
    }

    /// The next byte after whitespace, not consumed.
    #[inline]
    pub(super) fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.text.as_bytes().get(self.at).copied()
    }

    /// Consumes `c` after whitespace, or `None`.
    #[inline]
    pub(super) fn eat(&mut self, c: u8) -> Option<()> {
        if self.peek()? != c {
            return None;
        }
        self.at += 1;
        Some(())
    }

    /// Consumes the literal `word` (its first byte already peeked).
    fn literal(&mut self, word: &str) -> Option<()> {
        if !self.rest().starts_with(word) {
            return None;
        }
        self.at += word.len();
        Some(())
    }

    /// Serde's `Option`: `None` for `null` (consumed), else `read` of the value.
    #[inline]
    pub(super) fn opt<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Option<T>,
    ) -> Option<Option<T>> {
        if self.peek()? == b'n' {
            self.literal("null")?;
            return Some(None);
        }
        read(self).map(Some)
    }

    /// A boolean.
    pub(super) fn bool(&mut self) -> Option<bool> {
        match self.peek()? {
            b't' => self.literal("true").map(|()| true),
            b'f' => self.literal("false").map(|()| false),
            _ => None,
        }
    }

    /// An integer as serde_json reads one into an `i64`: `-`, then `0` or digits not
    /// starting with `0`, no fraction or exponent (those are floats, an error for an
    /// integer field). `-0` is a float to serde_json too; more than 18 digits are left to it.
    pub(super) fn int(&mut self) -> Option<i64> {
        self.ws();
        let b = self.text.as_bytes();
        let negative = b.get(self.at) == Some(&b'-');
        let start = self.at + usize::from(negative);
        let mut i = start;
        let mut v: i64 = 0;
        while let Some(&c @ b'0'..=b'9') = b.get(i) {
            v = v * 10 + i64::from(c - b'0');
            i += 1;
            if i - start > 18 {
                return None;
            }
        }
        let digits = i - start;
        if digits == 0
            || (digits > 1 && b[start] == b'0')
            || (negative && v == 0)
            || matches!(b.get(i), Some(b'.' | b'e' | b'E'))
        {
            return None;
        }
        self.at = i;
        Some(if negative { -v } else { v })
    }

    /// An integer that fits an `i32` (serde's error otherwise).
    pub(super) fn i32(&mut self) -> Option<i32> {
        i32::try_from(self.int()?).ok()
    }

    /// A string, borrowed from the text when it has no escape.
    #[inline]
    pub(super) fn string(&mut self) -> Option<Cow<'a, str>> {
        self.eat(b'"')?;
        let start = self.at;
        let n = plain_len(&self.text.as_bytes()[start..]);
        let end = start + n;
        match self.text.as_bytes().get(end)? {
            b'"' => {
                self.at = end + 1;
                // `"` is ASCII: the slice ends on a character boundary.
                self.text.get(start..end).map(Cow::Borrowed)
            }
            b'\\' => self.escaped(start, end).map(Cow::Owned),
            _ => None,
        }
    }

    /// An owned string.
    #[inline]
    pub(super) fn owned(&mut self) -> Option<String> {
        self.string().map(Cow::into_owned)
    }

    /// The rest of a string from its first escape at `end` (its text from `start`): the
    /// escapes serde_json decodes, a `\u` pair of surrogates as one character; a lone
    /// surrogate (serde_json's error) is `None`.
    fn escaped(&mut self, start: usize, mut end: usize) -> Option<String> {
        let b = self.text.as_bytes();
        let mut out = String::with_capacity(end - start + 16);
        out.push_str(self.text.get(start..end)?);
        loop {
            match *b.get(end)? {
                b'"' => {
                    self.at = end + 1;
                    return Some(out);
                }
                b'\\' => {
                    let (c, n) = match *b.get(end + 1)? {
                        b'"' => ('"', 2),
                        b'\\' => ('\\', 2),
                        b'/' => ('/', 2),
                        b'b' => ('\u{8}', 2),
                        b'f' => ('\u{c}', 2),
                        b'n' => ('\n', 2),
                        b'r' => ('\r', 2),
                        b't' => ('\t', 2),
                        b'u' => {
                            let hi = hex4(b.get(end + 2..)?)?;
                            match hi {
                                0xD800..=0xDBFF => {
                                    if b.get(end + 6..end + 8)? != b"\\u" {
                                        return None;
                                    }
                                    let lo = hex4(b.get(end + 8..)?)?;
                                    if !(0xDC00..=0xDFFF).contains(&lo) {
                                        return None;
                                    }
                                    let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                                    (char::from_u32(c)?, 12)
                                }
                                0xDC00..=0xDFFF => return None,
                                _ => (char::from_u32(hi)?, 6),
                            }
                        }
                        _ => return None,
                    };
                    out.push(c);
                    end += n;
                }
                _ => {
                    let n = plain_len(&b[end..]);
                    if n == 0 {
                        // A control character: serde_json's error.
                        return None;
                    }
                    out.push_str(self.text.get(end..end + n)?);
                    end += n;
                }
            }
        }
    }

    /// An object's members: `member` reads the value of each key (a key with an escape is
    /// left to serde_json).
    #[inline]
    pub(super) fn object(
        &mut self,
        mut member: impl FnMut(&mut Self, &'a str) -> Option<()>,
    ) -> Option<()> {
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(());
        }
        loop {
            let Cow::Borrowed(key) = self.string()? else {
                return None;
            };
            self.eat(b':')?;
            member(self, key)?;
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// An array's items, each read by `item`.
    #[inline]
    pub(super) fn array(&mut self, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.eat(b'[')?;
        if self.peek()? == b']' {
            self.at += 1;
            return Some(());
        }
        loop {
            item(self)?;
            match self.peek()? {
                b',' => self.at += 1,
                b']' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// A `Vec` of what `item` reads.
    pub(super) fn vec<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Option<T>,
    ) -> Option<Vec<T>> {
        let mut out = Vec::new();
        self.array(|s| {
            out.push(item(s)?);
            Some(())
        })?;
        Some(out)
    }

    /// A string without escapes in it, skipped.
    fn skip_string(&mut self) -> Option<()> {
        self.eat(b'"')?;
        let b = self.text.as_bytes();
        let mut i = self.at;
        loop {
            i += plain_len(&b[i..]);
            match *b.get(i)? {
                b'"' => {
                    self.at = i + 1;
                    return Some(());
                }
                // As serde_json's `ignore_escape`: any `\u` with four hex digits.
                b'\\' => match *b.get(i + 1)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                    b'u' => {
                        hex4(b.get(i + 2..)?)?;
                        i += 6;
                    }
                    _ => return None,
                },
                _ => return None,
            }
        }
    }

    /// A number as serde_json's `ignore_value` checks one.
    fn skip_number(&mut self) -> Option<()> {
        let b = self.text.as_bytes();
        let mut i = self.at;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        let digits = |i: &mut usize| {
            let from = *i;
            while let Some(b'0'..=b'9') = b.get(*i) {
                *i += 1;
            }
            *i - from
        };
        match b.get(i) {
            Some(b'0') => {
                i += 1;
                if let Some(b'0'..=b'9') = b.get(i) {
                    return None;
                }
            }
            Some(b'1'..=b'9') => {
                digits(&mut i);
            }
            _ => return None,
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            if digits(&mut i) == 0 {
                return None;
            }
        }
        if let Some(b'e' | b'E') = b.get(i) {
            i += 1;
            if let Some(b'+' | b'-') = b.get(i) {
                i += 1;
            }
            if digits(&mut i) == 0 {
                return None;
            }
        }
        self.at = i;
        Some(())
    }

    /// Skips one value, checking it as serde_json's `IgnoredAny` does.
    pub(super) fn skip(&mut self) -> Option<()> {
        // One bit per open container: 1 for an object.
        let mut objects: u64 = 0;
        let mut depth: u32 = 0;
        loop {
            // A value.
            match self.peek()? {
                b'"' => self.skip_string()?,
                b'n' => self.literal("null")?,
                b't' => self.literal("true")?,
                b'f' => self.literal("false")?,
                b'-' | b'0'..=b'9' => self.skip_number()?,
                open @ (b'{' | b'[') => {
                    self.at += 1;
                    let close = if open == b'{' { b'}' } else { b']' };
                    if self.peek()? == close {
                        self.at += 1;
                    } else {
                        depth += 1;
                        if depth > MAX_DEPTH {
                            return None;
                        }
                        objects = objects << 1 | u64::from(open == b'{');
                        if open == b'{' {
                            self.skip_string()?;
                            self.eat(b':')?;
                        }
                        continue;
                    }
                }
                _ => return None,
            }
            // After a value: the next member or item, or the ends of containers.
            loop {
                if depth == 0 {
                    return Some(());
                }
                let object = objects & 1 == 1;
                match self.peek()? {
                    b',' => {
                        self.at += 1;
                        if object {
                            self.skip_string()?;
                            self.eat(b':')?;
                        }
                        break;
                    }
                    b'}' if object => {}
                    b']' if !object => {}
                    _ => return None,
                }
                self.at += 1;
                objects >>= 1;
                depth -= 1;
            }
        }
    }
}
